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
