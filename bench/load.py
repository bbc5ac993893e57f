"""The SMTP load: Postfix's smtp-sink and smtp-source on 127.0.0.1, and its capture with tcpdump.

smtp-source opens SESSIONS connections at a time and sends one message of
MESSAGE_BYTES bytes per connection, so a run of N messages is N SMTP
conversations. smtp-sink accepts every message and stores nothing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import free_port, stop, wait_for_listener

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SESSIONS = 20  # parallel connections of smtp-source (-s)
MESSAGE_BYTES = 1000  # message size of smtp-source (-l)
# tcpdump loses the frames still in the kernel ring when SIGINT stops it. With
# 0.5 s between the end of sending and SIGINT, a 2,000-message load lost about
# 550 of 40,000 frames. With 2 s it lost none (tcpdump 4.99.3).
CAPTURE_TAIL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LoadCapture:
    """A recorded load: the pcap file, the sink's port and what tcpdump and capinfos reported."""

    path: Path
    port: int
    messages: int
    frames: int
    kernel_drops: int
    send_seconds: float


@contextmanager
def smtp_sink(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run smtp-sink on 127.0.0.1:``port`` for the duration of the block."""
    # smtp-sink exits when run as root without -u. Debian creates the user nobody on every system.
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_listener(port)
        yield sink
    finally:
        stop(sink)


def send_messages(port: int, messages: int) -> float:
    """Send ``messages`` messages with smtp-source at full speed; return the seconds it took."""
    command = [SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(messages), "-l", str(MESSAGE_BYTES),
               f"127.0.0.1:{port}"]
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"smtp-source failed with status {result.returncode}: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return seconds


def record_load(messages: int, path: Path) -> LoadCapture:
    """Capture ``messages`` messages from smtp-source to smtp-sink on lo into ``path``."""
    port = free_port()
    log_path = path.with_suffix(".tcpdump.txt")
    with smtp_sink(port), open(log_path, "wb") as log_file:
        # -B is in KiB: 65536 KiB is smtptop's default buffer, so both capture alike.
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-B", "65536", "-w", str(path), f"tcp port {port}"],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            _wait_for_text(log_path, "listening on", tcpdump)
            send_seconds = send_messages(port, messages)
            time.sleep(CAPTURE_TAIL_SECONDS)
        finally:
            # tcpdump writes its counters and closes the file on SIGINT.
            stop(tcpdump, signal.SIGINT)
    report = log_path.read_text()
    return LoadCapture(path, port, messages, count_frames(path), _kernel_drops(report), send_seconds)


def count_frames(path: Path) -> int:
    """Count the frames of a capture file with capinfos (-M: exact numbers, -c: the count only)."""
    output = subprocess.run(["capinfos", "-M", "-c", str(path)], capture_output=True, text=True,
                            check=True).stdout
    match = re.search(r"Number of packets:\s*(\d+)", output)
    if match is None:
        raise RuntimeError(f"capinfos printed no packet count for {path}: {output!r}")
    return int(match.group(1))


def _kernel_drops(report: str) -> int:
    match = re.search(r"(\d+) packets? dropped by kernel", report)
    if match is None:
        raise RuntimeError(f"tcpdump printed no 'dropped by kernel' line: {report!r}")
    return int(match.group(1))


def _wait_for_text(path: Path, text: str, child: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if child.poll() is not None:
            raise RuntimeError(f"tcpdump exited with status {child.returncode}: {path.read_text()}")
        time.sleep(0.05)
    raise TimeoutError(f"tcpdump did not print {text!r} within {timeout} s")
