"""Start the smtptop command headless and stop it with SIGTERM, as a service manager would."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest


def catches_sigterm(pid: int) -> bool:
    """Return whether process `pid` has installed a SIGTERM handler (the SigCgt mask in /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def start_headless(command: list[str], cwd: Path, startup_seconds: float) -> subprocess.Popen[str]:
    """Start ``command`` and wait until it handles SIGTERM.

    The CLI installs its SIGTERM handler after the capture is open and after
    -Z took effect, so from then on packets are captured and SIGTERM ends it
    cleanly.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + startup_seconds
    while not catches_sigterm(process.pid):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(
                f"smtptop did not start within {startup_seconds} s: status {process.returncode}, {stderr!r}"
            )
        time.sleep(0.02)
    return process


def terminate(process: subprocess.Popen[str], exit_seconds: float) -> tuple[str, str]:
    """Send SIGTERM and return stdout and stderr. Kill the process and fail the test if it does not exit in time."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=exit_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"smtptop did not exit within {exit_seconds} s of SIGTERM")
