"""The JSON record's command fields match what the general formatting gives, for every kind of line."""

from __future__ import annotations

import pytest

from smtptop.output.records import _command
from smtptop.smtp.events import CommandKind, CommandRecord, ReplyRecord
from smtptop.smtp.redact import redact_command

REPLY = ReplyRecord(250, ("250 2.1.0 Ok",), 10.25, 10.5)

LINES = [
    CommandRecord("MAIL", "FROM:<a@example.org>", 10.0, reply=REPLY),
    CommandRecord("RCPT", "  TO:<b@example.org>  ", 10.0),
    CommandRecord("NOOP", "", 10.0, reply=REPLY),
    CommandRecord("EHLO", "client.example", 10.0, spelled="ehlo"),
    CommandRecord("AUTH", "PLAIN c2VjcmV0", 10.0, reply=REPLY),
    CommandRecord("AUTH", "LOGIN", 10.0),
    CommandRecord("", "c2VjcmV0", 10.0, kind=CommandKind.SASL_RESPONSE),
    CommandRecord(".", "", 10.0, kind=CommandKind.END_OF_DATA, reply=REPLY),
]


def _expected(command: CommandRecord, reveal: bool) -> dict[str, object]:
    shown = redact_command(command.verb, command.arg, reveal)
    latency = command.latency
    first_byte = command.first_byte_latency
    return {
        "ts": command.ts,
        "kind": command.kind.value,
        "verb": command.verb if command.kind is CommandKind.COMMAND else command.verb or None,
        "arg": shown[len(command.verb) :].strip() if command.verb else shown,
        "reply_code": command.reply.code if command.reply else None,
        "reply_text": command.reply.text if command.reply else None,
        "enhanced": command.reply.enhanced if command.reply else None,
        "latency_ms": None if latency is None else round(latency * 1000.0, 3),
        "first_byte_ms": None if first_byte is None else round(first_byte * 1000.0, 3),
        "decrypted": command.decrypted,
    }


@pytest.mark.parametrize("reveal", [False, True])
@pytest.mark.parametrize("command", LINES, ids=lambda command: command.verb or "sasl")
def test_command_record_matches_redacted_line(command: CommandRecord, reveal: bool) -> None:
    got = _command(command, reveal)
    assert got == _expected(command, reveal)
    assert list(got) == list(_expected(command, reveal))
