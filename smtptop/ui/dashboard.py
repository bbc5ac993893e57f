"""The dashboard: capture counters and the traffic panel above the table of conversations.

The app hands every new snapshot to ``DashboardScreen.show_snapshot``. The
table (``RowTable``) gets the new order of row keys and formats only the rows
on screen, and the cursor stays on its conversation while rows come, change,
go or are sorted again. Cells, sort orders and filters are built in ``rows.py``.
``m`` marks conversations and ``c`` compares the TLS negotiations of two
marked ones on the compare screen. ``s`` saves conversations as pcap or text
(``save.py``); ``o`` and ``O`` change the sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from smtptop.engine.runner import BEHIND_SHOWN_SECONDS, Backlog
from smtptop.engine.snapshot import CaptureStats, ConversationRow, Snapshot
from smtptop.record import RecorderStats
from smtptop.text.printable import printable
from smtptop.ui.compare import CompareScreen
from smtptop.ui.row_table import CELL_PADDING, RowTable
from smtptop.ui.rows import (
    CONVERSATION_COLUMNS,
    FREE_TEXT_COLUMNS,
    MIN_FREE_TEXT_WIDTH,
    LOSS_STYLE,
    NARROW_HIDDEN_COLUMNS,
    SORT_ORDERS,
    STALLED_STYLE,
    WINDOW_STYLE,
    RowFilter,
    SortOrder,
    count_cells,
    time_cells,
    dialogue_cells,
    endpoint_cells,
    free_text_widths,
    is_stalled,
    sort_rows,
)
from smtptop.ui.save import SaveScope, SaveScreen, notify_saved
from smtptop.ui.traffic import TrafficPanel

if TYPE_CHECKING:
    from smtptop.ui.app import SmtpTopApp

# Terminal rows from which the traffic panel is shown until the user toggles it with g.
TRAFFIC_MIN_HEIGHT = 30

# A marked conversation's client cell starts with this prefix and takes this style.
MARK_PREFIX = "* "
MARKED_STYLE = "bold magenta"


@dataclass(frozen=True, slots=True)
class TcpTotals:
    """TCP analysis counters summed over the open conversations of a snapshot."""

    retransmissions: int = 0
    duplicate_acks: int = 0
    zero_windows: int = 0


def open_tcp_totals(rows: Sequence[ConversationRow]) -> TcpTotals:
    """Sum the retransmissions, duplicate ACKs and zero windows of the open conversations."""
    open_rows = [row for row in rows if not row.closed]
    return TcpTotals(
        retransmissions=sum(row.retransmissions for row in open_rows),
        duplicate_acks=sum(row.duplicate_acks for row in open_rows),
        zero_windows=sum(row.zero_windows for row in open_rows),
    )


def header_text(
    stats: CaptureStats | None,
    *,
    paused: bool,
    row_filter: RowFilter,
    order: SortOrder,
    reverse: bool,
    stalled: int,
    secrets_shown: bool,
    fetch_error: str | None,
    tcp_totals: TcpTotals | None = None,
    marked: int = 0,
    status: str = "",
    recording: RecorderStats | None = None,
    backlog: Backlog | None = None,
    hidden_columns: Sequence[str] = (),
) -> Text:
    """Build the header above the conversation table: counters, loss, the view's settings, the marks, a status message and any error."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if stats is None:
        text.append("smtptop  waiting for the first snapshot", style="bold")
    else:
        _append_counters(text, stats)
        text.append("\n")
        _append_loss(text, stats, tcp_totals or TcpTotals())
        _append_backlog(text, backlog)
        text.append("\n")
        _append_memory(text, stats)
    if recording is not None:
        text.append("\n")
        _append_recording(text, recording)
    text.append("\n")
    text.append("stalled ")
    text.append(f"{stalled:,}", style=STALLED_STYLE if stalled else "")
    text.append(f"  sorted by {order.label}{', reversed' if reverse else ''}", style="dim")
    if hidden_columns:
        text.append(f"  too narrow for: {', '.join(hidden_columns)}", style="dim")
    quick = row_filter.quick_labels()
    if quick:
        text.append("  only: ")
        text.append(", ".join(quick), style="bold")
    if row_filter.text:
        text.append("  filter: ")
        text.append(printable(row_filter.text), style="bold")
    if stats is not None and stats.finished:
        text.append("  END OF INPUT", style="bold")
    if secrets_shown:
        text.append("  SECRETS SHOWN", style="bold reverse red")
    if paused:
        text.append("  PAUSED", style="bold reverse")
    if marked:
        text.append("  marked ")
        text.append(f"{marked}", style=MARKED_STYLE)
    if status:
        text.append("\n")
        text.append(printable(status), style="bold yellow")
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
        f"  messages {stats.messages_accepted:,}"
    )
    undecodable_style = "yellow" if stats.undecodable else ""
    text.append("  undecodable ")
    text.append(f"{stats.undecodable:,}", style=undecodable_style)


def _append_memory(text: Text, stats: CaptureStats) -> None:
    """Append what the memory bounds removed: evicted conversations and frames that left memory."""
    kept, limit = stats.conversations_kept, stats.max_conversations
    text.append(f"kept {kept:,}")
    if limit:
        text.append(f" / max {limit:,}", style=WINDOW_STYLE if kept > limit else "")
        if kept > limit:
            text.append(" (open ones stay until silent for 10 min)", style=WINDOW_STYLE)
    text.append(f"  evicted {stats.evicted:,}")
    mib = 1024 * 1024
    text.append(f"  frames in memory {stats.frame_bytes / mib:,.1f} / {stats.frame_budget / mib:,.0f} MiB")
    text.append("  frames that left memory ")
    text.append(f"{stats.frames_dropped:,}", style=WINDOW_STYLE if stats.frames_dropped else "")


def _append_recording(text: Text, recording: RecorderStats) -> None:
    """Append the recorder's state: its file, what it wrote, what it could not, and its last error."""
    if recording.recording:
        text.append("rec ", style="bold red")
        text.append(printable(recording.current_file or "-"))
    elif recording.stopped_reason:
        text.append("rec stopped", style="bold yellow")
    else:
        # A write error: the recorder retries and resumes with the next file.
        text.append("rec paused", style="bold yellow")
    text.append(f"  files {recording.files_written:,}  packets {recording.packets_written:,}")
    text.append(f"  bytes {recording.bytes_written:,}  not written ")
    style = LOSS_STYLE if recording.packets_not_written else ""
    text.append(f"{recording.packets_not_written:,}", style=style)
    problem = recording.stopped_reason or recording.last_error
    if problem:
        text.append(f"  {printable(problem)}", style="bold red" if not recording.recording else "yellow")


def _append_loss(text: Text, stats: CaptureStats, totals: TcpTotals) -> None:
    """Append the capture's loss counters, then the TCP counters of the open conversations.

    Lost segments and ACKed unseen segments sit beside the kernel drops, so
    that loss in the network can be distinguished from loss in the capture.
    """
    text.append(f"drops {_drops(stats)}")
    text.append("  lost segments ")
    text.append(f"{stats.lost_segments:,}", style=LOSS_STYLE if stats.lost_segments else "")
    text.append("  ACKed unseen ")
    text.append(f"{stats.acked_unseen:,}", style=WINDOW_STYLE if stats.acked_unseen else "")
    text.append("  open: retrans ")
    text.append(f"{totals.retransmissions:,}", style=LOSS_STYLE if totals.retransmissions else "")
    text.append("  dup ACKs ")
    text.append(f"{totals.duplicate_acks:,}", style=LOSS_STYLE if totals.duplicate_acks else "")
    text.append("  zero windows ")
    text.append(f"{totals.zero_windows:,}", style=WINDOW_STYLE if totals.zero_windows else "")


def marked_cell(cell: Text) -> Text:
    """Build the client cell of a marked conversation: the mark prefix, all in the marked style."""
    return Text(
        MARK_PREFIX + cell.plain, style=MARKED_STYLE, no_wrap=True, overflow="ellipsis", end=""
    )


def compare_status(marked: int) -> str:
    """Return the header message for ``c`` when ``marked`` conversations are marked instead of two."""
    if marked == 0:
        return "compare needs two marked conversations: press m on two rows"
    if marked == 1:
        return "compare needs two marked conversations: 1 marked, press m on one more"
    return f"compare needs two marked conversations: {marked} marked, press m on a row to unmark it"


def _drops(stats: CaptureStats) -> str:
    if stats.kernel_drops is None and stats.interface_drops is None:
        return "n/a"
    parts = ["kernel " + ("n/a" if stats.kernel_drops is None else f"{stats.kernel_drops:,}")]
    if stats.interface_drops is not None:
        parts.append(f"interface {stats.interface_drops:,}")
    if stats.queue_drops is not None:
        parts.append(f"queue {stats.queue_drops:,}")
    return ", ".join(parts)


def _append_backlog(text: Text, backlog: Backlog | None) -> None:
    """Say how far the analysis is behind the capture, once that is noticeable."""
    if backlog is None or backlog.seconds < BEHIND_SHOWN_SECONDS:
        return
    text.append(
        f"  behind {backlog.seconds:,.1f} s ({backlog.frames:,} packets queued)", style=WINDOW_STYLE
    )


class DashboardScreen(Screen[None]):
    """The main screen: capture counters, the traffic panel and one row per conversation."""

    BINDINGS = [
        Binding("q", "app.quit", "Quit"),
        Binding("enter", "open_conversation", "Open", show=True),
        Binding("slash", "edit_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filters", show=False),
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse", key_display="O"),
        Binding("s", "save", "Save"),
        Binding("exclamation_mark", "toggle_stalled", "Stalled", key_display="!"),
        Binding("e", "toggle_errors", "Errors"),
        Binding("T", "cycle_tls", "TLS", key_display="T"),
        Binding("g", "toggle_traffic", "Traffic"),
        Binding("m", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.row_filter = RowFilter()
        self.row_order = SORT_ORDERS[0]
        self.reverse_order = False
        # None until the user presses g: then the panel follows the terminal height.
        self.traffic_choice: bool | None = None
        self._snapshot: Snapshot | None = None
        self._now = 0.0
        self._fetch_error: str | None = None
        self._fixed_cache: dict[int, tuple[ConversationRow, list[Text], list[Text], list[Text]]] = {}
        # The rows of the last render by table key, in display order; the table draws from them.
        self._rows_by_key: dict[str, ConversationRow] = {}
        # Keys of the marked conversations, in the order they were marked: the first is side A.
        self.marked: list[int] = []
        # The recorder's counters from the app's last refresh; None when nothing is recorded.
        self.recording: RecorderStats | None = None
        # The live capture queue from the app's last refresh; None for files.
        self.backlog: Backlog | None = None
        # What the last key press could not do, shown in the header until the marks change.
        self.status = ""
        # Widget.is_mounted turns true only after on_mount returns, too late for on_mount itself.
        self._mounted = False

    @property
    def smtptop(self) -> SmtpTopApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield TrafficPanel(id="traffic")
        yield Input(placeholder="filter: client, server, stage, TLS mode, last command or last reply", id="filter")
        yield RowTable(CONVERSATION_COLUMNS, self._cells_for_key, id="conversations")
        yield Footer()

    def on_mount(self) -> None:
        self._mounted = True
        self.query_one("#filter", Input).display = False
        self.query_one("#conversations", RowTable).focus()
        self.refresh_view()

    def on_screen_resume(self) -> None:
        # The table is not refreshed while a conversation screen covers it.
        if self._snapshot is not None:
            self._render_rows()

    def show_snapshot(self, snapshot: Snapshot | None, now: float, fetch_error: str | None) -> None:
        """Take a new snapshot, or keep the last one when reading it failed with ``fetch_error``.

        The table and the traffic panel are redrawn only while this screen is on top.
        """
        if snapshot is not None:
            self._snapshot = snapshot
            self._now = now
            live_keys = {row.key for row in snapshot.rows}
            self.marked = [key for key in self.marked if key in live_keys]
        self._fetch_error = fetch_error
        if not self._mounted:
            return  # on_mount draws the stored snapshot
        self._render_header()
        if self.is_current:
            self._render_rows()
            self._render_traffic()

    @property
    def traffic_shown(self) -> bool:
        """Whether the traffic panel is on screen: it needs statistics and the user's choice or room."""
        if self._snapshot is None or self._snapshot.traffic is None:
            return False
        if self.traffic_choice is not None:
            return self.traffic_choice
        return self.size.height >= TRAFFIC_MIN_HEIGHT

    def _render_traffic(self) -> None:
        panel = self.query_one("#traffic", TrafficPanel)
        shown = self.traffic_shown
        if panel.display != shown:
            panel.display = shown
        if shown and self._snapshot is not None:
            panel.show(self._snapshot.traffic)

    def stalled_count(self) -> int:
        """Count the stalled conversations of the last snapshot, ignoring the filters."""
        if self._snapshot is None:
            return 0
        stall = self.smtptop.stall_seconds
        return sum(is_stalled(row, self._now, stall) for row in self._snapshot.rows)

    def _render_header(self) -> None:
        stats = self._snapshot.stats if self._snapshot is not None else None
        header = header_text(
            stats,
            paused=self.smtptop.paused,
            row_filter=self.row_filter,
            order=self.row_order,
            reverse=self.reverse_order,
            stalled=self.stalled_count(),
            secrets_shown=self.smtptop.secrets_shown,
            fetch_error=self._fetch_error,
            tcp_totals=open_tcp_totals(self._snapshot.rows) if self._snapshot is not None else None,
            marked=len(self.marked),
            status=self.status,
            recording=self.recording,
            backlog=self.backlog,
            hidden_columns=self._hidden_column_labels(),
        )
        self.query_one("#header", Static).update(header)

    def _hidden_column_labels(self) -> list[str]:
        if not self._mounted:
            return []
        hidden = set(self.query_one("#conversations", RowTable).hidden_columns)
        return [column.label for column in CONVERSATION_COLUMNS if column.key in hidden]

    def _render_rows(self) -> None:
        if self._snapshot is None:
            return
        stall = self.smtptop.stall_seconds
        rows: Sequence[ConversationRow] = self._snapshot.rows
        if self.row_filter.active:
            rows = [row for row in rows if self.row_filter.matches(row, self._now, stall)]
        ordered = sort_rows(
            rows,
            self.row_order,
            now=self._now,
            stall_seconds=stall,
            reverse=self.reverse_order,
        )
        # The table calls _cells_for_key for the cells of the rows it draws, so
        # only the rows on screen are formatted.
        self._rows_by_key = {str(row.key): row for row in ordered}
        table = self.query_one("#conversations", RowTable)
        table.sync(list(self._rows_by_key))
        self._fit_columns(ordered)
        if len(self._fixed_cache) > len(self._snapshot.rows):
            # The cache has the rows drawn so far. Pruning it once it outgrows the table bounds it
            # without building a set of every key (10,000 by default) on each refresh.
            live_keys = {row.key for row in self._snapshot.rows}
            for gone in [cached for cached in self._fixed_cache if cached not in live_keys]:
                del self._fixed_cache[gone]

    def _cells_for_key(self, key: str) -> list[Text]:
        row = self._rows_by_key.get(key)
        if row is None:
            return [Text() for _ in CONVERSATION_COLUMNS]
        return self._row_cells(row, self.smtptop.stall_seconds)

    def _row_cells(self, row: ConversationRow, stall: float) -> list[Text]:
        endpoints, counts, dialogue = self._fixed_cells(row)
        if row.key in self.marked:
            endpoints = [marked_cell(endpoints[0]), *endpoints[1:]]
        return endpoints + time_cells(row, self._now, stall) + counts + dialogue

    def _fixed_cells(self, row: ConversationRow) -> tuple[list[Text], list[Text], list[Text]]:
        # Most rows do not change between two snapshots, so the cells that do not
        # depend on the clock are built once per change of the row.
        cached = self._fixed_cache.get(row.key)
        # The engine hands back the same row object while its conversation is unchanged.
        if cached is not None and (cached[0] is row or cached[0] == row):
            return cached[1], cached[2], cached[3]
        cells = (endpoint_cells(row), count_cells(row), dialogue_cells(row))
        self._fixed_cache[row.key] = (row, *cells)
        return cells

    def on_resize(self) -> None:
        self._fit_free_text_columns()
        if self._mounted:
            self._render_traffic()

    def _fit_columns(self, rows: Sequence[ConversationRow]) -> None:
        """Size the client and server columns to their longest address, then the free-text columns."""
        if not self._mounted:
            return
        table = self.query_one("#conversations", RowTable)
        marker = len(MARK_PREFIX) if self.marked else 0
        for key, label in (("client", "client"), ("server", "server")):
            # map and attrgetter run in C: this runs over every row on every refresh.
            longest = max(map(len, map(attrgetter(key), rows)), default=0)
            table.set_column_width(key, max(len(label), longest + (marker if key == "client" else 0)))
        self._fit_free_text_columns()

    def _fit_free_text_columns(self) -> None:
        """Give the last command and last reply the width the other columns leave, hiding some on a narrow terminal."""
        if not self._mounted:
            return
        table = self.query_one("#conversations", RowTable)
        padding = 2 * CELL_PADDING * len(FREE_TEXT_COLUMNS)
        others = sum(table.column_width(column.key) for column in CONVERSATION_COLUMNS if column.key not in FREE_TEXT_COLUMNS)
        free = table.scrollable_content_region.width - others - padding
        hidden: list[str] = []
        for key in NARROW_HIDDEN_COLUMNS:
            if free >= MIN_FREE_TEXT_WIDTH:
                break
            hidden.append(key)
            free += table.column_width(key)
        if hidden != table.hidden_columns:
            table.hide_columns(hidden)
            self._render_header()
        for key, width in zip(FREE_TEXT_COLUMNS, free_text_widths(free)):
            table.set_column_width(key, width)

    def refresh_view(self) -> None:
        """Redraw the header, panel and rows from the last snapshot, after a setting changed."""
        if not self._mounted:
            return
        self._render_header()
        self._render_traffic()
        self._render_rows()

    def action_open_conversation(self) -> None:
        key = self.query_one("#conversations", RowTable).cursor_key
        if key is not None:
            self.smtptop.open_conversation(int(key))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        event.stop()
        self.smtptop.open_conversation(int(event.key))

    def action_edit_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        filter_input.value = self.row_filter.text
        filter_input.display = True
        filter_input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.row_filter = replace(self.row_filter, text=event.value.strip())
        self._close_filter()

    def action_clear_filter(self) -> None:
        """Clear the text filter and every quick filter."""
        self.row_filter = RowFilter()
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#conversations", RowTable).focus()
        self.refresh_view()

    def action_toggle_stalled(self) -> None:
        self.row_filter = replace(self.row_filter, stalled_only=not self.row_filter.stalled_only)
        self.refresh_view()

    def action_toggle_errors(self) -> None:
        self.row_filter = replace(self.row_filter, errors_only=not self.row_filter.errors_only)
        self.refresh_view()

    def action_cycle_tls(self) -> None:
        self.row_filter = replace(self.row_filter, tls=self.row_filter.tls.next())
        self.refresh_view()

    def action_cycle_sort(self) -> None:
        index = SORT_ORDERS.index(self.row_order)
        self.row_order = SORT_ORDERS[(index + 1) % len(SORT_ORDERS)]
        self.refresh_view()

    def action_reverse_sort(self) -> None:
        self.reverse_order = not self.reverse_order
        self.refresh_view()

    def action_toggle_traffic(self) -> None:
        if self._snapshot is None or self._snapshot.traffic is None:
            self.notify("This source has no traffic statistics.", severity="warning")
            return
        self.traffic_choice = not self.traffic_shown
        self.refresh_view()

    def action_toggle_mark(self) -> None:
        key = self.query_one("#conversations", RowTable).cursor_key
        if key is None:
            return
        if int(key) in self.marked:
            self.marked.remove(int(key))
        else:
            self.marked.append(int(key))
        self.status = ""
        self.refresh_view()

    def action_save(self) -> None:
        """Open the save screen for the conversation under the cursor, the marked ones or all shown."""
        table = self.query_one("#conversations", RowTable)
        cursor = table.cursor_key
        choices = {
            SaveScope.CURSOR: [int(cursor)] if cursor is not None else [],
            SaveScope.MARKED: list(self.marked),
            SaveScope.DISPLAYED: [int(key) for key in table.row_keys()],
        }
        self.app.push_screen(SaveScreen(choices), lambda result: notify_saved(self.smtptop, result))

    def action_compare(self) -> None:
        """Open the compare screen for the two marked conversations, or show in the header what is missing."""
        if len(self.marked) != 2:
            self.status = compare_status(len(self.marked))
            self.refresh_view()
            return
        left_key, right_key = self.marked
        left = self.smtptop.fetch_detail(left_key)
        right = self.smtptop.fetch_detail(right_key)
        if left is None or right is None:
            untracked = left_key if left is None else right_key
            self.status = f"conversation {untracked} is no longer tracked"
            self.refresh_view()
            return
        self.status = ""
        self.refresh_view()
        self.app.push_screen(CompareScreen((left_key, right_key), (left, right)))
