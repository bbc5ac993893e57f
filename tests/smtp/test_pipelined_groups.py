"""Pipelined groups (RFC 2920) and pipelining that the server did not advertise."""

from __future__ import annotations

import pytest

from smtptop.smtp.events import Anomaly

from tests.smtp.helpers import Dialogue, greeted

EHLO_WITHOUT_PIPELINING = b"250-mx.example\r\n250 8BITMIME\r\n"


def test_one_segment_two_reply_segments() -> None:
    dialogue = greeted()
    dialogue.client(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
        b"RCPT TO:<nobody@example.net>\r\nDATA\r\n",
        1.0,
    )
    dialogue.server(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", 1.2)
    dialogue.server(b"550 5.1.1 unknown user\r\n354 go ahead\r\n", 1.5)

    assert dialogue.pairs()[1:] == [("MAIL", 250), ("RCPT", 250), ("RCPT", 550), ("DATA", 354)]
    mail, first, second, data = dialogue.conv.commands[1:]
    assert [record.ts for record in (mail, first, second, data)] == [1.0] * 4
    assert [record.latency for record in (mail, first, second, data)] == pytest.approx(
        [0.2, 0.2, 0.5, 0.5]
    )
    assert [record.first_byte_latency for record in (mail, first, second, data)] == (
        pytest.approx([0.2, 0.2, 0.5, 0.5])
    )
    (transaction,) = dialogue.conv.transactions
    assert [recipient.code for recipient in transaction.rcpts] == [250, 550]
    assert mail.group == first.group == second.group == data.group
    assert mail.group != dialogue.conv.commands[0].group
    assert dialogue.conv.anomalies == {}


def test_command_after_reply_starts_group() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n", 1.1)
    dialogue.client(b"RCPT TO:<b@example.net>\r\n", 1.2)
    dialogue.client(b"RCPT TO:<c@example.net>\r\n", 1.3)
    dialogue.server(b"250 ok\r\n250 ok\r\n", 1.4)
    dialogue.client(b"QUIT\r\n", 1.5)

    groups = [record.group for record in dialogue.conv.commands]
    assert groups == [1, 2, 3, 3, 4]


def test_end_of_data_and_quit_share_group() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.1)
    dialogue.client(b"hello\r\n.\r\nQUIT\r\n", 1.2)

    end_of_data, quit_command = dialogue.conv.commands[-2:]
    assert end_of_data.verb == "."
    assert end_of_data.group == quit_command.group
    assert end_of_data.group != dialogue.conv.commands[-3].group


def test_lines_held_behind_gate_join_its_group() -> None:
    dialogue = greeted(b"250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n")
    dialogue.client(b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\nMAIL FROM:<a@example.org>\r\n", 1.0)
    dialogue.server(b"235 2.7.0 ok\r\n", 1.3)

    auth, mail = dialogue.conv.commands[1:]
    assert mail.ts == 1.0
    assert mail.group == auth.group


def test_pipelining_without_pipelining_keyword() -> None:
    dialogue = greeted(EHLO_WITHOUT_PIPELINING)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n", 1.1)

    assert dialogue.conv.anomalies == {"pipelining without PIPELINING": 1}
    assert Anomaly("pipelining without PIPELINING", "RCPT", 1.0) in dialogue.events


def test_next_command_after_partial_reply() -> None:
    dialogue = greeted(EHLO_WITHOUT_PIPELINING)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.0)
    dialogue.server(b"250-first line\r\n", 1.1)
    dialogue.client(b"RCPT TO:<b@example.net>\r\n", 1.2)
    dialogue.server(b"250 last line\r\n250 ok\r\n", 1.3)

    assert dialogue.conv.anomalies == {"pipelining without PIPELINING": 1}


def test_waiting_for_each_reply_is_no_anomaly() -> None:
    dialogue = greeted(EHLO_WITHOUT_PIPELINING)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n", 1.1)
    dialogue.client(b"RCPT TO:<b@example.net>\r\n", 1.2)
    dialogue.server(b"250 ok\r\n", 1.3)

    assert dialogue.conv.anomalies == {}


def test_one_sided_capture_is_no_pipelining_evidence() -> None:
    dialogue = Dialogue()
    dialogue.client(b"EHLO c\r\n", 1.0)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 2.0)
    dialogue.client(b"RCPT TO:<b@example.net>\r\n", 3.0)

    assert "pipelining without PIPELINING" not in dialogue.conv.anomalies
