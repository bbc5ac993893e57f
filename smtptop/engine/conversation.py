"""One conversation as the engine keeps it: a TCP connection, its SMTP dialogue, its packets.

A conversation is decided to be SMTP by its ports or by its first bytes.
Until then the stream items are held in arrival order and replayed into
the SMTP tracker once it exists, so no byte sent before the decision is lost.
"""

from __future__ import annotations

from dataclasses import replace

from smtptop.decode.segment import ACK, FIN, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationRow, TranscriptLine
from smtptop.engine.waits import SideTrail, Wait, current_wait_fields, note_segment
from smtptop.metrics.traffic import Side, TrafficMeter
from smtptop.smtp.commands import parse_bdat
from smtptop.smtp.conversation import SmtpConversation
from smtptop.smtp.events import (
    Anomaly,
    BodyEnd,
    Command,
    CommandKind,
    CommandRecord,
    ConnectionEnd,
    Event,
    GapNoted,
    Reply,
    SaslResponse,
    TlsStarted,
    TlsStep,
)
from smtptop.tcp.connection import TcpConnection
from smtptop.tcp.events import StreamData, StreamGap
from smtptop.text.addresses import format_address, format_endpoint
from smtptop.tls.keys import TlsKeys

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

    __slots__ = (
        "ack",
        "direction",
        "flags",
        "frame",
        "frame_no",
        "length",
        "revealed_summary",
        "seq",
        "summary",
        "tags",
        "ts",
        "window",
        "wire_len",
    )

    def __init__(self, seg: Segment, direction: Direction, frame: bytes | None) -> None:
        self.frame_no = seg.frame_no
        self.ts = seg.ts
        self.direction = direction
        self.flags = seg.flags
        self.seq = seg.seq
        self.ack = seg.ack
        self.length = seg.payload_len
        self.window = seg.window
        self.summary = ""  # AUTH secrets masked
        self.revealed_summary: str | None = None  # the summary with secrets shown, when it differs
        self.frame = frame
        self.wire_len = len(frame) if frame is not None else 0  # the frame's length on the wire; the engine sets it
        # TCP analysis tags in Wireshark's words, the connection's tuple for this segment.
        self.tags: tuple[str, ...] = ()


class Conversation:
    """The engine's state for one TCP connection that may carry SMTP."""

    __slots__ = (
        "_body_start",
        "_first_bytes",
        "_handshake_time_set",
        "_metered_connect",
        "_metered_open",
        "_pending",
        "_sniffed",
        "client",
        "dirty",
        "errors",
        "finished",
        "flow_key",
        "is_smtp",
        "key",
        "last_seen",
        "longest_wait",
        "meter",
        "packets",
        "packets_not_kept",
        "payload_bytes",
        "queued_for_eviction",
        "replies",
        "reported_at",
        "reveal_secrets",
        "row",
        "secret_lines",
        "secrets",
        "server",
        "smtp",
        "smtp_closed",
        "start",
        "tcp",
        "tls_keys",
        "trails",
        "transcript",
        "truncated_frames",
        "wait",
    )

    def __init__(
        self,
        key: int,
        tcp: TcpConnection,
        is_smtp: bool | None,
        reveal_secrets: bool,
        meter: TrafficMeter | None = None,
        tls_keys: TlsKeys | None = None,
    ) -> None:
        self.key = key
        self.tls_keys = tls_keys
        self.tcp = tcp
        self.is_smtp = is_smtp  # None while undecided
        self.reveal_secrets = reveal_secrets  # for the headless output; the screens follow Engine.reveal_secrets
        self.meter = meter
        self.client = format_endpoint(*tcp.client)
        self.server = format_endpoint(*tcp.server)
        self.smtp: SmtpConversation | None = None
        self.packets: list[PacketRecord] = []
        self.packets_not_kept = 0  # records the engine dropped from the middle of ``packets`` to bound it
        self.transcript: list[TranscriptLine] = []  # AUTH secrets masked
        self.secret_lines: dict[int, Command | SaslResponse] = {}  # transcript index to the event it masks
        self.secrets: set[bytes] = set()  # AUTH arguments and SASL responses as sent, masked in frames
        self.replies: list[Reply] = []  # every complete reply in order, the greeting and unsolicited ones too
        self.start = 0.0
        self.last_seen = 0.0
        self.payload_bytes = 0
        self.truncated_frames = 0
        self.errors = 0  # 4xx and 5xx replies
        self.trails = {Direction.CLIENT_TO_SERVER: SideTrail(), Direction.SERVER_TO_CLIENT: SideTrail()}
        self.wait: Wait | None = None  # the move owed after the newest packet
        self.longest_wait = 0.0  # seconds, the longest wait that has ended
        self.reported_at: float | None = None  # the engine's clock when the headless output got it
        self.finished = False  # reported to the headless output
        self.queued_for_eviction = False
        self.smtp_closed = False
        self.flow_key: FlowKey | None = None
        self.dirty = True
        self.row: ConversationRow | None = None
        self._pending: list[tuple[Direction, StreamItem, PacketRecord]] = []
        # Set up by the first ``_sniff``: a conversation known by its port never needs them.
        self._first_bytes: dict[Direction, bytes] | None = None
        self._sniffed: dict[Direction, int] | None = None
        self._handshake_time_set = False
        self._metered_open = False
        self._metered_connect = False
        self._body_start: float | None = None  # the 354 reply of the current DATA, for the body time
        if is_smtp:
            self.smtp = self._new_smtp()

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
        note_segment(self.trails, direction, seg)
        if not self._handshake_time_set:
            self._tell_established()
        if items:
            self.deliver(direction, items, record)
        if not record.summary:
            record.summary = _bare_summary(seg, direction, self)
        if not self._metered_connect:
            self._meter_connection()
        self.note_moves(seg.ts)
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
        _summarize(record, [self._feed(direction, item, record.frame_no) for item in items])

    def expire(self, items: list[tuple[Direction, StreamItem]], ts: float) -> None:
        """Feed items the reassembler released late (a hole given up, or the end of input) at ``ts``.

        No packet delivered these bytes, so their transcript lines get no frame number.
        """
        if not items:
            return
        self.dirty = True
        record = self.packets[-1] if self.packets else None
        for direction, item in items:
            if self.is_smtp is None and record is not None:
                self._pending.append((direction, item, record))
            elif self.smtp is not None:
                self._feed(direction, item, None)
        self.note_moves(ts)

    def note_moves(self, ts: float) -> None:
        """Update the owed move after new input at ``ts``; a wait that ended may be the longest."""
        fields = current_wait_fields(self.tcp, self.smtp)
        ended = self.wait
        if ended is None:
            if fields[0] is None:
                return
        elif (ended.side, ended.since, ended.owed) == fields:
            # The same test as ``Wait.__eq__``, without building a Wait for every packet.
            return
        if ended is not None and ended.since is not None:
            self.longest_wait = max(self.longest_wait, ts - ended.since)
        side, since, owed = fields
        self.wait = None if side is None else Wait(side, since, owed)

    def longest_wait_until(self, now: float) -> float:
        """Return the longest wait in seconds, counting the wait still open at ``now``."""
        wait = self.wait
        if wait is None or wait.since is None:
            return self.longest_wait
        return max(self.longest_wait, now - wait.since)

    def transcript_lines(self, reveal: bool) -> tuple[TranscriptLine, ...]:
        """Return the transcript, with AUTH secrets shown only when ``reveal`` is set."""
        if not reveal or not self.secret_lines:
            return tuple(self.transcript)
        lines = list(self.transcript)
        for index, event in self.secret_lines.items():
            lines[index] = replace(lines[index], text=event.summary(True))
        return tuple(lines)

    def _tell_established(self) -> None:
        """Give the SMTP tracker the handshake time once, from which the server owes the greeting."""
        established = self.tcp.established_ts
        if self._handshake_time_set or self.smtp is None or established is None:
            return
        self._handshake_time_set = True
        self.smtp.set_connection_established(established)

    def _meter_connection(self) -> None:
        """Count the conversation once it is SMTP, and time its TCP handshake once it completed."""
        meter = self.meter
        if meter is None or not self.is_smtp:
            return
        if not self._metered_open:
            self._metered_open = True
            meter.conversation_opened(self.start)
        tcp = self.tcp
        if self._metered_connect or tcp.established_ts is None or tcp.synack_ts is None:
            return
        self._metered_connect = True
        if tcp.syn_ts is not None:
            meter.phase_latency(tcp.synack_ts, "SYN-ACK", tcp.synack_ts - tcp.syn_ts, self.server, Side.NETWORK)
        if tcp.established_ts >= tcp.synack_ts:
            handshake_ack = tcp.established_ts - tcp.synack_ts
            meter.phase_latency(tcp.established_ts, "handshake ACK", handshake_ack, self.server, Side.NETWORK)

    def _sniff(self, direction: Direction, data: bytes) -> bool:
        """Decide from a chunk whether this is SMTP; return True once decided.

        SMTP starts where a server chunk begins with a 220 greeting or a
        client chunk with EHLO/HELO, within the first ``SNIFF_LIMIT`` bytes
        of that direction. Looking past the first byte lets SMTP be found
        behind a short prefix such as a SOCKS5 handshake; the prefix is
        skipped. The stream's first bytes are also collected across chunks,
        for a greeting that arrives split.
        """
        sniffed = self._sniffed
        first_bytes = self._first_bytes
        if sniffed is None or first_bytes is None:
            sniffed = self._sniffed = {Direction.CLIENT_TO_SERVER: 0, Direction.SERVER_TO_CLIENT: 0}
            first_bytes = self._first_bytes = {Direction.CLIENT_TO_SERVER: b"", Direction.SERVER_TO_CLIENT: b""}
        offset = sniffed[direction]
        sniffed[direction] = offset + len(data)
        head = data[:SNIFF_BYTES]
        if offset < SNIFF_BYTES:
            head = first_bytes[direction] = (first_bytes[direction] + data)[:SNIFF_BYTES]
        if offset < SNIFF_LIMIT and _starts_smtp(direction, head if offset < SNIFF_BYTES else data):
            start = len(self._pending) - 1 if offset >= SNIFF_BYTES else 0
            self._decide(True, start)
            return True
        if sniffed[direction] >= SNIFF_LIMIT:
            self._decide(False, 0)
            return True
        return False

    def _decide(self, is_smtp: bool, start: int) -> None:
        """Settle what the conversation is; for SMTP, replay the held items from ``start`` on."""
        self.is_smtp = is_smtp
        pending, self._pending = self._pending, []
        if not is_smtp:
            return
        self.smtp = self._new_smtp()
        self._tell_established()
        skipped = sum(len(item.data) for _, item, _ in pending[:start] if isinstance(item, StreamData))
        if skipped:
            ts = pending[start][1].ts
            self.transcript.append(TranscriptLine(ts, None, f"[{skipped:,} bytes before the SMTP dialogue skipped]", None))
        by_record: dict[int, list[list[Event]]] = {}
        for direction, item, record in pending[start:]:
            by_record.setdefault(id(record), []).append(self._feed(direction, item, record.frame_no))
        for record in {id(r): r for _, _, r in pending[start:]}.values():
            record.summary = ""
            _summarize(record, by_record[id(record)])

    def _new_smtp(self) -> SmtpConversation:
        server = (format_address(self.tcp.server[0]), self.tcp.server[1])
        return SmtpConversation(reveal_secrets=self.reveal_secrets, tls_keys=self.tls_keys, server=server)

    def retry_tls(self) -> None:
        """Decrypt what waited for secrets that the key log now has, and transcribe it."""
        if self.smtp is None:
            return
        events = self.smtp.retry_tls()
        if not events:
            return
        self.dirty = True
        # The decrypted records were captured earlier, so their lines go where their packets
        # were, and the steps inferred from the still encrypted records give way to them.
        secrets = {id(self.transcript[index]): event for index, event in self.secret_lines.items()}
        self.transcript = [line for line in self.transcript if not _inferred_step(line)]
        self.secret_lines = {}
        packets: dict[tuple[float, Direction | None], PacketRecord] = {}
        for record in self.packets:
            if record.length:
                packets.setdefault((record.ts, record.direction), record)
                packets.setdefault((record.ts, None), record)
        touched: dict[int, tuple[PacketRecord, list[Event]]] = {}
        for event in events:
            found = packets.get((event.ts, _sender(event)))
            self._transcribe(event, found.frame_no if found is not None else None)
            if found is not None:
                touched.setdefault(id(found), (found, []))[1].append(event)
        for record, record_events in touched.values():
            if record.summary.startswith("TLS data") or record.summary.endswith("(encrypted, inferred)]"):
                record.summary = ""
                _summarize(record, [record_events])
        secrets.update({id(self.transcript[index]): event for index, event in self.secret_lines.items()})
        self.transcript.sort(key=lambda line: line.ts)
        self.secret_lines = {
            index: secrets[id(line)] for index, line in enumerate(self.transcript) if id(line) in secrets
        }
        self.note_moves(events[-1].ts)

    def give_up_sniffing(self) -> None:
        """Decide "not SMTP" for a connection that closed before its bytes showed SMTP."""
        if self.is_smtp is None:
            self._decide(False, 0)

    def _feed(self, direction: Direction, item: StreamItem, frame_no: int | None) -> list[Event]:
        """Feed one stream item to the SMTP tracker and transcribe the events it completed."""
        assert self.smtp is not None
        if isinstance(item, StreamGap):
            events = self.smtp.gap(direction, item.length, item.ts)
        else:
            events = self.smtp.receive(direction, item.data, item.ts)
        for event in events:
            self._transcribe(event, frame_no)
        return events

    def _transcribe(self, event: Event, frame_no: int | None) -> None:
        transcript = self.transcript
        if isinstance(event, (Command, SaslResponse)):
            self._remember_secret(event)
            masked = event.summary(False)
            if _may_hold_secret(event) and event.summary(True) != masked:
                self.secret_lines[len(transcript)] = event
            line = TranscriptLine(
                event.ts, Direction.CLIENT_TO_SERVER, masked, None, frame_no, _group(event.record), event.record.decrypted
            )
            transcript.append(line)
        elif isinstance(event, Reply):
            self._on_reply(event)
            latency = event.ts - event.command.ts if event.command is not None else None
            if event.is_greeting and self.tcp.established_ts is not None:
                latency = event.ts - self.tcp.established_ts
            group = _group(event.command) if event.command is not None else None
            for number, text in enumerate(event.lines):
                first_latency = latency if number == 0 else None
                line = TranscriptLine(
                    event.ts, Direction.SERVER_TO_CLIENT, text, first_latency, frame_no, group, event.record.decrypted
                )
                transcript.append(line)
        elif isinstance(event, BodyEnd):
            self._on_body_end(event)
            text = f"<{event.summary()}>"
            line = TranscriptLine(
                event.ts, Direction.CLIENT_TO_SERVER, text, None, frame_no, _group(event.record), event.record.decrypted
            )
            transcript.append(line)
        elif isinstance(event, TlsStep):
            transcript.append(TranscriptLine(event.ts, event.direction, event.summary(False), None, frame_no))
        elif isinstance(event, (GapNoted, TlsStarted, Anomaly, ConnectionEnd)):
            transcript.append(TranscriptLine(event.ts, None, event.summary(False), None, frame_no))

    def _on_reply(self, event: Reply) -> None:
        """Count a reply, and feed the traffic meter its class, its latency and an accepted message."""
        self.replies.append(event)
        if event.code >= 400:
            self.errors += 1
        command = event.command
        if command is not None and command.verb == "DATA" and event.code == 354:
            self._body_start = event.ts
        meter = self.meter
        if meter is None:
            return
        meter.reply(event.ts, event.code, self.client, self.server)
        if event.is_greeting:
            established = self.tcp.established_ts
            if established is not None and (self.tcp.syn_ts is not None or self.tcp.synack_ts is not None):
                meter.phase_latency(event.ts, "greeting", event.ts - established, self.server, Side.SERVER)
            return
        if command is None:
            return
        meter.phase_latency(event.ts, _phase_name(command), event.ts - command.ts, self.server, Side.SERVER)
        if 200 <= event.code < 300 and _ends_message(command):
            meter.message_accepted(event.ts)

    def _on_body_end(self, event: BodyEnd) -> None:
        """Time a DATA body from the 354 reply to its end, as the client's share of the transaction."""
        start, self._body_start = self._body_start, None
        if self.meter is not None and start is not None and event.record.kind is CommandKind.END_OF_DATA:
            self.meter.phase_latency(event.ts, "body", event.ts - start, self.server, Side.CLIENT)

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

    def masked_frame(self, frame: bytes | None, reveal: bool) -> bytes | None:
        """Return the frame with AUTH secrets replaced by '*', unless ``reveal`` is set.

        NOTE: a secret split across two segments is masked in neither, because
        each frame holds only part of it.
        """
        if frame is None or reveal or not self.secrets:
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
                self._transcribe(event, None)
        self.note_moves(ts)

    def finish(self, ts: float) -> None:
        """Release every held byte at the end of the input; undecided conversations stay undecided."""
        self.expire(self.tcp.flush(ts), ts)


def _inferred_step(line: TranscriptLine) -> bool:
    """True for a TLS step that was only inferred from an encrypted record's position."""
    return line.text.startswith("[TLS ") and line.text.endswith("(encrypted, inferred)]")


def _sender(event: Event) -> Direction | None:
    """Return the side whose bytes completed an event, for finding its packet."""
    if isinstance(event, (Command, SaslResponse, BodyEnd)):
        return Direction.CLIENT_TO_SERVER
    if isinstance(event, Reply):
        return Direction.SERVER_TO_CLIENT
    if isinstance(event, (TlsStep, GapNoted)):
        return event.direction
    return None


def _starts_smtp(direction: Direction, head: bytes) -> bool:
    if direction is Direction.SERVER_TO_CLIENT:
        return head.startswith(GREETING_PREFIXES)
    return head[:4].upper() in HELLO_PREFIXES


def _group(record: CommandRecord) -> int | None:
    """Return the pipelined group of a client line; the SMTP tracker numbers groups from 1."""
    return record.group or None


def _phase_name(command: CommandRecord) -> str:
    """Name the phase a command's reply ends, as ``SmtpConversation.phase_latencies`` names it."""
    if command.kind is CommandKind.SASL_RESPONSE:
        return "AUTH response"
    if command.kind is CommandKind.END_OF_DATA:
        return "end-of-data"
    return command.verb


def _ends_message(command: CommandRecord) -> bool:
    """True for the end of a DATA body and for BDAT LAST, whose 2xx reply accepts the message."""
    if command.kind is CommandKind.END_OF_DATA:
        return True
    if command.verb != "BDAT":
        return False
    parsed = parse_bdat(command.arg)
    return parsed is not None and parsed[1]


def _item_summary(events: list[Event], reveal: bool) -> str:
    if not events:
        return ""
    first = events[0].summary(reveal)
    return first if len(events) == 1 else f"{first} (+{len(events) - 1} more)"


def _merged(parts: list[str]) -> str:
    parts = [part for part in parts if part]
    if len(parts) <= 2:
        return "; ".join(parts)
    return f"{parts[0]}; … ({len(parts)} items)"


def _summarize(record: PacketRecord, per_item: list[list[Event]]) -> None:
    """Set a packet's summary from the events each of its stream items completed."""
    if len(per_item) == 1:
        # Most packets carry one stream item, whose summary _merged would return unchanged.
        summary = _item_summary(per_item[0], False)
    else:
        summary = _merged([_item_summary(events, False) for events in per_item])
    if not summary:
        return
    record.summary = summary
    for item_events in per_item:
        for event in item_events:
            if _may_hold_secret(event):
                revealed = _merged([_item_summary(events, True) for events in per_item])
                record.revealed_summary = revealed if revealed != summary else None
                return


def _may_hold_secret(event: Event) -> bool:
    return isinstance(event, SaslResponse) or (isinstance(event, Command) and event.verb == "AUTH")


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
