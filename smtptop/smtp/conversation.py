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
- encrypted: TLS records after STARTTLS or implicit TLS, handed to a
  ``TlsSession`` (``smtptop.tls.session``) until it decrypts them.

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

Once TLS starts in a direction, every later byte of it goes to the
``TlsSession``. When the session decrypts application data (with a key log or
an RSA key), the plaintext comes back into the same parser as if it had been
sent in the clear, with the capture time of its record, and the commands and
replies read from it are marked ``decrypted``. Bytes of a direction that stop
being TLS records, such as a plaintext 454 reply after a fatal alert, are read
as plaintext again. Decrypted and returned bytes are processed only after the
raw chunk is done, so the parser never runs inside itself.

Reply effects live in the ``ReplyEffects`` mixin (``reply_effects``), and the
waiting state and phase timing in the ``Timing`` mixin (``timing``).

Pure module: standard library, ``smtptop.direction`` and ``smtptop.tls``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace

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
    PhaseLatency,
    Recipient,
    Reply,
    ReplyRecord,
    SaslResponse,
    TlsMode,
    TlsStarted,
    TlsStep,
    Transaction,
)
from smtptop.smtp.lines import MAX_LINE_OCTETS, MAX_PARTIAL_LINE, Line, StreamBuffer
from smtptop.smtp.redact import MASK
from smtptop.smtp.replies import ReplyAssembler, parse_reply_line
from smtptop.smtp.reply_effects import ClientMode, ReplyEffects, _Pending
from smtptop.smtp.timing import Timing, command_phase, phase_start
from smtptop.smtp.tls_records import (
    RECORD_HEADER_OCTETS,
    RecordScanner,
    is_tls_content_type,
    record_size,
    starts_like_tls_record,
)
from smtptop.tls.keys import TlsKeys
from smtptop.tls.session import Decrypted, Fallback, Output, TlsSession

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
# The empty direction set, one object for all conversations: CPython makes a new
# one for each frozenset() call, and each is one more object for the garbage collector.
NO_DIRECTIONS: frozenset[Direction] = frozenset()


class SmtpConversation(ReplyEffects, Timing):
    """The SMTP dialogue of one TCP connection, rebuilt from both byte streams."""

    __slots__ = (
        "_auth_user",
        "_bodies",
        "_body_at_start",
        "_body_first_ts",
        "_body_owner",
        "_body_size",
        "_body_start",
        "_client",
        "_client_last_ts",
        "_client_mode",
        "_client_resync",
        "_client_started",
        "_client_tls",
        "_client_tls_first",
        "_close_ts",
        "_closed",
        "_current",
        "_decrypting",
        "_established_ts",
        "_gate",
        "_greeting_done",
        "_group",
        "_implicit_pending",
        "_keywords",
        "_keywords_of",
        "_octets_left",
        "_octets_owner",
        "_out",
        "_pending",
        "_replies",
        "_sasl",
        "_sasl_expected",
        "_sasl_guessed",
        "_server",
        "_server_encrypted",
        "_server_endpoint",
        "_server_resync",
        "_server_seen",
        "_server_started",
        "_server_tls",
        "_session_over",
        "_tls_check",
        "_tls_handshake_over",
        "_tls_keys",
        "_tls_last_sender",
        "_tls_last_ts",
        "_tls_output",
        "_tls_start_ts",
        "_wrapped",
        "anomalies",
        "capabilities",
        "commands",
        "greeting",
        "greeting_rejected",
        "last_command",
        "last_reply",
        "phase",
        "reveal_secrets",
        "starttls",
        "tls",
        "tls_mode",
        "transactions",
    )

    def __init__(
        self,
        implicit_tls: bool = False,
        reveal_secrets: bool = False,
        tls_keys: TlsKeys | None = None,
        server: tuple[str, int] | None = None,
    ) -> None:
        self.reveal_secrets = reveal_secrets
        self.greeting: ReplyRecord | None = None
        self.greeting_rejected = False
        self.commands: list[CommandRecord] = []
        self.transactions: list[Transaction] = []
        self.capabilities: tuple[str, ...] = ()
        self._keywords: frozenset[str] = frozenset()  # first words of ``capabilities``
        self._keywords_of: tuple[str, ...] = ()  # the capabilities they were taken from
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
        # Frozen, so that most conversations share the one empty value. It rarely changes.
        self._tls_check: frozenset[Direction] = NO_DIRECTIONS
        self._gate: _Pending | None = None
        self._greeting_done = False
        self._client_started = False
        self._server_started = False
        self._client_tls_first = False  # the client's first bytes were a TLS record
        self._server_seen = False  # any server byte or server gap so far
        self._closed = False
        self._close_ts = 0.0
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
        self._body_start: float | None = None  # the 354 reply, or the guess of it
        self._body_first_ts: float | None = None
        self._bodies: list[PhaseLatency] = []  # finished DATA bodies
        self._group = 0  # the newest pipelined group number
        self._session_over = False  # after a 221 reply to QUIT, or any 421 reply
        self._established_ts: float | None = None
        self._client_last_ts: float | None = None
        # TLS handshake timing: record headers are scanned per direction until the
        # first application data record of each (RFC 8446 section 5.1).
        self._client_tls = RecordScanner()
        self._server_tls = RecordScanner()
        self._tls_start_ts: float | None = None  # the STARTTLS 220 reply
        self._tls_last_sender: Direction | None = None
        self._tls_last_ts = 0.0
        self._tls_handshake_over = False
        # The TLS session, from the first TLS byte on; its keys and the server it talks to.
        self.tls: TlsSession | None = None
        self._tls_keys = tls_keys
        self._server_endpoint = server
        self._wrapped: frozenset[Direction] = NO_DIRECTIONS  # directions whose bytes go to the TLS session
        self._tls_output: deque[Output] | None = None  # made for the first TLS byte
        self._decrypting = False  # reading decrypted bytes: records made now are marked
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
                if direction in self._wrapped:
                    self._tls_bytes(direction, data, ts)
                elif direction is C2S:
                    self._receive_client(data, ts)
                else:
                    self._receive_server(data, ts)
                self._drain_tls()
            except Exception:  # noqa: BLE001 - bad traffic must never stop the capture loop
                logger.debug("SMTP parser failed on %d bytes", len(data), exc_info=True)
                self._anomaly("parser error", "", ts)
        return self._take_events()

    def gap(self, direction: Direction, length: int, ts: float) -> list[Event]:
        """Note a hole of ``length`` bytes in one direction; the missing bytes stay unknown."""
        self._out = [GapNoted(direction, length, ts)]
        try:
            if direction in self._wrapped and self.tls is not None:
                self.tls.gap(direction)
                (self._client_tls if direction is C2S else self._server_tls).lose_sync()
            elif direction is C2S:
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
        self._close_ts = ts
        self._wrap_up(ts)
        self._out.append(ConnectionEnd(ts, len(self._pending)))
        return self._take_events()

    def _wrap_up(self, ts: float) -> None:
        """Read what the gate held, abort open transactions and set the closed phase."""
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

    def retry_tls(self) -> list[Event]:
        """Decrypt the TLS records that waited for secrets; call after the key log grew."""
        self._out = []
        if self.tls is None or not self.tls.waiting:
            return []
        try:
            self._output_queue().extend(self.tls.retry())
            self._tls_steps()
            self._drain_tls()
            if self._closed:
                # The decrypted dialogue happened before the close: end it the same way again.
                self._wrap_up(self._close_ts)
        except Exception:  # noqa: BLE001 - see receive
            logger.debug("SMTP parser failed on decrypted bytes", exc_info=True)
            self._anomaly("parser error", "", self._client_last_ts or 0.0)
        return self._take_events()

    @property
    def auth_user(self) -> str | None:
        """The SASL user name, masked unless the conversation reveals secrets."""
        if self._auth_user is None or self.reveal_secrets:
            return self._auth_user
        return MASK

    @property
    def client_tls_first(self) -> bool:
        """True when the client's first bytes were a TLS record, before any greeting."""
        return self._client_tls_first

    @property
    def outstanding(self) -> int:
        """Client lines still waiting for a reply."""
        return len(self._pending)

    def set_connection_established(self, ts: float) -> None:
        """Note the capture time of the TCP handshake, from which the greeting is due."""
        self._established_ts = ts

    @property
    def waiting_on(self) -> Direction | None:
        """The side that owes the next move, or None when neither does or it cannot be seen."""
        return self.waiting()[0]

    @property
    def waiting_since(self) -> float | None:
        """Capture time at which the owed move became owed, or None when unknown."""
        return self.waiting()[1]

    @property
    def waiting_for(self) -> str:
        """The owed move in a few words, such as "reply to EHLO" or "next command"; "" if none."""
        return self.waiting()[2]

    def phase_latencies(self) -> list[PhaseLatency]:
        """List the timed steps so far, ordered by start: replies, bodies and the TLS handshake.

        Every command, SASL response and end-of-data runs from its send time to its
        reply. A DATA body runs from the 354 reply to the end-of-data line. The TLS
        phases run from the ClientHello to each side's first application data
        record. The greeting is not here, because it is due from the TCP handshake.
        """
        phases = [command_phase(record) for record in self.commands]
        phases += self._bodies
        if self._client_mode is ClientMode.BODY and self._body_start is not None:
            phases.append(self._body_phase(None))
        hello = self._client_tls.first_handshake_ts
        if hello is not None:
            client_done = self._client_tls.first_application_data_ts
            phases.append(PhaseLatency("TLS client", hello, None, client_done))
            if self.tls_mode is not TlsMode.NONE:
                server = self._server_tls
                server_done = server.first_application_data_ts
                phases.append(PhaseLatency("TLS server", hello, server.first_ts, server_done))
        phases.sort(key=phase_start)
        return phases

    def has_capability(self, keyword: str) -> bool:
        """Return whether the EHLO reply listed ``keyword`` (case-insensitive, first word only)."""
        if self._keywords_of is not self.capabilities:
            # Rebuilt once per EHLO reply: the check runs for every pipelined command.
            self._keywords = frozenset(line.split(" ", 1)[0] for line in self.capabilities)
            self._keywords_of = self.capabilities
        return keyword.upper() in self._keywords

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

    def _tls_feed(self, direction: Direction, data: bytes, ts: float) -> None:
        """Give TLS bytes to the session; what it decrypts or returns waits for ``_drain_tls``."""
        self._wrapped = self._wrapped | {direction}
        if self.tls is None:
            self.tls = TlsSession(self._tls_keys, self._server_endpoint)
        self._output_queue().extend(self.tls.feed(direction, data, ts))
        self._tls_steps()

    def _output_queue(self) -> deque[Output]:
        """Return the queue of what the TLS session produced, made on first use."""
        if self._tls_output is None:
            self._tls_output = deque()
        return self._tls_output

    def _tls_steps(self) -> None:
        """Turn the TLS session's new handshake steps into events, and note a failed STARTTLS."""
        assert self.tls is not None
        self._out.extend(TlsStep(step) for step in self.tls.take_new_steps())
        if self.tls.failed and self.starttls == "accepted":
            self.starttls = "failed"

    def _tls_inspect(self, data: bytes, ts: float) -> None:
        """Show the TLS session client records that the SMTP parser skips, without leaving plaintext."""
        if self.tls is None:
            self.tls = TlsSession(self._tls_keys, self._server_endpoint)
        self.tls.feed(C2S, data, ts)
        self._tls_steps()

    def _drain_tls(self) -> None:
        """Read the bytes the TLS session decrypted or gave back, in the order it produced them."""
        output = self._tls_output
        if output is None:
            return
        while output:
            item = output.popleft()
            if isinstance(item, Fallback):
                self._leave_tls(item)
            else:
                self._read_decrypted(item)

    def _read_decrypted(self, item: Decrypted) -> None:
        self._decrypting = True
        try:
            if item.direction is C2S:
                if self._client_mode is ClientMode.ENCRYPTED:
                    self._client_mode = ClientMode.COMMAND
                    self._client_started = True
                self._receive_client(item.data, item.ts)
            else:
                self._server_encrypted = False
                self._receive_server(item.data, item.ts)
        finally:
            self._decrypting = False

    def _leave_tls(self, item: Fallback) -> None:
        """Read a direction as plaintext again after its bytes stopped being TLS records."""
        self._wrapped = self._wrapped - {item.direction}
        self._anomaly("plaintext after TLS records", "client" if item.direction is C2S else "server", item.ts)
        if item.direction is C2S:
            if self._client_mode is ClientMode.ENCRYPTED:
                self._client_mode = ClientMode.COMMAND
            self._receive_client(item.data, item.ts)
        else:
            self._server_encrypted = False
            self._receive_server(item.data, item.ts)

    def _start_implicit_tls(self) -> None:
        self.tls_mode = TlsMode.IMPLICIT
        self.phase = Phase.TLS
        self._client_mode = ClientMode.ENCRYPTED
        self._server_encrypted = True
        self._tls_buffered(C2S, self._client)
        self._tls_buffered(S2C, self._server)
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
        self._tls_buffered(C2S, buffer)
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
        self._tls_check = self._tls_check - {direction}
        if is_tls_content_type(buffer.peek(1)[0]):
            self._tls_buffered(direction, buffer)
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
        self._client_last_ts = ts
        if self._client_mode is ClientMode.ENCRYPTED:
            self._tls_bytes(C2S, data, ts)
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
                self._tls_buffered(C2S, buffer)
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
            if not self.commands:
                # The client's first bytes are TLS although the server greeted in
                # plaintext: a client that expected implicit TLS.
                self._client_tls_first = True
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
        spelled = text.partition(" ")[0]
        self._command(verb, arg, line.ts, spelled if spelled != verb else "")

    def _record(self, record: CommandRecord) -> _Pending:
        record.decrypted = self._decrypting
        self._assign_group(record)
        self.commands.append(record)
        self.last_command = record
        pending = _Pending(record)
        self._pending.append(pending)
        return pending

    def _assign_group(self, record: CommandRecord) -> None:
        """Number the pipelined group of a client line (RFC 2920 section 3.1).

        A line starts a new group when nothing was outstanding at its send time. A
        line read late, because it was held behind a gate command, was sent before
        that command's reply, so it joins the gate's group.
        """
        newest_reply = self.last_reply.ts if self.last_reply is not None else None
        if not self._pending and (newest_reply is None or newest_reply <= record.ts):
            self._group += 1
            record.group = self._group
            return
        record.group = self._group
        if record.kind is not CommandKind.COMMAND or not self._greeting_done:
            return
        # RFC 2920 section 3.1: without PIPELINING in the EHLO reply, the client must
        # wait for each reply. With no server byte at all, no command ever got a
        # reply, so a one-sided capture is no evidence of pipelining.
        if self._server_seen and not self.has_capability("PIPELINING"):
            self._anomaly("pipelining without PIPELINING", record.verb[:32], record.ts)

    def _command(self, verb: str, arg: str, ts: float, spelled: str = "") -> None:
        if not self._greeting_done:
            self._anomaly("command before greeting", verb, ts)
        record = CommandRecord(verb, arg, ts, spelled=spelled)
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
        if self._octets_owner is None:
            # A TLS record sent without STARTTLS: the session shows what it offered.
            self._tls_inspect(buffer.peek(self._octets_left), ts)
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

    def _start_body(self, transaction: Transaction | None, ts: float) -> None:
        self._client_mode = ClientMode.BODY
        self._body_start = ts
        self._body_first_ts = None
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
        if self._body_first_ts is None:
            self._body_first_ts = buffer.ts_at(0)
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
        if self._body_start is not None:
            self._bodies.append(self._body_phase(ts))
            self._body_start = None
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
            self._client_tls.lose_sync()
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
            self._start_body(gate.transaction, ts)
        elif verb == "STARTTLS":
            self._tls_check = self._tls_check | {C2S}
        elif self._sasl is not None:
            self._sasl_expected = True
            self._sasl_guessed = True

    # ------------------------------------------------------------------ server side

    def _receive_server(self, data: bytes, ts: float) -> None:
        self._server_seen = True
        if self._server_encrypted:
            self._tls_bytes(S2C, data, ts)
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
        if self._server_encrypted:
            self._server_tls.lose_sync()
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
        if record is not None and self._decrypting:
            record = replace(record, decrypted=True)
        if code_changed:
            self._anomaly("reply code changed within a multi-line reply", str(parsed.code), line.ts)
        if record is not None:
            self._reply(record)

    def _reply(self, record: ReplyRecord) -> None:
        self.last_reply = record
        if record.code == 421:
            # RFC 5321 section 3.8: the server closes the connection after a 421.
            self._session_over = True
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
        if pending.record.verb == "QUIT" and record.code == 221:
            self._session_over = True
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
