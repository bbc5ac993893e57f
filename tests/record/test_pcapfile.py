"""The pcap writer: timestamps, lengths and the file header, checked with tshark and capinfos."""

from __future__ import annotations

import io
import os
from decimal import Decimal
from pathlib import Path

import pytest

from smtptop.record.pcapfile import PcapFile, PcapWriteError, dump, file_link_type, split_timestamp
from tests.record.helpers import capinfos, frame_rows, read_frames, requires_wireshark_tools


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (0.9999996, (1, 0)),
        (1.0000004, (1, 0)),
        (1254722767.492060, (1254722767, 492060)),
        (1785968796.739158, (1785968796, 739158)),
        (-1.5, (0, 0)),
    ],
)
def test_split_timestamp(ts: float, expected: tuple[int, int]) -> None:
    assert split_timestamp(ts) == expected


def test_split_timestamp_never_full_second() -> None:
    for step in range(2000):
        ts = 1_700_000_000 + step * 0.000_000_37
        _, micros = split_timestamp(ts)
        assert 0 <= micros < 1_000_000


def test_raw_ip_link_type_for_files() -> None:
    # libpcap's DLT_RAW is 12 on Linux; files carry LINKTYPE_RAW, 101.
    assert file_link_type(12) == 101
    assert file_link_type(1) == 1
    assert file_link_type(113) == 113


@requires_wireshark_tools
@pytest.mark.parametrize(
    "name",
    [
        "tcp-zeek-snaplen96.pcap",
        "smtp-zeek-auth-multi.pcap",
        "smtp-sv-pipelining-null.pcap",
        "link-sll2-http.pcap",
    ],
)
def test_dump_matches_input(public_captures: Path, tmp_path: Path, name: str) -> None:
    source = public_captures / name
    frames, link_type, snaplen = read_frames(source)
    target = tmp_path / "copy.pcap"

    with open(target, "wb") as stream:
        count = dump(stream, link_type, snaplen, frames)

    assert count == len(frames)
    assert frame_rows(target) == frame_rows(source)
    assert capinfos(target)["File encapsulation"] == capinfos(source)["File encapsulation"]
    copied, copied_link_type, _ = read_frames(target)
    assert copied_link_type == link_type
    assert [data for _, data, _ in copied] == [data for _, data, _ in frames]


@requires_wireshark_tools
def test_nanosecond_input_rounds(public_captures: Path, tmp_path: Path) -> None:
    source = public_captures / "link-sll-nanosec-handshake.pcap"
    frames, link_type, snaplen = read_frames(source)
    target = tmp_path / "micro.pcap"

    with open(target, "wb") as stream:
        dump(stream, link_type, snaplen, frames)

    # Frame times are floats, which near 1.4e9 s are spaced about 0.24 us
    # apart, so the written microsecond may be the one next to exact rounding.
    exact = [Decimal(row[0]) for row in frame_rows(source)]
    written = [Decimal(row[0]) for row in frame_rows(target)]
    assert len(written) == len(exact)
    for got, want in zip(written, exact):
        assert got == got.quantize(Decimal("0.000001"))
        assert abs(got - want) <= Decimal("0.00000075")
    assert capinfos(target)["Packet size limit"] == f"file hdr: {snaplen} bytes"


def test_failed_write_truncates_to_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "broken.pcap"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    pcap = PcapFile(fd, str(path), 1, 65535)
    pcap.append(1, b"\x00" * 100)
    pcap.flush()
    size_after_one = os.path.getsize(path)
    os.close(fd)
    # A read-only descriptor makes the next write fail (EBADF) after one whole record.
    pcap.fd = os.open(path, os.O_RDONLY)
    pcap.append(2, b"\x01" * 100)

    with pytest.raises(PcapWriteError) as failure:
        pcap.flush()

    assert failure.value.kept == []
    assert failure.value.lost == [2]
    assert pcap.records == 1
    assert os.path.getsize(path) == size_after_one
    pcap.close()


def test_dump_counts_frames() -> None:
    stream = io.BytesIO()

    count = dump(stream, 1, 0, [(1.0, b"abc", 3), (2.0, b"de", 60)])

    assert count == 2
    assert len(stream.getvalue()) == 24 + 16 + 3 + 16 + 2
