"""Driving the dashboard in Pilot tests: the app on a static source, and its table, cells and header."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Static

from smtptop.ui.app import SmtpTopApp
from smtptop.ui.row_table import RowTable
from smtptop.ui.source import StaticSource


def make_app(source: StaticSource) -> SmtpTopApp:
    # A slow timer so the tests decide when a refresh happens.
    return SmtpTopApp(source, live=False, refresh_hz=0.1)


def table(app: SmtpTopApp) -> RowTable:
    return app.screen.query_one("#conversations", RowTable)


def cell(app: SmtpTopApp, key: int, column: str) -> Text:
    return table(app).get_cell(str(key), column)


def header(app: SmtpTopApp) -> str:
    return str(app.screen.query_one("#header", Static).content)


def change_row(source: StaticSource, key: int, **changes: object) -> None:
    snapshot = source.snapshot()
    rows = tuple(
        dataclasses.replace(row, **changes) if row.key == key else row  # type: ignore[arg-type]
        for row in snapshot.rows
    )
    source.update(dataclasses.replace(snapshot, rows=rows))
