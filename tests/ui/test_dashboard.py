"""Pilot tests of the dashboard: rows, in-place updates, filter, pause, sort and help."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console
from textual.widgets import Input, Static

from smtptop.engine.runner import Backlog
from smtptop.engine.snapshot import Snapshot
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.help import HelpScreen
from smtptop.ui.rows import STALLED_STYLE
from smtptop.ui.source import StaticSource
from dashboard_driver import cell, change_row, header, make_app, table
from ui_samples import IMPLICIT_KEY, POSTFIX_KEY, STALLED_KEY, T0, sample_source, stats

SIZE = (160, 40)


async def test_rows_show_snapshot_cells() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert table(app).row_count == 3
        assert cell(app, STALLED_KEY, "client").plain == "10.0.0.5:40112"
        assert cell(app, STALLED_KEY, "server").plain == "10.0.0.25:25"
        assert cell(app, STALLED_KEY, "tls").plain == "STARTTLS"
        assert cell(app, STALLED_KEY, "stage").plain == "MAIL"
        assert cell(app, STALLED_KEY, "last_command").plain == "MAIL FROM:<carol@example.net>"
        assert cell(app, STALLED_KEY, "last_reply").plain == "250 2.1.0 Ok"
        assert cell(app, STALLED_KEY, "age").plain == "1m00s"
        assert cell(app, STALLED_KEY, "idle").plain == "59 s"
        assert cell(app, STALLED_KEY, "messages").plain == "0"
        assert cell(app, STALLED_KEY, "retransmissions").plain.split() == ["2", "0", "0"]
        assert cell(app, POSTFIX_KEY, "messages").plain == "3"
        assert cell(app, IMPLICIT_KEY, "idle").plain == "500 ms"
        assert cell(app, IMPLICIT_KEY, "last_command").plain == ""


async def test_newest_conversation_first() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert table(app).row_keys() == [str(IMPLICIT_KEY), str(POSTFIX_KEY), str(STALLED_KEY)]


async def test_stalled_idle_highlighted_and_closed_dimmed() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert str(cell(app, STALLED_KEY, "idle").style) == STALLED_STYLE
        assert str(cell(app, IMPLICIT_KEY, "idle").style) == ""
        assert str(cell(app, POSTFIX_KEY, "idle").style) == "dim"
        assert str(cell(app, POSTFIX_KEY, "client").style) == "dim"


async def test_header_shows_counters() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = header(app)

        assert "smtp-sv-multi-mail.pcap" in text
        assert "packets 53" in text
        assert "bytes 9,876" in text
        assert "conversations 2 open / 3" in text
        assert "drops n/a" in text
        assert "undecodable 1" in text
        assert "PAUSED" not in text


async def test_header_shows_drops_and_error() -> None:
    source = sample_source()
    snapshot = source.snapshot()
    failing = stats(T0 + 60.0, kernel_drops=17, interface_drops=0, error="corrupt record at 0x1f40")
    source.update(Snapshot(stats=failing, rows=snapshot.rows))
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = header(app)

        assert "drops kernel 17, interface 0" in text
        assert "error: corrupt record at 0x1f40" in text


async def test_header_shows_queue_drops() -> None:
    source = sample_source()
    snapshot = source.snapshot()
    dropping = stats(T0 + 60.0, kernel_drops=0, interface_drops=0, queue_drops=250)
    source.update(Snapshot(stats=dropping, rows=snapshot.rows))
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert "drops kernel 0, interface 0, queue 250" in header(app)


async def test_changed_cell_updates_in_place() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down")
        assert table(app).cursor_key == str(STALLED_KEY)
        untouched = cell(app, POSTFIX_KEY, "client")

        change_row(source, STALLED_KEY, stage="RCPT", last_command="RCPT TO:<dave@example.org>")
        app.refresh_from_source()
        await pilot.pause()

        assert cell(app, STALLED_KEY, "stage").plain == "RCPT"
        assert cell(app, STALLED_KEY, "last_command").plain == "RCPT TO:<dave@example.org>"
        assert cell(app, POSTFIX_KEY, "client") is untouched
        assert table(app).cursor_key == str(STALLED_KEY)


async def test_cursor_follows_row_when_new_row_on_top() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down")
        assert table(app).cursor_key == str(POSTFIX_KEY)

        snapshot = source.snapshot()
        newcomer = dataclasses.replace(
            snapshot.rows[2], key=9, start=T0 + 59.0, client="10.0.0.9:41000"
        )
        source.update(Snapshot(stats=snapshot.stats, rows=(*snapshot.rows, newcomer)))
        app.refresh_from_source()
        await pilot.pause()

        assert table(app).row_keys()[0] == "9"
        assert table(app).cursor_key == str(POSTFIX_KEY)
        assert table(app).cursor_row == 2


async def test_removed_conversation_disappears() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        snapshot = source.snapshot()

        kept = tuple(row for row in snapshot.rows if row.key != POSTFIX_KEY)
        source.update(Snapshot(stats=snapshot.stats, rows=kept))
        app.refresh_from_source()
        await pilot.pause()

        assert table(app).row_keys() == [str(IMPLICIT_KEY), str(STALLED_KEY)]


async def test_filter_narrows_rows() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("slash")
        assert app.screen.query_one("#filter", Input).has_focus
        await pilot.press(*"carol", "enter")
        await pilot.pause()

        assert table(app).row_keys() == [str(STALLED_KEY)]
        assert "filter: carol" in header(app)
        assert table(app).has_focus


async def test_filter_matches_server_and_stage() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("slash", *"2001:DB8", "enter")
        await pilot.pause()
        assert table(app).row_keys() == [str(IMPLICIT_KEY)]

        await pilot.press("slash", "ctrl+u", *"closed", "enter")
        await pilot.pause()
        assert table(app).row_keys() == [str(POSTFIX_KEY)]


async def test_filter_matches_tls_column_as_shown() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = cell(app, STALLED_KEY, "tls").plain

        await pilot.press("slash", *shown, "enter")
        await pilot.pause()
        assert table(app).row_keys() == [str(STALLED_KEY)]

        await pilot.press("slash", "ctrl+u", *"plain", "enter")
        await pilot.pause()
        assert table(app).row_keys() == [str(POSTFIX_KEY)]


async def test_escape_clears_filter() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"quit", "enter")
        await pilot.pause()
        assert table(app).row_keys() == [str(POSTFIX_KEY)]

        await pilot.press("escape")
        await pilot.pause()

        assert table(app).row_count == 3
        assert "filter:" not in header(app)


async def test_typing_q_in_filter_does_not_quit() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash", "q", "p")
        await pilot.pause()

        assert app.is_running
        assert app.screen.query_one("#filter", Input).value == "qp"
        assert not app.paused


async def test_pause_freezes_display() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("p")
        await pilot.pause()
        assert "PAUSED" in header(app)
        change_row(source, STALLED_KEY, stage="DATA")
        app.refresh_from_source()
        await pilot.pause()
        assert cell(app, STALLED_KEY, "stage").plain == "MAIL"

        await pilot.press("p")
        await pilot.pause()
        assert cell(app, STALLED_KEY, "stage").plain == "DATA"
        assert "PAUSED" not in header(app)


async def test_sort_cycles_to_longest_idle() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("o")
        await pilot.pause()
        assert table(app).row_keys() == [str(IMPLICIT_KEY), str(POSTFIX_KEY), str(STALLED_KEY)]
        assert "sorted by recent activity" in header(app)

        await pilot.press("o")
        await pilot.pause()
        assert table(app).row_keys() == [str(STALLED_KEY), str(IMPLICIT_KEY), str(POSTFIX_KEY)]


async def test_help_opens_and_closes() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-keys", Static).content)
        keys_text = console.export_text()
        assert "quit" in keys_text
        assert "pause or resume" in keys_text
        for key, meaning in (
            ("O", "reverse the sort order"),
            ("s", "save the conversation under the cursor"),
            ("!", "only stalled"),
            ("e", "4xx or 5xx"),
            ("T", "TLS filter"),
            ("g", "traffic panel"),
            ("R", "AUTH credentials"),
            ("1 / 2 / 3 / 4", "Timeline"),
        ):
            line = next((line for line in keys_text.splitlines() if meaning in line), "")
            assert line.strip().startswith(key), (key, meaning)

        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_footer_lists_new_keys() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        active = app.active_bindings.values()
        shown = {item.binding.key_display or item.binding.key for item in active if item.binding.show}

        assert {"O", "!", "e", "T", "g", "R"} <= shown


async def test_q_quits_and_stops_source() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()

    assert app.return_code == 0
    assert source.stop_calls == 1


async def test_empty_snapshot_refreshes_and_quits() -> None:
    idle_stats = stats(0.0, packets=0, bytes=0, conversations_open=0, conversations_total=0)
    source = StaticSource(Snapshot(stats=idle_stats, rows=()))
    app = SmtpTopApp(source, refresh_hz=50.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert source.snapshot_calls >= 3
        assert table(app).row_count == 0
        await pilot.press("enter", "q")
        await pilot.pause()

    assert source.stop_calls == 1


async def test_failing_source_shows_error() -> None:
    class FailingSource(StaticSource):
        def snapshot(self) -> Snapshot:
            raise RuntimeError("capture thread died")

    source = FailingSource(sample_source().snapshot())
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert "capture thread died" in header(app)
        assert table(app).row_count == 0


async def test_hostile_strings_do_not_break_cells() -> None:
    source = sample_source()
    change_row(
        source,
        STALLED_KEY,
        last_command="[bold]EHLO \x1b[2J" + "A" * 100_000,
        last_reply="",
        stage="",
    )
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        command = cell(app, STALLED_KEY, "last_command").plain

        assert command.startswith("[bold]EHLO \\x1b[2J")
        assert len(command) <= 200


async def test_screenshot_saves_svg(tmp_path) -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        path = app.save_screenshot(filename="dashboard.svg", path=str(tmp_path))

    assert (tmp_path / "dashboard.svg").read_text().startswith("<svg")
    assert path.endswith("dashboard.svg")


async def test_cursor_on_first_row_stays_on_top() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert table(app).cursor_row == 0

        snapshot = source.snapshot()
        newcomer = dataclasses.replace(
            snapshot.rows[2], key=9, start=T0 + 59.0, client="10.0.0.9:41000"
        )
        source.update(Snapshot(stats=snapshot.stats, rows=(*snapshot.rows, newcomer)))
        app.refresh_from_source()
        await pilot.pause()

        assert table(app).row_keys()[0] == "9"
        assert table(app).cursor_key == "9"

        await pilot.press("O")
        await pilot.pause()

        assert table(app).cursor_row == 0
        assert table(app).cursor_key == table(app).row_keys()[0]


class BacklogSource(StaticSource):
    """A live source whose capture queue is ``seconds`` behind."""

    def __init__(self, source: StaticSource, seconds: float) -> None:
        super().__init__(source.snapshot(), source._details)
        self.seconds = seconds

    def backlog(self) -> Backlog:
        return Backlog(frames=4_000, seconds=self.seconds)


async def test_backlog_shown_and_idle_on_capture_clock() -> None:
    # The capture clock is at T0 + 60 s and the wall clock much later. A live app
    # would count that difference as idle time, unless the analysis is behind.
    source = BacklogSource(sample_source(), seconds=12.5)
    app = SmtpTopApp(source, live=True, refresh_hz=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert "behind 12.5 s (4,000 packets queued)" in header(app)
        assert cell(app, STALLED_KEY, "idle").plain == "59 s"

        source.seconds = 0.2
        app.refresh_from_source()
        await pilot.pause()

        assert "behind" not in header(app)
        assert cell(app, STALLED_KEY, "idle").plain != "59 s"
