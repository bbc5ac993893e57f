"""Pilot tests of a long conversation table: what is drawn follows the cursor and the latest snapshot."""

from __future__ import annotations

import dataclasses

from smtptop.engine.snapshot import Snapshot
from smtptop.ui.row_table import RowTable
from smtptop.ui.source import StaticSource
from dashboard_driver import make_app, table
from ui_samples import T0, stalled_row, stats

SIZE = (160, 40)
ROWS = 300


def long_source() -> StaticSource:
    """Return a source with ROWS open conversations, newest (highest key) first in the default order."""
    template = stalled_row()
    rows = tuple(
        dataclasses.replace(
            template, key=key, client=f"10.0.{key // 250}.{key % 250}:40000", start=T0 + key * 0.01
        )
        for key in range(1, ROWS + 1)
    )
    return StaticSource(Snapshot(stats=stats(T0 + 60.0), rows=rows))


def change_every_row(source: StaticSource, **changes: object) -> None:
    snapshot = source.snapshot()
    rows = tuple(dataclasses.replace(row, **changes) for row in snapshot.rows)  # type: ignore[arg-type]
    source.update(dataclasses.replace(snapshot, rows=rows))


def drawn_lines(rows: RowTable) -> list[str]:
    """Return the table's lines as drawn now: the header, then the rows on screen."""
    return [rows.render_line(y).text for y in range(rows.size.height)]


def drawn_clients(rows: RowTable) -> list[str]:
    return [line.split()[0] for line in drawn_lines(rows)[1:] if line.strip()]


async def test_end_and_home_draw_rows_at_the_ends() -> None:
    source = long_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = table(app)
        assert rows.row_count == ROWS
        assert drawn_clients(rows)[0] == "10.0.1.50:40000"  # key 300, the newest

        change_every_row(source, stage="RCPT", last_command="RCPT TO:<dave@example.org>")
        app.refresh_from_source()
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()

        assert rows.cursor_key == "1"
        lines = drawn_lines(rows)
        assert "10.0.0.1:40000" in lines[-1]
        assert "RCPT TO:<dave@" in lines[-1]
        assert all(" RCPT " in line for line in lines[1:])

        await pilot.press("home")
        await pilot.pause()

        assert rows.cursor_key == str(ROWS)
        assert drawn_clients(rows)[0] == "10.0.1.50:40000"


async def test_sort_keeps_cursor_row_on_screen() -> None:
    source = long_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = table(app)
        await pilot.press("down", "down")
        assert rows.cursor_key == str(ROWS - 2)

        # O turns the order around: the cursor stays on its row, now near the bottom.
        await pilot.press("O")
        await pilot.pause()

        assert rows.row_keys()[-1] == str(ROWS)
        assert rows.cursor_key == str(ROWS - 2)
        assert rows.get_row_index(str(ROWS - 2)) == ROWS - 3
        assert "10.0.1.48:40000" in drawn_clients(rows)


async def test_page_down_moves_by_screen_height() -> None:
    app = make_app(long_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = table(app)
        first_screen = drawn_clients(rows)

        await pilot.press("pagedown")
        await pilot.pause()

        assert rows.cursor_row == len(first_screen)
        assert drawn_clients(rows)[-1] == rows.get_cell(rows.cursor_key or "", "client").plain
