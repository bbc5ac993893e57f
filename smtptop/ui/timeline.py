"""The timeline of a conversation: a ladder of commands and replies, and its phase latencies.

``timeline_events`` turns the transcript into one event per command, per
reply (the lines of a multi-line reply are one event) and per note. The cell
builders draw each event as an arrow between a client column on the left and
a server column on the right. Each row also shows the time, the delta to the
previous event, a bracket joining pipelined commands, and the reply latency
as a bar.

Latency bars use a fixed log scale from ``BAR_MIN_SECONDS`` to
``BAR_MAX_SECONDS``, so bars compare across conversations and a 5-minute
stall does not flatten every millisecond reply to nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

from smtptop.direction import Direction
from smtptop.engine.snapshot import PhaseLatency, TranscriptLine
from smtptop.text.printable import printable
from smtptop.text.timefmt import TimeDisplay, format_duration, format_time
from smtptop.ui.keyed_table import Column

LADDER_WIDTH = 64
BAR_WIDTH = 12
BAR_MIN_SECONDS = 1e-4
BAR_MAX_SECONDS = 100.0
# Partial blocks for the last cell of a bar, from one eighth to seven eighths.
_EIGHTHS = " ▏▎▍▌▋▊▉"

LATENCY_LABEL = "latency, log scale"

TIMELINE_COLUMNS = (
    Column(TimeDisplay.ABSOLUTE.value, "time", 15),
    Column("delta", "delta", 8),
    Column("", "group", 1),
    Column("client" + " " * (LADDER_WIDTH - 12) + "server", "ladder", LADDER_WIDTH),
    Column(LATENCY_LABEL, "latency", 8 + BAR_WIDTH),
)

# Phase names are as long as "handshake ACK" and "AUTH response", and a
# command's phase is named by the client's verb, so the column fits its
# content and PHASE_NAME_CHARS bounds an unusually long verb.
PHASE_NAME_CHARS = 24

PHASE_COLUMNS = (
    Column("phase", "phase", None),
    Column(TimeDisplay.ABSOLUTE.value, "start", 15),
    Column("first byte", "first_byte", 10),
    Column("complete", "complete", 10),
)

COMMAND_STYLE = "cyan"
REPLY_STYLE = "yellow"
NOTE_STYLE = "bold magenta"
SLOW_STYLE = "bold red"
WAITING_STYLE = "yellow"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One arrow or note of the ladder."""

    key: str  # index of its first transcript line, stable while the transcript grows
    ts: float
    direction: Direction | None  # None for notes made by smtptop itself
    text: str  # the first line, with the line count appended for a multi-line reply
    latency: float | None  # of the reply's last line: the time to the complete reply
    frame_no: int | None  # the packet that completed the event
    group: int | None


def _continues(text: str) -> bool:
    # RFC 5321 section 4.2.1: every line of a multi-line reply but the last has a hyphen after the code.
    return len(text) >= 4 and text[:3].isdigit() and text[3] == "-"


def timeline_events(transcript: Sequence[TranscriptLine]) -> list[TimelineEvent]:
    """Build the ladder's events; the lines of one multi-line reply become one event."""
    events: list[TimelineEvent] = []
    first: tuple[int, TranscriptLine] | None = None  # the open multi-line reply
    count = 0
    for index, line in enumerate(transcript):
        if first is not None and line.direction is Direction.SERVER_TO_CLIENT:
            count += 1
            events[-1] = _reply_event(first, line, count)
            if not _continues(line.text):
                first = None
            continue
        first = None
        if line.direction is Direction.SERVER_TO_CLIENT and _continues(line.text):
            first, count = (index, line), 1
            events.append(_reply_event(first, line, count))
            continue
        events.append(
            TimelineEvent(
                str(index),
                line.ts,
                line.direction,
                line.text,
                line.latency,
                line.frame_no,
                line.group,
            )
        )
    return events


def _reply_event(
    first: tuple[int, TranscriptLine], last: TranscriptLine, lines: int
) -> TimelineEvent:
    index, line = first
    text = line.text if lines == 1 else f"{line.text} ({lines} lines)"
    # A source may put the latency on the first line of a multi-line reply only.
    latency = last.latency if last.latency is not None else line.latency
    frame_no = last.frame_no if last.frame_no is not None else line.frame_no
    return TimelineEvent(str(index), line.ts, line.direction, text, latency, frame_no, line.group)


def group_brackets(events: Sequence[TimelineEvent]) -> list[str]:
    """Return the bracket mark of each event, joining each run of events in one pipelined group.

    Only a group with two or more commands is pipelined. A source may number
    every command with its reply, and a bracket on each of those would be noise.
    """
    commands = Counter(
        event.group for event in events if event.direction is Direction.CLIENT_TO_SERVER
    )
    marks = [""] * len(events)
    start = 0
    while start < len(events):
        end = start
        group = events[start].group
        pipelined = group is not None and commands[group] >= 2
        while end + 1 < len(events) and pipelined and events[end + 1].group == group:
            end += 1
        if end > start:
            marks[start], marks[end] = "┌", "└"
            for middle in range(start + 1, end):
                marks[middle] = "│"
        start = end + 1
    return marks


def ladder_text(event: TimelineEvent) -> Text:
    """Draw one event between the client line on the left and the server line on the right."""
    inner = LADDER_WIDTH - 3  # two side lines and the arrow head
    label = printable(event.text, inner - 3)
    if event.direction is Direction.CLIENT_TO_SERVER:
        body = f"│ {label} ".ljust(inner + 1, "─") + "→│"
        return Text(body, style=COMMAND_STYLE, no_wrap=True, end="")
    if event.direction is Direction.SERVER_TO_CLIENT:
        body = "│←" + f" {label} │".rjust(inner + 1, "─")
        return Text(body, style=REPLY_STYLE, no_wrap=True, end="")
    body = f"┆ ⚠ {label}".ljust(LADDER_WIDTH - 1) + "┆"
    return Text(body, style=NOTE_STYLE, no_wrap=True, overflow="ellipsis", end="")


def latency_bar(seconds: float) -> str:
    """Draw ``seconds`` as a bar of up to ``BAR_WIDTH`` cells on the log scale of this module."""
    if not seconds > 0 or math.isinf(seconds):
        return ""
    span = math.log10(BAR_MAX_SECONDS / BAR_MIN_SECONDS)
    fraction = math.log10(max(seconds, BAR_MIN_SECONDS) / BAR_MIN_SECONDS) / span
    eighths = round(min(fraction, 1.0) * BAR_WIDTH * 8)
    # A reply at the lower end still gets a sliver, so it is not mistaken for no reply.
    eighths = max(eighths, 1)
    return "█" * (eighths // 8) + _EIGHTHS[eighths % 8].strip()


def latency_cell(seconds: float | None, stall_seconds: float) -> Text:
    """Build the latency cell: the duration and its bar, red once it exceeds ``stall_seconds``."""
    if seconds is None:
        return Text("", end="")
    if seconds > stall_seconds:
        style = SLOW_STYLE
    elif seconds >= 1.0:
        style = "yellow"
    else:
        style = "green"
    text = Text(f"{format_duration(seconds):>7} ", no_wrap=True, end="")
    text.append(latency_bar(seconds), style=style)
    return text


def timeline_rows(
    events: Sequence[TimelineEvent],
    display: TimeDisplay,
    start: float,
    stall_seconds: float,
) -> list[tuple[str, list[Text]]]:
    """Build the timeline table's rows; a delta longer than ``stall_seconds`` is marked as a gap."""
    rows = []
    previous: float | None = None
    for event, mark in zip(events, group_brackets(events)):
        delta = "" if previous is None else "+" + format_duration(event.ts - previous)
        gap = previous is not None and event.ts - previous > stall_seconds
        rows.append(
            (
                event.key,
                [
                    Text(format_time(display, event.ts, start, previous), no_wrap=True, end=""),
                    Text(delta, style=SLOW_STYLE if gap else "dim", no_wrap=True, end=""),
                    Text(mark, style="bold", end=""),
                    ladder_text(event),
                    latency_cell(event.latency, stall_seconds),
                ],
            )
        )
        previous = event.ts
    return rows


def phase_rows(
    phases: Sequence[PhaseLatency], display: TimeDisplay, start: float
) -> list[tuple[str, list[Text]]]:
    """Build the phases table's rows; the slowest complete phase is highlighted."""
    completed = [phase.complete for phase in phases if phase.complete is not None]
    slowest = max(completed) if completed else None
    rows = []
    previous: float | None = None
    for index, phase in enumerate(phases):
        style = SLOW_STYLE if slowest is not None and phase.complete == slowest else ""
        if phase.complete is None:
            complete = Text("waiting", style=WAITING_STYLE, end="")
        else:
            complete = Text(format_duration(phase.complete), style=style, end="")
        first_byte = "" if phase.first_byte is None else format_duration(phase.first_byte)
        rows.append(
            (
                str(index),
                [
                    Text(
                        printable(phase.phase, PHASE_NAME_CHARS), style=style, no_wrap=True, end=""
                    ),
                    Text(format_time(display, phase.start, start, previous), no_wrap=True, end=""),
                    Text(first_byte, style=style, end=""),
                    complete,
                ],
            )
        )
        previous = phase.start
    return rows
