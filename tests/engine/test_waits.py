"""Waits, stall lines, phase latencies, transcript frames and groups, and the secrets toggle."""

from __future__ import annotations

import pytest

from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import ConversationDetail, ConversationRow
from smtptop.metrics.stats import Percentiles
from smtptop.output.records import conversation_record
from tests.engine.wire import Wire, test_engine

START = 1000.0
# Wire sends each frame 1 ms after the previous one unless told otherwise, adding
# the steps one by one, so these sums round exactly as the frame times do.
SYN_TS = START + 0.001
SYNACK_TS = SYN_TS + 0.001
HANDSHAKE_TS = SYNACK_TS + 0.001

UP_TO_DATA = [
    ("s", b"220 mx.example ESMTP\r\n"),
    ("c", b"EHLO client.example\r\n"),
    ("s", b"250-mx.example\r\n250 PIPELINING\r\n"),
    ("c", b"MAIL FROM:<a@example.org>\r\n"),
    ("s", b"250 2.1.0 Ok\r\n"),
    ("c", b"RCPT TO:<b@example.org>\r\n"),
    ("s", b"250 2.1.5 Ok\r\n"),
    ("c", b"DATA\r\n"),
    ("s", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
]


def _only_row(engine: Engine) -> ConversationRow:
    rows = engine.snapshot().rows
    assert len(rows) == 1
    return rows[0]


def _detail(engine: Engine) -> ConversationDetail:
    detail = engine.detail(_only_row(engine).key)
    assert detail is not None
    return detail


# --- waits and stall lines


def test_server_owes_greeting_from_handshake() -> None:
    engine, _ = test_engine()
    engine.feed(Wire(start=START).handshake().frames, wall_clock=HANDSHAKE_TS + 3.5)
    row = _only_row(engine)
    assert row.waiting_on == "server"
    assert row.waiting_for == "greeting"
    assert row.waiting_since == HANDSHAKE_TS
    assert _detail(engine).stall == "server has not sent the greeting for 3.5 s"


def test_handshake_waits_on_syn_ack() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START)
    wire._frame("c", 0x02)  # a lone SYN
    engine.feed(wire.frames, wall_clock=SYN_TS + 2.0)
    row = _only_row(engine)
    assert (row.waiting_on, row.waiting_for, row.waiting_since) == ("server", "SYN-ACK", SYN_TS)
    assert _detail(engine).stall == "server has not sent the SYN-ACK for 2.0 s"


def test_server_owes_end_of_data_reply_acked() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(UP_TO_DATA)
    wire.client(b"Subject: hi\r\n\r\nhello\r\n.\r\n").ack("s")
    dot_ts = wire.frames[-2][0]
    engine.feed(wire.frames, wall_clock=dot_ts + 47.0)
    row = _only_row(engine)
    assert row.waiting_on == "server"
    assert row.waiting_for == "reply to DATA end-of-data"
    assert row.waiting_since == dot_ts
    assert row.stage == "end-of-data"
    stall = _detail(engine).stall
    assert stall == "server has not replied to DATA end-of-data for 47 s; client's last segment was ACKed"


def test_unacked_and_retransmitted_segment_in_stall() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(UP_TO_DATA)
    body = b"Subject: hi\r\n\r\nhello\r\n.\r\n"
    wire.client(body)
    dot_ts = wire.frames[-1][0]
    engine.feed(wire.frames, wall_clock=dot_ts + 12.0)
    assert _detail(engine).stall.endswith("; client's last segment is not yet ACKed")

    wire.retransmit("c", body).retransmit("c", body)
    engine.feed(wire.frames[-2:], wall_clock=dot_ts + 12.0)
    stall = _detail(engine).stall
    assert stall == (
        "server has not replied to DATA end-of-data for 12 s; "
        "client's last segment was retransmitted 2 times, not yet ACKed"
    )
    # A retransmission brings no new byte, so the wait still counts from the first copy.
    assert _only_row(engine).waiting_since == dot_ts


def test_client_stops_mid_body() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(UP_TO_DATA)
    wire.client(b"Subject: hi\r\n\r\nfirst part of the body\r\n").ack("s")
    body_ts = wire.frames[-2][0]
    engine.feed(wire.frames, wall_clock=body_ts + 30.0)
    row = _only_row(engine)
    assert row.waiting_on == "client"
    assert row.waiting_for == "rest of message body"
    assert row.waiting_since == body_ts
    assert _detail(engine).stall == (
        "client has not sent the rest of the message body for 30 s; server's last segment was ACKed"
    )


def test_client_waits_on_zero_window() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(UP_TO_DATA)
    wire.client(b"Subject: hi\r\n\r\nfirst part\r\n")
    # A bare ACK from the server that closes its receive window.
    frame = wire._frame("s", 0x10)
    ts, data, length = frame
    zero_window = bytearray(data)
    window_offset = 14 + 20 + 14  # Ethernet, IPv4, then the TCP window field
    zero_window[window_offset : window_offset + 2] = b"\x00\x00"
    wire.frames[-1] = (ts, bytes(zero_window), length)
    engine.feed(wire.frames, wall_clock=ts + 5.0)
    stall = _detail(engine).stall
    assert stall.startswith("client has not sent the rest of the message body for 5.0 s")
    assert stall.endswith("; server advertises a zero window")


def test_closed_conversation_owes_nothing() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk([("s", b"220 mx\r\n"), ("c", b"QUIT\r\n"), ("s", b"221 bye\r\n")])
    engine.feed(wire.close().frames, wall_clock=START + 100.0)
    row = _only_row(engine)
    assert (row.waiting_on, row.waiting_since, row.waiting_for) == (None, None, "")
    assert _detail(engine).stall == ""


def test_wall_clock_only_when_later() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake()
    engine.feed(wire.frames, wall_clock=HANDSHAKE_TS + 2.0)
    # A later batch without a wall clock (or with an older one) keeps the newest clock.
    wire.ack("c", after=1.0)
    engine.feed(wire.frames[-1:])
    assert _detail(engine).stall == "server has not sent the greeting for 2.0 s"


def test_errors_count_4xx_and_5xx() -> None:
    engine, _ = test_engine()
    dialogue = [
        ("s", b"220 mx\r\n"),
        ("c", b"EHLO c\r\n"),
        ("s", b"250 mx\r\n"),
        ("c", b"MAIL FROM:<a@example.org>\r\n"),
        ("s", b"250 ok\r\n"),
        ("c", b"RCPT TO:<x@example.org>\r\n"),
        ("s", b"550 5.1.1 unknown\r\n"),
        ("c", b"RCPT TO:<y@example.org>\r\n"),
        ("s", b"451 4.3.0 try later\r\n"),
    ]
    engine.feed(Wire(start=START).handshake().talk(dialogue).frames)
    assert _only_row(engine).errors == 2


# --- phases


def test_phases_from_syn_to_quit() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake()
    wire.server(b"220 mx\r\n", after=0.5)
    wire.client(b"EHLO c\r\n").server(b"250-mx\r\n", after=0.2).server(b"250 SIZE\r\n", after=0.1)
    wire.client(b"QUIT\r\n").server(b"221 bye\r\n", after=0.05)
    engine.feed(wire.close().frames)
    phases = _detail(engine).phases
    names = [phase.phase for phase in phases]
    assert names == ["SYN-ACK", "handshake ACK", "greeting", "EHLO", "QUIT"]
    by_name = {phase.phase: phase for phase in phases}
    assert by_name["SYN-ACK"].start == SYN_TS
    assert by_name["SYN-ACK"].complete == pytest.approx(0.001)
    assert by_name["handshake ACK"].complete == pytest.approx(0.001)
    assert by_name["greeting"].start == HANDSHAKE_TS
    assert by_name["greeting"].complete == pytest.approx(0.5)
    assert by_name["EHLO"].first_byte == pytest.approx(0.2)
    assert by_name["EHLO"].complete == pytest.approx(0.3)
    assert by_name["QUIT"].complete == pytest.approx(0.05)


def test_greeting_phase_open_while_waiting() -> None:
    engine, _ = test_engine()
    engine.feed(Wire(start=START).handshake().frames)
    greeting = _detail(engine).phases[-1]
    assert greeting.phase == "greeting"
    assert greeting.start == HANDSHAKE_TS
    assert greeting.first_byte is None
    assert greeting.complete is None


# --- transcript frames and pipelined groups


def test_pipelined_commands_share_group_and_frame() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(
        [("s", b"220 mx\r\n"), ("c", b"EHLO c\r\n"), ("s", b"250-mx\r\n250 PIPELINING\r\n")],
    )
    wire.client(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
    batch_frame = len(wire.frames)
    wire.server(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n")
    reply_frame = len(wire.frames)
    wire.client(b"hello\r\n.\r\n")
    engine.feed(wire.frames)
    transcript = _detail(engine).transcript

    ehlo = next(line for line in transcript if line.text == "EHLO c")
    batch = [line for line in transcript if line.text.startswith(("MAIL", "RCPT", "DATA"))]
    replies = [line for line in transcript if line.text in ("250 ok", "354 go ahead")]
    assert len(batch) == 4
    assert len(replies) == 4
    assert {line.frame_no for line in batch} == {batch_frame}
    assert {line.frame_no for line in replies} == {reply_frame}
    assert ehlo.group is not None
    groups = {line.group for line in batch + replies}
    assert len(groups) == 1
    assert groups != {ehlo.group}
    assert groups != {None}
    greeting = transcript[0]
    assert greeting.text == "220 mx"
    assert greeting.group is None
    assert greeting.frame_no == 4


# --- the secrets toggle


AUTH_DIALOGUE = [
    ("s", b"220 mx\r\n"),
    ("c", b"EHLO c\r\n"),
    ("s", b"250 AUTH PLAIN LOGIN\r\n"),
    ("c", b"AUTH PLAIN AGRlbW8Ac2VjcmV0\r\n"),
    ("s", b"235 ok\r\n"),
    ("c", b"AUTH LOGIN\r\n"),
    ("s", b"334 VXNlcm5hbWU6\r\n"),
    ("c", b"ZGVtbw==\r\n"),
]
SECRET = "AGRlbW8Ac2VjcmV0"


def test_reveal_toggle_changes_screens_only() -> None:
    engine, finished = test_engine()
    engine.feed(Wire(start=START).handshake().talk(AUTH_DIALOGUE).frames)
    masked = _detail(engine)
    assert SECRET not in repr(masked)
    assert "ZGVtbw==" not in repr(masked)

    engine.set_reveal_secrets(True)
    revealed = _detail(engine)
    texts = [line.text for line in revealed.transcript]
    assert f"AUTH PLAIN {SECRET}" in texts
    assert "AUTH response ZGVtbw==" in texts
    assert any(packet.summary == f"AUTH PLAIN {SECRET}" for packet in revealed.packets)
    assert any(packet.frame is not None and SECRET.encode() in packet.frame for packet in revealed.packets)
    assert revealed.row.last_command == "AUTH response ZGVtbw=="

    engine.set_reveal_secrets(False)
    assert repr(_detail(engine)) == repr(masked)

    engine.set_reveal_secrets(True)
    engine.finish_input(None)
    # The headless output follows the configuration, not the screen toggle.
    assert SECRET not in repr(conversation_record(finished[0]))


# --- the traffic meter through the engine


def test_snapshot_traffic_counts_replies_and_phases() -> None:
    engine, _ = test_engine()
    wire = Wire(start=START).handshake().talk(UP_TO_DATA)
    wire.client(b"hello\r\n.\r\n").server(b"250 2.0.0 Ok: queued as 4XyZ\r\n", after=0.25)
    wire.client(b"QUIT\r\n").server(b"221 bye\r\n")
    engine.feed(wire.close().frames)
    traffic = engine.snapshot().traffic
    assert traffic is not None
    assert dict(traffic.replies_by_class) == {"2xx": 6, "3xx": 1, "4xx": 0, "5xx": 0}
    assert traffic.conversation_rate_history[-1] == 1.0
    assert traffic.message_rate_history[-1] == 1.0
    phases = dict(traffic.phase_percentiles)
    assert phases["end-of-data"] == Percentiles(1, pytest.approx(0.25), pytest.approx(0.25), pytest.approx(0.25))  # type: ignore[arg-type]
    assert set(phases) >= {"SYN-ACK", "handshake ACK", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "body", "QUIT"}
    assert traffic.slowest_servers[0] == ("192.0.2.25:25", pytest.approx(0.25))


def test_runner_passes_reveal_totest_engine() -> None:
    engine, _ = test_engine()
    engine.feed(Wire(start=START).handshake().talk(AUTH_DIALOGUE).frames)
    runner = CaptureRunner(engine, source=None)  # type: ignore[arg-type]
    runner.set_reveal_secrets(True)
    assert engine.reveal_secrets is True
    assert any(SECRET in line.text for line in _detail(engine).transcript)
