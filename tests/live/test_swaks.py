"""Live capture of swaks talking to aiosmtpd and to Postfix's smtp-sink on loopback.

The expected dialogue comes from the transcript swaks prints, so each test
checks the engine against what swaks really sent and read.
"""

from __future__ import annotations

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record
from tests.live.capture import LoopbackCapture
from tests.live.clients import SwaksTranscript, swaks_transcript
from tests.support.servers import aiosmtpd_server, find_program, smtp_sink, swaks

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(find_program("swaks") is None, reason="swaks is not installed"),
]
needs_smtp_sink = pytest.mark.skipif(
    find_program("smtp-sink") is None, reason="smtp-sink (Postfix) is not installed"
)

SENDER = "swaks-sender@test.example"
RECIPIENT = "swaks-rcpt@test.example"


def _run_swaks(port: int, *args: str) -> tuple[Conversation, SwaksTranscript]:
    """Run swaks against `port` under a capture, and return the captured conversation and swaks's transcript."""
    with LoopbackCapture(port) as capture:
        result = swaks(port, *args, sender=SENDER, to=RECIPIENT)
        capture.wait_closed()
    return capture.only_dialogue(), swaks_transcript(result.stdout)


def _tracked(conversation: Conversation) -> tuple[list[str], list[int | None]]:
    assert conversation.smtp is not None
    commands = conversation.smtp.commands
    return [c.verb for c in commands], [c.reply.code if c.reply else None for c in commands]


def test_swaks_plain_envelope() -> None:
    with aiosmtpd_server() as server:
        conversation, transcript = _run_swaks(server.port)
    record = conversation_record(conversation)
    verbs, codes = _tracked(conversation)
    transaction = record["transactions"][0]

    assert verbs == transcript.verbs
    assert codes == transcript.reply_codes[1:]
    assert record["greeting"]["code"] == transcript.reply_codes[0]
    assert len(record["transactions"]) == 1
    assert transaction["mail_from"] == SENDER
    assert [rcpt["addr"] for rcpt in transaction["rcpt"]] == [RECIPIENT]
    # swaks's body has no line starting with ".", so nothing is dot-stuffed. The
    # last line's CRLF belongs to the CRLF.CRLF terminator and is not counted.
    assert not any(line.startswith(".") for line in transcript.body_lines)
    assert transaction["data_bytes"] == sum(len(line) + 2 for line in transcript.body_lines) - 2
    assert transaction["result"] == "accepted"
    assert record["tcp"]["stage"] == "closed (FIN)"
    assert record["tcp"]["state"] == "SF"


def test_swaks_starttls_stops_parsing() -> None:
    with aiosmtpd_server(starttls=True) as server:
        conversation, transcript = _run_swaks(server.port, "--tls")
        assert server.handler is not None
        delivered = len(server.handler.messages)
    record = conversation_record(conversation)
    verbs, codes = _tracked(conversation)

    # The transcript's clear part ends with STARTTLS, and the rest went encrypted.
    assert transcript.verbs[-1] == "STARTTLS"
    assert delivered == 1
    assert verbs == transcript.verbs
    assert codes == transcript.reply_codes[1:]
    assert codes[-1] == 220
    assert record["tls"]["mode"] == "starttls"
    assert record["tls"]["starttls"] == "accepted"
    # Without keys the session stays encrypted, and the reason names the keys that would decrypt it.
    assert record["tls"]["decrypted"] is False
    assert "--keylog" in record["tls"]["decrypt_error"]
    assert record["transactions"] == []
    assert record["anomalies"] == {}
    # swaks closes its socket without reading the server's TLS close_notify, so
    # its kernel responds to that record with RST. Either way the connection ended.
    assert record["tcp"]["stage"] in ("closed (FIN)", "reset (RST)")
    assert record["phase"] == "closed"
    assert conversation.smtp is not None
    assert conversation.smtp.outstanding == 0


@needs_smtp_sink
def test_swaks_pipeline_pairs_replies() -> None:
    with smtp_sink() as server:
        conversation, transcript = _run_swaks(server.port, "--pipeline")
    assert conversation.smtp is not None
    record = conversation_record(conversation)
    verbs, codes = _tracked(conversation)
    commands = {c.verb: c for c in conversation.smtp.commands if c.verb in ("MAIL", "RCPT", "DATA")}

    assert "PIPELINING" in record["capabilities"]
    assert verbs == transcript.verbs
    assert codes == transcript.reply_codes[1:]
    assert list(commands) == ["MAIL", "RCPT", "DATA"]
    mail_reply = commands["MAIL"].reply
    assert mail_reply is not None
    # Pipelined (RFC 2920): all three lines were on the wire before the first reply began.
    for verb in ("RCPT", "DATA"):
        assert commands[verb].ts <= mail_reply.first_ts, f"{verb} sent after the MAIL reply"
    assert len(record["transactions"]) == 1
    assert record["transactions"][0]["result"] == "accepted"
    assert record["transactions"][0]["mail_from"] == SENDER
    assert record["anomalies"] == {}
