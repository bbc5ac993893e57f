"""Per-direction TCP stream reassembly: segments in, in-order bytes and gaps out.

Theory of operation
-------------------
Each direction of a connection has one ``StreamReassembler``. It maps the
32-bit sequence numbers onto an unbounded stream position: the position of a
segment is the expected position ``next`` plus the signed serial distance
(RFC 1982) between the segment's sequence number and ``next`` modulo 2**32.
Positions never wrap, so all later comparisons are plain integer ones, and
a stream that crosses 2**32 needs no special case.

The initial sequence number comes from the SYN (the SYN itself takes one
sequence number, RFC 9293 section 3.4, so data starts at ISN + 1) or, for a
connection joined mid-stream, from the first segment seen.

A segment is then one of:

* old: it ends at or before ``next``. Its bytes were already delivered, so it
  is a retransmission and delivers nothing (the first copy wins).
* in order: it starts at or before ``next`` and ends after it. Its new bytes
  are delivered, then any held segments that now follow without a hole.
* out of order: it starts after ``next``. It is held until the hole before
  it fills. Parts that overlap bytes already held are dropped on arrival,
  so held pieces never overlap and the first copy wins there too.

Bytes that were on the wire but cut off by the capture's snaplen are part of
the stream: they are reported as ``StreamGap(NOT_CAPTURED)`` in their place,
and ``next`` moves past them. A hole that may never fill is released as
``StreamGap(LOST)`` in three cases. The first is when the held bytes exceed
the cap. The second is when the peer has acknowledged past the hole and the
capture clock has moved a grace period beyond that acknowledgment
(``expire``). The third is the end of the connection or the input (``flush``). An acknowledgment alone releases
nothing, because ``tcpdump -i any`` often records a segment after the
peer's ACK of it.

Must not import anything that does I/O.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

from smtptop.tcp.events import GapReason, StreamData, StreamGap
from smtptop.tcp.seq import SEQ_MASK, seq_diff

logger = logging.getLogger(__name__)

StreamEvent = StreamData | StreamGap

DEFAULT_MAX_HELD_BYTES = 1 << 20
DEFAULT_MAX_HELD_SEGMENTS = 4096
DEFAULT_ACK_GRACE = 1.0
# A segment that starts further ahead than the largest possible receive window
# (2**30 with the maximum window scale of 14, RFC 7323 section 2.3) cannot be
# part of this stream, so it is counted and ignored rather than held.
MAX_WINDOW = 1 << 30


@dataclass(slots=True)
class _HeldPiece:
    """Bytes held after a hole. ``data`` is None for bytes the snaplen cut off."""

    start: int
    end: int
    data: bytes | None
    ts: float


class StreamReassembler:
    """Reassemble one direction of a TCP connection (see the module docstring).

    ``max_held_bytes`` caps the captured bytes held after holes and
    ``max_held_segments`` caps the number of held pieces. ``ack_grace`` is the
    number of capture-clock seconds that must pass after the peer acknowledged
    bytes past a hole before ``expire`` releases the hole.
    """

    __slots__ = (
        "_acked",
        "_fin_position",
        "_held",
        "_held_bytes",
        "_held_starts",
        "_hole_acked_ts",
        "_next",
        "ack_grace",
        "delivered_bytes",
        "isn",
        "lost_bytes",
        "max_held_bytes",
        "max_held_segments",
        "not_captured_bytes",
        "out_of_order",
        "out_of_window",
        "retransmissions",
        "retransmitted_bytes",
    )

    def __init__(
        self,
        max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
        ack_grace: float = DEFAULT_ACK_GRACE,
        max_held_segments: int = DEFAULT_MAX_HELD_SEGMENTS,
    ) -> None:
        self.max_held_bytes = max_held_bytes
        self.max_held_segments = max_held_segments
        self.ack_grace = ack_grace
        self.isn: int | None = None  # the SYN's sequence number, or first seq - 1 mid-stream
        self.retransmissions = 0  # segments with payload and no new byte
        self.retransmitted_bytes = 0
        self.out_of_order = 0  # segments that arrived after a hole
        self.out_of_window = 0  # segments too far ahead to belong to the stream
        self.lost_bytes = 0
        self.not_captured_bytes = 0
        self.delivered_bytes = 0
        self._next: int | None = None  # stream position of the next byte to deliver
        self._held: list[_HeldPiece] = []  # sorted by start, never overlapping
        self._held_starts: list[int] = []
        self._held_bytes = 0
        self._fin_position: int | None = None
        self._acked: int | None = None  # highest stream position the peer acknowledged
        self._hole_acked_ts: float | None = None  # when an ACK first covered ``next``

    @property
    def gap_bytes(self) -> int:
        """Bytes reported as gaps so far, lost or not captured."""
        return self.lost_bytes + self.not_captured_bytes

    @property
    def has_hole(self) -> bool:
        """True while segments are held behind a hole."""
        return bool(self._held)

    @property
    def next_seq(self) -> int | None:
        """The sequence number of the next byte expected, or None before the first segment."""
        return None if self._next is None else self._next & SEQ_MASK

    def add(
        self,
        seq: int,
        payload: bytes,
        payload_len: int,
        ts: float,
        *,
        syn: bool = False,
        fin: bool = False,
    ) -> list[StreamEvent]:
        """Take one segment of this direction and return what became deliverable.

        ``payload`` contains the captured bytes and ``payload_len`` the length on
        the wire. ``syn`` and ``fin`` mark the flags, which each take one
        sequence number (RFC 9293, section 3.4).
        """
        if syn and self._next is None:
            self.isn = seq
            self._next = seq + 1
        start_seq = (seq + 1) & SEQ_MASK if syn else seq
        if self._next is None:
            self.isn = (seq - 1) & SEQ_MASK
            self._next = seq
        start = self._position(start_seq)
        payload_len = max(payload_len, 0)
        payload = payload[:payload_len]
        events: list[StreamEvent] = []

        if start - self._next > MAX_WINDOW:
            self.out_of_window += 1
            return events
        if fin and self._fin_position is None:
            self._fin_position = start + payload_len
        if payload_len == 0:
            self._step_over_fin()
            return events

        end = start + payload_len
        if end <= self._next:
            # RFC 9293, section 3.10.7.4: a segment entirely before the receive
            # window carries nothing new.
            self._count_retransmission(payload_len)
            return events
        if start > self._next:
            if self._hold(start, payload, end, ts):
                self.out_of_order += 1
            else:
                self._count_retransmission(payload_len)
            self._release_over_cap(ts, events)
            return events

        if start < self._next:
            self.retransmitted_bytes += self._next - start
        if not self._held:
            self._deliver(start, payload, end, ts, events)
            return events
        # Held pieces may cover part of this segment. Holding it first trims
        # those parts, so the copy that arrived first is the one delivered.
        if not self._hold(start, payload, end, ts):
            self._count_retransmission(payload_len)
        self._drain(ts, events)
        return events

    def note_peer_ack(self, ack: int, ts: float) -> None:
        """Record an acknowledgment number that the other direction sent at ``ts``."""
        if self._next is None:
            return
        position = self._position(ack)
        if self._acked is None or position > self._acked:
            self._acked = position
        if self._hole_acked_ts is None and self._acked > self._next:
            self._hole_acked_ts = ts

    def expire(self, now: float) -> list[StreamEvent]:
        """Release holes that the peer acknowledged more than ``ack_grace`` seconds ago."""
        events: list[StreamEvent] = []
        while (
            self._next is not None
            and self._acked is not None
            and self._acked > self._next
            and self._hole_acked_ts is not None
            and now - self._hole_acked_ts > self.ack_grace
        ):
            # Bytes below the ACK were received by the peer but never captured.
            acked_ts = self._hole_acked_ts
            hole_end = self._acked
            if self._held:
                hole_end = min(hole_end, self._held[0].start)
            self._release_hole(hole_end, now, events)
            if self._acked > self._next:
                # The same old acknowledgment also covers the next hole.
                self._hole_acked_ts = acked_ts
        return events

    def flush(self, ts: float) -> list[StreamEvent]:
        """Release every hole and held segment, at connection end or end of input.

        Bytes the peer acknowledged but the capture never saw are reported as
        a final LOST gap.
        """
        events: list[StreamEvent] = []
        if self._next is None:
            return events
        while self._held:
            self._release_hole(self._held[0].start, ts, events)
        if self._acked is not None and self._acked > self._next:
            # NOTE: an acknowledged FIN that the capture missed also lands here,
            # as one LOST byte, because an ACK cannot tell a FIN from data.
            self._release_hole(self._acked, ts, events)
        return events

    # Internals.

    def _position(self, seq: int) -> int:
        assert self._next is not None
        return self._next + seq_diff(seq, self._next & SEQ_MASK)

    def _count_retransmission(self, length: int) -> None:
        self.retransmissions += 1
        self.retransmitted_bytes += length

    def _deliver(self, start: int, payload: bytes | None, end: int, ts: float, events: list[StreamEvent]) -> None:
        """Deliver the part of [start, end) past ``next`` and move ``next`` to ``end``."""
        assert self._next is not None
        skip = self._next - start
        if payload is None:
            captured_end = start
        else:
            captured_end = start + len(payload)
            if captured_end > self._next:
                chunk = payload[skip:] if skip > 0 else payload
                self.delivered_bytes += len(chunk)
                last = events[-1] if events else None
                if isinstance(last, StreamData):
                    # Adjacent bytes released by one segment go out as one event.
                    events[-1] = StreamData(last.data + chunk, ts)
                else:
                    events.append(StreamData(chunk, ts))
        missing = end - max(captured_end, self._next)
        if missing > 0:
            self.not_captured_bytes += missing
            events.append(StreamGap(missing, ts, GapReason.NOT_CAPTURED))
        self._advance(end, ts)

    def _advance(self, position: int, ts: float) -> None:
        assert self._next is not None
        self._next = position
        self._step_over_fin()
        if self._acked is not None and self._acked > self._next:
            # The ACK that covers the new hole start may be older, but its time
            # is not kept, so the grace period restarts now (a later release).
            self._hole_acked_ts = ts
        else:
            self._hole_acked_ts = None

    def _step_over_fin(self) -> None:
        if self._fin_position is not None and self._next == self._fin_position:
            self._next += 1

    def _drain(self, ts: float, events: list[StreamEvent]) -> None:
        """Deliver held pieces that now follow ``next`` without a hole."""
        assert self._next is not None
        while self._held and self._held[0].start <= self._next:
            piece = self._held.pop(0)
            self._held_starts.pop(0)
            if piece.data is not None:
                self._held_bytes -= len(piece.data)
            if piece.end > self._next:
                self._deliver(piece.start, piece.data, piece.end, ts, events)

    def _hold(self, start: int, payload: bytes, end: int, ts: float) -> bool:
        """Hold the parts of a segment past ``next`` that no held piece covers yet.

        Return False when there is no such part, so the segment brings no new byte.
        """
        assert self._next is not None
        captured_end = start + len(payload)
        new_parts: list[_HeldPiece] = []
        for part_start, part_end in self._uncovered(max(start, self._next), end):
            # Split each range where the captured bytes end, so that a piece is
            # either all captured bytes or all bytes the snaplen cut off.
            split = min(max(part_start, captured_end), part_end)
            if split > part_start:
                new_parts.append(_HeldPiece(part_start, split, payload[part_start - start : split - start], ts))
            if split < part_end:
                new_parts.append(_HeldPiece(split, part_end, None, ts))
        for part in new_parts:
            index = bisect.bisect_left(self._held_starts, part.start)
            self._held.insert(index, part)
            self._held_starts.insert(index, part.start)
            if part.data is not None:
                self._held_bytes += len(part.data)
        return bool(new_parts)

    def _uncovered(self, start: int, end: int) -> list[tuple[int, int]]:
        """Return the sub-ranges of [start, end) that no held piece covers."""
        ranges: list[tuple[int, int]] = []
        cursor = start
        index = max(bisect.bisect_right(self._held_starts, start) - 1, 0)
        for piece in self._held[index:]:
            if piece.start >= end:
                break
            if piece.end <= cursor:
                continue
            if piece.start > cursor:
                ranges.append((cursor, piece.start))
            cursor = max(cursor, piece.end)
        if cursor < end:
            ranges.append((cursor, end))
        return ranges

    def _release_over_cap(self, ts: float, events: list[StreamEvent]) -> None:
        while self._held and (
            self._held_bytes > self.max_held_bytes or len(self._held) > self.max_held_segments
        ):
            logger.debug("held data over the cap, releasing a hole of %d bytes", self._held[0].start - (self._next or 0))
            self._release_hole(self._held[0].start, ts, events)

    def _release_hole(self, hole_end: int, ts: float, events: list[StreamEvent]) -> None:
        """Report [next, hole_end) as LOST, then deliver what follows it."""
        assert self._next is not None
        length = hole_end - self._next
        if length > 0:
            self.lost_bytes += length
            events.append(StreamGap(length, ts, GapReason.LOST))
            self._advance(hole_end, ts)
        self._drain(ts, events)
