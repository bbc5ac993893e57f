"""Tests of the test support code: the tshark oracle and the real SMTP peers."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import PUBLIC_CAPTURES, has_capture_privilege
from tests.support.servers import (
    TEST_PASSWORD,
    TEST_USER,
    aiosmtpd_server,
    find_program,
    smtp_sink,
    swaks,
)
from tests.support.tshark import (
    Conversation,
    conversation_count,
    normalise_verb,
    smtp_dialogue,
    tcp_payload_segment_count,
    tcp_segment_count,
    tshark_path,
)

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")
needs_swaks = pytest.mark.skipif(find_program("swaks") is None, reason="swaks is not installed")
needs_smtp_sink = pytest.mark.skipif(
    find_program("smtp-sink") is None, reason="smtp-sink (Postfix) is not installed"
)


# --- tshark oracle on public captures, values read by hand from tshark's output

MULTI_MAIL = PUBLIC_CAPTURES / "smtp-sv-multi-mail.pcap"

# HELO, three transactions (the last one with two recipients), QUIT.
MULTI_MAIL_DIALOGUE = [
    ("S", "220"),
    ("C", "HELO"), ("S", "250"),
    ("C", "MAIL"), ("S", "250"),
    ("C", "RCPT"), ("S", "250"),
    ("C", "DATA"), ("S", "354"), ("S", "250"),
    ("C", "MAIL"), ("S", "250"),
    ("C", "RCPT"), ("S", "250"),
    ("C", "DATA"), ("S", "354"), ("S", "250"),
    ("C", "MAIL"), ("S", "250"),
    ("C", "RCPT"), ("S", "250"),
    ("C", "RCPT"), ("S", "250"),
    ("C", "DATA"), ("S", "354"), ("S", "250"),
    ("C", "QUIT"), ("S", "221"),
]  # fmt: skip


@needs_tshark
def test_dialogue_multi_mail() -> None:
    dialogue = smtp_dialogue(MULTI_MAIL)

    conversation = Conversation("172.22.0.1", 58122, "172.22.0.2", 25)
    assert list(dialogue) == [conversation]
    assert dialogue[conversation] == MULTI_MAIL_DIALOGUE


@needs_tshark
def test_dialogue_verbs_upper_cased() -> None:
    items = next(iter(smtp_dialogue(MULTI_MAIL).values()))

    verbs = {item for side, item in items if side == "C"}
    assert verbs == {"HELO", "MAIL", "RCPT", "DATA", "QUIT"}


@needs_tshark
def test_counts_multi_mail() -> None:
    assert tcp_segment_count(MULTI_MAIL) == 39
    assert conversation_count(MULTI_MAIL) == 1
    # The three handshake segments, the FIN exchange and bare ACKs carry no payload.
    assert 0 < tcp_payload_segment_count(MULTI_MAIL) < 39


@needs_tshark
def test_dialogue_pipelined_frame_split() -> None:
    # One segment carries RSET, MAIL, RCPT and DATA; the next carries five replies.
    items = next(iter(smtp_dialogue(PUBLIC_CAPTURES / "smtp-sv-pipelined-rset.pcap").values()))

    assert items[9:13] == [("C", "RSET"), ("C", "MAIL"), ("C", "RCPT"), ("C", "DATA")]
    assert items[13:18] == [("S", "250")] * 4 + [("S", "354")]
    assert items[-2:] == [("C", "QUIT"), ("S", "221")]


@needs_tshark
def test_dialogue_starttls_abbreviation() -> None:
    # The client sends "staRttLs"; tshark reports "staR".
    items = next(iter(smtp_dialogue(PUBLIC_CAPTURES / "smtp-sv-rset-starttls-null.pcap").values()))

    assert ("C", "STARTTLS") in items
    assert ("C", "RSET") in items


@needs_tshark
def test_dialogue_extra_port() -> None:
    capture = PUBLIC_CAPTURES / "smtp-sv-2525-zero-window.pcap"

    assert smtp_dialogue(capture) == {}
    items = next(iter(smtp_dialogue(capture, extra_ports=[2525]).values()))
    assert items[:4] == [("S", "220"), ("C", "EHLO"), ("S", "250"), ("C", "AUTH")]


def test_normalise_verb() -> None:
    assert normalise_verb("mail") == "MAIL"
    assert normalise_verb("STAR") == "STARTTLS"
    assert normalise_verb("staR") == "STARTTLS"
    assert normalise_verb("EHLO") == "EHLO"


# --- real servers


def test_aiosmtpd_accepts_smtplib() -> None:
    with aiosmtpd_server() as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.sendmail("a@test.example", ["b@test.example"], b"Subject: t\r\n\r\nbody\r\n")

    assert server.handler is not None
    assert len(server.handler.messages) == 1
    assert server.handler.messages[0].rcpt_tos == ["b@test.example"]


def test_aiosmtpd_rejects_recipient() -> None:
    with aiosmtpd_server(reject_recipients=["nobody@test.example"]) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            client.mail("a@test.example")
            code, _ = client.rcpt("nobody@test.example")

    assert code == 550


def test_aiosmtpd_starttls_and_auth() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    with aiosmtpd_server(starttls=True, auth=True, auth_require_tls=True) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert not client.has_extn("auth")
            client.starttls(context=context)
            client.ehlo()
            code, _ = client.login(TEST_USER, TEST_PASSWORD)

    assert code == 235


def test_aiosmtpd_wrong_password_rejected() -> None:
    with aiosmtpd_server(auth=True) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login(TEST_USER, "wrong")


def test_aiosmtpd_data_delay() -> None:
    with aiosmtpd_server(data_delay=0.5) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            started = time.monotonic()
            client.sendmail("a@test.example", ["b@test.example"], b"\r\nbody\r\n")
            elapsed = time.monotonic() - started

    assert elapsed >= 0.5


@needs_swaks
def test_swaks_against_aiosmtpd_tls() -> None:
    with aiosmtpd_server(starttls=True) as server:
        result = swaks(server.port, "--tls")

    assert "TLS started" in result.stdout
    assert "250 2.0.0 Message accepted" in result.stdout


@needs_swaks
def test_swaks_failure_returns_output() -> None:
    with aiosmtpd_server(reject_recipients=["bad@test.example"]) as server:
        result = swaks(server.port, to="bad@test.example", check=False)

    assert result.returncode != 0
    assert "550 5.1.1" in result.stdout


@needs_swaks
@needs_smtp_sink
def test_smtp_sink_pipelining() -> None:
    with smtp_sink() as server:
        result = swaks(server.port, "--pipeline")

    assert "250-PIPELINING" in result.stdout
    assert "221" in result.stdout


@needs_smtp_sink
def test_smtp_sink_stops_on_exit() -> None:
    with smtp_sink() as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            assert client.noop()[0] == 250

    with pytest.raises(OSError):
        smtplib.SMTP(server.host, server.port, timeout=2)


# --- the oracle on traffic recorded here


@pytest.mark.live
@needs_tshark
@pytest.mark.skipif(find_program("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.skipif(not has_capture_privilege(), reason="tcpdump needs root or CAP_NET_RAW")
def test_dialogue_recorded_swaks(tmp_path: Path) -> None:
    pcap = tmp_path / "swaks.pcap"
    with aiosmtpd_server(reject_recipients=["bad@test.example"]) as server:
        tcpdump = subprocess.Popen(
            [find_program("tcpdump") or "tcpdump", "-i", "lo", "--immediate-mode", "-U",
             "-Z", "root", "-w", str(pcap),
             f"tcp port {server.port}"],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_tcpdump(tcpdump)
            swaks(server.port, to="bad@test.example", check=False)
        finally:
            tcpdump.terminate()
            tcpdump.wait(10)

    dialogue = smtp_dialogue(pcap, extra_ports=[server.port])
    assert len(dialogue) == 1
    (conversation, items), = dialogue.items()
    assert conversation.server_port == server.port
    assert items == [
        ("S", "220"), ("C", "EHLO"), ("S", "250"), ("C", "MAIL"), ("S", "250"),
        ("C", "RCPT"), ("S", "550"), ("C", "QUIT"), ("S", "221"),
    ]  # fmt: skip


def _wait_for_tcpdump(process: subprocess.Popen[bytes]) -> None:
    """Wait until tcpdump prints that it is listening (on stderr)."""
    assert process.stderr is not None
    line = process.stderr.readline().decode(errors="replace")
    if "listening" not in line:
        process.kill()
        pytest.fail(f"tcpdump did not start: {line.strip()}")
