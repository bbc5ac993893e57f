"""The live step: smtptop's dashboard captures on lo while smtp-source sends at full speed.

The app is the one the CLI runs (SmtpTopApp on an EngineProcess, whose child
runs a CaptureRunner over a LiveCapture, with the CLI's default snaplen,
buffer and refresh rate), driven through Textual's headless test harness so
that key presses can be timed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.keys import RepaintWatch
from bench.load import send_messages, smtp_sink
from bench.processes import free_port
from smtptop.capture.live import LiveCapture
from smtptop.config import DEFAULT_BUFFER_KIB, DEFAULT_SNAPLEN, SMTP_PORTS, EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.process import EngineProcess
from smtptop.engine.runner import CaptureRunner
from smtptop.runtime import tune_garbage_collector_for_display
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.dashboard import DashboardScreen

PRESS_INTERVAL_SECONDS = 0.25
# The engine has caught up when its packet count has not moved for this long after sending.
SETTLED_SECONDS = 2.0
CATCH_UP_TIMEOUT_SECONDS = 600.0


@dataclass
class LiveResult:
    """Measurements of the live run; latencies in seconds."""

    messages: int
    send_seconds: float = 0.0
    kernel_drops: int | None = None
    interface_drops: int | None = None
    queue_drops: int | None = None
    queue_peak_mib: float = 0.0
    packets: int = 0
    reference_frames: int = 0
    conversations: int = 0
    accepted: int = 0
    catch_up_seconds: float = 0.0
    sort_latencies: list[float] = field(default_factory=list)
    sort_latencies_catching_up: list[float] = field(default_factory=list)


async def measure(messages: int, reference_frames: int = 0) -> LiveResult:
    result = LiveResult(messages, reference_frames=reference_frames)
    port = free_port()
    bpf_filter = f"tcp port {port}"
    with smtp_sink(port):
        capture = LiveCapture("lo", DEFAULT_SNAPLEN, DEFAULT_BUFFER_KIB, bpf_filter, promiscuous=False)
        engine = Engine(EngineConfig(smtp_ports=SMTP_PORTS | {port}), capture.link_type, "lo", bpf_filter)
        source = EngineProcess(CaptureRunner(engine, capture))
        source.start()
        tune_garbage_collector_for_display()
        try:
            app = SmtpTopApp(source, live=True)
            async with app.run_test(size=(160, 40)) as pilot:
                await pilot.pause(0.5)
                watch = RepaintWatch(app.dashboard)
                await _load_and_press(app, watch, port, result)
                await _catch_up(app, watch, source, result)
                await pilot.press("q")
            stats = source.snapshot().stats
            backlog = source.backlog()
        finally:
            source.stop()
    result.kernel_drops = stats.kernel_drops
    result.interface_drops = stats.interface_drops
    result.queue_drops = stats.queue_drops
    result.queue_peak_mib = round((backlog.peak_bytes if backlog else 0) / (1024 * 1024), 1)
    result.packets = stats.packets
    result.conversations = stats.conversations_total
    result.accepted = stats.messages_accepted
    return result


async def _load_and_press(app: SmtpTopApp, watch: RepaintWatch, port: int, result: LiveResult) -> None:
    """Send the load on a thread and time the sort key on the dashboard until it is sent."""
    dashboard = app.dashboard
    sender = asyncio.create_task(asyncio.to_thread(send_messages, port, result.messages))
    while not sender.done():
        result.sort_latencies.append(await _press_sort(app, dashboard, watch))
        await asyncio.sleep(PRESS_INTERVAL_SECONDS)
    result.send_seconds = await sender


async def _catch_up(app: SmtpTopApp, watch: RepaintWatch, source: EngineProcess, result: LiveResult) -> None:
    """Keep pressing the sort key until the engine has taken in every captured packet.

    The engine has caught up when its packet count has not moved for
    SETTLED_SECONDS. The count is read again after every press, because a press
    can take longer than that while the engine is still busy.
    """
    dashboard = app.dashboard
    started = time.monotonic()
    last_count = source.snapshot().stats.packets
    last_change = started
    while True:
        await asyncio.sleep(PRESS_INTERVAL_SECONDS)
        now = time.monotonic()
        if now - started > CATCH_UP_TIMEOUT_SECONDS:
            raise TimeoutError(f"the engine still took in packets {CATCH_UP_TIMEOUT_SECONDS} s after sending")
        count = source.snapshot().stats.packets
        if count == last_count:
            if now - last_change >= SETTLED_SECONDS:
                break
            continue
        last_count = count
        last_change = now
        result.sort_latencies_catching_up.append(await _press_sort(app, dashboard, watch))
    result.catch_up_seconds = last_change - started


async def _press_sort(app: SmtpTopApp, dashboard: DashboardScreen, watch: RepaintWatch) -> float:
    before = dashboard.row_order
    return await watch.press(app, "o", lambda: dashboard.row_order is not before)
