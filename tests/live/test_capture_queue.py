"""The capture queue: a burst that arrives while the analysis is stalled is kept, not dropped.

The engine lock is held for the whole burst, as a long analysis step would
hold it. The kernel buffer is 1 MiB, too small for the burst on its own: on
lo every packet also takes a slot as an outgoing copy.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from smtptop.capture.live import LiveCapture
from smtptop.config import DEFAULT_BUFFER_KIB, SMTP_PORTS, EngineConfig
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.record import RecordConfig, Recorder
from tests.record.helpers import packet_count, requires_wireshark_tools
from tests.support.servers import LOOPBACK, find_program, smtp_sink
from tests.support.tshark import run_tshark

pytestmark = pytest.mark.live

MESSAGES = 300
BUFFER_KIB = 1024
# Liveness bound for the engine to take in the queued burst, not a speed requirement.
CATCH_UP_SECONDS = 60.0


def _send_burst(port: int) -> None:
    smtp_source = find_program("smtp-source")
    if smtp_source is None:
        pytest.skip("smtp-source not found; install Postfix (scripts/setup.sh does)")
    subprocess.run(
        [smtp_source, "-s", "10", "-m", str(MESSAGES), "-l", "1000", f"{LOOPBACK}:{port}"],
        check=True,
        timeout=120,
    )


def _capture_stalled_burst(queue_bytes: int) -> tuple[Engine, list[Conversation]]:
    """Send the burst while the engine is locked; return the engine and the conversations it finished."""
    finished: list[Conversation] = []
    with smtp_sink() as server:
        bpf_filter = f"tcp port {server.port}"
        capture = LiveCapture("lo", 262144, BUFFER_KIB, bpf_filter, promiscuous=False)
        config = EngineConfig(smtp_ports=SMTP_PORTS | {server.port}, linger_seconds=3600.0)
        engine = Engine(config, capture.link_type, "lo", bpf_filter, on_finished=finished.append)
        runner = CaptureRunner(engine, capture, queue_bytes=queue_bytes)
        runner.start()
        try:
            with engine.lock:
                _send_burst(server.port)
                # The reading thread takes in the last packets meanwhile.
                time.sleep(1.0)
            deadline = time.monotonic() + CATCH_UP_SECONDS
            while engine.snapshot().stats.conversations_open and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            runner.stop()
        engine.finish_input(None)
    return engine, [conversation for conversation in finished if conversation.tcp.syn_ts is not None]


def test_stalled_burst_fully_analysed() -> None:
    engine, conversations = _capture_stalled_burst(queue_bytes=64 * 1024 * 1024)
    stats = engine.snapshot().stats

    assert stats.kernel_drops == 0
    assert stats.queue_drops == 0
    assert len(conversations) == MESSAGES
    assert sum(row.messages for row in engine.snapshot().rows) == MESSAGES


def test_full_queue_drops_counted() -> None:
    engine, conversations = _capture_stalled_burst(queue_bytes=64 * 1024)
    stats = engine.snapshot().stats

    assert stats.queue_drops is not None
    assert stats.queue_drops > 0
    assert len(conversations) < MESSAGES


def test_failing_engine_stops_reading_thread() -> None:
    # stop() closes the capture handle; the reading thread must have left libpcap first.
    with smtp_sink() as server:
        bpf_filter = f"tcp port {server.port}"
        capture = LiveCapture("lo", 262144, BUFFER_KIB, bpf_filter, promiscuous=False)
        engine = Engine(EngineConfig(), capture.link_type, "lo", bpf_filter)

        def broken_feed(frames: object, wall_clock: float | None = None) -> None:
            raise RuntimeError("engine failure for the test")

        engine.feed = broken_feed  # type: ignore[method-assign]
        runner = CaptureRunner(engine, capture)
        runner.start()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while runner.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        drain = runner.drain
        runner.stop()

    assert not runner.is_running()
    assert drain is not None
    assert not drain.is_alive()
    assert engine.error == "internal error in the capture thread; see the log"


@requires_wireshark_tools
def test_stop_while_behind_keeps_recording(tmp_path: Path) -> None:
    # The burst waits in the queue while the engine is locked, and the stop comes before the
    # engine can take in a single frame of it. The recording must still hold all of it, as
    # tcpdump's would.
    recording = tmp_path / "behind.pcap"
    with smtp_sink() as server:
        bpf_filter = f"tcp port {server.port}"
        # The default kernel buffer: this test is about the recording, not about a small buffer.
        capture = LiveCapture("lo", 262144, DEFAULT_BUFFER_KIB, bpf_filter, promiscuous=False)
        engine = Engine(EngineConfig(smtp_ports=SMTP_PORTS | {server.port}), capture.link_type, "lo", bpf_filter)
        recorder = Recorder(RecordConfig(str(recording)), capture.link_type, capture.snaplen)
        recorder.check()
        runner = CaptureRunner(engine, capture, recorder=recorder)
        runner.start()
        try:
            with engine.lock:
                _send_burst(server.port)
                time.sleep(1.0)
                queued = runner.backlog()
                kernel_drops, _ = capture.drops()
                runner.stop()
        finally:
            runner.stop()
            # The capture thread was stuck at the stop, so the handle is closed once it has ended.
            deadline = time.monotonic() + CATCH_UP_SECONDS
            while runner.is_running() and time.monotonic() < deadline:
                time.sleep(0.05)
            capture.close()

    written = recorder.stats()
    syns = run_tshark(recording, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "frame.number")
    assert queued is not None and queued.frames > 0
    assert kernel_drops == 0
    assert written.packets_not_written == 0
    assert packet_count(recording) == written.packets_written
    assert len(syns.split()) == MESSAGES
