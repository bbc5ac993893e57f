"""TCP analysis of one connection: Wireshark's per-segment flags, windows, RTT and Zeek's summary.

Theory of operation
-------------------
Each direction keeps what Wireshark's TCP sequence analysis keeps for it
(the "TCP Analysis" section of the Wireshark User's Guide): the highest
sequence number sent plus one (``next_seq``), the last ACK number, window
and time, and the duplicate-ACK count. ``observe`` compares a segment with
its own direction's state and the peer's, in Wireshark's order:

1. ZeroWindowProbe: one byte at ``next_seq`` while the peer's window is zero.
   It ends the checks and does not move ``next_seq``.
2. ZeroWindow, Previous segment not captured (``seq > next_seq``),
   TCP Keep-Alive (0 or 1 byte at ``next_seq - 1``), Window Update (no
   payload, same ACK, a changed non-zero window) and Window Full (the data
   ends exactly at the peer's right window edge).
3. TCP Keep-Alive ACK and ZeroWindowProbeAck, which end the checks, then
   Dup ACK: no payload, same ACK and non-zero window as the previous segment
   of this direction, at ``next_seq``. Only a new ACK number restarts the
   duplicate count.
4. ACKed unseen segment: the ACK is past the end of the peer's contiguous
   data (``max_to_ack``), which moves to ``next_seq`` only on a segment that
   starts exactly at it. If the peer has sent data past a hole, so that its
   ``next_seq`` is beyond ``max_to_ack``, the ACK is flagged and
   ``max_to_ack`` moves to that ``next_seq``. Otherwise the ACK is flagged
   only while the peer's duplicate-ACK count is zero, and it sets that count
   to -1, so the stretch is flagged once until the peer sends a new ACK
   number or a duplicate ACK. tshark 4.0.17 decides the same way on the
   public captures and on hand-built cases in ``tests/tcp``.
5. Data, SYN or FIN that is no keep-alive and starts before ``next_seq``,
   or data the peer already acknowledged, is a retransmission of one kind.
   Data already acknowledged is a Spurious Retransmission. A segment at the
   peer's ACK within 20 ms of that ACK is a Fast Retransmission when the
   peer's duplicate-ACK count is at least two or is the -1 that an ACKed
   unseen flag left. tshark 4.0.17 keeps the count unsigned, so it reads
   -1 as a large count. A retransmission within the initial RTT (or 3 ms)
   of the highest segment is Out-Of-Order, and the rest are Retransmissions.

Where the guide leaves a case open, tshark 4.0 on the public captures in
``tests/data/public`` decided it (``tests/tcp/test_analysis_public.py``).

SYN, FIN and RST segments are never ZeroWindow, Window Update, Dup ACK or
Keep-Alive segments. Window scaling (RFC 7323, section 2.2) applies only
when both the SYN and the SYN-ACK carried the option. The windows in SYN
segments are never scaled. Without the handshake the shift is unknown, so
the scaled window is None while a raw zero still counts as a zero window.

ACK RTT samples come from the oldest-first queue of unacknowledged segments
of each direction. An ACK takes the newest segment it covers as the sample,
except segments at or below a retransmitted byte (Karn's rule, RFC 6298
section 3). The smoothed RTT is RFC 6298's SRTT with alpha 1/8.

All times are capture timestamps. Per-segment work is O(1) amortized.
Must not import anything that does I/O, nor ``smtptop.engine``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields

from smtptop.decode.segment import ACK, FIN, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.tcp.options import parse_options
from smtptop.tcp.seq import seq_add, seq_diff
from smtptop.tcp.zeek import ZeekSummary

RETRANSMISSION = "Retransmission"
FAST_RETRANSMISSION = "Fast Retransmission"
SPURIOUS_RETRANSMISSION = "Spurious Retransmission"
OUT_OF_ORDER = "Out-Of-Order"
LOST_SEGMENT = "Previous segment not captured"
ACKED_UNSEEN = "ACKed unseen segment"
ZERO_WINDOW = "ZeroWindow"
ZERO_WINDOW_PROBE = "ZeroWindowProbe"
ZERO_WINDOW_PROBE_ACK = "ZeroWindowProbeAck"
WINDOW_FULL = "Window Full"
WINDOW_UPDATE = "Window Update"
KEEP_ALIVE = "TCP Keep-Alive"
KEEP_ALIVE_ACK = "TCP Keep-Alive ACK"
DUP_ACK_PREFIX = "Dup ACK #"

RETRANSMISSION_TAGS = frozenset((RETRANSMISSION, FAST_RETRANSMISSION, SPURIOUS_RETRANSMISSION))

# Wireshark's thresholds (Wireshark User's Guide, "TCP Analysis"): a fast
# retransmission follows the last ACK within 20 ms, and without an initial RTT
# a segment within 3 ms of the highest one is out of order rather than resent.
FAST_RETRANSMISSION_WINDOW = 0.020
DEFAULT_OUT_OF_ORDER_WINDOW = 0.003
# Unacknowledged segments kept per direction for RTT samples. Older ones are dropped unsampled.
MAX_UNACKED_SEGMENTS = 10000
_SMOOTHING = 1 / 8  # RFC 6298, section 2.3 (alpha)
# Read per segment, and a global is cheaper than an Enum member read through its class.
_C2S = Direction.CLIENT_TO_SERVER
_CONTROL = SYN | FIN | RST

_COUNTER_OF_TAG = {
    RETRANSMISSION: "retransmissions",
    FAST_RETRANSMISSION: "fast_retransmissions",
    SPURIOUS_RETRANSMISSION: "spurious_retransmissions",
    OUT_OF_ORDER: "out_of_order",
    LOST_SEGMENT: "lost_segments",
    ACKED_UNSEEN: "acked_unseen",
    ZERO_WINDOW: "zero_windows",
    ZERO_WINDOW_PROBE: "zero_window_probes",
    ZERO_WINDOW_PROBE_ACK: "zero_window_probe_acks",
    WINDOW_FULL: "window_full",
    WINDOW_UPDATE: "window_updates",
    KEEP_ALIVE: "keep_alives",
    KEEP_ALIVE_ACK: "keep_alive_acks",
}


# Not frozen: built twice for every record and table row, and a frozen dataclass sets
# each field through object.__setattr__. Nothing changes one after it is made, and
# unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class DirectionStats:
    """TCP analysis counters and windows of one direction's segments.

    The field names match ``smtptop.engine.snapshot.TcpDirectionHealth``.
    Times are in seconds. ``window`` is the last advertised receive window
    in bytes, scaled, and None while the scale is unknown.
    """

    retransmissions: int
    fast_retransmissions: int
    spurious_retransmissions: int
    duplicate_acks: int
    out_of_order: int
    lost_segments: int
    acked_unseen: int
    zero_windows: int
    zero_window_probes: int
    zero_window_probe_acks: int
    window_full: int
    window_updates: int
    keep_alives: int
    keep_alive_acks: int
    window: int | None
    raw_window: int
    window_scale: int | None
    bytes_in_flight: int
    rtt_min: float | None
    rtt_smoothed: float | None
    rtt_max: float | None


# The first 14 fields, retransmissions to keep_alive_acks, are the counters.
_COUNTER_NAMES = tuple(field.name for field in fields(DirectionStats))[:14]


class _Side:
    """The analysis state of one direction (the segments that one peer sends)."""

    __slots__ = (
        "counts",
        "dup_acks",
        "karn_limit",
        "last_ack",
        "last_ack_ts",
        "last_tags",
        "max_to_ack",
        "next_seq",
        "next_seq_ts",
        "raw_window",
        "rtt_max",
        "rtt_min",
        "rtt_smoothed",
        "shift",
        "syn_shift",
        "unacked",
        "window",
    )

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_COUNTER_NAMES, 0)
        self.next_seq: int | None = None  # highest sequence number sent, plus one
        self.next_seq_ts = 0.0
        # The end of the contiguous data sent, which the peer may acknowledge.
        self.max_to_ack: int | None = None
        self.last_ack: int | None = None
        self.last_ack_ts = 0.0
        self.raw_window: int | None = None
        self.window: int | None = None  # scaled; None while the shift is unknown
        self.dup_acks = 0
        self.last_tags: tuple[str, ...] = ()
        self.syn_shift: int | None = None  # the window scale option of this side's SYN
        self.shift: int | None = None  # the shift in force for this side's windows
        self.unacked: deque[tuple[int, float]] = deque()  # (end sequence number, send time)
        # Karn's rule: samples at or below this retransmitted end are ambiguous.
        self.karn_limit: int | None = None
        self.rtt_min: float | None = None
        self.rtt_max: float | None = None
        self.rtt_smoothed: float | None = None

    def add_rtt_sample(self, sample: float) -> None:
        self.rtt_min = sample if self.rtt_min is None else min(self.rtt_min, sample)
        self.rtt_max = sample if self.rtt_max is None else max(self.rtt_max, sample)
        if self.rtt_smoothed is None:
            self.rtt_smoothed = sample
        else:
            self.rtt_smoothed += _SMOOTHING * (sample - self.rtt_smoothed)


class TcpAnalysis:
    """Wireshark-style analysis of one TCP connection (see the module docstring)."""

    __slots__ = (
        "_sides",
        "_syn_ts",
        "_synack_seen",
        "_zeek",
        "initial_rtt",
    )

    def __init__(self) -> None:
        self._sides = {Direction.CLIENT_TO_SERVER: _Side(), Direction.SERVER_TO_CLIENT: _Side()}
        self._zeek = ZeekSummary()
        self._syn_ts: float | None = None
        self._synack_seen = False
        # Seconds from the SYN to the ACK that completes the handshake.
        self.initial_rtt: float | None = None

    def observe(self, seg: Segment, direction: Direction) -> tuple[str, ...]:
        """Analyse one segment sent in ``direction`` and return its Wireshark flags."""
        mine = self._sides[direction]
        peer = self._sides[direction.reverse]
        flags = seg.flags
        self._note_handshake(seg, direction, mine, peer)
        raw_window = seg.window
        window = self._scaled(raw_window, flags, mine)

        tags = self._sequence_tags(seg, mine, peer)
        if flags & ACK:
            self._check_acked_unseen(seg, peer, tags)
        self._check_retransmission(seg, mine, peer, tags)
        self._advance(seg, mine, tags)

        if flags & ACK:
            mine.last_ack = seg.ack
            mine.last_ack_ts = seg.ts
            self._take_rtt_sample(seg.ack, seg.ts, peer)
        mine.raw_window = raw_window
        mine.window = window
        if not tags:
            # Most segments get no flag: nothing to count, no retransmission, no zero window.
            mine.last_tags = ()
            self._zeek.observe(flags, seg.payload_len, direction, False, False)
            return ()
        result = tuple(tags)
        mine.last_tags = result
        for tag in result:
            counter = _COUNTER_OF_TAG.get(tag)
            if counter is not None:
                mine.counts[counter] += 1
        if any(tag.startswith(DUP_ACK_PREFIX) for tag in result):
            mine.counts["duplicate_acks"] += 1
        retransmitted = any(tag in RETRANSMISSION_TAGS for tag in result)
        self._zeek.observe(
            flags,
            seg.payload_len,
            direction,
            retransmitted and seg.payload_len > 0,
            ZERO_WINDOW in result,
        )
        return result

    def stats(self, direction: Direction) -> DirectionStats:
        """Return the counters, windows and RTT of the segments sent in ``direction``."""
        side = self._sides[direction]
        peer = self._sides[direction.reverse]
        in_flight = 0
        if side.next_seq is not None and peer.last_ack is not None:
            in_flight = max(seq_diff(side.next_seq, peer.last_ack), 0)
        return DirectionStats(
            **side.counts,
            window=side.window,
            raw_window=side.raw_window or 0,
            window_scale=side.shift,
            bytes_in_flight=in_flight,
            rtt_min=side.rtt_min,
            rtt_smoothed=side.rtt_smoothed,
            rtt_max=side.rtt_max,
        )

    def zeek_state(self) -> str:
        """Return Zeek's conn_state code (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH)."""
        return self._zeek.state()

    def history(self) -> str:
        """Return Zeek's history letters. T and W repeat at counts 1, 10, 100 and so on, the others appear once."""
        return self._zeek.history()

    @property
    def retransmissions(self) -> int:
        """Retransmissions of all three kinds, both directions."""
        return sum(
            side.counts["retransmissions"]
            + side.counts["fast_retransmissions"]
            + side.counts["spurious_retransmissions"]
            for side in self._sides.values()
        )

    # Handshake and windows.

    def _note_handshake(self, seg: Segment, direction: Direction, mine: _Side, peer: _Side) -> None:
        flags = seg.flags
        if flags & SYN and not flags & RST:
            if mine.syn_shift is None:
                mine.syn_shift = parse_options(seg.options).window_scale
            if direction is _C2S and not flags & ACK:
                if self.initial_rtt is None:
                    # The most recent SYN, as tshark times its iRTT: after a lost SYN the
                    # handshake's RTT runs from the retransmitted one, not from the first.
                    self._syn_ts = seg.ts
            elif flags & ACK and not self._synack_seen:
                self._synack_seen = True
                self._set_shifts(mine, peer)
        elif (
            self.initial_rtt is None
            and self._synack_seen
            and self._syn_ts is not None
            and direction is _C2S
            and flags & ACK
        ):
            self.initial_rtt = seg.ts - self._syn_ts

    def _set_shifts(self, server: _Side, client: _Side) -> None:
        """Fix both shifts when the SYN-ACK arrives (RFC 7323, section 2.2)."""
        client_syn_seen = self._syn_ts is not None
        if server.syn_shift is None or (client_syn_seen and client.syn_shift is None):
            # Either side without the option turns scaling off both ways.
            server.shift = 0
            client.shift = 0
            return
        server.shift = server.syn_shift
        # Without the client's SYN its shift stays unknown.
        client.shift = client.syn_shift

    @staticmethod
    def _scaled(raw_window: int, flags: int, side: _Side) -> int | None:
        if flags & SYN:
            return raw_window  # RFC 7323, section 2.2: a SYN's window is never scaled
        if side.shift is None:
            return None
        return raw_window << side.shift

    # The checks, in Wireshark's order.

    def _sequence_tags(self, seg: Segment, mine: _Side, peer: _Side) -> list[str]:
        tags: list[str] = []
        seq = seg.seq
        length = seg.payload_len
        control = seg.flags & _CONTROL
        expected = mine.next_seq
        if length == 1 and expected is not None and seq == expected and peer.raw_window == 0:
            tags.append(ZERO_WINDOW_PROBE)
            mine.dup_acks = 0
            return tags

        if seg.window == 0 and not control:
            tags.append(ZERO_WINDOW)
        if expected is not None and seq_diff(seq, expected) > 0 and not seg.flags & RST:
            tags.append(LOST_SEGMENT)
        if expected is not None and length <= 1 and not control and seq == seq_add(expected, -1):
            tags.append(KEEP_ALIVE)

        same_position = (
            length == 0
            and not control
            and expected is not None
            and seq == expected
            and seg.ack == mine.last_ack
        )
        if (
            same_position
            and seg.window != 0
            and mine.raw_window is not None
            and seg.window != mine.raw_window
        ):
            tags.append(WINDOW_UPDATE)
        if length > 0 and not control and self._fills_window(seq, length, peer):
            tags.append(WINDOW_FULL)

        if not same_position or seg.window != mine.raw_window:
            if seg.ack != mine.last_ack:
                # tshark 4.0 keeps counting duplicates across data segments
                # that repeat the ACK, so only a new ACK number restarts it.
                mine.dup_acks = 0
            return tags
        if KEEP_ALIVE in peer.last_tags and seg.window != 0:
            tags.append(KEEP_ALIVE_ACK)
            mine.dup_acks = 0
        elif ZERO_WINDOW_PROBE in peer.last_tags and seg.window == 0:
            tags.append(ZERO_WINDOW_PROBE_ACK)
            mine.dup_acks = 0
        elif seg.window != 0:
            # A duplicate ACK after an ACKed unseen flag (-1) is the first one.
            mine.dup_acks = 1 if mine.dup_acks < 0 else mine.dup_acks + 1
            tags.append(f"{DUP_ACK_PREFIX}{mine.dup_acks}")
        return tags

    @staticmethod
    def _fills_window(seq: int, length: int, peer: _Side) -> bool:
        # NOTE: without a known scale this check is skipped, while Wireshark
        # then compares against the unscaled field.
        if peer.window is None or peer.window == 0 or peer.last_ack is None:
            return False
        return seq_add(seq, length) == seq_add(peer.last_ack, peer.window)

    @staticmethod
    def _check_acked_unseen(seg: Segment, peer: _Side, tags: list[str]) -> None:
        if peer.max_to_ack is None or seq_diff(seg.ack, peer.max_to_ack) <= 0:
            return
        if peer.next_seq is not None and seq_diff(peer.next_seq, peer.max_to_ack) > 0:
            # The peer sent data past a hole since its contiguous range last
            # moved, so the range restarts at its highest sequence number seen
            # and the ACK is flagged whatever the peer's duplicate count.
            peer.max_to_ack = peer.next_seq
            tags.append(ACKED_UNSEEN)
            return
        # The peer sent nothing new. A duplicate count of -1 marks the stretch
        # as flagged, and a peer that is sending duplicate ACKs gets no flag
        # either, as in tshark 4.0.17.
        if peer.dup_acks == 0:
            tags.append(ACKED_UNSEEN)
        peer.dup_acks = -1

    def _check_retransmission(
        self, seg: Segment, mine: _Side, peer: _Side, tags: list[str]
    ) -> None:
        length = seg.payload_len
        expected = mine.next_seq
        if expected is None or KEEP_ALIVE in tags or not (length > 0 or seg.flags & (SYN | FIN)):
            return
        end = seq_add(seg.seq, length)
        control_length = 1 if seg.flags & (SYN | FIN) else 0
        already_acked = (
            length > 0 and peer.last_ack is not None and seq_diff(end, peer.last_ack) <= 0
        )
        if seq_diff(seg.seq, expected) >= 0 and not already_acked:
            return
        if already_acked:
            # Data the peer had acknowledged, even when it is past the highest
            # sequence number seen because the capture reordered it after the ACK.
            tags.append(SPURIOUS_RETRANSMISSION)
        elif (
            _micros(seg.ts - peer.last_ack_ts) < _micros(FAST_RETRANSMISSION_WINDOW)
            # tshark 4.0.17 reads the -1 left by an ACKed unseen flag as a
            # large unsigned count, so it also passes the two-duplicates test.
            and (peer.dup_acks >= 2 or peer.dup_acks < 0)
            and peer.last_ack == seg.seq
        ):
            tags.append(FAST_RETRANSMISSION)
        elif (
            _micros(seg.ts - mine.next_seq_ts) < _micros(self._out_of_order_window())
            and seq_add(end, control_length) != expected
        ):
            tags.append(OUT_OF_ORDER)
            return
        else:
            tags.append(RETRANSMISSION)
        if mine.karn_limit is None or seq_diff(end, mine.karn_limit) > 0:
            mine.karn_limit = end

    def _out_of_order_window(self) -> float:
        return self.initial_rtt if self.initial_rtt else DEFAULT_OUT_OF_ORDER_WINDOW

    @staticmethod
    def _advance(seg: Segment, mine: _Side, tags: list[str]) -> None:
        """Move ``next_seq`` past this segment, unless it is a zero-window probe."""
        if ZERO_WINDOW_PROBE in tags:
            return
        end = seq_add(seg.seq, seg.payload_len + (1 if seg.flags & (SYN | FIN) else 0))
        consumes = seg.payload_len > 0 or seg.flags & (SYN | FIN)
        if consumes and (mine.next_seq is None or seq_diff(end, mine.next_seq) > 0):
            mine.next_seq = end
            mine.next_seq_ts = seg.ts
            if len(mine.unacked) >= MAX_UNACKED_SEGMENTS:
                mine.unacked.popleft()
            mine.unacked.append((end, seg.ts))
        elif LOST_SEGMENT in tags:
            # An ACK past a hole moves next_seq too, as tshark 4.0 does, so the
            # data that follows it is not reported as a second hole.
            mine.next_seq = end
            mine.next_seq_ts = seg.ts
        elif mine.next_seq is None and not seg.flags & RST:
            # A side that has sent only ACKs so far expects its own sequence number next.
            mine.next_seq = seg.seq
            mine.next_seq_ts = seg.ts
        if mine.next_seq is None:
            return
        # Only a segment that continues the contiguous range extends it, so an
        # ACK of data beyond a hole in this direction is still flagged.
        if mine.max_to_ack is None or seg.seq == mine.max_to_ack:
            mine.max_to_ack = mine.next_seq

    @staticmethod
    def _take_rtt_sample(ack: int, ts: float, peer: _Side) -> None:
        """Remove the peer's segments that ``ack`` covers and keep the newest one's RTT."""
        newest: tuple[int, float] | None = None
        queue = peer.unacked
        while queue and seq_diff(queue[0][0], ack) <= 0:
            newest = queue.popleft()
        if newest is None:
            return
        end, sent = newest
        if peer.karn_limit is not None and seq_diff(end, peer.karn_limit) <= 0:
            return  # Karn's rule: the ACK may be for either copy
        peer.add_rtt_sample(ts - sent)


def _micros(seconds: float) -> int:
    """Round a time difference to whole microseconds, the resolution of pcap timestamps.

    tshark compares these times as integers, so a gap exactly equal to the
    threshold is not below it. Computed from float timestamps near 1.8e9 s, whose
    resolution is about 0.24 us, the same gap can come out a fraction of a
    microsecond below and flip a Retransmission to Out-Of-Order.
    """
    return round(seconds * 1_000_000)
