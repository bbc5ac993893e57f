"""Light link, IPv4/IPv6 and TCP header decoding: frame bytes in, ``Segment`` out.

This is the per-packet hot path, so it reads the few header fields the flow
tracker needs with ``struct.unpack_from`` and slices, and builds no dpkt
objects. The full dissection for the detail pane happens elsewhere, only for
packets on screen.

Every frame that does not yield a segment is counted in exactly one of the
``Decoder`` counters (``non_tcp``, ``truncated``, ``malformed``,
``fragments``). ``decode`` never raises on any input bytes.

Lengths: ``Segment.payload_len`` comes from the IP length fields, so it is the
payload length on the wire. Bytes after the IP length (Ethernet trailer
padding) are ignored. When the capture's snaplen cut the frame, ``payload``
holds only the captured part and is shorter than ``payload_len``.

Must not import dpkt, pcap, the UI or anything that does I/O.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from smtptop.decode import linktypes
from smtptop.decode.segment import Segment

logger = logging.getLogger(__name__)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
# 802.1Q C-tag, 802.1ad S-tag, and the pre-standard 0x9100 used for QinQ.
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))

AF_INET = 2
# AF_INET6 differs by OS: Linux 10, NetBSD/OpenBSD/BSD/OS 24, FreeBSD 28, macOS 30.
AF_INET6_VALUES = frozenset((10, 24, 28, 30))

IPPROTO_TCP = 6
# IPv6 extension headers the decoder walks past (RFC 8200, section 4).
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_AUTH = 51
IPV6_DEST_OPTIONS = 60
_IPV6_SKIPPABLE = frozenset((IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_DEST_OPTIONS))

ETHERNET_HEADER_LEN = 14
SLL_HEADER_LEN = 16
SLL2_HEADER_LEN = 20
LOOPBACK_HEADER_LEN = 4
IPV4_MIN_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
TCP_MIN_HEADER_LEN = 20

_U16 = struct.Struct("!H")
_VLAN_TAG = struct.Struct("!HH")  # TCI, then the encapsulated EtherType
_LOOPBACK_AF = struct.Struct("<I")
_IPV4 = struct.Struct("!BxHxxHxB2x4s4s")  # version/IHL, total length, flags/offset, protocol, src, dst
_IPV6 = struct.Struct("!IHBx16s16s")  # version/class/label, payload length, next header, src, dst
_TCP = struct.Struct("!HHIIBBH")  # ports, seq, ack, data offset, flags, window

_IPV4_FRAGMENT_BITS = 0x3FFF  # the MF flag and the 13-bit fragment offset (RFC 791)
_IPV6_FRAGMENT_BITS = 0xFFF9  # the 13-bit fragment offset and the M flag (RFC 8200, section 4.5)


class UnsupportedLinkType(ValueError):
    """Raised for a link-layer header type that the decoder cannot read."""

    def __init__(self, link_type: int) -> None:
        supported = ", ".join(
            f"{number} ({linktypes.link_type_name(number)})" for number in sorted(linktypes.SUPPORTED)
        )
        super().__init__(
            f"unsupported link-layer header type {link_type}; supported types: {supported}. "
            "Capture on an Ethernet interface or with -i any (Linux cooked capture)."
        )
        self.link_type = link_type


class Decoder:
    """Decode frames of one link type into TCP segments, counting what it skips.

    Counters:
      ``non_tcp``: frames that are not TCP over IPv4/IPv6 (ARP, UDP, ICMP...).
      ``truncated``: frames cut inside the link, IP or fixed TCP header.
      ``malformed``: header fields that contradict each other (IP version,
        IHL or data offset too small, IP length shorter than its headers).
      ``fragments``: IP fragments, which the decoder skips because rebuilding
        datagrams is not worth it for SMTP traffic, where fragments are rare.

    A segment whose TCP options are cut by the snaplen is still returned,
    with ``options`` holding the captured part and an empty payload.
    """

    __slots__ = ("link_type", "non_tcp", "truncated", "malformed", "fragments", "_decode_link")

    def __init__(self, link_type: int) -> None:
        decoders: dict[int, Callable[[float, int, bytes], Segment | None]] = {
            linktypes.NULL: self._decode_loopback,
            linktypes.LOOP: self._decode_loopback,
            linktypes.ETHERNET: self._decode_ethernet,
            linktypes.RAW_12: self._decode_raw,
            linktypes.RAW_14: self._decode_raw,
            linktypes.RAW: self._decode_raw,
            linktypes.LINUX_SLL: self._decode_sll,
            linktypes.LINUX_SLL2: self._decode_sll2,
            linktypes.IPV4: self._decode_ipv4_only,
            linktypes.IPV6: self._decode_ipv6_only,
        }
        decode_link = decoders.get(link_type)
        if decode_link is None:
            raise UnsupportedLinkType(link_type)
        self.link_type = link_type
        self.non_tcp = 0
        self.truncated = 0
        self.malformed = 0
        self.fragments = 0
        self._decode_link = decode_link
        logger.debug("decoder created for link type %d (%s)", link_type, linktypes.link_type_name(link_type))

    def decode(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        """Decode one captured frame; return None (and count why) when it contains no TCP segment."""
        return self._decode_link(ts, frame_no, data)

    # Link layers.

    def _decode_ethernet(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        if len(data) < ETHERNET_HEADER_LEN:
            self.truncated += 1
            return None
        (ethertype,) = _U16.unpack_from(data, 12)
        return self._decode_ethertype(ts, frame_no, data, ETHERNET_HEADER_LEN, ethertype)

    def _decode_sll(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        # SLL v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
        if len(data) < SLL_HEADER_LEN:
            self.truncated += 1
            return None
        (protocol,) = _U16.unpack_from(data, 14)
        return self._decode_ethertype(ts, frame_no, data, SLL_HEADER_LEN, protocol)

    def _decode_sll2(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        # SLL v2 moves the protocol to the front and adds the interface index.
        if len(data) < SLL2_HEADER_LEN:
            self.truncated += 1
            return None
        (protocol,) = _U16.unpack_from(data, 0)
        return self._decode_ethertype(ts, frame_no, data, SLL2_HEADER_LEN, protocol)

    def _decode_loopback(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        if len(data) < LOOPBACK_HEADER_LEN:
            self.truncated += 1
            return None
        # DLT_NULL stores the family in the capturing host's byte order, and some
        # writers do the same for DLT_LOOP, so accept both orders: every family
        # value is small, so the byte-swapped reading is the larger one.
        (little,) = _LOOPBACK_AF.unpack_from(data, 0)
        family = min(little, int.from_bytes(data[:4], "big"))
        if family == AF_INET:
            return self._decode_ipv4(ts, frame_no, data, LOOPBACK_HEADER_LEN, ())
        if family in AF_INET6_VALUES:
            return self._decode_ipv6(ts, frame_no, data, LOOPBACK_HEADER_LEN, ())
        self.non_tcp += 1
        return None

    def _decode_raw(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        if not data:
            self.truncated += 1
            return None
        version = data[0] >> 4
        if version == 4:
            return self._decode_ipv4(ts, frame_no, data, 0, ())
        if version == 6:
            return self._decode_ipv6(ts, frame_no, data, 0, ())
        self.malformed += 1
        return None

    def _decode_ipv4_only(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        return self._decode_ipv4(ts, frame_no, data, 0, ())

    def _decode_ipv6_only(self, ts: float, frame_no: int, data: bytes) -> Segment | None:
        return self._decode_ipv6(ts, frame_no, data, 0, ())

    def _decode_ethertype(
        self, ts: float, frame_no: int, data: bytes, offset: int, ethertype: int
    ) -> Segment | None:
        """Walk stacked VLAN tags, then dispatch on the innermost EtherType."""
        vlans: tuple[int, ...] = ()
        while ethertype in VLAN_TPIDS:
            if len(data) < offset + 4:
                self.truncated += 1
                return None
            tci, ethertype = _VLAN_TAG.unpack_from(data, offset)
            vlans += (tci & 0x0FFF,)
            offset += 4
        if ethertype == ETHERTYPE_IPV4:
            return self._decode_ipv4(ts, frame_no, data, offset, vlans)
        if ethertype == ETHERTYPE_IPV6:
            return self._decode_ipv6(ts, frame_no, data, offset, vlans)
        self.non_tcp += 1
        return None

    # Network layer.

    def _decode_ipv4(
        self, ts: float, frame_no: int, data: bytes, offset: int, vlans: tuple[int, ...]
    ) -> Segment | None:
        captured = len(data) - offset
        if captured < IPV4_MIN_HEADER_LEN:
            self.truncated += 1
            return None
        version_ihl, total_len, fragment, protocol, src, dst = _IPV4.unpack_from(data, offset)
        header_len = (version_ihl & 0x0F) * 4
        if version_ihl >> 4 != 4 or header_len < IPV4_MIN_HEADER_LEN:
            self.malformed += 1
            return None
        if total_len == 0:
            # Frames sent with TCP segmentation offload are captured before the
            # NIC splits them and carry a total length of 0. Wireshark then
            # assumes the captured length, and so does this decoder.
            # NOTE: a snaplen-cut TSO frame therefore looks complete.
            total_len = captured
        if total_len < header_len:
            self.malformed += 1
            return None
        if captured < header_len:
            self.truncated += 1
            return None
        if protocol != IPPROTO_TCP:
            self.non_tcp += 1
            return None
        if fragment & _IPV4_FRAGMENT_BITS:
            self.fragments += 1
            return None
        ip_end = offset + total_len
        return self._decode_tcp(ts, frame_no, data, offset + header_len, ip_end, vlans, src, dst)

    def _decode_ipv6(
        self, ts: float, frame_no: int, data: bytes, offset: int, vlans: tuple[int, ...]
    ) -> Segment | None:
        captured = len(data) - offset
        if captured < IPV6_HEADER_LEN:
            self.truncated += 1
            return None
        version_class_label, payload_len, next_header, src, dst = _IPV6.unpack_from(data, offset)
        if version_class_label >> 28 != 6:
            self.malformed += 1
            return None
        if payload_len == 0:
            # A jumbogram (RFC 2675) or a GSO frame captured before the NIC split
            # it: the length is not in this field, so use the captured length.
            payload_len = captured - IPV6_HEADER_LEN
        ip_end = offset + IPV6_HEADER_LEN + payload_len
        position = offset + IPV6_HEADER_LEN

        # Each extension header moves position forward by at least 8 bytes and
        # must end inside the payload length, so this loop terminates.
        while next_header != IPPROTO_TCP:
            if next_header in _IPV6_SKIPPABLE or next_header == IPV6_AUTH:
                if position + 8 > ip_end:
                    self.malformed += 1
                    return None
                if len(data) < position + 2:
                    self.truncated += 1
                    return None
                following = data[position]
                if next_header == IPV6_AUTH:
                    header_len = (data[position + 1] + 2) * 4  # RFC 4302, section 2.2
                else:
                    header_len = (data[position + 1] + 1) * 8  # RFC 8200, section 4.3
                if position + header_len > ip_end:
                    self.malformed += 1
                    return None
            elif next_header == IPV6_FRAGMENT:
                if position + 8 > ip_end:
                    self.malformed += 1
                    return None
                if len(data) < position + 4:
                    self.truncated += 1
                    return None
                following = data[position]
                (offset_flags,) = _U16.unpack_from(data, position + 2)
                if offset_flags & _IPV6_FRAGMENT_BITS:
                    self.fragments += 1
                    return None
                # An atomic fragment (offset 0, no M flag) is a whole packet (RFC 6946).
                header_len = 8
            else:
                self.non_tcp += 1
                return None
            position += header_len
            next_header = following
        return self._decode_tcp(ts, frame_no, data, position, ip_end, vlans, src, dst)

    # Transport layer.

    def _decode_tcp(
        self,
        ts: float,
        frame_no: int,
        data: bytes,
        offset: int,
        ip_end: int,
        vlans: tuple[int, ...],
        src: bytes,
        dst: bytes,
    ) -> Segment | None:
        tcp_len = ip_end - offset  # from the IP length fields, so wire length
        if tcp_len < TCP_MIN_HEADER_LEN:
            self.malformed += 1
            return None
        if len(data) - offset < TCP_MIN_HEADER_LEN:
            self.truncated += 1
            return None
        sport, dport, seq, ack, data_offset, flags, window = _TCP.unpack_from(data, offset)

        header_len = (data_offset >> 4) * 4
        # RFC 9293, section 3.1: the data offset counts 32-bit words and the
        # header is at least 5 of them, and it cannot extend past the IP payload.
        if header_len < TCP_MIN_HEADER_LEN or header_len > tcp_len:
            self.malformed += 1
            return None

        # Slicing stops at ip_end so Ethernet trailer padding never becomes
        # payload, and at the end of the data when the snaplen cut the frame.
        payload_start = offset + header_len
        options = data[offset + TCP_MIN_HEADER_LEN : min(payload_start, ip_end)]
        payload = data[payload_start:ip_end]
        return Segment(
            ts,
            frame_no,
            vlans,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            payload,
            tcp_len - header_len,
            options,
        )
