"""The dashboard: a header of capture counters above the table of conversations.

The app hands every new snapshot to ``DashboardScreen.show_snapshot``. The
table is kept in step with ``KeyedTable.sync``, so rows are updated in place
and the cursor stays on its conversation while rows come, change and go.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from smtptop.engine.snapshot import CaptureStats, ConversationRow, Snapshot
from smtptop.smtp.events import Phase
from smtptop.tcp.connection import TcpStage
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_duration
from smtptop.ui.keyed_table import Column, KeyedTable

if TYPE_CHECKING:
    from smtptop.ui.app import SmtpTopApp


TLS_LABELS = {"none": "plain", "starttls": "STARTTLS", "implicit": "implicit"}

# Wide enough for every TCP stage and SMTP phase name ("closed (FIN)", "end-of-data").
# The rare "<phase>, <TCP stage>" of a connection that closed after a rejected
# greeting is longer and is cut with an ellipsis.
STAGE_WIDTH = max(len(value.value) for value in (*TcpStage, *Phase))

# The free-text columns come last, as the command column does in top, and
# share the width the other columns leave; see free_text_widths.
FREE_TEXT_COLUMNS = ("last_command", "last_reply")
MIN_FREE_TEXT_WIDTH = 10
MAX_COMMAND_WIDTH = 48
MAX_REPLY_WIDTH = 72

CONVERSATION_COLUMNS = (
    Column("client", "client"),
    Column("server", "server"),
    Column("TLS", "tls", max(len(label) for label in TLS_LABELS.values())),
    Column("stage", "stage", STAGE_WIDTH),
    Column("age", "age", 7),
    Column("idle", "idle", 7),
    Column("msgs", "messages", 4),
    Column("retrans", "retransmissions", 7),
    Column("last command", "last_command", MIN_FREE_TEXT_WIDTH),
    Column("last reply", "last_reply", MIN_FREE_TEXT_WIDTH),
)

CLOSED_STYLE = "dim"
STALLED_STYLE = "bold red"


class SortOrder(Enum):
    """Row orders of the conversation table; ``s`` cycles through them."""

    NEWEST = "newest first"
    ACTIVITY = "recent activity"
    IDLE = "longest idle"

    def next(self) -> SortOrder:
        members = list(SortOrder)
        return members[(members.index(self) + 1) % len(members)]


def sort_rows(rows: tuple[ConversationRow, ...], order: SortOrder) -> list[ConversationRow]:
    """Order conversation rows for display; ties fall back to the newest key first."""
    if order is SortOrder.NEWEST:
        return sorted(rows, key=lambda row: (row.start, row.key), reverse=True)
    if order is SortOrder.ACTIVITY:
        return sorted(rows, key=lambda row: (row.last_seen, row.key), reverse=True)
    # Open conversations first, the longest idle on top: that is where stalls are.
    return sorted(rows, key=lambda row: (row.closed, row.last_seen, -row.key))


def row_matches(row: ConversationRow, needle: str) -> bool:
    """Check whether a case-folded filter text occurs in the row's addresses, stage or dialogue."""
    fields = (row.client, row.server, row.stage, row.tls_mode, row.last_command, row.last_reply)
    return any(needle in field.casefold() for field in fields)


def _cell(value: str, style: str) -> Text:
    # A value wider than its column ends in "…", so a cut is visible.
    return Text(printable(value), style=style, no_wrap=True, overflow="ellipsis", end="")


def free_text_widths(free: int) -> tuple[int, int]:
    """Split ``free`` columns of text between the last command and the last reply.

    The reply gets three fifths because it is usually the longer text. Each
    width is kept between ``MIN_FREE_TEXT_WIDTH`` and its maximum, so a narrow
    terminal scrolls sideways instead of showing nothing.
    """
    command = min(MAX_COMMAND_WIDTH, max(MIN_FREE_TEXT_WIDTH, free * 2 // 5))
    reply = min(MAX_REPLY_WIDTH, max(MIN_FREE_TEXT_WIDTH, free - command))
    return command, reply


def endpoint_cells(row: ConversationRow) -> list[Text]:
    """Build the client, server, TLS and stage cells of one conversation."""
    style = CLOSED_STYLE if row.closed else ""
    return [
        _cell(row.client, style),
        _cell(row.server, style),
        _cell(TLS_LABELS.get(row.tls_mode, row.tls_mode), style),
        _cell(row.stage, style),
    ]


def dialogue_cells(row: ConversationRow) -> list[Text]:
    """Build the last command and last reply cells of one conversation."""
    style = CLOSED_STYLE if row.closed else ""
    return [_cell(row.last_command, style), _cell(row.last_reply, style)]


def clock_cells(row: ConversationRow, now: float, stall_seconds: float) -> list[Text]:
    """Build the age, idle, msgs and retrans cells of one conversation at capture time ``now``."""
    style = CLOSED_STYLE if row.closed else ""
    idle = now - row.last_seen
    stalled = not row.closed and idle > stall_seconds
    return [
        _cell(format_duration(now - row.start), style),
        _cell(format_duration(idle), STALLED_STYLE if stalled else style),
        _cell(str(row.messages), style),
        _cell(str(row.retransmissions), style),
    ]


def conversation_cells(row: ConversationRow, now: float, stall_seconds: float) -> list[Text]:
    """Build all table cells of one conversation at capture time ``now``, in column order."""
    return endpoint_cells(row) + clock_cells(row, now, stall_seconds) + dialogue_cells(row)


def header_text(
    stats: CaptureStats | None,
    *,
    paused: bool,
    row_filter: str,
    order: SortOrder,
    fetch_error: str | None,
) -> Text:
    """Build the two or three header lines above the conversation table."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if stats is None:
        text.append("smtptop  waiting for the first snapshot", style="bold")
    else:
        _append_counters(text, stats)
    text.append("\n")
    text.append(f"sorted by {order.value}", style="dim")
    if row_filter:
        text.append("  filter: ")
        text.append(printable(row_filter), style="bold")
    if stats is not None and stats.finished:
        text.append("  END OF INPUT", style="bold")
    if paused:
        text.append("  PAUSED", style="bold reverse")
    error = fetch_error or (stats.error if stats is not None else None)
    if error:
        text.append("\n")
        text.append(f"error: {printable(error)}", style="bold red")
    return text


def _append_counters(text: Text, stats: CaptureStats) -> None:
    text.append("smtptop  ", style="bold")
    text.append(printable(stats.source) or "-", style="bold")
    if stats.bpf_filter:
        text.append(f" '{printable(stats.bpf_filter)}'")
    text.append(f"  packets {stats.packets:,}  bytes {stats.bytes:,}")
    text.append(
        f"  conversations {stats.conversations_open:,} open / {stats.conversations_total:,}"
    )
    text.append(f"  drops {_drops(stats)}")
    undecodable_style = "yellow" if stats.undecodable else ""
    text.append("  undecodable ")
    text.append(f"{stats.undecodable:,}", style=undecodable_style)


def _drops(stats: CaptureStats) -> str:
    if stats.kernel_drops is None and stats.interface_drops is None:
        return "n/a"
    kernel = "n/a" if stats.kernel_drops is None else f"{stats.kernel_drops:,}"
    if stats.interface_drops is None:
        return kernel
    return f"{kernel} (interface {stats.interface_drops:,})"


class DashboardScreen(Screen[None]):
    """The main screen: capture counters and one row per conversation."""

    BINDINGS = [
        Binding("q", "app.quit", "Quit"),
        Binding("enter", "open_conversation", "Open", show=True),
        Binding("slash", "edit_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "cycle_sort", "Sort"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.row_filter = ""
        self.row_order = SortOrder.NEWEST
        self._snapshot: Snapshot | None = None
        self._now = 0.0
        self._fetch_error: str | None = None
        self._fixed_cache: dict[int, tuple[ConversationRow, list[Text], list[Text]]] = {}
        # Widget.is_mounted turns true only after on_mount returns, too late for on_mount itself.
        self._mounted = False

    @property
    def smtptop(self) -> SmtpTopApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Input(placeholder="filter: client, server, stage or command", id="filter")
        yield KeyedTable(CONVERSATION_COLUMNS, id="conversations")
        yield Footer()

    def on_mount(self) -> None:
        self._mounted = True
        self.query_one("#filter", Input).display = False
        self.query_one("#conversations", KeyedTable).focus()
        self.refresh_view()

    def on_screen_resume(self) -> None:
        # The table is not refreshed while a conversation screen covers it.
        if self._snapshot is not None:
            self._render_rows()

    def show_snapshot(self, snapshot: Snapshot | None, now: float, fetch_error: str | None) -> None:
        """Take a new snapshot, or keep the last one when reading it failed with ``fetch_error``.

        The table is redrawn only while this screen is on top.
        """
        if snapshot is not None:
            self._snapshot = snapshot
            self._now = now
        self._fetch_error = fetch_error
        if not self._mounted:
            return  # on_mount draws the stored snapshot
        self._render_header()
        if self.is_current:
            self._render_rows()

    def _render_header(self) -> None:
        stats = self._snapshot.stats if self._snapshot is not None else None
        header = header_text(
            stats,
            paused=self.smtptop.paused,
            row_filter=self.row_filter,
            order=self.row_order,
            fetch_error=self._fetch_error,
        )
        self.query_one("#header", Static).update(header)

    def _render_rows(self) -> None:
        if self._snapshot is None:
            return
        needle = self.row_filter.casefold()
        rows = self._snapshot.rows
        if needle:
            rows = tuple(row for row in rows if row_matches(row, needle))
        stall = self.smtptop.stall_seconds
        table_rows = []
        for row in sort_rows(rows, self.row_order):
            endpoints, dialogue = self._fixed_cells(row)
            cells = endpoints + clock_cells(row, self._now, stall) + dialogue
            table_rows.append((str(row.key), cells))
        self.query_one("#conversations", KeyedTable).sync(table_rows)
        # The client and server columns are measured when the table next idles, so
        # the free-text columns are fitted after that too.
        self.call_after_refresh(self._fit_free_text_columns)
        live_keys = {row.key for row in self._snapshot.rows}
        for key in [key for key in self._fixed_cache if key not in live_keys]:
            del self._fixed_cache[key]

    def _fixed_cells(self, row: ConversationRow) -> tuple[list[Text], list[Text]]:
        # Most rows do not change between two snapshots, so their text is built once.
        cached = self._fixed_cache.get(row.key)
        if cached is not None and cached[0] == row:
            return cached[1], cached[2]
        endpoints, dialogue = endpoint_cells(row), dialogue_cells(row)
        self._fixed_cache[row.key] = (row, endpoints, dialogue)
        return endpoints, dialogue

    def on_resize(self) -> None:
        self._fit_free_text_columns()

    def _fit_free_text_columns(self) -> None:
        """Give the last command and last reply the width the other columns leave."""
        if not self._mounted:
            return
        table = self.query_one("#conversations", KeyedTable)
        others = table.render_width(exclude=FREE_TEXT_COLUMNS)
        padding = 2 * table.cell_padding * len(FREE_TEXT_COLUMNS)
        free = table.scrollable_content_region.width - others - padding
        for key, width in zip(FREE_TEXT_COLUMNS, free_text_widths(free)):
            table.set_column_width(key, width)

    def refresh_view(self) -> None:
        """Redraw the header and rows from the last snapshot, after a setting changed."""
        if not self._mounted:
            return
        self._render_header()
        self._render_rows()

    def action_open_conversation(self) -> None:
        key = self.query_one("#conversations", KeyedTable).cursor_key
        if key is not None:
            self.smtptop.open_conversation(int(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # DataTable binds Enter itself and posts RowSelected instead of running our binding.
        event.stop()
        if event.row_key.value is not None:
            self.smtptop.open_conversation(int(event.row_key.value))

    def action_edit_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        filter_input.value = self.row_filter
        filter_input.display = True
        filter_input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.row_filter = event.value.strip()
        self._close_filter()

    def action_clear_filter(self) -> None:
        self.row_filter = ""
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#conversations", KeyedTable).focus()
        self.refresh_view()

    def action_cycle_sort(self) -> None:
        self.row_order = self.row_order.next()
        self.refresh_view()
