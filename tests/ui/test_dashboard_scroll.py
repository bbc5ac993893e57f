"""Pilot tests of a long table: a refresh renews the rows in view, and scrolling renews the others."""

from __future__ import annotations

import dataclasses

from smtptop.engine.snapshot import Snapshot
from smtptop.ui.source import StaticSource
from dashboard_driver import cell, make_app, table
from ui_samples import T0, stalled_row, stats

SIZE = (160, 40)
ROWS = 300


def long_source() -> StaticSource:
    """Return a source with ROWS open conversations, newest (highest key) first in the default order."""
    template = stalled_row()
    rows = tuple(
        dataclasses.replace(template, key=key, client=f"10.0.{key // 250}.{key % 250}:40000", start=T0 + key * 0.01)
        for key in range(1, ROWS + 1)
    )
    return StaticSource(Snapshot(stats=stats(T0 + 60.0), rows=rows))


def change_every_row(source: StaticSource, **changes: object) -> None:
    snapshot = source.snapshot()
    rows = tuple(dataclasses.replace(row, **changes) for row in snapshot.rows)  # type: ignore[arg-type]
    source.update(dataclasses.replace(snapshot, rows=rows))


async def test_scrolled_rows_show_current_cells() -> None:
    source = long_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert table(app).row_count == ROWS
        assert cell(app, ROWS, "stage").plain == "MAIL"
        assert cell(app, 1, "stage").plain == "MAIL"

        change_every_row(source, stage="RCPT", last_command="RCPT TO:<dave@example.org>")
        app.refresh_from_source()
        await pilot.pause()

        assert cell(app, ROWS, "stage").plain == "RCPT"
        # The bottom row is far out of view, so the refresh left its cells alone.
        assert cell(app, 1, "stage").plain == "MAIL"

        await pilot.press("end")
        await pilot.pause()

        assert table(app).cursor_key == "1"
        assert cell(app, 1, "stage").plain == "RCPT"
        assert cell(app, 1, "last_command").plain == "RCPT TO:<dave@example.org>"


async def test_reversed_order_shows_current_cells() -> None:
    source = long_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        change_every_row(source, stage="DATA")
        app.refresh_from_source()
        await pilot.pause()

        # O turns the order around: the cursor stays on the newest row, now at the bottom,
        # and the table scrolls there.
        await pilot.press("O")
        await pilot.pause()

        assert table(app).row_keys()[-1] == str(ROWS)
        assert table(app).cursor_key == str(ROWS)
        for key in range(ROWS - 20, ROWS + 1):
            assert cell(app, key, "stage").plain == "DATA", key

        await pilot.press("home")
        await pilot.pause()

        assert table(app).cursor_key == "1"
        for key in range(1, 21):
            assert cell(app, key, "stage").plain == "DATA", key
