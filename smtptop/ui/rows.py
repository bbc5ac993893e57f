"""Cells, stall detection, sort orders and quick filters of the conversation table.

Everything here works on ``ConversationRow`` values and Rich ``Text`` cells,
without widgets, so the dashboard can rebuild the table cheaply on every
refresh and the tests can check the rules directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from rich.text import Text

from smtptop.engine.snapshot import ConversationRow
from smtptop.smtp.events import Phase
from smtptop.tcp.connection import TcpStage
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_duration
from smtptop.ui.keyed_table import Column

TLS_LABELS = {"none": "plain", "starttls": "STARTTLS", "implicit": "implicit"}
# The TLS column's mode word when the negotiated version follows it: "STLS 1.3".
TLS_SHORT_LABELS = {"none": "plain", "starttls": "STLS", "implicit": "TLS"}
TLS_COLUMN_WIDTH = max(len(label) for label in TLS_LABELS.values())

# Wide enough for every TCP stage and SMTP phase name ("closed (FIN)", "end-of-data").
# The rare "<phase>, <TCP stage>" of a connection that closed after a rejected
# greeting is longer and is cut with an ellipsis.
STAGE_WIDTH = max(len(value.value) for value in (*TcpStage, *Phase))

# "server 3m05s": the side that owes the next move and for how long.
WAITING_WIDTH = len("server 3m05s")

# Retransmissions, duplicate ACKs and zero windows share one column, as three
# right-aligned fields under a three-word heading. Three columns would cost
# four more characters of cell padding, and the table would no longer fit 120
# columns. Its key stays "retransmissions" for the column's first field.
TCP_COUNTER_WIDTHS = (3, 3, 2)
TCP_COUNTERS_LABEL = "rtx dup 0w"

# The free-text columns come last, as the command column does in top, and
# share the width the other columns leave; see free_text_widths.
FREE_TEXT_COLUMNS = ("last_command", "last_reply")
# Small enough that the table fits a 120-column terminal: a verb and a reply code with its first words stay readable.
# On a terminal too narrow to leave the last command and reply MIN_FREE_TEXT_WIDTH cells, these
# columns are hidden, in this order, until it does. The TCP counters and the message count are
# also on the conversation screen, and the dialogue matters more than the age, the TLS mode or the idle time.
NARROW_HIDDEN_COLUMNS = ("retransmissions", "messages", "age", "tls", "idle")
MIN_FREE_TEXT_WIDTH = 30
MIN_COMMAND_WIDTH = 4
MIN_REPLY_WIDTH = 8
MAX_COMMAND_WIDTH = 48
MAX_REPLY_WIDTH = 72

CONVERSATION_COLUMNS = (
    Column("client", "client"),
    Column("server", "server"),
    Column("TLS", "tls", TLS_COLUMN_WIDTH),
    Column("stage", "stage", STAGE_WIDTH),
    # "3m05s", "2h03m"; an age under a second shows as "<1 s", because it lasts a second at most.
    Column("age", "age", 5),
    Column("idle", "idle", 6),
    Column("waiting", "waiting", WAITING_WIDTH),
    Column("msg", "messages", 3),
    Column(TCP_COUNTERS_LABEL, "retransmissions", len(TCP_COUNTERS_LABEL)),
    Column("last command", "last_command", MIN_COMMAND_WIDTH),
    Column("last reply", "last_reply", MIN_REPLY_WIDTH),
)

CLOSED_STYLE = "dim"
STALLED_STYLE = "bold red"
# Non-zero TCP counters: red for loss and retransmission, yellow for receive-window problems.
LOSS_STYLE = "bold red"
WINDOW_STYLE = "bold yellow"


def _cell(value: str, style: str) -> Text:
    # A value wider than its column ends in "…", so a cut is visible.
    return Text(printable(value), style=style, no_wrap=True, overflow="ellipsis", end="")


def free_text_widths(free: int) -> tuple[int, int]:
    """Split ``free`` columns of text between the last command and the last reply.

    The reply gets three fifths because it is usually the longer text, and
    at least its minimum before the command grows past its own. Each
    width is kept between its minimum and its maximum, so a narrow terminal
    scrolls sideways instead of showing nothing.
    """
    command = min(
        MAX_COMMAND_WIDTH, max(MIN_COMMAND_WIDTH, min(free * 2 // 5, free - MIN_REPLY_WIDTH))
    )
    reply = min(MAX_REPLY_WIDTH, max(MIN_REPLY_WIDTH, free - command))
    return command, reply


# -- stalls ------------------------------------------------------------------------------


def waited_since(row: ConversationRow) -> float | None:
    """Return the capture time since which one side owes the next move, or None if unknown."""
    if row.waiting_on is None or row.waiting_since is None:
        return None
    return row.waiting_since


def is_stalled(row: ConversationRow, now: float, stall_seconds: float) -> bool:
    """Check whether a conversation has waited on one side for more than ``stall_seconds``.

    A source that does not report who owes the next move leaves ``waiting_since``
    unset. For those rows an open conversation counts as stalled once it has been
    idle for longer than ``stall_seconds``.
    """
    if row.closed:
        return False
    since = waited_since(row)
    if since is not None:
        return now - since > stall_seconds
    if row.waiting_since is None:
        return now - row.last_seen > stall_seconds
    return False  # the source reports that no side owes a move


def waiting_text(row: ConversationRow, now: float) -> str:
    """Format which side owes the next move and for how long, e.g. "server 47 s", or "" if none.

    Waits under a second are shown as "<1 s", because they are the normal pace
    of a dialogue and the short form keeps the column narrow.
    """
    since = waited_since(row)
    if since is None or row.closed:
        return ""
    waited = now - since
    duration = format_duration(waited) if waited >= 1.0 else "<1 s"
    return f"{printable(row.waiting_on or '', 6)} {duration}"


def has_errors(row: ConversationRow) -> bool:
    """Check whether a conversation had a 4xx or 5xx reply, counted or as its last reply."""
    code = row.last_reply[:3]
    return row.errors > 0 or (len(code) == 3 and code.isdigit() and code[0] in "45")


# -- cells -------------------------------------------------------------------------------


def endpoint_cells(row: ConversationRow) -> list[Text]:
    """Build the client, server, TLS and stage cells of one conversation."""
    style = CLOSED_STYLE if row.closed else ""
    return [
        _cell(row.client, style),
        _cell(row.server, style),
        _cell(tls_cell_text(row), style),
        _cell(row.stage, style),
    ]


def _age_text(seconds: float) -> str:
    """Format a conversation's age for its five-character column."""
    return format_duration(seconds) if seconds >= 1.0 else "<1 s"


def tls_cell_text(row: ConversationRow) -> str:
    """Return the TLS column: the mode and version ("STLS 1.3"), "1.3 dec" once decrypted, or the failure.

    The column is as narrow as "STARTTLS", so a decrypted session drops the mode word,
    which the conversation screen still shows.
    """
    if not row.tls or row.tls == "…":
        return TLS_LABELS.get(row.tls_mode, row.tls_mode)
    if row.tls.endswith(" dec"):
        return row.tls
    if row.tls[0].isdigit():
        return f"{TLS_SHORT_LABELS.get(row.tls_mode, row.tls_mode)} {row.tls}"
    # "failed 40", "mismatch" or "silent": the problem matters more than the mode.
    return row.tls.replace("failed", "fail")


def dialogue_cells(row: ConversationRow) -> list[Text]:
    """Build the last command and last reply cells of one conversation."""
    style = CLOSED_STYLE if row.closed else ""
    return [_cell(row.last_command, style), _cell(row.last_reply, style)]


def compact_count(value: int, width: int) -> str:
    """Format a count in at most ``width`` characters: 999, then 12k and 3M, or 9+ when even that is too wide."""
    text = str(value)
    if len(text) <= width:
        return text
    for divisor, suffix in ((1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")):
        scaled = f"{value // divisor}{suffix}"
        if value >= divisor and len(scaled) <= width:
            return scaled
    return "9" * (width - 1) + "+"


def tcp_counters_cell(row: ConversationRow, style: str) -> Text:
    """Build the "rtx dup 0w" cell: red retransmissions and duplicate ACKs, yellow zero windows, when non-zero."""
    text = Text(style=style, no_wrap=True, overflow="ellipsis", end="")
    fields = (
        (row.retransmissions, LOSS_STYLE),
        (row.duplicate_acks, LOSS_STYLE),
        (row.zero_windows, WINDOW_STYLE),
    )
    for index, ((value, warning_style), width) in enumerate(zip(fields, TCP_COUNTER_WIDTHS)):
        if index:
            text.append(" ")
        text.append(compact_count(value, width).rjust(width), style=warning_style if value else "")
    return text


def clock_cells(row: ConversationRow, now: float, stall_seconds: float) -> list[Text]:
    """Build the age, idle, waiting, msgs and TCP counter cells of one conversation at time ``now``.

    A stalled conversation shows its idle and waiting cells in ``STALLED_STYLE``.
    The TCP counters share one cell, built by ``tcp_counters_cell``.
    """
    return time_cells(row, now, stall_seconds) + count_cells(row)


def time_cells(row: ConversationRow, now: float, stall_seconds: float) -> list[Text]:
    """Build the cells that change with the clock: age, idle and waiting."""
    style = CLOSED_STYLE if row.closed else ""
    stalled_style = STALLED_STYLE if is_stalled(row, now, stall_seconds) else style
    return [
        _cell(_age_text(now - row.start), style),
        _cell(format_duration(now - row.last_seen), stalled_style),
        _cell(waiting_text(row, now), stalled_style),
    ]


def count_cells(row: ConversationRow) -> list[Text]:
    """Build the msgs and TCP counter cells, which change only with the row itself."""
    style = CLOSED_STYLE if row.closed else ""
    return [_cell(str(row.messages), style), tcp_counters_cell(row, style)]


def conversation_cells(row: ConversationRow, now: float, stall_seconds: float) -> list[Text]:
    """Build all table cells of one conversation at capture time ``now``, in column order."""
    return endpoint_cells(row) + clock_cells(row, now, stall_seconds) + dialogue_cells(row)


# -- sorting -----------------------------------------------------------------------------

SortKey = Callable[[ConversationRow, float, float], tuple[object, ...]]


def _by_text(field: Callable[[ConversationRow], str]) -> SortKey:
    # Ties keep the newest conversation first, as the default order does.
    return lambda row, now, stall: (field(row).casefold(), -row.start, -row.key)


def _by_waiting(row: ConversationRow, now: float, stall: float) -> tuple[object, ...]:
    # Stalled rows first, then the longest wait; rows without a reported wait
    # follow in idle order, and closed rows come last.
    since = waited_since(row)
    return (
        not is_stalled(row, now, stall),
        row.closed,
        since is None,
        row.last_seen if since is None else since,
        -row.key,
    )


@dataclass(frozen=True, slots=True)
class SortOrder:
    """One row order of the conversation table; ``s`` cycles through ``SORT_ORDERS``."""

    label: str
    key: SortKey


SORT_ORDERS: tuple[SortOrder, ...] = (
    SortOrder("newest first", lambda row, now, stall: (-row.start, -row.key)),
    SortOrder("recent activity", lambda row, now, stall: (-row.last_seen, -row.key)),
    # Open conversations first, the longest idle on top: that is where stalls are.
    SortOrder("longest idle", lambda row, now, stall: (row.closed, row.last_seen, -row.key)),
    SortOrder("stalled, longest waiting", _by_waiting),
    SortOrder("client", _by_text(lambda row: row.client)),
    SortOrder("server", _by_text(lambda row: row.server)),
    SortOrder("TLS", _by_text(lambda row: row.tls_mode)),
    SortOrder("stage", _by_text(lambda row: row.stage)),
    SortOrder("age, oldest first", lambda row, now, stall: (row.start, -row.key)),
    SortOrder("msgs, most first", lambda row, now, stall: (-row.messages, -row.start, -row.key)),
    SortOrder(
        "retrans, most first",
        lambda row, now, stall: (-row.retransmissions, -row.start, -row.key),
    ),
    SortOrder(
        "dup ACKs, most first",
        lambda row, now, stall: (-row.duplicate_acks, -row.start, -row.key),
    ),
    SortOrder(
        "zero windows, most first",
        lambda row, now, stall: (-row.zero_windows, -row.start, -row.key),
    ),
    SortOrder("last command", _by_text(lambda row: row.last_command)),
    SortOrder("last reply", _by_text(lambda row: row.last_reply)),
)


def sort_rows(
    rows: Sequence[ConversationRow],
    order: SortOrder,
    *,
    now: float = 0.0,
    stall_seconds: float = 0.0,
    reverse: bool = False,
) -> list[ConversationRow]:
    """Order conversation rows for display; ``reverse`` turns the whole list around."""
    ordered = sorted(rows, key=lambda row: order.key(row, now, stall_seconds))
    if reverse:
        ordered.reverse()
    return ordered


# -- filters -----------------------------------------------------------------------------


class TlsFilter(Enum):
    """TLS quick filter of the conversation table; ``T`` cycles through the members."""

    ALL = "all"
    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"

    def next(self) -> TlsFilter:
        members = list(TlsFilter)
        return members[(members.index(self) + 1) % len(members)]


@dataclass(frozen=True, slots=True)
class RowFilter:
    """The text filter and the quick filters; a row is shown when it passes all of them."""

    text: str = ""
    stalled_only: bool = False
    errors_only: bool = False
    tls: TlsFilter = TlsFilter.ALL

    @property
    def active(self) -> bool:
        return (
            bool(self.text)
            or self.stalled_only
            or self.errors_only
            or self.tls is not TlsFilter.ALL
        )

    def quick_labels(self) -> list[str]:
        """Return the names of the active quick filters, for the header."""
        labels = []
        if self.stalled_only:
            labels.append("stalled")
        if self.errors_only:
            labels.append("errors")
        if self.tls is not TlsFilter.ALL:
            labels.append(f"TLS {TLS_LABELS[self.tls.value]}")
        return labels

    def matches(self, row: ConversationRow, now: float, stall_seconds: float) -> bool:
        if self.tls is not TlsFilter.ALL and row.tls_mode != self.tls.value:
            return False
        if self.errors_only and not has_errors(row):
            return False
        if self.stalled_only and not is_stalled(row, now, stall_seconds):
            return False
        return not self.text or row_matches(row, self.text.casefold())


def row_matches(row: ConversationRow, needle: str) -> bool:
    """Check whether a case-folded filter text occurs in the row's addresses, stage, TLS or dialogue.

    TLS matches the mode's name ("starttls") and the TLS column as shown ("STLS 1.3", "plain").
    """
    fields = (
        row.client,
        row.server,
        row.stage,
        row.tls_mode,
        tls_cell_text(row),
        row.last_command,
        row.last_reply,
    )
    return any(needle in field.casefold() for field in fields)
