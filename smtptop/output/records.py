"""The JSON record of one conversation, shared by ``--json`` and ``--report``.

AUTH arguments go through the SMTP package's one redaction function, so
secrets stay masked here unless the user asked to reveal them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from smtptop.direction import Direction
from smtptop.engine.conversation import Conversation
from smtptop.engine.phases import conversation_phases
from smtptop.engine.snapshot import PhaseLatency, TcpDirectionHealth
from smtptop.engine.tcp_health import tcp_health
from smtptop.engine.tls_view import tls_summary
from smtptop.smtp.commands import extract_path
from smtptop.smtp.conversation import SmtpConversation
from smtptop.smtp.events import CommandKind, CommandRecord, Recipient, ReplyRecord
from smtptop.smtp.redact import redact_command
from smtptop.tls.summary import TlsSummary


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


_COMMAND = CommandKind.COMMAND
# The counters of ``TcpDirectionHealth`` in field order. Its RTTs go into one nested object.
_DIRECTION_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(TcpDirectionHealth)
    if not field.name.startswith("rtt_")
)


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
        "packets": len(conversation.packets) + conversation.packets_not_kept,
        "bytes": conversation.payload_bytes,
        "tcp": _tcp(conversation),
    }
    if smtp is None:
        return record
    greeting = smtp.greeting
    established = tcp.established_ts
    record["tls"] = tls_record(tls_summary(conversation, conversation.last_seen))
    record["greeting"] = {
        "code": greeting.code if greeting else None,
        "text": greeting.text if greeting else None,
        "latency_ms": _ms(greeting.ts - established) if greeting and established is not None else None,
    }
    record["capabilities"] = list(smtp.capabilities)
    record["auth_user"] = smtp.auth_user  # masked by the smtp package unless revealing
    record["commands"] = [_command(command, reveal) for command in smtp.commands]
    rcpt_replies = _recipient_replies(smtp)
    record["transactions"] = [
        {
            "mail_from": transaction.mail_from,
            "rcpt": [_recipient(rcpt, rcpt_replies.get(id(rcpt))) for rcpt in transaction.rcpts],
            "data_bytes": transaction.data_bytes,
            "result_code": transaction.result_code,
            "result": transaction.result,
            "queue_id": transaction.queue_id,
        }
        for transaction in smtp.transactions
    ]
    record["unsolicited_replies"] = [
        {"ts": reply.ts, "code": reply.code, "text": reply.record.text}
        for reply in conversation.replies
        if reply.command is None and not reply.is_greeting
    ]
    record["phase"] = smtp.phase.value
    record["phases"] = [_phase(phase) for phase in conversation_phases(tcp, smtp)]
    record["stalled"] = _stalled(conversation)
    record["anomalies"] = dict(smtp.anomalies)
    return record


def _tcp(conversation: Conversation) -> dict[str, Any]:
    """Build the ``tcp`` object: the stage, Zeek's state and history, and the analysis counters per direction."""
    tcp = conversation.tcp
    health = tcp_health(tcp)
    record: dict[str, Any] = {
        # Zeek's conn_state ("SF", "RSTO", "S0"), so Zeek users read it at once; "stage" is smtptop's words.
        "state": health.zeek_state,
        "stage": tcp.stage.value,
        "history": health.history,
        "retransmissions": tcp.retransmissions,
        "out_of_order": tcp.out_of_order,
        "gap_bytes": tcp.gap_bytes,
        "connect_ms": _ms(tcp.established_ts - tcp.syn_ts) if tcp.syn_ts and tcp.established_ts else None,
        "initial_rtt_ms": _ms(health.initial_rtt),
        "client": _direction(health.client),
        "server": _direction(health.server),
    }
    return record


def _direction(health: TcpDirectionHealth) -> dict[str, Any]:
    """Build the counters and windows of one direction, with its RTTs in milliseconds."""
    fields = {name: getattr(health, name) for name in _DIRECTION_FIELDS}
    # "avg" is the smoothed RTT of RFC 6298, section 2: a moving average, not the mean of every sample.
    fields["rtt_ms"] = {"min": _ms(health.rtt_min), "avg": _ms(health.rtt_smoothed), "max": _ms(health.rtt_max)}
    return fields


def _stalled(conversation: Conversation) -> dict[str, Any]:
    """Describe the move still owed when the conversation was reported, and the longest wait it had."""
    wait = conversation.wait
    now = conversation.reported_at if conversation.reported_at is not None else conversation.last_seen
    return {
        "waiting_on": wait.side if wait is not None else None,
        "waiting_for": wait.owed if wait is not None else None,
        "since": wait.since if wait is not None else None,
        "longest_wait_ms": _ms(conversation.longest_wait_until(now)),
    }


def _recipient(rcpt: Recipient, reply: ReplyRecord | None) -> dict[str, Any]:
    return {"addr": rcpt.addr, "code": rcpt.code, "enhanced": reply.enhanced if reply is not None else None}


def _recipient_replies(smtp: SmtpConversation) -> dict[int, ReplyRecord]:
    """Pair each recipient with the reply to its RCPT command, keyed by ``id(recipient)``.

    The SMTP tracker keeps a recipient's reply code but not the reply itself,
    so the pairing walks the RCPT commands in order. A recipient takes the
    first unused RCPT that was sent at or after its transaction's MAIL and
    has the same address and reply code.
    """
    commands = [
        (command, extract_path(command.arg, "TO:"))
        for command in smtp.commands
        if command.verb == "RCPT" and command.reply is not None
    ]
    paired: dict[int, ReplyRecord] = {}
    cursor = 0
    for transaction in smtp.transactions:
        for rcpt in transaction.rcpts:
            if rcpt.code is None:
                continue
            for index in range(cursor, len(commands)):
                command, addr = commands[index]
                assert command.reply is not None
                if command.ts >= transaction.start_ts and addr == rcpt.addr and command.reply.code == rcpt.code:
                    paired[id(rcpt)] = command.reply
                    cursor = index + 1
                    break
    return paired



def _phase(phase: PhaseLatency) -> dict[str, Any]:
    first_byte = phase.first_byte
    complete = phase.complete
    # The same as _ms, inline, because a record has a dozen phases and the calls showed in profiles.
    return {
        "phase": phase.phase,
        "start": phase.start,
        "first_byte_ms": None if first_byte is None else round(first_byte * 1000.0, 3),
        "latency_ms": None if complete is None else round(complete * 1000.0, 3),
    }


def _command(command: CommandRecord, reveal: bool) -> dict[str, Any]:
    """Build the record of one client line: a command, a SASL response, or the end of a DATA body."""
    verb = command.verb
    kind = command.kind
    if verb and verb != "AUTH":
        # What redact_command shows after the verb, without building the line: only
        # AUTH and SASL responses are masked.
        arg = command.arg.strip()
    else:
        shown = redact_command(verb, command.arg, reveal)
        arg = shown[len(verb) :].strip() if verb else shown
    reply = command.reply
    ts = command.ts
    return {
        "ts": ts,
        "kind": kind._value_,  # ``value`` is the same, read through a slower descriptor
        "verb": verb if kind is _COMMAND else verb or None,
        "arg": arg,
        "reply_code": reply.code if reply else None,
        "reply_text": reply.text if reply else None,
        "enhanced": reply.enhanced if reply else None,
        # The same as _ms(command.latency) and _ms(command.first_byte_latency), inline.
        "latency_ms": None if reply is None else round((reply.ts - ts) * 1000.0, 3),
        "first_byte_ms": None if reply is None else round((reply.first_ts - ts) * 1000.0, 3),
        "decrypted": command.decrypted,
    }


def tls_record(summary: TlsSummary) -> dict[str, Any]:
    """Build the ``tls`` object of a conversation record; it never contains key material."""
    alert = summary.alert
    certificate = summary.certificate
    return {
        "mode": summary.mode,
        "starttls": summary.starttls,
        "version": summary.version,
        "cipher": summary.cipher,
        "sni": summary.sni,
        "alpn": summary.alpn,
        "resumed": summary.resumed,
        "alert": None if alert is None else {
            "level": alert.level,
            "description": alert.description,
            "code": alert.code,
            "sender": "client" if alert.sender is Direction.CLIENT_TO_SERVER else "server",
        },
        "certificate": None if certificate is None else {
            "subject": certificate.subject,
            "issuer": certificate.issuer,
            "sans": list(certificate.sans),
            "not_before": certificate.not_before,
            "not_after": certificate.not_after,
            "key": certificate.key,
            "validity": certificate.validity,
        },
        "handshake_ms": summary.handshake_ms,
        "decrypted": summary.decrypted,
        "decrypt_error": summary.decrypt_error,
    }
