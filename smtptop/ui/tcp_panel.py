"""The TCP tab of the conversation screen, and the styles of TCP analysis tags in the packet list.

Tags use Wireshark's words ("Retransmission", "Dup ACK #2", "ZeroWindow").
Everything here turns ``TcpHealth`` and ``PacketRow`` values into Rich
renderables, without widgets, so the tests can check the text directly.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from smtptop.engine.snapshot import TcpDirectionHealth, TcpHealth
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_latency
from smtptop.ui.rows import LOSS_STYLE, WINDOW_STYLE

KEEP_ALIVE_STYLE = "dim"

# Tags that mean data was lost or sent again. "Dup ACK #N" is matched by its prefix.
LOSS_TAGS = frozenset(
    (
        "Retransmission",
        "Fast Retransmission",
        "Spurious Retransmission",
        "Out-Of-Order",
        "Previous segment not captured",
        "ACKed unseen segment",
    )
)
WINDOW_TAGS = frozenset(("ZeroWindow", "ZeroWindowProbe", "ZeroWindowProbeAck", "Window Full"))
# A window update reopens a window, and keep-alives are routine, so they are shown dimmed.
QUIET_TAGS = frozenset(("Window Update", "TCP Keep-Alive", "TCP Keep-Alive ACK"))

# Zeek's conn_state values as the conn.log documentation describes them, client for originator.
ZEEK_STATES = {
    "S0": "SYN seen, no reply",
    "S1": "established, not closed",
    "SF": "established and closed normally",
    "REJ": "SYN rejected",
    "S2": "established, client's FIN not answered",
    "S3": "established, server's FIN not answered",
    "RSTO": "established, client sent a RST",
    "RSTR": "server sent a RST",
    "RSTOS0": "client sent SYN then RST, no SYN-ACK seen",
    "RSTRH": "server sent SYN-ACK then RST, no SYN seen",
    "SH": "client sent SYN then FIN, no SYN-ACK seen",
    "SHR": "server sent SYN-ACK then FIN, no SYN seen",
    "OTH": "no SYN seen, mid-stream traffic",
}


def tag_style(tag: str) -> str:
    """Return the style of one analysis tag: red for loss, yellow for window problems, dim for routine."""
    if tag in LOSS_TAGS or tag.startswith("Dup ACK"):
        return LOSS_STYLE
    if tag in WINDOW_TAGS:
        return WINDOW_STYLE
    if tag in QUIET_TAGS:
        return KEEP_ALIVE_STYLE
    return WINDOW_STYLE


def tagged_summary(tags: tuple[str, ...], summary: str, style: str) -> Text:
    """Build a packet summary cell led by its tags in brackets, as "[Dup ACK #2] [ACK]"."""
    text = Text(style=style, no_wrap=True, overflow="ellipsis", end="")
    for tag in tags:
        text.append(f"[{printable(tag)}]", style=tag_style(tag))
        text.append(" ")
    text.append(printable(summary))
    return text


# -- the TCP tab -------------------------------------------------------------------------

Formatter = Callable[[TcpDirectionHealth], str]


def _count(field: str) -> Formatter:
    return lambda health: f"{getattr(health, field):,}"


def _window(health: TcpDirectionHealth) -> str:
    if health.window_scale is None or health.window is None:
        return f"{health.raw_window:,} raw (scale unknown)"
    return f"{health.window:,} bytes (raw {health.raw_window:,}, scale {health.window_scale})"


def _rtt(field: str) -> Formatter:
    return lambda health: format_latency(getattr(health, field)) or "-"


# Rows of the per-direction table: the label, how to format a value, and the style when non-zero.
INDICATORS: tuple[tuple[str, Formatter, str], ...] = (
    ("retransmissions", _count("retransmissions"), LOSS_STYLE),
    ("fast retransmissions", _count("fast_retransmissions"), LOSS_STYLE),
    ("spurious retransmissions", _count("spurious_retransmissions"), LOSS_STYLE),
    ("duplicate ACKs", _count("duplicate_acks"), LOSS_STYLE),
    ("out-of-order", _count("out_of_order"), LOSS_STYLE),
    ("lost segments", _count("lost_segments"), LOSS_STYLE),
    ("ACKed unseen segments", _count("acked_unseen"), WINDOW_STYLE),
    ("zero windows", _count("zero_windows"), WINDOW_STYLE),
    ("zero window probes", _count("zero_window_probes"), WINDOW_STYLE),
    ("zero window probe ACKs", _count("zero_window_probe_acks"), WINDOW_STYLE),
    ("window full", _count("window_full"), WINDOW_STYLE),
    ("window updates", _count("window_updates"), ""),
    ("keep-alives", _count("keep_alives"), ""),
    ("keep-alive ACKs", _count("keep_alive_acks"), ""),
    ("receive window", _window, ""),
    ("bytes in flight", _count("bytes_in_flight"), ""),
    ("RTT min", _rtt("rtt_min"), ""),
    ("RTT smoothed", _rtt("rtt_smoothed"), ""),
    ("RTT max", _rtt("rtt_max"), ""),
)


def _value_cell(formatter: Formatter, health: TcpDirectionHealth, warning_style: str) -> Text:
    value = formatter(health)
    style = warning_style if warning_style and value not in ("0", "-") else ""
    return Text(value, style=style)


def tcp_panel(health: TcpHealth | None) -> RenderableType:
    """Build the TCP tab: Zeek's state and history, the initial RTT, then each direction's indicators."""
    if health is None:
        return Text("No TCP analysis for this conversation.", style="dim")
    state = printable(health.zeek_state)
    meaning = ZEEK_STATES.get(health.zeek_state, "")
    summary = Text()
    summary.append("Zeek state ", style="bold")
    summary.append(state)
    if meaning:
        summary.append(f" ({meaning})", style="dim")
    summary.append("  history ", style="bold")
    summary.append(printable(health.history) or "-")
    summary.append("  initial RTT ", style="bold")
    summary.append(format_latency(health.initial_rtt) or "-")

    table = Table(box=None, padding=(0, 2), show_edge=False, expand=False)
    table.add_column("sent by", style="bold", no_wrap=True)
    table.add_column("client → server", justify="right", no_wrap=True)
    table.add_column("server → client", justify="right", no_wrap=True)
    for label, formatter, warning_style in INDICATORS:
        table.add_row(
            label,
            _value_cell(formatter, health.client, warning_style),
            _value_cell(formatter, health.server, warning_style),
        )
    return Group(summary, Text(), table)
