"""TCP health on real traffic: packet loss made by nftables, and a receiver that stops reading.

Both tests capture with tcpdump into a pcap file, read that file with
smtptop's engine, and compare the analysis counters with tshark's reading
of the same file.

The loss test runs the server, the client and tcpdump inside a network
namespace that the test creates and always deletes, with an nftables rule in
that namespace that drops about one in ten packets on their way into the server's port.
The zero-window test runs on loopback in the test's own namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smtptop.config import SMTP_PORTS
from smtptop.direction import Direction
from smtptop.engine.conversation import Conversation
from tests.engine.helpers import FileRun, run_file
from tests.engine.tshark_tcp import Sender, tcp_flag_counts
from tests.support.servers import LOOPBACK, bind_listening_socket
from tests.support.tshark import tshark_path

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle"),
    pytest.mark.skipif(
        shutil.which("tcpdump") is None, reason="tcpdump is needed to write the capture"
    ),
]

# The namespace is private to the test, so a fixed port in SMTP_PORTS is free there.
LOSS_PORT = 2525
LOSS_MESSAGES = 5
LOSS_MESSAGE_BYTES = 100_000
# A 1500-byte MTU and no segmentation offload (one segment per GSO packet) on the
# namespace's loopback, so that a message spans about 70 captured segments
# instead of two 64 KB ones, and each drop loses one segment.
LOSS_MTU = 1500
# Bound for the whole exchange, which takes about a second. A retransmission
# timeout starts at 200 ms and doubles, so a few repeated drops stay far below it.
CLIENT_SECONDS = 120.0
# Counters that must equal tshark's on a real capture.
EQUAL_COUNTERS = (
    "duplicate_acks",
    "lost_segments",
    "acked_unseen",
    "fast_retransmissions",
    "zero_windows",
    "out_of_order",
)

SINK_SERVER = """
import asyncio, socket, sys
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: queued"

class PatientController(Controller):
    # The controller checks itself with a connection through the lossy rule. A dropped SYN
    # is resent after a second, exactly when aiosmtpd 1.4's own check (a 1 s connect
    # timeout) gives up, and start() then fails about one run in ten. This check waits for
    # the kernel's SYN retries.
    def _trigger_server(self):
        with socket.create_connection((self.hostname, self.port), 20.0) as connection:
            connection.recv(1024)

controller = PatientController(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), ready_timeout=30.0)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""

SENDING_CLIENT = """
import smtplib, sys
count, size = int(sys.argv[2]), int(sys.argv[3])
line = b"x" * 998 + b"\\r\\n"
body = b"Subject: loss test\\r\\n\\r\\n" + line * (size // len(line))
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60) as client:
    for number in range(count):
        client.sendmail("sender@test.example", ["rcpt@test.example"], body)
print("sent", count, flush=True)
"""


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@contextmanager
def lossy_namespace(port: int) -> Iterator[str]:
    """Create a network namespace whose loopback drops about 10 % of the packets on their way into ``port``."""
    name = f"smtptop-test-{os.getpid()}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "mtu", str(LOSS_MTU))
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "gso_max_segs", "1")
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        nft = ("ip", "netns", "exec", name, "nft")
        _run(*nft, "add", "table", "inet", "loss")
        # The input hook, not output: Linux reports an output-hook drop to the sending TCP
        # as a local transmit failure and sends the segment again as if for the first time,
        # so nothing looks lost on the wire. An input-hook drop comes after tcpdump's tap
        # on lo, so the capture shows the segment, then the sender's retransmission.
        _run(*nft, "add", "chain", "inet", "loss", "in", "{ type filter hook input priority 0; }")
        _run(
            *nft,
            "add",
            "rule",
            "inet",
            "loss",
            "in",
            "tcp",
            "dport",
            str(port),
            "numgen",
            "random",
            "mod",
            "10",
            "==",
            "0",
            "drop",
        )
        yield name
    finally:
        subprocess.run(
            ["ip", "netns", "delete", name], capture_output=True, timeout=30, check=False
        )


class TcpdumpResult:
    """What tcpdump reported on exit."""

    def __init__(self) -> None:
        self.kernel_drops: int | None = None


@contextmanager
def tcpdump(path: Path, bpf_filter: str, namespace: str | None = None) -> Iterator[TcpdumpResult]:
    """Write the packets matching ``bpf_filter`` on ``lo`` to ``path`` until the block ends.

    The 64 MiB buffer (``-B``) keeps the kernel from dropping packets of a fast
    loopback transfer, which would show up as segments that were not captured.
    """
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    command = [
        *prefix,
        "tcpdump",
        "-i",
        "lo",
        "-w",
        str(path),
        "--immediate-mode",
        "-U",
        "-B",
        "65536",
        "-s",
        "0",
        bpf_filter,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    result = TcpdumpResult()
    try:
        assert process.stderr is not None
        # tcpdump prints "listening on lo ..." once its filter is installed.
        started = process.stderr.readline()
        assert "listening on" in started, started
        yield result
        # Packets the kernel already queued reach the file before tcpdump exits on SIGINT.
        time.sleep(0.5)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            _, errors = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        # The exit summary: "N packets dropped by kernel".
        for line in errors.splitlines():
            if line.endswith("packets dropped by kernel"):
                result.kernel_drops = int(line.split()[0])


def _senders(conversation: Conversation) -> dict[Direction, Sender]:
    return {
        Direction.CLIENT_TO_SERVER: (conversation.client, conversation.server),
        Direction.SERVER_TO_CLIENT: (conversation.server, conversation.client),
    }


def _compare(
    run: FileRun, oracle: dict[Sender, Counter[str]]
) -> list[tuple[Sender, str, int, int]]:
    """List (sender, counter, smtptop's count, tshark's count) for every SMTP conversation and direction."""
    rows: list[tuple[Sender, str, int, int]] = []
    for conversation in run.smtp():
        for direction, sender in _senders(conversation).items():
            stats = conversation.tcp.analysis.stats(direction)
            expected = oracle.get(sender, Counter())
            retransmitted = (
                stats.retransmissions + stats.fast_retransmissions + stats.spurious_retransmissions
            )
            rows.append(
                (sender, "any_retransmission", retransmitted, expected["any_retransmission"])
            )
            for counter in EQUAL_COUNTERS:
                rows.append((sender, counter, getattr(stats, counter), expected[counter]))
    return rows


def test_real_loss_matches_tshark(tmp_path: Path) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft is needed to drop packets (apt-get install nftables)")
    pcap = tmp_path / "loss.pcap"
    with lossy_namespace(LOSS_PORT) as namespace:
        in_namespace = ["ip", "netns", "exec", namespace]
        server = subprocess.Popen(
            [*in_namespace, sys.executable, "-c", SINK_SERVER, str(LOSS_PORT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready", (
                server.stderr.read() if server.stderr else ""
            )
            with tcpdump(pcap, f"tcp port {LOSS_PORT}", namespace) as capture:
                client = subprocess.run(
                    [
                        *in_namespace,
                        sys.executable,
                        "-c",
                        SENDING_CLIENT,
                        str(LOSS_PORT),
                        str(LOSS_MESSAGES),
                        str(LOSS_MESSAGE_BYTES),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=CLIENT_SECONDS,
                    check=False,
                )
                assert client.returncode == 0, client.stderr
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    assert capture.kernel_drops == 0, (
        "tcpdump lost packets, so the capture would show loss it made itself"
    )
    run = run_file(pcap, linger_seconds=3600.0)
    oracle = tcp_flag_counts(pcap)
    rows = _compare(run, oracle)
    report = "\n".join(
        f"{sender[0]}->{sender[1]} {name}: smtptop {mine}, tshark {theirs}"
        for sender, name, mine, theirs in rows
    )
    print(report)

    conversations = [c for c in run.smtp() if c.tcp.syn_ts is not None]
    assert len(conversations) >= 1
    client_sent = oracle.get((conversations[-1].client, conversations[-1].server), Counter())
    # The rule drops about 35 of the client's segments; a loss-free run would test nothing.
    # On loopback the RTT is far below 3 ms, so tshark calls many resent segments
    # Out-Of-Order rather than Retransmission; smtptop follows the same rule.
    assert client_sent["any_retransmission"] + client_sent["out_of_order"] > 0, report
    for sender, name, mine, theirs in rows:
        assert mine == theirs, (sender, name, mine, theirs)
    stats = run.engine.snapshot().stats
    assert stats.lost_segments == sum(mine for _, name, mine, _ in rows if name == "lost_segments")


# -- a receiver that stops reading -------------------------------------------------------

# The receive buffer the server asks for; Linux doubles it and keeps a share for overhead.
SMALL_RCVBUF = 4096
ZERO_WINDOW_BODY_BYTES = 4_000_000
# How long the client keeps pushing into the closed window; zero-window probes back off from 200 ms.
STALL_SECONDS = 3.0
SERVER_REPLIES = {
    b"EHLO": b"250 zero.test\r\n",
    b"MAIL": b"250 2.1.0 Ok\r\n",
    b"RCPT": b"250 2.1.5 Ok\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
}


def _stalling_server(listener: socket.socket, stop: threading.Event) -> None:
    """Accept one client, answer until DATA, then stop reading until ``stop`` is set."""
    connection, _ = listener.accept()
    with connection:
        connection.sendall(b"220 zero.test ESMTP\r\n")
        pending = b""
        while True:
            pending += connection.recv(4096)
            if b"\r\n" not in pending:
                continue
            line, _, pending = pending.partition(b"\r\n")
            connection.sendall(SERVER_REPLIES.get(line[:4].upper(), b"500 5.5.2 Unknown\r\n"))
            if line[:4].upper() == b"DATA":
                break
        stop.wait(STALL_SECONDS + 10.0)


def _pushing_client(port: int) -> None:
    """Send the envelope and then a large body that the server never reads."""
    with socket.create_connection((LOOPBACK, port), timeout=STALL_SECONDS) as client:
        reader = client.makefile("rb")
        reader.readline()
        for command in (
            b"EHLO client.test",
            b"MAIL FROM:<a@test.example>",
            b"RCPT TO:<b@test.example>",
            b"DATA",
        ):
            client.sendall(command + b"\r\n")
            reader.readline()
        try:
            client.sendall(b"y" * ZERO_WINDOW_BODY_BYTES)
        except TimeoutError:
            pass  # the expected outcome: the window stayed closed


def test_zero_window_matches_tshark(tmp_path: Path) -> None:
    pcap = tmp_path / "zero-window.pcap"
    listener = bind_listening_socket(LOOPBACK, 0)
    # Set before listen(), so the accepted connection inherits it and its window scale stays small.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    listener.listen(1)
    port = listener.getsockname()[1]
    stop = threading.Event()
    server = threading.Thread(target=_stalling_server, args=(listener, stop), daemon=True)
    server.start()
    try:
        with tcpdump(pcap, f"tcp port {port}"):
            _pushing_client(port)
    finally:
        stop.set()
        server.join(15)
        listener.close()

    run = run_file(pcap, linger_seconds=3600.0, smtp_ports=SMTP_PORTS | {port})
    (conversation,) = run.smtp()
    oracle = tcp_flag_counts(pcap)
    server_sent = oracle.get((conversation.server, conversation.client), Counter())
    details = run.engine.detail(conversation.key)
    assert details is not None and details.tcp is not None
    print(
        f"zero windows: smtptop {details.tcp.server.zero_windows}, tshark {server_sent['zero_windows']}"
    )

    assert details.tcp.server.zero_windows >= 1
    assert details.tcp.server.zero_windows == server_sent["zero_windows"]
    assert (
        details.tcp.client.zero_window_probes
        == oracle.get((conversation.client, conversation.server), Counter())["zero_window_probes"]
    )
    assert (
        details.row.zero_windows
        == details.tcp.server.zero_windows + details.tcp.client.zero_windows
    )
