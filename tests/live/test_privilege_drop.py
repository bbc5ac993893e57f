"""-Z USER for real: smtptop opens the capture as root, then runs as USER, who creates every file."""

from __future__ import annotations

import json
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.clients import RecordingSMTP
from tests.live.headless import start_headless, terminate
from tests.record.helpers import packet_count, requires_wireshark_tools
from tests.support.other_user import OTHER_USER, needs_root_and_other_user, shared_directory
from tests.support.readable_python import python_for_user
from tests.support.servers import LOOPBACK, aiosmtpd_server
from tests.support.terminal import Terminal

pytestmark = [
    pytest.mark.live,
    needs_root_and_other_user,
]

USER = OTHER_USER
MESSAGES = 6
STARTUP_SECONDS = 30.0
EXIT_SECONDS = 15.0
# The CLI shows no sign of having read a packet, so the test leaves its capture
# thread this long to read the last packets before SIGTERM stops it.
READ_MARGIN_SECONDS = 1.0


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with shared_directory("smtptop-drop-") as directory:
        yield directory


@pytest.fixture(scope="module")
def python() -> Iterator[list[str]]:
    with python_for_user(USER) as command:
        yield command


def _ids(pid: int) -> dict[str, list[int]]:
    """Return the Uid, Gid and Groups lines of /proc/<pid>/status as numbers."""
    ids: dict[str, list[int]] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, values = line.partition(":")
            if name in ("Uid", "Gid", "Groups"):
                ids[name] = [int(value) for value in values.split()]
    return ids


def _send(port: int, count: int) -> None:
    for number in range(count):
        client = RecordingSMTP(LOOPBACK, port, timeout=30.0)
        try:
            body = (
                f"Subject: drop {number}\r\n\r\n".encode()
                + (b"0123456789abcdef" * 4 + b"\r\n") * 24
            )
            client.sendmail("drop@test.example", ["rcpt@test.example"], body)
            client.quit()
        finally:
            client.close()


@requires_wireshark_tools
def test_capture_runs_as_user(python: list[str], shared_dir: Path) -> None:
    shared_dir.chmod(0o1777)
    user = pwd.getpwnam(USER)

    with aiosmtpd_server() as server:
        command = [
            *python,
            "-m",
            "smtptop",
            "-i",
            "lo",
            "--json",
            "--port",
            str(server.port),
            "-w",
            str(shared_dir / "drop.pcap"),
            "-C",
            "4k",
            "-Z",
            USER,
            "tcp",
            "port",
            str(server.port),
        ]
        process = start_headless(command, shared_dir, STARTUP_SECONDS)
        try:
            ids = _ids(process.pid)
            _send(server.port, MESSAGES)
            time.sleep(READ_MARGIN_SECONDS)
        finally:
            stdout, stderr = terminate(process, EXIT_SECONDS)

    assert process.returncode == 0, stderr
    assert ids["Uid"] == [user.pw_uid] * 4
    assert ids["Gid"] == [user.pw_gid] * 4
    assert 0 not in ids["Groups"]

    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) == MESSAGES
    assert all(record["transactions"][0]["result"] == "accepted" for record in records)

    files = sorted(shared_dir.iterdir())
    assert len(files) > 1
    for path in files:
        assert path.stat().st_uid == user.pw_uid, path
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert sum(packet_count(path) for path in files) == sum(record["packets"] for record in records)


def test_unreadable_keylog_rejected_before_capture(
    python: list[str], shared_dir: Path, public_captures: Path
) -> None:
    shared_dir.chmod(0o1777)
    with shared_directory("smtptop-private-") as private:
        private.chmod(0o700)
        keylog = private / "keys.log"
        keylog.write_text("")
        command = [
            *python,
            "-m",
            "smtptop",
            "-r",
            str(public_captures / "smtp-zeek-auth-multi.pcap"),
            "--json",
            "--keylog",
            str(keylog),
            "-w",
            str(shared_dir / "x.pcap"),
            "-Z",
            USER,
        ]
        result = subprocess.run(
            command, cwd=shared_dir, capture_output=True, text=True, timeout=60, check=False
        )

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"-Z {USER}: user {USER} cannot enter {keylog.parent}, so it cannot reach {keylog}" in result.stderr
    assert "TLS key log" in result.stderr
    assert "leave out -Z" in result.stderr
    assert list(shared_dir.iterdir()) == []


def test_dashboard_runs_as_user(python: list[str], shared_dir: Path) -> None:
    shared_dir.chmod(0o1777)
    user = pwd.getpwnam(USER)
    terminal = Terminal()

    with aiosmtpd_server() as server:
        command = [
            *python,
            "-m",
            "smtptop",
            "-i",
            "lo",
            "--port",
            str(server.port),
            "-w",
            str(shared_dir / "ui.pcap"),
            "-Z",
            USER,
            "tcp",
            "port",
            str(server.port),
        ]
        process = terminal.run(command, shared_dir)
        try:
            assert terminal.wait_for(b"packets", STARTUP_SECONDS), terminal.output()[-2000:]
            ids = _ids(process.pid)
            _send(server.port, 1)
            assert terminal.wait_for(f"{LOOPBACK}:{server.port}".encode(), 10.0), terminal.output()[
                -2000:
            ]

            # The conversation screen and each of its tabs import modules the dashboard did not need.
            terminal.press("\r")
            assert terminal.wait_for(b"Transcript", 10.0), terminal.output()[-2000:]
            for key in "234561":
                terminal.press(key)
                time.sleep(0.3)
            terminal.press("\x1b")
            time.sleep(0.5)
            terminal.press("?")
            time.sleep(0.5)
            terminal.press("\x1b")
            time.sleep(0.5)
            terminal.press("q")
            status = process.wait(timeout=EXIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            terminal.close()

    assert status == 0, terminal.output()[-3000:]
    assert b"Traceback" not in terminal.output()
    assert ids["Uid"] == [user.pw_uid] * 4
    files = sorted(shared_dir.iterdir())
    assert [path.name for path in files] == ["ui.pcap"]
    assert files[0].stat().st_uid == user.pw_uid
