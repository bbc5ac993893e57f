"""Pilot tests of the conversation screen's stall line, Timeline tab and Phases tab."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from screen_text import screen_text
from textual.widgets import Static, TabbedContent
from ui_samples import C2S, IMPLICIT_KEY, S2C, STALL_LINE, STALLED_KEY, T0, sample_source

from smtptop.engine.snapshot import ConversationDetail, PhaseLatency, TranscriptLine
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.source import StaticSource
from smtptop.ui.timeline import (
    BAR_WIDTH,
    LADDER_WIDTH,
    group_brackets,
    latency_bar,
    timeline_events,
)

SIZE = (160, 45)


def make_app(source: StaticSource) -> SmtpTopApp:
    return SmtpTopApp(source, live=False, refresh_hz=0.1)


def query_table(app: SmtpTopApp, table_id: str) -> Any:
    """Return a table by id: the dashboard's RowTable or a conversation screen's KeyedTable."""
    return app.screen.query_one(f"#{table_id}")


def column(app: SmtpTopApp, table_id: str, column_key: str) -> list[Text]:
    table = query_table(app, table_id)
    return [table.get_cell(key, column_key) for key in table.row_keys()]


def static_text(app: SmtpTopApp, widget_id: str) -> str:
    return str(app.screen.query_one(f"#{widget_id}", Static).content)


async def open_row(pilot, app: SmtpTopApp, key: int, tab: str = "") -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    dashboard = query_table(app, "conversations")
    while dashboard.cursor_key != str(key):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause()
    if tab:
        await pilot.press(tab)
        await pilot.pause()


def with_transcript(source: StaticSource, key: int, *lines: TranscriptLine) -> None:
    detail = source.detail(key)
    assert detail is not None
    source.update(details={key: dataclasses.replace(detail, transcript=detail.transcript + lines)})


def pipelined_lines() -> tuple[TranscriptLine, ...]:
    """MAIL, RCPT and DATA sent in one segment (RFC 2920), their replies, a gap note and a late reply."""
    return (
        TranscriptLine(T0 + 0.060, C2S, "RCPT TO:<dave@example.org>", None, frame_no=101, group=7),
        TranscriptLine(T0 + 0.060, C2S, "RCPT TO:<erin@example.org>", None, frame_no=101, group=7),
        TranscriptLine(T0 + 0.060, C2S, "DATA", None, frame_no=101, group=7),
        TranscriptLine(T0 + 0.071, S2C, "250 2.1.5 Ok", 0.011, frame_no=105),
        TranscriptLine(T0 + 0.071, S2C, "250 2.1.5 Ok", 0.011, frame_no=105),
        TranscriptLine(T0 + 0.071, S2C, "354 End data with <CR><LF>.<CR><LF>", 0.011, frame_no=105),
        TranscriptLine(T0 + 0.080, None, "gap of 1200 bytes in the client stream", None),
        TranscriptLine(T0 + 47.080, S2C, "250 2.0.0 Ok: queued", 47.0, frame_no=105),
    )


# -- stall line --------------------------------------------------------------------------


async def test_stall_line_under_title() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        stall = app.screen.query_one("#stall", Static)

        assert stall.display
        assert static_text(app, "stall") == STALL_LINE


async def test_stall_line_hidden_when_empty() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, IMPLICIT_KEY)

        assert not app.screen.query_one("#stall", Static).display


async def test_stall_line_follows_updates() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        detail = source.detail(STALLED_KEY)
        assert detail is not None

        source.update(details={STALLED_KEY: dataclasses.replace(detail, stall="")})
        app.refresh_from_source()
        await pilot.pause()

        assert not app.screen.query_one("#stall", Static).display


# -- timeline ----------------------------------------------------------------------------


async def test_timeline_arrows_in_order() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        ladder = [cell.plain for cell in column(app, "timeline", "ladder")]

        assert app.screen.query_one("#tabs", TabbedContent).active == "timeline-tab"
        assert len(ladder) == 5
        assert ladder[0].startswith("│←")
        assert "220 mx.example.org ESMTP ready" in ladder[0]
        assert ladder[1].startswith("│ EHLO client.example.net ─")
        assert ladder[1].endswith("→│")
        # The four lines of the EHLO reply are one arrow.
        assert "250-mx.example.org (4 lines)" in ladder[2]
        assert ladder[3].startswith("│ MAIL FROM:<carol@example.net>")
        assert ladder[4].endswith("250 2.1.0 Ok │")
        assert all(len(line) == LADDER_WIDTH for line in ladder)


async def test_timeline_delta_and_latency() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        deltas = [cell.plain for cell in column(app, "timeline", "delta")]
        latencies = [cell.plain for cell in column(app, "timeline", "latency")]

        assert deltas == ["", "+10 ms", "+11 ms", "+9 ms", "+12 ms"]
        assert latencies[1] == ""
        assert latencies[2].split()[:2] == ["11", "ms"]
        assert latencies[2].endswith(latency_bar(0.011))
        assert latencies[4].split()[:2] == ["12", "ms"]


def test_latency_bar_log_scale() -> None:
    # 100 µs to 100 s over BAR_WIDTH cells: each factor of ten adds two cells.
    assert latency_bar(0.0001) == "▏"
    assert latency_bar(0.001) == "██"
    assert latency_bar(0.1) == "██████"
    assert latency_bar(100.0) == "█" * BAR_WIDTH
    assert latency_bar(10_000.0) == "█" * BAR_WIDTH
    assert latency_bar(0.0) == ""
    assert latency_bar(float("nan")) == ""


async def test_timeline_brackets_pipelined_group() -> None:
    source = sample_source()
    with_transcript(source, STALLED_KEY, *pipelined_lines())
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        marks = [cell.plain for cell in column(app, "timeline", "group")]
        ladder = [cell.plain for cell in column(app, "timeline", "ladder")]

        assert marks[5:8] == ["┌", "│", "└"]
        assert "RCPT TO:<dave@example.org>" in ladder[5]
        assert "DATA" in ladder[7]
        assert marks[:5] == [""] * 5
        assert marks[8:] == [""] * 5


async def test_timeline_marks_notes_and_gaps() -> None:
    source = sample_source()
    with_transcript(source, STALLED_KEY, *pipelined_lines())
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        ladder = column(app, "timeline", "ladder")
        deltas = column(app, "timeline", "delta")
        latencies = column(app, "timeline", "latency")

        note = ladder[11]
        assert note.plain.startswith("┆ ⚠ gap of 1200 bytes in the client stream")
        assert str(note.style) == "bold magenta"
        # 47 s after the note: longer than stall_seconds (10 s), so marked as a gap.
        assert deltas[12].plain == "+47 s"
        assert str(deltas[12].style) == "bold red"
        assert str(deltas[11].style) == "dim"
        assert latencies[12].plain.split()[:2] == ["47", "s"]
        # log10(47 s / 100 µs) / 6 decades × 12 cells = 11.3 cells.
        assert latencies[12].plain.endswith(" " + "█" * 11 + "▍")


async def test_timeline_cursor_selects_packet_and_dump() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        assert query_table(app, "packets").cursor_key == "101"

        await pilot.press("down", "down")
        await pilot.pause()

        assert query_table(app, "timeline").cursor_key == "2"
        assert query_table(app, "packets").cursor_key == "103"
        assert static_text(app, "timeline-hexdump").startswith("Frame 103: ")
        assert static_text(app, "hexdump").startswith("Frame 103: ")
        assert ".STARTTLS.." in static_text(app, "timeline-hexdump")


async def test_timeline_enter_opens_packet() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        await pilot.press("down", "down", "down")
        await pilot.press("enter")
        await pilot.pause()

        assert app.screen.query_one("#tabs", TabbedContent).active == "packets-tab"
        assert query_table(app, "packets").cursor_key == "104"
        assert query_table(app, "packets").has_focus
        assert static_text(app, "hexdump").startswith("Frame 104: ")


async def test_timeline_note_has_no_packet() -> None:
    source = sample_source()
    with_transcript(source, STALLED_KEY, *pipelined_lines())
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        await pilot.press(*["down"] * 11)
        await pilot.pause()

        assert query_table(app, "timeline").cursor_key == "14"
        assert static_text(app, "timeline-hexdump") == "This line has no packet."
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.query_one("#tabs", TabbedContent).active == "timeline-tab"


async def test_timeline_hidden_tab_leaves_packets() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        await pilot.press("down", "down")
        await pilot.pause()
        app.refresh_from_source()
        await pilot.pause()

        assert query_table(app, "packets").cursor_key == "103"


async def test_timeline_grows_keeping_cursor() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        await pilot.press("down")
        await pilot.pause()

        with_transcript(source, STALLED_KEY, *pipelined_lines())
        app.refresh_from_source()
        await pilot.pause()

        assert query_table(app, "timeline").row_count == 13
        assert query_table(app, "timeline").cursor_key == "1"


async def test_timeline_survives_odd_lines() -> None:
    source = sample_source()
    odd = (
        TranscriptLine(T0 + 0.1, S2C, "250-", None),
        TranscriptLine(T0 + 0.05, S2C, "\x1b[2J" + "x" * 500, float("inf"), frame_no=999),
        TranscriptLine(T0 + 0.2, C2S, "", -1.0, group=3),
    )
    with_transcript(source, STALLED_KEY, *odd)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        await pilot.press(*["down"] * 5)
        await pilot.pause()

        assert app.is_running
        assert query_table(app, "timeline").cursor_key == "8"
        ladder = [cell.plain for cell in column(app, "timeline", "ladder")]
        assert all(line.isprintable() for line in ladder)
        assert "is no longer in the packet list" in static_text(app, "timeline-hexdump")


async def test_empty_transcript_timeline() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, IMPLICIT_KEY, "3")

        assert query_table(app, "timeline").row_count == 0
        assert static_text(app, "timeline-hexdump") == "No packet selected."


async def test_timeline_time_follows_t() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "3")
        await pilot.press("t")
        await pilot.pause()

        assert [cell.plain for cell in column(app, "timeline", "time")][:2] == [
            "+0.010000",
            "+0.020000",
        ]


# -- phases ------------------------------------------------------------------------------


async def test_phases_tab_lists_phases() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "4")
        await pilot.press("t")
        await pilot.pause()
        phases = [cell.plain for cell in column(app, "phases", "phase")]

        assert app.screen.query_one("#tabs", TabbedContent).active == "phases-tab"
        assert phases == ["connect", "greeting", "EHLO", "MAIL", "RCPT"]
        assert [cell.plain for cell in column(app, "phases", "start")][2] == "+0.020000"
        assert [cell.plain for cell in column(app, "phases", "first_byte")] == [
            "",
            "6 ms",
            "11 ms",
            "10 ms",
            "",
        ]
        complete = column(app, "phases", "complete")
        assert [cell.plain for cell in complete] == ["4 ms", "6 ms", "11 ms", "12 ms", "waiting"]
        assert not app.screen.query_one("#phases-empty", Static).display


async def test_phases_slowest_highlighted() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "4")
        styles = [str(cell.style) for cell in column(app, "phases", "complete")]

        assert styles == ["", "", "", "bold red", "yellow"]
        assert str(column(app, "phases", "phase")[3].style) == "bold red"


async def test_phases_empty_says_so() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, IMPLICIT_KEY, "4")

        assert query_table(app, "phases").row_count == 0
        assert app.screen.query_one("#phases-empty", Static).display
        assert "No phase latencies" in static_text(app, "phases-empty")


def test_detail_defaults_are_empty() -> None:
    source = sample_source()
    detail = source.detail(IMPLICIT_KEY)
    assert isinstance(detail, ConversationDetail)
    assert detail.stall == ""
    assert detail.phases == ()


def test_lone_command_group_not_bracketed() -> None:
    # A source may number each command together with its reply; that is not pipelining.
    lines = (
        TranscriptLine(T0, C2S, "EHLO a.example", None, group=1),
        TranscriptLine(T0 + 0.01, S2C, "250-b.example", 0.01, group=1),
        TranscriptLine(T0 + 0.01, S2C, "250 SIZE", None, group=1),
        TranscriptLine(T0 + 0.02, C2S, "MAIL FROM:<>", None, group=2),
        TranscriptLine(T0 + 0.02, C2S, "RCPT TO:<c@example>", None, group=2),
        TranscriptLine(T0 + 0.03, S2C, "250 Ok", 0.01, group=2),
        TranscriptLine(T0 + 0.03, S2C, "250 Ok", 0.01, group=2),
    )
    events = timeline_events(lines)

    assert group_brackets(events) == ["", "", "┌", "│", "│", "└"]
    # The EHLO reply's latency sits on its first line only, and the merged arrow keeps it.
    assert events[1].text == "250-b.example (2 lines)"
    assert events[1].latency == 0.01


async def test_phases_tab_long_names_whole() -> None:
    source = sample_source()
    detail = source.detail(STALLED_KEY)
    assert detail is not None
    long_names = (
        PhaseLatency("SYN-ACK", T0, None, 0.001),
        PhaseLatency("handshake ACK", T0 + 0.001, None, 0.002),
        PhaseLatency("AUTH response", T0 + 0.030, 0.004, 0.005),
        PhaseLatency("end-of-data", T0 + 0.040, 0.010, 0.012),
    )
    source.update(details={STALLED_KEY: dataclasses.replace(detail, phases=long_names)})
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY, "4")

        screen = screen_text(app)
        for phase in long_names:
            assert f" {phase.phase} " in screen, phase.phase
        assert "…" not in screen
