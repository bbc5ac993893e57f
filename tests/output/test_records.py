"""The JSON record's fields on conversations built frame by frame, and the report's percentile table."""

from __future__ import annotations

import io
import json

import pytest

from smtptop.config import EngineConfig
from smtptop.decode.linktypes import ETHERNET
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.output.records import conversation_record
from smtptop.output.report import ReportCollector
from tests.engine.wire import Wire

DIALOGUE = [
    ("s", b"220 mx.example ESMTP\r\n", 0.2),
    ("c", b"EHLO client.example\r\n", 0.001),
    ("s", b"250-mx.example\r\n", 0.03),
    ("s", b"250 PIPELINING\r\n", 0.01),
    ("c", b"MAIL FROM:<a@example.org>\r\n", 0.001),
    ("s", b"250 2.1.0 Ok\r\n", 0.001),
    ("c", b"RCPT TO:<b@example.org>\r\n", 0.001),
    ("s", b"550 5.1.1 <b@example.org>: Recipient address rejected\r\n", 0.001),
    ("c", b"RCPT TO:<c@example.org>\r\n", 0.001),
    ("s", b"250 2.1.5 Ok\r\n", 0.001),
    ("c", b"DATA\r\n", 0.001),
    ("s", b"354 End data with <CR><LF>.<CR><LF>\r\n", 0.001),
    ("c", b"Subject: hi\r\n\r\nhello\r\n.\r\n", 0.001),
    ("s", b"250 2.0.0 Ok: queued as 4XyZ12AB\r\n", 5.0),
    ("c", b"QUIT\r\n", 0.001),
    ("s", b"221 2.0.0 Bye\r\n", 0.001),
]


def _record() -> dict[str, object]:
    finished: list[Conversation] = []
    engine = Engine(EngineConfig(), ETHERNET, "test", "", on_finished=finished.append)
    wire = Wire(start=1000.0).handshake()
    for side, payload, after in DIALOGUE:
        wire.client(payload, after) if side == "c" else wire.server(payload, after)
    engine.feed(wire.close().frames)
    engine.finish_input(None)
    assert len(finished) == 1
    record = conversation_record(finished[0])
    # Every field must survive the JSON encoder.
    return json.loads(json.dumps(record))  # type: ignore[no-any-return]


def test_command_first_byte_and_enhanced() -> None:
    commands = _record()["commands"]
    assert isinstance(commands, list)
    ehlo = commands[0]
    assert ehlo["verb"] == "EHLO"
    assert ehlo["first_byte_ms"] == pytest.approx(30.0)
    assert ehlo["latency_ms"] == pytest.approx(40.0)
    assert ehlo["enhanced"] is None
    rcpt = commands[2]
    assert (rcpt["reply_code"], rcpt["enhanced"]) == (550, "5.1.1")
    end_of_data = commands[5]
    assert end_of_data["kind"] == "end-of-data"
    assert end_of_data["enhanced"] == "2.0.0"
    assert end_of_data["latency_ms"] == pytest.approx(5000.0)


def test_transaction_queue_id_and_recipients() -> None:
    transactions = _record()["transactions"]
    assert isinstance(transactions, list)
    assert len(transactions) == 1
    transaction = transactions[0]
    assert transaction["queue_id"] == "4XyZ12AB"
    assert transaction["result"] == "accepted"
    assert transaction["rcpt"] == [
        {"addr": "b@example.org", "code": 550, "enhanced": "5.1.1"},
        {"addr": "c@example.org", "code": 250, "enhanced": "2.1.5"},
    ]


def test_phases_list() -> None:
    phases = _record()["phases"]
    assert isinstance(phases, list)
    assert [phase["phase"] for phase in phases] == [
        "SYN-ACK", "handshake ACK", "greeting", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "body", "end-of-data", "QUIT",
    ]  # fmt: skip
    greeting = phases[2]
    assert greeting["start"] == pytest.approx(1000.003)
    assert greeting["first_byte_ms"] == pytest.approx(200.0)
    assert greeting["latency_ms"] == pytest.approx(200.0)
    assert set(greeting) == {"phase", "start", "first_byte_ms", "latency_ms"}


def test_stalled_after_close() -> None:
    stalled = _record()["stalled"]
    assert stalled == {
        "waiting_on": None,
        "waiting_for": None,
        "since": None,
        "longest_wait_ms": pytest.approx(5000.0),
    }


def test_stalled_while_still_waiting() -> None:
    finished: list[Conversation] = []
    engine = Engine(EngineConfig(), ETHERNET, "test", "", on_finished=finished.append)
    wire = Wire(start=1000.0).handshake()
    wire.server(b"220 mx\r\n").client(b"EHLO c\r\n")
    ehlo_ts = wire.frames[-1][0]
    engine.feed(wire.frames, wall_clock=ehlo_ts + 8.0)
    engine.finish_input(None)
    stalled = conversation_record(finished[0])["stalled"]
    assert stalled["waiting_on"] == "server"
    assert stalled["waiting_for"] == "reply to EHLO"
    assert stalled["since"] == ehlo_ts
    assert stalled["longest_wait_ms"] == pytest.approx(8000.0)


def test_report_has_phase_percentiles() -> None:
    collector = ReportCollector()
    engine = Engine(EngineConfig(), ETHERNET, "test", "", on_finished=collector)
    for number, delay in enumerate((0.1, 0.2, 0.3)):
        wire = Wire(client_port=40000 + number, start=1000.0 + number).handshake()
        wire.server(b"220 mx\r\n", after=delay).client(b"QUIT\r\n").server(b"221 bye\r\n")
        engine.feed(wire.close().frames)
    engine.finish_input(None)
    out = io.StringIO()
    collector.write(out)
    lines = out.getvalue().splitlines()
    header = lines.index("Latency per phase (nearest-rank percentiles over the conversations above)")
    assert lines[header - 1] == ""
    assert lines[-1] == "3 SMTP conversations"
    assert lines[header + 1].split() == ["phase", "count", "p50", "p95", "p99"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 2 : -2]}
    assert rows["greeting"] == ["3", "200", "ms", "300", "ms", "300", "ms"]
    assert rows["QUIT"][0] == "3"
