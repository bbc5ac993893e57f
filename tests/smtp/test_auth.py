"""AUTH exchanges (RFC 4954): pairing of 334 challenges, user names, masking."""

from __future__ import annotations

from base64 import b64encode

from smtptop.smtp.events import CommandKind, Phase, SaslResponse

from tests.smtp.helpers import Dialogue, greeted

EHLO_AUTH = b"250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n"
PASSWORD = "s3cret-pass"


def b64(text: str) -> bytes:
    return b64encode(text.encode())


def all_output(dialogue: Dialogue) -> str:
    texts = dialogue.summaries()
    texts += [record.summary() for record in dialogue.conv.commands]
    texts += [repr(event) for event in dialogue.events]
    texts.append(str(dialogue.conv.auth_user))
    return "\n".join(texts)


def test_auth_plain_initial_response() -> None:
    dialogue = greeted(EHLO_AUTH)
    credentials = b64(f"\0alice@example.org\0{PASSWORD}")
    dialogue.client(b"AUTH PLAIN " + credentials + b"\r\n", 1.0)
    dialogue.server(b"235 2.7.0 Authentication successful\r\n", 1.2)

    assert dialogue.pairs()[-1] == ("AUTH", 235)
    assert dialogue.conv.auth_user == "****"
    assert "AUTH PLAIN ****" in dialogue.summaries()
    output = all_output(dialogue)
    assert PASSWORD not in output
    assert credentials.decode() not in output
    assert dialogue.conv.phase is Phase.IDLE


def test_auth_plain_revealed() -> None:
    dialogue = Dialogue(reveal_secrets=True)
    dialogue.server(b"220 mx\r\n", 0.0)
    credentials = b64(f"admin\0alice@example.org\0{PASSWORD}")
    dialogue.client(b"AUTH PLAIN " + credentials + b"\r\n", 1.0)

    assert dialogue.conv.auth_user == "alice@example.org"
    assert dialogue.summaries(reveal=True)[-1] == "AUTH PLAIN " + credentials.decode()


def test_auth_plain_without_initial_response() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH PLAIN\r\n", 1.0)
    dialogue.server(b"334 \r\n", 1.1)
    dialogue.client(b64(f"\0bob\0{PASSWORD}") + b"\r\n", 1.2)
    dialogue.server(b"235 ok\r\n", 1.3)

    assert dialogue.pairs()[1:] == [("AUTH", 334), ("", 235)]
    assert dialogue.conv.commands[-1].kind is CommandKind.SASL_RESPONSE
    assert dialogue.conv._auth_user == "bob"
    assert PASSWORD not in all_output(dialogue)


def test_auth_login_two_steps() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH LOGIN\r\n", 1.0)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 1.1)
    dialogue.client(b64("carol") + b"\r\n", 1.2)
    dialogue.server(b"334 UGFzc3dvcmQ6\r\n", 1.3)
    dialogue.client(b64(PASSWORD) + b"\r\n", 1.4)
    dialogue.server(b"235 2.7.0 ok\r\n", 1.9)
    dialogue.client(b"MAIL FROM:<sender@example.org>\r\n", 2.0)

    assert dialogue.pairs()[1:] == [("AUTH", 334), ("", 334), ("", 235), ("MAIL", None)]
    assert [event.ts for event in dialogue.of_type(SaslResponse)] == [1.2, 1.4]
    assert dialogue.conv.commands[3].latency == 0.5
    assert dialogue.conv.auth_user == "****"
    assert dialogue.conv._auth_user == "carol"
    assert [command.verb for command in dialogue.commands()] == ["EHLO", "AUTH", "MAIL"]
    output = all_output(dialogue)
    assert PASSWORD not in output
    assert b64(PASSWORD).decode() not in output
    assert "carol" not in output
    assert "AUTH response ****" in dialogue.summaries()


def test_auth_login_initial_response() -> None:
    dialogue = Dialogue(reveal_secrets=True)
    dialogue.server(b"220 mx\r\n", 0.0)
    dialogue.client(b"AUTH LOGIN " + b64("dave") + b"\r\n", 1.0)
    dialogue.server(b"334 UGFzc3dvcmQ6\r\n", 1.1)
    dialogue.client(b64(PASSWORD) + b"\r\n", 1.2)
    dialogue.server(b"535 5.7.8 bad credentials\r\n", 1.3)

    assert dialogue.conv.auth_user == "dave"
    assert dialogue.pairs() == [("AUTH", 334), ("", 535)]


def test_auth_cancelled_with_star() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH LOGIN\r\n", 1.0)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 1.1)
    dialogue.client(b"*\r\n", 1.2)
    dialogue.server(b"501 5.7.0 cancelled\r\n", 1.3)
    dialogue.client(b"QUIT\r\n", 1.4)

    (response,) = dialogue.of_type(SaslResponse)
    assert response.is_cancel
    assert response.summary() == "AUTH response *"
    assert dialogue.pairs()[1:] == [("AUTH", 334), ("", 501), ("QUIT", None)]
    assert dialogue.conv.auth_user is None


def test_auth_garbage_base64() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH PLAIN %%%not-base64\r\n", 1.0)
    dialogue.server(b"501 5.5.2 cannot decode\r\n", 1.1)

    assert dialogue.conv.auth_user is None
    assert dialogue.pairs()[-1] == ("AUTH", 501)


def test_auth_continuation_looking_like_command() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH LOGIN\r\n", 1.0)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 1.1)
    dialogue.client(b"QUIT\r\n", 1.2)  # valid base64 of some bytes, sent as the user name

    assert dialogue.conv.commands[-1].kind is CommandKind.SASL_RESPONSE
    assert [command.verb for command in dialogue.commands()] == ["EHLO", "AUTH"]


def test_auth_login_user_as_initial_response() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH LOGIN " + b64("erin") + b"\r\n", 1.0)
    dialogue.server(b"334 UGFzc3dvcmQ6\r\n", 1.1)
    dialogue.client(b64(PASSWORD) + b"\r\n", 1.2)
    dialogue.server(b"235 2.7.0 Authentication successful\r\n", 1.4)

    challenges = [reply for reply in dialogue.replies() if reply.code == 334]
    assert len(challenges) == 1
    assert dialogue.pairs()[1:] == [("AUTH", 334), ("", 235)]
    response = dialogue.conv.commands[-1]
    assert response.kind is CommandKind.SASL_RESPONSE
    assert response.summary() == "****"
    assert dialogue.conv.auth_user == "****"
    assert dialogue.conv._auth_user == "erin"
    output = all_output(dialogue)
    assert PASSWORD not in output
    assert b64(PASSWORD).decode() not in output
    assert "erin" not in output
    assert dialogue.conv.phase is Phase.IDLE


def test_auth_login_user_as_initial_response_revealed() -> None:
    dialogue = Dialogue(reveal_secrets=True)
    dialogue.server(b"220 mx\r\n", 0.0)
    dialogue.client(b"AUTH LOGIN " + b64("erin") + b"\r\n", 1.0)
    dialogue.server(b"334 UGFzc3dvcmQ6\r\n", 1.1)
    dialogue.client(b64(PASSWORD) + b"\r\n", 1.2)
    dialogue.server(b"235 2.7.0 ok\r\n", 1.4)

    assert dialogue.conv.auth_user == "erin"
    assert dialogue.summaries(reveal=True)[-2] == "AUTH response " + b64(PASSWORD).decode()


def test_auth_plain_empty_password() -> None:
    dialogue = Dialogue(reveal_secrets=True)
    dialogue.server(b"220 mx\r\n", 0.0)
    credentials = b64("\0frank\0")
    dialogue.client(b"AUTH PLAIN " + credentials + b"\r\n", 1.0)
    dialogue.server(b"535 5.7.8 Authentication credentials invalid\r\n", 1.1)

    assert dialogue.conv.auth_user == "frank"
    assert dialogue.pairs() == [("AUTH", 535)]


def test_auth_plain_empty_password_masked() -> None:
    dialogue = greeted(EHLO_AUTH)
    dialogue.client(b"AUTH PLAIN\r\n", 1.0)
    dialogue.server(b"334 \r\n", 1.1)
    credentials = b64("\0frank\0")
    dialogue.client(credentials + b"\r\n", 1.2)
    dialogue.server(b"535 5.7.8 Authentication credentials invalid\r\n", 1.3)

    assert dialogue.conv._auth_user == "frank"
    assert dialogue.conv.auth_user == "****"
    output = all_output(dialogue)
    assert "frank" not in output
    assert credentials.decode() not in output
