"""The capture thread: stopping twice, and the demo's replay moved to the wall clock."""

from __future__ import annotations

import time

import pytest

from smtptop.capture.files import open_capture
from smtptop.capture.live import LiveCapture
from smtptop.config import EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from tests.support import DEMO_CAPTURE


@pytest.mark.live
def test_live_runner_stops_twice_without_crash() -> None:
    # The dashboard stops its source on exit and the CLI stops it again. A second
    # close of a pypcap 1.3.0 handle passes NULL to pcap_close, which crashes the process.
    capture = LiveCapture("lo", 262144, 1024, "tcp port 9", promiscuous=False)
    runner = CaptureRunner(Engine(EngineConfig(), capture.link_type, "lo", "tcp port 9"), capture)
    runner.start()
    runner.stop()
    runner.stop()
    capture.close()
    assert not runner.is_running()


def test_demo_replay_counts_from_now() -> None:
    reader = open_capture(str(DEMO_CAPTURE))
    engine = Engine(EngineConfig(), reader.link_type, "demo", "")
    runner = CaptureRunner(engine, reader, realtime=True, rebase_to_now=True)
    started = time.time()
    runner.start()
    try:
        deadline = time.monotonic() + 10.0
        while engine.snapshot().stats.packets == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = engine.snapshot().stats
    finally:
        runner.stop()
    assert stats.packets > 0
    # The first replayed frame is stamped with the moment the replay began.
    assert started - 1.0 <= stats.now <= time.time() + 1.0
