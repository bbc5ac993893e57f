"""Hex + ASCII dumps in the layout of ``tcpdump -X``.

Each line shows 16 bytes: a hex offset, eight groups of two bytes, and the
bytes again as ASCII with anything outside ``!``..``~`` shown as ``.``, as
tcpdump does (so a space byte is a dot too).
"""

from __future__ import annotations

BYTES_PER_LINE = 16

# Width of a full line of hex groups: 8 groups of 4 digits and 7 separating spaces.
_HEX_WIDTH = (BYTES_PER_LINE // 2) * 5 - 1


def _ascii_char(byte: int) -> str:
    return chr(byte) if 0x21 <= byte <= 0x7E else "."


def _hex_groups(chunk: bytes) -> str:
    groups = [chunk[i : i + 2].hex() for i in range(0, len(chunk), 2)]
    return " ".join(groups)


def hexdump_lines(data: bytes) -> list[str]:
    """Format ``data`` as tcpdump ``-X`` lines, without tcpdump's leading tab."""
    lines = []
    for offset in range(0, len(data), BYTES_PER_LINE):
        chunk = data[offset : offset + BYTES_PER_LINE]
        ascii_text = "".join(_ascii_char(byte) for byte in chunk)
        lines.append(f"0x{offset:04x}:  {_hex_groups(chunk):<{_HEX_WIDTH}}  {ascii_text}")
    return lines


def hexdump(data: bytes) -> str:
    """Format ``data`` as a tcpdump ``-X`` block, one line per 16 bytes; empty input gives ""."""
    return "\n".join(hexdump_lines(data))
