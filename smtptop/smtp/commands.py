"""Client command vocabulary and argument parsing (RFC 5321 section 4.1).

Pure module: standard library only.
"""

from __future__ import annotations

import re

# Verbs this machine recognises. A line starting with one of them is taken as a
# command when resynchronising after a gap; other verbs are still recorded as sent.
KNOWN_VERBS = frozenset(
    {
        "HELO",
        "EHLO",
        "LHLO",  # RFC 2033 (LMTP)
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",  # RFC 3030
        "RSET",
        "NOOP",
        "VRFY",
        "EXPN",
        "HELP",
        "QUIT",
        "STARTTLS",  # RFC 3207
        "AUTH",  # RFC 4954
        "ETRN",  # RFC 1985
        "TURN",
        "ATRN",  # RFC 2645
        "XCLIENT",  # Postfix extension
        "XFORWARD",  # Postfix extension
    }
)

HELLO_VERBS = frozenset({"HELO", "EHLO", "LHLO"})


def split_command(text: str) -> tuple[str, str]:
    """Split a command line into its upper-case verb and the raw argument after one space."""
    verb, _, arg = text.partition(" ")
    return verb.upper(), arg


def extract_path(arg: str, keyword: str) -> str:
    """Extract the address of "FROM:<addr> ..." or "TO:<addr> ...", tolerating sloppy syntax.

    Returns the text between the first "<" and the next ">" when both are present
    (RFC 5321 section 4.1.2 Reverse-path and Forward-path), else the first word after
    the keyword, else the argument as sent.
    """
    rest = arg
    if rest[: len(keyword)].upper() == keyword:
        rest = rest[len(keyword) :]
    open_at = rest.find("<")
    if open_at >= 0:
        close_at = rest.find(">", open_at + 1)
        if close_at >= 0:
            return rest[open_at + 1 : close_at]
    words = rest.split()
    return words[0] if words else ""


def parse_bdat(arg: str) -> tuple[int, bool] | None:
    """Parse "chunk-size [LAST]" (RFC 3030 section 3), or return None when it is invalid."""
    words = arg.split()
    if not words or not words[0].isdigit() or len(words) > 2:
        return None
    if len(words) == 2 and words[1].upper() != "LAST":
        return None
    return int(words[0]), len(words) == 2


# A byte outside printable ASCII (0x21 to 0x7E); a compiled search costs far less than a Python loop.
_NOT_PRINTABLE = re.compile(rb"[^\x21-\x7e]")


def has_binary_verb(line: bytes) -> bool:
    """Return whether the first word of a command line has a byte outside printable ASCII.

    Command codes are alphabetic (RFC 821 section 4.1.2), so such a word is binary
    data sent on the command channel, not a command that some server might know.
    """
    verb = line.split(b" ", 1)[0]
    return _NOT_PRINTABLE.search(verb) is not None
