"""The engine in a child process shows what the same engine shows in-process, and survives losing either side."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smtptop.capture.files import open_capture
from smtptop.capture.live import LiveCapture
from smtptop.config import EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.process import PUSH_SECONDS, EngineProcess
from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import ConversationRow, Snapshot

DATA = Path(__file__).resolve().parent.parent / "data" / "public"
# Liveness bounds, not speed requirements.
FINISH_SECONDS = 30.0


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.02)


def _runner(path: Path, config: EngineConfig) -> CaptureRunner:
    reader = open_capture(str(path))
    return CaptureRunner(Engine(config, reader.link_type, str(path), ""), reader)


def _finished_in_process(path: Path, config: EngineConfig) -> CaptureRunner:
    runner = _runner(path, config)
    runner.start()
    wait_until(lambda: runner.snapshot().stats.finished, FINISH_SECONDS, f"reading {path.name}")
    return runner


@pytest.fixture
def started() -> Iterator[list[EngineProcess]]:
    """Engine processes a test starts; each is stopped at the end, whatever the test did to it."""
    processes: list[EngineProcess] = []
    yield processes
    for process in processes:
        process.stop()


def _start(processes: list[EngineProcess], runner: CaptureRunner) -> EngineProcess:
    process = EngineProcess(runner)
    processes.append(process)
    process.start()
    return process


@pytest.mark.parametrize(
    "name",
    [
        "smtp-sv-multi-mail.pcap",
        "smtp-zeek-auth-multi.pcap",
        "smtp-zeek-bdat-chunked.pcap",
        "smtp-sv-corrupt-record.pcap",
        "smtp-zeek-pipelined-451.pcap",
        "starttls-zeek-google.pcap",
        "starttls-ndpi-v4-v6.pcap",
    ],
)
def test_file_matches_in_process_engine(name: str, started: list[EngineProcess]) -> None:
    path = DATA / name
    config = EngineConfig()
    reference = _finished_in_process(path, config)
    process = _start(started, _runner(path, config))

    wait_until(lambda: process.snapshot().stats.finished, FINISH_SECONDS, f"reading {name} in the child")
    snapshot = process.snapshot()

    assert snapshot == reference.snapshot()
    assert snapshot.rows, "no SMTP conversation in the capture"
    keys = [row.key for row in snapshot.rows]
    for key in keys:
        assert process.detail(key) == reference.detail(key)
    assert process.details(keys) == reference.details(keys)
    assert process.frames_for(keys) == reference.frames_for(keys)
    assert process.detail(max(keys) + 1000) is None
    reference.stop()


def test_reveal_shows_in_next_read(started: list[EngineProcess]) -> None:
    path = DATA / "smtp-zeek-auth-multi.pcap"
    process = _start(started, _runner(path, EngineConfig()))
    wait_until(lambda: process.snapshot().stats.finished, FINISH_SECONDS, "reading the capture")
    reference = _finished_in_process(path, EngineConfig())
    key = process.snapshot().rows[0].key
    masked = process.detail(key)
    # Requested twice, as a screen does: from now on the child sends this detail with every
    # state, and the dashboard reads it from there.
    process.detail(key)
    time.sleep(PUSH_SECONDS * 2)
    assert process.detail(key) == masked

    process.set_reveal_secrets(True)
    reference.set_reveal_secrets(True)

    assert process.snapshot().rows == reference.snapshot().rows
    revealed = process.detail(key)
    assert revealed == reference.detail(key)
    assert revealed is not None and masked is not None
    assert [line.text for line in revealed.transcript] != [line.text for line in masked.transcript]
    reference.stop()


def _rows(*keys: int) -> list[tuple[object, ...]]:
    """Rows as the child sends them: a tuple of field values, in field order."""
    rows = []
    for key in keys:
        row = ConversationRow(
            key=key, client=f"10.0.0.1:{40000 + key}", server="10.0.0.2:25", tls_mode="none",
            stage="DATA", last_command="DATA", last_reply="354 go ahead", start=1.0, last_seen=2.0,
            closed=False, messages=0, retransmissions=0, packets=5, bytes=100, anomalies=0,
        )
        rows.append(tuple(getattr(row, name) for name in ConversationRow.__dataclass_fields__))
    return rows


def test_rows_keep_key_order(started: list[EngineProcess]) -> None:
    # A conversation on an unknown port becomes SMTP when its greeting is seen, which can
    # be after later conversations were listed. The child lists rows by key, so must the dashboard.
    process = EngineProcess(_runner(DATA / "smtp-sv-multi-mail.pcap", EngineConfig()))
    stats = process.snapshot().stats

    process._apply(stats, None, _rows(2, 5), [], None, None, {})
    process._apply(stats, None, _rows(3, 7), [], None, None, {})
    assert [row.key for row in process.snapshot().rows] == [2, 3, 5, 7]

    process._apply(stats, None, _rows(5), [2, 7], None, None, {})
    assert [row.key for row in process.snapshot().rows] == [3, 5]


@pytest.mark.live
def test_killed_child_keeps_last_state(started: list[EngineProcess]) -> None:
    # A quiet live capture keeps the child running until it is killed.
    capture = LiveCapture("lo", 262144, 1024, "tcp port 9 and host 127.0.0.254", promiscuous=False)
    process = _start(started, CaptureRunner(Engine(EngineConfig(), capture.link_type, "lo", ""), capture))
    wait_until(lambda: process.backlog() is not None, FINISH_SECONDS, "the first state")
    before: Snapshot = process.snapshot()
    assert before.stats.error is None
    assert process.pid is not None

    os.kill(process.pid, signal.SIGKILL)

    wait_until(lambda: process.snapshot().stats.error is not None, FINISH_SECONDS, "noticing the kill")
    error = process.snapshot().stats.error
    assert error is not None
    assert "was killed by signal 9 (SIGKILL)" in error
    assert "--log FILE" in error
    assert process.ended == f"the capture process (pid {process.pid}) was killed by signal 9 (SIGKILL)"
    assert process.snapshot().stats.finished
    assert process.snapshot().stats.source == "lo"
    with pytest.raises(RuntimeError, match="killed by signal 9"):
        process.detail(1)
    assert process.read_frame(1, 1) == (None, error)
    started_at = time.monotonic()
    process.stop()
    assert time.monotonic() - started_at < 2.0
