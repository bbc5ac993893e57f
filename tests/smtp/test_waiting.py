"""Who owes the next move, since when and for what: waiting_on, waiting_since, waiting_for."""

from __future__ import annotations

from smtptop.direction import Direction

from tests.smtp.helpers import Dialogue, greeted

CLIENT = Direction.CLIENT_TO_SERVER
SERVER = Direction.SERVER_TO_CLIENT
CLIENT_HELLO = b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"
SERVER_FLIGHT = b"\x16\x03\x03\x00\x02\x02\x00" + b"\x17\x03\x03\x00\x03abc"
CLIENT_FINISHED = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x02xy"


def waiting(dialogue: Dialogue) -> tuple[Direction | None, float | None, str]:
    conv = dialogue.conv
    return conv.waiting_on, conv.waiting_since, conv.waiting_for


def test_greeting_due_from_handshake() -> None:
    dialogue = Dialogue()
    assert waiting(dialogue) == (SERVER, None, "greeting")

    dialogue.conv.set_connection_established(10.0)
    assert waiting(dialogue) == (SERVER, 10.0, "greeting")

    dialogue.server(b"220-mx.example\r\n", 12.0)
    assert waiting(dialogue) == (SERVER, 10.0, "greeting")

    dialogue.server(b"220 ESMTP\r\n", 13.0)
    assert waiting(dialogue) == (CLIENT, 13.0, "next command")


def test_greeting_two_lines_15_seconds_apart() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220-mx.example slow banner\r\n", 100.0)
    dialogue.server(b"220 ESMTP ready\r\n", 115.0)

    greetings = [reply for reply in dialogue.replies() if reply.is_greeting]
    assert len(greetings) == 1
    greeting = dialogue.conv.greeting
    assert greeting is not None
    assert greeting.first_ts == 100.0
    assert greeting.ts == 115.0
    assert greeting.lines == ("220-mx.example slow banner", "220 ESMTP ready")
    assert dialogue.conv.anomalies == {}


def test_command_replies() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx\r\n", 0.0)
    dialogue.client(b"EHLO c\r\n", 0.5)
    assert waiting(dialogue) == (SERVER, 0.5, "reply to EHLO")

    dialogue.server(b"250-mx\r\n250 PIPELINING\r\n", 0.7)
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n", 1.0)
    dialogue.client(b"DATA\r\n", 1.1)
    assert waiting(dialogue) == (SERVER, 1.0, "reply to MAIL")

    dialogue.server(b"250 ok\r\n250 ok\r\n", 1.3)
    assert waiting(dialogue) == (SERVER, 1.1, "354 to DATA")


def test_body_then_end_of_data() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.2)
    assert waiting(dialogue) == (CLIENT, 1.2, "message body")

    dialogue.client(b"Subject: x\r\n\r\nfirst part\r\n", 1.5)
    dialogue.client(b"second part\r\n", 2.0)
    assert waiting(dialogue) == (CLIENT, 2.0, "rest of message body")

    dialogue.client(b".\r\n", 2.5)
    assert waiting(dialogue) == (SERVER, 2.5, "reply to DATA end-of-data")

    dialogue.server(b"250 2.0.0 Ok: queued as ABC123\r\n", 3.0)
    assert waiting(dialogue) == (CLIENT, 3.0, "next command")


def test_client_stops_in_middle_of_data() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.2)
    dialogue.client(b"Subject: stalled\r\n\r\nsome of the body", 1.4)
    dialogue.client(b" and a bit more, then silence", 1.9)

    assert dialogue.conv.waiting_on is CLIENT
    assert dialogue.conv.waiting_for == "rest of message body"
    assert dialogue.conv.waiting_since == 1.9


def test_body_sent_before_354() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nearly body", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.2)

    assert waiting(dialogue) == (CLIENT, 1.2, "rest of message body")


def test_bdat_chunk_owed_then_reply() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n", 1.1)
    dialogue.client(b"BDAT 10 LAST\r\nabc", 1.2)
    dialogue.client(b"def", 1.4)
    assert waiting(dialogue) == (CLIENT, 1.4, "rest of message body")

    dialogue.client(b"ghij", 1.6)
    assert waiting(dialogue) == (SERVER, 1.2, "reply to BDAT")


def test_auth_exchange() -> None:
    dialogue = greeted(b"250-mx\r\n250 AUTH LOGIN\r\n")
    dialogue.client(b"AUTH LOGIN\r\n", 1.0)
    assert waiting(dialogue) == (SERVER, 1.0, "reply to AUTH")

    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 1.1)
    assert waiting(dialogue) == (CLIENT, 1.1, "AUTH response")

    dialogue.client(b"Y2Fyb2w=\r\n", 1.3)
    assert waiting(dialogue) == (SERVER, 1.3, "reply to AUTH response")


def test_quit_and_221() -> None:
    dialogue = greeted()
    dialogue.client(b"QUIT\r\n", 1.0)
    assert waiting(dialogue) == (SERVER, 1.0, "reply to QUIT")

    dialogue.server(b"221 2.0.0 Bye\r\n", 1.1)
    assert waiting(dialogue) == (None, None, "")


def test_421_ends_session() -> None:
    dialogue = greeted()
    dialogue.server(b"421 4.4.2 mx.example timeout\r\n", 300.0)

    assert waiting(dialogue) == (None, None, "")


def test_close_owes_nothing() -> None:
    dialogue = greeted()
    dialogue.client(b"NOOP\r\n", 1.0)
    dialogue.close(2.0)

    assert waiting(dialogue) == (None, None, "")


def test_starttls_handshake() -> None:
    dialogue = greeted(b"250-mx\r\n250 STARTTLS\r\n")
    dialogue.client(b"STARTTLS\r\n", 1.0)
    assert waiting(dialogue) == (SERVER, 1.0, "reply to STARTTLS")

    dialogue.server(b"220 2.0.0 Ready to start TLS\r\n", 1.1)
    assert waiting(dialogue) == (CLIENT, 1.1, "TLS handshake")

    dialogue.client(CLIENT_HELLO, 1.2)
    assert waiting(dialogue) == (SERVER, 1.2, "TLS handshake")

    dialogue.server(SERVER_FLIGHT, 1.4)
    assert waiting(dialogue) == (CLIENT, 1.4, "TLS handshake")

    dialogue.client(CLIENT_FINISHED, 1.5)
    # Both sides send application data now: the SMTP dialogue inside is not visible.
    assert waiting(dialogue) == (None, None, "")


def test_implicit_tls_waits_for_client_hello() -> None:
    dialogue = Dialogue(implicit_tls=True)
    dialogue.conv.set_connection_established(5.0)
    assert waiting(dialogue) == (CLIENT, 5.0, "TLS handshake")

    dialogue.client(CLIENT_HELLO, 5.1)
    assert waiting(dialogue) == (SERVER, 5.1, "TLS handshake")
