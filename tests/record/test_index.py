"""The frame index: record positions across gaps, and the reasons it gives for removed files."""

from __future__ import annotations

import pytest

from smtptop.record import index
from smtptop.record.index import STRIDE, FrameIndex


def test_positions_skip_gap() -> None:
    frames = FrameIndex()
    # Frames 1-39 and 50-100 in one file; record r starts at offset 1000 * r.
    written = [n for n in range(1, 101) if not 40 <= n <= 49]
    for record_number, frame_no in enumerate(written):
        frames.add("a.pcap", frame_no, 1000 * record_number)

    for record_number, frame_no in enumerate(written):
        entry = frames.find(frame_no)
        assert entry is not None
        assert entry.checkpoint == 1000 * (record_number - record_number % STRIDE)
        assert entry.skip == record_number % STRIDE
    for frame_no in range(40, 50):
        assert frames.find(frame_no) is None


def test_removed_file_reason() -> None:
    frames = FrameIndex()
    frames.add("a.pcap", 1, 24)
    frames.add("b.pcap", 2, 24)

    held = frames.remove_file("a.pcap", "deleted by --keep 1")

    assert held == 1
    assert frames.find(1) is None
    assert frames.find(2) is not None
    assert frames.gone_reason(1, 2, 2) == "frame 1 was in a.pcap, which was deleted by --keep 1"


def test_missing_runs_merge() -> None:
    frames = FrameIndex()
    frames.note_missing(1, 3, index.QUEUE_FULL)
    frames.note_missing(4, 4, index.QUEUE_FULL)
    frames.note_missing(5, 6, index.WRITE_ERROR)

    assert "queue was full" in frames.gone_reason(4, 10, 10)
    assert "writing was failing" in frames.gone_reason(6, 10, 10)
    assert "still waiting" in frames.gone_reason(9, 10, 8)


def test_old_segments_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "MAX_GONE_SEGMENTS", 2)
    frames = FrameIndex()
    for frame_no in range(1, 11):
        frames.add(f"f{frame_no}.pcap", frame_no, 24)
    for frame_no in range(1, 10):
        frames.remove_file(f"f{frame_no}.pcap", "overwritten")

    assert "no longer kept" in frames.gone_reason(1, 10, 10)
    assert frames.gone_reason(9, 10, 10) == "frame 9 was in f9.pcap, which was overwritten"
    assert frames.find(10) is not None
