"""Serial-number arithmetic across the 2**32 wrap."""

from __future__ import annotations

from smtptop.tcp.seq import seq_add, seq_diff, seq_le, seq_lt


def test_seq_add_wraps() -> None:
    assert seq_add(0xFFFFFFF0, 0x20) == 0x10
    assert seq_add(0x10, -0x20) == 0xFFFFFFF0


def test_seq_diff_across_wrap() -> None:
    assert seq_diff(0x10, 0xFFFFFFF0) == 0x20
    assert seq_diff(0xFFFFFFF0, 0x10) == -0x20
    assert seq_diff(5, 5) == 0


def test_seq_lt_le() -> None:
    assert seq_lt(0xFFFFFFF0, 0x10)
    assert not seq_lt(0x10, 0xFFFFFFF0)
    assert seq_le(7, 7)
    assert not seq_lt(7, 7)


def test_half_circle_counts_as_before() -> None:
    assert seq_diff(0, 1 << 31) == -(1 << 31)
    assert seq_lt(0, 1 << 31)
