"""The compare screen: the TLS negotiations of two marked conversations side by side.

The dashboard's ``m`` marks conversations and ``c`` opens this screen for
exactly two of them. Each row is one field of ``TlsSummary`` (mode, offered
versions, chosen cipher, certificate, alert, ...), followed by the handshake
steps of both sides aligned by step name and sender. A row whose two values
differ gets a marker and ``DIFF_STYLE``.

Measured times differ on every pair of conversations, so time rows are
flagged only when one side has a value and the other does not. A step row is
flagged when one side lacks the step or the two details differ.

``compare_rows`` builds the rows without widgets, so tests can check them
directly. The screen re-reads both details on a timer at the app's refresh
rate and stops while the app is paused.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationDetail
from smtptop.text.printable import printable
from smtptop.tls.summary import CertificateInfo, HandshakeStep, TlsSummary
from smtptop.ui.keyed_table import Column, KeyedTable
from smtptop.ui.tls_panel import (
    ABSENT,
    StepLine,
    alert_text,
    decryption_text,
    format_offset_ms,
    handshake_text,
    issuer_text,
    joined,
    last_step_text,
    mode_label,
    negotiated_flag,
    optional,
    resumed_text,
    starttls_label,
    step_lines,
    validity_text,
)

if TYPE_CHECKING:
    from smtptop.ui.app import SmtpTopApp

DIFF_MARKER = "≠"
DIFF_STYLE = "bold magenta"
STEP_LABEL_STYLE = "dim"

FIELD_WIDTH = 22
COMPARE_COLUMNS = (
    Column("", "marker", 1),
    Column("field", "field", FIELD_WIDTH),
    Column("A", "left"),
    Column("B", "right"),
)
VALUE_COLUMNS = ("left", "right")
# Narrow enough that both sides fit beside the field column on an 80-column terminal (79 cells with padding).
MIN_VALUE_WIDTH = 24

# The value of every field when the engine has no TLS summary for a conversation.
NO_SUMMARY = "no TLS data"

SHORT_ARROWS = {Direction.CLIENT_TO_SERVER: "C→S", Direction.SERVER_TO_CLIENT: "S→C"}


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One row of the compare table: a field or a step, the two values, and whether they differ."""

    key: str
    label: str
    left: str
    right: str
    differs: bool
    step: bool = False


# -- the field rows -----------------------------------------------------------------------

Reader = Callable[[TlsSummary], str]


def _certificate(read: Callable[[CertificateInfo], str]) -> Reader:
    return lambda summary: ABSENT if summary.certificate is None else read(summary.certificate)


# (key, label, how to read the value, whether the value is a measured time)
FIELDS: tuple[tuple[str, str, Reader, bool], ...] = (
    ("mode", "mode", lambda summary: mode_label(summary.mode), False),
    ("starttls", "STARTTLS", lambda summary: starttls_label(summary.starttls), False),
    (
        "offered_versions",
        "versions offered",
        lambda summary: joined(summary.offered_versions),
        False,
    ),
    ("version", "version", lambda summary: optional(summary.version), False),
    ("cipher", "cipher", lambda summary: optional(summary.cipher), False),
    ("sni", "SNI", lambda summary: optional(summary.sni), False),
    ("offered_alpn", "ALPN offered", lambda summary: joined(summary.offered_alpn), False),
    ("alpn", "ALPN", lambda summary: optional(summary.alpn), False),
    ("group", "group", lambda summary: optional(summary.group), False),
    ("resumed", "resumed", resumed_text, False),
    (
        "ems",
        "EMS",
        lambda summary: negotiated_flag(summary, summary.extended_master_secret),
        False,
    ),
    ("etm", "EtM", lambda summary: negotiated_flag(summary, summary.encrypt_then_mac), False),
    ("subject", "certificate subject", _certificate(lambda cert: printable(cert.subject)), False),
    ("issuer", "certificate issuer", _certificate(issuer_text), False),
    ("validity", "certificate validity", _certificate(validity_text), False),
    ("key", "certificate key", _certificate(lambda cert: printable(cert.key)), False),
    ("alert", "alert", lambda summary: alert_text(summary.alert), False),
    ("last_step", "stopped at", last_step_text, False),
    ("handshake", "handshake time", handshake_text, True),
    ("decryption", "decryption", decryption_text, False),
)


def _differs(left: str, right: str, measured: bool) -> bool:
    if measured:
        return (left in (ABSENT, NO_SUMMARY)) != (right in (ABSENT, NO_SUMMARY))
    return left != right


def field_rows(left: TlsSummary | None, right: TlsSummary | None) -> list[CompareRow]:
    """Build one row per summary field, flagging the rows whose two values differ."""
    rows = []
    for key, label, read, measured in FIELDS:
        left_value = NO_SUMMARY if left is None else read(left)
        right_value = NO_SUMMARY if right is None else read(right)
        differs = _differs(left_value, right_value, measured)
        rows.append(CompareRow(key, label, left_value, right_value, differs))
    return rows


# -- the step rows ------------------------------------------------------------------------


def _step_key(step: HandshakeStep) -> tuple[str, Direction]:
    return (step.name, step.sender)


def align_steps(
    left: Sequence[HandshakeStep], right: Sequence[HandshakeStep]
) -> list[tuple[int | None, int | None]]:
    """Pair the two step lists by step name and sender, keeping each side's order.

    The pairing is a longest common subsequence (``difflib.SequenceMatcher``),
    so a step missing on one side, such as a ServerKeyExchange that TLS 1.3 has
    no use for or an alert where the other side went on, becomes a one-sided
    row. Steps after it are still paired. Both sides are in protocol order
    already, so the merged list is too.
    """
    left_keys = [_step_key(step) for step in left]
    right_keys = [_step_key(step) for step in right]
    matcher = difflib.SequenceMatcher(a=left_keys, b=right_keys, autojunk=False)
    pairs: list[tuple[int | None, int | None]] = []
    for tag, left_start, left_end, right_start, right_end in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(range(left_start, left_end), range(right_start, right_end)))
            continue
        pairs.extend((index, None) for index in range(left_start, left_end))
        pairs.extend((None, index) for index in range(right_start, right_end))
    return pairs


def _step_value(offset_ms: float | None, detail: str, encrypted: bool) -> str:
    value = f"{format_offset_ms(offset_ms)} ms"
    if detail:
        value += f"  {detail}"
    if encrypted:
        value += "  (encrypted)"
    return value


def _side_value(
    lines: Sequence[StepLine], index: int | None
) -> tuple[str, tuple[str, bool] | None]:
    """Return one side's cell text and what is compared of it: the detail and the encrypted flag."""
    if index is None:
        return ABSENT, None
    line = lines[index]
    return _step_value(line.offset_ms, line.detail, line.encrypted), (line.detail, line.encrypted)


def step_rows(left: TlsSummary | None, right: TlsSummary | None) -> list[CompareRow]:
    """Build one row per aligned handshake step, with each side's time since its own ClientHello."""
    left_steps = left.steps if left is not None else ()
    right_steps = right.steps if right is not None else ()
    left_lines = step_lines(left_steps)
    right_lines = step_lines(right_steps)
    rows = []
    for position, (left_index, right_index) in enumerate(align_steps(left_steps, right_steps)):
        index = left_index if left_index is not None else right_index
        assert index is not None  # align_steps never pairs two absent steps
        step = left_steps[index] if left_index is not None else right_steps[index]
        label = f"{SHORT_ARROWS.get(step.sender, '?')} {printable(step.name)}"
        left_value, left_compared = _side_value(left_lines, left_index)
        right_value, right_compared = _side_value(right_lines, right_index)
        differs = left_compared is None or right_compared is None or left_compared != right_compared
        rows.append(CompareRow(f"step {position}", label, left_value, right_value, differs, True))
    return rows


def compare_rows(left: TlsSummary | None, right: TlsSummary | None) -> list[CompareRow]:
    """Build every row of the compare table: the fields, then the aligned handshake steps."""
    return field_rows(left, right) + step_rows(left, right)


def row_cells(row: CompareRow) -> list[Text]:
    style = DIFF_STYLE if row.differs else ""
    label_style = style or (STEP_LABEL_STYLE if row.step else "")
    return [
        Text(DIFF_MARKER if row.differs else " ", style=style, end=""),
        Text(row.label, style=label_style, no_wrap=True, overflow="ellipsis", end=""),
        Text(row.left, style=style, no_wrap=True, overflow="ellipsis", end=""),
        Text(row.right, style=style, no_wrap=True, overflow="ellipsis", end=""),
    ]


def side_title(name: str, detail: ConversationDetail, tracked: bool) -> str:
    row = detail.row
    title = f"{name}: {printable(row.client)} → {printable(row.server)}"
    if row.tls:
        title += f"  TLS {printable(row.tls)}"
    return title if tracked else f"{title} (no longer tracked)"


# -- the screen ---------------------------------------------------------------------------


class CompareScreen(Screen[None]):
    """Two TLS negotiations side by side, the rows that differ highlighted."""

    DEFAULT_CSS = """
    #compare-title {
        height: auto;
        padding: 0 1;
        background: $boost;
    }

    #compare {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]

    def __init__(
        self,
        keys: tuple[int, int],
        details: tuple[ConversationDetail, ConversationDetail],
    ) -> None:
        super().__init__()
        self.keys = keys
        self._details = details
        self._tracked = (True, True)
        self._mounted = False

    @property
    def smtptop(self) -> SmtpTopApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        yield KeyedTable(COMPARE_COLUMNS, id="compare")
        yield Footer()

    def on_mount(self) -> None:
        self._mounted = True
        self._draw()
        self.query_one("#compare", KeyedTable).focus()

    def show_details(
        self, left: ConversationDetail | None, right: ConversationDetail | None
    ) -> None:
        """Show newer details; a None keeps that side's last detail and marks it as no longer tracked."""
        self._details = (left or self._details[0], right or self._details[1])
        self._tracked = (left is not None, right is not None)
        if self._mounted:
            self._draw()

    def rows(self) -> list[CompareRow]:
        """Return the rows on screen, built from the last details."""
        left, right = self._details
        return compare_rows(left.tls, right.tls)

    def _draw(self) -> None:
        left, right = self._details
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(side_title("A", left, self._tracked[0]), style="bold")
        title.append("\n")
        title.append(side_title("B", right, self._tracked[1]), style="bold")
        title.append(f"\n{DIFF_MARKER} marks the rows that differ", style="dim")
        self.query_one("#compare-title", Static).update(title)
        table = self.query_one("#compare", KeyedTable)
        table.sync([(row.key, row_cells(row)) for row in self.rows()])
        # The table's width is known only after its first layout.
        self.call_after_refresh(self._fit_value_columns)

    def on_resize(self) -> None:
        if self._mounted:
            self._fit_value_columns()

    def _fit_value_columns(self) -> None:
        """Split the width left beside the marker and field columns evenly between the two sides."""
        table = self.query_one("#compare", KeyedTable)
        others = table.render_width(exclude=VALUE_COLUMNS)
        padding = 2 * table.cell_padding * len(VALUE_COLUMNS)
        free = table.scrollable_content_region.width - others - padding
        width = max(MIN_VALUE_WIDTH, free // 2)
        for key in VALUE_COLUMNS:
            table.set_column_width(key, width)
