"""Parsing of server reply lines and assembly of multi-line replies (RFC 5321 section 4.2).

Pure module: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtptop.smtp.events import ReplyRecord


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class ReplyLine:
    code: int
    is_last: bool  # "NNN " or a bare "NNN"; "NNN-" announces more lines
    text: str  # the whole line as sent, decoded, without the line ending


def parse_reply_line(content: bytes) -> ReplyLine | None:
    """Parse one reply line, or return None when it is not one.

    RFC 5321 section 4.2: three digits, the first 2 to 5, then a space, a hyphen
    or the end of the line. A first digit of 1 is not defined for SMTP and is
    treated as unparseable.
    """
    if len(content) < 3 or content[0] not in b"2345":
        return None
    if not (0x30 <= content[1] <= 0x39 and 0x30 <= content[2] <= 0x39):
        return None
    if len(content) > 3 and content[3] not in b" -":
        return None
    is_last = len(content) == 3 or content[3] == 0x20
    text = content.decode("utf-8", errors="replace")
    return ReplyLine(int(content[:3]), is_last, text)


class ReplyAssembler:
    """Collects the lines of one reply until its last line arrives."""

    __slots__ = ("_lines", "_code", "_first_ts")

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._code = 0
        self._first_ts = 0.0

    @property
    def in_progress(self) -> bool:
        return bool(self._lines)

    def add(self, line: ReplyLine, first_ts: float, ts: float) -> tuple[ReplyRecord | None, bool]:
        """Add a line; return the reply once complete, and whether the line changed the code.

        RFC 5321 section 4.2.1 requires the same code on every line. A line with a
        different code is kept in the reply under the first code.
        """
        if not self._lines:
            self._code = line.code
            self._first_ts = first_ts
        code_changed = line.code != self._code
        self._lines.append(line.text)
        if not line.is_last:
            return None, code_changed
        record = ReplyRecord(self._code, tuple(self._lines), self._first_ts, ts)
        self._lines = []
        return record, code_changed

    def reset(self) -> None:
        self._lines = []
