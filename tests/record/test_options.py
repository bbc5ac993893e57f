"""RecordConfig validation and tcpdump's -C size units."""

from __future__ import annotations

import pytest

from smtptop.record import RecordConfig, RecordError, parse_file_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # tcpdump(8): a bare number counts millions of bytes, not MiB.
        ("1", 1_000_000),
        ("250", 250_000_000),
        # k, m and g switch to 1,024, 1,048,576 and 1,073,741,824 bytes.
        ("10k", 10 * 1024),
        ("10K", 10 * 1024),
        ("3m", 3 * 1_048_576),
        ("3M", 3 * 1_048_576),
        ("2g", 2 * 1_073_741_824),
        ("2G", 2 * 1_073_741_824),
    ],
)
def test_file_size_units(text: str, expected: int) -> None:
    assert parse_file_size(text) == expected


@pytest.mark.parametrize("text", ["", "k", "0", "-1", "1.5", "1x", "10 kb", "1e6"])
def test_file_size_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="-C"):
        parse_file_size(text)


def test_config_ring_needs_rotation() -> None:
    with pytest.raises(RecordError, match="-W 3: needs -C"):
        RecordConfig("x.pcap", ring_files=3)


def test_config_size_below_one_record() -> None:
    with pytest.raises(RecordError, match="too small"):
        RecordConfig("x.pcap", rotate_bytes=39)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rotate_seconds": 0}, "-G 0"),
        ({"rotate_bytes": 1000, "ring_files": 0}, "-W 0"),
        ({"keep_files": -1}, "--keep -1"),
        ({"queue_packets": 0}, "queue size 0"),
        ({"user": ""}, "-Z"),
    ],
)
def test_config_out_of_range(fields: dict[str, int | str], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        RecordConfig("x.pcap", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", ["", "-", "/var/tmp/"])
def test_config_pattern_rejected(pattern: str) -> None:
    with pytest.raises(RecordError, match="-w"):
        RecordConfig(pattern)
