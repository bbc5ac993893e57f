"""Live capture of Python's smtplib talking to aiosmtpd on loopback.

Each test compares what the engine rebuilt from the captured packets with
what the client itself recorded sending and reading (``RecordingSMTP``).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record
from smtptop.smtp.events import CommandKind
from tests.live.capture import SETTLE_SECONDS, LoopbackCapture
from tests.live.clients import (
    DATA_TERMINATOR,
    END_OF_DATA_VERB,
    RecordingSMTP,
    dot_stuff,
)
from tests.support.servers import TEST_PASSWORD, TEST_USER, aiosmtpd_server

pytestmark = pytest.mark.live

SENDER = "sender@test.example"
REJECTED = "nobody@test.example"
# Two messages on one connection, two recipients each. The server rejects REJECTED with 550.
MESSAGES = [
    (["alice@test.example", REJECTED], [b"Subject: first", b"", b"Hello Alice.", b".a line that starts with a dot", b"bye"]),
    (["bob@test.example", "carol@test.example"], [b"Subject: second", b"", b"..two dots", b".", b"end"]),
]  # fmt: skip
CLIENT_TIMEOUT = 30.0


def _send_messages(client: RecordingSMTP) -> None:
    for recipients, lines in MESSAGES:
        # smtplib is handed the lines unstuffed and does the dot-stuffing itself.
        client.sendmail(SENDER, recipients, b"".join(line + b"\r\n" for line in lines))


def _tracked_lines(conversation: Conversation) -> list[tuple[str, int | None]]:
    assert conversation.smtp is not None
    return [
        (command.verb, command.reply.code if command.reply else None)
        for command in conversation.smtp.commands
    ]


# --- plain transactions


def test_smtplib_two_messages_match_client() -> None:
    with aiosmtpd_server(reject_recipients=[REJECTED]) as server:
        with LoopbackCapture(server.port) as capture:
            client = RecordingSMTP(server.host, server.port, timeout=CLIENT_TIMEOUT)
            client_address = client.client_port()
            _send_messages(client)
            client.quit()
            capture.wait_closed()
        conversation = capture.only_dialogue()
    record = conversation_record(conversation)
    sent = client.lines()

    assert record["client"] == f"{client_address[0]}:{client_address[1]}"
    assert record["server"] == f"{server.host}:{server.port}"
    assert _tracked_lines(conversation) == [(line.verb, line.reply_code) for line in sent]
    assert record["greeting"]["code"] == client.greeting_code == 220
    assert record["greeting"]["latency_ms"] >= 0
    assert record["tcp"]["stage"] == "closed (FIN)"
    assert record["tcp"]["state"] == "SF"
    assert record["phase"] == "closed"
    assert record["anomalies"] == {}


def test_smtplib_transactions_match_client() -> None:
    with aiosmtpd_server(reject_recipients=[REJECTED]) as server:
        with LoopbackCapture(server.port) as capture:
            client = RecordingSMTP(server.host, server.port, timeout=CLIENT_TIMEOUT)
            _send_messages(client)
            client.quit()
            capture.wait_closed()
        conversation = capture.only_dialogue()
    transactions = conversation_record(conversation)["transactions"]
    sent = client.lines()
    rcpt_codes = {
        line.sent.split(b"<", 1)[1].split(b">", 1)[0].decode(): line.reply_code
        for line in sent
        if line.verb == "RCPT"
    }
    bodies = [line for line in sent if line.verb == END_OF_DATA_VERB]

    assert len(transactions) == len(MESSAGES) == len(bodies)
    for transaction, (recipients, lines), body in zip(transactions, MESSAGES, bodies):
        assert transaction["mail_from"] == SENDER
        assert [{"addr": rcpt["addr"], "code": rcpt["code"]} for rcpt in transaction["rcpt"]] == [
            {"addr": addr, "code": rcpt_codes[addr]} for addr in recipients
        ]
        # aiosmtpd sends an enhanced code with each RCPT reply; its class matches the reply's.
        for rcpt in transaction["rcpt"]:
            assert rcpt["enhanced"] is not None
            assert rcpt["enhanced"][0] == str(rcpt["code"])[0]
        # Counted: the body as sent, dot-stuffed, with every line's CRLF except the
        # last one's, which belongs to the CRLF.CRLF terminator (RFC 5321 section 4.1.1.4).
        stuffed = dot_stuff(lines)
        assert body.sent == stuffed + b".\r\n"
        assert transaction["data_bytes"] == len(body.sent) - len(DATA_TERMINATOR)
        assert transaction["data_bytes"] == len(stuffed) - len(b"\r\n")
        assert transaction["result_code"] == body.reply_code
        expected_result = "accepted" if body.reply_code // 100 == 2 else "rejected"
        assert transaction["result"] == expected_result
    assert rcpt_codes[REJECTED] == 550
    assert server.handler is not None
    assert len(server.handler.messages) == len(MESSAGES)


# --- AUTH


def _password_forms() -> dict[str, str]:
    """Return each form the password takes: as typed, and base64-encoded as each mechanism sends it."""
    plain_response = f"\0{TEST_USER}\0{TEST_PASSWORD}".encode()
    return {
        "as typed": TEST_PASSWORD,
        "LOGIN response": base64.b64encode(TEST_PASSWORD.encode()).decode(),
        "PLAIN response": base64.b64encode(plain_response).decode(),
    }


def _authenticate(
    mechanism: str, reveal_secrets: bool
) -> tuple[Conversation, str, str, RecordingSMTP]:
    """Log in with `mechanism`, then return the conversation, its JSON record, its detail repr and the client."""
    with aiosmtpd_server(auth=True) as server:
        with LoopbackCapture(server.port, reveal_secrets=reveal_secrets) as capture:
            client = RecordingSMTP(server.host, server.port, timeout=CLIENT_TIMEOUT)
            client.ehlo()
            client.user, client.password = TEST_USER, TEST_PASSWORD
            authenticator = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            code, _ = client.auth(mechanism, authenticator)
            assert code == 235
            client.quit()
            capture.wait_closed()
        conversation = capture.only_dialogue()
        detail = capture.engine.detail(conversation.key)
    assert detail is not None
    return conversation, json.dumps(conversation_record(conversation)), repr(detail), client


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_password_masked(mechanism: str) -> None:
    conversation, record_json, detail_repr, client = _authenticate(mechanism, reveal_secrets=False)

    assert [verb for verb, _ in _tracked_lines(conversation)] == [
        line.verb for line in client.lines()
    ]
    for form, secret in _password_forms().items():
        assert secret not in record_json, f"password ({form}) in the JSON record"
        assert secret not in detail_repr, f"password ({form}) in the conversation detail"
    assert json.loads(record_json)["auth_user"] != TEST_USER


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_password_revealed(mechanism: str) -> None:
    _, record_json, detail_repr, client = _authenticate(mechanism, reveal_secrets=True)
    on_the_wire = _password_forms()[f"{mechanism} response"]

    assert any(on_the_wire.encode() in chunk for chunk in client.sent)
    assert on_the_wire in record_json
    assert on_the_wire in detail_repr
    assert json.loads(record_json)["auth_user"] == TEST_USER


# --- a slow server


DATA_DELAY = 1.5
# Capture timestamps of the end-of-data line and its reply bracket the server's
# sleep; the margin covers timestamp rounding, not scheduling.
LATENCY_MARGIN = 0.05


def test_slow_end_of_data_reply() -> None:
    with aiosmtpd_server(data_delay=DATA_DELAY) as server:
        with LoopbackCapture(server.port) as capture:
            client = RecordingSMTP(server.host, server.port, timeout=CLIENT_TIMEOUT)
            sender = threading.Thread(
                target=client.sendmail,
                args=(SENDER, ["alice@test.example"], b"Subject: slow\r\n\r\nhi\r\n"),
            )
            sender.start()
            stages = _stages_while(sender, capture)
            sender.join(SETTLE_SECONDS)
            client.quit()
            capture.wait_closed()
        conversation = capture.only_dialogue()
    assert conversation.smtp is not None
    end_of_data = [c for c in conversation.smtp.commands if c.kind is CommandKind.END_OF_DATA]

    assert "end-of-data" in stages, f"stages seen while the server slept: {stages}"
    assert len(end_of_data) == 1
    assert end_of_data[0].reply is not None
    assert end_of_data[0].reply.code == 250
    assert end_of_data[0].latency is not None
    assert end_of_data[0].latency >= DATA_DELAY - LATENCY_MARGIN


def _stages_while(thread: threading.Thread, capture: LoopbackCapture) -> list[str]:
    """Collect the distinct stages of the captured connection while `thread` runs."""
    stages: list[str] = []
    deadline = time.monotonic() + SETTLE_SECONDS
    while thread.is_alive() and time.monotonic() < deadline:
        for row in capture.handshaken_rows():
            if not stages or stages[-1] != row.stage:
                stages.append(row.stage)
        time.sleep(0.02)
    return stages


# --- IPv6


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback address ::1 here")
def test_ipv6_endpoints_in_brackets() -> None:
    with aiosmtpd_server(host="::1") as server:
        with LoopbackCapture(server.port) as capture:
            client = RecordingSMTP(server.host, server.port, timeout=CLIENT_TIMEOUT)
            client_host, client_port = client.client_port()
            client.sendmail(SENDER, ["alice@test.example"], b"Subject: six\r\n\r\nhi\r\n")
            client.quit()
            capture.wait_closed()
        conversation = capture.only_dialogue()
    record = conversation_record(conversation)

    assert record["client"] == f"[{client_host}]:{client_port}"
    assert record["server"] == f"[::1]:{server.port}"
    assert _tracked_lines(conversation) == [(line.verb, line.reply_code) for line in client.lines()]
    assert record["transactions"][0]["result"] == "accepted"
