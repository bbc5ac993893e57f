"""MAIL, RCPT, DATA and BDAT transactions, written as transcripts."""

from __future__ import annotations

from smtptop.smtp.events import BodyData, BodyEnd, Command, CommandKind, Phase

from tests.smtp.helpers import greeted


def test_pipelined_mail_rcpt_data_refused() -> None:
    dialogue = greeted()
    dialogue.client(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.net>\r\nDATA\r\n", 1.0
    )
    dialogue.server(b"250 2.1.0 Ok\r\n550 5.1.1 unknown user\r\n503 5.5.1 no valid recipients\r\n", 1.2)
    dialogue.client(b"RSET\r\n", 1.3)
    dialogue.server(b"250 2.0.0 Ok\r\n", 1.4)

    assert dialogue.pairs() == [
        ("EHLO", 250),
        ("MAIL", 250),
        ("RCPT", 550),
        ("DATA", 503),
        ("RSET", 250),
    ]
    assert dialogue.of_type(BodyData) == []
    assert dialogue.of_type(BodyEnd) == []
    (transaction,) = dialogue.conv.transactions
    assert transaction.rcpts[0].addr == "nobody@example.net"
    assert transaction.rcpts[0].code == 550
    assert transaction.result == "rejected"
    assert transaction.result_code == 503
    assert dialogue.conv.phase is Phase.IDLE


def test_command_split_in_verb() -> None:
    dialogue = greeted()
    assert dialogue.client(b"MA", 1.0) == []
    events = dialogue.client(b"IL FROM:<a@example.org>\r\n", 1.1)

    assert len(events) == 1
    command = events[0]
    assert isinstance(command, Command)
    assert command.verb == "MAIL"
    assert command.arg == "FROM:<a@example.org>"
    assert command.ts == 1.1
    assert dialogue.conv.transactions[0].mail_from == "a@example.org"


def test_full_transaction_pipelined_with_body() -> None:
    dialogue = greeted()
    body = b"Subject: hi\r\n\r\nhello\r\n"
    dialogue.client(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n" + body + b".\r\n",
        1.0,
    )
    assert dialogue.phase() is Phase.DATA  # the body waits for the 354

    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.1)
    assert dialogue.phase() is Phase.END_OF_DATA
    dialogue.server(b"250 2.0.0 queued as 1234\r\n", 1.5)

    (transaction,) = dialogue.conv.transactions
    # Counted up to, not including, the CRLF.CRLF terminator.
    assert transaction.data_bytes == len(body) - 2
    assert transaction.result == "accepted"
    assert transaction.result_code == 250
    assert transaction.end_ts == 1.5
    end_of_data = dialogue.conv.commands[-1]
    assert end_of_data.kind is CommandKind.END_OF_DATA
    assert end_of_data.verb == "."
    assert end_of_data.latency == 0.5
    assert dialogue.phase() is Phase.IDLE
    assert "DATA body 20 bytes" in dialogue.summaries()


def test_body_dot_stuffing_and_split_terminator() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", 1.1)
    dialogue.client(b"line one\r\n..leading dot\r\n.", 1.2)
    dialogue.client(b"..\r\nlast\r", 1.3)
    assert dialogue.of_type(BodyEnd) == []
    dialogue.client(b"\n", 1.4)
    dialogue.client(b".", 1.5)
    dialogue.client(b"\r", 1.6)
    assert dialogue.of_type(BodyEnd) == []
    dialogue.client(b"\nQUIT\r\n", 1.7)

    (end,) = dialogue.of_type(BodyEnd)
    stuffed = b"line one\r\n..leading dot\r\n...\r\nlast"
    assert end.size == len(stuffed)
    assert end.ts == 1.7
    assert dialogue.conv.transactions[0].data_bytes == len(stuffed)
    assert dialogue.commands()[-1].verb == "QUIT"
    assert sum(event.size for event in dialogue.of_type(BodyData)) == len(stuffed)


def test_body_every_split_point() -> None:
    stream = b"a\r\n..\r\n...x\r\nb\r\n.\r\nNOOP\r\n"
    for cut in range(len(stream) + 1):
        dialogue = greeted()
        dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
        dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", 1.1)
        dialogue.client(stream[:cut], 1.2)
        dialogue.client(stream[cut:], 1.3)

        (end,) = dialogue.of_type(BodyEnd)
        assert end.size == len(b"a\r\n..\r\n...x\r\nb"), cut
        assert dialogue.commands()[-1].verb == "NOOP", cut


def test_empty_body() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", 1.1)
    dialogue.client(b".\r\n", 1.2)

    (end,) = dialogue.of_type(BodyEnd)
    assert end.size == 0
    assert dialogue.conv.transactions[0].mail_from == ""


def test_several_transactions_per_connection() -> None:
    dialogue = greeted()
    for index, code in enumerate((b"250", b"451", b"554")):
        ts = 1.0 + index
        dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", ts)
        dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", ts + 0.1)
        dialogue.client(b"body\r\n.\r\n", ts + 0.2)
        dialogue.server(code + b" done\r\n", ts + 0.3)
    dialogue.client(b"QUIT\r\n", 5.0)
    dialogue.server(b"221 bye\r\n", 5.1)
    dialogue.close(5.2)

    results = [(t.result, t.result_code) for t in dialogue.conv.transactions]
    assert results == [("accepted", 250), ("temp-failed", 451), ("rejected", 554)]
    assert dialogue.conv.phase is Phase.CLOSED


def test_rset_aborts_open_transaction() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n", 1.1)
    dialogue.client(b"RSET\r\n", 1.2)
    dialogue.server(b"250 ok\r\n", 1.3)

    (transaction,) = dialogue.conv.transactions
    assert transaction.result == "aborted"
    assert transaction.aborted_by == "RSET"


def test_close_aborts_open_transaction() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n", 1.1)
    events = dialogue.close(2.0)

    (transaction,) = dialogue.conv.transactions
    assert transaction.result == "aborted"
    assert transaction.aborted_by == "close"
    assert transaction.end_ts == 2.0
    assert dialogue.conv.commands[-1].reply is None
    assert events[-1].summary() == "connection closed, 1 command(s) unanswered"


def test_mail_rejected_rcpt_still_attached() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<spam@example.org>\r\nRCPT TO:<b@example.net>\r\n", 1.0)
    dialogue.server(b"550 go away\r\n503 need MAIL\r\n", 1.1)

    (transaction,) = dialogue.conv.transactions
    assert transaction.result == "rejected"
    assert transaction.result_code == 550
    assert transaction.rcpts[0].code == 503


def test_rcpt_before_mail() -> None:
    dialogue = greeted()
    dialogue.client(b"RCPT TO:<b@example.net>\r\n", 1.0)
    dialogue.server(b"503 5.5.1 need MAIL first\r\n", 1.1)

    assert dialogue.conv.anomalies == {"RCPT before MAIL": 1}
    assert dialogue.pairs()[-1] == ("RCPT", 503)


def test_lower_case_and_other_verbs() -> None:
    dialogue = greeted()
    dialogue.client(b"noop\r\nvrfy bob\r\nExpn list\r\nhelp\r\nXYZZY magic\r\nquit\r\n", 1.0)
    dialogue.server(b"250 ok\r\n252 maybe\r\n550 no\r\n214 help\r\n500 unknown\r\n221 bye\r\n", 1.1)

    assert dialogue.pairs()[1:] == [
        ("NOOP", 250),
        ("VRFY", 252),
        ("EXPN", 550),
        ("HELP", 214),
        ("XYZZY", 500),
        ("QUIT", 221),
    ]
    assert dialogue.conv.commands[2].arg == "bob"
    assert dialogue.conv.anomalies == {"unknown command": 1}
    assert dialogue.conv.phase is Phase.QUIT


def test_bdat_chunk_with_dot_line() -> None:
    dialogue = greeted()
    chunk = b"Subject: x\r\n.\r\nQUIT\r\n"
    dialogue.client(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
        + b"BDAT %d LAST\r\n" % len(chunk)
        + chunk,
        1.0,
    )
    dialogue.server(b"250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n", 1.2)

    assert dialogue.pairs()[1:] == [("MAIL", 250), ("RCPT", 250), ("BDAT", 250)]
    (end,) = dialogue.of_type(BodyEnd)
    assert end.size == len(chunk)
    assert end.summary() == f"BDAT body {len(chunk)} bytes"
    (transaction,) = dialogue.conv.transactions
    assert transaction.data_bytes == len(chunk)
    assert transaction.result == "accepted"


def test_bdat_several_chunks_split() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 5\r\nab", 1.0)
    dialogue.client(b"cdeBDAT 3 LAST\r\nxyz", 1.1)
    dialogue.client(b"QUIT\r\n", 1.2)
    dialogue.server(b"250 ok\r\n250 ok\r\n250 chunk\r\n250 queued\r\n221 bye\r\n", 1.3)

    assert dialogue.pairs()[1:] == [
        ("MAIL", 250),
        ("RCPT", 250),
        ("BDAT", 250),
        ("BDAT", 250),
        ("QUIT", 221),
    ]
    assert dialogue.conv.transactions[0].data_bytes == 8
    assert dialogue.conv.transactions[0].result == "accepted"


def test_bdat_refused_chunk_still_skipped() -> None:
    dialogue = greeted()
    dialogue.client(b"BDAT 6 LAST\r\nRSET\r\n", 1.0)
    dialogue.server(b"503 5.5.1 no MAIL\r\n", 1.1)
    dialogue.client(b"NOOP\r\n", 1.2)

    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "BDAT", "NOOP"]


def test_bdat_invalid_size() -> None:
    dialogue = greeted()
    dialogue.client(b"BDAT lots\r\nNOOP\r\n", 1.0)

    assert dialogue.conv.anomalies == {"invalid BDAT size": 1}
    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "BDAT", "NOOP"]


def test_bdat_last_refused_then_mail() -> None:
    dialogue = greeted()
    dialogue.client(b"BDAT 9 LAST\r\nMAIL FROM", 1.0)
    dialogue.server(b"503 5.5.1 Error: need MAIL command\r\n", 1.1)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.2)
    dialogue.server(b"250 2.1.0 Ok\r\n", 1.3)

    assert dialogue.pairs()[1:] == [("BDAT", 503), ("MAIL", 250)]
    assert [command.verb for command in dialogue.commands()] == ["EHLO", "BDAT", "MAIL"]
    assert BodyData(9, 1.0) in dialogue.events
    (transaction,) = dialogue.conv.transactions
    assert transaction.mail_from == "a@example.org"
    assert transaction.is_open
    assert dialogue.conv.anomalies == {}
