"""One TCP connection: which side is the client, the handshake and teardown
stage, and a ``StreamReassembler`` per direction.

The caller keeps a table of connections keyed by address, port and VLAN
tuple. For the first segment of a new key it calls ``TcpConnection.open``
and then passes that same segment, and every later one, to ``receive``.
All times are capture timestamps. Must not import anything that does I/O.
"""

from __future__ import annotations

import logging
from enum import Enum

from smtptop.decode.segment import ACK, FIN, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.tcp.analysis import KEEP_ALIVE, TcpAnalysis
from smtptop.tcp.reassembly import DEFAULT_ACK_GRACE, DEFAULT_MAX_HELD_BYTES, StreamEvent, StreamReassembler

logger = logging.getLogger(__name__)

Endpoint = tuple[bytes, int]  # packed IP address, port


class TcpStage(Enum):
    """The stage of a connection, as far as the capture shows it."""

    SYN_SENT = "SYN sent"
    SYN_ACK = "SYN-ACK"
    ESTABLISHED = "established"
    CLOSING = "closing"
    CLOSED = "closed (FIN)"
    RESET = "reset (RST)"
    REFUSED = "refused"
    MIDSTREAM = "mid-stream"  # the handshake was not captured
    # A new connection on the same addresses and ports began before this one was seen to end,
    # because its FIN or RST was not captured.
    REUSED = "ports reused"

    # Members are singletons: identity hashing is correct and runs in C, not in Enum's __hash__.
    __hash__ = object.__hash__


# Module names for the members and directions: on Python 3.11 reading an Enum member
# through its class costs several times a global lookup, and these run per segment.
_SYN_SENT = TcpStage.SYN_SENT
_SYN_ACK = TcpStage.SYN_ACK
_ESTABLISHED = TcpStage.ESTABLISHED
_CLOSING = TcpStage.CLOSING
_CLOSED = TcpStage.CLOSED
_RESET = TcpStage.RESET
_REFUSED = TcpStage.REFUSED
_MIDSTREAM = TcpStage.MIDSTREAM
_C2S = Direction.CLIENT_TO_SERVER
_S2C = Direction.SERVER_TO_CLIENT
_FIN_BIT = {_C2S: 1, _S2C: 2}
_BOTH_FINS = 3
_ENDED = frozenset((TcpStage.CLOSED, TcpStage.RESET, TcpStage.REFUSED, TcpStage.REUSED))
_HANDSHAKE = frozenset((TcpStage.SYN_SENT, TcpStage.SYN_ACK))


class TcpConnection:
    """Track one TCP connection from its segments (see the module docstring)."""

    __slots__ = (
        "_fins",
        "_started",
        "_streams",
        "analysis",
        "client",
        "end_ts",
        "established_ts",
        "last_tags",
        "last_ts",
        "segments",
        "server",
        "stage",
        "syn_ts",
        "synack_ts",
    )

    def __init__(
        self,
        client: Endpoint,
        server: Endpoint,
        max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
        ack_grace: float = DEFAULT_ACK_GRACE,
    ) -> None:
        self.client = client
        self.server = server
        self.stage = _MIDSTREAM
        self.syn_ts: float | None = None
        self.synack_ts: float | None = None
        self.established_ts: float | None = None  # the handshake-completing ACK, or the first segment mid-stream
        self.end_ts: float | None = None  # when the connection reached CLOSED, RESET or REFUSED
        self.last_ts: float | None = None
        self.segments = 0
        self.analysis = TcpAnalysis()
        self.last_tags: tuple[str, ...] = ()  # the analysis flags of the last segment received
        self._started = False
        # The directions that sent a FIN, as bits: an int, unlike a set, is not one more
        # object per connection for the garbage collector to traverse.
        self._fins = 0
        self._streams = {
            _C2S: StreamReassembler(max_held_bytes, ack_grace),
            _S2C: StreamReassembler(max_held_bytes, ack_grace),
        }

    @classmethod
    def open(
        cls,
        first: Segment,
        server_ports: frozenset[int],
        max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
        ack_grace: float = DEFAULT_ACK_GRACE,
    ) -> TcpConnection:
        """Create a connection from its first captured segment, deciding which side is the client.

        A SYN without ACK comes from the client and a SYN+ACK from the server
        (RFC 9293, section 3.5). Otherwise the side whose port is in
        ``server_ports`` is the server, and failing that, the lower port.
        """
        sender = (first.src, first.sport)
        receiver = (first.dst, first.dport)
        if first.flags & SYN:
            sender_is_client = not first.flags & ACK
        elif (first.dport in server_ports) != (first.sport in server_ports):
            sender_is_client = first.dport in server_ports
        else:
            sender_is_client = first.dport < first.sport
        if sender_is_client:
            return cls(sender, receiver, max_held_bytes, ack_grace)
        return cls(receiver, sender, max_held_bytes, ack_grace)

    def stream(self, direction: Direction) -> StreamReassembler:
        """Return the reassembler of one direction, for its counters."""
        return self._streams[direction]

    def direction_of(self, seg: Segment) -> Direction:
        """Return which way ``seg`` travels."""
        if seg.src == self.client[0] and seg.sport == self.client[1]:
            return _C2S
        return _S2C

    def receive(self, seg: Segment) -> tuple[Direction, list[StreamEvent]]:
        """Take one segment of this connection; return its direction and the stream events it released."""
        direction = self.direction_of(seg)
        flags = seg.flags
        self.segments += 1
        self.last_ts = seg.ts
        self._update_stage(direction, flags, seg.ts)
        self.last_tags = self.analysis.observe(seg, direction)

        stream = self._streams[direction]
        if flags & ACK:
            self._streams[direction.reverse].note_peer_ack(seg.ack, seg.ts)
        if flags & RST:
            # RFC 9293, section 3.5.3: a reset carries no stream data (any
            # payload is diagnostic text), so it is not reassembled.
            return direction, []
        if KEEP_ALIVE in self.last_tags:
            # A keep-alive repeats the byte before the next one expected, or
            # carries none, so it brings nothing to the stream.
            return direction, []
        events = stream.add(
            seg.seq,
            seg.payload,
            seg.payload_len,
            seg.ts,
            syn=bool(flags & SYN),
            fin=bool(flags & FIN),
        )
        return direction, events

    def expire(self, now: float) -> list[tuple[Direction, StreamEvent]]:
        """Release holes in either direction that the peer acknowledged more than the grace period ago."""
        released: list[tuple[Direction, StreamEvent]] = []
        for direction, stream in self._streams.items():
            released.extend((direction, event) for event in stream.expire(now))
        return released

    def flush(self, ts: float) -> list[tuple[Direction, StreamEvent]]:
        """Release every remaining hole, at connection end or end of input."""
        released: list[tuple[Direction, StreamEvent]] = []
        for direction, stream in self._streams.items():
            released.extend((direction, event) for event in stream.flush(ts))
        return released

    def relative_seq(self, direction: Direction, seq: int) -> int:
        """Return ``seq`` relative to that side's ISN (0 is the SYN), as Wireshark shows it.

        For a side whose SYN was not captured, the first segment seen is at 1.
        Before any segment of that side, ``seq`` is returned unchanged.
        """
        isn = self._streams[direction].isn
        if isn is None:
            return seq
        return (seq - isn) & 0xFFFFFFFF

    def starts_new_connection(self, seg: Segment) -> bool:
        """Return True when ``seg``, a SYN without ACK, opens a new connection on these ports.

        A SYN with another sequence number than the one its sender started with
        opens a new connection, and tshark 4.0 gives it a new tcp.stream too.
        With the same number it is the SYN sent again.
        """
        isn = self._streams[self.direction_of(seg)].isn
        return isn is not None and seg.seq != isn

    def end_for_reuse(self, ts: float) -> None:
        """End this connection because a new one took its ports (see TcpStage.REUSED)."""
        if not self.closed:
            self.stage = TcpStage.REUSED
            self.end_ts = ts

    @property
    def retransmissions(self) -> int:
        """Retransmissions, fast and spurious retransmissions, both directions, as the analysis flags them."""
        return self.analysis.retransmissions

    @property
    def out_of_order(self) -> int:
        """Segments that arrived after a hole, both directions."""
        return sum(stream.out_of_order for stream in self._streams.values())

    @property
    def gap_bytes(self) -> int:
        """Bytes reported as lost or not captured, both directions."""
        return sum(stream.gap_bytes for stream in self._streams.values())

    @property
    def has_pending_holes(self) -> bool:
        """True while either direction keeps segments behind a hole."""
        streams = self._streams
        return streams[_C2S].has_hole or streams[_S2C].has_hole

    @property
    def closed(self) -> bool:
        """True once FINs went both ways or a RST was seen."""
        return self.stage in _ENDED

    def _update_stage(self, direction: Direction, flags: int, ts: float) -> None:
        first = not self._started
        self._started = True
        from_client = direction is _C2S

        if flags & RST:
            # A reset in reply to a SYN means no process listens on that port
            # (RFC 9293, section 3.10.7.3).
            if self.stage is _SYN_SENT and not from_client:
                self.stage = _REFUSED
            else:
                self.stage = _RESET
            self.end_ts = ts
            return
        if flags & SYN:
            self._on_syn(from_client, flags, ts)
            return
        if first:
            self.established_ts = ts
        elif flags & ACK and self.stage in _HANDSHAKE:
            # The client's ACK of the SYN-ACK, or any later segment when the
            # capture missed that ACK.
            self.stage = _ESTABLISHED
            self.established_ts = ts
        if flags & FIN:
            self._on_fin(direction, ts)

    def _on_syn(self, from_client: bool, flags: int, ts: float) -> None:
        if from_client and not flags & ACK:
            if self.syn_ts is None:
                self.syn_ts = ts
            if self.stage in (_MIDSTREAM, _REFUSED) and self.synack_ts is None:
                self.stage = _SYN_SENT
        elif not from_client and flags & ACK:
            if self.synack_ts is None:
                self.synack_ts = ts
            # A SYN-ACK after a reset of the SYN means the reset was injected
            # or stale, so the handshake goes on.
            if self.stage in (_MIDSTREAM, _SYN_SENT, _REFUSED, _RESET):
                if self.established_ts is None:
                    self.stage = _SYN_ACK
                    self.end_ts = None
        if flags & FIN:
            self._on_fin(_C2S if from_client else _S2C, ts)

    def _on_fin(self, direction: Direction, ts: float) -> None:
        self._fins |= _FIN_BIT[direction]
        if self.stage in (_RESET, _REFUSED):
            return
        if self._fins == _BOTH_FINS:
            if self.stage is not _CLOSED:
                self.stage = _CLOSED
                self.end_ts = ts
        else:
            self.stage = _CLOSING
