"""The help screen: every key binding of the dashboard, the conversation screen and the compare screen."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("Dashboard", ""),
    ("↑ ↓ PgUp PgDn Home End", "move the cursor between conversations"),
    ("Enter", "open the conversation under the cursor"),
    ("/", "filter rows by client, server, stage or command (Enter applies)"),
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
    """A modal list of the key bindings; any of Esc, q or ? closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Text("smtptop keys", style="bold"), id="help-title")
            yield Static(help_table(), id="help-keys")
