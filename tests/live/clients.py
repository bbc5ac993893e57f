"""What the SMTP clients of the live tests really sent and read.

The live tests compare the engine's view of a conversation with the client's
own record of it: ``RecordingSMTP`` keeps every chunk smtplib writes and every
reply code it reads, and ``swaks_transcript`` reads the same facts from the
transcript swaks prints.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any

END_OF_DATA_VERB = "."  # the verb CommandRecord gives the end of a DATA body
SASL_RESPONSE_VERB = ""  # the verb CommandRecord gives a line sent after a 334 reply
DATA_TERMINATOR = b"\r\n.\r\n"


@dataclass(frozen=True, slots=True)
class ClientLine:
    """One client write and the reply code the client read for it.

    `verb` is named as ``CommandRecord`` names it: the upper-case command
    verb, "." for a DATA body with its terminator, "" for a SASL response.
    """

    verb: str
    sent: bytes
    reply_code: int


class RecordingSMTP(smtplib.SMTP):
    """smtplib client that keeps each chunk it sends and each reply code it reads.

    smtplib never pipelines: every ``send`` is followed by one ``getreply``,
    so the chunks and the codes after the greeting pair one to one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[bytes] = []
        self.reply_codes: list[int] = []
        super().__init__(*args, **kwargs)

    # smtplib passes only str or bytes here, narrower than the Buffer it declares.
    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        data = s.encode(self.command_encoding) if isinstance(s, str) else bytes(s)
        self.sent.append(data)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        self.reply_codes.append(code)
        return code, message

    @property
    def greeting_code(self) -> int:
        return self.reply_codes[0]

    def client_port(self) -> tuple[str, int]:
        """Return the client's own address and port on the open connection."""
        assert self.sock is not None, "the client is not connected"
        host, port = self.sock.getsockname()[:2]
        return host, port

    def lines(self) -> list[ClientLine]:
        """Pair each chunk sent after the greeting with its reply code, naming it like the tracker."""
        replies = self.reply_codes[1:]
        assert len(self.sent) == len(replies), (
            f"smtplib sent {len(self.sent)} chunks but read {len(replies)} replies after the greeting"
        )
        lines = []
        previous_code = self.greeting_code
        for sent, code in zip(self.sent, replies):
            lines.append(ClientLine(_verb_after(previous_code, sent), sent, code))
            previous_code = code
        return lines


def _verb_after(previous_code: int, sent: bytes) -> str:
    # After 354 the client sends the body (RFC 5321 section 4.1.1.4), and after
    # 334 it sends a SASL response (RFC 4954 section 4).
    if previous_code == 354:
        return END_OF_DATA_VERB
    if previous_code == 334:
        return SASL_RESPONSE_VERB
    return sent.split(b" ", 1)[0].strip().decode("ascii").upper()


def dot_stuff(lines: list[bytes]) -> bytes:
    """Return `lines` as a DATA body on the wire: CRLF endings, a "." doubled at line starts."""
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


@dataclass(frozen=True, slots=True)
class SwaksTranscript:
    """The unencrypted part of a swaks session, read from what swaks printed.

    `verbs` are the client lines swaks sent in clear, named as in
    ``ClientLine``. `reply_codes` are the codes of the complete replies it
    read in clear, the greeting first. `body_lines` are the DATA body lines
    as swaks printed them, without the final ".".
    """

    verbs: list[str]
    reply_codes: list[int]
    body_lines: list[str]


def swaks_transcript(output: str) -> SwaksTranscript:
    """Parse swaks's printed transcript, where " -> " marks a sent line and "<-  " a read one.

    Lines swaks sent or read inside TLS are marked "~>" and "<~" and are skipped.
    """
    verbs: list[str] = []
    codes: list[int] = []
    body: list[str] = []
    in_body = False
    for line in output.splitlines():
        if line.startswith(" -> "):
            text = line[4:]
            if not in_body:
                verbs.append(text.split(" ", 1)[0].upper())
            elif text == ".":
                verbs.append(END_OF_DATA_VERB)
                in_body = False
            else:
                body.append(text)
        elif line.startswith("<-  "):
            text = line[4:]
            # A reply ends on the line whose code is followed by a space or nothing.
            if len(text) == 3 or text[3] == " ":
                code = int(text[:3])
                codes.append(code)
                in_body = code == 354
    return SwaksTranscript(verbs, codes, body)
