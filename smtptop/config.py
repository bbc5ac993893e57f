"""The configuration tree: built once by the CLI, frozen, passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from smtptop.record.options import RecordConfig

SMTP_PORTS = frozenset({25, 465, 587, 2525})

# Large by default: on a 2-core test machine, tcpdump recording a loopback SMTP
# load test dropped half the packets with a 2 MB kernel buffer and none with 64 MiB.
DEFAULT_BUFFER_KIB = 64 * 1024
# The bench's 20,000-message smtp-source load is 399,987 frames of about 130
# bytes, about 110 MiB once queued (capture/drain.py counts 150 bytes per frame
# besides its data), so such a burst fits this default twice over.
DEFAULT_QUEUE_MIB = 256
DEFAULT_SNAPLEN = 262144
DEFAULT_LINGER_SECONDS = 120.0


def default_filter(ports: frozenset[int]) -> str:
    """Build the live-capture BPF filter that matches every SMTP port."""
    return " or ".join(f"tcp port {port}" for port in sorted(ports))


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    interface: str | None = "any"  # None when reading a file
    read_file: str | None = None  # a path, or "-" for stdin
    bpf_filter: str | None = None  # None: the default SMTP filter live, no filter for files
    snaplen: int = DEFAULT_SNAPLEN
    buffer_kib: int = DEFAULT_BUFFER_KIB
    queue_mib: int = DEFAULT_QUEUE_MIB  # live: frames read from the kernel buffer, waiting for the engine
    promiscuous: bool = False
    realtime: bool = False  # replay a file at its recorded pace instead of as fast as possible
    rebase_to_now: bool = False  # move a paced replay's capture times to the wall clock (the demo)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    smtp_ports: frozenset[int] = SMTP_PORTS
    reveal_secrets: bool = False
    # How long a closed conversation waits for late packets before the headless output
    # reports it, on the capture clock. It stays listed until the count limit evicts it.
    linger_seconds: float = DEFAULT_LINGER_SECONDS
    frame_store_mib: int = 64  # captured frame bytes kept for the hex view, over all conversations
    hole_grace_seconds: float = 1.0  # how long a hole the peer has ACKed may wait for a late segment
    stall_seconds: float = 10.0  # a conversation waiting longer than this for its next move is stalled
    traffic_window_seconds: float = 60.0  # the sliding window of the dashboard's rates and percentiles
    tls_keylog: str | None = None  # NSS key log file (--keylog or SSLKEYLOGFILE)
    tls_rsa_key: str | None = None  # an RSA private key for any server (--rsa-key)
    tls_rsa_keys: str | None = None  # Wireshark's RSA keys list (--rsa-keys)
    tls_keylog_watch: bool = False  # re-read the key log as it grows (live capture)
    # Conversations kept, open and closed. A new conversation over the limit evicts the closed
    # ones seen least recently, then open ones silent for stale_open_seconds.
    max_conversations: int = 10_000
    # An open conversation silent this long is taken as abandoned (its FIN or RST was not
    # captured), so a new conversation over the limit may evict it like a closed one. Ten
    # minutes is twice the longest SMTP server timeout of RFC 5321 section 4.5.3.2.
    stale_open_seconds: float = 600.0
    # Packet records kept per conversation: the first half and the newest. A message at Postfix's
    # default message_size_limit (10,240,000 bytes) is 7,072 segments of 1,448 bytes, about 14,000
    # packets with one ACK each, so it fits whole.
    max_packets_per_conversation: int = 20_000


@dataclass(frozen=True, slots=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    record: RecordConfig | None = None  # -w and its rotation options; None when not recording
    stall_seconds: float = 10.0
    demo: bool = False
    output: str = "ui"  # "ui", "json", "report", or "save" for --save alone
    save: str | None = None  # --save: the pcap file for the selected conversations of -r FILE
    select: str = ""  # --select: the text a conversation must contain to be saved
