"""Link-layer header type numbers that the decoder understands.

The numbers are the LINKTYPE_/DLT_ values written in pcap and pcapng file
headers and returned by libpcap's ``datalink()``; the names are the ones
tcpdump prints. Several raw-IP numbers exist because BSD systems assigned
their own DLT values before LINKTYPE_RAW (101) was fixed for files.
"""

from __future__ import annotations

NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
ETHERNET = 1
RAW_12 = 12  # DLT_RAW on most systems
RAW_14 = 14  # DLT_RAW on some BSDs
RAW = 101  # LINKTYPE_RAW: starts with the IPv4 or IPv6 header
LOOP = 108  # OpenBSD loopback: address family in network byte order
LINUX_SLL = 113  # Linux "cooked" capture v1 (tcpdump -i any)
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276  # Linux "cooked" capture v2

NAMES: dict[int, str] = {
    NULL: "NULL",
    ETHERNET: "EN10MB",
    RAW_12: "RAW",
    RAW_14: "RAW",
    RAW: "RAW",
    LOOP: "LOOP",
    LINUX_SLL: "LINUX_SLL",
    IPV4: "IPV4",
    IPV6: "IPV6",
    LINUX_SLL2: "LINUX_SLL2",
}

SUPPORTED: frozenset[int] = frozenset(NAMES)


def link_type_name(link_type: int) -> str:
    """Return the tcpdump name of ``link_type``, or ``DLT <n>`` for an unknown number."""
    return NAMES.get(link_type, f"DLT {link_type}")
