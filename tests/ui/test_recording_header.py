"""The dashboard header while recording: the file, the counts, and a full disk that stops the writer.

The full-disk case mounts a small tmpfs, so it needs root.
"""

from __future__ import annotations

import time
from pathlib import Path

from real_sources import wait_until_finished
from test_real_captures import table
from textual.widgets import Static

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.record import RecordConfig, Recorder
from smtptop.ui.app import SmtpTopApp
from tests.record.test_full_disk import fill, small_disk  # noqa: F401 - the fixture is used by name
from tests.support import PUBLIC_CAPTURES

CAPTURE = PUBLIC_CAPTURES / "smtp-zeek-many-rcpt.pcap.gz"
SIZE = (200, 50)
SETTLE_SECONDS = 20.0


def _recording_runner(target: Path) -> tuple[CaptureRunner, Recorder]:
    source = open_capture(str(CAPTURE))
    recorder = Recorder(RecordConfig(str(target)), source.link_type, source.snaplen)
    recorder.check()
    recorder.start()
    engine = Engine(EngineConfig(), source.link_type, source.name, "")
    runner = CaptureRunner(engine, source, recorder=recorder)
    runner.start()
    wait_until_finished(runner)
    deadline = time.monotonic() + SETTLE_SECONDS
    while recorder.stats().packets_written + recorder.stats().packets_not_written < engine.packets:
        assert time.monotonic() < deadline, "the recorder did not take every frame"
        time.sleep(0.01)
    return runner, recorder


def _header(app: SmtpTopApp) -> str:
    return str(app.screen.query_one("#header", Static).content)


async def test_header_shows_the_recording(tmp_path: Path) -> None:
    runner, recorder = _recording_runner(tmp_path / "all.pcap")
    app = SmtpTopApp(runner, live=False, refresh_hz=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        header = _header(app)

        stats = recorder.stats()
        assert f"rec {tmp_path / 'all.pcap'}" in header
        assert f"packets {stats.packets_written:,}" in header
        assert "not written 0" in header


async def test_header_full_disk(small_disk: Path) -> None:  # noqa: F811
    fill(small_disk, 48 * 1024)
    runner, recorder = _recording_runner(small_disk / "full.pcap")
    app = SmtpTopApp(runner, live=False, refresh_hz=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        header = _header(app)

        stats = recorder.stats()
        assert stats.packets_not_written > 0
        assert "rec paused" in header
        assert "No space left on device" in header
        assert f"not written {stats.packets_not_written:,}" in header
        # Monitoring goes on: the conversation is listed as without the recording.
        assert len(table(app, "conversations").row_keys()) == 1
