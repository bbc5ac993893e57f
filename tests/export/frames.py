"""Frames of a capture as tshark reads them, and the engine built the way ``smtptop -r`` builds it.

Tests compare what an export wrote with what tshark finds in the input:
capture time to the microsecond, length on the wire, captured length and
the bytes, frame by frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from tests.support.tshark import run_tshark

MICROSECOND = Decimal("0.000001")


class TsharkFrame(NamedTuple):
    time: Decimal  # capture time, rounded to the microsecond
    wire_len: int
    captured: int
    data: str  # the frame's bytes in hex


def tshark_frames(path: Path | str, display_filter: str = "") -> list[TsharkFrame]:
    """Return the frames of ``path`` that pass ``display_filter``, in file order."""
    args = ["-T", "json", "-x"]
    if display_filter:
        args += ["-Y", display_filter]
    frames = []
    for packet in json.loads(run_tshark(path, *args) or "[]"):
        layers = packet["_source"]["layers"]
        frame = layers["frame"]
        frames.append(
            TsharkFrame(
                Decimal(frame["frame.time_epoch"]).quantize(MICROSECOND),
                int(frame["frame.len"]),
                int(frame["frame.cap_len"]),
                layers["frame_raw"][0],
            )
        )
    return frames


def tcp_stream_of(path: Path | str, client: str) -> int:
    """Return tshark's tcp.stream number of the connection whose client is ``client`` ("ip:port")."""
    address, port = client.rsplit(":", 1)
    display_filter = f"ip.src=={address} && tcp.srcport=={port}"
    values = run_tshark(path, "-Y", display_filter, "-T", "fields", "-e", "tcp.stream").split()
    assert values, f"tshark finds no packet from {client}"
    return int(values[0])


def stream_filter(path: Path | str, client: str) -> str:
    """Return the display filter for the TCP segments of the connection whose client is ``client``.

    tshark also files an ICMP error that quotes a segment of the connection
    under its tcp.stream (smtp-zeek-auth-multi.pcap has four "fragmentation
    needed" messages in stream 0). smtptop keeps only the TCP segments.
    """
    return f"tcp.stream=={tcp_stream_of(path, client)} && !icmp"


def read_engine(
    path: Path | str,
    config: EngineConfig | None = None,
    on_finished: Callable[[Conversation], None] | None = None,
    frame_filter: Callable[[bytes], object] | None = None,
    batch_size: int = 512,
) -> tuple[Engine, int]:
    """Feed a whole capture file to an engine as ``smtptop -r FILE`` does; return it and the file's snaplen."""
    reader = open_capture(str(path))
    reader.frame_filter = frame_filter
    # As the CLI does for a file shown on the dashboard: conversations stay listed to the end.
    engine = Engine(
        config or EngineConfig(linger_seconds=float("inf")),
        reader.link_type,
        str(path),
        "",
        on_finished,
    )
    for batch in reader.batches(batch_size):
        engine.feed(batch)
    engine.finish_input(reader.error)
    reader.close()
    return engine, reader.snaplen
