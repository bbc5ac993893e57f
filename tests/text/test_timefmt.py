"""Time and duration formatting for the conversation table and packet list."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from smtptop.text.timefmt import (
    TimeDisplay,
    format_absolute,
    format_duration,
    format_latency,
    format_offset,
    format_time,
)

TS = 1_700_000_000.123456


def test_absolute_is_local_clock_time() -> None:
    expected = datetime.fromtimestamp(TS).strftime("%H:%M:%S.%f")

    assert format_absolute(TS) == expected
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", format_absolute(TS))


def test_absolute_out_of_range_falls_back() -> None:
    assert format_absolute(1e20) == "100000000000000000000.000000"


def test_offset_has_sign_and_microseconds() -> None:
    assert format_offset(12.3456781) == "+12.345678"
    assert format_offset(-0.00001) == "-0.000010"


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        (TimeDisplay.RELATIVE, "+2.500000"),
        (TimeDisplay.DELTA, "+0.250000"),
    ],
)
def test_format_time_modes(display: TimeDisplay, expected: str) -> None:
    assert format_time(display, TS + 2.5, start=TS, previous=TS + 2.25) == expected


def test_format_time_absolute() -> None:
    assert format_time(TimeDisplay.ABSOLUTE, TS, start=0.0, previous=None) == format_absolute(TS)


def test_first_delta_is_zero() -> None:
    assert format_time(TimeDisplay.DELTA, TS, start=TS, previous=None) == "+0.000000"


def test_display_cycles_back_to_absolute() -> None:
    assert TimeDisplay.ABSOLUTE.next() is TimeDisplay.RELATIVE
    assert TimeDisplay.RELATIVE.next() is TimeDisplay.DELTA
    assert TimeDisplay.DELTA.next() is TimeDisplay.ABSOLUTE


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, "0 µs"),
        (0.000088, "88 µs"),
        (0.0009996, "1 ms"),
        (0.35, "350 ms"),
        (0.9996, "1.0 s"),
        (1.23, "1.2 s"),
        (9.96, "10 s"),
        (42.9, "42 s"),
        (185.0, "3m05s"),
        (3599.9, "59m59s"),
        (3600 + 180, "1h03m"),
        (2 * 86400 + 7 * 3600 + 59, "2d07h"),
        (-3.0, "0 µs"),
        (float("nan"), "-"),
        (float("inf"), "-"),
    ],
)
def test_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_latency_none_is_blank() -> None:
    assert format_latency(None) == ""
    assert format_latency(0.012) == "12 ms"
