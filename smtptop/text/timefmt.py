"""Packet times and durations as the screens show them.

Times are capture timestamps in seconds since the epoch. Absolute times use
the local time zone, as tcpdump does. A timestamp that the platform cannot
convert is shown as raw seconds instead of raising.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum


class TimeDisplay(Enum):
    """Time column format of the conversation screen, cycled with ``t``."""

    ABSOLUTE = "time"
    RELATIVE = "since start"
    DELTA = "delta"

    def next(self) -> TimeDisplay:
        members = list(TimeDisplay)
        return members[(members.index(self) + 1) % len(members)]


def format_absolute(ts: float) -> str:
    """Format a capture time as local ``HH:MM:SS.ffffff``."""
    try:
        return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"


def format_offset(seconds: float) -> str:
    """Format a signed offset between two capture times as ``+12.345678``."""
    return f"{seconds:+.6f}"


def format_time(display: TimeDisplay, ts: float, start: float, previous: float | None) -> str:
    """Format ``ts`` for ``display``: absolute, relative to ``start``, or after ``previous``.

    The first line of a list has no previous time, so its delta is shown as ``+0.000000``.
    """
    if display is TimeDisplay.ABSOLUTE:
        return format_absolute(ts)
    if display is TimeDisplay.RELATIVE:
        return format_offset(ts - start)
    return format_offset(0.0 if previous is None else ts - previous)


def format_duration(seconds: float) -> str:
    """Format a duration in the largest fitting unit.

    Examples: ``88 µs``, ``350 ms``, ``1.2 s``, ``42 s``, ``3m05s``, ``2h03m``, ``4d07h``.

    Negative durations, which clock skew between packet time and wall time can
    produce, are shown as ``0 µs``. NaN and infinity are shown as ``-``.
    """
    if math.isnan(seconds) or math.isinf(seconds):
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 0.0009995:
        return f"{round(seconds * 1_000_000)} µs"
    if seconds < 0.9995:
        return f"{round(seconds * 1000)} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    # From 9.95 s on, one decimal would round up to "10.0 s", so whole seconds start here.
    whole = max(int(seconds), 10)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_latency(seconds: float | None) -> str:
    """Format a reply latency, or "" when the line has none."""
    return "" if seconds is None else format_duration(seconds)
