"""The real dashboard on a pseudo-terminal, with its capture in a child process: either side can die first.

If the capture process dies, the dashboard stays up, shows the error and
still quits cleanly. If the dashboard dies (a lost SSH session), the capture
process notices its pipe close, stops, and leaves a complete recording.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smtptop.engine.process import CAPTURE_NICENESS
from tests.engine.test_process import wait_until
from tests.record.helpers import capinfos, requires_wireshark_tools, run_tshark
from tests.support.servers import LOOPBACK, smtp_sink
from tests.support.terminal import Terminal

pytestmark = pytest.mark.live

# Liveness bounds, not speed requirements.
STARTUP_SECONDS = 30.0
SHOW_SECONDS = 10.0
EXIT_SECONDS = 15.0
MESSAGES = 3


def _send(port: int, count: int) -> None:
    for number in range(count):
        with smtplib.SMTP(LOOPBACK, port, timeout=10) as client:
            client.sendmail("sender@test.example", ["rcpt@test.example"], f"Subject: {number}\r\n\r\nbody\r\n")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as stream:
        return [int(child) for child in stream.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            # A child that exited but was not reaped yet is a zombie, state Z.
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextmanager
def _dashboard(port: int, directory: Path) -> Iterator[tuple[subprocess.Popen[bytes], Terminal]]:
    """Run smtptop's dashboard on loopback on a pseudo-terminal, recording to directory/live.pcap, logging to directory/log."""
    terminal = Terminal()
    command = [sys.executable, "-m", "smtptop", "-i", "lo", "--port", str(port), "-w", str(directory / "live.pcap"),
               "--log", str(directory / "log"), "tcp", "port", str(port)]
    process = terminal.run(command, directory)
    try:
        assert terminal.wait_for(b"packets", STARTUP_SECONDS), terminal.output()[-2000:]
        yield process, terminal
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        terminal.close()


def test_dashboard_survives_capture_death(tmp_path: Path) -> None:
    with smtp_sink() as server, _dashboard(server.port, tmp_path) as (process, terminal):
        _send(server.port, 1)
        assert terminal.wait_for(b"messages 1", SHOW_SECONDS), terminal.output()[-2000:]
        [child] = _children(process.pid)
        with open(f"/proc/{child}/comm") as comm:
            assert comm.read().strip() == "smtptop-capture"
        # Field 19 of /proc/PID/stat is the nice value; the process name before it has no spaces here.
        with open(f"/proc/{child}/stat") as stat:
            assert int(stat.read().split()[18]) == CAPTURE_NICENESS
        with open(f"/proc/{process.pid}/stat") as stat:
            assert int(stat.read().split()[18]) == 0

        os.kill(child, signal.SIGKILL)

        assert terminal.wait_for(b"was killed by signal 9 (SIGKILL)", SHOW_SECONDS), terminal.output()[-3000:]
        # The conversation's detail was in the dead process, and the dashboard shows why it cannot open it.
        terminal.press("\r")
        assert terminal.wait_for(b"Cannot open this conversation", SHOW_SECONDS), terminal.output()[-2000:]
        # The other keys still work on what the dashboard last received.
        terminal.press("?")
        assert terminal.wait_for(b"smtptop keys", SHOW_SECONDS), terminal.output()[-2000:]
        terminal.press("\x1b")
        time.sleep(0.5)
        terminal.press("q")
        status = process.wait(timeout=EXIT_SECONDS)

    # The reason stays on the terminal after the screen is gone, and the exit status reports the failure.
    assert status == 1, terminal.output()[-3000:]
    assert terminal.wait_for(b"(SIGKILL), so capture stopped before you quit", SHOW_SECONDS), terminal.output()[-3000:]
    assert b"Traceback" not in terminal.output()


@requires_wireshark_tools
@pytest.mark.parametrize(
    ("how", "logged"),
    [
        ("SIGKILL to the dashboard", "the dashboard went away; stopping the capture"),
        ("SIGHUP to the session", "the dashboard went away; stopping the capture"),
        ("SIGTERM to the session", "received SIGTERM, stopping the capture"),
    ],
)
def test_recording_completes_after_dashboard_death(tmp_path: Path, how: str, logged: str) -> None:
    with smtp_sink() as server, _dashboard(server.port, tmp_path) as (process, terminal):
        _send(server.port, MESSAGES)
        assert terminal.wait_for(f"messages {MESSAGES}".encode(), SHOW_SECONDS), terminal.output()[-2000:]
        [child] = _children(process.pid)

        if how == "SIGKILL to the dashboard":
            process.kill()
        elif how == "SIGHUP to the session":
            # What a lost terminal does: the whole session gets SIGHUP.
            os.killpg(process.pid, signal.SIGHUP)
        else:
            # What kill -TERM on the process group, or a service manager, does.
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=EXIT_SECONDS)
        wait_until(lambda: not _alive(child), EXIT_SECONDS, "the capture process ending")

    # The child stopped as on a quit, not killed by the signal.
    assert logged in (tmp_path / "log").read_text()
    # capinfos fails the test on a file cut short.
    info = capinfos(tmp_path / "live.pcap")
    assert int(info["Number of packets"]) > 0
    syns = run_tshark(tmp_path / "live.pcap", "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields",
                      "-e", "frame.number")
    assert len(syns.split()) == MESSAGES
