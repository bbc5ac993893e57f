"""The dashboard's traffic panel: rates with sparklines, reply classes, latency percentiles, top lists.

The dashboard hands every snapshot's ``TrafficStats`` to ``TrafficPanel.show``.
The panel redraws only the parts whose numbers changed, because it is fed a
few times per second.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from smtptop.engine.snapshot import Percentiles, TrafficStats
from smtptop.metrics.traffic import DEFAULT_MAX_SAMPLES_PER_PHASE
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_duration

# Rows of content in the panel, below which it draws a one-row border: the
# percentile table's header and eight phases fit, enough for a whole dialogue
# from greeting to QUIT. The rates column beside it uses six: two rates, two
# sparklines and REPLY_CLASS_ROWS of reply classes. The stylesheet's #traffic
# height must match.
PANEL_ROWS = 9
MAX_PHASE_ROWS = PANEL_ROWS - 1
MAX_TOP_ROWS = PANEL_ROWS - 1

REPLY_CLASS_STYLES = {"2xx": "green", "4xx": "yellow", "5xx": "bold red"}


def rate_text(label: str, per_second: float, window_seconds: float) -> Text:
    """Build one rate line, e.g. "conversations/s 1.25 (60 s window)"."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{label} ")
    text.append(f"{per_second:.2f}", style="bold")
    text.append(f"  over {format_duration(window_seconds)}", style="dim")
    return text


def window_phrase(window_seconds: float) -> str:
    """Name the sliding window for an empty count, e.g. "the last minute" or "the last 30 s"."""
    if window_seconds == 60:
        return "the last minute"
    return f"the last {format_duration(window_seconds)}"


# Reply classes per line: two lines of two, so that 4xx and 5xx never fall off
# the right edge of the rates column, with counts of up to seven digits.
REPLY_CLASSES_PER_LINE = 2
REPLY_CLASS_ROWS = 2


def reply_classes_text(classes: Sequence[tuple[str, int]], window_seconds: float) -> Text:
    """Build the reply class counts, two classes a line with the counts aligned.

    For example::

        replies 2xx 11,249  3xx 1,871
                4xx     12  5xx     3
    """
    text = Text("replies", no_wrap=True, overflow="ellipsis")
    if not any(count for _, count in classes):
        # After a quiet spell every count is zero, so the line reads "none" rather than "2xx 0".
        text.append(f" none in {window_phrase(window_seconds)}", style="dim")
        return text
    width = max(len(f"{count:,}") for _, count in classes)
    for index, (name, count) in enumerate(classes):
        if index % REPLY_CLASSES_PER_LINE:
            text.append(" ")
        elif index:
            text.append("\n" + " " * len("replies"))
        style = REPLY_CLASS_STYLES.get(name, "") if count else "dim"
        text.append(f" {printable(name)} ")
        text.append(f"{count:>{width},}", style=style)
    return text


# Phases where mail waits most often, listed first when the panel has no room for every phase.
PHASE_PRIORITY = ("greeting", "end-of-data", "DATA", "RCPT", "MAIL", "EHLO", "body", "STARTTLS", "AUTH", "QUIT")


def _phase_rank(item: tuple[str, Percentiles]) -> int:
    name = item[0]
    return PHASE_PRIORITY.index(name) if name in PHASE_PRIORITY else len(PHASE_PRIORITY)


def sample_count_text(count: int) -> str:
    """Format a phase's sample count, "10,000+" when the meter's per-phase cap was reached.

    The meter keeps only the newest samples of a phase, so at the cap the
    true count in the window is unknown: at least this many.
    """
    if count >= DEFAULT_MAX_SAMPLES_PER_PHASE:
        return f"{count:,}+"
    return f"{count:,}"


def percentile_table(phases: Sequence[tuple[str, Percentiles]], window_seconds: float) -> Table:
    """Build the per-phase latency table; phases past ``MAX_PHASE_ROWS`` are counted in the last row."""
    phases = sorted(phases, key=_phase_rank)
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    for _ in range(4):
        table.add_column(justify="right", no_wrap=True)
    table.add_row(*(Text(label, style="bold") for label in ("phase", "n", "p50", "p95", "p99")))
    shown = phases if len(phases) <= MAX_PHASE_ROWS else phases[: MAX_PHASE_ROWS - 1]
    for name, values in shown:
        table.add_row(
            printable(name, 12),
            sample_count_text(values.count),
            format_duration(values.p50),
            format_duration(values.p95),
            format_duration(values.p99),
        )
    if len(shown) < len(phases):
        table.add_row(Text(f"+{len(phases) - len(shown)} more", style="dim"))
    if not phases:
        table.add_row(Text(f"none in {window_phrase(window_seconds)}", style="dim"))
    return table


def top_lists_table(traffic: TrafficStats) -> Table:
    """Build the three top lists side by side: servers and clients by 4xx/5xx, slowest servers."""
    table = Table.grid(padding=(0, 2), expand=True)
    for _ in range(3):
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_row(
        Text("4xx/5xx by server", style="bold"),
        Text("4xx/5xx by client", style="bold"),
        Text("slowest servers, p95", style="bold"),
    )
    columns = (
        [_top_entry(name, f"{count:,}") for name, count in traffic.top_error_servers],
        [_top_entry(name, f"{count:,}") for name, count in traffic.top_error_clients],
        [_top_entry(name, format_duration(seconds)) for name, seconds in traffic.slowest_servers],
    )
    for index in range(min(MAX_TOP_ROWS, max(len(entries) for entries in columns))):
        table.add_row(*(entries[index] if index < len(entries) else "" for entries in columns))
    if not any(columns):
        table.add_row(Text("none yet", style="dim"), "", "")
    return table


def _top_entry(name: str, value: str) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(value, style="bold")
    text.append(f" {printable(name)}")
    return text


class TrafficPanel(Horizontal):
    """Rates, reply classes, latency percentiles and top lists of the sliding window."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._traffic: TrafficStats | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="traffic-rates"):
            yield Static(id="conversation-rate")
            yield Sparkline(id="conversation-spark")
            yield Static(id="message-rate")
            yield Sparkline(id="message-spark")
            yield Static(id="reply-classes")
        yield Static(id="traffic-latency")
        yield Static(id="traffic-tops")

    def show(self, traffic: TrafficStats | None) -> None:
        """Show new traffic statistics; parts whose numbers did not change are not redrawn."""
        previous, self._traffic = self._traffic, traffic
        if traffic is None or traffic == previous:
            return
        window = traffic.window_seconds
        # Until a whole window has passed, the rates are averaged over the seconds seen so far.
        rate_window = traffic.rate_seconds or window
        if previous is None or _rates(previous) != _rates(traffic):
            self.query_one("#conversation-rate", Static).update(
                rate_text("conversations/s", traffic.conversations_per_second, rate_window)
            )
            self.query_one("#message-rate", Static).update(
                rate_text("messages/s", traffic.messages_per_second, rate_window)
            )
        # Sparkline.data is reactive, so an equal history does not redraw it.
        self.query_one("#conversation-spark", Sparkline).data = traffic.conversation_rate_history
        self.query_one("#message-spark", Sparkline).data = traffic.message_rate_history
        if previous is None or previous.replies_by_class != traffic.replies_by_class:
            self.query_one("#reply-classes", Static).update(
                reply_classes_text(traffic.replies_by_class, window)
            )
        if previous is None or previous.phase_percentiles != traffic.phase_percentiles:
            self.query_one("#traffic-latency", Static).update(
                percentile_table(traffic.phase_percentiles, window)
            )
        if previous is None or _tops(previous) != _tops(traffic):
            self.query_one("#traffic-tops", Static).update(top_lists_table(traffic))


def _rates(traffic: TrafficStats) -> tuple[float, float, float, float]:
    return (
        traffic.window_seconds,
        traffic.rate_seconds,
        traffic.conversations_per_second,
        traffic.messages_per_second,
    )


def _tops(traffic: TrafficStats) -> tuple[object, ...]:
    return (traffic.top_error_servers, traffic.top_error_clients, traffic.slowest_servers)
