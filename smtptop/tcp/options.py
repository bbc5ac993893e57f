"""TCP header options: MSS, window scale, SACK-permitted and timestamps.

Parsing is tolerant. A cut or malformed option list yields what parsed
before the damage and never raises. Pure functions that must not import
anything that does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# Option kinds (IANA "TCP Option Kind Numbers"; RFC 9293 section 3.2, RFC 7323, RFC 2018).
_END = 0
_NOP = 1
_MSS = 2
_WINDOW_SCALE = 3
_SACK_PERMITTED = 4
_TIMESTAMPS = 8

# RFC 7323, section 2.3: a shift above 14 is treated as 14.
MAX_WINDOW_SHIFT = 14


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of one segment that the analysis uses; None when absent."""

    mss: int | None = None
    window_scale: int | None = None  # the shift as sent, clamped to 14
    sack_permitted: bool = False
    timestamp: tuple[int, int] | None = None  # TSval, TSecr


NO_OPTIONS = TcpOptions()


def parse_options(raw: bytes) -> TcpOptions:
    """Parse the option bytes of a TCP header, stopping at the first malformed option."""
    if not raw:
        return NO_OPTIONS
    mss: int | None = None
    window_scale: int | None = None
    sack_permitted = False
    timestamp: tuple[int, int] | None = None
    index = 0
    while index < len(raw):
        kind = raw[index]
        if kind == _END:
            break
        if kind == _NOP:
            index += 1
            continue
        if index + 1 >= len(raw):
            break
        length = raw[index + 1]
        if length < 2 or index + length > len(raw):
            break
        body = raw[index + 2 : index + length]
        if kind == _MSS and length == 4:
            mss = int.from_bytes(body, "big")
        elif kind == _WINDOW_SCALE and length == 3:
            window_scale = min(body[0], MAX_WINDOW_SHIFT)
        elif kind == _SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == _TIMESTAMPS and length == 10:
            timestamp = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))
        index += length
    return TcpOptions(mss, window_scale, sack_permitted, timestamp)
