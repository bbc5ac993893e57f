"""Pilot tests of the app on real captures, read through the real engine as the CLI reads them.

Expected values come from tshark and tcpdump reading the same files (see
real_sources.py), or from the capture's own description, never from
smtptop's output.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from real_sources import (
    command_count,
    last_replies,
    start_capture,
    tcp_streams,
    tcpdump_hex_lines,
    wait_until_finished,
)
from rich.text import Text
from textual.widgets import Static, TabbedContent
from textual.widgets.data_table import ColumnKey

from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import CaptureStats, Snapshot
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.conversation import ConversationScreen
from smtptop.ui.dashboard import DashboardScreen
from smtptop.ui.row_table import CELL_PADDING
from smtptop.ui.rows import CONVERSATION_COLUMNS, free_text_widths
from smtptop.ui.source import StaticSource
from tests.support import DEMO_CAPTURE, PUBLIC_CAPTURES, REPO_ROOT
from tests.support.tshark import conversation_count, smtp_dialogue, tshark_path

pytestmark = pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")

SIZE = (160, 40)
ERRORS_MIXED = PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"
MANY_RCPT = PUBLIC_CAPTURES / "smtp-zeek-many-rcpt.pcap.gz"
# Port 2525 is SMTP to smtptop but not to tshark's dissector, which needs a decode-as rule.
DEMO_EXTRA_PORTS = (2525,)
DEMO_STAGES = ("closed (FIN)", "reset (RST)")


def read_file(path: Path) -> tuple[SmtpTopApp, CaptureRunner]:
    """Read ``path`` to its end as ``smtptop -r`` does, and build the app on it."""
    runner, live = start_capture(["-r", str(path)])
    wait_until_finished(runner)
    # A slow timer, so the tests' key presses are not interleaved with refreshes.
    return SmtpTopApp(runner, live=live, refresh_hz=0.5), runner


def table(app: SmtpTopApp, table_id: str) -> Any:
    """Return a table by id: the dashboard's RowTable or a conversation screen's KeyedTable."""
    return app.screen.query_one(f"#{table_id}")


def column(app: SmtpTopApp, table_id: str, column_key: str) -> list[Text]:
    """Return one column's cells, in display order."""
    data_table = table(app, table_id)
    return [data_table.get_cell(key, column_key) for key in data_table.row_keys()]


def keys_by_client(app: SmtpTopApp) -> dict[str, str]:
    """Map each dashboard row's client address to its row key."""
    conversations = table(app, "conversations")
    return {conversations.get_cell(key, "client").plain: key for key in conversations.row_keys()}


def dump_lines(app: SmtpTopApp) -> list[str]:
    """Return the hex dump's lines, without its one-line heading."""
    text = str(app.screen.query_one("#hexdump", Static).content)
    return [line.rstrip() for line in text.splitlines()[1:]]


def screen_lines(rendered: Any) -> list[str]:
    """Return the table's rendered lines as plain text: the header, then the visible rows."""
    return [rendered.render_line(y).text for y in range(rendered.size.height)]


async def open_conversation(pilot, app: SmtpTopApp, key: str) -> None:  # type: ignore[no-untyped-def]
    conversations = table(app, "conversations")
    for _ in range(conversations.row_count):
        if conversations.cursor_key == key:
            break
        await pilot.press("down")
    assert conversations.cursor_key == key
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, ConversationScreen)


async def test_demo_rows_match_tshark() -> None:
    streams = tcp_streams(DEMO_CAPTURE)
    replies = last_replies(DEMO_CAPTURE, DEMO_EXTRA_PORTS)
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = keys_by_client(app)
        conversations = table(app, "conversations")

        assert sorted(rows) == sorted(stream.client for stream in streams.values())
        for stream in streams.values():
            key = rows[stream.client]
            assert conversations.get_cell(key, "server").plain == stream.server
            assert conversations.get_cell(key, "last_reply").plain == replies[stream.index]
            assert conversations.get_cell(key, "stage").plain in DEMO_STAGES


async def test_demo_conversation_packets_and_hex() -> None:
    streams = tcp_streams(DEMO_CAPTURE)
    stream = streams[0]
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, keys_by_client(app)[stream.client])
        packets = table(app, "packets")

        assert packets.row_keys() == [str(number) for number in stream.frames]
        assert packets.cursor_key == str(stream.frames[0])
        assert dump_lines(app) == tcpdump_hex_lines(DEMO_CAPTURE, stream.frames[0])
        for number in stream.frames[1:6]:
            await pilot.press("down")
            await pilot.pause()
            assert packets.cursor_key == str(number)
            assert dump_lines(app) == tcpdump_hex_lines(DEMO_CAPTURE, number)


async def test_demo_transcript_tab_shows_dialogue() -> None:
    streams = tcp_streams(DEMO_CAPTURE)
    stream = streams[0]
    dialogue = next(
        items
        for conversation, items in smtp_dialogue(DEMO_CAPTURE, DEMO_EXTRA_PORTS).items()
        if f"{conversation.client_ip}:{conversation.client_port}" == stream.client
    )
    expected_verbs = [verb for side, verb in dialogue if side == "C"]
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, keys_by_client(app)[stream.client])
        await pilot.press("2")
        await pilot.pause()
        lines = [cell.plain for cell in column(app, "transcript", "line")]
        commands = [line[3:] for line in lines if line.startswith("C: ") and line[3:4] != "<"]

        assert app.screen.query_one("#tabs", TabbedContent).active == "transcript-tab"
        assert lines[0].startswith("S: 220 ")
        assert [command.split()[0].upper() for command in commands] == expected_verbs
        assert commands[0].upper().startswith("EHLO ")
        assert any(line.startswith("S: 250 ") for line in lines)


async def test_demo_t_changes_time_column() -> None:
    stream = tcp_streams(DEMO_CAPTURE)[0]
    first = stream.times[stream.frames[0]]
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, keys_by_client(app)[stream.client])
        packets = table(app, "packets")
        assert str(packets.columns[ColumnKey("time")].label) == "time"

        await pilot.press("t")
        await pilot.pause()
        since_start = [cell.plain for cell in column(app, "packets", "time")]

        assert str(packets.columns[ColumnKey("time")].label) == "since start"
        assert since_start == [f"{stream.times[n] - first:+.6f}" for n in stream.frames]

        await pilot.press("t")
        await pilot.pause()
        deltas = [cell.plain for cell in column(app, "packets", "time")]
        times = [stream.times[n] for n in stream.frames]

        assert str(packets.columns[ColumnKey("time")].label) == "delta"
        assert deltas[0] == "+0.000000"
        assert deltas[1:] == [f"{later - earlier:+.6f}" for earlier, later in pairwise(times)]


async def test_demo_escape_filter_and_quit() -> None:
    streams = tcp_streams(DEMO_CAPTURE)
    port_2525 = sorted(
        stream.client for stream in streams.values() if stream.server.endswith(":2525")
    )
    app, runner = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, keys_by_client(app)[streams[0].client])
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)

        await pilot.press("slash", *":2525", "enter")
        await pilot.pause()

        assert sorted(keys_by_client(app)) == port_2525
        assert len(port_2525) < len(streams)

        await pilot.press("q")
        await pilot.pause()

    assert app.return_code == 0
    assert not runner.is_running()


async def test_tls_clienthello_on_port_25_printable() -> None:
    app, _ = read_file(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        conversations = table(app, "conversations")
        keys = conversations.row_keys()

        assert len(keys) == conversation_count(ERRORS_MIXED)
        for key in keys:
            cells = [
                conversations.get_cell(key, column.key) for column in conversations.ordered_columns
            ]
            assert all(cell.plain.isprintable() for cell in cells), cells

        for key in keys:
            await open_conversation(pilot, app, key)
            texts = column(app, "packets", "summary") + column(app, "transcript", "line")
            assert all(cell.plain.isprintable() for cell in texts), key
            await pilot.press("escape")
            await pilot.pause()


async def test_many_rcpt_transcript_shows_all() -> None:
    expected = command_count(MANY_RCPT, "RCPT")
    app, _ = read_file(MANY_RCPT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        key = table(app, "conversations").row_keys()[0]
        await open_conversation(pilot, app, key)
        await pilot.press("2")
        await pilot.pause()
        lines = [cell.plain for cell in column(app, "transcript", "line")]

        assert expected == 600
        assert sum(line.startswith("C: RCPT TO:") for line in lines) == expected


async def test_demo_replay_is_paced() -> None:
    total = len(tcp_streams(DEMO_CAPTURE))
    runner, live = start_capture(["--demo"])
    app = SmtpTopApp(runner, live=live, refresh_hz=10.0)
    async with app.run_test(size=SIZE) as pilot:
        counts = []
        started = time.monotonic()
        # The demo's first conversation starts at once and its second 1.5 s in, out of 15.
        while time.monotonic() - started < 2.5:
            await pilot.pause(0.25)
            counts.append(table(app, "conversations").row_count)

        assert counts == sorted(counts)
        assert counts[0] < counts[-1]
        assert counts[-1] < total
        assert not runner.snapshot().stats.finished
        await pilot.press("q")

    assert not runner.is_running()


def empty_stats(packets: int) -> CaptureStats:
    return CaptureStats(
        source="lo",
        bpf_filter="tcp port 25",
        packets=packets,
        bytes=0,
        conversations_open=0,
        conversations_total=0,
        kernel_drops=0,
        interface_drops=0,
        undecodable=0,
        finished=False,
        now=0.0,
        error=None,
    )


async def test_quiet_live_source_keeps_refreshing() -> None:
    source = StaticSource(Snapshot(empty_stats(0), ()))
    app = SmtpTopApp(source, live=True, refresh_hz=20.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        calls = source.snapshot_calls
        header = app.screen.query_one("#header", Static)
        assert "packets 0 " in str(header.content)

        source.update(Snapshot(empty_stats(7), ()))
        await pilot.pause(0.3)

        assert source.snapshot_calls > calls
        assert "packets 7 " in str(header.content)

        await pilot.press("q")
        await pilot.pause()

    assert app.return_code == 0
    assert source.stop_calls == 1


@pytest.mark.parametrize(
    ("width", "hidden"),
    [
        (80, ["TLS", "age", "idle", "msg", "rtx dup 0w"]),
        (120, ["age", "msg", "rtx dup 0w"]),
        (160, []),
    ],
)
async def test_demo_columns_fit_width(width: int, hidden: list[str]) -> None:
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.pause()
        await pilot.pause()
        conversations = table(app, "conversations")
        lines = screen_lines(conversations)
        replies = column(app, "conversations", "last_reply")
        header = str(app.dashboard.query_one("#header", Static).content)

        assert conversations.virtual_size.width <= conversations.scrollable_content_region.width
        # Column labels are at least two spaces apart, the padding of two neighbouring cells.
        labels = re.split(r"\s{2,}", lines[0].strip())
        expected = [column.label for column in CONVERSATION_COLUMNS if column.label not in hidden]
        assert len(labels) == len(expected)
        for label, full in zip(labels, expected, strict=True):
            # At 80 columns, the last command and last reply labels are cut with "…".
            assert label == full or (label.endswith("…") and full.startswith(label[:-1])), label
        if hidden:
            assert f"too narrow for: {', '.join(hidden)}" in " ".join(header.split())
        else:
            assert "too narrow" not in header
        for stage in DEMO_STAGES:
            assert any(stage in line for line in lines[1:]), stage
        reply_width = conversations.column_width("last_reply") - 2 * CELL_PADDING
        assert reply_width >= (8 if width == 80 else 18)
        for reply in replies:
            # A reply longer than its column shows its start and an ellipsis.
            visible = reply.plain if len(reply.plain) <= reply_width else reply.plain[: reply_width - 1]
            assert any(visible in line for line in lines[1:]), reply.plain


def test_free_text_widths_split_and_clamp() -> None:
    assert free_text_widths(100) == (40, 60)
    assert free_text_widths(0) == (4, 8)
    assert free_text_widths(12) == (4, 8)
    assert free_text_widths(13) == (5, 8)
    assert free_text_widths(30) == (12, 18)
    assert free_text_widths(1000) == (48, 72)


async def test_screenshots_script_writes_svgs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "screenshots", REPO_ROOT / "scripts" / "screenshots.py"
    )
    assert spec is not None and spec.loader is not None
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    # load_demo blocks while the file is read, so it runs off the event loop.
    runner = await asyncio.to_thread(screenshots.load_demo)

    paths = await screenshots.save_screenshots(tmp_path, runner)

    assert [path.name for path in paths] == [
        "dashboard.svg",
        "conversation.svg",
        "timeline.svg",
        "transcript.svg",
        "tls.svg",
    ]
    svg = {path.name: path.read_text() for path in paths}
    # Rich writes spaces in SVG text as no-break spaces.
    assert "127.0.0.11:25" in svg["dashboard.svg"]
    assert "550&#160;5.1.1" in svg["conversation.svg"]
    assert "0x0000:" in svg["conversation.svg"]
    assert "550&#160;5.1.1" in svg["timeline.svg"]
    assert "→│" in svg["timeline.svg"]
    assert "AUTH&#160;LOGIN" in svg["transcript.svg"]
    assert "AUTH&#160;response&#160;****" in svg["transcript.svg"]
    assert "ServerHello" in svg["tls.svg"]
    for text in svg.values():
        assert "demo-password" not in text
        assert "ZGVtby1wYXNzd29yZA" not in text  # base64 of the password
        assert "ZGVtbw" not in text  # base64 of the user name


async def test_refresh_right_after_enter() -> None:
    stream = tcp_streams(DEMO_CAPTURE)[0]
    app, _ = read_file(DEMO_CAPTURE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        key = keys_by_client(app)[stream.client]

        # The refresh timer can fire after the screen is pushed and before its tabs are built.
        app.open_conversation(int(key))
        app.refresh_from_source()
        await pilot.pause()

        assert isinstance(app.screen, ConversationScreen)
        assert table(app, "packets").row_keys() == [str(number) for number in stream.frames]
