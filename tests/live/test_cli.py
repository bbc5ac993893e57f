"""The installed ``smtptop`` command, run headless on loopback as a user would run it."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smtptop.cli import HEADLESS_LINGER_SECONDS
from tests.live.clients import RecordingSMTP
from tests.live.headless import start_headless, terminate
from tests.support import REPO_ROOT
from tests.support.servers import LOOPBACK, aiosmtpd_server

pytestmark = pytest.mark.live

SMTPTOP = Path(sys.executable).with_name("smtptop")
STARTUP_SECONDS = 20.0
EXIT_SECONDS = 10.0
# The CLI shows no sign of having read a packet, so the test leaves its capture
# thread this long to read the last packets before SIGTERM stops it.
READ_MARGIN_SECONDS = 1.0
SENDER = "cli-sender@test.example"
RECIPIENTS = ["cli-one@test.example", "cli-two@test.example"]


def _start_smtptop(port: int) -> subprocess.Popen[str]:
    """Start `smtptop -i lo --json --port N tcp port N` and wait until it handles SIGTERM."""
    if not SMTPTOP.exists():
        pytest.skip(f"{SMTPTOP} not found; install the package into this environment")
    command = [str(SMTPTOP), "-i", "lo", "--json", "--port", str(port), "tcp", "port", str(port)]
    return start_headless(command, REPO_ROOT, STARTUP_SECONDS)


def _terminate(process: subprocess.Popen[str]) -> tuple[str, str]:
    return terminate(process, EXIT_SECONDS)


def _send_one(port: int) -> tuple[str, int]:
    """Send one message to `port` with smtplib and return the client's address and port."""
    client = RecordingSMTP(LOOPBACK, port, timeout=30.0)
    try:
        address = client.client_port()
        client.sendmail(SENDER, RECIPIENTS, b"Subject: cli\r\n\r\nhello\r\n")
        client.quit()
    finally:
        client.close()
    return address


def test_cli_json_line_per_conversation() -> None:
    with aiosmtpd_server() as server:
        process = _start_smtptop(server.port)
        try:
            client_host, client_port = _send_one(server.port)
            time.sleep(READ_MARGIN_SECONDS)
        finally:
            stdout, stderr = _terminate(process)
    lines = stdout.splitlines()

    assert process.returncode == 0, stderr
    assert stderr == ""
    assert len(lines) == 1, stdout
    record = json.loads(lines[0])
    assert record["client"] == f"{client_host}:{client_port}"
    assert record["server"] == f"{LOOPBACK}:{server.port}"
    assert len(record["transactions"]) == 1
    assert record["transactions"][0]["mail_from"] == SENDER
    assert [rcpt["addr"] for rcpt in record["transactions"][0]["rcpt"]] == RECIPIENTS
    assert record["transactions"][0]["result"] == "accepted"
    assert record["tcp"]["stage"] == "closed (FIN)"
    assert record["tcp"]["state"] == "SF"


def test_cli_quiet_exits_on_sigterm() -> None:
    # A bound socket that never listens keeps its port free of any traffic.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserved:
        reserved.bind((LOOPBACK, 0))
        process = _start_smtptop(reserved.getsockname()[1])
        stdout, stderr = _terminate(process)

    assert process.returncode == 0, stderr
    assert stdout == ""
    assert stderr == ""


def test_cli_json_written_while_running() -> None:
    with aiosmtpd_server() as server:
        process = _start_smtptop(server.port)
        try:
            _send_one(server.port)
            assert process.stdout is not None
            # Liveness bound: the linger plus a generous margin, not a speed requirement.
            ready, _, _ = select.select([process.stdout], [], [], HEADLESS_LINGER_SECONDS + 5.0)
        finally:
            _terminate(process)

    assert ready, f"no JSON line within {HEADLESS_LINGER_SECONDS + 5.0} s of the conversation's end"
