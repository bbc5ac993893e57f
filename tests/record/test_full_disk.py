"""A full disk: the error shows in stats() while submit keeps working, and recording resumes.

The test mounts a 1 MiB tmpfs, so it needs root.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smtptop.capture.files import Frame
from smtptop.record import RecordConfig, Recorder, RecorderStats
from tests.record.helpers import capinfos, packet_count, read_frames, requires_wireshark_tools

# A liveness bound for the writer thread, not a speed requirement.
SETTLE_SECONDS = 20.0
FREE_BYTES = 48 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], check=True, timeout=30
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


def fill(directory: Path, leave: int, name: str = "filler") -> Path:
    """Fill the file system with one file, then shrink it to leave ``leave`` bytes free."""
    filler = directory / name
    block = b"\x00" * 4096
    with open(filler, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


class Feeder:
    """Submits frames to a recorder and counts them."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.submitted = 0

    def submit(self, frames: list[Frame]) -> None:
        self.recorder.submit(frames)
        self.submitted += len(frames)


def wait_until(
    feeder: Feeder, condition: Callable[[RecorderStats], bool], feed: list[Frame]
) -> RecorderStats:
    """Keep submitting ``feed`` until ``condition`` holds for the recorder's stats."""
    recorder = feeder.recorder
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        feeder.submit(feed)
        stats = recorder.stats()
        if condition(stats):
            return stats
        time.sleep(0.05)
    raise AssertionError(f"condition not reached: {recorder.stats()}")


@requires_wireshark_tools
def test_full_disk_reports_and_resumes(public_captures: Path, small_disk: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-many-rcpt.pcap.gz")
    filler = fill(small_disk, FREE_BYTES)
    recorder = Recorder(RecordConfig(str(small_disk / "full.pcap")), link_type, snaplen)
    recorder.check()
    recorder.start()
    feeder = Feeder(recorder)
    try:
        failed = wait_until(feeder, lambda s: s.last_error is not None, frames[:200])

        assert "No space left on device" in failed.last_error  # type: ignore[operator]
        assert str(small_disk / "full.pcap") in failed.last_error  # type: ignore[operator]
        assert failed.recording is False
        before = failed.packets_not_written
        # Cutting the broken file back may have freed a page; take it, so no retry can succeed yet.
        top_up = fill(small_disk, 0, "top-up")
        # The disk is still full, so every frame submitted now is counted as not written.
        feeder.submit(frames[:50])
        still_full = wait_until(feeder, lambda s: s.packets_not_written >= before + 50, [])
        assert still_full.packets_written == failed.packets_written
        assert still_full.recording is False
        # The broken file was cut back to whole records: capinfos reads it without complaint.
        first_file = small_disk / "full.pcap"
        assert packet_count(first_file) == failed.packets_written > 0
        written_before = failed.packets_written

        filler.unlink()
        top_up.unlink()
        resumed = wait_until(
            feeder, lambda s: s.recording and s.packets_written > written_before, frames[:20]
        )

        assert "resumed" in resumed.last_error  # type: ignore[operator]
        assert resumed.current_file == str(small_disk / "full.pcap000001")
    finally:
        recorder.close()
    stats = recorder.stats()
    files = [small_disk / "full.pcap", small_disk / "full.pcap000001"]
    assert sorted(small_disk.iterdir()) == files
    for path in files:
        assert capinfos(path)["File encapsulation"] == "Ethernet"
    assert sum(packet_count(p) for p in files) == stats.packets_written
    assert stats.packets_written + stats.packets_not_written == feeder.submitted


@requires_wireshark_tools
def test_full_disk_with_size_rotation(public_captures: Path, small_disk: Path) -> None:
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-many-rcpt.pcap.gz")
    filler = fill(small_disk, FREE_BYTES)
    config = RecordConfig(str(small_disk / "rot.pcap"), rotate_bytes=16 * 1024)
    recorder = Recorder(config, link_type, snaplen)
    recorder.check()
    recorder.start()
    feeder = Feeder(recorder)
    try:
        failed = wait_until(feeder, lambda s: s.last_error is not None, frames[:200])
        top_up = fill(small_disk, 0, "top-up")
        written_before = failed.packets_written

        assert failed.recording is False
        assert "No space left on device" in failed.last_error  # type: ignore[operator]

        filler.unlink()
        top_up.unlink()
        resumed = wait_until(
            feeder, lambda s: s.recording and s.packets_written > written_before, frames[:20]
        )

        assert "resumed" in resumed.last_error  # type: ignore[operator]
    finally:
        recorder.close()
    stats = recorder.stats()
    files = sorted(small_disk.iterdir())
    assert files[0].name == "rot.pcap"
    assert [p.name for p in files[1:]] == [f"rot.pcap{n:06d}" for n in range(1, len(files))]
    for path in files:
        assert capinfos(path)["File encapsulation"] == "Ethernet"
    assert sum(packet_count(p) for p in files) == stats.packets_written
    assert stats.packets_written + stats.packets_not_written == feeder.submitted
