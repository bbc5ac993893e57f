"""The Recorder writing public captures: rings, stops, the queue bound and reading frames back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from smtptop.capture.files import Frame
from smtptop.record import RecordConfig, Recorder, RecordError
from tests.record.helpers import (
    capinfos,
    frame_rows,
    packet_count,
    read_frames,
    requires_wireshark_tools,
)

BATCH = 100


def record_all(recorder: Recorder, frames: list[Frame]) -> None:
    recorder.check()
    recorder.start()
    for start in range(0, len(frames), BATCH):
        recorder.submit(frames[start : start + BATCH])
    recorder.close()


@requires_wireshark_tools
def test_ring_of_three_files(public_captures: Path, tmp_path: Path) -> None:
    source = public_captures / "smtp-zeek-many-rcpt.pcap.gz"
    frames, link_type, snaplen = read_frames(source)
    config = RecordConfig(str(tmp_path / "ring.pcap"), rotate_bytes=20 * 1024, ring_files=3)
    recorder = Recorder(config, link_type, snaplen)

    record_all(recorder, frames)

    stats = recorder.stats()
    paths = sorted(tmp_path.iterdir())
    assert [p.name for p in paths] == ["ring.pcap0", "ring.pcap1", "ring.pcap2"]
    assert stats.packets_written == len(frames)
    assert stats.packets_not_written == 0
    assert stats.files_written > 3
    assert stats.last_error is None
    counts = {p.name: packet_count(p) for p in paths}
    assert sum(counts.values()) == len(frames) - stats.packets_overwritten
    assert stats.packets_overwritten > 0
    for path in paths:
        info = capinfos(path)
        assert info["File encapsulation"] == "Ethernet"
        assert path.stat().st_size <= 20 * 1024

    # The ring keeps the newest frames: oldest file first, the one holding the last frame last.
    newest = recorder.locate(len(frames))
    assert newest is not None
    newest_number = int(newest.path[-1])
    order = [tmp_path / f"ring.pcap{(newest_number + step) % 3}" for step in (1, 2, 3)]
    rows = [row for path in order for row in frame_rows(path)]
    assert rows == frame_rows(source)[len(frames) - len(rows) :]
    kept = [frame for path in order for frame in read_frames(path)[0]]
    assert [data for _, data, _ in kept] == [
        data for _, data, _ in frames[len(frames) - len(kept) :]
    ]


def test_read_back_and_gone_reason(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-many-rcpt.pcap.gz")
    config = RecordConfig(str(tmp_path / "ring.pcap"), rotate_bytes=20 * 1024, ring_files=3)
    recorder = Recorder(config, link_type, snaplen)

    record_all(recorder, frames)

    last = len(frames)
    for frame_no in (last, last - 1, last - 40, last - 41):
        assert recorder.read_frame(frame_no) == frames[frame_no - 1][1]
        location = recorder.locate(frame_no)
        assert location is not None
        assert location.captured_length == len(frames[frame_no - 1][1])
        with open(location.path, "rb") as stream:
            stream.seek(location.offset + 16)
            assert stream.read(location.captured_length) == frames[frame_no - 1][1]
    assert recorder.read_frame(1) is None
    assert recorder.locate(1) is None
    reason = recorder.gone_reason(1)
    assert "ring.pcap0" in reason
    assert "overwritten" in reason
    assert "-W 3" in reason
    assert recorder.gone_reason(last + 1) == f"frame {last + 1} was never submitted for recording"


def test_every_frame_reads_back(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    recorder = Recorder(
        RecordConfig(str(tmp_path / "all.pcap"), rotate_bytes=4000), link_type, snaplen
    )

    record_all(recorder, frames)

    assert len(list(tmp_path.iterdir())) == recorder.stats().files_written > 1
    for frame_no, (_, data, _) in enumerate(frames, start=1):
        assert recorder.read_frame(frame_no) == data


@requires_wireshark_tools
def test_slice_limit_stops_recording(public_captures: Path, tmp_path: Path) -> None:
    # The capture's frames spread over many seconds, so -G 1 -W 2 fills two files and stops.
    source = public_captures / "smtp-zeek-auth-multi.pcap"
    frames, link_type, snaplen = read_frames(source)
    config = RecordConfig(str(tmp_path / "%s.pcap"), rotate_seconds=1, ring_files=2)
    recorder = Recorder(config, link_type, snaplen)

    record_all(recorder, frames)

    stats = recorder.stats()
    paths = sorted(tmp_path.iterdir(), key=lambda p: int(p.stem))
    assert len(paths) == 2
    assert stats.recording is False
    assert stats.stopped_reason == "recording stopped after 2 files (-W 2)"
    assert stats.last_error is None
    written = [packet_count(p) for p in paths]
    assert sum(written) == stats.packets_written
    assert stats.packets_written + stats.packets_not_written == len(frames)
    rows = [row for path in paths for row in frame_rows(path)]
    assert rows == frame_rows(source)[: len(rows)]
    for path in paths:
        start = int(path.stem)
        assert all(start <= float(row[0]) < start + 1 for row in frame_rows(path))
    assert "recording had stopped" in recorder.gone_reason(len(frames))


def test_keep_deletes_own_old_files(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    (tmp_path / "unrelated.pcap").write_bytes(b"not ours")
    config = RecordConfig(str(tmp_path / "k.pcap"), rotate_bytes=4000, keep_files=2)
    recorder = Recorder(config, link_type, snaplen)

    record_all(recorder, frames)

    stats = recorder.stats()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert stats.files_written > 2
    assert len(names) == 3
    assert "unrelated.pcap" in names
    on_disk = sum(packet_count(tmp_path / name) for name in names if name != "unrelated.pcap")
    assert on_disk == stats.packets_written - stats.packets_deleted
    assert "deleted by --keep 2" in recorder.gone_reason(1)


def test_queue_bound_counts_dropped(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    config = RecordConfig(str(tmp_path / "q.pcap"), queue_packets=10)
    recorder = Recorder(config, link_type, snaplen)

    # Before start, nothing drains the queue, so only the first 10 frames fit.
    recorder.submit(frames[:25])
    queued = recorder.stats()
    recorder.start()
    recorder.close()

    assert queued.packets_queued == 10
    assert queued.packets_not_written == 15
    stats = recorder.stats()
    assert stats.packets_written == 10
    assert packet_count(tmp_path / "q.pcap") == 10
    assert recorder.read_frame(10) == frames[9][1]
    assert "queue was full" in recorder.gone_reason(11)


def test_queue_byte_bound_counts_dropped(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    limit = sum(len(data) for _, data, _ in frames[:5])
    config = RecordConfig(str(tmp_path / "b.pcap"), queue_bytes=limit)
    recorder = Recorder(config, link_type, snaplen)

    recorder.submit(frames[:10])
    queued = recorder.stats()
    recorder.start()
    recorder.close()

    assert queued.packets_queued == 5
    assert queued.packets_not_written == 5
    assert packet_count(tmp_path / "b.pcap") == 5
    assert "queue was full" in recorder.gone_reason(6)


def test_flush_each_packet_visible_before_close(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    config = RecordConfig(str(tmp_path / "u.pcap"), flush_each_packet=True)
    recorder = Recorder(config, link_type, snaplen)
    recorder.start()
    try:
        recorder.submit(frames[:3])
        deadline = time.monotonic() + 10
        while recorder.stats().packets_written < 3 and time.monotonic() < deadline:
            time.sleep(0.01)

        assert read_frames(tmp_path / "u.pcap")[0] == frames[:3]
        assert recorder.stats().current_file == str(tmp_path / "u.pcap")
    finally:
        recorder.close()
    assert recorder.stats().current_file is None


def test_submit_after_close_counted(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    recorder = Recorder(RecordConfig(str(tmp_path / "c.pcap")), link_type, snaplen)
    recorder.start()
    recorder.close()
    recorder.close()

    recorder.submit(frames[:4])

    assert recorder.stats().packets_not_written == 4
    assert "after the recording was closed" in recorder.gone_reason(2)


def test_check_missing_directory(tmp_path: Path) -> None:
    recorder = Recorder(RecordConfig(str(tmp_path / "absent" / "x.pcap")), 1, 65535)

    with pytest.raises(RecordError, match="does not exist"):
        recorder.check()


def test_check_repeated_slice_names(tmp_path: Path) -> None:
    recorder = Recorder(RecordConfig(str(tmp_path / "%H.pcap"), rotate_seconds=60), 1, 65535)

    with pytest.raises(RecordError, match="consecutive files would all be named"):
        recorder.check()


def test_time_coded_directory_created(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-sv-pipelining-null.pcap")
    pattern = str(tmp_path / "%Y" / "%s.pcap")
    recorder = Recorder(RecordConfig(pattern, rotate_seconds=3600), link_type, snaplen)

    record_all(recorder, frames)

    years = list(tmp_path.iterdir())
    assert len(years) == 1
    assert sum(len(read_frames(p)[0]) for p in years[0].iterdir()) == len(frames)


def test_read_back_across_queue_gap(public_captures: Path, tmp_path: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    config = RecordConfig(str(tmp_path / "gap.pcap"), queue_packets=10)
    recorder = Recorder(config, link_type, snaplen)

    # Frames 1-10 fit before the writer runs; 11-15 are dropped; later ones go to the same file.
    recorder.submit(frames[:8])
    recorder.submit(frames[8:15])
    recorder.start()
    for start in range(15, len(frames), 5):
        recorder.submit(frames[start : start + 5])
        deadline = time.monotonic() + 10
        while recorder.stats().packets_queued and time.monotonic() < deadline:
            time.sleep(0.005)
    recorder.close()

    stats = recorder.stats()
    assert stats.packets_not_written == 5
    assert stats.files_written == 1
    assert packet_count(tmp_path / "gap.pcap") == len(frames) - 5
    for frame_no in range(1, len(frames) + 1):
        expected = None if 11 <= frame_no <= 15 else frames[frame_no - 1][1]
        assert recorder.read_frame(frame_no) == expected, frame_no
    assert "queue was full" in recorder.gone_reason(13)
