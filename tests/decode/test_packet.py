"""Decoder tests on frames built by hand, one link type and header case at a time."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.decode import linktypes
from smtptop.decode.packet import Decoder, UnsupportedLinkType
from smtptop.decode.segment import ACK, FIN, PSH, SYN
from smtptop.tcp.events import GapReason, StreamData, StreamGap
from smtptop.tcp.reassembly import StreamReassembler
from .frames import (
    CLIENT_V4,
    CLIENT_V6,
    SERVER_V4,
    SERVER_V6,
    ethernet,
    ipv4,
    ipv6,
    loopback,
    sll,
    sll2,
    tcp,
)

EHLO = b"EHLO client.example\r\n"


def smtp_ipv4() -> bytes:
    return ipv4(tcp(sport=51000, dport=25, seq=1000, ack=2000) + EHLO)


def test_ethernet_ipv4_fields() -> None:
    decoder = Decoder(linktypes.ETHERNET)
    seg = decoder.decode(1.5, 7, ethernet(smtp_ipv4()))
    assert seg is not None
    assert seg.ts == 1.5
    assert seg.frame_no == 7
    assert seg.src == CLIENT_V4
    assert seg.dst == SERVER_V4
    assert (seg.sport, seg.dport) == (51000, 25)
    assert (seg.seq, seg.ack) == (1000, 2000)
    assert seg.flags == ACK | PSH
    assert seg.window == 65535
    assert seg.payload == EHLO
    assert seg.payload_len == len(EHLO)
    assert seg.options == b""
    assert seg.vlans == ()


def test_same_frame_sll2_sll_vlan() -> None:
    frames = {
        "sll2": (linktypes.LINUX_SLL2, sll2(smtp_ipv4())),
        "sll": (linktypes.LINUX_SLL, sll(smtp_ipv4())),
        "sll+vlan": (linktypes.LINUX_SLL, sll(smtp_ipv4(), vlans=(42,))),
        "ethernet": (linktypes.ETHERNET, ethernet(smtp_ipv4())),
    }
    decoded = {}
    for name, (link_type, frame) in frames.items():
        seg = Decoder(link_type).decode(0.0, 1, frame)
        assert seg is not None, name
        decoded[name] = seg
    for name, seg in decoded.items():
        assert (seg.sport, seg.dport, seg.seq, seg.ack) == (51000, 25, 1000, 2000), name
        assert seg.payload == EHLO, name
        assert (seg.src, seg.dst) == (CLIENT_V4, SERVER_V4), name
    assert decoded["sll+vlan"].vlans == (42,)
    assert decoded["sll"].vlans == ()
    assert decoded["sll2"].vlans == ()


def test_sll2_with_vlan_tag() -> None:
    seg = Decoder(linktypes.LINUX_SLL2).decode(0.0, 1, sll2(smtp_ipv4(), vlans=(7,)))
    assert seg is not None
    assert seg.vlans == (7,)
    assert seg.payload == EHLO


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8, 0x9100])
def test_ethernet_stacked_vlans(tpid: int) -> None:
    seg = Decoder(linktypes.ETHERNET).decode(0.0, 1, ethernet(smtp_ipv4(), vlans=(30, 20, 10), tpid=tpid))
    assert seg is not None
    assert seg.vlans == (30, 20, 10)
    assert seg.payload == EHLO


def test_vlan_id_masks_priority_bits() -> None:
    frame = ethernet(smtp_ipv4(), vlans=(0xE000 | 100,))
    seg = Decoder(linktypes.ETHERNET).decode(0.0, 1, frame)
    assert seg is not None
    assert seg.vlans == (100,)


def test_ethernet_padding_ignored() -> None:
    # A bare SYN is 54 bytes, below Ethernet's 60-byte minimum, so senders pad it.
    frame = ethernet(ipv4(tcp(flags=SYN))) + b"\0" * 6
    seg = Decoder(linktypes.ETHERNET).decode(0.0, 1, frame)
    assert seg is not None
    assert seg.payload == b""
    assert seg.payload_len == 0
    assert not seg.truncated


def test_ipv4_options_via_ihl() -> None:
    frame = ethernet(ipv4(tcp() + EHLO, options=b"\x01\x01\x01\x00"))
    seg = Decoder(linktypes.ETHERNET).decode(0.0, 1, frame)
    assert seg is not None
    assert seg.payload == EHLO


def test_tcp_options_returned_raw() -> None:
    mss = b"\x02\x04\x05\xb4"
    seg = Decoder(linktypes.RAW).decode(0.0, 1, ipv4(tcp(flags=SYN, options=mss)))
    assert seg is not None
    assert seg.options == mss
    assert seg.payload_len == 0


def test_snaplen_cut_payload() -> None:
    payload = bytes(range(256)) * 6  # 1536 bytes; 1460 of them fit in a 1500-byte packet
    full = ethernet(ipv4(tcp(seq=5000) + payload[:1460]))
    assert len(full) == 1514
    decoder = Decoder(linktypes.ETHERNET)
    seg = decoder.decode(0.0, 1, full[:96])
    assert seg is not None
    assert seg.payload_len == 1460
    assert seg.payload == payload[: 96 - 54]
    assert seg.truncated
    assert decoder.truncated == 0

    stream = StreamReassembler()
    events = stream.add(seg.seq, seg.payload, seg.payload_len, seg.ts)
    assert events == [StreamData(payload[:42], 0.0), StreamGap(1460 - 42, 0.0, GapReason.NOT_CAPTURED)]
    assert stream.next_seq == 5000 + 1460


def test_cut_inside_tcp_header() -> None:
    decoder = Decoder(linktypes.ETHERNET)
    frame = ethernet(smtp_ipv4())
    assert decoder.decode(0.0, 1, frame[: 14 + 20 + 12]) is None
    assert decoder.truncated == 1
    assert decoder.malformed == 0


def test_cut_inside_options_keeps_segment() -> None:
    frame = ipv4(tcp(options=b"\x01\x01\x08\x0a" + b"\0" * 8) + EHLO)
    seg = Decoder(linktypes.RAW).decode(0.0, 1, frame[: 20 + 24])
    assert seg is not None
    assert seg.options == b"\x01\x01\x08\x0a"
    assert seg.payload == b""
    assert seg.payload_len == len(EHLO)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (ipv4(tcp(data_offset=4) + EHLO), "data offset below 5"),
        (ipv4(tcp(data_offset=15)), "data offset past the IP length"),
        (ipv4(tcp(), total_len=19), "IP total length below the header"),
        (ipv4(tcp())[:0] + bytes([0x44]) + ipv4(tcp())[1:], "IHL below 5"),
        (ipv4(tcp(), total_len=30), "IP length leaves no room for TCP"),
    ],
)
def test_malformed_headers(frame: bytes, reason: str) -> None:
    decoder = Decoder(linktypes.RAW)
    assert decoder.decode(0.0, 1, frame) is None, reason
    assert decoder.malformed == 1, reason


def test_ipv4_total_length_zero_uses_captured() -> None:
    frame = ipv4(tcp() + EHLO, total_len=0)
    seg = Decoder(linktypes.RAW).decode(0.0, 1, frame)
    assert seg is not None
    assert seg.payload == EHLO
    assert seg.payload_len == len(EHLO)


@pytest.mark.parametrize("fragment", [0x2000, 0x0010, 0x2010])
def test_ipv4_fragments_skipped(fragment: int) -> None:
    decoder = Decoder(linktypes.RAW)
    assert decoder.decode(0.0, 1, ipv4(tcp() + EHLO, fragment=fragment)) is None
    assert decoder.fragments == 1


def test_ipv4_dont_fragment_is_decoded() -> None:
    seg = Decoder(linktypes.RAW).decode(0.0, 1, ipv4(tcp() + EHLO, fragment=0x4000))
    assert seg is not None


def test_non_tcp_counted() -> None:
    decoder = Decoder(linktypes.ETHERNET)
    assert decoder.decode(0.0, 1, ethernet(ipv4(b"\0" * 8, protocol=17))) is None
    assert decoder.decode(0.0, 2, ethernet(b"\0" * 28, ethertype=0x0806)) is None
    assert decoder.non_tcp == 2


def test_ipv6_with_extension_headers() -> None:
    hop_by_hop = bytes([60, 0]) + b"\x01\x04\0\0\0\0"  # next: destination options; PadN
    dest_options = bytes([43, 0]) + b"\x01\x04\0\0\0\0"  # next: routing
    routing = bytes([44, 0, 0, 0]) + b"\0\0\0\0"  # next: fragment; type 0, no segments left
    atomic_fragment = bytes([6, 0, 0, 0]) + b"\0\0\0\1"  # next: TCP; offset 0, M clear
    body = hop_by_hop + dest_options + routing + atomic_fragment + tcp(sport=40000, dport=587) + EHLO
    seg = Decoder(linktypes.ETHERNET).decode(0.0, 1, ethernet(ipv6(body, next_header=0), ethertype=0x86DD))
    assert seg is not None
    assert (seg.src, seg.dst) == (CLIENT_V6, SERVER_V6)
    assert (seg.sport, seg.dport) == (40000, 587)
    assert seg.payload == EHLO
    assert seg.payload_len == len(EHLO)


def test_ipv6_fragment_skipped() -> None:
    fragment = bytes([6, 0]) + struct.pack("!H", 1) + b"\0\0\0\1"  # M flag set
    decoder = Decoder(linktypes.IPV6)
    assert decoder.decode(0.0, 1, ipv6(fragment + tcp() + EHLO, next_header=44)) is None
    assert decoder.fragments == 1


def test_ipv6_extension_past_length_malformed() -> None:
    hop_by_hop = bytes([6, 10]) + b"\0" * 6  # claims 88 bytes
    decoder = Decoder(linktypes.IPV6)
    assert decoder.decode(0.0, 1, ipv6(hop_by_hop + tcp(), next_header=0)) is None
    assert decoder.malformed == 1


@pytest.mark.parametrize("link_type", [linktypes.NULL, linktypes.LOOP])
@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("family", [2, 10, 24, 28, 30])
def test_loopback_both_byte_orders(link_type: int, byteorder: str, family: int) -> None:
    if family == 2:
        l3 = ipv4(tcp() + EHLO)
    else:
        l3 = ipv6(tcp() + EHLO)
    seg = Decoder(link_type).decode(0.0, 1, loopback(l3, family, byteorder))
    assert seg is not None
    assert seg.payload == EHLO


def test_loopback_unknown_family_non_tcp() -> None:
    decoder = Decoder(linktypes.NULL)
    assert decoder.decode(0.0, 1, loopback(ipv4(tcp()), 7, "little")) is None
    assert decoder.non_tcp == 1


@pytest.mark.parametrize("link_type", [linktypes.RAW_12, linktypes.RAW_14, linktypes.RAW])
def test_raw_ip_both_versions(link_type: int) -> None:
    decoder = Decoder(link_type)
    assert decoder.decode(0.0, 1, ipv4(tcp() + EHLO)) is not None
    assert decoder.decode(0.0, 2, ipv6(tcp() + EHLO)) is not None


def test_ipv4_link_type_rejects_ipv6() -> None:
    decoder = Decoder(linktypes.IPV4)
    assert decoder.decode(0.0, 1, ipv4(tcp() + EHLO)) is not None
    assert decoder.decode(0.0, 2, ipv6(tcp() + EHLO)) is None
    assert decoder.malformed == 1


def test_unsupported_link_type_message() -> None:
    with pytest.raises(UnsupportedLinkType) as caught:
        Decoder(182)
    message = str(caught.value)
    assert "182" in message
    assert "1 (EN10MB)" in message
    assert "276 (LINUX_SLL2)" in message
    assert caught.value.link_type == 182


def test_fin_flag_decoded() -> None:
    seg = Decoder(linktypes.RAW).decode(0.0, 1, ipv4(tcp(flags=FIN | ACK)))
    assert seg is not None
    assert seg.flags == FIN | ACK


@settings(max_examples=300, deadline=None)
@given(link_type=st.sampled_from(sorted(linktypes.SUPPORTED)), data=st.binary(max_size=200))
def test_fuzz_random_bytes_never_raise(link_type: int, data: bytes) -> None:
    decoder = Decoder(link_type)
    seg = decoder.decode(0.0, 1, data)
    counted = decoder.non_tcp + decoder.truncated + decoder.malformed + decoder.fragments
    assert (seg is None) == (counted == 1)


@settings(max_examples=300, deadline=None)
@given(
    link_type=st.sampled_from(sorted(linktypes.SUPPORTED)),
    cut=st.integers(min_value=0, max_value=120),
    flip=st.lists(st.tuples(st.integers(0, 119), st.integers(0, 255)), max_size=4),
)
def test_fuzz_mutated_frames_never_raise(link_type: int, cut: int, flip: list[tuple[int, int]]) -> None:
    l3 = smtp_ipv4()
    frames = {
        linktypes.ETHERNET: ethernet(l3, vlans=(5,)),
        linktypes.LINUX_SLL: sll(l3),
        linktypes.LINUX_SLL2: sll2(l3),
        linktypes.NULL: loopback(l3, 2, "little"),
        linktypes.LOOP: loopback(l3, 2, "big"),
        linktypes.IPV6: ipv6(bytes([6, 0]) + b"\0" * 6 + tcp() + EHLO, next_header=60),
    }
    frame = bytearray(frames.get(link_type, l3)[:cut])
    for index, value in flip:
        if index < len(frame):
            frame[index] = value
    Decoder(link_type).decode(0.0, 1, bytes(frame))
