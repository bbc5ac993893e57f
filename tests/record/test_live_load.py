"""Live load: Postfix smtp-source sends to smtp-sink on loopback while the Recorder rotates.

The capture loop feeds every batch from a LiveCapture on "lo" to a Recorder
with -G 2 -C 1 -W 3. The files are then checked with capinfos and tshark:
names carry a clock-aligned slice start, each slice has a ring of at most
three files, and every frame submitted is accounted for.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from smtptop.capture.live import LiveCapture
from smtptop.record import RecordConfig, Recorder
from tests.record.helpers import frame_rows, packet_count, requires_wireshark_tools
from tests.support.servers import find_program, smtp_sink, stop_process

SLICE_SECONDS = 2
FILE_BYTES = 1_000_000  # -C 1
RING = 3
# Liveness bounds, not speed requirements.
RUN_SECONDS = 180.0
QUIET_SECONDS = 1.0
NAME = re.compile(r"live-(\d+)\.pcap(\d)")


@pytest.mark.live
@requires_wireshark_tools
def test_live_load_rotates(tmp_path: Path) -> None:
    smtp_source = find_program("smtp-source")
    if smtp_source is None:
        pytest.skip("smtp-source not found; install Postfix (scripts/setup.sh does)")
    config = RecordConfig(
        str(tmp_path / "live-%s.pcap"),
        rotate_seconds=SLICE_SECONDS,
        rotate_bytes=FILE_BYTES,
        ring_files=RING,
    )
    captured = 0
    with smtp_sink() as server:
        capture = LiveCapture("lo", 262144, 65536, f"tcp port {server.port}", promiscuous=False)
        recorder = Recorder(config, capture.link_type, capture.snaplen)
        recorder.check()
        recorder.start()
        command = [
            # Four sessions each send a 400 kB message, then pause 1 s: about 1.6 MB/s
            # for about 10 s, which spans several slices and wraps some rings.
            smtp_source,
            "-s",
            "4",
            "-m",
            "40",
            "-l",
            "400000",
            "-w",
            "1",
            "-f",
            "sender@test.example",
            "-t",
            "rcpt@test.example",
            f"{server.host}:{server.port}",
        ]
        client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + RUN_SECONDS
            last_packet = time.monotonic()
            while time.monotonic() < deadline:
                batch = capture.read_batch(0.05)
                if batch:
                    recorder.submit(batch)
                    captured += len(batch)
                    last_packet = time.monotonic()
                elif client.poll() is not None and time.monotonic() - last_packet > QUIET_SECONDS:
                    break
            assert client.wait(10) == 0, client.stderr.read() if client.stderr else ""
        finally:
            stop_process(client)
            if client.stderr:
                client.stderr.close()
            recorder.close()
            capture.close()

    stats = recorder.stats()
    assert captured > 0
    assert stats.last_error is None
    assert stats.packets_written + stats.packets_not_written == captured

    slices: dict[int, set[int]] = defaultdict(set)
    on_disk = 0
    for path in tmp_path.iterdir():
        match = NAME.fullmatch(path.name)
        assert match is not None, path.name
        start, number = int(match.group(1)), int(match.group(2))
        assert start % SLICE_SECONDS == 0
        assert number < RING
        slices[start].add(number)
        count = packet_count(path)
        on_disk += count
        assert count == 1 or path.stat().st_size <= FILE_BYTES
        times = [float(row[0]) for row in frame_rows(path)]
        assert all(start <= ts < start + SLICE_SECONDS for ts in times), path.name
    for start, numbers in slices.items():
        # Each slice's ring starts at 0 and uses consecutive numbers until it wraps.
        assert numbers == set(range(len(numbers))), (start, numbers)
    assert on_disk + stats.packets_overwritten + stats.packets_not_written == captured
    assert on_disk == stats.packets_written - stats.packets_overwritten
    assert stats.files_written >= len(list(tmp_path.iterdir()))
    assert len(slices) > 1
