"""The engine on conversations built frame by frame: detection, lifetime, bounds and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smtptop.decode.linktypes import ETHERNET
from smtptop.export.pcap import write_pcap
from smtptop.output.records import conversation_record
from tests.engine.wire import Wire, test_engine
from tests.support.tshark import conversation_count, run_tshark, tshark_path

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")

PLAIN_DIALOGUE = [
    ("s", b"220 mx.example ESMTP\r\n"),
    ("c", b"EHLO client.example\r\n"),
    ("s", b"250-mx.example\r\n250 PIPELINING\r\n"),
    ("c", b"QUIT\r\n"),
    ("s", b"221 bye\r\n"),
]


def test_greeting_makes_unknown_port_smtp() -> None:
    engine, _ = test_engine()
    wire = Wire(server_port=2600).handshake().talk(PLAIN_DIALOGUE)
    engine.feed(wire.frames)
    rows = engine.snapshot().rows
    assert len(rows) == 1
    assert rows[0].server == "192.0.2.25:2600"
    assert rows[0].last_command == "QUIT"
    assert rows[0].last_reply == "221 bye"


def test_other_protocol_on_unknown_port_is_not_listed() -> None:
    engine, _ = test_engine()
    wire = Wire(server_port=8080).handshake()
    wire.client(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").server(b"HTTP/1.1 200 OK\r\n" + b"x" * 600)
    engine.feed(wire.frames)
    assert engine.snapshot().rows == ()


def test_extra_port_is_smtp_before_any_byte() -> None:
    engine, _ = test_engine(smtp_ports=frozenset({25, 8025}))
    engine.feed(Wire(server_port=8025).handshake().frames)
    rows = engine.snapshot().rows
    assert len(rows) == 1
    assert rows[0].stage == "established"


def test_port_reuse_starts_new_conversation() -> None:
    engine, finished = test_engine()
    first = Wire(start=1000.0).handshake().talk(PLAIN_DIALOGUE).close()
    second = Wire(start=1010.0, client_isn=90000).handshake().talk(PLAIN_DIALOGUE)
    engine.feed(first.frames + second.frames)
    rows = engine.snapshot().rows
    assert len(rows) == 2
    assert [row.closed for row in rows] == [True, False]

    engine.finish_input(None)
    assert [conversation.key for conversation in finished] == [row.key for row in rows]


# The first connection's FIN was not captured, so only its SYN and dialogue are in the capture.
REUSED_PORT_CASES = [
    pytest.param(90000, 2, id="new SYN number: a new connection"),
    pytest.param(100, 1, id="same SYN number: the SYN sent again"),
]


@needs_tshark
@pytest.mark.parametrize(("second_isn", "connections"), REUSED_PORT_CASES)
def test_lost_fin_port_reuse_matches_tshark(tmp_path: Path, second_isn: int, connections: int) -> None:
    first = Wire(start=1000.0, client_isn=100).handshake().talk(PLAIN_DIALOGUE[:3])
    second = Wire(start=1010.0, client_isn=second_isn).handshake().talk(PLAIN_DIALOGUE).close()
    frames = first.frames + second.frames
    capture = tmp_path / "reused.pcap"
    write_pcap(str(capture), ETHERNET, 65535, frames)
    engine, finished = test_engine()

    engine.feed(frames)

    assert conversation_count(capture) == connections
    rows = engine.snapshot().rows
    assert len(rows) == connections
    assert rows[-1].stage == "closed (FIN)"
    if connections == 2:
        assert rows[0].stage == "ports reused"
        assert rows[0].closed
        assert rows[0].last_command == "EHLO client.example"
        assert rows[0].packets == len(first.frames)
        assert rows[1].packets == len(second.frames)
    engine.finish_input(None)
    assert sorted(conversation.key for conversation in finished) == [row.key for row in rows]


@needs_tshark
def test_reused_port_after_reset_attempt_matches_tshark(tmp_path: Path) -> None:
    # On a port SMTP is not configured for, a new connection reuses a closed one's client
    # port. The server replies to its SYN with a challenge ACK in the old numbers, the
    # client resets, sends its SYN again and the dialogue follows.
    first = Wire(server_port=2600, start=1000.0, client_isn=100).handshake().talk(PLAIN_DIALOGUE).close()
    second = Wire(server_port=2600, start=1001.0, client_isn=70000)
    second.handshake_refused_by_challenge_ack(old_server_seq=first.seq["s"])
    second.handshake().talk(PLAIN_DIALOGUE).close()
    frames = first.frames + second.frames
    capture = tmp_path / "reused.pcap"
    write_pcap(str(capture), ETHERNET, 65535, frames)
    engine, _ = test_engine()

    engine.feed(frames)

    greetings = run_tshark(capture, "-d", "tcp.port==2600,smtp", "-Y", "smtp.response.code == 220",
                           "-T", "fields", "-e", "tcp.stream")
    rows = engine.snapshot().rows
    assert len(set(greetings.split())) == 2
    assert len(rows) == 2
    assert [row.last_reply for row in rows] == ["221 bye", "221 bye"]
    # The reset ends the refused attempt, so the listed conversation starts at the SYN sent again.
    assert rows[1].start == second.frames[3][0]


def test_closed_conversation_lingers_then_reported_once() -> None:
    engine, finished = test_engine(linger_seconds=30.0)
    engine.feed(Wire(start=1000.0).handshake().talk(PLAIN_DIALOGUE).close().frames)
    assert len(engine.snapshot().rows) == 1
    assert finished == []

    later = Wire(client_port=40001, start=1020.0).handshake()
    engine.feed(later.frames)
    assert len(engine.snapshot().rows) == 2

    later.client(b"NOOP\r\n", after=20.0)
    engine.feed(later.frames[-1:])
    rows = engine.snapshot().rows
    # Reported once it lingered, and still listed: only the count limit evicts.
    assert [(row.client, row.closed) for row in rows] == [("192.0.2.10:40000", True), ("192.0.2.10:40001", False)]
    assert len(finished) == 1
    assert engine.snapshot().stats.conversations_total == 2

    engine.finish_input(None)
    assert len(finished) == 2


def test_frame_store_keeps_newest_within_budget() -> None:
    engine, _ = test_engine(frame_store_mib=1)
    wire = Wire().handshake()
    wire.server(b"220 mx\r\n")
    for _ in range(1000):
        wire.client(b"NOOP " + b"x" * 1400 + b"\r\n")
    engine.feed(wire.frames)
    detail = engine.detail(engine.snapshot().rows[0].key)
    assert detail is not None
    kept = [packet.frame for packet in detail.packets if packet.frame is not None]
    assert sum(len(frame) for frame in kept) <= 1024 * 1024
    assert detail.packets[0].frame is None
    assert detail.packets[-1].frame == wire.frames[-1][1]


def test_greeting_latency_counts_from_handshake() -> None:
    engine, finished = test_engine()
    wire = Wire().handshake()
    wire.client(b"EHLO early.example\r\n", after=1.0)
    wire.server(b"220 mx ESMTP\r\n250 mx\r\n", after=19.0)
    engine.feed(wire.close().frames)
    engine.finish_input(None)
    record = conversation_record(finished[0])
    assert record["greeting"]["code"] == 220
    assert abs(record["greeting"]["latency_ms"] - 20000.0) < 1.0
    assert [(c["verb"], c["reply_code"]) for c in record["commands"]] == [("EHLO", 250)]


def test_auth_secret_masked_in_json_unless_revealed() -> None:
    secret = "AGRlbW8Ac2VjcmV0LXBhc3N3b3Jk"  # base64 of "\0demo\0secret-password"
    dialogue = [
        ("s", b"220 mx\r\n"),
        ("c", b"EHLO c\r\n"),
        ("s", b"250 AUTH PLAIN\r\n"),
        ("c", f"AUTH PLAIN {secret}\r\n".encode()),
        ("s", b"235 ok\r\n"),
    ]
    for reveal in (False, True):
        engine, finished = test_engine(reveal_secrets=reveal)
        engine.feed(Wire().handshake().talk(dialogue).close().frames)
        engine.finish_input(None)
        text = json.dumps(conversation_record(finished[0]))
        detail_text = repr(engine.detail(engine.snapshot().rows[0].key))
        assert (secret in text) is reveal
        assert ("secret-password" in detail_text) is False
        assert (secret in detail_text) is reveal


def test_transcript_and_packets_summaries() -> None:
    engine, _ = test_engine()
    engine.feed(Wire().handshake().talk(PLAIN_DIALOGUE).frames)
    detail = engine.detail(engine.snapshot().rows[0].key)
    assert detail is not None
    assert [packet.summary for packet in detail.packets[:4]] == ["[SYN]", "[SYN, ACK]", "[ACK]", "220 mx.example ESMTP"]
    assert [packet.flags for packet in detail.packets[:3]] == ["S", "S.", "."]
    assert detail.packets[3].seq == 1
    assert [line.text for line in detail.transcript][:3] == ["220 mx.example ESMTP", "EHLO client.example", "250-mx.example"]
    assert detail.capabilities == ("PIPELINING",)
