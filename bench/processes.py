"""Child processes for the benchmark: free ports, timed runs with their peak RSS, and clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True, slots=True)
class Measured:
    """One finished child: wall time, peak resident set size and exit status."""

    seconds: float
    peak_rss_kib: int
    returncode: int


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_measured(command: list[str], stdout: IO[bytes] | int = subprocess.DEVNULL,
                 stderr: IO[bytes] | int = subprocess.DEVNULL) -> Measured:
    """Run ``command`` to its end and measure it alone.

    ``os.wait4`` returns the rusage of this one child (and the children it
    waited for), so runs do not mix as RUSAGE_CHILDREN totals would.
    ``ru_maxrss`` is in KiB on Linux (getrusage(2)).
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return Measured(seconds, usage.ru_maxrss, child.returncode)


def stop(child: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child this benchmark started: ``sig`` first, SIGKILL if it outlives ``timeout``."""
    if child.poll() is not None:
        return
    child.send_signal(sig)
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def wait_for_listener(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def rss_kib() -> int:
    """Return this process's resident set size now, from /proc/self/status (VmRSS, in KiB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS missing from /proc/self/status")
