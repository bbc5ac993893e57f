"""Reply splitting, desynchronisation, gaps, bad line endings and oversized lines."""

from __future__ import annotations

import pytest

from smtptop.smtp.events import Anomaly, BodyEnd, GapNoted, Reply
from smtptop.smtp.lines import MAX_PARTIAL_LINE

from tests.smtp.helpers import Dialogue, greeted


def test_reply_every_split_point() -> None:
    stream = b"250-mx.example\r\n250-SIZE 100\r\n250 8BITMIME\r\n"
    for cut in range(1, len(stream)):
        dialogue = Dialogue()
        dialogue.server(b"220 mx\r\n", 0.0)
        dialogue.client(b"EHLO c\r\n", 0.1)
        dialogue.server(stream[:cut], 1.0)
        dialogue.server(stream[cut:], 2.0)

        reply = dialogue.conv.commands[0].reply
        assert reply is not None, cut
        assert reply.lines == ("250-mx.example", "250-SIZE 100", "250 8BITMIME"), cut
        assert reply.first_ts == 1.0, cut
        assert reply.ts == 2.0, cut
        assert dialogue.conv.capabilities == ("SIZE 100", "8BITMIME"), cut


def test_several_replies_in_one_chunk_pipelined() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\n", 1.0)
    dialogue.client(b"RCPT TO:<b@y>\r\n", 1.1)
    dialogue.client(b"RCPT TO:<c@y>\r\n", 1.2)
    dialogue.server(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n452 4.5.3 too many\r\n", 1.5)

    mail, first, second = dialogue.conv.commands[1:]
    assert [mail.latency, first.latency, second.latency] == pytest.approx([0.5, 0.4, 0.3])
    assert dialogue.conv.transactions[0].rcpts[1].code == 452
    assert dialogue.conv.last_reply is second.reply


def test_reply_without_command() -> None:
    dialogue = greeted()
    events = dialogue.server(b"250 stray\r\n", 1.0)

    reply = events[0]
    assert isinstance(reply, Reply)
    assert reply.command is None
    assert dialogue.conv.anomalies == {"reply without command": 1}


def test_unsolicited_421_is_not_an_anomaly() -> None:
    dialogue = greeted()
    events = dialogue.server(b"421 4.4.2 timeout, closing\r\n", 300.0)

    assert isinstance(events[0], Reply)
    assert events[0].command is None
    assert dialogue.conv.anomalies == {}


def test_unparseable_reply_line_skipped() -> None:
    dialogue = greeted()
    dialogue.client(b"NOOP\r\n", 1.0)
    dialogue.server(b"hello there\r\n250 ok\r\n", 1.1)

    assert dialogue.conv.anomalies == {"unparseable reply": 1}
    assert dialogue.pairs()[-1] == ("NOOP", 250)


def test_bare_lf_line_endings() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx\n", 0.0)
    dialogue.client(b"EHLO c\nNOOP\r\n", 0.1)
    dialogue.server(b"250 mx\r\n250 ok\r\n", 0.2)

    assert dialogue.pairs() == [("EHLO", 250), ("NOOP", 250)]
    # NOOP went out before the EHLO reply, so also before any PIPELINING keyword.
    assert dialogue.conv.anomalies == {"bare LF line ending": 2, "pipelining without PIPELINING": 1}


def test_line_over_1000_octets() -> None:
    dialogue = greeted()
    dialogue.client(b"NOOP " + b"x" * 1000 + b"\r\n", 1.0)

    assert dialogue.conv.anomalies == {"line over 1000 octets": 1}
    assert dialogue.conv.commands[-1].verb == "NOOP"


def test_endless_line_is_not_buffered() -> None:
    dialogue = greeted()
    chunk = b"x" * 8192
    for index in range(2 * MAX_PARTIAL_LINE // len(chunk)):
        dialogue.client(chunk, 1.0 + index)
    assert len(dialogue.conv._client) <= MAX_PARTIAL_LINE
    dialogue.client(b"tail\r\nNOOP\r\n", 50.0)

    assert dialogue.conv.anomalies == {"line over 1000 octets": 1}
    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "NOOP"]


def test_client_gap_resyncs_on_known_verb() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@", 1.0)
    events = dialogue.client_gap(100, 1.1)
    dialogue.client(b"lost-tail>\r\nRCPT TO:<c@y>\r\n", 1.2)

    assert isinstance(events[0], GapNoted)
    assert events[0].length == 100
    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "MAIL", "RCPT"]
    assert dialogue.conv.commands[-1].arg == "TO:<c@y>"


def test_server_gap_resyncs_on_reply_line() -> None:
    dialogue = greeted()
    dialogue.client(b"NOOP\r\n", 1.0)
    dialogue.server(b"250-partial", 1.1)
    dialogue.server_gap(50, 1.2)
    dialogue.server(b"ing garbage\r\n250 ok\r\n", 1.3)

    assert dialogue.pairs()[-1] == ("NOOP", 250)
    assert dialogue.conv.commands[-1].reply is not None
    assert dialogue.conv.commands[-1].reply.lines == ("250 ok",)
    assert dialogue.conv.anomalies == {}


def test_gap_in_the_middle_of_the_body() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", 1.1)
    dialogue.client(b"first part\r\n", 1.2)
    dialogue.client_gap(1000, 1.3)
    dialogue.client(b"MAIL FROM:<not-a-command@x>\r\nend\r\n.\r\nQUIT\r\n", 1.4)
    dialogue.server(b"250 queued\r\n221 bye\r\n", 1.5)

    (end,) = dialogue.of_type(BodyEnd)
    expected = len(b"first part\r\n") + 1000 + len(b"MAIL FROM:<not-a-command@x>\r\nend")
    assert end.size == expected
    assert dialogue.pairs()[-2:] == [(".", 250), ("QUIT", 221)]
    assert len(dialogue.conv.transactions) == 1
    assert dialogue.conv.transactions[0].result == "accepted"


def test_reply_during_body_ends_it() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go\r\n", 1.1)
    dialogue.client(b"body\r\n", 1.2)
    dialogue.server(b"451 4.4.2 timeout\r\n", 400.0)

    assert dialogue.conv.anomalies == {"reply before end of data": 1}
    assert dialogue.conv.transactions[0].result == "temp-failed"


def test_data_reply_lost_in_gap_and_guessed() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nbody\r\n", 1.0)
    dialogue.client_gap(10, 1.1)
    dialogue.client(b"more\r\n.\r\n", 1.2)

    (end,) = dialogue.of_type(BodyEnd)
    assert end.size == len(b"body\r\n") + 10 + len(b"more")


def test_events_summaries() -> None:
    dialogue = greeted(b"250-mx.example\r\n250-A\r\n250-B\r\n250-C\r\n250 D\r\n")
    dialogue.client_gap(1234, 1.0)
    dialogue.server(b"bogus\r\n", 1.1)

    summaries = dialogue.summaries()
    assert summaries[:3] == ["220 mx.example ESMTP", "EHLO client.example", "250-mx.example (5 lines)"]
    assert summaries[3] == "[1,234 client bytes missing]"
    assert summaries[4] == "anomaly: unparseable reply (bogus)"
    assert isinstance(dialogue.events[4], Anomaly)
