"""Frozen views of one TLS negotiation, for the screens, the compare view and JSON.

A ``TlsSummary`` is built from a live ``TlsSession`` under the engine's lock and
never changes afterwards. Every value is already in words (version and cipher
names, alert names), so front ends only lay it out. Key material never appears
here: the summary contains what a passive observer sees plus whether decryption
worked and why not.

Pure module: standard library and ``smtptop.direction`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtptop.direction import Direction

# Values of TlsSummary.mode.
MODE_PLAINTEXT = "plaintext"
MODE_STARTTLS = "starttls"
MODE_IMPLICIT = "implicit"
MODE_TLS_CLIENT_PLAINTEXT_SERVER = "tls-client-plaintext-server"
MODE_PLAINTEXT_CLIENT_TLS_PORT = "plaintext-client-tls-port"


@dataclass(frozen=True, slots=True)
class HandshakeStep:
    """One step of a negotiation as seen on the wire, such as the ServerHello or the client's Finished."""

    name: str  # "ClientHello", "ServerHello", "Certificate", "Finished", "alert", "application data", ...
    sender: Direction
    ts: float  # capture time of the packet that completed the step
    detail: str = ""  # "TLS 1.3, TLS_AES_128_GCM_SHA256"; "fatal handshake_failure (40)"
    encrypted: bool = (
        False  # seen only as an encrypted record (its name is inferred from its position)
    )


@dataclass(frozen=True, slots=True)
class TlsAlert:
    level: str  # "warning" or "fatal"
    description: str  # "handshake_failure"
    code: int  # 40
    sender: Direction
    ts: float


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """The server's leaf certificate in words; validity is judged at the capture time."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: str  # ISO 8601, UTC
    not_after: str
    key: str  # "RSA 2048", "EC 256"
    validity: str  # "valid", "expired" or "not yet valid" at the handshake's capture time
    self_signed: bool
    chain_length: int  # certificates the server sent


@dataclass(frozen=True, slots=True)
class TlsSummary:
    """Everything known about the negotiation of one conversation."""

    mode: str  # one of the MODE_* values
    starttls: str  # "not-offered", "offered", "accepted", "refused", "failed" or "unknown"
    # ClientHello
    offered_versions: tuple[str, ...] = ()
    offered_ciphers: tuple[str, ...] = ()
    sni: str | None = None
    offered_alpn: tuple[str, ...] = ()
    offered_groups: tuple[str, ...] = ()
    offered_extensions: tuple[str, ...] = ()
    offered_resumption: tuple[str, ...] = ()  # "session ID", "ticket", "PSK"
    # ServerHello
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    group: str | None = None  # the key share group (TLS 1.3)
    resumed: bool | None = None  # None until the ServerHello is seen
    resumption: str = ""  # how it resumed: "session ID", "ticket" or "PSK"
    extended_master_secret: bool | None = None  # None when not negotiable (TLS 1.3) or unknown
    encrypt_then_mac: bool | None = None
    certificate: CertificateInfo | None = None
    alert: TlsAlert | None = None  # the first fatal alert, else the first alert
    steps: tuple[HandshakeStep, ...] = ()
    handshake_seconds: float | None = None  # ClientHello to the client's Finished
    decrypted: bool = False
    decrypt_error: str | None = (
        None  # one line on why it is not decrypted; None when it is or TLS is absent
    )
    records: int = 0  # TLS records seen, both directions
    notes: tuple[str, ...] = ()  # parse problems, in words

    @property
    def handshake_ms(self) -> float | None:
        if self.handshake_seconds is None:
            return None
        return round(self.handshake_seconds * 1000.0, 3)
