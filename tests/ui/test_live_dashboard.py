"""The dashboard on a live loopback capture: a conversation appears while swaks sends a mail."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from smtptop.capture.live import LiveCapture
from smtptop.config import SMTP_PORTS, EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.keyed_table import KeyedTable
from smtptop.ui.row_table import RowTable
from tests.support.servers import aiosmtpd_server, swaks

WAIT_SECONDS = 15.0


def _live_runner(port: int) -> CaptureRunner:
    bpf_filter = f"tcp port {port}"
    capture = LiveCapture("lo", 262144, 65536, bpf_filter, promiscuous=False)
    engine = Engine(EngineConfig(smtp_ports=SMTP_PORTS | {port}), capture.link_type, "lo", bpf_filter)
    return CaptureRunner(engine, capture)


@pytest.mark.live
async def test_conversation_appears_while_swaks_sends() -> None:
    with aiosmtpd_server() as server:
        runner = _live_runner(server.port)
        runner.start()
        app = SmtpTopApp(runner, live=True, refresh_hz=10.0)
        async with app.run_test(size=(160, 30)) as pilot:
            table = app.query_one("#conversations", RowTable)
            await pilot.pause(0.3)
            # aiosmtpd's controller connects to its own server once at start; that row may be listed.
            before = set(table.row_keys())

            result = await asyncio.to_thread(swaks, server.port, to="ops@test.example")
            assert result.returncode == 0

            deadline = time.monotonic() + WAIT_SECONDS
            new_keys: list[str] = []
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                new_keys = [key for key in table.row_keys() if key not in before]
                if new_keys and table.get_cell(new_keys[0], "last_reply").plain.startswith("221"):
                    break
            assert len(new_keys) == 1
            key = new_keys[0]
            assert table.get_cell(key, "server").plain == f"127.0.0.1:{server.port}"
            assert table.get_cell(key, "last_command").plain == "QUIT"
            assert table.get_cell(key, "last_reply").plain.startswith("221")
            assert table.get_cell(key, "messages").plain == "1"

            # The cursor stays on its row when others arrive, so walk it to the new one.
            for _ in range(len(table.row_keys())):
                if table.cursor_key == key:
                    break
                keys = table.row_keys()
                above = keys.index(key) < keys.index(table.cursor_key or keys[0])
                await pilot.press("up" if above else "down")
            assert table.cursor_key == key
            await pilot.press("enter")
            await pilot.pause(0.3)
            packets = app.screen.query_one("#packets", KeyedTable)
            assert len(packets.row_keys()) >= 10

            await pilot.press("escape")
            await pilot.press("q")
    assert not runner.is_running()


@pytest.mark.live
async def test_quiet_capture_still_refreshes_and_quits() -> None:
    # A bound but unused port: nothing connects to it, so the filter matches no packet.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        runner = _live_runner(reserved.getsockname()[1])
        runner.start()
        app = SmtpTopApp(runner, live=True, refresh_hz=10.0)
        async with app.run_test() as pilot:
            calls_before = runner.engine.snapshot_count
            await pilot.pause(0.5)
            assert runner.snapshot().stats.packets == 0
            assert runner.engine.snapshot_count >= calls_before + 3
            started = time.monotonic()
            await pilot.press("q")
        # A liveness bound, not a speed claim: the capture thread polls every 0.1 s.
        assert time.monotonic() - started < 5.0
    assert not runner.is_running()
