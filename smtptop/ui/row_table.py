"""A table of keyed rows that formats only the rows on screen, for tables of many thousands of rows.

DataTable keeps every cell of every row and measures each new row, so with
10,000 conversations a refresh or a sort took hundreds of milliseconds. This
table keeps only the row keys in display order. Textual's line API calls
``render_line`` only for the lines on screen, and only then does the table
call its owner's ``cells_for`` for that row's cells. So a refresh costs the
screen height, and a new order costs one list of keys.

Column widths are fixed: the owner sets them, for example from the longest
address among the rows, with ``set_column_width``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from smtptop.ui.keyed_table import Column

# Blank columns on each side of a cell, as DataTable's cell_padding.
CELL_PADDING = 1
HEADER_LINES = 1


class RowTable(ScrollView, can_focus=True):
    """Rows in the order of the last ``sync``, with a row cursor that stays on its row's key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"row-table--header", "row-table--cursor"}

    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
    }
    RowTable > .row-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    RowTable > .row-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    RowTable:blur > .row-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class RowSelected(Message):
        """Posted when a row is clicked: ``key`` is its key."""

        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        cells_for: Callable[[str], Sequence[Text]],
        *,
        id: str | None = None,  # noqa: A002 (Textual's name for it)
    ) -> None:
        super().__init__(id=id)
        self.ordered_columns = tuple(columns)
        self._column_index = {column.key: index for index, column in enumerate(self.ordered_columns)}
        self._widths = [column.width or len(column.label) for column in self.ordered_columns]
        self._visible = [True] * len(self.ordered_columns)
        self._cells_for = cells_for
        self._keys: list[str] = []
        self._positions: dict[str, int] = {}

    # ------------------------------------------------------------------
    # Rows

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def row_keys(self) -> list[str]:
        """Return the keys of the rows in display order."""
        return list(self._keys)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self._keys:
            return None
        return self._keys[min(self.cursor_row, len(self._keys) - 1)]

    def get_row_index(self, key: str) -> int:
        """Return the display position of row ``key``; raise KeyError when it is not shown."""
        return self._positions[key]

    def get_cell(self, key: str, column_key: str) -> Text:
        """Return the cell of row ``key`` in column ``column_key``, as it would be drawn now."""
        if key not in self._positions:
            raise KeyError(f"no row {key!r}")
        return self._cells_for(key)[self._column_index[column_key]]

    def sync(self, keys: Sequence[str]) -> None:
        """Show the rows ``keys`` in this order and redraw.

        A cursor on the first row stays on the first row, as in top, so the
        head of the order (the newest conversations by default) stays in view.
        Elsewhere the cursor stays on its row's key.
        """
        cursor_key = self.cursor_key
        at_top = self.cursor_row == 0
        self._keys = list(keys)
        self._positions = {key: index for index, key in enumerate(self._keys)}
        self._update_virtual_size()
        if at_top:
            self.move_cursor(0)
        elif cursor_key is not None and cursor_key in self._positions:
            self.move_cursor(self._positions[cursor_key])
        else:
            self.move_cursor(min(self.cursor_row, max(len(self._keys) - 1, 0)))
        self.refresh()

    def move_cursor(self, row: int) -> None:
        """Put the cursor on display position ``row`` and scroll it into view."""
        self.cursor_row = max(0, min(row, len(self._keys) - 1))

    # ------------------------------------------------------------------
    # Columns

    def set_column_width(self, key: str, width: int) -> None:
        """Give a column a fixed width in cells; longer text is cut with an ellipsis."""
        index = self._column_index[key]
        if self._widths[index] != width:
            self._widths[index] = width
            self._update_virtual_size()
            self.refresh()

    def column_width(self, key: str) -> int:
        """Return the cells that column ``key`` takes when shown, its padding included."""
        return self._widths[self._column_index[key]] + 2 * CELL_PADDING

    def hide_columns(self, keys: Collection[str]) -> None:
        """Leave out the columns ``keys`` when drawing, and show every other column."""
        visible = [column.key not in keys for column in self.ordered_columns]
        if visible != self._visible:
            self._visible = visible
            self._update_virtual_size()
            self.refresh()

    @property
    def hidden_columns(self) -> list[str]:
        """The keys of the columns left out when drawing, in column order."""
        return [column.key for column, shown in zip(self.ordered_columns, self._visible) if not shown]

    def render_width(self, exclude: Collection[str] = ()) -> int:
        """Return the width of the shown columns with their padding, leaving out those in ``exclude``."""
        return sum(
            width + 2 * CELL_PADDING
            for column, width, shown in zip(self.ordered_columns, self._widths, self._visible)
            if shown and column.key not in exclude
        )

    # ------------------------------------------------------------------
    # Drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y < HEADER_LINES:
            line = self._line([column.label for column in self.ordered_columns])
            style = self.get_component_rich_style("row-table--header")
            return self._strip(line, style, width)

        index = int(self.scroll_y) + y - HEADER_LINES
        base = self.rich_style
        if index >= len(self._keys):
            return Strip.blank(width, base)
        line = self._line(self._cells_for(self._keys[index]))
        strip = self._strip(line, base, width)
        if index == self.cursor_row:
            cursor = self.get_component_rich_style("row-table--cursor")
            strip = Strip(Segment.apply_style(strip, post_style=cursor), strip.cell_length)
        return strip

    def _line(self, cells: Sequence[Text | str]) -> Text:
        line = Text(no_wrap=True, end="")
        pad = " " * CELL_PADDING
        for cell, width, shown in zip(cells, self._widths, self._visible):
            if not shown:
                continue
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(width, overflow="ellipsis", pad=True)
            line.append(pad)
            line.append_text(text)
            line.append(pad)
        return line

    def _strip(self, line: Text, style: Style, width: int) -> Strip:
        segments = Segment.apply_style(line.render(self.app.console), style)
        strip = Strip(segments)
        scroll_x = int(self.scroll_x)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.render_width(), len(self._keys) + HEADER_LINES)

    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - HEADER_LINES, 1)

    def watch_cursor_row(self, old: int, new: int) -> None:
        # Keep the cursor's row on screen, below the header.
        top = int(self.scroll_y)
        height = self._body_height()
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False, immediate=True)
        self.refresh()

    # ------------------------------------------------------------------
    # Keys and mouse

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._body_height())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._body_height())

    def action_first_row(self) -> None:
        self.move_cursor(0)

    def action_last_row(self) -> None:
        self.move_cursor(len(self._keys) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER_LINES:
            return
        index = int(self.scroll_y) + offset.y - HEADER_LINES
        if index < len(self._keys):
            self.move_cursor(index)
            self.post_message(self.RowSelected(self, self._keys[index]))
