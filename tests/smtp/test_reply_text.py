"""Enhanced status codes (RFC 3463) and queue IDs read from reply texts."""

from __future__ import annotations

import pytest

from smtptop.smtp.events import ReplyRecord
from smtptop.smtp.reply_text import parse_queue_id

from tests.smtp.helpers import greeted


def reply(*lines: str) -> ReplyRecord:
    return ReplyRecord(int(lines[0][:3]), lines, 1.0, 1.0)


@pytest.mark.parametrize(
    ("line", "enhanced"),
    [
        ("550 5.1.1 <nobody@example.net>: Recipient address rejected", "5.1.1"),
        ("250 2.0.0 Ok: queued as 4Z1Xk25Qmgz9sVW", "2.0.0"),
        ("421 4.4.2 mx.example Error: timeout exceeded", "4.4.2"),
        ("250 2.1.5", "2.1.5"),
        ("552 5.3.4 Message size exceeds fixed limit", "5.3.4"),
        ("550 5.7.123 policy", "5.7.123"),
        # The class must be the first digit of the reply code.
        ("250 5.1.1 odd", None),
        ("250 OK", None),
        ("250 2.0.0Ok", None),
        ("354 End data with <CR><LF>.<CR><LF>", None),
        ("550 5.1.1234 too many detail digits", None),
        ("250", None),
    ],
)
def test_enhanced_status_code(line: str, enhanced: str | None) -> None:
    assert reply(line).enhanced == enhanced


def test_enhanced_code_from_first_line() -> None:
    record = reply("250-2.0.0 mx.example", "250 5.5.5 last line")

    assert record.enhanced == "2.0.0"


@pytest.mark.parametrize(
    ("line", "reply_class"),
    [("220 mx", "2xx"), ("354 go ahead", "3xx"), ("451 4.3.0 later", "4xx"), ("554 no", "5xx")],
)
def test_reply_class(line: str, reply_class: str) -> None:
    assert reply(line).reply_class == reply_class


QUEUE_IDS = [
    # Postfix
    ("250 2.0.0 Ok: queued as 4Z1Xk25Qmgz9sVW", "4Z1Xk25Qmgz9sVW"),
    ("250 2.0.0 Ok: queued as 3F1A2B4C5D.", "3F1A2B4C5D"),
    # Exim
    ("250 OK id=1kdyd6-0005Fh-Rb", "1kdyd6-0005Fh-Rb"),
    # Sendmail
    ("250 2.0.0 x9ABCDEF012345 Message accepted for delivery", "x9ABCDEF012345"),
    # Microsoft Exchange and Microsoft 365: the InternalId wins over the message ID.
    (
        "250 2.6.0 <msgid@host.example> [InternalId=123, Hostname=X] Queued mail for delivery",
        "123",
    ),
    (
        (
            "250 2.6.0 <0123abc@AM0PR01MB1234.eurprd01.prod.exchangelabs.com> "
            "[InternalId=26542005281234, Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] "
            "16742 bytes in 0.123, 132.421 KB/sec Queued mail for delivery"
        ),
        "26542005281234",
    ),
    (
        "250 2.6.0 <msgid@host.example> Queued mail for delivery",
        "msgid@host.example",
    ),
    # Gmail
    (
        "250 2.0.0 OK  1700000000 d2e1a72fcca58-6d0a1b2c3d4sm1234567pfb.12 - gsmtp",
        "d2e1a72fcca58-6d0a1b2c3d4sm1234567pfb.12",
    ),
    # aiosmtpd 1.4.6: the default reply, and the text of its documented example handler.
    ("250 OK", None),
    ("250 Message accepted for delivery", None),
    # An aiosmtpd handler's handle_DATA returns the whole reply line, so it may name an ID.
    ("250 2.0.0 Ok: queued as demo-0001", "demo-0001"),
    # The demo capture: an aiosmtpd handler and Postfix's smtp-sink.
    ("250 2.0.0 Message accepted for delivery", None),
    ("250 2.0.0 Ok", None),
]


@pytest.mark.parametrize(("line", "queue_id"), QUEUE_IDS)
def test_queue_id_formats(line: str, queue_id: str | None) -> None:
    assert parse_queue_id([line]) == queue_id


@pytest.mark.parametrize(("line", "queue_id"), QUEUE_IDS)
def test_queue_id_on_transaction(line: str, queue_id: str | None) -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.1)
    dialogue.client(b"hello\r\n.\r\n", 1.2)
    dialogue.server(line.encode() + b"\r\n", 1.5)

    (transaction,) = dialogue.conv.transactions
    assert transaction.result == "accepted"
    assert transaction.queue_id == queue_id


def test_queue_id_after_bdat_last() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n", 1.0)
    dialogue.client(b"BDAT 3\r\nabcBDAT 2 LAST\r\nde", 1.1)
    dialogue.server(b"250 ok\r\n250 ok\r\n250 2.0.0 3 octets received\r\n", 1.2)
    dialogue.server(b"250 2.0.0 Ok: queued as 4Z1Xk25Qmgz9sVW\r\n", 1.3)

    (transaction,) = dialogue.conv.transactions
    assert transaction.queue_id == "4Z1Xk25Qmgz9sVW"


def test_queue_id_only_from_accepting_reply() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 Ok: queued as NOTYET1\r\n250 ok\r\n354 go ahead\r\n", 1.1)
    dialogue.client(b"hello\r\n.\r\n", 1.2)
    dialogue.server(b"554 5.7.1 rejected, id=1kdyd6-0005Fh-Rb\r\n", 1.5)

    (transaction,) = dialogue.conv.transactions
    assert transaction.result == "rejected"
    assert transaction.queue_id is None
