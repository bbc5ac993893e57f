"""The terminal step: the smtptop command on a pseudo-terminal while smtp-source sends at full speed.

The live step drives the app through Textual's headless harness, which leaves
out the writes to a terminal. Here smtptop runs as a user starts it, with the
dashboard on a 160x45 pseudo-terminal, and this process reads what it draws.
A press of `o` counts as shown once the output carries the header's next
"sorted by ..." text. The reading thread keeps its work to appending bytes, so
that this process takes little of the CPU the dashboard needs.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass, field

from bench.load import send_messages, smtp_sink
from bench.processes import free_port, stop
from smtptop.ui.rows import SORT_ORDERS

COLUMNS, LINES = 160, 45
PRESS_INTERVAL_SECONDS = 0.25
# The presses after sending go on this long: about as long as the engine took to catch up
# with a 20,000-message burst in the live step.
AFTER_SECONDS = 10.0
# Liveness bounds, not speed requirements.
START_SECONDS = 30.0
SHOW_SECONDS = 10.0


@dataclass
class TerminalResult:
    """Key latencies on the pseudo-terminal, in seconds."""

    messages: int
    send_seconds: float = 0.0
    after_seconds: float = AFTER_SECONDS
    sort_latencies: list[float] = field(default_factory=list)
    sort_latencies_after: list[float] = field(default_factory=list)


class _Screen:
    """The master side of the pseudo-terminal and everything read from it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self._output = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    def size(self) -> int:
        with self._lock:
            return len(self._output)

    def wait_for(self, text: bytes, start: int, seconds: float) -> float:
        """Return the seconds until ``text`` appears after byte ``start`` of the output; raise on timeout."""
        began = time.monotonic()
        scanned = start
        while True:
            with self._lock:
                # Look again at a few bytes before the new ones: the text may span two reads.
                found = text in self._output[max(scanned - len(text), start):]
                scanned = len(self._output)
            if found:
                return time.monotonic() - began
            if time.monotonic() - began > seconds:
                raise TimeoutError(f"timed out: {text.decode()!r} did not appear on the terminal within {seconds} s")
            time.sleep(0.002)

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)


def measure(messages: int) -> TerminalResult:
    result = TerminalResult(messages)
    port = free_port()
    screen = _Screen()
    command = [sys.executable, "-m", "smtptop", "-i", "lo", "--port", str(port), "tcp", "port", str(port)]
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    with smtp_sink(port):
        dashboard = subprocess.Popen(command, stdin=screen.slave, stdout=screen.slave, stderr=screen.slave,
                                     env=environment, start_new_session=True)
        try:
            screen.wait_for(b"packets", 0, START_SECONDS)
            _press_during_load(screen, port, result)
            os.write(screen.master, b"q")
            dashboard.wait(timeout=START_SECONDS)
        finally:
            stop(dashboard)
            screen.close()
    return result


def _press_during_load(screen: _Screen, port: int, result: TerminalResult) -> None:
    sent: list[float] = []
    sender = threading.Thread(target=lambda: sent.append(send_messages(port, result.messages)))
    sender.start()
    order = 0
    finished_at: float | None = None
    while finished_at is None or time.monotonic() - finished_at < result.after_seconds:
        order = (order + 1) % len(SORT_ORDERS)
        start = screen.size()
        os.write(screen.master, b"o")
        latency = screen.wait_for(f"sorted by {SORT_ORDERS[order].label}".encode(), start, SHOW_SECONDS)
        if sender.is_alive():
            result.sort_latencies.append(latency)
        else:
            result.sort_latencies_after.append(latency)
            finished_at = finished_at or time.monotonic()
        time.sleep(PRESS_INTERVAL_SECONDS)
    sender.join()
    result.send_seconds = sent[0] if sent else 0.0
