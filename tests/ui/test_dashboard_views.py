"""Pilot tests of the dashboard's stall display, sort orders, quick filters and traffic panel."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console
from textual.widgets import Sparkline, Static

from smtptop.engine.snapshot import Snapshot
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.rows import SORT_ORDERS, STALLED_STYLE
from smtptop.ui.traffic import TrafficPanel
from dashboard_driver import cell, change_row, header, make_app, table
from ui_samples import IMPLICIT_KEY, POSTFIX_KEY, STALLED_KEY, T0, sample_source, sample_traffic

SIZE = (160, 40)


def keys(*numbers: int) -> list[str]:
    return [str(number) for number in numbers]


async def refresh(pilot, app: SmtpTopApp) -> None:  # type: ignore[no-untyped-def]
    app.refresh_from_source()
    await pilot.pause()


# -- stalls ------------------------------------------------------------------------------


async def test_waiting_column_shows_side_and_time() -> None:
    source = sample_source()
    change_row(source, IMPLICIT_KEY, waiting_on="server", waiting_since=T0 + 59.7)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert cell(app, STALLED_KEY, "waiting").plain == "client 59 s"
        assert cell(app, IMPLICIT_KEY, "waiting").plain == "server <1 s"
        assert cell(app, POSTFIX_KEY, "waiting").plain == ""


async def test_stalled_row_highlighted_and_counted() -> None:
    source = sample_source()
    # Idle only 0.5 s, but the server has owed its reply for 47 s: the wait decides.
    change_row(source, IMPLICIT_KEY, waiting_on="server", waiting_since=T0 + 13.0)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert cell(app, IMPLICIT_KEY, "waiting").plain == "server 47 s"
        assert str(cell(app, IMPLICIT_KEY, "waiting").style) == STALLED_STYLE
        assert str(cell(app, IMPLICIT_KEY, "idle").style) == STALLED_STYLE
        assert str(cell(app, STALLED_KEY, "idle").style) == STALLED_STYLE
        assert str(cell(app, POSTFIX_KEY, "idle").style) == "dim"
        assert "stalled 2" in header(app)


async def test_short_wait_not_stalled_despite_idle() -> None:
    source = sample_source()
    # Idle for 59 s, but the server started owing a reply only 2 s ago.
    change_row(source, STALLED_KEY, waiting_on="server", waiting_since=T0 + 58.0)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert str(cell(app, STALLED_KEY, "idle").style) == ""
        assert "stalled 0" in header(app)


async def test_stall_falls_back_to_idle() -> None:
    source = sample_source()
    change_row(source, STALLED_KEY, waiting_on=None, waiting_since=None)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert cell(app, STALLED_KEY, "waiting").plain == ""
        assert str(cell(app, STALLED_KEY, "idle").style) == STALLED_STYLE
        assert "stalled 1" in header(app)


async def test_live_stall_ages_on_wall_clock() -> None:
    source = sample_source()
    # A live capture long after its last packet: the wall clock is far past stats.now.
    change_row(source, IMPLICIT_KEY, waiting_on="server", waiting_since=T0 + 59.9)
    app = SmtpTopApp(source, live=True, refresh_hz=0.1, stall_seconds=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert str(cell(app, IMPLICIT_KEY, "waiting").style) == STALLED_STYLE


async def test_ended_live_capture_stops_ageing() -> None:
    # The same conversation, but the capture has ended: nothing more can arrive, so the
    # wall clock must not make it look stalled.
    source = sample_source()
    change_row(source, IMPLICIT_KEY, waiting_on="server", waiting_since=T0 + 59.9)
    snapshot = source.snapshot()
    source.update(dataclasses.replace(snapshot, stats=dataclasses.replace(snapshot.stats, finished=True)))
    app = SmtpTopApp(source, live=True, refresh_hz=0.1, stall_seconds=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert str(cell(app, IMPLICIT_KEY, "waiting").style) != STALLED_STYLE
        assert "stalled 0" in header(app)


# -- sorting -----------------------------------------------------------------------------


async def test_sort_cycles_through_every_column() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        labels = []
        for _ in SORT_ORDERS:
            labels.append(header(app).split("sorted by ", 1)[1].split("  ")[0])
            await pilot.press("o")
            await pilot.pause()

        assert labels == [order.label for order in SORT_ORDERS]
        assert "sorted by newest first" in header(app)
        for column in ("client", "server", "TLS", "stage", "age", "msg", "retrans", "dup ACKs", "zero windows"):
            assert any(label.startswith(column) for label in labels), column
        assert "last command" in labels
        assert "last reply" in labels


async def test_stalled_first_is_fourth() -> None:
    source = sample_source()
    change_row(source, IMPLICIT_KEY, waiting_on="server", waiting_since=T0 + 50.0)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("o", "o", "o")
        await pilot.pause()

        assert "sorted by stalled, longest waiting" in header(app)
        # The stalled conversation that waited longest (59.9 s) leads; closed rows come last.
        assert table(app).row_keys() == keys(STALLED_KEY, IMPLICIT_KEY, POSTFIX_KEY)


async def test_sort_by_column_and_reverse() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"oooo")
        await pilot.pause()
        assert "sorted by client" in header(app)
        by_client = keys(STALLED_KEY, POSTFIX_KEY, IMPLICIT_KEY)
        assert table(app).row_keys() == by_client

        await pilot.press("O")
        await pilot.pause()

        assert "sorted by client, reversed" in header(app)
        assert table(app).row_keys() == by_client[::-1]


async def test_sort_keeps_cursor_on_row() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down")
        assert table(app).cursor_key == str(POSTFIX_KEY)
        client_cell = cell(app, POSTFIX_KEY, "client")

        await pilot.press("O")
        await pilot.pause()
        assert table(app).row_keys() == keys(STALLED_KEY, POSTFIX_KEY, IMPLICIT_KEY)
        assert table(app).cursor_key == str(POSTFIX_KEY)

        await pilot.press("o", "o")
        await pilot.pause()
        assert table(app).cursor_key == str(POSTFIX_KEY)
        assert table(app).cursor_row == table(app).row_keys().index(str(POSTFIX_KEY))
        # Reordering moves rows; it does not rebuild their cells.
        assert cell(app, POSTFIX_KEY, "client") is client_cell


async def test_msgs_sort_most_first() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        index = [order.label for order in SORT_ORDERS].index("msgs, most first")
        await pilot.press(*"o" * index)
        await pilot.pause()

        assert table(app).row_keys()[0] == str(POSTFIX_KEY)


# -- quick filters -----------------------------------------------------------------------


async def test_stalled_filter_toggles() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert table(app).row_keys() == keys(STALLED_KEY)
        assert "only: stalled" in header(app)

        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert table(app).row_count == 3
        assert "only:" not in header(app)


async def test_errors_filter_counts_and_last_reply() -> None:
    source = sample_source()
    change_row(source, IMPLICIT_KEY, errors=2)
    change_row(source, STALLED_KEY, last_reply="451 4.3.0 Try again later")
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        await pilot.press("e")
        await pilot.pause()

        assert table(app).row_keys() == keys(IMPLICIT_KEY, STALLED_KEY)
        assert "only: errors" in header(app)


async def test_errors_filter_empty_without_errors() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()

        assert table(app).row_count == 0


async def test_tls_filter_cycles_modes() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        seen = []
        for _ in range(4):
            await pilot.press("T")
            await pilot.pause()
            seen.append((table(app).row_keys(), header(app)))

        assert seen[0][0] == keys(POSTFIX_KEY)
        assert "only: TLS plain" in seen[0][1]
        assert seen[1][0] == keys(STALLED_KEY)
        assert "only: TLS STARTTLS" in seen[1][1]
        assert seen[2][0] == keys(IMPLICIT_KEY)
        assert "only: TLS implicit" in seen[2][1]
        assert len(seen[3][0]) == 3
        assert "only:" not in seen[3][1]


async def test_quick_filters_combine_with_text() -> None:
    source = sample_source()
    change_row(source, IMPLICIT_KEY, errors=1)
    change_row(source, POSTFIX_KEY, errors=1)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e", "slash", *"2001:db8", "enter")
        await pilot.pause()

        assert table(app).row_keys() == keys(IMPLICIT_KEY)
        assert "only: errors" in header(app)
        assert "filter: 2001:db8" in header(app)

        await pilot.press("escape")
        await pilot.pause()

        assert table(app).row_count == 3
        assert "only:" not in header(app)
        assert "filter:" not in header(app)


# -- traffic panel -----------------------------------------------------------------------


def panel(app: SmtpTopApp) -> TrafficPanel:
    return app.screen.query_one("#traffic", TrafficPanel)


def panel_text(app: SmtpTopApp, widget_id: str) -> str:
    # Static.content holds the Rich renderable; render it to plain text.
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(app.screen.query_one(f"#{widget_id}", Static).content)
    return console.export_text()


async def test_traffic_panel_shows_values() -> None:
    app = make_app(sample_source(sample_traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert panel(app).display
        assert "conversations/s 1.25" in panel_text(app, "conversation-rate")
        assert "messages/s 0.50" in panel_text(app, "message-rate")
        assert "over 1m00s" in panel_text(app, "message-rate")
        assert panel_text(app, "reply-classes").split() == ["replies", "2xx", "120", "4xx", "3", "5xx", "1"]
        spark = app.screen.query_one("#conversation-spark", Sparkline)
        assert tuple(spark.data or ()) == (0.0, 1.0, 2.0, 1.0, 3.0, 1.0)
        latency = panel_text(app, "traffic-latency")
        rcpt = next(line for line in latency.splitlines() if line.startswith("RCPT"))
        assert rcpt.split() == ["RCPT", "61", "5", "ms", "250", "ms", "1.2", "s"]
        assert "end-of-data" in latency
        tops = panel_text(app, "traffic-tops")
        assert "4xx/5xx by server" in tops
        assert "3 10.0.0.25:25" in tops
        assert "4 10.0.0.5:40112" in tops
        assert "5.0 s 127.0.0.11:25" in tops


async def test_rate_label_names_seconds_seen() -> None:
    # Ten seconds into a capture, the rates cover those ten seconds, not the minute of the window.
    app = make_app(sample_source(dataclasses.replace(sample_traffic(), rate_seconds=10.0)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert "over 10 s" in panel_text(app, "conversation-rate")
        assert "over 10 s" in panel_text(app, "message-rate")


async def test_traffic_panel_toggles_with_g() -> None:
    app = make_app(sample_source(sample_traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert panel(app).display

        await pilot.press("g")
        await pilot.pause()
        assert not panel(app).display

        await pilot.press("g")
        await pilot.pause()
        assert panel(app).display


async def test_traffic_panel_hidden_on_short_terminal() -> None:
    app = make_app(sample_source(sample_traffic()))
    async with app.run_test(size=(160, 24)) as pilot:
        await pilot.pause()
        assert not panel(app).display

        await pilot.press("g")
        await pilot.pause()
        assert panel(app).display


async def test_traffic_panel_absent_without_stats() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not panel(app).display

        await pilot.press("g")
        await pilot.pause()

        assert not panel(app).display
        assert app.is_running


async def test_traffic_panel_updates_and_disappears() -> None:
    source = sample_source(sample_traffic())
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        snapshot = source.snapshot()
        assert snapshot.traffic is not None
        busier = dataclasses.replace(
            snapshot.traffic, messages_per_second=4.0, replies_by_class=(("2xx", 130),)
        )
        source.update(dataclasses.replace(snapshot, traffic=busier))
        await refresh(pilot, app)

        assert "messages/s 4.00" in panel_text(app, "message-rate")
        assert "2xx 130" in panel_text(app, "reply-classes")

        source.update(Snapshot(stats=snapshot.stats, rows=snapshot.rows))
        await refresh(pilot, app)
        assert not panel(app).display


async def test_traffic_panel_survives_empty_lists() -> None:
    empty = dataclasses.replace(
        sample_traffic(),
        replies_by_class=(),
        phase_percentiles=(),
        conversation_rate_history=(),
        message_rate_history=(),
        top_error_servers=(),
        top_error_clients=(),
        slowest_servers=(),
    )
    app = make_app(sample_source(empty))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        assert "none in the last minute" in panel_text(app, "reply-classes")
        assert "none in the last minute" in panel_text(app, "traffic-latency")
        assert "none yet" in panel_text(app, "traffic-tops")
