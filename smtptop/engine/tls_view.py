"""The TLS mode of a conversation and its ``TlsSummary``, for rows, details and JSON.

The mode needs both the SMTP dialogue and the TCP connection: "a plaintext
client on an implicit-TLS port" is a connection to port 465 where nobody sends a
byte, because the client waits for a 220 greeting while the server waits for a
ClientHello. The port alone never makes a conversation implicit TLS; only
TLS bytes from the server do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtptop.smtp.events import TlsMode
from smtptop.tls.summary import (
    MODE_IMPLICIT,
    MODE_PLAINTEXT,
    MODE_PLAINTEXT_CLIENT_TLS_PORT,
    MODE_STARTTLS,
    MODE_TLS_CLIENT_PLAINTEXT_SERVER,
    TlsSummary,
)

if TYPE_CHECKING:
    from smtptop.engine.conversation import Conversation

# RFC 8314 section 7.3: SMTP submission over implicit TLS.
IMPLICIT_TLS_PORTS = frozenset({465})
# How long a silent connection to an implicit-TLS port must last to count as the
# mismatch. A client that speaks TLS sends its ClientHello within a round trip.
SILENCE_SECONDS = 0.5


def tls_mode(conversation: Conversation, now: float) -> str:
    """Name the TLS mode of a conversation with one of the summary's MODE_* values."""
    smtp = conversation.smtp
    if smtp is None:
        return MODE_PLAINTEXT
    if smtp.tls_mode is TlsMode.IMPLICIT:
        return MODE_IMPLICIT
    if smtp.tls_mode is TlsMode.STARTTLS:
        return MODE_STARTTLS
    if smtp.client_tls_first:
        return MODE_TLS_CLIENT_PLAINTEXT_SERVER
    tcp = conversation.tcp
    established = tcp.established_ts
    if established is None or conversation.payload_bytes:
        return MODE_PLAINTEXT
    if tcp.server[1] in IMPLICIT_TLS_PORTS:
        end = conversation.last_seen if tcp.closed else now
        if end - established >= SILENCE_SECONDS:
            return MODE_PLAINTEXT_CLIENT_TLS_PORT
    return MODE_PLAINTEXT


def tls_summary(conversation: Conversation, now: float) -> TlsSummary:
    """Freeze the conversation's TLS state into a summary, also when it has no TLS."""
    smtp = conversation.smtp
    mode = tls_mode(conversation, now)
    starttls = smtp.starttls if smtp is not None else "unknown"
    if smtp is None or smtp.tls is None:
        return TlsSummary(mode=mode, starttls=starttls)
    return smtp.tls.summary(mode, starttls)


def tls_column(summary: TlsSummary) -> str:
    """Return the conversation table's TLS column: "1.3", "1.2 dec", "failed 40"."""
    if summary.alert is not None and summary.alert.level == "fatal" and summary.starttls == "failed":
        return f"failed {summary.alert.code}"
    if summary.starttls == "failed":
        return "failed"
    if summary.mode == MODE_TLS_CLIENT_PLAINTEXT_SERVER:
        return "mismatch"
    if summary.mode == MODE_PLAINTEXT_CLIENT_TLS_PORT:
        return "silent"
    if summary.version is None:
        return "" if summary.mode == MODE_PLAINTEXT else "…"
    text = summary.version.removeprefix("TLS ").removeprefix("SSL ")
    return f"{text} dec" if summary.decrypted else text
