"""The scale step: the dashboard with 10,000 open conversations, and memory after a million packets.

The memory run happens in a child process (``python -m bench.scale memory PACKETS``),
so its RSS holds only the engine and the frames, not the earlier steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.processes import rss_kib
from bench.synthetic import CLOSED_DIALOGUE, OPEN_DIALOGUE, interleaved_batches
from smtptop.config import EngineConfig
from smtptop.decode.linktypes import ETHERNET
from smtptop.engine.engine import Engine
from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.runtime import tune_garbage_collector

OPEN_CONVERSATIONS = 10_000
MEMORY_PACKETS = 1_100_000
PACKETS_PER_CONVERSATION = len(CLOSED_DIALOGUE)
PRESSES = 12  # per key; 12 presses of o visit 12 of the dashboard's 15 sort orders


@dataclass
class ScaleUiResult:
    """Dashboard timings with many conversations; latencies in seconds."""

    conversations: int
    rows_shown: int = 0
    first_draw_seconds: float = 0.0
    page_down_latencies: list[float] = field(default_factory=list)
    sort_latencies: list[float] = field(default_factory=list)


class EngineSource:
    """The engine as the app's snapshot source, with nothing running behind it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot()

    def detail(self, key: int) -> ConversationDetail | None:
        return self.engine.detail(key)

    def stop(self) -> None:
        pass

    def set_reveal_secrets(self, reveal: bool) -> None:
        self.engine.set_reveal_secrets(reveal)


def open_engine(conversations: int) -> Engine:
    """Feed ``conversations`` conversations that stop after MAIL FROM, so all stay open."""
    engine = Engine(EngineConfig(), ETHERNET, "synthetic", "")
    for batch in interleaved_batches(conversations, OPEN_DIALOGUE, time.time() - 60):
        engine.feed(batch)
    return engine


async def measure_ui(conversations: int) -> ScaleUiResult:
    from bench.keys import RepaintWatch
    from smtptop.ui.app import SmtpTopApp
    from smtptop.ui.row_table import RowTable

    result = ScaleUiResult(conversations)
    engine = open_engine(conversations)
    app = SmtpTopApp(EngineSource(engine), live=True)  # the CLI's default refresh rate
    started = time.perf_counter()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.dashboard.query_one("#conversations", RowTable)
        while table.row_count < conversations:
            await asyncio.sleep(0.01)
        result.first_draw_seconds = time.perf_counter() - started
        result.rows_shown = table.row_count
        watch = RepaintWatch(app.dashboard)
        for _ in range(PRESSES):
            row = table.cursor_row
            result.page_down_latencies.append(
                await watch.press(app, "pagedown", lambda: table.cursor_row != row))  # noqa: B023
            await asyncio.sleep(0.1)
        for _ in range(PRESSES):
            order = app.dashboard.row_order
            result.sort_latencies.append(
                await watch.press(app, "o", lambda: app.dashboard.row_order is not order))  # noqa: B023
            await asyncio.sleep(0.1)
        await pilot.press("q")
    return result


def measure_memory(packets: int) -> dict[str, int | float]:
    """Feed closed conversations with default retention settings; return RSS and the engine's counters."""
    conversations = packets // PACKETS_PER_CONVERSATION
    engine = Engine(EngineConfig(), ETHERNET, "synthetic", "")
    before = rss_kib()
    started = time.perf_counter()
    for batch in interleaved_batches(conversations, CLOSED_DIALOGUE, 1_700_000_000.0):
        engine.feed(batch)
    feed_seconds = time.perf_counter() - started
    stats = engine.snapshot().stats
    return {
        "packets": stats.packets,
        "conversations": conversations,
        "feed_seconds": round(feed_seconds, 2),
        "rss_before_kib": before,
        "rss_after_kib": rss_kib(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "conversations_kept": stats.conversations_kept,
        "max_conversations": stats.max_conversations,
        "evicted": stats.evicted,
        "frame_bytes": stats.frame_bytes,
        "frame_budget": stats.frame_budget,
        "frames_dropped": stats.frames_dropped,
    }


def measure_memory_in_child(packets: int) -> dict[str, int | float]:
    output = subprocess.run([sys.executable, "-m", "bench.scale", "memory", str(packets)], capture_output=True,
                            text=True, check=True).stdout
    result: dict[str, int | float] = json.loads(output)
    return result


def main(argv: list[str]) -> None:
    """Run one part alone and print its result as JSON: ``memory PACKETS`` or ``ui CONVERSATIONS``."""
    part, count = argv[0], int(argv[1])
    tune_garbage_collector()  # as the CLI does
    if part == "memory":
        print(json.dumps(measure_memory(count)))
    elif part == "ui":
        print(json.dumps(dataclasses.asdict(asyncio.run(measure_ui(count)))))
    else:
        raise SystemExit(f"unknown part {part!r}; expected memory or ui")


if __name__ == "__main__":
    main(sys.argv[1:])
