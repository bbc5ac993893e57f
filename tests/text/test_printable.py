"""Escaping of wire text before it reaches a terminal cell."""

from __future__ import annotations

from smtptop.text.printable import printable


def test_plain_text_unchanged() -> None:
    assert printable("250 2.0.0 Ok: queued as 4F3A2") == "250 2.0.0 Ok: queued as 4F3A2"


def test_control_characters_escaped() -> None:
    assert printable("EHLO \x1b[2Jx\r\n") == "EHLO \\x1b[2Jx\\x0d\\x0a"


def test_tab_becomes_space() -> None:
    assert printable("a\tb") == "a b"


def test_long_text_cut_with_ellipsis() -> None:
    result = printable("x" * 10_000, limit=20)

    assert result == "x" * 19 + "…"


def test_escapes_count_towards_limit() -> None:
    result = printable("\x00" * 10, limit=8)

    assert len(result) == 8
    assert result.endswith("…")
