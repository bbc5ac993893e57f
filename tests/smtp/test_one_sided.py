"""Captures with no server bytes at all: client bytes after DATA, STARTTLS or AUTH are read at once."""

from __future__ import annotations

from smtptop.direction import Direction
from smtptop.smtp.events import BodyEnd, CommandKind, Phase

from tests.smtp.helpers import Dialogue, greeted

TWO_MESSAGES = [
    b"EHLO client.example\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"RCPT TO:<b@example.net>\r\n",
    b"DATA\r\n",
    b"Subject: one\r\n\r\nfirst\r\n.\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"RCPT TO:<c@example.net>\r\n",
    b"DATA\r\n",
    b"Subject: two\r\n\r\nsec",
    b"ond\r\n.",
    b"\r\nQUIT\r\n",
]


def test_client_only_two_messages() -> None:
    dialogue = Dialogue()
    for number, chunk in enumerate(TWO_MESSAGES):
        dialogue.client(chunk, 1.0 + number / 10)

    verbs = [record.verb for record in dialogue.conv.commands]
    assert verbs == ["EHLO", "MAIL", "RCPT", "DATA", ".", "MAIL", "RCPT", "DATA", ".", "QUIT"]
    assert [body.size for body in dialogue.of_type(BodyEnd)] == [21, 22]
    assert [transaction.rcpts[0].addr for transaction in dialogue.conv.transactions] == [
        "b@example.net",
        "c@example.net",
    ]
    assert [transaction.data_bytes for transaction in dialogue.conv.transactions] == [21, 22]
    assert dialogue.phase() is Phase.QUIT
    assert dialogue.conv.outstanding == 10


def test_client_only_one_chunk() -> None:
    dialogue = Dialogue()
    dialogue.client(b"".join(TWO_MESSAGES), 1.0)

    verbs = [record.verb for record in dialogue.conv.commands]
    assert verbs == ["EHLO", "MAIL", "RCPT", "DATA", ".", "MAIL", "RCPT", "DATA", ".", "QUIT"]


def test_client_only_auth_login() -> None:
    dialogue = Dialogue(reveal_secrets=True)
    dialogue.client(b"EHLO c\r\nAUTH LOGIN\r\n", 1.0)
    dialogue.client(b"dXNlcg==\r\n", 1.1)
    dialogue.client(b"cGFzcw==\r\n", 1.2)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.3)

    kinds = [(record.verb, record.kind) for record in dialogue.conv.commands]
    assert kinds == [
        ("EHLO", CommandKind.COMMAND),
        ("AUTH", CommandKind.COMMAND),
        ("", CommandKind.SASL_RESPONSE),
        ("", CommandKind.SASL_RESPONSE),
        ("MAIL", CommandKind.COMMAND),
    ]
    assert dialogue.conv.auth_user == "user"


def test_body_still_held_once_server_spoke() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<c@x>\r\n", 1.0)

    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "MAIL", "RCPT", "DATA"]

    dialogue.server(b"250 ok\r\n250 ok\r\n554 no valid recipients\r\n", 1.1)
    assert dialogue.pairs()[-2:] == [("DATA", 554), ("MAIL", None)]


def test_server_gap_means_server_spoke() -> None:
    dialogue = Dialogue()
    dialogue.server_gap(30, 0.0)
    dialogue.client(b"DATA\r\nQUIT\r\n", 1.0)

    assert [record.verb for record in dialogue.conv.commands] == ["DATA"]


def test_late_replies_after_guess() -> None:
    # The capture starts after the greeting, and the server's first packet comes
    # late: the body was read on a guessed 354 before the real one arrived.
    dialogue = Dialogue()
    dialogue.client(b"DATA\r\nhello\r\n.\r\n", 1.0)
    dialogue.server(b"354 go ahead\r\n250 2.0.0 queued\r\n", 1.5)
    dialogue.client(b"QUIT\r\n", 1.6)
    dialogue.server(b"221 bye\r\n", 1.7)

    assert dialogue.pairs() == [("DATA", 354), (".", 250), ("QUIT", 221)]
    assert dialogue.phase() is Phase.QUIT


def test_late_334_after_guessed_sasl_response() -> None:
    dialogue = Dialogue()
    dialogue.client(b"AUTH LOGIN\r\ndXNlcg==\r\n", 1.0)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n", 1.1)
    dialogue.client(b"cGFzcw==\r\n", 1.2)
    dialogue.server(b"235 2.7.0 ok\r\n", 1.3)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.4)
    dialogue.server(b"250 ok\r\n", 1.5)

    assert dialogue.pairs() == [("AUTH", 334), ("", 334), ("", 235), ("MAIL", 250)]


def test_client_only_starttls() -> None:
    dialogue = Dialogue()
    dialogue.client(b"EHLO c\r\nSTARTTLS\r\n", 1.0)
    dialogue.client(b"\x16\x03\x01\x00\x02\x01\x00", 1.1)
    dialogue.client(b"\x17\x03\x03\x00\x02QUIT\r\n", 1.2)

    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "STARTTLS"]
    assert dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert dialogue.conv.anomalies == {"command before greeting": 2}
