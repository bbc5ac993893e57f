"""The masking function for displayed client lines."""

from __future__ import annotations

from smtptop.smtp.redact import redact_command


def test_redact_auth_initial_response() -> None:
    assert redact_command("AUTH", "PLAIN AGFsaWNlAHB3", False) == "AUTH PLAIN ****"


def test_redact_auth_without_initial_response() -> None:
    assert redact_command("AUTH", "LOGIN", False) == "AUTH LOGIN"


def test_redact_auth_revealed() -> None:
    assert redact_command("AUTH", "PLAIN AGFsaWNlAHB3", True) == "AUTH PLAIN AGFsaWNlAHB3"


def test_redact_sasl_response() -> None:
    assert redact_command("", "cGFzc3dvcmQ=", False) == "****"
    assert redact_command("", "cGFzc3dvcmQ=", True) == "cGFzc3dvcmQ="
    assert redact_command("", "*", False) == "*"


def test_redact_other_commands_unchanged() -> None:
    assert redact_command("MAIL", "FROM:<a@example.org>", False) == "MAIL FROM:<a@example.org>"
    assert redact_command("QUIT", "", False) == "QUIT"


def test_verb_shown_as_client_spelled_it() -> None:
    assert redact_command("EHLO", "client.example", False, "ehlo") == "ehlo client.example"
    assert redact_command("AUTH", "PLAIN AGEAYg==", False, "auth") == "auth PLAIN ****"
    assert redact_command("QUIT", "", False, "Quit") == "Quit"


def test_tracker_keeps_spelling_for_display() -> None:
    from smtptop.direction import Direction
    from smtptop.smtp.conversation import SmtpConversation

    conversation = SmtpConversation()
    conversation.receive(Direction.SERVER_TO_CLIENT, b"220 mx\r\n", 1.0)
    events = conversation.receive(Direction.CLIENT_TO_SERVER, b"ehlo client.example\r\n", 2.0)
    assert [event.summary() for event in events] == ["ehlo client.example"]
    assert conversation.commands[0].verb == "EHLO"
    assert conversation.commands[0].summary() == "ehlo client.example"
