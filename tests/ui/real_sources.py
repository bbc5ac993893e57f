"""Real capture sources for the UI tests, and independent readings of the same captures.

``start_capture`` builds the source the way ``smtptop -r FILE`` and
``smtptop --demo`` do: the CLI's own option parsing and ``open_source``, an
``Engine`` and a started ``CaptureRunner``. The functions below it read the
same captures with tshark and tcpdump, so tests compare what the screen shows
with what another tool finds in the file, never with what smtptop printed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from smtptop.cli import open_source, parse_config
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from tests.support.tshark import run_tshark

FINISH_TIMEOUT = 30.0


def start_capture(argv: Sequence[str]) -> tuple[CaptureRunner, bool]:
    """Build and start the capture runner for a command line; return it and the app's ``live`` flag."""
    config, _ = parse_config(list(argv))
    source, name = open_source(config)
    engine = Engine(config.engine, source.link_type, name, config.capture.bpf_filter or "")
    runner = CaptureRunner(engine, source, realtime=config.capture.realtime)
    runner.start()
    # As in smtptop.cli._run: the demo replays at its recorded pace, so it ages on the wall clock.
    return runner, config.demo


def wait_until_finished(runner: CaptureRunner, timeout: float = FINISH_TIMEOUT) -> None:
    """Block until the runner has read the whole file; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while not runner.snapshot().stats.finished:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading the capture timed out after {timeout} s")
        time.sleep(0.01)


@dataclass
class TcpStream:
    """One TCP conversation as tshark numbers it, with the frames that belong to it."""

    index: int
    client: str  # "ip:port" of the side that sent the SYN
    server: str
    frames: list[int] = field(default_factory=list)
    times: dict[int, Decimal] = field(default_factory=dict)  # frame number to capture time


def _fields(
    path: Path, display_filter: str, names: Sequence[str], extra: Sequence[str] = ()
) -> list[list[str]]:
    args = [
        *extra,
        "-Y",
        display_filter,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "aggregator=|",
    ]
    for name in names:
        args += ["-e", name]
    rows = []
    for line in run_tshark(path, *args).splitlines():
        columns = line.split("\t")
        rows.append(columns + [""] * (len(names) - len(columns)))
    return rows


def tcp_streams(path: Path) -> dict[int, TcpStream]:
    """Return tshark's TCP streams of a capture whose every connection starts with a SYN."""
    names = (
        "tcp.stream",
        "frame.number",
        "frame.time_epoch",
        "tcp.flags.syn",
        "tcp.flags.ack",
        "ip.src",
        "tcp.srcport",
        "ip.dst",
        "tcp.dstport",
    )
    streams: dict[int, TcpStream] = {}
    for index, number, epoch, syn, ack, src, sport, dst, dport in _fields(path, "tcp", names):
        stream_index = int(index)
        if stream_index not in streams:
            # The first frame of each stream is its SYN, sent by the client.
            assert syn in ("1", "True"), f"stream {index} starts without a SYN"
            assert ack in ("0", "False"), f"stream {index} starts with a SYN-ACK"
            streams[stream_index] = TcpStream(stream_index, f"{src}:{sport}", f"{dst}:{dport}")
        stream = streams[stream_index]
        stream.frames.append(int(number))
        stream.times[int(number)] = Decimal(epoch)
    return streams


def last_replies(path: Path, extra_ports: Sequence[int] = ()) -> dict[int, str]:
    """Return, per TCP stream, the first line of the last SMTP reply: code, space, text."""
    extra = [arg for port in extra_ports for arg in ("-d", f"tcp.port=={port},smtp")]
    names = ("tcp.stream", "smtp.response.code", "smtp.rsp.parameter")
    replies: dict[int, str] = {}
    for index, codes, parameters in _fields(path, "smtp.response.code", names, extra):
        code_list = codes.split("|")
        texts = parameters.split("|")
        # Pipelined replies in one frame give one text per code. A multi-line
        # reply gives one code and one text per line, the first line first.
        text = texts[-1] if len(texts) == len(code_list) else texts[0]
        replies[int(index)] = f"{code_list[-1]} {text}".rstrip()
    return replies


def command_count(path: Path, verb: str) -> int:
    """Return how many client commands with ``verb`` tshark decodes."""
    rows = _fields(path, "smtp.req.command", ("smtp.req.command",))
    return sum(value.upper() == verb for row in rows for value in row[0].split("|"))


def tcpdump_hex_lines(path: Path, frame_number: int) -> list[str]:
    """Return ``tcpdump -XX`` hex lines of one frame, without their leading tab."""
    result = subprocess.run(
        ["tcpdump", "-n", "-XX", "-r", str(path), "-c", str(frame_number)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    blocks: list[list[str]] = []
    for line in result.stdout.splitlines():
        if line.startswith("\t0x"):
            blocks[-1].append(line[1:].rstrip())
        else:
            blocks.append([])
    return blocks[-1]
