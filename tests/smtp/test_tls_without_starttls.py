"""TLS records where the dialogue did not agree on TLS: no STARTTLS, or implicit TLS on one side only."""

from __future__ import annotations

from smtptop.direction import Direction
from smtptop.smtp.events import Anomaly, Phase, Reply, TlsMode, TlsStarted

from tests.smtp.helpers import Dialogue, greeted

# A ClientHello record whose fragment contains CRLF and command-like text, so a
# parser that read it as lines would record commands.
CLIENT_HELLO = b"\x16\x03\x01\x00\x10" + b"\x01\x00\x00\x0c\r\nQUIT\r\nEHLO"
SERVER_HELLO = b"\x16\x03\x03\x00\x04\x02\x00\x00\x00"


def test_client_hello_split_after_greeting() -> None:
    dialogue = Dialogue()
    dialogue.server(b"220 mx.example ESMTP\r\n", 0.0)
    dialogue.client(CLIENT_HELLO[:3], 0.1)
    dialogue.client(CLIENT_HELLO[3:9], 0.2)
    dialogue.client(CLIENT_HELLO[9:], 0.3)
    dialogue.server(b"500 5.5.1 Command unrecognized\r\n" * 4, 0.4)

    assert dialogue.conv.commands == []
    assert [reply.code for reply in dialogue.replies()] == [220, 500, 500, 500, 500]
    assert [reply.command for reply in dialogue.replies()] == [None] * 5
    assert dialogue.conv.tls_mode is TlsMode.NONE
    assert dialogue.conv.anomalies == {"TLS without STARTTLS": 1, "reply without command": 4}
    assert Anomaly("TLS without STARTTLS", "", 0.1) in dialogue.events


def test_plaintext_after_tls_record() -> None:
    dialogue = greeted()
    alert = b"\x15\x03\x03\x00\x02\x02\x28"
    dialogue.client(CLIENT_HELLO + alert, 1.0)
    dialogue.server(b"500 5.5.1 Command unrecognized\r\n", 1.1)
    dialogue.client(b"EHLO client.example\r\n", 1.2)
    dialogue.server(b"250 mx.example\r\n", 1.3)

    assert dialogue.pairs() == [("EHLO", 250), ("EHLO", 250)]
    assert dialogue.conv.anomalies == {"TLS without STARTTLS": 2, "reply without command": 1}
    assert not dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert dialogue.phase() is Phase.EHLO


def test_client_tls_against_plaintext_greeting() -> None:
    dialogue = Dialogue()
    assert dialogue.client(CLIENT_HELLO, 0.1) == []
    events = dialogue.server(b"220 mx.example ESMTP\r\n", 0.3)
    dialogue.client(b"\x17\x03\x03\x00\x05EHLO\n", 0.4)
    dialogue.close(0.5)

    assert [type(event) for event in events] == [Anomaly, Reply]
    greeting = events[1]
    assert isinstance(greeting, Reply)
    assert greeting.is_greeting
    assert greeting.code == 220
    assert dialogue.conv.greeting is not None
    assert dialogue.conv.commands == []
    assert dialogue.conv.tls_mode is TlsMode.NONE
    assert dialogue.of_type(TlsStarted) == []
    assert dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert not dialogue.conv.is_encrypted(Direction.SERVER_TO_CLIENT)
    assert dialogue.conv.anomalies == {"client started TLS against a plaintext greeting": 1}


def test_server_plaintext_parsed_after_client_tls() -> None:
    dialogue = Dialogue()
    dialogue.client(CLIENT_HELLO, 0.1)
    dialogue.server(b"220-mx.example ESMTP\r\n", 0.2)
    dialogue.server(b"220 no TLS here\r\n421 4.4.2 closing\r\n", 0.3)

    assert [reply.code for reply in dialogue.replies()] == [220, 421]
    assert dialogue.replies()[0].lines == ("220-mx.example ESMTP", "220 no TLS here")
    assert dialogue.conv.anomalies == {"client started TLS against a plaintext greeting": 1}


def test_client_tls_with_silent_server() -> None:
    dialogue = Dialogue()
    dialogue.client(CLIENT_HELLO, 0.1)
    dialogue.client(b"EHLO not parsed\r\n", 0.2)
    dialogue.close(0.3)

    assert dialogue.conv.commands == []
    assert dialogue.conv.tls_mode is TlsMode.NONE
    assert dialogue.conv.is_encrypted(Direction.CLIENT_TO_SERVER)
    assert dialogue.conv.anomalies == {}


def test_implicit_tls_needs_server_tls_too() -> None:
    dialogue = Dialogue()
    dialogue.client(CLIENT_HELLO, 0.1)
    events = dialogue.server(SERVER_HELLO, 0.2)

    assert events == [TlsStarted(0.2, TlsMode.IMPLICIT)]
    assert dialogue.conv.tls_mode is TlsMode.IMPLICIT
    assert dialogue.conv.is_encrypted(Direction.SERVER_TO_CLIENT)
    assert dialogue.conv.anomalies == {}


def test_binary_lines_are_not_commands() -> None:
    dialogue = Dialogue()
    dialogue.client(b"g\t\xe4Y\xe9XH\xcf\n\xb6ZfpOZ\n", 0.1)
    dialogue.server(b"220 mx.example ESMTP\r\n", 0.5)
    dialogue.server(b"500 5.5.1 Command unrecognized\r\n" * 2, 0.6)
    dialogue.client(b"QUIT\r\n", 0.7)
    dialogue.server(b"221 bye\r\n", 0.8)

    assert dialogue.pairs() == [("QUIT", 221)]
    assert [reply.code for reply in dialogue.replies()] == [220, 500, 500, 221]
    assert dialogue.conv.anomalies == {
        "binary data in command stream": 2,
        "reply without command": 2,
    }
    assert Anomaly("binary data in command stream", "9 octets", 0.1) in dialogue.events


def test_unknown_text_verb_still_a_command() -> None:
    dialogue = greeted()
    dialogue.client(b"HELLO, world\r\n", 1.0)
    dialogue.server(b"500 5.5.1 Command unrecognized\r\n", 1.1)

    assert dialogue.pairs()[-1] == ("HELLO,", 500)
    assert dialogue.conv.anomalies == {"unknown command": 1}
