"""Make captured text safe to put in a terminal cell.

Commands and replies come off the wire: they may hold control characters,
escape sequences or megabytes without a line break. The screens show them
through ``printable`` so a hostile peer cannot move the cursor or stall
the layout.
"""

from __future__ import annotations

# Maximum characters kept for one table cell. Longer text is cut and ends with "…".
MAX_CELL_CHARS = 200


def _visible(char: str) -> str:
    if char == "\t":
        return " "
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """Escape control and non-printable characters and cut ``text`` to ``limit`` characters."""
    if len(text) <= limit and text.isprintable():
        return text  # the common case, checked in C without building a new string
    clipped = text[: limit + 1]
    escaped = "".join(_visible(char) for char in clipped)
    if len(text) > limit or len(escaped) > limit:
        return escaped[: limit - 1] + "…"
    return escaped
