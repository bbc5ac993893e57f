"""A pseudo-terminal for running the real dashboard in a test, with a thread that keeps reading what it draws."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time

COLUMNS = 160
LINES = 45
# The environment the dashboard needs to draw on the terminal, added to the test's own.
ENVIRONMENT = {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}


class Terminal:
    """A pseudo-terminal for the dashboard, with a thread that keeps reading what it draws."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def run(self, command: list[str], cwd: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start ``command`` in a session of its own, with this terminal as its stdin, stdout and stderr."""
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env={**os.environ, **ENVIRONMENT},
            start_new_session=True,
        )

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

    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def wait_for(self, text: bytes, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            time.sleep(0.05)
        return False

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)
