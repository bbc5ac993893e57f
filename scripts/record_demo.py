#!/usr/bin/env python3
"""Record smtptop/demo/demo.pcap: real SMTP servers and clients, captured by tcpdump.

Run as root from the repository root:

    sudo .venv/bin/python scripts/record_demo.py [OUTPUT]

The script creates a network namespace of its own (so the servers can listen
on ports 25, 587 and 2525 without touching the host), runs itself again inside
it, and deletes the namespace when done. Inside, it starts these servers on
the namespace's loopback interface:

    127.0.0.10:25    aiosmtpd "mx": STARTTLS, rejects nobody@demo.example with 550
    127.0.0.11:25    aiosmtpd "slow": greeting after 2 s, end-of-data reply after 6 s
    127.0.0.10:587   aiosmtpd "submit": STARTTLS, AUTH LOGIN/PLAIN for user "demo"
    127.0.0.12:2525  Postfix smtp-sink, which advertises PIPELINING

then starts tcpdump on lo and plays a timeline of Python smtplib and swaks
clients against them, about 50 s in all. Times in the capture are real.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_OUTPUT = REPO_ROOT / "smtptop" / "demo" / "demo.pcap"

MX_HOST = "127.0.0.10"
SLOW_HOST = "127.0.0.11"
SINK_HOST = "127.0.0.12"
SUBMIT_PORT = 587
SINK_PORT = 2525
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"


def log(message: str) -> None:
    print(f"record_demo: {message}", flush=True)


# ---------------------------------------------------------------------------
# Outside: the network namespace


def run_checked(*command: str) -> None:
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)


def record_in_namespace(output: Path) -> None:
    """Create a namespace, run the recording inside it, delete the namespace."""
    namespace = f"smtptop-demo-{os.getpid()}"
    log(f"creating network namespace {namespace}")
    run_checked("ip", "netns", "add", namespace)
    try:
        run_checked("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        inner = [sys.executable, str(Path(__file__).resolve()), "--inside", str(output)]
        subprocess.run(
            ["ip", "netns", "exec", namespace, *inner],
            check=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
    finally:
        _kill_namespace_processes(namespace)
        log(f"deleting network namespace {namespace}")
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def _kill_namespace_processes(namespace: str) -> None:
    """Kill what the recording left running in its namespace (normally nothing)."""
    result = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    for pid in result.stdout.split():
        log(f"killing leftover process {pid} in {namespace}")
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------
# Inside: servers, capture and clients


@contextmanager
def tcpdump(output: Path) -> Iterator[None]:
    """Capture everything on lo into `output` until the block ends."""
    program = shutil.which("tcpdump")
    if program is None:
        raise FileNotFoundError("tcpdump not found; run scripts/setup.sh")
    # --immediate-mode: without it libpcap hands packets over in blocks, and
    # packets still in the kernel's buffer at SIGTERM never reach the file.
    command = [program, "-i", "lo", "--immediate-mode", "-U", "-Z", "root", "-w", str(output)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    first_line = process.stderr.readline().decode(errors="replace").strip()
    if "listening" not in first_line:
        process.kill()
        raise RuntimeError(f"tcpdump did not start: {first_line}")
    log(first_line)
    try:
        yield
    finally:
        # Let the last FIN and ACK segments reach the capture before stopping.
        time.sleep(1.0)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        for line in stderr.decode(errors="replace").splitlines():
            log(f"tcpdump: {line}")


def message(sender: str, recipients: list[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.datetime.now(datetime.timezone.utc))
    msg["Message-ID"] = make_msgid(domain="client.demo.example")
    msg.set_content(body)
    return msg


def plain_delivery() -> None:
    log("smtplib: plain delivery to mx:25")
    with smtplib.SMTP(MX_HOST, 25, local_hostname="app1.demo.example", timeout=30) as client:
        client.ehlo()
        msg = message(
            "alerts@app1.demo.example",
            ["ops@demo.example"],
            "Nightly backup finished",
            "The nightly backup finished in 42 minutes.\n",
        )
        client.send_message(msg)


def rejected_recipient() -> None:
    log("smtplib: one recipient rejected with 550 at mx:25")
    with smtplib.SMTP(MX_HOST, 25, local_hostname="app2.demo.example", timeout=30) as client:
        msg = message(
            "billing@app2.demo.example",
            ["alice@demo.example", "nobody@demo.example"],
            "Invoice 2024-117",
            "Please find the invoice details below.\n" * 5,
        )
        rejected = client.send_message(msg)
        log(f"smtplib: rejected recipients {sorted(rejected)}")


def only_recipient_rejected() -> None:
    log("smtplib: the only recipient rejected, client sends RSET and QUIT")
    with smtplib.SMTP(MX_HOST, 25, local_hostname="app2.demo.example", timeout=30) as client:
        client.ehlo()
        client.mail("billing@app2.demo.example")
        code, _ = client.rcpt("nobody@demo.example")
        log(f"smtplib: RCPT got {code}")
        client.rset()


def several_messages() -> None:
    log("smtplib: three messages on one connection to mx:25")
    with smtplib.SMTP(MX_HOST, 25, local_hostname="relay.demo.example", timeout=30) as client:
        client.ehlo()
        for number in range(1, 4):
            msg = message(
                "newsletter@relay.demo.example",
                [f"reader{number}@demo.example"],
                f"Weekly digest, part {number} of 3",
                "This week's digest.\n" * (10 * number),
            )
            client.send_message(msg)
            time.sleep(1.5)


def slow_server() -> None:
    log("smtplib: delivery to slow:25 (late greeting, late end-of-data reply)")
    with smtplib.SMTP(SLOW_HOST, 25, local_hostname="app3.demo.example", timeout=60) as client:
        msg = message(
            "reports@app3.demo.example",
            ["finance@demo.example"],
            "Quarterly report",
            "The quarterly report is attached as text.\n" * 40,
        )
        client.send_message(msg)


def stalled_client() -> None:
    log("smtplib: client idles 8 s after EHLO before MAIL")
    with smtplib.SMTP(MX_HOST, 25, local_hostname="batch.demo.example", timeout=30) as client:
        client.ehlo()
        time.sleep(8.0)
        msg = message(
            "batch@batch.demo.example",
            ["ops@demo.example"],
            "Batch job 7 done",
            "Batch job 7 finished.\n",
        )
        client.send_message(msg)


def swaks_run(port: int, host: str, *args: str) -> None:
    from tests.support.servers import swaks

    result = swaks(
        port,
        *args,
        host=host,
        helo="laptop.demo.example",
        sender="carol@demo.example",
        to="dave@demo.example",
        timeout=60,
        check=False,
    )
    masked_args = ["***" if previous == "--auth-password" else arg
             for previous, arg in zip(("",) + args, args)]
    log(f"swaks {' '.join(masked_args)} -> {host}:{port} exit status {result.returncode}")
    if result.returncode != 0:
        log(result.stdout[-2000:])


def swaks_pipelined() -> None:
    swaks_run(SINK_PORT, SINK_HOST, "--pipeline", "--header", "Subject: pipelined hello")


def swaks_starttls() -> None:
    swaks_run(25, MX_HOST, "--tls", "--header", "Subject: sent over STARTTLS")


def swaks_auth_login_plaintext() -> None:
    # AUTH LOGIN before STARTTLS, so the credentials cross the wire in base64;
    # smtptop masks them.
    swaks_run(
        SUBMIT_PORT, MX_HOST,
        "--auth", "LOGIN", "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD,
        "--header", "Subject: submitted with AUTH LOGIN",
    )  # fmt: skip


def swaks_auth_after_starttls() -> None:
    swaks_run(
        SUBMIT_PORT, MX_HOST,
        "--tls", "--auth", "PLAIN", "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD,
        "--header", "Subject: submitted over STARTTLS",
    )  # fmt: skip


def in_background(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def play_timeline() -> None:
    """Run the clients: about 50 s, with some conversations overlapping."""
    started = time.monotonic()

    def at(offset: float) -> None:
        time.sleep(max(0.0, started + offset - time.monotonic()))

    background: list[threading.Thread] = []
    at(0.5)
    plain_delivery()
    at(2.0)
    background.append(in_background(slow_server))
    at(4.0)
    swaks_pipelined()
    at(7.0)
    swaks_starttls()
    at(10.0)
    rejected_recipient()
    at(12.0)
    only_recipient_rejected()
    at(15.0)
    swaks_auth_login_plaintext()
    at(18.0)
    background.append(in_background(stalled_client))
    at(20.0)
    several_messages()
    at(27.0)
    swaks_auth_after_starttls()
    at(31.0)
    background.append(in_background(slow_server))
    at(33.0)
    swaks_pipelined()
    at(38.0)
    plain_delivery()
    at(42.0)
    swaks_starttls()
    at(46.0)
    plain_delivery()

    for thread in background:
        thread.join(timeout=60)


def record_inside(output: Path) -> None:
    from tests.support.servers import aiosmtpd_server, smtp_sink

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial.pcap")
    with ExitStack() as stack:
        # Servers first: the aiosmtpd controller's start-up probe connection
        # must not be in the capture.
        stack.enter_context(
            aiosmtpd_server(
                host=MX_HOST, port=25, starttls=True,
                reject_recipients=["nobody@demo.example"], server_hostname="mx.demo.example",
            )
        )  # fmt: skip
        stack.enter_context(
            aiosmtpd_server(
                host=SLOW_HOST, port=25, greeting_delay=2.0, data_delay=6.0,
                server_hostname="slow.demo.example",
            )
        )  # fmt: skip
        stack.enter_context(
            aiosmtpd_server(
                host=MX_HOST, port=SUBMIT_PORT, starttls=True, auth=True,
                server_hostname="submit.demo.example",
            )
        )  # fmt: skip
        stack.enter_context(
            smtp_sink("-h", "sink.demo.example", host=SINK_HOST, port=SINK_PORT)
        )
        log("servers listening; starting tcpdump")
        with tcpdump(partial):
            play_timeline()
    partial.replace(output)
    log(f"wrote {output} ({output.stat().st_size} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT,
                        help=f"pcap file to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--inside", action="store_true",
                        help="internal: record in the current network namespace")
    args = parser.parse_args()
    output = args.output.resolve()

    if os.geteuid() != 0:
        print("record_demo: needs root to create a network namespace and run tcpdump; "
              "run: sudo .venv/bin/python scripts/record_demo.py", file=sys.stderr)
        return 2
    if args.inside:
        record_inside(output)
    else:
        record_in_namespace(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
