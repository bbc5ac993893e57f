"""A DataTable that follows a changing list of keyed rows without rebuilding itself.

Each refresh hands ``KeyedTable.sync`` the rows that should be shown, in
order. The table removes rows whose key is gone, adds new ones, rewrites
only the cells whose text or style changed, reorders when the order
differs, and puts the cursor back on the row it was on. The table is not
cleared on a refresh, so scrolling and the cursor survive it, and a refresh
of thousands of rows touches only the cells that changed. The one exception
is a sync that drops more than ``BULK_REMOVAL_ROWS`` rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

# Above this many rows gone in one sync, the table is refilled instead of
# removing rows one at a time; see KeyedTable._rebuild.
BULK_REMOVAL_ROWS = 100

# Cell identity for change detection: the plain text and the style.
_CellSignature = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its header label, key, and fixed width (None to fit the content)."""

    label: str
    key: str
    width: int | None = None


class KeyedCell(Text):
    """The first cell of a row, carrying the row's key so ``DataTable.sort`` can order by it.

    ``DataTable.sort`` passes only cell values to its key function, never row keys.
    """

    row_key: str


def _signature(cell: Text) -> _CellSignature:
    return (cell.plain, str(cell.style))


def _label(label: str) -> Text:
    # A header cut to a narrow fixed width ends in "…" like the cells below it.
    return Text(label, no_wrap=True, overflow="ellipsis")


def _keyed(cell: Text, key: str) -> KeyedCell:
    keyed = KeyedCell(cell.plain, style=cell.style, no_wrap=True, overflow=cell.overflow, end="")
    keyed.row_key = key
    return keyed


class KeyedTable(DataTable[Text]):
    """A row-cursor table whose rows are kept in step with ``sync``."""

    # DataTable's Home and End scroll sideways; in a list of rows they go to the first and last row.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, columns: Sequence[Column], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._column_specs = tuple(columns)
        self._cells: dict[str, Sequence[Text]] = {}
        # Columns are added here, not on mount, so a parent can fill the table
        # from its own on_mount handler.
        self._column_keys = [
            self.add_column(_label(column.label), key=column.key, width=column.width)
            for column in self._column_specs
        ]

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if self.row_count == 0:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except (RowDoesNotExist, LookupError):
            return None
        return row_key.value

    def row_keys(self) -> list[str]:
        """Return the keys of the rows in display order."""
        return [row.key.value or "" for row in self.ordered_rows]

    def set_column_label(self, key: str, label: str) -> None:
        """Rename a column header, for example when the time display changes."""
        self.columns[ColumnKey(key)].label = _label(label)
        self.refresh()

    def render_width(self, exclude: Sequence[str] = ()) -> int:
        """Return the width of the columns with their padding, leaving out those in ``exclude``."""
        return sum(
            column.get_render_width(self)
            for key, column in self.columns.items()
            if key.value not in exclude
        )

    def set_column_width(self, key: str, width: int) -> None:
        """Give a column a fixed width in cells; wider cells are cut as ``Text.overflow`` sets."""
        column = self.columns[ColumnKey(key)]
        if column.width == width and not column.auto_width:
            return
        column.width = width
        column.auto_width = False
        # NOTE: DataTable has no public call to resize a column, and its render caches
        # do not include the width, so they are cleared here and the size recomputed.
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    def sync(self, rows: Sequence[tuple[str, Sequence[Text]]]) -> None:
        """Make the table show exactly ``rows``, in that order, changing as little as it can."""
        cursor_key = self.cursor_key
        cursor_index = self.cursor_row
        wanted = {key for key, _ in rows}
        gone = [key for key in self._cells if key not in wanted]

        if len(gone) > BULK_REMOVAL_ROWS:
            self._rebuild(rows, cursor_key)
            return
        for key in gone:
            self.remove_row(key)
            del self._cells[key]

        for key, cells in rows:
            self._sync_row(key, cells)

        order = [key for key, _ in rows]
        if self.row_keys() != order:
            position = {key: index for index, key in enumerate(order)}
            first_column = self._column_keys[0]
            self.sort(first_column, key=lambda cell: position[cell.row_key])

        self._restore_cursor(cursor_key, cursor_index)

    def _rebuild(self, rows: Sequence[tuple[str, Sequence[Text]]], cursor_key: str | None) -> None:
        # DataTable.remove_row renumbers every remaining row, so removing thousands
        # of rows one by one (a narrow filter on a big table) would take seconds.
        # Refilling the table is linear, and the cursor is put back by key.
        self.clear()
        self._cells.clear()
        for key, cells in rows:
            self._sync_row(key, cells)
        if cursor_key is not None and cursor_key in self._cells:
            self.move_cursor(row=self.get_row_index(cursor_key))
        else:
            self.move_cursor(row=0)

    def _sync_row(self, key: str, cells: Sequence[Text]) -> None:
        previous = self._cells.get(key)
        self._cells[key] = cells
        if previous is None:
            self.add_row(_keyed(cells[0], key), *cells[1:], key=key)
            return
        for index, column_key in enumerate(self._column_keys):
            old, new = previous[index], cells[index]
            # Callers reuse cell objects that did not change; comparing them is the slow part.
            if new is old or _signature(new) == _signature(old):
                continue
            value = _keyed(new, key) if index == 0 else new
            auto_width = self._column_specs[index].width is None
            self.update_cell(key, column_key, value, update_width=auto_width)

    def _restore_cursor(self, cursor_key: str | None, cursor_index: int) -> None:
        if cursor_key is None or cursor_key not in self._cells:
            return
        index = self.get_row_index(cursor_key)
        if index != cursor_index:
            self.move_cursor(row=index)
