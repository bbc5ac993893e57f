"""The configuration tree: built once by the CLI, frozen, passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

SMTP_PORTS = frozenset({25, 465, 587, 2525})

# Large by default: on a 2-core test machine a 2 MB kernel buffer dropped
# half the packets of a loopback SMTP load test, and 64 MiB dropped none.
DEFAULT_BUFFER_KIB = 64 * 1024
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
    promiscuous: bool = False
    realtime: bool = False  # replay a file at its recorded pace instead of as fast as possible
    rebase_to_now: bool = False  # move a paced replay's capture times to the wall clock (the demo)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    smtp_ports: frozenset[int] = SMTP_PORTS
    reveal_secrets: bool = False
    linger_seconds: float = DEFAULT_LINGER_SECONDS  # how long a closed conversation stays listed, on the capture clock
    max_closed: int = 10_000  # closed conversations kept before the oldest are dropped
    frame_store_mib: int = 64  # captured frame bytes kept for the hex view, over all conversations
    hole_grace_seconds: float = 1.0  # how long a hole the peer has ACKed may wait for a late segment
    stall_seconds: float = 10.0  # a conversation waiting longer than this for its next move is stalled
    traffic_window_seconds: float = 60.0  # the sliding window of the dashboard's rates and percentiles
    tls_keylog: str | None = None  # NSS key log file (--keylog or SSLKEYLOGFILE)
    tls_rsa_key: str | None = None  # an RSA private key for any server (--rsa-key)
    tls_rsa_keys: str | None = None  # Wireshark's RSA keys list (--rsa-keys)
    tls_keylog_watch: bool = False  # re-read the key log as it grows (live capture)


@dataclass(frozen=True, slots=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    stall_seconds: float = 10.0
    demo: bool = False
    output: str = "ui"  # "ui", "json" or "report"
