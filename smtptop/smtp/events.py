"""Records and events of an SMTP conversation: what the state machine returns and keeps.

Events are frozen, slotted dataclasses that ``SmtpConversation`` returns from
``receive``, ``gap`` and ``close``. Records (``CommandRecord``, ``Transaction``,
``Recipient``) are the machine's own mutable bookkeeping: a command record gets
its reply later, so callers see it filled in once the reply arrives.

Pure module: imports only the standard library, ``smtptop.direction``, the
redaction function and the TLS summary records, never sockets, files, threads, logging configuration or Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from smtptop.direction import Direction
from smtptop.smtp.redact import mask_sasl_response, redact_command
from smtptop.smtp.reply_text import parse_enhanced_code
from smtptop.tls.summary import HandshakeStep


class TlsMode(Enum):
    """TLS protection of the conversation, as seen on the wire."""

    NONE = "none"
    STARTTLS = "starttls"  # upgraded after a 220 reply to STARTTLS (RFC 3207)
    IMPLICIT = "implicit"  # TLS from the first byte, as on port 465


class Phase(Enum):
    """Stage of the conversation, valued by its display string."""

    CONNECT = "connect"  # no SMTP byte seen yet
    GREETING = "greeting"  # greeting arriving, or seen and the client has not spoken
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS = "tls"  # bytes are TLS records from here on and are not parsed
    AUTH = "auth"
    IDLE = "idle"  # between transactions
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # DATA sent, waiting for the 354 reply
    BODY = "body"
    END_OF_DATA = "end-of-data"  # body finished, waiting for the final reply
    QUIT = "quit"
    CLOSED = "closed"
    REJECTED = "rejected"  # the server sent 421 or 554 in place of a 220 greeting


class CommandKind(Enum):
    """Kind of a client line in the reply queue: a command, or one of two pseudo-commands."""

    COMMAND = "command"
    # A line sent after a 334 challenge: SASL data, not a command (RFC 4954 section 4).
    SASL_RESPONSE = "sasl-response"
    # The "." that ends a DATA body; the final reply of the transaction pairs with it.
    END_OF_DATA = "end-of-data"


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class ReplyRecord:
    """One complete server reply, all its lines."""

    code: int
    lines: tuple[str, ...]  # every line as sent, code included, without the line ending
    first_ts: float  # capture time of the chunk with the reply's first byte
    ts: float  # capture time of the chunk that completed the reply
    decrypted: bool = False  # read from decrypted TLS records

    @property
    def text(self) -> str:
        """Text of the first line after the code and separator, such as "2.0.0 Ok"."""
        return self.lines[0][4:] if self.lines else ""

    @property
    def enhanced(self) -> str | None:
        """Enhanced status code of the first line, such as "5.1.1" (RFC 3463), or None."""
        return parse_enhanced_code(self.code, self.text)

    @property
    def reply_class(self) -> str:
        """Class of the reply code as "2xx", "3xx", "4xx" or "5xx" (RFC 5321 section 4.2.1)."""
        return f"{self.code // 100}xx"

    def summary(self) -> str:
        """Format one line for lists: the first line, and the line count when there are more."""
        first = self.lines[0] if self.lines else str(self.code)
        if len(self.lines) > 1:
            return f"{first} ({len(self.lines)} lines)"
        return first


@dataclass(slots=True, repr=False)
class CommandRecord:
    """One client command (or pseudo-command) and, once it arrives, its reply.

    ``arg`` is the argument as sent, unmasked: display it only through
    ``redact_command``. ``verb`` is upper-case; it is "" for a SASL response
    and "." for the end of a DATA body.
    """

    verb: str
    arg: str
    ts: float  # capture time of the chunk that completed the line
    kind: CommandKind = CommandKind.COMMAND
    reply: ReplyRecord | None = None
    # Pipelined group (RFC 2920 section 3.1): lines sent while an earlier line of the
    # group was still unanswered share its number. Numbers start at 1 per conversation.
    group: int = 0
    # The verb as the client spelled it ("ehlo", "Mail"), kept for display when it
    # differs from ``verb``, so a client's quirks stay visible as in a packet dump.
    spelled: str = ""
    decrypted: bool = False  # read from decrypted TLS records

    @property
    def latency(self) -> float | None:
        """Seconds from the command to its complete reply, or None while unanswered."""
        return None if self.reply is None else self.reply.ts - self.ts

    @property
    def first_byte_latency(self) -> float | None:
        """Seconds from the command to the first byte of its reply, or None while unanswered."""
        return None if self.reply is None else self.reply.first_ts - self.ts

    def summary(self, reveal: bool = False) -> str:
        return redact_command(self.verb, self.arg, reveal, self.spelled)

    def __repr__(self) -> str:
        # The default repr would show AUTH credentials in logs and tracebacks.
        return (
            f"CommandRecord({self.summary()!r}, ts={self.ts}, kind={self.kind.value}, "
            f"reply={self.reply!r}, group={self.group})"
        )


@dataclass(slots=True)
class Recipient:
    addr: str  # the address inside <...>, or the argument as sent when there are no brackets
    code: int | None = None  # reply code to the RCPT command, None while unanswered


@dataclass(slots=True)
class Transaction:
    """One mail transaction: MAIL FROM to its end (RFC 5321 section 3.3)."""

    mail_from: str
    start_ts: float
    rcpts: list[Recipient] = field(default_factory=list)
    # Body octets as sent: dot-stuffed, line endings included, up to but excluding the
    # CRLF.CRLF that ends a DATA body. For BDAT, the sum of the chunk sizes.
    data_bytes: int = 0
    result_code: int | None = None
    result: str = "open"  # "accepted", "temp-failed", "rejected", "aborted" or "open"
    end_ts: float | None = None
    aborted_by: str | None = None  # "RSET", "EHLO", "QUIT", "close"; None unless aborted
    # Server's ID for the message, from a 2xx reply to end-of-data or BDAT LAST; see
    # ``parse_queue_id`` for the reply formats recognised.
    queue_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.result == "open"


# Not frozen: built per line or per phase, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class PhaseLatency:
    """How long one step of the conversation took, in capture-time seconds.

    ``phase`` is a command verb, "end-of-data", "AUTH response", "body",
    "TLS client" or "TLS server". ``first_byte`` and ``complete`` are None
    while the step has not reached them.
    """

    phase: str
    start: float
    first_byte: float | None
    complete: float | None

    @property
    def latency(self) -> float | None:
        """Seconds from ``start`` to ``complete``, or None while incomplete."""
        return None if self.complete is None else self.complete - self.start

    @property
    def first_byte_latency(self) -> float | None:
        """Seconds from ``start`` to ``first_byte``, or None before it."""
        return None if self.first_byte is None else self.first_byte - self.start


# ---------------------------------------------------------------------------- events


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True, repr=False)
class Command:
    """A client command line (never a SASL response or body data)."""

    verb: str
    arg: str  # unmasked; see ``redact_command``
    ts: float
    record: CommandRecord

    def summary(self, reveal: bool = False) -> str:
        return self.record.summary(reveal)

    def __repr__(self) -> str:
        return f"Command({self.summary()!r}, ts={self.ts})"


@dataclass(frozen=True, slots=True, repr=False)
class SaslResponse:
    """A client line sent in reply to a 334 challenge (RFC 4954 section 4)."""

    ts: float
    record: CommandRecord

    @property
    def is_cancel(self) -> bool:
        return self.record.arg == "*"

    def summary(self, reveal: bool = False) -> str:
        return f"AUTH response {mask_sasl_response(self.record.arg, reveal)}"

    def __repr__(self) -> str:
        return f"SaslResponse({self.summary()!r}, ts={self.ts})"


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class Reply:
    """A complete server reply, paired with its command when there is one."""

    code: int
    lines: tuple[str, ...]
    first_ts: float
    ts: float
    command: CommandRecord | None
    is_greeting: bool
    record: ReplyRecord

    def summary(self, reveal: bool = False) -> str:
        return self.record.summary()


@dataclass(frozen=True, slots=True)
class BodyData:
    """Message body octets consumed from the client stream (DATA body or BDAT chunk)."""

    size: int
    ts: float

    def summary(self, reveal: bool = False) -> str:
        return f"message body {self.size:,} bytes"


@dataclass(frozen=True, slots=True)
class BodyEnd:
    """The end of a message body: the CRLF.CRLF after DATA, or the last BDAT LAST octet."""

    size: int  # the transaction's body octets, counted as in ``Transaction.data_bytes``
    ts: float
    record: CommandRecord  # the end-of-data pseudo-command, or the BDAT ... LAST command

    def summary(self, reveal: bool = False) -> str:
        verb = "BDAT" if self.record.verb == "BDAT" else "DATA"
        return f"{verb} body {self.size:,} bytes"


@dataclass(frozen=True, slots=True)
class TlsStarted:
    """From here on the conversation's bytes are TLS records and are no longer parsed."""

    ts: float
    mode: TlsMode

    def summary(self, reveal: bool = False) -> str:
        if self.mode is TlsMode.IMPLICIT:
            return "TLS from the first byte (implicit TLS)"
        return "TLS starts after STARTTLS"


@dataclass(frozen=True, slots=True)
class TlsStep:
    """A TLS handshake step seen in the records, such as the ServerHello or an alert."""

    step: HandshakeStep

    @property
    def ts(self) -> float:
        return self.step.ts

    @property
    def direction(self) -> Direction:
        return self.step.sender

    def summary(self, reveal: bool = False) -> str:
        # Brackets keep the step apart from the SMTP lines around it.
        step = self.step
        text = f"[TLS {step.name}"
        if step.detail:
            text += f": {step.detail}"
        if step.encrypted:
            text += " (encrypted, inferred)"
        return text + "]"


@dataclass(frozen=True, slots=True)
class GapNoted:
    """A hole in one direction's stream; the bytes in it were never seen."""

    direction: Direction
    length: int
    ts: float

    def summary(self, reveal: bool = False) -> str:
        side = "client" if self.direction is Direction.CLIENT_TO_SERVER else "server"
        return f"[{self.length:,} {side} bytes missing]"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A protocol violation or an unexpected input, counted by ``name``."""

    name: str
    detail: str
    ts: float

    def summary(self, reveal: bool = False) -> str:
        return f"anomaly: {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class ConnectionEnd:
    """The connection ended; ``unanswered`` commands never got a reply."""

    ts: float
    unanswered: int

    def summary(self, reveal: bool = False) -> str:
        if self.unanswered:
            return f"connection closed, {self.unanswered} command(s) unanswered"
        return "connection closed"


Event = (
    Command
    | SaslResponse
    | Reply
    | BodyData
    | BodyEnd
    | TlsStarted
    | TlsStep
    | GapNoted
    | Anomaly
    | ConnectionEnd
)
