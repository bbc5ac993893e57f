"""The dashboard's engine process on live loopback traffic: the rows it sends add up to what the engine holds.

The child captures and records while smtplib sends messages to smtp-sink.
With a small conversation limit, rows arrive, change and leave the table
over many state messages. The recorded file, read again by an in-process
engine with the same settings, must give the same rows as the dashboard
ended up with.
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import replace
from pathlib import Path

import pytest

from smtptop.capture.files import open_capture
from smtptop.capture.live import LiveCapture
from smtptop.config import SMTP_PORTS, EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.process import EngineProcess
from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import ConversationRow
from smtptop.record import RecordConfig, Recorder
from tests.engine.test_process import wait_until
from tests.support.servers import smtp_sink

pytestmark = pytest.mark.live

MESSAGES = 10
KEPT = 4
# Liveness bounds, not speed requirements.
SETTLE_SECONDS = 20.0


def _send_one(port: int, number: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(f"sender{number}@test.example", [f"rcpt{number}@test.example"], f"Subject: {number}\r\n\r\nbody\r\n")


def test_rows_match_recording_read_again(tmp_path: Path) -> None:
    recording = tmp_path / "live.pcap"
    with smtp_sink() as server:
        config = EngineConfig(smtp_ports=SMTP_PORTS | {server.port}, max_conversations=KEPT)
        capture = LiveCapture("lo", 262144, 4096, f"tcp port {server.port}", promiscuous=False)
        recorder = Recorder(RecordConfig(str(recording)), capture.link_type, capture.snaplen)
        recorder.check()
        engine = Engine(config, capture.link_type, "lo", "")
        process = EngineProcess(CaptureRunner(engine, capture, recorder=recorder))
        process.start()
        try:
            watched = None
            for number in range(MESSAGES):
                _send_one(server.port, number)
                # Spread the messages over several state messages.
                time.sleep(0.15)
                rows = process.snapshot().rows
                if watched is None and rows:
                    watched = rows[0].key
                if watched is not None:
                    # The open conversation screen requests its detail on every refresh.
                    process.detail(watched)

            def settled() -> bool:
                snapshot = process.snapshot()
                return snapshot.stats.messages_accepted == MESSAGES and all(row.closed for row in snapshot.rows)

            wait_until(settled, SETTLE_SECONDS, f"{MESSAGES} accepted messages on closed rows")
            # A last ACK after a FIN can still arrive; leave it a state message to show up.
            time.sleep(0.6)
            live = process.snapshot()
            recorded = process.recording()
        finally:
            process.stop()

    assert recorded is not None and recorded.packets_written == live.stats.packets
    assert live.stats.conversations_total == MESSAGES
    assert live.stats.evicted == MESSAGES - KEPT
    assert len(live.rows) == KEPT

    reader = open_capture(str(recording))
    reference = CaptureRunner(Engine(config, reader.link_type, "lo", ""), reader)
    reference.start()
    wait_until(lambda: reference.snapshot().stats.finished, SETTLE_SECONDS, "reading the recording")
    again = reference.snapshot()
    reference.stop()
    assert again.stats.packets == live.stats.packets
    assert len(again.rows) == len(live.rows)
    for ours, theirs in zip(again.rows, live.rows, strict=True):
        assert _without_times(ours) == _without_times(theirs)
        assert _times(ours) == pytest.approx(_times(theirs), abs=1e-6)


def _without_times(row: ConversationRow) -> ConversationRow:
    return replace(row, start=0.0, last_seen=0.0, waiting_since=None)


def _times(row: ConversationRow) -> list[float]:
    """Return the row's times. The recording keeps whole µs, and the float sums of seconds
    and µs can differ in the last bit between pypcap and the file reader."""
    return [row.start, row.last_seen, row.waiting_since or 0.0]
