"""The timing mixin behind ``SmtpConversation``: the owed next move and the phase latencies.

The waiting state is derived on demand from the conversation's reply queue and
read mode, so it costs nothing per chunk. TLS handshake timing scans record
headers per direction only until each side's first application data record.
The methods read the conversation's own attributes, declared below for the type
checker.

Pure module: standard library and ``smtptop.direction`` only.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from smtptop.direction import Direction
from smtptop.smtp.events import CommandKind, CommandRecord, PhaseLatency, ReplyRecord, TlsMode
from smtptop.smtp.lines import StreamBuffer
from smtptop.smtp.reply_effects import ClientMode, _Pending
from smtptop.smtp.tls_records import RecordScanner

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


class Timing:
    """Waiting state and phase timing; mixed into ``SmtpConversation``, which owns the state."""

    if not TYPE_CHECKING:
        # Empty, so that ``SmtpConversation`` can have slots. Hidden from mypy, which
        # would otherwise check this class's attribute assignments against it.
        __slots__ = ()

    tls_mode: TlsMode
    last_reply: ReplyRecord | None
    _pending: deque[_Pending]
    _client_mode: ClientMode
    _server_encrypted: bool
    _tls_check: frozenset[Direction]
    _greeting_done: bool
    _closed: bool
    _session_over: bool
    _established_ts: float | None
    _client_last_ts: float | None
    _octets_owner: _Pending | None
    _sasl_expected: bool
    _body_start: float | None
    _body_first_ts: float | None
    _client_tls: RecordScanner
    _server_tls: RecordScanner
    _tls_start_ts: float | None
    _tls_last_sender: Direction | None
    _tls_last_ts: float
    _tls_handshake_over: bool

    def _tls_feed(self, direction: Direction, data: bytes, ts: float) -> None:
        raise NotImplementedError  # SmtpConversation reads the records

    def waiting(self) -> tuple[Direction | None, float | None, str]:
        """Return who owes the next move, since when, and what it is.

        These are ``waiting_on``, ``waiting_since`` and ``waiting_for`` together,
        derived once, for a caller that needs more than one of them.
        """
        if self._closed or self._session_over:
            return None, None, ""
        if self._in_tls():
            return self._waiting_in_tls()
        if not self._greeting_done:
            return S2C, self._established_ts, "greeting"
        if self._client_mode is ClientMode.OCTETS and self._octets_owner is not None:
            # RFC 3030 section 2: the server replies to BDAT only after the whole chunk.
            return C2S, self._client_last_ts, "rest of message body"
        if self._pending:
            oldest = self._pending[0].record
            return S2C, oldest.ts, _reply_due(oldest)
        if self._client_mode is ClientMode.BODY and self._body_start is not None:
            if self._body_first_ts is None:
                return C2S, self._body_start, "message body"
            last = self._client_last_ts
            body_since = self._body_start if last is None else max(last, self._body_start)
            return C2S, body_since, "rest of message body"
        since = self.last_reply.ts if self.last_reply is not None else None
        if self._sasl_expected:
            return C2S, since, "AUTH response"
        return C2S, since, "next command"

    def _in_tls(self) -> bool:
        if self.tls_mode is TlsMode.NONE:
            # Only the client speaks TLS, to a plaintext server: the SMTP rules apply.
            return False
        encrypted = self._client_mode is ClientMode.ENCRYPTED or self._server_encrypted
        return encrypted or C2S in self._tls_check

    def _waiting_in_tls(self) -> tuple[Direction | None, float | None, str]:
        if self._client_tls.done and self._server_tls.done:
            # The SMTP dialogue inside TLS is not visible.
            return None, None, ""
        if self._tls_last_sender is None:
            since = self._tls_start_ts
            if since is None:
                since = self._established_ts
            return C2S, since, "TLS handshake"
        # The handshake alternates flights (RFC 8446 section 2), so the side that did
        # not send the newest record owes the next one.
        owner = S2C if self._tls_last_sender is C2S else C2S
        return owner, self._tls_last_ts, "TLS handshake"

    def _tls_bytes(self, direction: Direction, data: bytes, ts: float) -> None:
        """Hand TLS bytes to the session, and scan them for the handshake timing until it is over."""
        self._tls_feed(direction, data, ts)
        if self._tls_handshake_over:
            return
        scanner = self._client_tls if direction is C2S else self._server_tls
        scanner.feed(data, ts)
        self._tls_last_sender = direction
        self._tls_last_ts = ts
        if self._client_tls.done and self._server_tls.done:
            self._tls_handshake_over = True

    def _tls_buffered(self, direction: Direction, buffer: StreamBuffer) -> None:
        """Scan the bytes still in a buffer that is about to be dropped because TLS starts."""
        for data, ts in buffer.unconsumed_chunks():
            self._tls_bytes(direction, data, ts)

    def _body_phase(self, end_ts: float | None) -> PhaseLatency:
        start = self._body_start if self._body_start is not None else 0.0
        first = self._body_first_ts
        if first is not None and first < start:
            # The client sent body bytes before the 354 reply, although RFC 2920
            # section 3.1 makes DATA the last command of a group, so the transfer
            # started at its first byte.
            start = first
        return PhaseLatency("body", start, first, end_ts)


def command_phase(record: CommandRecord) -> PhaseLatency:
    """Time a client line from its send time to its reply."""
    if record.kind is CommandKind.SASL_RESPONSE:
        phase = "AUTH response"
    elif record.kind is CommandKind.END_OF_DATA:
        phase = "end-of-data"
    else:
        phase = record.verb
    reply = record.reply
    if reply is None:
        return PhaseLatency(phase, record.ts, None, None)
    return PhaseLatency(phase, record.ts, reply.first_ts, reply.ts)


def phase_start(phase: PhaseLatency) -> float:
    return phase.start


def _reply_due(record: CommandRecord) -> str:
    """Name the reply that the server owes to ``record``, for ``waiting_for``."""
    if record.kind is CommandKind.SASL_RESPONSE:
        return "reply to AUTH response"
    if record.kind is CommandKind.END_OF_DATA:
        return "reply to DATA end-of-data"
    if record.verb == "DATA":
        return "354 to DATA"  # RFC 5321 section 4.1.1.4
    return f"reply to {record.verb[:32]}"
