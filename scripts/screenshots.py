"""Save SVG screenshots of smtptop showing the bundled demo capture.

Run from anywhere:

    .venv/bin/python scripts/screenshots.py [OUTPUT_DIR]

It writes ``dashboard.svg``, ``conversation.svg``, ``transcript.svg``,
``timeline.svg`` and ``tls.svg`` to OUTPUT_DIR (default: ``screenshots/`` in the repository). The demo capture
goes through the real engine as ``smtptop -r`` reads it, but only its first
``CUTOFF_SECONDS`` of packets, so the dashboard shows the replay at that
moment: the slow server still owes its end-of-data reply, and its idle time is
shown as a stall. Ages are taken
on the packet clock (``live=False``) and absolute times are shown in UTC, so
the same capture gives the same pictures on every machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from smtptop.capture.files import CaptureReader, Frame
from smtptop.cli import open_source, parse_config
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.keyed_table import KeyedTable
from smtptop.ui.row_table import RowTable
from smtptop.ui.rows import STALLED_STYLE

DEMO_CAPTURE = REPO_ROOT / "smtptop" / "demo" / "demo.pcap"
# The header shows this name instead of the absolute path, which differs between machines.
DISPLAY_NAME = "smtptop/demo/demo.pcap"
SIZE = (140, 36)
# 38 s into the demo, the slow server (127.0.0.11) has waited 5 s for its end-of-data reply.
CUTOFF_SECONDS = 38.0
# Lower than the default of 10 s so the waiting conversation is highlighted as stalled.
STALL_SECONDS = 3.0
SLOW_SERVER = "127.0.0.11:25"
FINISH_TIMEOUT = 30.0
MAX_CURSOR_MOVES = 500


class FramesUntil:
    """A capture reader that ends ``seconds`` of capture time after its first frame."""

    def __init__(self, reader: CaptureReader, seconds: float) -> None:
        self._reader = reader
        self._seconds = seconds
        self.link_type = reader.link_type
        self.name = reader.name

    @property
    def error(self) -> str | None:
        return self._reader.error

    def batches(self, size: int = 512) -> Iterator[list[Frame]]:
        first: float | None = None
        for batch in self._reader.batches(size):
            if first is None and batch:
                first = batch[0][0]
            in_window = [
                frame for frame in batch if first is not None and frame[0] - first <= self._seconds
            ]
            if in_window:
                yield in_window
            if len(in_window) < len(batch):
                return

    def close(self) -> None:
        self._reader.close()


def load_demo(cutoff: float = CUTOFF_SECONDS) -> CaptureRunner:
    """Read the demo capture's first ``cutoff`` seconds through the engine, as ``smtptop -r`` does."""
    config, _ = parse_config(["-r", str(DEMO_CAPTURE)])
    reader, _ = open_source(config)
    assert isinstance(reader, CaptureReader)
    engine = Engine(config.engine, reader.link_type, DISPLAY_NAME, config.capture.bpf_filter or "")
    runner = CaptureRunner(engine, FramesUntil(reader, cutoff))  # type: ignore[arg-type]
    runner.start()
    deadline = time.monotonic() + FINISH_TIMEOUT
    while not runner.snapshot().stats.finished:
        if time.monotonic() > deadline:
            runner.stop()
            raise TimeoutError(f"reading {DEMO_CAPTURE} timed out after {FINISH_TIMEOUT} s")
        time.sleep(0.01)
    return runner


def find_open_conversation(runner: CaptureRunner, server: str) -> int:
    """Return the key of the first conversation with ``server`` that is still open."""
    for row in sorted(runner.snapshot().rows, key=lambda row: row.key):
        if row.server == server and not row.closed:
            return row.key
    raise LookupError(
        f"no open conversation with {server} after {CUTOFF_SECONDS} s of {DEMO_CAPTURE}"
    )


def find_conversation(runner: CaptureRunner, needle: str) -> int:
    """Return the key of the first conversation whose transcript has a line containing ``needle``."""
    for row in sorted(runner.snapshot().rows, key=lambda row: row.key):
        detail = runner.detail(row.key)
        if detail is not None and any(needle in line.text for line in detail.transcript):
            return row.key
    raise LookupError(f"no conversation in {DEMO_CAPTURE} has a line containing {needle!r}")


def find_starttls_conversation(runner: CaptureRunner) -> int:
    """Return the key of the first conversation whose client switched to TLS with STARTTLS."""
    for row in sorted(runner.snapshot().rows, key=lambda row: row.key):
        if row.tls_mode == "starttls":
            return row.key
    raise LookupError(f"no STARTTLS conversation in the first {CUTOFF_SECONDS} s of {DEMO_CAPTURE}")


async def move_cursor(pilot, table: KeyedTable | RowTable, key: str) -> None:  # type: ignore[no-untyped-def]
    """Press Down, from the top row, until the cursor is on row ``key``."""
    table.move_cursor(row=0)
    for _ in range(MAX_CURSOR_MOVES):
        if table.cursor_key == key:
            return
        await pilot.press("down")
    raise LookupError(f"row {key} is not in table #{table.id}")


async def save_screenshots(directory: Path, runner: CaptureRunner | None = None) -> list[Path]:
    """Drive the app on the demo capture and save the five screenshots in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    runner = runner or load_demo()
    slow = find_open_conversation(runner, SLOW_SERVER)
    rejected = find_conversation(runner, "Recipient address rejected")
    auth = find_conversation(runner, "AUTH LOGIN")
    starttls = find_starttls_conversation(runner)
    app = SmtpTopApp(runner, stall_seconds=STALL_SECONDS, live=False)
    saved = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        conversations = app.screen.query_one("#conversations", RowTable)
        # The cursor goes on the rejected recipient, leaving the slow server's red idle time visible.
        assert conversations.get_cell(str(slow), "idle").style == STALLED_STYLE
        await move_cursor(pilot, conversations, str(rejected))
        await pilot.pause()
        saved.append(app.save_screenshot("dashboard.svg", str(directory)))

        await pilot.press("enter")
        await pilot.pause()
        packets = app.screen.query_one("#packets", KeyedTable)
        await move_cursor(pilot, packets, _reply_frame(runner, rejected, "550"))
        await pilot.pause()
        saved.append(app.save_screenshot("conversation.svg", str(directory)))

        # The same conversation as a ladder, with the cursor on the rejected recipient's reply.
        await pilot.press("3")
        await pilot.pause()
        timeline = app.screen.query_one("#timeline", KeyedTable)
        for _ in range(MAX_CURSOR_MOVES):
            if "550 " in timeline.get_cell(timeline.cursor_key or "", "ladder").plain:
                break
            await pilot.press("down")
        else:
            raise LookupError(f"conversation {rejected} has no 550 reply on its timeline")
        await pilot.pause()
        saved.append(app.save_screenshot("timeline.svg", str(directory)))

        await pilot.press("escape")
        await move_cursor(pilot, app.screen.query_one("#conversations", RowTable), str(auth))
        await pilot.press("enter", "2")
        await pilot.pause()
        saved.append(app.save_screenshot("transcript.svg", str(directory)))

        # The TLS tab of the first conversation that upgraded with STARTTLS.
        await pilot.press("escape")
        await move_cursor(pilot, app.screen.query_one("#conversations", RowTable), str(starttls))
        await pilot.press("enter", "6")
        await pilot.pause()
        saved.append(app.save_screenshot("tls.svg", str(directory)))
        await pilot.press("escape", "q")
    return [Path(path) for path in saved]


def _reply_frame(runner: CaptureRunner, key: int, code: str) -> str:
    """Return the packet-list key of the first packet whose summary starts with reply ``code``."""
    detail = runner.detail(key)
    assert detail is not None
    for packet in detail.packets:
        if packet.summary.startswith(code + " "):
            return str(packet.frame_no)
    raise LookupError(f"conversation {key} has no packet with a {code} reply")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Save SVG screenshots of smtptop on the demo capture."
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=REPO_ROOT / "screenshots",
        help="directory to write the SVG files to (default: screenshots/ in the repository)",
    )
    args = parser.parse_args(argv)
    # Absolute packet times are formatted in the local time zone, so UTC makes them the same everywhere.
    os.environ["TZ"] = "UTC"
    time.tzset()
    for path in asyncio.run(save_screenshots(args.directory)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
