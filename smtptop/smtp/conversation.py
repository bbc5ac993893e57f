"""The sans-IO SMTP conversation: bytes and capture times in, events and state out.

Theory of operation
-------------------
One ``SmtpConversation`` follows one TCP connection. The engine feeds it each
direction's in-order bytes (``receive``), holes in a direction (``gap``) and the
end of the connection (``close``), always with the packet's capture time. Each
call returns the events it produced and updates the state that the properties
expose. Nothing here raises for bad input: violations are counted as anomalies.

Each direction has a ``StreamBuffer``. Server bytes are split into reply lines
and assembled into replies. The first complete reply is the greeting, whatever
the client sent before it (RFC 5321 section 3.1). Every later reply pairs with
the oldest command still waiting in a FIFO, which keeps pairing and per-command
latency exact under pipelining (RFC 2920 section 3.1).

Client bytes are read in one of four modes:

- command: one line is one command, or one SASL response after a 334 reply;
- body: a DATA body, scanned with ``bytes.find`` for CRLF.CRLF (RFC 5321 section
  4.1.1.4), never byte by byte;
- octets: a counted run of bytes, such as a BDAT chunk (RFC 3030 section 2);
- encrypted: TLS records after STARTTLS or implicit TLS, not parsed.

TLS is decided per direction. Before any greeting, a direction whose first bytes
are a TLS record header (RFC 8446 section 5.1) is opaque from then on. The mode
is ``TlsMode.IMPLICIT`` only when the server's first bytes are TLS. A client that
starts TLS against a plaintext server stays opaque while the server's greeting
and replies are still parsed: the mode stays ``TlsMode.NONE`` and the mismatch is
counted as an anomaly. Only the ``implicit_tls`` argument makes both sides
opaque from the start; a port number never does. Later, a TLS record where a
command line should start is skipped whole by its length field and counted,
because TLS may start only after a 220 reply to STARTTLS (RFC 3207 section 4).
A line whose first word is not printable ASCII is binary data and is counted,
not recorded as a command.

The meaning of the client bytes after DATA, STARTTLS, AUTH and a SASL response
depends on the server's reply: a body only after 354, TLS only after 220, SASL
data only after 334. A server reads them only after replying, so this machine
does the same: client parsing stops at such a command (the "gate") and resumes
when its reply arrives. The held bytes keep their capture times. While the
server has sent no byte at all (a one-sided capture), nothing is held:
``_assume_gate_reply`` guesses the usual positive outcome (354, 220 or 334) as
soon as client bytes follow the gate. If the server has spoken but the reply
never comes (a lost segment), the guess is made once the held bytes pass
``MAX_PARTIAL_LINE``, at a gap in the client stream, or at close. A real reply
that arrives after the guess is paired but does not switch the client mode again.

After a gap, a direction drops its partial line and resynchronises on the next
line that parses: a known verb on the client side, a reply line on the server
side. A gap inside a body or a BDAT chunk counts as body octets, and the body
continues until its terminator or chunk end.

Pure module: standard library and ``smtptop.direction`` only.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from enum import Enum

from smtptop.direction import Direction
from smtptop.smtp.auth import SaslExchange
from smtptop.smtp.commands import (
    HELLO_VERBS,
    KNOWN_VERBS,
    extract_path,
    has_binary_verb,
    parse_bdat,
    split_command,
)
from smtptop.smtp.events import (
    Anomaly,
    BodyData,
    BodyEnd,
    Command,
    CommandKind,
    CommandRecord,
    ConnectionEnd,
    Event,
    GapNoted,
    Phase,
    Recipient,
    Reply,
    ReplyRecord,
    SaslResponse,
    TlsMode,
    TlsStarted,
    Transaction,
)
from smtptop.smtp.lines import MAX_LINE_OCTETS, MAX_PARTIAL_LINE, Line, StreamBuffer
from smtptop.smtp.redact import MASK
from smtptop.smtp.replies import ReplyAssembler, parse_reply_line
from smtptop.smtp.tls_records import (
    RECORD_HEADER_OCTETS,
    is_tls_content_type,
    record_size,
    starts_like_tls_record,
)

logger = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

END_OF_BODY = b"\r\n.\r\n"
# A body may also end right at its start: the DATA line's CRLF is the first CRLF.
EMPTY_BODY = b".\r\n"
# RFC 5321 section 3.8 lets a server send 421 at any time before it closes. Many
# servers also send an unsolicited 451 on a timeout. Neither counts as an anomaly.
UNSOLICITED_CODES = frozenset({421, 451})
GREETING_CODES = frozenset({220, 421, 554})  # RFC 5321 section 3.1 and 4.3.2


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


class SmtpConversation:
    """The SMTP dialogue of one TCP connection, rebuilt from both byte streams."""

    def __init__(self, implicit_tls: bool = False, reveal_secrets: bool = False) -> None:
        self.reveal_secrets = reveal_secrets
        self.greeting: ReplyRecord | None = None
        self.greeting_rejected = False
        self.commands: list[CommandRecord] = []
        self.transactions: list[Transaction] = []
        self.capabilities: tuple[str, ...] = ()
        self.starttls = "unknown"
        self.tls_mode = TlsMode.NONE
        self.phase = Phase.CONNECT
        self.last_command: CommandRecord | None = None
        self.last_reply: ReplyRecord | None = None
        self.anomalies: dict[str, int] = {}

        self._client = StreamBuffer()
        self._server = StreamBuffer()
        self._replies = ReplyAssembler()
        self._pending: deque[_Pending] = deque()
        self._out: list[Event] = []
        self._client_mode = ClientMode.COMMAND
        self._server_encrypted = False
        # Directions whose next byte decides between TLS and plaintext after STARTTLS.
        self._tls_check: set[Direction] = set()
        self._gate: _Pending | None = None
        self._greeting_done = False
        self._client_started = False
        self._server_started = False
        self._client_tls_first = False  # the client's first bytes were a TLS record
        self._server_seen = False  # any server byte or server gap so far
        self._closed = False
        self._client_resync = False
        self._server_resync = False
        self._current: Transaction | None = None
        self._sasl: SaslExchange | None = None
        self._sasl_expected = False
        self._sasl_guessed = False  # _sasl_expected set by assumption, not by a 334 reply
        self._auth_user: str | None = None
        self._octets_left = 0
        self._octets_owner: _Pending | None = None  # the BDAT owning the octets; None for TLS
        self._body_size = 0
        self._body_at_start = False
        self._body_owner: Transaction | None = None
        self._implicit_pending = implicit_tls
        if implicit_tls:
            self._start_implicit_tls()

    # ------------------------------------------------------------------ public API

    def receive(self, direction: Direction, data: bytes, ts: float) -> list[Event]:
        """Feed the next in-order bytes of one direction; return the events they complete."""
        self._out = []
        if self._implicit_pending:
            self._implicit_pending = False
            self._out.append(TlsStarted(ts, TlsMode.IMPLICIT))
        if data:
            try:
                if direction is C2S:
                    self._receive_client(data, ts)
                else:
                    self._receive_server(data, ts)
            except Exception:  # noqa: BLE001 - bad traffic must never stop the capture loop
                logger.debug("SMTP parser failed on %d bytes", len(data), exc_info=True)
                self._anomaly("parser error", "", ts)
        return self._take_events()

    def gap(self, direction: Direction, length: int, ts: float) -> list[Event]:
        """Note a hole of ``length`` bytes in one direction; the missing bytes stay unknown."""
        self._out = [GapNoted(direction, length, ts)]
        try:
            if direction is C2S:
                self._client_gap(length, ts)
            else:
                self._server_gap()
        except Exception:  # noqa: BLE001 - see receive
            logger.debug("SMTP parser failed on a gap", exc_info=True)
            self._anomaly("parser error", "", ts)
        return self._take_events()

    def close(self, ts: float) -> list[Event]:
        """End the conversation: unanswered commands stay unanswered, open transactions abort."""
        self._out = []
        if self._closed:
            return []
        self._closed = True
        try:
            while self._gate is not None and len(self._client):
                self._assume_gate_reply(ts)
                self._process_client()
        except Exception:  # noqa: BLE001 - see receive
            logger.debug("SMTP parser failed at close", exc_info=True)
            self._anomaly("parser error", "", ts)
        for transaction in self.transactions:
            if transaction.is_open:
                self._abort(transaction, "close", ts)
        if self.phase is not Phase.REJECTED:
            self.phase = Phase.CLOSED
        self._out.append(ConnectionEnd(ts, len(self._pending)))
        return self._take_events()

    @property
    def auth_user(self) -> str | None:
        """The SASL user name, masked unless the conversation reveals secrets."""
        if self._auth_user is None or self.reveal_secrets:
            return self._auth_user
        return MASK

    @property
    def outstanding(self) -> int:
        """Client lines still waiting for a reply."""
        return len(self._pending)

    @property
    def waiting_on(self) -> Direction | None:
        """The side that owes the next move: the server while a reply is due, else the client."""
        if self._closed or (self.tls_mode is not TlsMode.NONE and self._server_encrypted):
            return None
        if self._pending or not self._greeting_done:
            return S2C
        return C2S

    def has_capability(self, keyword: str) -> bool:
        """Return whether the EHLO reply listed ``keyword`` (case-insensitive, first word only)."""
        expected = keyword.upper()
        return any(line.split(" ", 1)[0] == expected for line in self.capabilities)

    def is_encrypted(self, direction: Direction) -> bool:
        """Return whether this direction's bytes are TLS records, which are no longer parsed."""
        if direction is C2S:
            return self._client_mode is ClientMode.ENCRYPTED
        return self._server_encrypted

    # ------------------------------------------------------------------ plumbing

    def _take_events(self) -> list[Event]:
        events, self._out = self._out, []
        return events

    def _anomaly(self, name: str, detail: str, ts: float) -> None:
        self.anomalies[name] = self.anomalies.get(name, 0) + 1
        self._out.append(Anomaly(name, detail, ts))

    def _start_implicit_tls(self) -> None:
        self.tls_mode = TlsMode.IMPLICIT
        self.phase = Phase.TLS
        self._client_mode = ClientMode.ENCRYPTED
        self._server_encrypted = True
        self._client.clear()
        self._server.clear()

    def _detect_tls_first(self, direction: Direction, buffer: StreamBuffer, ts: float) -> bool | None:
        """Check whether a direction's first bytes, before any greeting, are a TLS record.

        Returns True when they are, False when they are not, and None when too few
        bytes arrived to tell. A TLS client makes only the client side opaque, and
        the server's first bytes decide the mode. A TLS server means implicit TLS
        for both sides, because a TLS server never speaks first (RFC 8446 section 2).
        """
        detected = starts_like_tls_record(buffer.peek(RECORD_HEADER_OCTETS))
        if not detected:
            return detected
        if direction is S2C:
            self._start_implicit_tls()
            self._out.append(TlsStarted(ts, TlsMode.IMPLICIT))
            return True
        # NOTE: when the server never sends a byte, the mode stays NONE although
        # the client may well have been speaking implicit TLS.
        self._client_tls_first = True
        self._client_mode = ClientMode.ENCRYPTED
        buffer.clear()
        return True

    def _check_tls_after_starttls(self, direction: Direction, buffer: StreamBuffer) -> bool:
        """Decide whether the first bytes after a STARTTLS 220 are TLS; True if parsing goes on.

        RFC 3207 section 4 has TLS start right after the 220 reply. TLS-terminating
        devices in front of a server show plaintext SMTP there instead, so plaintext
        is parsed and counted as an anomaly.
        """
        if direction not in self._tls_check or not len(buffer):
            return True
        self._tls_check.discard(direction)
        if is_tls_content_type(buffer.peek(1)[0]):
            buffer.clear()
            if direction is C2S:
                self._client_mode = ClientMode.ENCRYPTED
            else:
                self._server_encrypted = True
            return False
        side = "client" if direction is C2S else "server"
        self._anomaly("plaintext after STARTTLS", side, buffer.ts_at(0))
        return True

    # ------------------------------------------------------------------ client side

    def _receive_client(self, data: bytes, ts: float) -> None:
        if self._client_mode is ClientMode.ENCRYPTED:
            return
        self._client.append(data, ts)
        if not self._client_started:
            if not self._greeting_done and not self._server_started:
                detected = self._detect_tls_first(C2S, self._client, ts)
                if detected is None or detected:
                    return
            self._client_started = True
        if self._gate is not None and len(self._client) > MAX_PARTIAL_LINE:
            self._assume_gate_reply(ts)
        self._process_client()
        self._client.compact()

    def _process_client(self) -> None:
        buffer = self._client
        while len(buffer):
            if self._gate is not None:
                if self._server_seen:
                    return
                # No server byte at all so far: a one-sided capture, where no reply
                # will ever arrive, so the held bytes are read on a guess now.
                self._assume_gate_reply(buffer.ts_at(0))
            mode = self._client_mode
            if mode is ClientMode.ENCRYPTED:
                buffer.clear()
                return
            if mode is ClientMode.OCTETS:
                self._consume_octets()
            elif mode is ClientMode.BODY:
                if not self._consume_body():
                    return
            elif not self._check_tls_after_starttls(C2S, buffer):
                return
            elif not self._read_client_line():
                return

    def _read_client_line(self) -> bool:
        """Read one command-mode line; return False when more bytes are needed."""
        buffer = self._client
        head = buffer.peek(RECORD_HEADER_OCTETS)
        is_record = starts_like_tls_record(head)
        if is_record is None:
            return False
        if is_record:
            # RFC 3207 section 4: TLS starts only after a 220 reply to STARTTLS. A
            # record sent without one is skipped whole by its length field, across
            # chunks, so its bytes never become commands, and the lines after it
            # are read again as commands.
            self._anomaly("TLS without STARTTLS", "", buffer.ts_at(0))
            self._client_mode = ClientMode.OCTETS
            self._octets_left = record_size(head)
            self._octets_owner = None
            return True
        line = buffer.read_line()
        if line is None:
            if buffer.drop_overlong():
                self._anomaly("line over 1000 octets", "client line dropped", buffer.ts_at(0))
            return False
        self._client_line(line)
        return True

    def _check_line(self, line: Line, side: str) -> None:
        if line.bare_lf:
            self._anomaly("bare LF line ending", side, line.ts)
        if line.octets > MAX_LINE_OCTETS:
            self._anomaly("line over 1000 octets", f"{side}, {line.octets} octets", line.ts)

    def _client_line(self, line: Line) -> None:
        text = line.content.decode("utf-8", errors="replace")
        verb, arg = split_command(text)
        if self._sasl_expected:
            self._sasl_expected = False
            if not (self._sasl_guessed and verb in KNOWN_VERBS):
                self._check_line(line, "client")
                self._sasl_response(text, line.ts)
                return
        if self._client_resync:
            if verb not in KNOWN_VERBS:
                logger.debug("skipped a client line while resynchronising after a gap")
                return
            self._client_resync = False
        if has_binary_verb(line.content):
            # Binary data, not a command, even when the server answers it with 500.
            # NOTE: such a reply pairs with the next command instead when that
            # command was sent before the reply arrived.
            self._anomaly("binary data in command stream", f"{line.octets} octets", line.ts)
            return
        self._check_line(line, "client")
        if not verb:
            self._anomaly("empty command line", "", line.ts)
            return
        self._command(verb, arg, line.ts)

    def _record(self, record: CommandRecord) -> _Pending:
        self.commands.append(record)
        self.last_command = record
        pending = _Pending(record)
        self._pending.append(pending)
        return pending

    def _command(self, verb: str, arg: str, ts: float) -> None:
        if not self._greeting_done:
            self._anomaly("command before greeting", verb, ts)
        record = CommandRecord(verb, arg, ts)
        pending = self._record(record)
        self._out.append(Command(verb, arg, ts, record))
        if verb in HELLO_VERBS:
            self._end_current(verb, ts)
            self.phase = Phase.EHLO
        elif verb == "MAIL":
            self._mail(pending, arg, ts)
        elif verb == "RCPT":
            self._rcpt(pending, arg, ts)
        elif verb == "DATA":
            pending.transaction = self._current
            self.phase = Phase.DATA
            self._gate = pending
        elif verb == "BDAT":
            self._bdat(pending, arg, ts)
        elif verb in ("RSET", "QUIT"):
            self._end_current(verb, ts)
            self.phase = Phase.IDLE if verb == "RSET" else Phase.QUIT
        elif verb == "STARTTLS":
            self.phase = Phase.STARTTLS
            self._gate = pending
        elif verb == "AUTH":
            self._auth(arg)
            self._gate = pending
        elif verb not in KNOWN_VERBS:
            self._anomaly("unknown command", verb[:32], ts)

    def _mail(self, pending: _Pending, arg: str, ts: float) -> None:
        if self._current is not None and self._current.is_open:
            # RFC 5321 section 4.1.4: MAIL inside a transaction gets 503.
            self._anomaly("MAIL within a transaction", "", ts)
        transaction = Transaction(extract_path(arg, "FROM:"), ts)
        self.transactions.append(transaction)
        pending.transaction = transaction
        pending.previous = self._current
        self._current = transaction
        self.phase = Phase.MAIL

    def _rcpt(self, pending: _Pending, arg: str, ts: float) -> None:
        self.phase = Phase.RCPT
        if self._current is None:
            self._anomaly("RCPT before MAIL", "", ts)
            return
        recipient = Recipient(extract_path(arg, "TO:"))
        self._current.rcpts.append(recipient)
        pending.transaction = self._current
        pending.recipient = recipient

    def _bdat(self, pending: _Pending, arg: str, ts: float) -> None:
        parsed = parse_bdat(arg)
        pending.transaction = self._current
        if parsed is None:
            # Without a valid size the chunk cannot be delimited; the following
            # bytes are read as commands.
            self._anomaly("invalid BDAT size", arg[:32], ts)
            return
        size, last = parsed
        pending.bdat_last = last
        self.phase = Phase.BODY
        # RFC 3030 section 2: the chunk follows whatever the reply will be.
        self._octets_left = size
        self._octets_owner = pending
        if size:
            self._client_mode = ClientMode.OCTETS
        elif last:
            self._bdat_last_done(pending, ts)

    def _auth(self, arg: str) -> None:
        self.phase = Phase.AUTH
        mechanism, _, initial_response = arg.partition(" ")
        self._sasl = SaslExchange(mechanism)
        if initial_response.strip():
            self._note_user(self._sasl.user_from_response(initial_response.strip()))

    def _sasl_response(self, text: str, ts: float) -> None:
        record = CommandRecord("", text, ts, CommandKind.SASL_RESPONSE)
        pending = self._record(record)
        self._out.append(SaslResponse(ts, record))
        if self._sasl is not None:
            self._note_user(self._sasl.user_from_response(text.strip()))
        self._gate = pending

    def _note_user(self, user: str | None) -> None:
        if user is not None:
            self._auth_user = user

    def _consume_octets(self) -> None:
        buffer = self._client
        ts = buffer.ts_at(min(self._octets_left, len(buffer)) - 1)
        consumed = buffer.skip(self._octets_left)
        self._octets_left -= consumed
        owner = self._octets_owner
        if owner is not None:
            if owner.transaction is not None:
                owner.transaction.data_bytes += consumed
            self._out.append(BodyData(consumed, ts))
        if self._octets_left == 0:
            self._client_mode = ClientMode.COMMAND
            self._octets_owner = None
            if owner is not None and owner.bdat_last:
                self._bdat_last_done(owner, ts)

    def _bdat_last_done(self, pending: _Pending, ts: float) -> None:
        transaction = pending.transaction
        size = transaction.data_bytes if transaction is not None else 0
        self._out.append(BodyEnd(size, ts, pending.record))
        self.phase = Phase.END_OF_DATA
        if transaction is self._current:
            self._current = None

    def _start_body(self, transaction: Transaction | None) -> None:
        self._client_mode = ClientMode.BODY
        self._body_size = 0
        self._body_at_start = True
        self._body_owner = transaction
        self.phase = Phase.BODY

    def _consume_body(self) -> bool:
        """Consume DATA body bytes; return False when the terminator is not here yet.

        The last four bytes stay in the buffer while no terminator is found,
        because they may be the start of a CRLF.CRLF split across chunks.
        """
        buffer = self._client
        if self._body_at_start:
            head = buffer.peek(3)
            if head == EMPTY_BODY:
                buffer.skip(3)
                self._end_body(buffer.ts_at(-1))
                return True
            if len(head) < 3 and EMPTY_BODY.startswith(head):
                return False
            self._body_at_start = False
        # NOTE: only CRLF.CRLF ends a body. A server that also accepts LF.LF ends it
        # earlier, which shows here only as a "reply before end of data" anomaly.
        end = buffer.find(END_OF_BODY)
        if end < 0:
            consumed = buffer.skip(max(len(buffer) - 4, 0))
            if consumed:
                self._body_size += consumed
                self._out.append(BodyData(consumed, buffer.ts_at(-1)))
            return False
        ts = buffer.ts_at(end + len(END_OF_BODY) - 1)
        buffer.skip(end + len(END_OF_BODY))
        self._body_size += end
        if end:
            self._out.append(BodyData(end, ts))
        self._end_body(ts)
        return True

    def _end_body(self, ts: float) -> None:
        transaction = self._body_owner
        if transaction is not None:
            transaction.data_bytes += self._body_size
        record = CommandRecord(".", "", ts, CommandKind.END_OF_DATA)
        pending = self._record(record)
        pending.transaction = transaction
        self._out.append(BodyEnd(self._body_size, ts, record))
        self._client_mode = ClientMode.COMMAND
        self._body_owner = None
        self.phase = Phase.END_OF_DATA
        if transaction is self._current:
            self._current = None

    def _client_gap(self, length: int, ts: float) -> None:
        if self._client_mode is ClientMode.ENCRYPTED:
            return
        while self._gate is not None:
            # The held bytes came before the hole, so they are read now on a guess.
            self._assume_gate_reply(ts)
            self._process_client()
        mode = self._client_mode
        if mode is ClientMode.BODY:
            # The missing bytes were body octets as sent; the body continues.
            self._body_size += len(self._client) + length
            self._body_at_start = False
        elif mode is ClientMode.OCTETS:
            self._octets_gap(length, ts)
        else:
            self._client_resync = True
            self._sasl_expected = False
        self._client.clear()
        self._client.compact()

    def _octets_gap(self, length: int, ts: float) -> None:
        covered = min(length, self._octets_left)
        self._octets_left -= covered
        owner = self._octets_owner
        if owner is not None and owner.transaction is not None:
            owner.transaction.data_bytes += covered
        if self._octets_left:
            return
        self._client_mode = ClientMode.COMMAND
        self._octets_owner = None
        if length > covered:
            self._client_resync = True
        if owner is not None and owner.bdat_last:
            self._bdat_last_done(owner, ts)

    def _assume_gate_reply(self, ts: float) -> None:
        """Stop waiting for the reply to the gate command and guess its usual outcome."""
        gate = self._gate
        if gate is None:
            return
        self._gate = None
        gate.assumed = True
        verb = gate.record.verb
        logger.debug("no reply to %s yet; reading the held client bytes on a guess", verb)
        if verb == "DATA":
            self._start_body(gate.transaction)
        elif verb == "STARTTLS":
            self._tls_check.add(C2S)
        elif self._sasl is not None:
            self._sasl_expected = True
            self._sasl_guessed = True

    # ------------------------------------------------------------------ server side

    def _receive_server(self, data: bytes, ts: float) -> None:
        self._server_seen = True
        if self._server_encrypted:
            return
        buffer = self._server
        buffer.append(data, ts)
        if not self._server_started:
            if not self._client_started:
                detected = self._detect_tls_first(S2C, buffer, ts)
                if detected is None or detected:
                    return
            self._server_started = True
            if self._client_tls_first:
                # Implicit TLS against a plaintext server: the client side stays
                # opaque, the server side is parsed, and tls_mode stays NONE.
                self._anomaly("client started TLS against a plaintext greeting", "", ts)
            if self.phase is Phase.CONNECT:
                self.phase = Phase.GREETING
        while len(buffer) and not self._server_encrypted:
            if not self._check_tls_after_starttls(S2C, buffer):
                break
            line = buffer.read_line()
            if line is None:
                if buffer.drop_overlong():
                    self._anomaly("line over 1000 octets", "server line dropped", ts)
                break
            self._server_line(line)
        buffer.compact()
        self._client.compact()

    def _server_gap(self) -> None:
        # The server sent the missing bytes, so this is not a one-sided capture.
        self._server_seen = True
        # NOTE: a reply lost in the gap goes unnoticed, so each later reply pairs
        # with the command before its own until the queue drains.
        self._server.clear()
        self._server.compact()
        self._replies.reset()
        self._server_resync = True

    def _server_line(self, line: Line) -> None:
        parsed = parse_reply_line(line.content)
        if parsed is None:
            if not self._server_resync:
                detail = line.content[:40].decode("utf-8", errors="replace")
                self._anomaly("unparseable reply", detail, line.ts)
            return
        self._server_resync = False
        self._check_line(line, "server")
        record, code_changed = self._replies.add(parsed, line.first_ts, line.ts)
        if code_changed:
            self._anomaly("reply code changed within a multi-line reply", str(parsed.code), line.ts)
        if record is not None:
            self._reply(record)

    def _reply(self, record: ReplyRecord) -> None:
        self.last_reply = record
        if not self._greeting_done:
            self._greeting_done = True
            if record.code in GREETING_CODES or not self._pending:
                self._greeting(record)
                return
            # Most likely the capture started after the greeting.
            self._anomaly("no greeting seen", str(record.code), record.ts)
        if not self._pending and self._client_mode is ClientMode.BODY:
            # A reply while the client is still in a body means the end of data was
            # missed (lost bytes, or a terminator other than CRLF.CRLF).
            self._anomaly("reply before end of data", str(record.code), record.ts)
            self._end_body(record.first_ts)
        if not self._pending:
            self._out.append(self._reply_event(record, None, False))
            if record.code not in UNSOLICITED_CODES:
                self._anomaly("reply without command", str(record.code), record.ts)
            return
        pending = self._pending.popleft()
        pending.record.reply = record
        self._out.append(self._reply_event(record, pending.record, False))
        self._apply_reply(pending, record)
        if self._gate is pending:
            self._gate = None
            self._process_client()

    @staticmethod
    def _reply_event(record: ReplyRecord, command: CommandRecord | None, greeting: bool) -> Reply:
        return Reply(record.code, record.lines, record.first_ts, record.ts, command, greeting, record)

    def _greeting(self, record: ReplyRecord) -> None:
        self.greeting = record
        if record.code in (421, 554):
            self.greeting_rejected = True
            self.phase = Phase.REJECTED
        elif record.code != 220:
            self._anomaly("unexpected greeting code", str(record.code), record.ts)
        self._out.append(self._reply_event(record, None, True))

    # ------------------------------------------------------------------ reply effects

    def _apply_reply(self, pending: _Pending, reply: ReplyRecord) -> None:
        record = pending.record
        code = reply.code
        if record.kind is CommandKind.SASL_RESPONSE:
            self._auth_reply(code, pending.assumed)
        elif record.kind is CommandKind.END_OF_DATA:
            self._finish(pending.transaction, code, reply.ts)
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
        self.phase = Phase.TLS
        self._tls_check.add(S2C)
        if not assumed:
            # After a guessed reply the client's next bytes were checked already.
            self._tls_check.add(C2S)
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
                self._start_body(pending.transaction)
            return
        self._finish(pending.transaction, reply.code, reply.ts)
        self._phase_after_reply(Phase.IDLE)

    def _bdat_reply(self, pending: _Pending, reply: ReplyRecord) -> None:
        # RFC 3030 section 2: a failed chunk fails the message; the reply to the
        # LAST chunk is the reply to the whole message.
        if reply.code // 100 != 2 or pending.bdat_last:
            self._finish(pending.transaction, reply.code, reply.ts)
        if pending.bdat_last:
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
