"""What a Pilot test's user would read: the screen's text, row by row, as the terminal shows it."""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App


def screen_lines(app: App[object]) -> list[str]:
    """Return the screen's rows as plain text, top to bottom, trailing blanks stripped."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    # The full-screen render that App.export_screenshot turns into SVG, modal screens and all.
    render = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(render)
    return [line.rstrip() for line in console.export_text().splitlines()]


def screen_text(app: App[object]) -> str:
    """Return the whole screen as plain text, one line a row."""
    return "\n".join(screen_lines(app))
