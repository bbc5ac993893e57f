"""One conversation as the engine keeps it: a TCP connection, its SMTP dialogue, its packets.

A conversation is decided to be SMTP by its ports or by its first bytes.
Until then the stream items are held in arrival order and replayed into
the SMTP tracker once it exists, so no byte sent before the decision is lost.
"""

from __future__ import annotations

from smtptop.decode.segment import ACK, FIN, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationRow, TranscriptLine
from smtptop.smtp.conversation import SmtpConversation
from smtptop.smtp.events import (
    Anomaly,
    BodyEnd,
    Command,
    ConnectionEnd,
    GapNoted,
    Reply,
    SaslResponse,
    TlsStarted,
)
from smtptop.tcp.connection import TcpConnection
from smtptop.tcp.events import StreamData, StreamGap
from smtptop.text.addresses import format_endpoint

StreamItem = StreamData | StreamGap
# VLAN tags, then the two (address, port) ends in sorted order, so both directions share a key.
FlowKey = tuple[tuple[int, ...], tuple[bytes, int], tuple[bytes, int]]

# How many first bytes of a chunk are enough to recognise SMTP by content,
# and how far into each direction a conversation may still turn out to be SMTP.
SNIFF_BYTES = 5
SNIFF_LIMIT = 512
GREETING_PREFIXES = (b"220 ", b"220-")
HELLO_PREFIXES = (b"EHLO", b"HELO")


class PacketRecord:
    """A packet of a conversation, kept for the packet list; ``frame`` goes when the store is full."""

    __slots__ = ("frame_no", "ts", "direction", "flags", "seq", "ack", "length", "window", "summary", "frame")

    def __init__(self, seg: Segment, direction: Direction, frame: bytes | None) -> None:
        self.frame_no = seg.frame_no
        self.ts = seg.ts
        self.direction = direction
        self.flags = seg.flags
        self.seq = seg.seq
        self.ack = seg.ack
        self.length = seg.payload_len
        self.window = seg.window
        self.summary = ""
        self.frame = frame


class Conversation:
    """The engine's state for one TCP connection that may carry SMTP."""

    def __init__(self, key: int, tcp: TcpConnection, is_smtp: bool | None, reveal_secrets: bool) -> None:
        self.key = key
        self.tcp = tcp
        self.is_smtp = is_smtp  # None while undecided
        self.reveal_secrets = reveal_secrets
        self.smtp: SmtpConversation | None = None
        self.packets: list[PacketRecord] = []
        self.transcript: list[TranscriptLine] = []
        self.secrets: set[bytes] = set()  # AUTH arguments and SASL responses as sent, masked in frames
        self.replies: list[Reply] = []  # every complete reply in order, the greeting and unsolicited ones too
        self.start = 0.0
        self.last_seen = 0.0
        self.payload_bytes = 0
        self.truncated_frames = 0
        self.finished = False  # reported to the headless output
        self.queued_for_eviction = False
        self.smtp_closed = False
        self.flow_key: FlowKey | None = None
        self.dirty = True
        self.row: ConversationRow | None = None
        self._pending: list[tuple[Direction, StreamItem, PacketRecord]] = []
        self._first_bytes = {Direction.CLIENT_TO_SERVER: b"", Direction.SERVER_TO_CLIENT: b""}
        self._sniffed = {Direction.CLIENT_TO_SERVER: 0, Direction.SERVER_TO_CLIENT: 0}
        if is_smtp:
            self.smtp = SmtpConversation(reveal_secrets=reveal_secrets)

    @property
    def client(self) -> str:
        return format_endpoint(*self.tcp.client)

    @property
    def server(self) -> str:
        return format_endpoint(*self.tcp.server)

    def add_packet(self, seg: Segment, direction: Direction, items: list[StreamItem], frame: bytes | None) -> PacketRecord:
        """Record one packet and hand its stream items to the SMTP tracker (or hold them until decided)."""
        record = PacketRecord(seg, direction, frame)
        self.packets.append(record)
        if not self.start:
            self.start = seg.ts
        self.last_seen = seg.ts
        self.payload_bytes += seg.payload_len
        if seg.truncated:
            self.truncated_frames += 1
        self.dirty = True
        if items:
            self.deliver(direction, items, record)
        if not record.summary:
            record.summary = _bare_summary(seg, direction, self)
        return record

    def deliver(self, direction: Direction, items: list[StreamItem], record: PacketRecord) -> None:
        if self.is_smtp is None:
            for item in items:
                self._pending.append((direction, item, record))
                if isinstance(item, StreamData) and self._sniff(direction, item.data):
                    return
            return
        if self.smtp is None:
            return
        summaries = [self._feed(direction, item) for item in items]
        _merge_summary(record, summaries)

    def expire(self, items: list[tuple[Direction, StreamItem]]) -> None:
        """Feed items the reassembler released late (a hole given up, or the end of input)."""
        if not items:
            return
        self.dirty = True
        record = self.packets[-1] if self.packets else None
        for direction, item in items:
            if self.is_smtp is None and record is not None:
                self._pending.append((direction, item, record))
            elif self.smtp is not None:
                self._feed(direction, item)

    def _sniff(self, direction: Direction, data: bytes) -> bool:
        """Decide from a chunk whether this is SMTP; return True once decided.

        SMTP starts where a server chunk begins with a 220 greeting or a
        client chunk with EHLO/HELO, within the first ``SNIFF_LIMIT`` bytes
        of that direction. Looking past the first byte lets SMTP be found
        behind a short prefix such as a SOCKS5 handshake; the prefix is
        skipped. The stream's first bytes are also collected across chunks,
        for a greeting that arrives split.
        """
        offset = self._sniffed[direction]
        self._sniffed[direction] = offset + len(data)
        head = data[:SNIFF_BYTES]
        if offset < SNIFF_BYTES:
            head = self._first_bytes[direction] = (self._first_bytes[direction] + data)[:SNIFF_BYTES]
        if offset < SNIFF_LIMIT and _starts_smtp(direction, head if offset < SNIFF_BYTES else data):
            start = len(self._pending) - 1 if offset >= SNIFF_BYTES else 0
            self._decide(True, start)
            return True
        if self._sniffed[direction] >= SNIFF_LIMIT:
            self._decide(False, 0)
            return True
        return False

    def _decide(self, is_smtp: bool, start: int) -> None:
        """Settle what the conversation is; for SMTP, replay the held items from ``start`` on."""
        self.is_smtp = is_smtp
        pending, self._pending = self._pending, []
        if not is_smtp:
            return
        self.smtp = SmtpConversation(reveal_secrets=self.reveal_secrets)
        skipped = sum(len(item.data) for _, item, _ in pending[:start] if isinstance(item, StreamData))
        if skipped:
            ts = pending[start][1].ts
            self.transcript.append(TranscriptLine(ts, None, f"[{skipped:,} bytes before the SMTP dialogue skipped]", None))
        by_record: dict[int, list[str]] = {}
        for direction, item, record in pending[start:]:
            by_record.setdefault(id(record), []).append(self._feed(direction, item))
        for record in {id(r): r for _, _, r in pending[start:]}.values():
            record.summary = ""
            _merge_summary(record, by_record[id(record)])

    def give_up_sniffing(self) -> None:
        """Decide "not SMTP" for a connection that closed before its bytes showed SMTP."""
        if self.is_smtp is None:
            self._decide(False, 0)

    def _feed(self, direction: Direction, item: StreamItem) -> str:
        """Feed one stream item to the SMTP tracker; return a one-line summary of what it completed."""
        assert self.smtp is not None
        if isinstance(item, StreamGap):
            events = self.smtp.gap(direction, item.length, item.ts)
        else:
            events = self.smtp.receive(direction, item.data, item.ts)
        reveal = self.reveal_secrets
        for event in events:
            self._transcribe(event)
        if not events:
            return ""
        first = events[0].summary(reveal)
        return first if len(events) == 1 else f"{first} (+{len(events) - 1} more)"

    def _transcribe(self, event: object) -> None:
        reveal = self.reveal_secrets
        if isinstance(event, (Command, SaslResponse)):
            self._remember_secret(event)
            self.transcript.append(TranscriptLine(event.ts, Direction.CLIENT_TO_SERVER, event.summary(reveal), None))
        elif isinstance(event, Reply):
            self.replies.append(event)
            latency = event.ts - event.command.ts if event.command is not None else None
            if event.is_greeting and self.tcp.established_ts is not None:
                latency = event.ts - self.tcp.established_ts
            for number, line in enumerate(event.lines):
                self.transcript.append(
                    TranscriptLine(event.ts, Direction.SERVER_TO_CLIENT, line, latency if number == 0 else None)
                )
        elif isinstance(event, BodyEnd):
            self.transcript.append(TranscriptLine(event.ts, Direction.CLIENT_TO_SERVER, f"<{event.summary()}>", None))
        elif isinstance(event, (GapNoted, TlsStarted, Anomaly, ConnectionEnd)):
            self.transcript.append(TranscriptLine(event.ts, None, event.summary(reveal), None))

    def _remember_secret(self, event: Command | SaslResponse) -> None:
        if isinstance(event, SaslResponse):
            secret = event.record.arg
        elif event.verb == "AUTH":
            # The first word is the mechanism; what follows is the initial response (RFC 4954, section 4).
            secret = event.arg.partition(" ")[2].strip()
        else:
            return
        if len(secret) >= 2 and secret != "*":
            self.secrets.add(secret.encode("latin-1", "replace"))

    def masked_frame(self, frame: bytes | None) -> bytes | None:
        """Return the frame with AUTH secrets replaced by '*', unless the user asked to reveal them.

        NOTE: a secret split across two segments is masked in neither, because
        each frame holds only part of it.
        """
        if frame is None or self.reveal_secrets or not self.secrets:
            return frame
        for secret in self.secrets:
            if secret in frame:
                frame = frame.replace(secret, b"*" * len(secret))
        return frame

    def close(self, ts: float) -> None:
        """Tell the SMTP tracker the connection ended (FIN both ways or RST); once only."""
        if self.smtp is not None and not self.smtp_closed:
            self.smtp_closed = True
            for event in self.smtp.close(ts):
                self._transcribe(event)

    def finish(self, ts: float) -> None:
        """Release every held byte at the end of the input; undecided conversations stay undecided."""
        self.expire(self.tcp.flush(ts))


def _starts_smtp(direction: Direction, head: bytes) -> bool:
    if direction is Direction.SERVER_TO_CLIENT:
        return head.startswith(GREETING_PREFIXES)
    return head[:4].upper() in HELLO_PREFIXES


def _merge_summary(record: PacketRecord, summaries: list[str]) -> None:
    parts = [summary for summary in summaries if summary]
    if parts:
        record.summary = "; ".join(parts) if len(parts) <= 2 else f"{parts[0]}; … ({len(parts)} items)"


def _bare_summary(seg: Segment, direction: Direction, conversation: Conversation) -> str:
    """Describe a packet that completed nothing: a handshake, a bare ACK, or data still in progress."""
    flags = seg.flags
    if flags & RST:
        return "[RST]"
    if flags & SYN:
        return "[SYN, ACK]" if flags & ACK else "[SYN]"
    if seg.payload_len == 0:
        return "[FIN, ACK]" if flags & FIN else "[ACK]"
    smtp = conversation.smtp
    if smtp is not None and smtp.tls_mode.value != "none":
        return f"TLS data, {seg.payload_len} bytes"
    return f"data, {seg.payload_len} bytes"
