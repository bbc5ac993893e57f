"""The engine: frames in, conversations out, behind one lock.

``feed`` runs on the capture thread; ``snapshot`` and ``detail`` run on the
UI's timer. Per-packet work is a header decode, a dict lookup and the
protocol trackers' work on that packet's bytes. The traffic meter is fed on
events (a reply, an accepted message) and never rescanned. Rows for the table are
rebuilt only for conversations that changed since the last snapshot.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection

from smtptop.capture.files import Frame
from smtptop.config import EngineConfig
from smtptop.decode.packet import Decoder
from smtptop.decode.segment import ACK, SYN, Segment, flag_names
from smtptop.engine.conversation import Conversation, FlowKey, PacketRecord
from smtptop.engine.phases import conversation_phases
from smtptop.engine.retention import ClosedConversations, FrameStore, trim_packets
from smtptop.engine.snapshot import (
    CaptureStats,
    ConversationDetail,
    ConversationRow,
    PacketRow,
    Snapshot,
)
from smtptop.engine.tcp_health import ACKED_UNSEEN, LOST_SEGMENT, row_counters, tcp_health
from smtptop.engine.tls_view import tls_column, tls_summary
from smtptop.engine.waits import stall_text
from smtptop.metrics.traffic import TrafficMeter
from smtptop.smtp.events import CommandKind, CommandRecord, Phase
from smtptop.tcp.connection import TcpConnection
from smtptop.tls.keys import TlsKeys

log = logging.getLogger(__name__)

# Flows found not to be SMTP are remembered, so their packets are skipped
# cheaply. Past this many, the oldest are forgotten and examined again if they return.
MAX_IGNORED_FLOWS = 50_000
KEYLOG_CHECK_SECONDS = 0.5
# The shortest interval, on the engine's clock, between two scans for stale open conversations.
STALE_SCAN_SECONDS = 1.0


class Engine:
    """Conversation table fed with frames of one link type."""

    def __init__(
        self,
        config: EngineConfig,
        link_type: int,
        source: str,
        bpf_filter: str,
        on_finished: Callable[[Conversation], None] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.bpf_filter = bpf_filter
        self.link_type = link_type
        self.decoder = Decoder(link_type)
        self.lock = threading.Lock()
        self.on_finished = on_finished
        self.packets = 0
        self.bytes = 0
        self.now = 0.0  # the newest capture time
        self.wall_clock: float | None = None  # the newest wall clock a live source passed to ``feed``
        self.reveal_secrets = config.reveal_secrets  # for the screens; see ``set_reveal_secrets``
        self.meter = TrafficMeter(config.traffic_window_seconds)
        self.kernel_drops: int | None = None
        self.interface_drops: int | None = None
        self.queue_drops: int | None = None
        # Running totals of two analysis tags over every connection fed to a conversation, SMTP or not.
        self.lost_segments = 0
        self.acked_unseen = 0
        self.error: str | None = None
        self.input_finished = False
        self.conversations: dict[int, Conversation] = {}  # by key, every listed conversation
        self._flows: dict[FlowKey, Conversation] = {}
        self._ignored: OrderedDict[FlowKey, None] = OrderedDict()
        self._with_holes: set[Conversation] = set()
        self._closed = ClosedConversations()  # the eviction candidates, oldest last_seen first
        # Closed conversations the headless output has not received yet, in the order they closed.
        self._unreported: deque[Conversation] = deque()
        self._frames = FrameStore(config.frame_store_mib * 1024 * 1024)
        self._max_packets = config.max_packets_per_conversation  # read for every packet
        self._next_key = 1
        self.evicted = 0  # conversations evicted by the max_conversations limit
        self.evicted_smtp = 0  # the SMTP ones among them, for conversations_total
        self.snapshot_count = 0  # how often a front end asked; shows that a quiet display still refreshes
        # Raises ValueError with a message for the user when an RSA key cannot be read.
        self.tls_keys = TlsKeys.from_settings(
            config.tls_keylog, config.tls_rsa_key, config.tls_rsa_keys, may_grow=config.tls_keylog_watch
        )
        self._keys_read_at = 0.0  # the clock when the key log was last checked for new secrets
        self._next_stale_scan = 0.0  # the clock before which open conversations are not scanned again

    # -- the capture side ------------------------------------------------

    def feed(self, frames: list[Frame], wall_clock: float | None = None) -> None:
        """Process a batch of frames from the source, in capture order.

        A live source passes the wall clock, so that closed conversations
        age out (and reach the headless output) while the link is quiet;
        capture timestamps alone stand still when no packet arrives.
        """
        with self.lock:
            if wall_clock is not None:
                self.wall_clock = wall_clock
            decode = self.decoder.decode
            for ts, data, wire_len in frames:
                self.packets += 1
                self.bytes += wire_len
                if ts > self.now:
                    self.now = ts
                seg = decode(ts, self.packets, data)
                if seg is not None:
                    self._on_segment(seg, data, wire_len)
            self._housekeeping(self._clock())

    def _clock(self) -> float:
        """Return "now" for waits and ages: the newest capture time, or the wall clock of a live source if later."""
        return max(self.now, self.wall_clock or 0.0)

    def set_reveal_secrets(self, reveal: bool) -> None:
        """Show AUTH secrets on the screens (rows, transcript, packets, frames) or mask them again.

        The headless output keeps following ``EngineConfig.reveal_secrets``.
        """
        with self.lock:
            if reveal == self.reveal_secrets:
                return
            self.reveal_secrets = reveal
            for conversation in self.conversations.values():
                conversation.dirty = True

    def set_drops(self, kernel: int, interface: int, queue: int = 0) -> None:
        """Store the live capture's drop counters: kernel buffer, interface, and the capture queue."""
        with self.lock:
            self.kernel_drops = kernel
            self.interface_drops = interface
            self.queue_drops = queue

    def finish_input(self, error: str | None) -> None:
        """Mark the end of a file: release every held byte and report what is still open."""
        with self.lock:
            self.input_finished = True
            self.error = error or self.error
            # Every listed conversation, including one whose addresses a new connection reused.
            for conversation in list(self.conversations.values()):
                conversation.finish(self.now)
                if conversation.is_smtp:
                    self._report(conversation)

    def _on_segment(self, seg: Segment, data: bytes, wire_len: int) -> None:
        key = flow_key(seg)
        if key in self._ignored:
            if seg.flags & (SYN | ACK) != SYN:
                return
            # A new connection on the ports of one found not to be SMTP is examined afresh.
            del self._ignored[key]

        conversation = self._flows.get(key)
        if conversation is not None and seg.flags & (SYN | ACK) == SYN:
            tcp = conversation.tcp
            if tcp.closed:
                # A new SYN on a finished connection's addresses is a new connection (port reuse).
                self._retire(key, conversation)
                conversation = None
            elif tcp.starts_new_connection(seg):
                # The same, when the old connection's FIN or RST was lost in the capture.
                self._end_reused(key, conversation, seg.ts)
                conversation = None
        if conversation is None:
            conversation = self._open(key, seg)

        tcp = conversation.tcp
        direction, items = tcp.receive(seg)
        record = conversation.add_packet(seg, direction, items, data)
        record.wire_len = wire_len
        tags = tcp.last_tags
        if tags:
            record.tags = tags
            self._count_tags(tags)
        self._frames.keep(record)
        if len(conversation.packets) > self._max_packets:
            self._frames.release(trim_packets(conversation, self._max_packets))

        closed = tcp.closed
        if closed:
            conversation.give_up_sniffing()
        if conversation.is_smtp is False:
            self._ignore(key, conversation)
            return
        if tcp.has_pending_holes:
            self._with_holes.add(conversation)
        if closed and not conversation.queued_for_eviction:
            conversation.queued_for_eviction = True
            conversation.close(seg.ts)
            self._closed.push(conversation)
            if self.on_finished is not None:
                self._unreported.append(conversation)

    def _count_tags(self, tags: tuple[str, ...]) -> None:
        # A segment has a handful of tags at most, so this stays constant work per packet.
        for tag in tags:
            if tag == LOST_SEGMENT:
                self.lost_segments += 1
            elif tag == ACKED_UNSEEN:
                self.acked_unseen += 1

    def _open(self, key: FlowKey, seg: Segment) -> Conversation:
        ports = self.config.smtp_ports
        tcp = TcpConnection.open(seg, ports)
        is_smtp = True if tcp.server[1] in ports else None
        conversation = Conversation(
            self._next_key, tcp, is_smtp, self.config.reveal_secrets, self.meter, tls_keys=self.tls_keys
        )
        conversation.flow_key = key
        self._next_key += 1
        self._flows[key] = conversation
        self.conversations[conversation.key] = conversation
        self._evict_over_limit()
        return conversation

    def _ignore(self, key: FlowKey, conversation: Conversation) -> None:
        self._flows.pop(key, None)
        self.conversations.pop(conversation.key, None)
        self._with_holes.discard(conversation)
        self._frames.release(conversation.packets)  # not SMTP, so never shown in the hex view
        self._ignored[key] = None
        if len(self._ignored) > MAX_IGNORED_FLOWS:
            self._ignored.popitem(last=False)

    def _retire(self, key: FlowKey | None, conversation: Conversation) -> None:
        """Take a conversation out of the flow table; it stays listed until evicted."""
        if key is not None and self._flows.get(key) is conversation:
            del self._flows[key]

    def _end_reused(self, key: FlowKey, conversation: Conversation, ts: float) -> None:
        """Close a conversation whose ports a new connection took, as if its end had been captured."""
        self._retire(key, conversation)
        conversation.tcp.end_for_reuse(ts)
        conversation.finish(ts)
        conversation.dirty = True
        self._with_holes.discard(conversation)
        conversation.give_up_sniffing()
        if conversation.is_smtp is False:
            # Forgotten as _ignore does, but the new connection on these ports is examined afresh.
            self.conversations.pop(conversation.key, None)
            self._frames.release(conversation.packets)
            return
        conversation.close(ts)
        if not conversation.queued_for_eviction:
            conversation.queued_for_eviction = True
            self._closed.push(conversation)
            if self.on_finished is not None:
                self._unreported.append(conversation)

    def _housekeeping(self, now: float) -> None:
        if self._with_holes:
            for conversation in list(self._with_holes):
                conversation.expire(conversation.tcp.expire(now), now)
                if not conversation.tcp.has_pending_holes:
                    self._with_holes.discard(conversation)
        self._read_new_secrets(now)
        self._report_lingered(now)

    def _read_new_secrets(self, now: float) -> None:
        """Check a growing key log twice a second; decrypt the sessions that waited for it."""
        keys = self.tls_keys
        if keys is None or not keys.may_grow or now - self._keys_read_at < KEYLOG_CHECK_SECONDS:
            return
        self._keys_read_at = now
        if not keys.refresh():
            return
        for conversation in list(self.conversations.values()):
            conversation.retry_tls()

    def _report_lingered(self, now: float) -> None:
        """Hand the headless output each closed conversation that has lingered; it stays listed.

        The linger lets late packets (a final ACK, a retransmitted FIN) reach
        the conversation before its record is written.
        """
        linger = self.config.linger_seconds
        waiting = self._unreported
        while waiting and (waiting[0].finished or waiting[0].last_seen + linger < now):
            self._report(waiting.popleft())

    def _evict_over_limit(self) -> None:
        """Evict closed conversations, least recently seen first, while more than max_conversations are kept.

        Only a new conversation calls this, so a quiet link never loses one.
        Open conversations are evicted only once silent for ``stale_open_seconds``:
        until then the table may stay over the limit.
        """
        limit = self.config.max_conversations
        while len(self.conversations) > limit:
            victim = self._closed.pop_oldest()
            if victim is None:
                self._evict_stale_open(len(self.conversations) - limit)
                return
            self._evict(victim)

    def _evict_stale_open(self, excess: int) -> None:
        """Evict up to ``excess`` open conversations silent for ``stale_open_seconds``, oldest first.

        The scan covers every conversation, so it runs at most once a second of the clock.
        """
        now = self._clock()
        if now < self._next_stale_scan:
            return
        self._next_stale_scan = now + STALE_SCAN_SECONDS
        cutoff = now - self.config.stale_open_seconds
        # The conversation being opened has no packet yet (last_seen 0) and is never stale.
        stale = [c for c in self.conversations.values() if not c.tcp.closed and 0 < c.last_seen < cutoff]
        for conversation in heapq.nsmallest(excess, stale, key=_last_seen):
            self._evict(conversation)

    def _evict(self, conversation: Conversation) -> None:
        """Report a conversation if it was not yet, then forget it and free its packets and frames.

        NOTE: a late packet of an evicted conversation (a last ACK) finds no flow and opens a
        new, open conversation, which stays until it counts as stale.
        """
        self._report(conversation)
        self.conversations.pop(conversation.key, None)
        self._retire(conversation.flow_key, conversation)
        self._with_holes.discard(conversation)
        self._frames.release(conversation.packets)
        conversation.packets.clear()
        self.evicted += 1
        if conversation.is_smtp:
            self.evicted_smtp += 1
        # A reported conversation leaves the queue when it reaches the head. Once such entries
        # outnumber the kept conversations, drop them at once, so the queue frees evicted ones.
        if len(self._unreported) > 2 * len(self.conversations) + 64:
            self._unreported = deque(item for item in self._unreported if not item.finished)

    def _report(self, conversation: Conversation) -> None:
        if self.on_finished is not None and not conversation.finished and conversation.is_smtp:
            conversation.finished = True
            conversation.reported_at = self._clock()
            self.on_finished(conversation)

    # -- the display side ------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self.lock:
            self.snapshot_count += 1
            reveal = self.reveal_secrets
            rows = tuple(
                conversation_row(conversation, reveal)
                for conversation in self.conversations.values()
                if conversation.is_smtp
            )
            open_count = sum(1 for row in rows if not row.closed)
            stats = CaptureStats(
                source=self.source,
                bpf_filter=self.bpf_filter,
                packets=self.packets,
                bytes=self.bytes,
                conversations_open=open_count,
                conversations_total=self.evicted_smtp + len(rows),
                kernel_drops=self.kernel_drops,
                interface_drops=self.interface_drops,
                queue_drops=self.queue_drops,
                messages_accepted=self.meter.messages_total,
                undecodable=self.decoder.non_tcp + self.decoder.truncated + self.decoder.malformed,
                finished=self.input_finished,
                now=self.now,
                error=self.error,
                lost_segments=self.lost_segments,
                acked_unseen=self.acked_unseen,
                evicted=self.evicted,
                conversations_kept=len(self.conversations),
                max_conversations=self.config.max_conversations,
                frames_dropped=self._frames.dropped,
                frame_bytes=self._frames.size,
                frame_budget=self._frames.budget,
            )
            traffic = self.meter.snapshot(self._clock())
        return Snapshot(stats, rows, traffic)

    def mask_frame(self, key: int, frame: bytes) -> bytes:
        """Mask a conversation's AUTH secrets in frame bytes read from elsewhere, as the screens show them."""
        with self.lock:
            conversation = self.conversations.get(key)
            if conversation is None:
                return frame
            return conversation.masked_frame(frame, self.reveal_secrets) or frame

    def detail(self, key: int) -> ConversationDetail | None:
        with self.lock:
            conversation = self.conversations.get(key)
            if conversation is None or not conversation.is_smtp:
                return None
            tcp = conversation.tcp
            reveal = self.reveal_secrets
            packets = tuple(
                _packet_row(conversation, record, self.link_type, reveal) for record in conversation.packets
            )
            smtp = conversation.smtp
            anomalies = [f"{name} ×{count}" for name, count in (smtp.anomalies.items() if smtp else ())]
            if conversation.truncated_frames:
                anomalies.append(f"frame cut by the snaplen ×{conversation.truncated_frames}")
            return ConversationDetail(
                row=conversation_row(conversation, reveal),
                tcp_stage=tcp.stage.value,
                packets=packets,
                transcript=conversation.transcript_lines(reveal),
                capabilities=tuple(smtp.capabilities) if smtp else (),
                anomalies=tuple(anomalies),
                stall=stall_text(conversation.wait, conversation.trails, self._clock()),
                phases=conversation_phases(tcp, smtp),
                tcp=tcp_health(tcp),
                tls=tls_summary(conversation, self._clock()),
                packets_not_kept=conversation.packets_not_kept,
                packets_not_kept_at=_gap_position(conversation, len(packets), self.config.max_packets_per_conversation),
            )

    def frames_for(
        self, keys: Collection[int], read_back: Callable[[int], bytes | None] | None = None
    ) -> tuple[list[Frame], int]:
        """Collect the frames of the conversations ``keys`` in capture order, for a pcap export.

        Returns the frames still in memory, or read back by frame number with
        ``read_back`` (from the recording), and the number of frames found in
        neither: those whose bytes the bounded frame store dropped, and the
        packets trimmed from a long conversation. Keys no longer listed add
        nothing. The bytes are the captured ones, with AUTH secrets unmasked.
        """
        with self.lock:
            listed = [self.conversations[key] for key in set(keys) if key in self.conversations]
            # Each conversation's packets are in frame order, so merging them keeps capture order.
            lists = [conversation.packets for conversation in listed]
            frames: list[Frame] = []
            dropped = sum(conversation.packets_not_kept for conversation in listed)
            for record in heapq.merge(*lists, key=_frame_number):
                frame = record.frame
                if frame is None and read_back is not None:
                    frame = read_back(record.frame_no)
                if frame is None:
                    dropped += 1
                else:
                    frames.append((record.ts, frame, record.wire_len))
            return frames, dropped


def _gap_position(conversation: Conversation, kept: int, limit: int) -> int:
    """Return where in the packet list the packets not kept were; 0 when every packet is kept."""
    if not conversation.packets_not_kept:
        return 0
    return min(limit // 2, kept)


def _last_seen(conversation: Conversation) -> float:
    return conversation.last_seen


def _frame_number(record: PacketRecord) -> int:
    return record.frame_no


def flow_key(seg: Segment) -> FlowKey:
    one = (seg.src, seg.sport)
    other = (seg.dst, seg.dport)
    return (seg.vlans, one, other) if one < other else (seg.vlans, other, one)


def conversation_row(conversation: Conversation, reveal: bool) -> ConversationRow:
    if not conversation.dirty and conversation.row is not None:
        return conversation.row

    tcp = conversation.tcp
    smtp = conversation.smtp
    last_command = ""
    last_reply = ""
    stage = tcp.stage.value
    tls_mode = "none"
    messages = 0
    anomalies = conversation.truncated_frames
    wait = conversation.wait

    if smtp is not None:
        if smtp.last_command is not None:
            last_command = _command_text(smtp.last_command, reveal)
        if smtp.last_reply is not None:
            last_reply = smtp.last_reply.lines[0] if smtp.last_reply.lines else str(smtp.last_reply.code)
        if tcp.closed:
            # The TCP stage shows how it closed (FIN or RST), unless the SMTP phase
            # is more specific, as "rejected" for a refused greeting is.
            stage = tcp.stage.value if smtp.phase is Phase.CLOSED else smtp.phase.value
        elif smtp.phase.value != "connect":
            stage = smtp.phase.value
        tls_mode = smtp.tls_mode.value
        messages = sum(1 for transaction in smtp.transactions if transaction.result == "accepted")
        anomalies += sum(smtp.anomalies.values())

    duplicate_acks, zero_windows = row_counters(tcp)
    row = ConversationRow(
        key=conversation.key,
        client=conversation.client,
        server=conversation.server,
        tls_mode=tls_mode,
        tls=tls_column(tls_summary(conversation, conversation.last_seen)) if smtp is not None else "",
        stage=stage,
        last_command=last_command,
        last_reply=last_reply,
        start=conversation.start,
        last_seen=conversation.last_seen,
        closed=tcp.closed,
        messages=messages,
        retransmissions=tcp.retransmissions,
        packets=len(conversation.packets) + conversation.packets_not_kept,
        bytes=conversation.payload_bytes,
        anomalies=anomalies,
        waiting_on=wait.side if wait is not None else None,
        waiting_since=wait.since if wait is not None else None,
        waiting_for=wait.owed if wait is not None else "",
        errors=conversation.errors,
        duplicate_acks=duplicate_acks,
        zero_windows=zero_windows,
    )
    conversation.row = row
    conversation.dirty = False
    return row


def _command_text(command: CommandRecord, reveal: bool) -> str:
    """Describe a client line for the table; the end-of-data dot and SASL lines get words."""
    if command.kind is CommandKind.END_OF_DATA:
        return "<end of data>"
    if command.kind is CommandKind.SASL_RESPONSE:
        return f"AUTH response {command.summary(reveal)}"
    return command.summary(reveal)


def _packet_row(conversation: Conversation, record: PacketRecord, link_type: int, reveal: bool) -> PacketRow:
    tcp = conversation.tcp
    direction = record.direction
    seq = tcp.relative_seq(direction, record.seq)
    ack = tcp.relative_seq(direction.reverse, record.ack) if record.flags & ACK else 0
    return PacketRow(
        frame_no=record.frame_no,
        ts=record.ts,
        direction=direction,
        flags=flag_names(record.flags),
        seq=seq,
        ack=ack,
        length=record.length,
        window=record.window,
        summary=record.revealed_summary if reveal and record.revealed_summary is not None else record.summary,
        frame=conversation.masked_frame(record.frame, reveal),
        link_type=link_type,
        tags=record.tags,
    )
