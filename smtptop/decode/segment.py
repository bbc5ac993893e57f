"""The TCP segment record that the decoder hands to the flow tracker.

A plain slotted class rather than a frozen dataclass: one is built per
packet, and slotted attribute assignment is the cheapest way to do that in
CPython. Nothing after the decoder mutates it.
"""

from __future__ import annotations

# TCP flag bits (RFC 9293, section 3.1).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


class Segment:
    """One decoded TCP segment.

    ``payload`` holds the captured payload bytes; ``payload_len`` is the
    payload length on the wire, taken from the IP length fields. When the
    capture's snaplen cut the frame, ``len(payload) < payload_len``.
    Addresses are packed bytes (4 for IPv4, 16 for IPv6) so that the flow
    key is cheap to hash; ``smtptop.text.addresses`` formats them.
    """

    __slots__ = (
        "ts",
        "frame_no",
        "vlans",
        "src",
        "dst",
        "sport",
        "dport",
        "seq",
        "ack",
        "flags",
        "window",
        "payload",
        "payload_len",
        "options",
    )

    def __init__(
        self,
        ts: float,
        frame_no: int,
        vlans: tuple[int, ...],
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload: bytes,
        payload_len: int,
        options: bytes,
    ) -> None:
        self.ts = ts
        self.frame_no = frame_no
        self.vlans = vlans
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self.payload_len = payload_len
        self.options = options

    @property
    def truncated(self) -> bool:
        """True when the snaplen cut part of the payload."""
        return len(self.payload) < self.payload_len


def flag_names(flags: int) -> str:
    """Format TCP flags the way tcpdump does: ``S``, ``S.``, ``P.``, ``F.``, ``R``."""
    letters = ""
    for bit, letter in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W")):
        if flags & bit:
            letters += letter
    if flags & ACK:
        letters += "."
    return letters or "none"
