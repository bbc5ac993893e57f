"""Immutable views of the engine's state, taken under its lock for the front ends.

The UI never reads live engine objects. It requests a ``Snapshot`` a few
times per second, and for a ``ConversationDetail`` of the one conversation
on screen. Both are plain frozen data, safe to read from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtptop.direction import Direction
from smtptop.tls.summary import TlsSummary
# The TCP core's per-direction record serves the screens as it is; the name says what it shows there.
from smtptop.tcp.analysis import DirectionStats as TcpDirectionHealth

# Defined in the pure metrics package and re-exported here, beside the other records the UI reads.
from smtptop.metrics.stats import Percentiles, TrafficStats

__all__ = [
    "CaptureStats",
    "ConversationDetail",
    "ConversationRow",
    "PacketRow",
    "Percentiles",
    "PhaseLatency",
    "Snapshot",
    "TcpDirectionHealth",
    "TrafficStats",
    "TranscriptLine",
]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One line of the conversation table."""

    key: int  # stable conversation id, unique for the engine's lifetime
    client: str  # "ip:port", IPv6 in brackets
    server: str
    tls_mode: str  # "none", "starttls" or "implicit"
    stage: str  # TCP stage while no SMTP is seen, else the SMTP phase
    last_command: str  # verb and argument, AUTH credentials masked
    last_reply: str  # "250 2.0.0 Ok", first line only
    start: float  # capture time of the first packet
    last_seen: float  # capture time of the newest packet
    closed: bool
    messages: int  # transactions the server accepted (2xx to end-of-data or BDAT LAST)
    retransmissions: int
    packets: int
    bytes: int  # wire payload bytes, both directions
    anomalies: int
    # Who owes the next move and since when (capture time); None when nobody does (closed).
    waiting_on: str | None = None  # "client" or "server"
    waiting_since: float | None = None
    waiting_for: str = ""  # what is owed, e.g. "reply to DATA end-of-data", "next command"
    errors: int = 0  # 4xx and 5xx replies
    duplicate_acks: int = 0  # both directions, counted by Wireshark's rules
    zero_windows: int = 0
    tls: str = ""  # the TLS column: "1.3", "1.2 dec", "failed 40", "mismatch"; "" for plaintext


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters for the dashboard header."""

    source: str  # interface name, file path or "demo"
    bpf_filter: str
    packets: int
    bytes: int  # frame bytes on the wire
    conversations_open: int
    conversations_total: int
    kernel_drops: int | None  # None for files, where there is no kernel buffer
    interface_drops: int | None
    undecodable: int  # frames that are not TCP over a known link type, or are truncated
    finished: bool  # the source is exhausted (end of file)
    now: float  # newest capture time seen, 0.0 before the first packet
    error: str | None  # last source error, for example a corrupt record in a file
    lost_segments: int = 0  # "previous segment not captured", over all conversations
    acked_unseen: int = 0  # "ACKed segment that wasn't captured": loss in the capture, not the network
    evicted: int = 0  # closed conversations evicted to stay within max_conversations
    queue_drops: int | None = None  # live: frames dropped because the capture queue was full
    messages_accepted: int = 0  # since the start, in evicted conversations too
    # Conversations in the engine's table, SMTP or still undecided. It exceeds max_conversations
    # when new ones arrive while every kept one is open and active: open conversations are
    # evicted only after EngineConfig.stale_open_seconds of silence, and any conversation only
    # when the next new one arrives.
    conversations_kept: int = 0
    max_conversations: int = 0
    frames_dropped: int = 0  # frames whose bytes the frame store's budget pushed out of memory
    frame_bytes: int = 0  # captured bytes kept for the hex view now
    frame_budget: int = 0  # the max of frame_bytes, from EngineConfig.frame_store_mib


@dataclass(frozen=True, slots=True)
class Snapshot:
    stats: CaptureStats
    rows: tuple[ConversationRow, ...]
    traffic: TrafficStats | None = None


@dataclass(frozen=True, slots=True)
class PacketRow:
    """One captured packet of a conversation, for the packet list and hex dump."""

    frame_no: int  # 1-based position in the capture, as in Wireshark
    ts: float
    direction: Direction
    flags: str  # tcpdump letters: "S", "S.", "P.", "F.", "R"
    seq: int  # relative to the sender's initial sequence number
    ack: int  # relative to the peer's initial sequence number; 0 without ACK
    length: int  # TCP payload length on the wire
    window: int
    summary: str  # "EHLO client.example", "250-mx.example (4 lines)", "[ACK]", "TLS data"
    frame: bytes | None  # captured bytes, or None once the bounded store dropped them
    link_type: int
    # TCP analysis tags in Wireshark's words: "Retransmission", "Dup ACK #2", "ZeroWindow",
    # "TCP Keep-Alive", "Previous segment not captured", ...
    tags: tuple[str, ...] = ()


# Not frozen: built per line or per phase, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class TranscriptLine:
    """One SMTP line of the dialogue: a command, a reply line, or a note such as a gap."""

    ts: float
    direction: Direction | None  # None for notes made by smtptop itself
    text: str  # secrets masked unless the user asked to reveal them
    latency: float | None  # seconds from the command to this reply, on reply lines
    frame_no: int | None = None  # the packet that completed this line, for selecting it
    group: int | None = None  # pipelined commands sent together share a number (RFC 2920)
    decrypted: bool = False  # read from decrypted TLS records


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    row: ConversationRow
    tcp_stage: str
    packets: tuple[PacketRow, ...]
    transcript: tuple[TranscriptLine, ...]
    capabilities: tuple[str, ...]
    anomalies: tuple[str, ...]  # "bare LF line ending ×3", "truncated frame ×1"
    # One line on what the conversation waits for, e.g. "server has not replied to DATA
    # end-of-data for 47 s; client's last segment was ACKed"; "" when nothing is owed.
    stall: str = ""
    phases: tuple[PhaseLatency, ...] = ()
    tcp: TcpHealth | None = None
    tls: TlsSummary | None = None  # None while the conversation is not SMTP
    # Packets dropped from the middle of a long conversation to bound its memory; they were
    # between packets[packets_not_kept_at - 1] and packets[packets_not_kept_at].
    packets_not_kept: int = 0
    packets_not_kept_at: int = 0


@dataclass(frozen=True, slots=True)
class TcpHealth:
    """The TCP panel of a conversation: per-direction indicators plus Zeek's summary of the connection."""

    client: TcpDirectionHealth
    server: TcpDirectionHealth
    initial_rtt: float | None  # seconds, SYN to the ACK that completes the handshake
    zeek_state: str  # S0, S1, SF, REJ, RSTO, RSTR, SH, OTH, ...
    history: str  # Zeek's history letters, such as "ShADadFf"


# Not frozen: built per line or per phase, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class PhaseLatency:
    """One measured phase of a conversation: TCP connect, banner wait, a command's reply, body transfer."""

    phase: str  # "connect", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "body", "end-of-data", "QUIT", "TLS", ...
    start: float  # capture time the phase began
    first_byte: float | None  # seconds to the first byte of the answer, when there is one
    complete: float | None  # seconds to the complete answer; None while still waiting
