"""Greeting, EHLO capabilities and STARTTLS, written as transcripts."""

from __future__ import annotations

from smtptop.direction import Direction
from smtptop.smtp.events import Anomaly, Phase, Reply, TlsMode, TlsStarted

from tests.smtp.helpers import Dialogue, greeted


def test_greeting_single_line() -> None:
    dialogue = Dialogue()
    events = dialogue.server(b"220 mx.example ESMTP ready\r\n", 1.5)

    assert len(events) == 1
    greeting = events[0]
    assert isinstance(greeting, Reply)
    assert greeting.is_greeting
    assert greeting.command is None
    assert dialogue.conv.greeting is not None
    assert dialogue.conv.greeting.code == 220
    assert dialogue.conv.phase is Phase.GREETING
    assert dialogue.conv.starttls == "unknown"


def test_greeting_multi_line_split() -> None:
    dialogue = Dialogue()
    assert dialogue.server(b"220-mx.example ESMTP\r\n220-no UCE", 1.0) == []
    dialogue.server(b"\r\n220 ready\r\n", 2.0)

    greeting = dialogue.conv.greeting
    assert greeting is not None
    assert greeting.lines == ("220-mx.example ESMTP", "220-no UCE", "220 ready")
    assert greeting.first_ts == 1.0
    assert greeting.ts == 2.0
    assert dialogue.summaries() == ["220-mx.example ESMTP (3 lines)"]


def test_reply_cut_mid_word() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx\r\n", 0.0)
    dialogue.client(b"EHLO c\r\n", 0.5)
    dialogue.server(b"250-mx\r\n250-PIPEL", 1.0)
    dialogue.server(b"INING\r\n250 8BITMIME\r\n", 2.0)

    replies = dialogue.replies()
    assert len(replies) == 2  # the greeting and one EHLO reply
    ehlo = replies[1]
    assert ehlo.lines == ("250-mx", "250-PIPELINING", "250 8BITMIME")
    assert ehlo.ts == 2.0
    assert ehlo.first_ts == 1.0
    assert dialogue.conv.capabilities == ("PIPELINING", "8BITMIME")
    assert not dialogue.conv.has_capability("PIPEL")
    assert dialogue.conv.has_capability("pipelining")
    assert dialogue.conv.starttls == "not-offered"


def test_greeting_and_ehlo_reply_in_one_chunk() -> None:
    dialogue = Dialogue()
    dialogue.client(b"EHLO client.example\r\n", 0.1)
    dialogue.server(b"220 mx.example\r\n250-mx.example\r\n250 PIPELINING\r\n", 0.4)

    greeting, ehlo = dialogue.replies()
    assert greeting.code == 220
    assert greeting.is_greeting
    assert greeting.command is None
    assert ehlo.code == 250
    assert ehlo.command is dialogue.conv.commands[0]
    assert dialogue.pairs() == [("EHLO", 250)]
    assert dialogue.conv.anomalies == {"command before greeting": 1}


def test_ehlo_reply_line_per_chunk_with_auth_pipelined() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx.example\r\n", 0.0)
    dialogue.client(b"EHLO c\r\n", 0.1)
    ehlo_lines = [
        b"250-mx.example\r\n",
        b"250-PIPELINING\r\n",
        b"250-SIZE 1000000\r\n",
        b"250-AUTH PLAIN LOGIN\r\n",
    ]
    for index, line in enumerate(ehlo_lines):
        dialogue.server(line, 0.2 + index / 10)
    dialogue.client(b"AUTH LOGIN\r\n", 0.65)
    dialogue.server(b"250 8BITMIME\r\n", 0.7)

    ehlo, auth = dialogue.conv.commands
    assert ehlo.reply is not None
    assert len(ehlo.reply.lines) == 5
    assert ehlo.reply.first_ts == 0.2
    assert ehlo.reply.ts == 0.7
    assert auth.verb == "AUTH"
    assert auth.reply is None
    assert "AUTH PLAIN LOGIN" in dialogue.conv.capabilities

    dialogue.close(1.0)
    assert auth.reply is None
    assert dialogue.conv.outstanding == 1


def test_ehlo_reply_line_per_chunk_then_auth_reply() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx.example\r\n", 0.0)
    dialogue.client(b"EHLO c\r\n", 0.1)
    dialogue.server(b"250-mx.example\r\n", 0.2)
    dialogue.client(b"AUTH LOGIN\r\n", 0.25)
    dialogue.server(b"250 AUTH LOGIN\r\n", 0.3)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 0.4)

    assert dialogue.pairs() == [("EHLO", 250), ("AUTH", 334)]


def test_starttls_on_last_ehlo_line() -> None:
    dialogue = greeted(b"250-mx.example\r\n250 STARTTLS\r\n")
    assert dialogue.conv.starttls == "offered"

    dialogue.client(b"STARTTLS\r\n", 1.0)
    events = dialogue.server(b"220 OK\r\n", 1.1)

    assert TlsStarted(1.1, TlsMode.STARTTLS) in events
    assert dialogue.conv.starttls == "accepted"
    assert dialogue.conv.tls_mode is TlsMode.STARTTLS
    assert dialogue.conv.phase is Phase.TLS

    client_hello = b"\x16\x03\x01\x00\x05hello"
    assert dialogue.client(client_hello + b"\r\nQUIT\r\n", 1.2) == []
    assert dialogue.server(b"\x16\x03\x03\x00\x02ok", 1.3) == []
    assert [record.verb for record in dialogue.conv.commands] == ["EHLO", "STARTTLS"]
    assert dialogue.conv.anomalies == {}


def test_starttls_any_220_text_starts_tls() -> None:
    dialogue = greeted()
    dialogue.client(b"STARTTLS\r\n", 1.0)
    dialogue.server(b"220 2.0.0 go ahead and do whatever\r\n", 1.1)

    assert dialogue.conv.tls_mode is TlsMode.STARTTLS
    assert dialogue.conv.starttls == "accepted"


def test_starttls_refused() -> None:
    dialogue = greeted(b"250-mx.example\r\n250 STARTTLS\r\n")
    dialogue.client(b"STARTTLS\r\n", 1.0)
    dialogue.server(b"454 4.7.0 TLS not available\r\n", 1.1)
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 1.2)

    assert dialogue.conv.starttls == "refused"
    assert dialogue.conv.tls_mode is TlsMode.NONE
    assert dialogue.pairs() == [("EHLO", 250), ("STARTTLS", 454), ("MAIL", None)]


def test_starttls_client_bytes_held_until_reply() -> None:
    dialogue = greeted()
    dialogue.client(b"STARTTLS\r\n\x16\x03\x01\x00\x05hello", 1.0)
    dialogue.server(b"220 ready\r\n", 1.1)

    assert dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert len(dialogue.conv.commands) == 2


def test_plaintext_after_starttls() -> None:
    dialogue = greeted()
    dialogue.client(b"STARTTLS\r\n", 1.0)
    dialogue.server(b"220 ready\r\n", 1.1)
    dialogue.client(b"EHLO client.example\r\n", 1.2)
    dialogue.server(b"250-mx.example\r\n250 PIPELINING\r\n", 1.3)

    assert dialogue.conv.anomalies == {"plaintext after STARTTLS": 2}
    assert dialogue.pairs()[-1] == ("EHLO", 250)
    assert dialogue.conv.starttls == "accepted"


def test_greeting_20_seconds_late() -> None:
    dialogue = Dialogue()
    dialogue.client(b"EHLO client.example\r\n", 0.5)
    dialogue.server(b"220 mx.example slow\r\n", 20.0)
    dialogue.server(b"250-mx.example\r\n250 8BITMIME\r\n", 20.1)

    greeting = dialogue.conv.greeting
    assert greeting is not None
    assert greeting.first_ts == 20.0
    assert greeting.ts == 20.0
    ehlo = dialogue.conv.commands[0]
    assert ehlo.reply is not None
    assert ehlo.reply.code == 250
    assert ehlo.latency == 20.1 - 0.5


def test_421_instead_of_greeting() -> None:
    dialogue = Dialogue()
    dialogue.server(b"421 4.3.2 too busy, try later\r\n", 0.2)

    assert dialogue.conv.greeting_rejected
    assert dialogue.conv.phase is Phase.REJECTED
    assert dialogue.conv.starttls == "unknown"
    assert dialogue.conv.anomalies == {}

    dialogue.close(0.3)
    assert dialogue.conv.phase is Phase.REJECTED


def test_554_instead_of_greeting() -> None:
    dialogue = Dialogue()
    dialogue.server(b"554 no SMTP service here\r\n", 0.2)

    assert dialogue.conv.greeting_rejected
    assert dialogue.conv.phase is Phase.REJECTED


def test_capture_started_after_greeting() -> None:
    dialogue = Dialogue()
    dialogue.client(b"MAIL FROM:<a@example.org>\r\n", 5.0)
    dialogue.server(b"250 2.1.0 Ok\r\n", 5.1)

    assert dialogue.conv.greeting is None
    assert dialogue.pairs() == [("MAIL", 250)]
    assert dialogue.conv.anomalies == {"command before greeting": 1, "no greeting seen": 1}


def test_implicit_tls_flag() -> None:
    dialogue = Dialogue(implicit_tls=True)
    events = dialogue.client(b"\x16\x03\x01\x00\x10", 0.1)

    assert events == [TlsStarted(0.1, TlsMode.IMPLICIT)]
    assert dialogue.conv.tls_mode is TlsMode.IMPLICIT
    assert dialogue.server(b"220 not parsed\r\n", 0.2) == []
    assert dialogue.conv.greeting is None


def test_implicit_tls_detected_from_both_hellos() -> None:
    dialogue = Dialogue()
    assert dialogue.client(b"\x16\x03", 0.1) == []
    assert dialogue.client(b"\x01\x02\x00\x01\x00", 0.1) == []
    assert dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert dialogue.conv.tls_mode is TlsMode.NONE

    events = dialogue.server(b"\x16\x03\x03\x00\x10", 0.2)

    assert events == [TlsStarted(0.2, TlsMode.IMPLICIT)]
    assert dialogue.conv.tls_mode is TlsMode.IMPLICIT
    assert dialogue.conv.phase is Phase.TLS
    assert dialogue.server(b"220 not parsed\r\n", 0.3) == []
    assert dialogue.conv.anomalies == {}


def test_client_hello_without_starttls() -> None:
    dialogue = greeted()
    record = b"\x16\x03\x01\x00\x06\x01\n\r\n\x00\x00"
    dialogue.client(record, 1.0)
    dialogue.server(b"500 5.5.2 Error: bad syntax\r\n", 1.1)
    dialogue.client(b"QUIT\r\n", 1.2)
    dialogue.server(b"221 bye\r\n", 1.3)

    assert dialogue.conv.tls_mode is TlsMode.NONE
    assert dialogue.conv.anomalies == {
        "TLS without STARTTLS": 1,
        "reply without command": 1,
    }
    assert dialogue.pairs()[-1] == ("QUIT", 221)
    assert any(isinstance(event, Anomaly) for event in dialogue.events)


def test_helo_means_no_starttls() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx\r\n", 0.0)
    dialogue.client(b"helo client\r\n", 0.1)
    dialogue.server(b"250 mx\r\n", 0.2)

    assert dialogue.pairs() == [("HELO", 250)]
    assert dialogue.conv.starttls == "not-offered"
    assert dialogue.conv.capabilities == ()
