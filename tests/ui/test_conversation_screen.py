"""Pilot tests of the conversation screen: packet list, hex dump, time display and transcript."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Static, TabbedContent
from ui_samples import IMPLICIT_KEY, POSTFIX_KEY, STALLED_KEY, sample_source

from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.text.timefmt import format_absolute, format_offset
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.conversation import ConversationScreen
from smtptop.ui.dashboard import DashboardScreen
from smtptop.ui.keyed_table import KeyedTable
from smtptop.ui.row_table import RowTable
from smtptop.ui.source import StaticSource

SIZE = (160, 45)

GREETING_LINE = "0x0040:  2f41 3232 3020 6d61 696c 2e65 7861 6d70  /A220.mail.examp"
SYN_LINE = "0x0000:  7270 a5fd 13bf 8ec5 f455 e90d 0800 4500  rp.......U....E."


def make_app(source: StaticSource) -> SmtpTopApp:
    return SmtpTopApp(source, live=False, refresh_hz=0.1)


def packets(app: SmtpTopApp) -> KeyedTable:
    return app.screen.query_one("#packets", KeyedTable)


def transcript(app: SmtpTopApp) -> KeyedTable:
    return app.screen.query_one("#transcript", KeyedTable)


def dump(app: SmtpTopApp) -> str:
    return str(app.screen.query_one("#hexdump", Static).content)


def title(app: SmtpTopApp) -> str:
    return str(app.screen.query_one("#title", Static).content)


def transcript_lines(app: SmtpTopApp) -> list[Text]:
    table = transcript(app)
    return [table.get_cell(key, "line") for key in table.row_keys()]


async def open_row(pilot, app: SmtpTopApp, key: int) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    dashboard = app.screen.query_one("#conversations", RowTable)
    while dashboard.cursor_key != str(key):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause()


async def test_enter_opens_row_under_cursor() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)

        assert isinstance(app.screen, ConversationScreen)
        assert app.screen.key == STALLED_KEY
        assert "10.0.0.5:40112 → 10.0.0.25:25" in title(app)
        assert "TLS STARTTLS" in title(app)
        assert "TCP established" in title(app)
        assert "stage MAIL" in title(app)
        assert "payload bytes 190" in title(app)
        assert "capabilities: PIPELINING SIZE 52428800 STARTTLS" in title(app)


async def test_packet_rows_coloured_by_direction() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, POSTFIX_KEY)
        table = packets(app)

        assert table.row_count == 39
        assert table.get_cell("4", "direction").plain == "←"
        assert table.get_cell("4", "summary").plain == "220 mail.example.com ESMTP Postfix"
        assert table.get_cell("4", "seq").plain == "1"
        assert table.get_cell("4", "length").plain == "36"
        assert str(table.get_cell("4", "summary").style) == "yellow"
        assert str(table.get_cell("6", "summary").style) == "cyan"
        assert table.get_cell("3", "summary").plain == "[ACK]"
        assert str(table.get_cell("3", "summary").style) == "dim cyan"


async def test_cursor_moves_hex_dump() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, POSTFIX_KEY)
        assert SYN_LINE in dump(app)
        assert dump(app).startswith("Frame 1: 74 bytes captured")

        await pilot.press("down", "down", "down")
        await pilot.pause()

        assert packets(app).cursor_key == "4"
        assert dump(app).startswith("Frame 4: 102 bytes captured")
        assert GREETING_LINE in dump(app)
        assert SYN_LINE not in dump(app)


async def test_dropped_frame_says_so() -> None:
    source = sample_source()
    detail = source.detail(STALLED_KEY)
    assert detail is not None
    dropped = tuple(dataclasses.replace(packet, frame=None) for packet in detail.packets)
    source.update(details={STALLED_KEY: dataclasses.replace(detail, packets=dropped)})
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)

        assert "Frame 101: bytes no longer kept" in dump(app)


async def test_t_cycles_time_format() -> None:
    source = sample_source()
    detail = source.detail(POSTFIX_KEY)
    assert detail is not None
    first, greeting = detail.packets[0], detail.packets[3]
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, POSTFIX_KEY)
        table = packets(app)
        assert table.get_cell("4", "time").plain == format_absolute(greeting.ts)

        await pilot.press("t")
        await pilot.pause()
        assert table.get_cell("1", "time").plain == "+0.000000"
        assert table.get_cell("4", "time").plain == format_offset(greeting.ts - first.ts)
        assert str(table.columns[table._column_keys[1]].label) == "since start"

        await pilot.press("t")
        await pilot.pause()
        previous = detail.packets[2]
        assert table.get_cell("4", "time").plain == format_offset(greeting.ts - previous.ts)

        await pilot.press("t")
        await pilot.pause()
        assert table.get_cell("4", "time").plain == format_absolute(greeting.ts)


async def test_transcript_tab_shows_dialogue() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)

        await pilot.press("2")
        await pilot.pause()

        assert app.screen.query_one("#tabs", TabbedContent).active == "transcript-tab"
        lines = [line.plain for line in transcript_lines(app)]
        assert "C: EHLO client.example.net" in lines
        assert "S: 250-mx.example.org" in lines
        assert "S: 250 STARTTLS" in lines
        table = transcript(app)
        ehlo_reply = table.row_keys()[2]
        assert table.get_cell(ehlo_reply, "latency").plain == "11 ms"


async def test_transcript_notes_are_muted() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, POSTFIX_KEY)
        await pilot.press("2")
        await pilot.pause()

        notes = [line for line in transcript_lines(app) if line.plain.startswith("-- ")]

        assert [note.plain for note in notes][0] == "-- message body, 202 bytes"
        assert all(str(note.style) == "dim italic" for note in notes)


async def test_new_packets_append_keeping_cursor() -> None:
    source = sample_source()
    detail = source.detail(STALLED_KEY)
    assert detail is not None
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        await pilot.press("down")
        await pilot.pause()
        assert packets(app).cursor_key == "102"
        dump_before = dump(app)

        extra = dataclasses.replace(detail.packets[-1], frame_no=106, summary="[ACK]", length=0)
        grown = dataclasses.replace(detail, packets=(*detail.packets, extra))
        source.update(details={STALLED_KEY: grown})
        app.refresh_from_source()
        await pilot.pause()

        assert packets(app).row_keys()[-1] == "106"
        assert packets(app).cursor_key == "102"
        assert dump(app) == dump_before


async def test_detail_gone_keeps_last_view() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)

        source.update(details={})
        app.refresh_from_source()
        await pilot.pause()

        assert "no longer tracked" in title(app)
        assert packets(app).row_count == 5


async def test_empty_detail_renders() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, IMPLICIT_KEY)

        assert packets(app).row_count == 0
        assert "No packet selected." in dump(app)
        assert "anomalies: TLS record before handshake ×1" in title(app)


async def test_escape_and_q_go_back() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.query_one("#conversations", RowTable).cursor_key == str(STALLED_KEY)

        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConversationScreen)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert app.is_running


async def test_untracked_row_does_not_open() -> None:
    source = sample_source()
    source.update(details={})
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

        assert isinstance(app.screen, DashboardScreen)


async def test_dashboard_catches_up_after_back() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, STALLED_KEY)
        snapshot = source.snapshot()
        rows = tuple(
            dataclasses.replace(row, stage="DATA") if row.key == STALLED_KEY else row
            for row in snapshot.rows
        )
        source.update(Snapshot(stats=snapshot.stats, rows=rows))
        app.refresh_from_source()
        await pilot.pause()

        await pilot.press("escape")
        await pilot.pause()

        table = app.screen.query_one("#conversations", RowTable)
        assert table.get_cell(str(STALLED_KEY), "stage").plain == "DATA"


async def test_screenshot_of_conversation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await open_row(pilot, app, POSTFIX_KEY)
        app.save_screenshot(filename="conversation.svg", path=str(tmp_path))

    assert "<svg" in (tmp_path / "conversation.svg").read_text()


def test_detail_type_is_frozen() -> None:
    # The screen keeps the last detail object; a frozen dataclass cannot change under it.
    assert ConversationDetail.__dataclass_params__.frozen  # type: ignore[attr-defined]
