"""Pilot tests of TCP health on a real capture: tags in the packet list, the TCP tab, the table cell.

The expected counts come from tshark reading the same file (tests/engine/tshark_tcp.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from test_real_captures import keys_by_client, open_conversation, read_file, table
from textual.widgets import Static, TabbedContent

from smtptop.engine.snapshot import CaptureStats, ConversationRow, TcpDirectionHealth, TcpHealth
from smtptop.ui.dashboard import TcpTotals, header_text, open_tcp_totals
from smtptop.ui.rows import LOSS_STYLE, SORT_ORDERS, WINDOW_STYLE, RowFilter, compact_count
from smtptop.ui.tcp_panel import KEEP_ALIVE_STYLE, tag_style, tagged_summary, tcp_panel
from tests.engine.tshark_tcp import tcp_flag_counts
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path

DUPACK = PUBLIC_CAPTURES / "smtp-sv-long-command-dupack.pcap"
CLIENT = "192.168.164.35:59096"
SERVER = "83.215.238.27:25"
SIZE = (160, 50)


def tcp_tab_lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    panel = app.screen.query_one("#tcp", Static)
    return [line.text for line in panel.render_lines(panel.region.reset_offset)]


def indicator(lines: list[str], label: str) -> list[str]:
    """Return the client and server values of one row of the TCP tab."""
    line = next(line for line in lines if line.strip().startswith(label + "  "))
    return line.strip()[len(label) :].split()


@pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")
async def test_conversation_tags_and_tcp_tab_match_tshark() -> None:
    oracle = tcp_flag_counts(DUPACK)
    client_sent = oracle.get((CLIENT, SERVER), Counter())
    server_sent = oracle.get((SERVER, CLIENT), Counter())
    app, _ = read_file(DUPACK)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        key = keys_by_client(app)[CLIENT]
        counters = table(app, "conversations").get_cell(key, "retransmissions")
        assert counters.plain.split() == [
            str(client_sent["any_retransmission"] + server_sent["any_retransmission"]),
            str(client_sent["duplicate_acks"] + server_sent["duplicate_acks"]),
            "0",
        ]

        await open_conversation(pilot, app, key)
        packets = table(app, "packets")
        summaries = {number: packets.get_cell(number, "summary") for number in packets.row_keys()}
        assert summaries["8"].plain.startswith("[Dup ACK #1] ")
        assert summaries["10"].plain.startswith("[Dup ACK #3] ")
        assert summaries["11"].plain.startswith("[Fast Retransmission] ")
        assert not summaries["7"].plain.startswith("[")
        spans = [str(span.style) for span in summaries["8"].spans]
        assert LOSS_STYLE in spans

        await pilot.press("5")
        await pilot.pause()
        assert app.screen.query_one("#tabs", TabbedContent).active == "tcp-tab"
        lines = tcp_tab_lines(app)
        assert any("Zeek state SF" in line for line in lines)
        assert indicator(lines, "duplicate ACKs") == [
            str(client_sent["duplicate_acks"]),
            str(server_sent["duplicate_acks"]),
        ]
        assert indicator(lines, "fast retransmissions") == [
            str(client_sent["fast_retransmissions"]),
            str(server_sent["fast_retransmissions"]),
        ]
        assert indicator(lines, "zero windows") == ["0", "0"]

        await pilot.press("1")
        await pilot.pause()
        assert app.screen.query_one("#tabs", TabbedContent).active == "packets-tab"


def test_tag_styles() -> None:
    assert tag_style("Retransmission") == LOSS_STYLE
    assert tag_style("Dup ACK #12") == LOSS_STYLE
    assert tag_style("Previous segment not captured") == LOSS_STYLE
    assert tag_style("ZeroWindow") == WINDOW_STYLE
    assert tag_style("Window Full") == WINDOW_STYLE
    assert tag_style("TCP Keep-Alive") == KEEP_ALIVE_STYLE


def test_tagged_summary_leads_with_brackets() -> None:
    text = tagged_summary(("Retransmission", "ZeroWindow"), "data, 10 bytes", "cyan")

    assert text.plain == "[Retransmission] [ZeroWindow] data, 10 bytes"
    assert str(text.style) == "cyan"


def test_compact_count_fits_width() -> None:
    assert compact_count(7, 3) == "7"
    assert compact_count(999, 3) == "999"
    assert compact_count(1234, 3) == "1k"
    assert compact_count(45_678, 3) == "45k"
    assert compact_count(4_567_890, 3) == "4M"
    assert compact_count(123, 2) == "9+"


def _health(scale: int | None) -> TcpDirectionHealth:
    return TcpDirectionHealth(
        retransmissions=2, fast_retransmissions=0, spurious_retransmissions=0, duplicate_acks=0,
        out_of_order=0, lost_segments=0, acked_unseen=0, zero_windows=1, zero_window_probes=0,
        zero_window_probe_acks=0, window_full=0, window_updates=0, keep_alives=0, keep_alive_acks=0,
        window=None if scale is None else 512 << scale, raw_window=512, window_scale=scale,
        bytes_in_flight=1448, rtt_min=0.001, rtt_smoothed=0.002, rtt_max=0.004,
    )


def test_tcp_panel_shows_unknown_scale() -> None:
    from rich.console import Console

    health = TcpHealth(client=_health(None), server=_health(7), initial_rtt=None, zeek_state="OTH", history="DdA")
    console = Console(width=120, record=True, color_system=None)
    console.print(tcp_panel(health))
    text = console.export_text()

    assert "512 raw (scale unknown)" in text
    assert "65,536 bytes (raw 512, scale 7)" in text
    assert "Zeek state OTH (no SYN seen, mid-stream traffic)" in text
    assert "history DdA" in text
    assert "1,448" in text


def _stats(**changes: object) -> CaptureStats:
    values: dict[str, object] = dict(
        source="lo", bpf_filter="", packets=10, bytes=1000, conversations_open=1, conversations_total=2,
        kernel_drops=3, interface_drops=None, undecodable=0, finished=False, now=0.0, error=None,
        lost_segments=4, acked_unseen=5,
    )
    values.update(changes)
    return CaptureStats(**values)  # type: ignore[arg-type]


def test_header_puts_capture_loss_beside_drops() -> None:
    text = header_text(
        _stats(),
        paused=False,
        row_filter=RowFilter(),
        order=SORT_ORDERS[0],
        reverse=False,
        stalled=0,
        secrets_shown=False,
        fetch_error=None,
        tcp_totals=TcpTotals(retransmissions=7, duplicate_acks=8, zero_windows=9),
    )
    second = text.plain.splitlines()[1]

    assert second.startswith("drops kernel 3  lost segments 4  ACKed unseen 5")
    assert second.endswith("open: retrans 7  dup ACKs 8  zero windows 9")


def test_open_totals_skip_closed_rows() -> None:
    base = ConversationRow(
        key=1, client="a:1", server="b:25", tls_mode="none", stage="DATA", last_command="", last_reply="",
        start=0.0, last_seen=0.0, closed=False, messages=0, retransmissions=2, packets=1, bytes=0,
        anomalies=0, duplicate_acks=3, zero_windows=1,
    )
    closed = replace(base, key=2, closed=True, retransmissions=100)

    assert open_tcp_totals([base, closed]) == TcpTotals(retransmissions=2, duplicate_acks=3, zero_windows=1)
