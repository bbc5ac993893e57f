"""Drill-down after the bytes left memory: the hex dump reads them back from the recording."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path

from real_sources import wait_until_finished
from test_real_captures import open_conversation, table
from textual.widgets import Static

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.record import RecordConfig, Recorder
from smtptop.ui.app import SmtpTopApp
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark

CAPTURE = PUBLIC_CAPTURES / "smtp-sv-multi-mail.pcap"
SIZE = (160, 50)
RECORDER_TIMEOUT = 10.0


def _runner(recording: RecordConfig) -> CaptureRunner:
    """Read the capture with no frame bytes kept in memory, recording every frame."""
    source = open_capture(str(CAPTURE))
    recorder = Recorder(recording, source.link_type, source.snaplen)
    recorder.check()
    recorder.start()
    engine = Engine(EngineConfig(frame_store_mib=0), source.link_type, source.name, "")
    runner = CaptureRunner(engine, source, recorder=recorder)
    runner.start()
    wait_until_finished(runner)
    # The recorder writes on its own thread; wait until every frame left its queue.
    deadline = time.monotonic() + RECORDER_TIMEOUT
    while recorder.stats().packets_written + recorder.stats().packets_not_written < engine.packets:
        assert time.monotonic() < deadline, "the recorder did not write every frame"
        time.sleep(0.01)
    return runner


@cache
def _tshark_frames() -> dict[int, bytes]:
    """Return every frame's bytes as tshark reads them, by frame number."""
    frames = json.loads(run_tshark(CAPTURE, "-T", "json", "-x"))
    return {
        int(frame["_source"]["layers"]["frame"]["frame.number"]): bytes.fromhex(frame["_source"]["layers"]["frame_raw"][0])
        for frame in frames
    }


def _tshark_bytes(frame_no: int) -> bytes:
    return _tshark_frames()[frame_no]


def test_frames_are_read_back_from_the_recording(tmp_path: Path) -> None:
    runner = _runner(RecordConfig(pattern=str(tmp_path / "all.pcap")))
    try:
        (row,) = runner.snapshot().rows
        detail = runner.detail(row.key)
        assert detail is not None
        assert all(packet.frame is None for packet in detail.packets)
        for packet in detail.packets:
            read = runner.read_frame(row.key, packet.frame_no)
            assert read == (_tshark_bytes(packet.frame_no), "")
    finally:
        runner.stop()


def test_rotated_away_frames_name_their_file(tmp_path: Path) -> None:
    # A ring of two 2 KB files keeps only the newest frames.
    runner = _runner(RecordConfig(pattern=str(tmp_path / "ring.pcap"), rotate_bytes=2000, ring_files=2))
    try:
        (row,) = runner.snapshot().rows
        detail = runner.detail(row.key)
        assert detail is not None
        first = runner.read_frame(row.key, detail.packets[0].frame_no)
        last = runner.read_frame(row.key, detail.packets[-1].frame_no)
        assert first is not None and last is not None
        assert first[0] is None
        assert "ring.pcap" in first[1]
        assert last[0] == _tshark_bytes(detail.packets[-1].frame_no)
    finally:
        runner.stop()


async def test_hex_dump_says_it_read_the_recording(tmp_path: Path) -> None:
    runner = _runner(RecordConfig(pattern=str(tmp_path / "all.pcap")))
    app = SmtpTopApp(runner, live=False, refresh_hz=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, table(app, "conversations").row_keys()[0])
        await pilot.pause()
        dump = str(app.screen.query_one("#hexdump", Static).content)

        assert "read back from the recording" in dump
        assert "0x0000:" in dump


def test_export_reads_frames_back_from_the_recording(tmp_path: Path) -> None:
    runner = _runner(RecordConfig(pattern=str(tmp_path / "all.pcap")))
    try:
        (row,) = runner.snapshot().rows
        frames, missing = runner.frames_for([row.key])

        assert missing == 0
        assert [data for _, data, _ in frames] == [_tshark_bytes(number) for number in sorted(_tshark_frames())]
    finally:
        runner.stop()
