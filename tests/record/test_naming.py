"""The rotation policy: clock-aligned -G slices, -C sizes, -W rings, --keep and strftime names.

Record sizes here count the 16-byte record header and the captured bytes,
and a new file starts with a 24-byte pcap file header, as in the pcap file
format.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from smtptop.record.naming import Placement, RotationPolicy, expand_pattern, repeated_name
from smtptop.record.options import RecordConfig

RECORD = 40  # 16-byte record header and 24 captured bytes


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def place_all(
    policy: RotationPolicy, times: list[float], size: int = RECORD
) -> list[Placement | None]:
    return [policy.place(ts, size) for ts in times]


def opened(placements: list[Placement | None]) -> list[str]:
    return [p.path for p in placements if p is not None and p.opens]


def test_sparse_slices_align_to_clock(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("cap-%H%M%S.pcap", rotate_seconds=2))

    placements = place_all(policy, [0.5, 1.9, 2.1, 6.5])

    assert opened(placements) == ["cap-000000.pcap", "cap-000002.pcap", "cap-000006.pcap"]
    paths = [p.path for p in placements if p is not None]
    assert paths == ["cap-000000.pcap", "cap-000000.pcap", "cap-000002.pcap", "cap-000006.pcap"]
    assert [p.slice_start for p in placements if p is not None] == [0, 0, 2, 6]


def test_slice_start_ignores_first_packet(utc: None) -> None:
    # The first packet at 7.9 s must not shift the boundaries to 7.9, 9.9, ...
    policy = RotationPolicy(RecordConfig("cap-%M%S.pcap", rotate_seconds=5))

    placements = place_all(policy, [7.9, 9.99, 10.0, 14.99, 15.0])

    assert opened(placements) == ["cap-0005.pcap", "cap-0010.pcap", "cap-0015.pcap"]


def test_clock_stepping_back_stays_in_file(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("cap-%S.pcap", rotate_seconds=2))

    placements = place_all(policy, [4.0, 1.0, 5.0])

    assert opened(placements) == ["cap-04.pcap"]


def test_names_use_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # POSIX TZ "XYZ-02" is two hours east of UTC, so the epoch reads 02:00 local time.
    monkeypatch.setenv("TZ", "XYZ-02")
    time.tzset()
    try:
        assert expand_pattern("/var/tmp/%Y%m%d-%H%M%S.pcap", 0) == "/var/tmp/19700101-020000.pcap"
        policy = RotationPolicy(RecordConfig("%H%M.pcap", rotate_seconds=60))
        assert policy.place(3600.5, RECORD) == Placement("0300.pcap", True, 3600.0, None)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_pattern_without_codes_unchanged() -> None:
    assert expand_pattern("/var/tmp/smtp.pcap", 1_700_000_000) == "/var/tmp/smtp.pcap"


def test_size_rotation_numbers_files() -> None:
    # 24 + 40 + 40 = 104 bytes fit in 120; a third record would make 144.
    policy = RotationPolicy(RecordConfig("x.pcap", rotate_bytes=120))

    placements = place_all(policy, [1.0, 2.0, 3.0, 4.0, 5.0])

    assert opened(placements) == ["x.pcap", "x.pcap000001", "x.pcap000002"]
    assert [p.number for p in placements if p is not None] == [None, None, 1, 1, 2]


def test_record_larger_than_size_alone() -> None:
    policy = RotationPolicy(RecordConfig("x.pcap", rotate_bytes=100))

    placements = [policy.place(1.0, RECORD), policy.place(2.0, 500), policy.place(3.0, RECORD)]

    assert opened(placements) == ["x.pcap", "x.pcap000001", "x.pcap000002"]


def test_size_counter_restarts_per_slice(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("s%M%S-", rotate_seconds=10, rotate_bytes=120))

    placements = place_all(policy, [0.1, 0.2, 0.3, 0.4, 0.5, 10.1, 10.2, 10.3])

    assert opened(placements) == [
        "s0000-",
        "s0000-000001",
        "s0000-000002",
        "s0010-",
        "s0010-000001",
    ]


def test_ring_numbers_wrap() -> None:
    policy = RotationPolicy(RecordConfig("x.pcap", rotate_bytes=120, ring_files=3))

    placements = place_all(policy, [float(t) for t in range(1, 10)])

    assert opened(placements) == ["x.pcap0", "x.pcap1", "x.pcap2", "x.pcap0", "x.pcap1"]


@pytest.mark.parametrize(
    ("ring", "first", "last"), [(10, "x0", "x9"), (11, "x00", "x10"), (101, "x000", "x100")]
)
def test_ring_number_width(ring: int, first: str, last: str) -> None:
    # One record per file, so the ring's names appear in order.
    policy = RotationPolicy(RecordConfig("x", rotate_bytes=64, ring_files=ring))

    names = opened(place_all(policy, [float(t) for t in range(ring)]))

    assert names[0] == first
    assert names[-1] == last
    assert names == sorted(names)


def test_ring_restarts_per_slice(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("r%S-", rotate_seconds=10, rotate_bytes=120, ring_files=2))

    placements = place_all(policy, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 10.1, 10.2, 10.3])

    assert opened(placements) == ["r00-0", "r00-1", "r00-0", "r10-0", "r10-1"]


def test_slice_limit_stops_recording(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("g%S.pcap", rotate_seconds=1, ring_files=2))

    placements = place_all(policy, [0.1, 1.1, 1.2, 2.1, 3.1])

    assert opened(placements) == ["g00.pcap", "g01.pcap"]
    assert placements[2] is not None
    assert placements[3] is None
    assert placements[4] is None
    assert policy.stopped_reason == "recording stopped after 2 files (-W 2)"


def test_keep_deletes_oldest(utc: None) -> None:
    policy = RotationPolicy(RecordConfig("k%S.pcap", rotate_seconds=1, keep_files=2))

    placements = place_all(policy, [0.5, 1.5, 2.5, 3.5])

    assert [p.deletes for p in placements if p is not None] == [
        (),
        (),
        ("k00.pcap",),
        ("k01.pcap",),
    ]


def test_keep_counts_reopened_ring_file_as_newest() -> None:
    policy = RotationPolicy(RecordConfig("x", rotate_bytes=64, ring_files=3, keep_files=2))

    placements = place_all(policy, [1.0, 2.0, 3.0, 4.0])

    assert [p.path for p in placements if p is not None] == ["x0", "x1", "x2", "x0"]
    assert [p.deletes for p in placements if p is not None] == [(), (), ("x0",), ("x1",)]


def test_abandon_with_records_takes_next_name() -> None:
    policy = RotationPolicy(RecordConfig("x.pcap"))
    policy.place(1.0, RECORD)

    policy.abandon(kept_records=True)
    placement = policy.place(2.0, RECORD)

    assert placement == Placement("x.pcap000001", True, 1.0, 1)


def test_abandon_without_records_retries_name() -> None:
    policy = RotationPolicy(RecordConfig("x.pcap", rotate_bytes=120, ring_files=3))
    policy.place(1.0, RECORD)

    policy.abandon(kept_records=False)
    placement = policy.place(2.0, RECORD)

    assert placement is not None
    assert placement.path == "x.pcap0"
    assert placement.opens


@pytest.mark.parametrize(
    ("pattern", "seconds", "repeats"),
    [
        ("%H.pcap", 60, True),
        ("smtp.pcap", 10, True),
        ("%Y%m%d-%H%M.pcap", 60, False),
        ("%H.pcap", 3600, False),
        ("%s.pcap", 1, False),
    ],
)
def test_repeated_name_detection(pattern: str, seconds: int, repeats: bool) -> None:
    config = RecordConfig(pattern, rotate_seconds=seconds)

    assert (repeated_name(config, 1_700_000_000.0) is not None) == repeats
