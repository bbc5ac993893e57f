"""Decode every public capture, and compare TCP segment counts with tshark."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

from smtptop.decode.packet import Decoder, UnsupportedLinkType
from smtptop.decode.segment import Segment
from smtptop.tcp.connection import TcpConnection
from smtptop.tcp.events import StreamData

PUBLIC = Path(__file__).resolve().parents[1] / "data" / "public"
CAPTURES = sorted(p for p in PUBLIC.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))
TSHARK = shutil.which("tshark")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def open_reader(path: Path) -> tuple[int, Iterator[tuple[float, bytes]]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    stream = io.BytesIO(raw)
    reader: dpkt.pcap.Reader | dpkt.pcapng.Reader
    reader = dpkt.pcapng.Reader(stream) if raw[:4] == PCAPNG_MAGIC else dpkt.pcap.Reader(stream)
    # The pcap header's link-type field also carries FCS-length bits above
    # bit 16, which some writers set and dpkt passes through.
    return reader.datalink() & 0xFFFF, iter(reader)


def read_segments(path: Path) -> tuple[Decoder, list[Segment]]:
    link_type, records = open_reader(path)
    decoder = Decoder(link_type)
    segments: list[Segment] = []
    frame_no = 0
    while True:
        try:
            ts, frame = next(records)
        except StopIteration:
            break
        except (ValueError, dpkt.NeedData, dpkt.UnpackError, EOFError):
            break  # a corrupt record: dpkt cannot go on reading this file
        frame_no += 1
        segment = decoder.decode(float(ts), frame_no, bytes(frame))
        if segment is not None:
            segments.append(segment)
    return decoder, segments


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_every_capture_decodes(path: Path) -> None:
    try:
        open_reader(path)
    except (ValueError, dpkt.NeedData, dpkt.UnpackError) as error:
        pytest.skip(f"dpkt cannot open {path.name}: {error}")
    try:
        _, segments = read_segments(path)
    except UnsupportedLinkType:
        pytest.skip(f"{path.name} uses a link type the decoder does not support")
    connections: dict[tuple[object, ...], TcpConnection] = {}
    for segment in segments:
        ends = sorted([(segment.src, segment.sport), (segment.dst, segment.dport)])
        key = (segment.vlans, *ends)
        connection = connections.get(key)
        if connection is None:
            connection = connections[key] = TcpConnection.open(segment, frozenset({25, 465, 587}))
        connection.receive(segment)
        connection.expire(segment.ts)
    for connection in connections.values():
        connection.flush(float("inf"))


def test_unsupported_link_type_file() -> None:
    with pytest.raises(UnsupportedLinkType):
        read_segments(PUBLIC / "link-dlt182-unsupported.pcap")


def tshark_tcp_frames(path: Path, display_filter: str) -> int:
    assert TSHARK is not None
    result = subprocess.run(
        [TSHARK, "-r", str(path), "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(result.stdout.split())


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize(
    ("name", "display_filter"),
    [
        ("smtp-sv-multi-mail.pcap", "tcp"),
        ("smtp-sv-bdat-rset-null.pcap", "tcp"),
        ("smtp-sv-data-rejected.pcap", "tcp"),
        ("smtp-zeek-ipv6-client-only.pcap", "tcp"),
        ("link-sll2-http.pcap", "tcp"),
        ("link-vlan-qinqinq.pcap", "tcp"),
        # tshark also matches "tcp" on TCP headers quoted inside ICMP errors
        # and on a few UDP frames here; the decoder returns neither.
        ("smtp-zeek-auth-multi.pcap", "tcp && !icmp && !udp"),
    ],
)
def test_tcp_segment_count_matches_tshark(name: str, display_filter: str) -> None:
    _, segments = read_segments(PUBLIC / name)
    assert len(segments) == tshark_tcp_frames(PUBLIC / name, display_filter)


def test_vlan_collisions_keep_three_flows() -> None:
    _, segments = read_segments(PUBLIC / "link-vlan-collisions.pcap")
    assert {segment.vlans for segment in segments} == {(), (42,), (10, 20)}


def test_fast_open_capture_delivers_syn_data() -> None:
    _, segments = read_segments(PUBLIC / "link-sll-tcp-fastopen.pcap")
    syn_data = [s for s in segments if s.flags & 0x02 and not s.flags & 0x10 and s.payload]
    assert syn_data
    first = syn_data[0]
    connection = TcpConnection.open(first, frozenset())
    _, events = connection.receive(first)
    assert events == [StreamData(first.payload, first.ts)]
