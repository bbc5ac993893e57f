"""The help screen: every key binding of the dashboard, the conversation screen and the compare screen."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from smtptop.metrics.traffic import DEFAULT_MAX_SAMPLES_PER_PHASE as CAP

KEYS = (
    ("Dashboard", ""),
    ("↑ ↓ PgUp PgDn Home End", "move the cursor between conversations"),
    ("Enter", "open the conversation under the cursor"),
    (
        "/",
        (
            "filter rows by text in the client, server, stage, TLS mode, last command or last"
            " reply, in any case (Enter applies)"
        ),
    ),
    ("!", "show only stalled conversations, or all again"),
    ("e", "show only conversations with a 4xx or 5xx reply, or all again"),
    ("T", "TLS filter: plain, STARTTLS, implicit, all"),
    ("Esc", "clear the text filter and every quick filter"),
    ("o", "sort: newest, recent activity, longest idle, stalled first, then each column"),
    ("O", "reverse the sort order"),
    ("s", "save the conversation under the cursor, the marked ones or all shown, as pcap or text"),
    ("g", "show or hide the traffic panel (rates, reply classes, latency percentiles)"),
    ("m", "mark or unmark the conversation under the cursor"),
    ("c", "compare the TLS negotiations of the two marked conversations"),
    ("q", "quit"),
    ("Conversation screen", ""),
    ("↑ ↓", "move through packets; the hex dump follows the cursor"),
    ("1 / 2 / 3 / 4 / 5 / 6", "Packets / Transcript / Timeline / Phases / TCP / TLS tab"),
    ("", "packet tags as in Wireshark: red loss or retransmission, yellow window, dim keep-alive"),
    ("(+N more)", "in a packet's summary: N more SMTP items (commands, replies, message parts) in the same packet; the Transcript tab lists them"),
    ("Enter", "on the timeline: open the arrow's packet in the Packets tab"),
    ("", "timeline latency bars: log scale, 0.1 ms to 100 s over 12 cells"),
    ("t", "time: absolute, since the conversation start, delta to the previous line"),
    ("s", "save this conversation as pcap or as transcript text"),
    ("Esc  q", "back to the dashboard"),
    ("Compare screen", ""),
    ("≠", "the two negotiations differ in this row"),
    ("Esc  q", "back to the dashboard"),
    ("Everywhere", ""),
    ("p", "pause or resume the display (capture continues)"),
    ("R", "show AUTH credentials after a confirmation, or mask them again"),
    ("?", "this help"),
    ("Columns and counters", ""),
    (
        f"n {CAP:,}+",
        (
            f"traffic panel: the phase reached the {CAP:,} latencies kept per phase, so its count"
            f" is a minimum and its percentiles cover the newest {CAP:,}"
        ),
    ),
    ("rtx dup 0w", "retransmissions, duplicate ACKs and zero windows, both directions"),
    ("lost segments", "gaps in a sender's sequence numbers: lost in the network or by the capture"),
    ("ACKed unseen", "segments the peer acknowledged but the capture never saw: lost by the capture"),
)


def help_table() -> Table:
    """Build the table of keys and what they do."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, meaning in KEYS:
        if meaning:
            table.add_row(key, meaning)
        else:
            table.add_row(Text(key, style="underline"), "")
    return table


class HelpScreen(ModalScreen[None]):
    """A modal list of the key bindings, closed by Esc, q or ?.

    The list is taller than a small terminal, so it scrolls. The scroll
    container takes the focus, so the arrow, page, Home and End keys and the
    mouse wheel move it.
    """

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        # The title sits in the border so that it stays in view while the keys scroll.
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "smtptop keys"
            yield Static(help_table(), id="help-keys")
        # Its own footer, so the box stops above it and the keys shown are the ones that work here.
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help", VerticalScroll).focus()
