"""Effects of a server reply on a conversation: the mixin behind ``SmtpConversation``.

``SmtpConversation`` pairs each reply with its command. The methods here then
update the state that the reply decides: capabilities, STARTTLS, AUTH, the body
of a DATA or BDAT, the result of the transaction and its queue ID. They read and
write the conversation's own attributes, declared below for the type checker.

Pure module: standard library and ``smtptop.direction`` only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from smtptop.direction import Direction
from smtptop.smtp.auth import SaslExchange
from smtptop.smtp.commands import HELLO_VERBS
from smtptop.smtp.events import (
    CommandKind,
    CommandRecord,
    Event,
    Phase,
    Recipient,
    ReplyRecord,
    TlsMode,
    TlsStarted,
    Transaction,
)
from smtptop.smtp.reply_text import parse_queue_id

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


class ClientMode(Enum):
    COMMAND = "command"
    BODY = "body"
    OCTETS = "octets"
    ENCRYPTED = "encrypted"


@dataclass(slots=True)
class _Pending:
    """A client line waiting for its reply, with what the reply will update."""

    record: CommandRecord
    transaction: Transaction | None = None
    recipient: Recipient | None = None
    previous: Transaction | None = None  # the transaction a rejected MAIL falls back to
    bdat_last: bool = False
    # The client bytes after this gate command were read on a guessed reply, so the
    # real reply, if it comes, must not switch the client mode a second time.
    assumed: bool = False


class ReplyEffects:
    """State changes caused by replies; mixed into ``SmtpConversation``, which owns the state."""

    if not TYPE_CHECKING:
        # Empty, so that ``SmtpConversation`` can have slots. Hidden from mypy, which
        # would otherwise check this class's attribute assignments against it.
        __slots__ = ()

    capabilities: tuple[str, ...]
    starttls: str
    tls_mode: TlsMode
    phase: Phase
    _out: list[Event]
    _pending: deque[_Pending]
    _tls_check: frozenset[Direction]
    _current: Transaction | None
    _sasl: SaslExchange | None
    _sasl_expected: bool
    _sasl_guessed: bool
    _tls_start_ts: float | None

    if TYPE_CHECKING:

        def has_capability(self, keyword: str) -> bool: ...

        def _start_body(self, transaction: Transaction | None, ts: float) -> None: ...

    def _apply_reply(self, pending: _Pending, reply: ReplyRecord) -> None:
        record = pending.record
        code = reply.code
        if record.kind is CommandKind.SASL_RESPONSE:
            self._auth_reply(code, pending.assumed)
        elif record.kind is CommandKind.END_OF_DATA:
            self._finish(pending.transaction, code, reply.ts)
            self._note_queue_id(pending.transaction, reply)
            self._phase_after_reply(Phase.IDLE)
        elif record.verb in HELLO_VERBS:
            self._hello_reply(record.verb, reply)
        elif record.verb == "STARTTLS":
            self._starttls_reply(reply, pending.assumed)
        elif record.verb == "AUTH":
            self._auth_reply(code, pending.assumed)
        elif record.verb == "MAIL" and code // 100 != 2:
            self._finish(pending.transaction, code, reply.ts)
            if self._current is pending.transaction:
                self._current = pending.previous
        elif record.verb == "RCPT" and pending.recipient is not None:
            pending.recipient.code = code
        elif record.verb == "DATA":
            self._data_reply(pending, reply)
        elif record.verb == "BDAT":
            self._bdat_reply(pending, reply)

    def _hello_reply(self, verb: str, reply: ReplyRecord) -> None:
        if reply.code // 100 != 2:
            return
        if verb != "HELO":
            # RFC 5321 section 4.1.1.1: the lines after the first are extension keywords.
            keywords = (line[4:].strip().upper() for line in reply.lines[1:])
            self.capabilities = tuple(keyword for keyword in keywords if keyword)
        if self.starttls in ("unknown", "offered", "not-offered"):
            offered = self.has_capability("STARTTLS")
            self.starttls = "offered" if offered else "not-offered"

    def _starttls_reply(self, reply: ReplyRecord, assumed: bool) -> None:
        # RFC 3207 section 4: only the 220 code starts TLS, whatever the reply text.
        if reply.code != 220:
            self.starttls = "refused"
            self._phase_after_reply(Phase.IDLE)
            return
        self.starttls = "accepted"
        self.tls_mode = TlsMode.STARTTLS
        self._tls_start_ts = reply.ts
        self.phase = Phase.TLS
        self._tls_check = self._tls_check | {S2C}
        if not assumed:
            # After a guessed reply the client's next bytes were checked already.
            self._tls_check = self._tls_check | {C2S}
        self._out.append(TlsStarted(reply.ts, TlsMode.STARTTLS))

    def _auth_reply(self, code: int, assumed: bool) -> None:
        # RFC 4954 section 4: 334 requests one more SASL response, and any other code ends AUTH.
        if code == 334:
            if not assumed:
                # After a guessed 334 the response may have been read already.
                self._sasl_expected = True
            self._sasl_guessed = False
            return
        self._sasl = None
        self._sasl_expected = False
        self._phase_after_reply(Phase.IDLE)

    def _data_reply(self, pending: _Pending, reply: ReplyRecord) -> None:
        # RFC 5321 section 4.1.1.4: a body follows only a 354 reply.
        if reply.code == 354:
            if not pending.assumed:
                self._start_body(pending.transaction, reply.ts)
            return
        self._finish(pending.transaction, reply.code, reply.ts)
        self._phase_after_reply(Phase.IDLE)

    def _bdat_reply(self, pending: _Pending, reply: ReplyRecord) -> None:
        # RFC 3030 section 2: a failed chunk fails the message; the reply to the
        # LAST chunk is the reply to the whole message.
        if reply.code // 100 != 2 or pending.bdat_last:
            self._finish(pending.transaction, reply.code, reply.ts)
        if pending.bdat_last:
            self._note_queue_id(pending.transaction, reply)
            self._phase_after_reply(Phase.IDLE)

    def _phase_after_reply(self, phase: Phase) -> None:
        # The phase follows the client's newest line. A reply to an older pipelined
        # command must not move it back, as a 250 to end-of-data after QUIT would.
        if not self._pending and self.phase is not Phase.REJECTED:
            self.phase = phase

    # ------------------------------------------------------------------ transactions

    def _finish(self, transaction: Transaction | None, code: int, ts: float) -> None:
        if transaction is None or not transaction.is_open:
            return
        transaction.result_code = code
        transaction.end_ts = ts
        if code // 100 == 2:
            transaction.result = "accepted"
        elif code // 100 == 4:
            transaction.result = "temp-failed"
        else:
            transaction.result = "rejected"

    @staticmethod
    def _note_queue_id(transaction: Transaction | None, reply: ReplyRecord) -> None:
        # Only a 2xx final reply names a queued message (RFC 5321 section 4.1.1.4).
        if transaction is not None and reply.code // 100 == 2:
            transaction.queue_id = parse_queue_id(reply.lines)

    def _abort(self, transaction: Transaction, by: str, ts: float) -> None:
        transaction.result = "aborted"
        transaction.aborted_by = by
        transaction.end_ts = ts

    def _end_current(self, verb: str, ts: float) -> None:
        # RFC 5321 sections 4.1.1.1 and 4.1.1.5: EHLO, HELO and RSET clear the
        # transaction; QUIT ends the session with it.
        if self._current is not None and self._current.is_open:
            self._abort(self._current, verb, ts)
        self._current = None
