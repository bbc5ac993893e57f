"""TLS record framing (RFC 8446 section 5.1) over TCP chunks of any size, checked against tshark."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.tls.records import (
    ALERT,
    APPLICATION_DATA,
    HANDSHAKE,
    MAX_FRAGMENT_LENGTH,
    RecordReader,
    TlsRecord,
)
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls.streams import follow_tcp, tcp_stream_ids, tls_chunks, tshark_fields

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")

# Captures with TLS records, and the decode-as rules tshark needs to see them.
TLS_CAPTURES = [
    ("tls12-rsa-pcapfs.pcap", ()),
    ("tls12-tls13-scapy-nss.pcap", ()),
    ("starttls-keylog-port25.pcapng", ()),
    ("starttls-zeek-google.pcap", ()),
    ("tls13-chacha20-hotplace.pcapng", ()),
    ("smtps-465-ndpi-clienthello.pcapng", ()),
    ("implicit-tls-587-certgrep.pcapng", ("-d", "tcp.port==587,tls")),
    ("starttls-keylog-port2525.pcapng", ("-d", "tcp.port==2525,smtp")),
    ("tls12-allciphers-pcapfs.pcap", ()),
    ("tls12-zeek-decryption.pcap", ()),
    ("tls12-tcpfrag-scapy.pcap.gz", ()),
    ("tls12-renegotiation-hotplace.pcapng", ()),
    ("tls-null-cipher-keylog.pcapng", ()),
    ("smtp-sv-errors-mixed.pcap", ()),
]
# starttls-ndpi-v4-v6.pcap is left out: segments missing from its IPv6 session
# break record framing, as they should.


def record_bytes(content_type: int, fragment: bytes, version: int = 0x0303) -> bytes:
    return (
        bytes([content_type])
        + version.to_bytes(2, "big")
        + len(fragment).to_bytes(2, "big")
        + fragment
    )


def feed_all(reader: RecordReader, chunks: list[bytes]) -> list[TlsRecord]:
    records = []
    for index, chunk in enumerate(chunks):
        records += reader.feed(chunk, float(index))
    return records


def client_hello_chunks() -> list[bytes]:
    """Return the client's TLS chunks of the SMTPS capture (one ClientHello record)."""
    followed = follow_tcp(PUBLIC_CAPTURES / "smtps-465-ndpi-clienthello.pcapng", 0)
    return tls_chunks(followed.chunks, from_node0=True)


@needs_tshark
def test_client_hello_one_byte_at_a_time() -> None:
    data = b"".join(client_hello_chunks())
    reader = RecordReader()
    records = feed_all(reader, [data[i : i + 1] for i in range(len(data))])

    assert len(records) == 1
    assert records[0].content_type == HANDSHAKE
    assert records[0].fragment == data[5:]
    # The header's first byte came in chunk 0 and the last byte in the last chunk.
    assert records[0].first_ts == 0.0
    assert records[0].ts == float(len(data) - 1)
    assert not reader.broken


def test_several_records_in_one_chunk() -> None:
    data = (
        record_bytes(HANDSHAKE, b"abc") + record_bytes(ALERT, b"\x01\x00") + record_bytes(23, b"")
    )
    records = RecordReader().feed(data, 7.0)

    assert [r.content_type for r in records] == [HANDSHAKE, ALERT, APPLICATION_DATA]
    assert [r.fragment for r in records] == [b"abc", b"\x01\x00", b""]
    assert all(r.first_ts == 7.0 and r.ts == 7.0 for r in records)


def test_record_completed_by_later_chunk() -> None:
    data = record_bytes(HANDSHAKE, b"x" * 100) + record_bytes(APPLICATION_DATA, b"y" * 10)
    reader = RecordReader()

    assert reader.feed(data[:3], 1.0) == []
    assert reader.feed(data[3:50], 2.0) == []
    first = reader.feed(data[50:110], 3.0)
    second = reader.feed(data[110:], 4.0)

    assert first == [TlsRecord(HANDSHAKE, 0x0303, b"x" * 100, 1.0, 3.0)]
    # The second header started in the chunk captured at 3.0.
    assert second == [TlsRecord(APPLICATION_DATA, 0x0303, b"y" * 10, 3.0, 4.0)]


def test_longest_fragment_accepted() -> None:
    longest = record_bytes(APPLICATION_DATA, bytes(MAX_FRAGMENT_LENGTH))
    reader = RecordReader()
    records = reader.feed(longest, 0.0)

    assert len(records) == 1
    assert len(records[0].fragment) == 2**14 + 2048
    assert not reader.broken


def test_too_long_fragment_breaks() -> None:
    header = b"\x17\x03\x03" + (MAX_FRAGMENT_LENGTH + 1).to_bytes(2, "big")
    reader = RecordReader()

    assert reader.feed(header + b"data", 0.0) == []
    assert reader.broken
    assert reader.leftover == header + b"data"


def test_alert_then_plaintext_reply() -> None:
    # A server rejects the handshake with a fatal handshake_failure alert and
    # goes on in plaintext (RFC 3207 section 4 reply 454).
    alert = record_bytes(ALERT, b"\x02\x28")
    reply = b"454 4.7.0 TLS not available due to local problem\r\n"
    reader = RecordReader()

    records = reader.feed(alert + reply[:10], 1.0)
    more = reader.feed(reply[10:] + b"221 bye\r\n", 2.0)

    assert [(r.content_type, r.fragment) for r in records] == [(ALERT, b"\x02\x28")]
    assert more == []
    assert reader.broken
    assert reader.take_leftover() == reply + b"221 bye\r\n"
    assert reader.leftover == b""
    assert reader.feed(b"x", 3.0) == []
    assert reader.take_leftover() == b"x"


def test_plaintext_detected_on_first_byte() -> None:
    reader = RecordReader()
    assert reader.feed(b"4", 0.0) == []
    assert reader.broken
    assert reader.leftover == b"4"


def test_wrong_major_version_breaks() -> None:
    reader = RecordReader()
    reader.feed(b"\x16\x02", 0.0)
    assert reader.broken


def test_split_header_waits() -> None:
    reader = RecordReader()
    assert reader.feed(b"\x16\x03", 0.0) == []
    assert reader.feed(b"\x01\x00", 1.0) == []
    records = reader.feed(b"\x01Z", 2.0)

    assert not reader.broken
    assert records == [TlsRecord(HANDSHAKE, 0x0301, b"Z", 0.0, 2.0)]


def test_lost_sync_returns_nothing() -> None:
    reader = RecordReader()
    reader.feed(record_bytes(HANDSHAKE, b"abcdef")[:7], 0.0)
    reader.lose_sync()

    assert not reader.synced
    assert reader.feed(record_bytes(HANDSHAKE, b"abc"), 1.0) == []
    assert not reader.broken


RECORD_FIELDS = [
    "tls.record.content_type",
    "tls.record.opaque_type",
    "tls.record.version",
    "tls.record.length",
]


def tshark_records(row: dict[str, list[str]]) -> list[tuple[int, int, int]]:
    """Return (content type, version, length) of the records tshark shows in one frame.

    Without keys tshark names a TLS 1.3 encrypted record's type opaque_type
    instead of content_type. A direction sends its plaintext records before its
    encrypted ones, so within a frame the content_type values come first.
    """
    kinds = row["tls.record.content_type"] + row["tls.record.opaque_type"]
    versions = row["tls.record.version"]
    lengths = row["tls.record.length"]
    assert len(kinds) == len(versions) == len(lengths)
    return [
        (int(kind), int(version, 16), int(length))
        for kind, version, length in zip(kinds, versions, lengths)
    ]


@needs_tshark
@pytest.mark.parametrize("name, decode_as", TLS_CAPTURES)
def test_records_match_tshark(name: str, decode_as: tuple[str, ...]) -> None:
    pcap = PUBLIC_CAPTURES / name
    oracle = tshark_fields(
        pcap,
        "tls.record",
        ["tcp.stream", "tcp.srcport", *RECORD_FIELDS],
        decode_as,
    )
    compared = 0
    for stream in tcp_stream_ids(pcap):
        followed = follow_tcp(pcap, stream)
        for from_node0 in (True, False):
            chunks = tls_chunks(followed.chunks, from_node0)
            records = feed_all(RecordReader(), chunks)
            rows = [
                row
                for row in oracle
                if int(row["tcp.stream"][0]) == stream
                and (int(row["tcp.srcport"][0]) == followed.node0_port) == from_node0
            ]
            expected = [record for row in rows for record in tshark_records(row)]
            found = [(r.content_type, r.version, len(r.fragment)) for r in records]
            assert found == expected, f"{name} stream {stream} node0={from_node0}"
            compared += len(found)
    assert compared > 0


@needs_tshark
def test_plaintext_banner_on_smtps_port() -> None:
    # The server replies to a ClientHello on port 465 with a plaintext 220 banner.
    followed = follow_tcp(PUBLIC_CAPTURES / "smtps-465-ndpi-clienthello.pcapng", 0)
    server_data = b"".join(c.data for c in followed.chunks if not c.from_node0)
    reader = RecordReader()

    assert reader.feed(server_data, 0.0) == []
    assert reader.broken
    assert reader.take_leftover() == server_data
    assert server_data.startswith(b"220-")


@given(
    fragments=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
@settings(max_examples=200, deadline=None)
def test_any_split_same_records(fragments: list[bytes], cuts: list[int]) -> None:
    data = b"".join(record_bytes(HANDSHAKE, fragment) for fragment in fragments)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]

    records = feed_all(RecordReader(), chunks)

    assert [r.fragment for r in records] == fragments


@given(st.lists(st.binary(max_size=64), max_size=20))
@settings(max_examples=300, deadline=None)
def test_reader_never_raises(chunks: list[bytes]) -> None:
    reader = RecordReader()
    records = feed_all(reader, chunks)
    consumed = sum(5 + len(r.fragment) for r in records)
    # Every byte is in a record, in the leftover, or in the unfinished record.
    assert consumed + len(reader.leftover) <= sum(len(c) for c in chunks)
    if reader.broken:
        assert consumed + len(reader.leftover) == sum(len(c) for c in chunks)
