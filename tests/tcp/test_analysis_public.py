"""TcpAnalysis counts per TCP conversation of the public captures, with tshark as the oracle.

tshark sets ``tcp.analysis.retransmission`` on fast and spurious
retransmissions too, so its retransmission count is compared with the sum of
the three kinds here, and the fast and spurious counts separately.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from smtptop.capture.files import open_capture
from smtptop.decode.packet import Decoder
from smtptop.decode.segment import ACK, SYN
from smtptop.tcp.analysis import (
    ACKED_UNSEEN,
    FAST_RETRANSMISSION,
    LOST_SEGMENT,
    RETRANSMISSION_TAGS,
    SPURIOUS_RETRANSMISSION,
    ZERO_WINDOW,
)
from smtptop.tcp.connection import TcpConnection

PUBLIC = Path(__file__).resolve().parents[1] / "data" / "public"
SERVER_PORTS = frozenset({25, 465, 587, 2525})
COUNTERS = (
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "duplicate_ack",
    "zero_window",
    "lost_segment",
    "ack_lost_segment",
)

# Captures whose counts still differ from tshark 4.0, with the difference and its known or likely cause.
DIFFERENCES = {
    # Frames 7 and 85 end 8 and 20 bytes before their IPv4 total length although
    # the capture kept the whole frame. tshark counts only the bytes present (1440
    # and 1428), while the decoder takes the IPv4 length (1448). Every difference
    # follows from that:
    # - lost segments: tshark flags frames 9 and 87, which start past those ends.
    # - ACKed unseen: tshark flags frames 8, 10, 86 and 88, which ACK the missing
    #   bytes. Its flag on frame 86 leaves the client's duplicate-ACK count at -1,
    #   so it skips frame 105, which this analysis flags.
    # - fast retransmissions: tshark's flag on frame 8 leaves the client's count
    #   at -1, which it reads as a large unsigned count, so the server's repeated
    #   FINs at the client's ACK (frames 8, 10 and 12) pass its two-duplicates test.
    # Frames 26, 35 and 39 are short in the same way but change no count.
    "tcp-zeek-reassembly.pcap": (
        "frames 7 and 85 are shorter than their IPv4 length: lost segments 6 vs 8,"
        " ACKed unseen 4 vs 7 and fast retransmissions 0 vs 3, see the comment above"
    ),
}

CAPTURES = sorted(
    path.name
    for pattern in ("tcp-*.pcap", "tcp-*.pcapng", "smtp-*.pcap", "smtp-*.pcapng")
    for path in PUBLIC.glob(pattern)
)


def our_counts(path: Path) -> dict[int, Counter[str]]:
    """Count the flags per conversation, keyed by its first frame number, grouped as the engine groups."""
    reader = open_capture(str(path))
    decoder = Decoder(reader.link_type)
    connections: dict[object, tuple[TcpConnection, int]] = {}
    counts: dict[int, Counter[str]] = {}
    frame_no = 0
    for batch in reader.batches():
        for ts, data, _ in batch:
            frame_no += 1
            segment = decoder.decode(ts, frame_no, data)
            if segment is None:
                continue
            one = (segment.src, segment.sport)
            other = (segment.dst, segment.dport)
            key = (segment.vlans, one, other) if one < other else (segment.vlans, other, one)
            entry = connections.get(key)
            if entry is not None and entry[0].closed and segment.flags & (SYN | ACK) == SYN:
                entry = None
            if entry is None:
                entry = (TcpConnection.open(segment, SERVER_PORTS), frame_no)
                connections[key] = entry
                counts[frame_no] = Counter()
            connection, first = entry
            connection.receive(segment)
            add_tags(counts[first], connection.last_tags)
    reader.close()
    return counts


def add_tags(counter: Counter[str], tags: tuple[str, ...]) -> None:
    for tag in tags:
        if tag in RETRANSMISSION_TAGS:
            counter["retransmission"] += 1
        if tag == FAST_RETRANSMISSION:
            counter["fast_retransmission"] += 1
        elif tag == SPURIOUS_RETRANSMISSION:
            counter["spurious_retransmission"] += 1
        elif tag.startswith("Dup ACK #"):
            counter["duplicate_ack"] += 1
        elif tag == ZERO_WINDOW:
            counter["zero_window"] += 1
        elif tag == LOST_SEGMENT:
            counter["lost_segment"] += 1
        elif tag == ACKED_UNSEEN:
            counter["ack_lost_segment"] += 1


def tshark_counts(path: Path) -> dict[int, Counter[str]]:
    """Count tshark's non-empty analysis fields per tcp.stream, keyed by the stream's first frame number."""
    command = ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "tcp.stream"]
    for name in COUNTERS:
        command += ["-e", f"tcp.analysis.{name}"]
    # tshark exits with status 2 at a damaged record but still prints the frames before it,
    # which are the frames the capture reader returns too.
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    first_frames: dict[str, int] = {}
    counts: dict[int, Counter[str]] = {}
    for line in output.splitlines():
        values = line.split("\t")
        if not values[1]:
            continue
        first = first_frames.setdefault(values[1], int(values[0]))
        counter = counts.setdefault(first, Counter())
        for name, value in zip(COUNTERS, values[2:], strict=True):
            if value:
                counter[name] += 1
    return counts


def capture_param(name: str) -> object:
    reason = DIFFERENCES.get(name)
    if reason is None:
        return name
    return pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=True))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", [capture_param(name) for name in CAPTURES])
def test_counts_match_tshark(name: str) -> None:
    path = PUBLIC / name
    assert our_counts(path) == tshark_counts(path)
