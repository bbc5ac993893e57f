"""Build link, IP and TCP headers by hand with struct, for decoder tests."""

from __future__ import annotations

import struct

from smtptop.decode.segment import ACK, PSH

CLIENT_V4 = bytes([192, 0, 2, 10])
SERVER_V4 = bytes([192, 0, 2, 25])
CLIENT_V6 = bytes.fromhex("20010db8000000000000000000000010")
SERVER_V6 = bytes.fromhex("20010db8000000000000000000000025")
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def tcp(
    sport: int = 51000,
    dport: int = 25,
    seq: int = 1000,
    ack: int = 2000,
    flags: int = ACK | PSH,
    window: int = 65535,
    options: bytes = b"",
    data_offset: int | None = None,
) -> bytes:
    words = data_offset if data_offset is not None else 5 + len(options) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, words << 4, flags, window, 0, 0) + options


def ipv4(
    payload: bytes,
    src: bytes = CLIENT_V4,
    dst: bytes = SERVER_V4,
    protocol: int = 6,
    total_len: int | None = None,
    fragment: int = 0,
    options: bytes = b"",
) -> bytes:
    ihl = 5 + len(options) // 4
    length = total_len if total_len is not None else ihl * 4 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, fragment, 64, protocol, 0, src, dst)
    return header + options + payload


def ipv6(
    payload: bytes,
    src: bytes = CLIENT_V6,
    dst: bytes = SERVER_V6,
    next_header: int = 6,
    payload_len: int | None = None,
) -> bytes:
    length = payload_len if payload_len is not None else len(payload)
    return struct.pack("!IHBB16s16s", 6 << 28, length, next_header, 64, src, dst) + payload


def vlan_tags(vlans: tuple[int, ...], ethertype: int, tpid: int = 0x8100) -> tuple[int, bytes]:
    """Return the outer EtherType and the tag bytes that follow it."""
    if not vlans:
        return ethertype, b""
    tags = b""
    inner_types = [tpid] * (len(vlans) - 1) + [ethertype]
    for vid, inner in zip(vlans, inner_types):
        tags += struct.pack("!HH", vid, inner)
    return tpid, tags


def ethernet(l3: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = (), tpid: int = 0x8100) -> bytes:
    outer, tags = vlan_tags(vlans, ethertype, tpid)
    return MAC_B + MAC_A + struct.pack("!H", outer) + tags + l3


def sll(l3: bytes, protocol: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    outer, tags = vlan_tags(vlans, protocol)
    # packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\0\0", outer) + tags + l3


def sll2(l3: bytes, protocol: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    outer, tags = vlan_tags(vlans, protocol)
    # protocol, reserved, interface index 2, ARPHRD_ETHER, packet type 0, address length 6
    return struct.pack("!HHIHBB8s", outer, 0, 2, 1, 0, 6, MAC_A + b"\0\0") + tags + l3


def loopback(l3: bytes, family: int, byteorder: str) -> bytes:
    return family.to_bytes(4, byteorder) + l3  # type: ignore[arg-type]
