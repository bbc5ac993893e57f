"""The JSON record of one conversation, shared by ``--json`` and ``--report``.

AUTH arguments go through the SMTP package's one redaction function, so
secrets stay masked here unless the user asked to reveal them.
"""

from __future__ import annotations

from typing import Any

from smtptop.engine.conversation import Conversation
from smtptop.smtp.events import CommandKind, CommandRecord
from smtptop.smtp.redact import redact_command


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def conversation_record(conversation: Conversation) -> dict[str, Any]:
    """Build the JSON-ready dictionary for one SMTP conversation."""
    tcp = conversation.tcp
    smtp = conversation.smtp
    reveal = conversation.reveal_secrets
    record: dict[str, Any] = {
        "client": conversation.client,
        "server": conversation.server,
        "start": conversation.start,
        "end": conversation.last_seen,
        "packets": len(conversation.packets),
        "bytes": conversation.payload_bytes,
        "tcp": {
            "state": tcp.stage.name.lower(),
            "stage": tcp.stage.value,
            "retransmissions": tcp.retransmissions,
            "out_of_order": tcp.out_of_order,
            "gap_bytes": tcp.gap_bytes,
            "connect_ms": _ms(tcp.established_ts - tcp.syn_ts) if tcp.syn_ts and tcp.established_ts else None,
        },
    }
    if smtp is None:
        return record
    greeting = smtp.greeting
    established = tcp.established_ts
    record["tls"] = {"mode": smtp.tls_mode.value, "starttls": smtp.starttls}
    record["greeting"] = {
        "code": greeting.code if greeting else None,
        "text": greeting.text if greeting else None,
        "latency_ms": _ms(greeting.ts - established) if greeting and established is not None else None,
    }
    record["capabilities"] = list(smtp.capabilities)
    record["auth_user"] = smtp.auth_user  # masked by the smtp package unless revealing
    record["commands"] = [_command(command, reveal) for command in smtp.commands]
    record["transactions"] = [
        {
            "mail_from": transaction.mail_from,
            "rcpt": [{"addr": rcpt.addr, "code": rcpt.code} for rcpt in transaction.rcpts],
            "data_bytes": transaction.data_bytes,
            "result_code": transaction.result_code,
            "result": transaction.result,
        }
        for transaction in smtp.transactions
    ]
    record["unsolicited_replies"] = [
        {"ts": reply.ts, "code": reply.code, "text": reply.record.text}
        for reply in conversation.replies
        if reply.command is None and not reply.is_greeting
    ]
    record["phase"] = smtp.phase.value
    record["anomalies"] = dict(smtp.anomalies)
    return record



def _command(command: CommandRecord, reveal: bool) -> dict[str, Any]:
    """Build the record of one client line: a command, a SASL response, or the end of a DATA body."""
    shown = redact_command(command.verb, command.arg, reveal)
    return {
        "ts": command.ts,
        "kind": command.kind.value,
        "verb": command.verb if command.kind is CommandKind.COMMAND else command.verb or None,
        "arg": shown[len(command.verb) :].strip() if command.verb else shown,
        "reply_code": command.reply.code if command.reply else None,
        "reply_text": command.reply.text if command.reply else None,
        "latency_ms": _ms(command.latency),
    }
