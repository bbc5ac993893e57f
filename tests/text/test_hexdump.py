"""Hex dumps compared with tcpdump's ``-XX`` output for frames of a public capture."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dpkt
import pytest

from smtptop.text.hexdump import hexdump, hexdump_lines

CAPTURE = Path(__file__).parents[1] / "data" / "public" / "smtp-sv-multi-mail.pcap"

# `tcpdump -XX -nn -r smtp-sv-multi-mail.pcap -c 4` (tcpdump 4.99), fourth frame:
# the server's "220 mail.example.com ESMTP Postfix" greeting, tab removed.
GREETING_DUMP = [
    "0x0000:  8ec5 f455 e90d 7270 a5fd 13bf 0800 4500  ...U..rp......E.",
    "0x0010:  0058 6cd5 4000 4006 759b ac16 0002 ac16  .Xl.@.@.u.......",
    "0x0020:  0001 0019 e30a 6d5f 3c46 9c81 17ec 8018  ......m_<F......",
    "0x0030:  0040 3c4c 0000 0101 080a 7c22 ed9f 6d7e  .@<L......|\"..m~",
    "0x0040:  2f41 3232 3020 6d61 696c 2e65 7861 6d70  /A220.mail.examp",
    "0x0050:  6c65 2e63 6f6d 2045 534d 5450 2050 6f73  le.com.ESMTP.Pos",
    "0x0060:  7466 6978 0d0a                           tfix..",
]


def read_frames(count: int) -> list[bytes]:
    with CAPTURE.open("rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        return [bytes(frame) for _, frame in list(reader)[:count]]


def test_greeting_frame_matches_tcpdump() -> None:
    frame = read_frames(4)[3]

    assert hexdump_lines(frame) == GREETING_DUMP


def test_hexdump_joins_lines() -> None:
    frame = read_frames(4)[3]

    assert hexdump(frame) == "\n".join(GREETING_DUMP)


def test_empty_input_gives_no_lines() -> None:
    assert hexdump_lines(b"") == []
    assert hexdump(b"") == ""


def test_odd_length_pads_hex_column() -> None:
    lines = hexdump_lines(b"ABC")

    assert lines == ["0x0000:  4142 43" + " " * 32 + "  ABC"]


def test_offsets_past_64k_grow() -> None:
    lines = hexdump_lines(bytes(0x10010))

    assert lines[0x1000].startswith("0x10000:  0000 0000")
    assert len(lines) == 0x1001


def test_non_graphic_bytes_are_dots() -> None:
    line = hexdump_lines(b" \x00\x7f~!\xff")[0]

    assert line.endswith("  ...~!.")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_first_frames_match_running_tcpdump() -> None:
    result = subprocess.run(
        ["tcpdump", "-XX", "-nn", "-r", str(CAPTURE), "-c", "12"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    blocks: list[list[str]] = []
    for line in result.stdout.splitlines():
        if line.startswith("\t0x"):
            blocks[-1].append(line.removeprefix("\t"))
        else:
            blocks.append([])

    frames = read_frames(12)

    assert len(blocks) == len(frames)
    for frame, expected in zip(frames, blocks, strict=True):
        assert hexdump_lines(frame) == expected
