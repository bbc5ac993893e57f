"""Memory bounds of the engine: the conversation limit, the frame store budget and the packet bound.

Conversations are built frame by frame with ``Wire``. One public capture is
checked against tshark's list of TCP streams. A quiet live link is a series
of ``feed([], wall_clock=...)`` calls, as the capture thread makes them.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.engine.retention import COMPACT_MIN_DEAD
from smtptop.output.records import conversation_record
from tests.engine.helpers import run_file
from tests.engine.wire import Wire, test_engine
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark, tshark_path

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")

CLIENT = "192.0.2.10"
DIALOGUE = [
    ("s", b"220 mx.example ESMTP\r\n"),
    ("c", b"EHLO client.example\r\n"),
    ("s", b"250 mx.example\r\n"),
    ("c", b"QUIT\r\n"),
    ("s", b"221 bye\r\n"),
]
ERRORS_MIXED = PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"


def closed_conversation(number: int, start: float) -> Wire:
    """Build a whole SMTP conversation from client port 40000 + ``number``, closed with FINs."""
    return Wire(client_port=40000 + number, start=start).handshake().talk(DIALOGUE).close()


def open_conversation(number: int, start: float) -> Wire:
    """Build a conversation that has its greeting and EHLO but has not closed."""
    return Wire(client_port=40000 + number, start=start).handshake().talk(DIALOGUE[:3])


def listed_ports(engine: Engine) -> list[int]:
    return [int(row.client.rsplit(":", 1)[1]) for row in engine.snapshot().rows]


def feed_silence(engine: Engine, start: float, seconds: float, step: float = 0.5) -> None:
    """Feed empty batches with a wall clock from ``start`` to ``start + seconds``, as a quiet live link does."""
    ticks = int(seconds / step)
    for tick in range(1, ticks + 1):
        engine.feed([], wall_clock=start + tick * step)


# -- the conversation limit --------------------------------------------------


def test_limit_keeps_newest_through_silence() -> None:
    engine, _ = test_engine(max_conversations=3)
    last = 0.0
    for number in range(5):
        wire = closed_conversation(number, start=1000.0 + 10.0 * number)
        last = wire.ts
        engine.feed(wire.frames, wall_clock=last)

    assert listed_ports(engine) == [40002, 40003, 40004]
    stats = engine.snapshot().stats
    assert stats.evicted == 2
    assert stats.conversations_total == 5
    assert stats.conversations_kept == 3

    for tick in range(1, 121):
        engine.feed([], wall_clock=last + tick * 0.5)
        stats = engine.snapshot().stats
        assert stats.evicted == 2
        assert stats.conversations_total == 5
        assert stats.conversations_kept == 3
    assert listed_ports(engine) == [40002, 40003, 40004]


def test_closed_conversations_stay_without_limit() -> None:
    engine, _ = test_engine(linger_seconds=2.0)
    wire = closed_conversation(0, start=1000.0)
    engine.feed(wire.frames, wall_clock=wire.ts)
    feed_silence(engine, wire.ts, 600.0, step=5.0)

    rows = engine.snapshot().rows
    assert len(rows) == 1
    assert rows[0].closed
    assert engine.snapshot().stats.evicted == 0


def test_open_conversations_never_evicted() -> None:
    engine, _ = test_engine(max_conversations=3)
    wires = [open_conversation(number, start=1000.0 + number) for number in range(5)]
    for wire in wires:
        engine.feed(wire.frames, wall_clock=wire.ts)

    stats = engine.snapshot().stats
    assert listed_ports(engine) == [40000, 40001, 40002, 40003, 40004]
    assert stats.evicted == 0
    assert stats.conversations_kept == 5
    assert stats.max_conversations == 3

    # Closing one evicts nothing by itself; the next new conversation evicts it.
    first = wires[0]
    first.talk(DIALOGUE[3:]).close()
    engine.feed(first.frames[-5:], wall_clock=first.ts)
    assert engine.snapshot().stats.evicted == 0
    assert 40000 in listed_ports(engine)

    sixth = open_conversation(5, start=first.ts + 1.0)
    engine.feed(sixth.frames, wall_clock=sixth.ts)
    stats = engine.snapshot().stats
    assert listed_ports(engine) == [40001, 40002, 40003, 40004, 40005]
    assert stats.evicted == 1
    assert stats.conversations_kept == 5
    assert stats.conversations_total == 6


def test_eviction_takes_least_recently_seen() -> None:
    engine, _ = test_engine(max_conversations=2)
    early = closed_conversation(0, start=1000.0)
    later = closed_conversation(1, start=1010.0)
    engine.feed(early.frames + later.frames)

    # A late ACK on the conversation that closed first makes it the more recently seen.
    early.ts = later.ts
    early.ack("c", after=5.0)
    engine.feed(early.frames[-1:])

    third = closed_conversation(2, start=1030.0)
    engine.feed(third.frames)
    assert listed_ports(engine) == [40000, 40002]
    assert engine.snapshot().stats.evicted == 1


def test_evicted_conversation_reported_first() -> None:
    records: list[dict[str, Any]] = []
    reported: list[Conversation] = []

    def sink(conversation: Conversation) -> None:
        # The record is built at once, as the JSON Lines writer does.
        records.append(conversation_record(conversation))
        reported.append(conversation)

    engine, _ = test_engine(max_conversations=1, linger_seconds=1000.0)
    engine.on_finished = sink
    first = closed_conversation(0, start=1000.0)
    engine.feed(first.frames)
    assert records == []

    second = open_conversation(1, start=1010.0)
    engine.feed(second.frames)
    assert [record["client"] for record in records] == [f"{CLIENT}:40000"]
    assert records[0]["packets"] == len(first.frames)
    assert reported[0].packets == []

    engine.finish_input(None)
    assert [record["client"] for record in records] == [f"{CLIENT}:40000", f"{CLIENT}:40001"]


@needs_tshark
def test_public_capture_limit_matches_tshark_streams() -> None:
    streams = tshark_streams(ERRORS_MIXED)
    # The limit below evicts the oldest streams only if each closed before the next began.
    for earlier, later in pairwise(streams):
        assert earlier["closed_at"] is not None
        assert earlier["closed_at"] < later["first"]

    limit = 2
    run = run_file(ERRORS_MIXED, max_conversations=limit)
    snapshot = run.engine.snapshot()
    assert [row.client for row in snapshot.rows] == [stream["client"] for stream in streams[-limit:]]
    assert snapshot.stats.evicted == len(streams) - limit
    assert snapshot.stats.conversations_total == len(streams)
    assert sorted(conversation.client for conversation in run.smtp()) == sorted(stream["client"] for stream in streams)


def tshark_streams(path: object) -> list[dict[str, Any]]:
    """List tshark's TCP streams in order: the client (sender of the SYN), the first frame and the closing frame.

    A stream is closed at its first RST, or at the frame that completes a FIN
    from each side, as smtptop's TCP tracker decides it.
    """
    fields = ["frame.number", "tcp.stream", "ip.src", "tcp.srcport", "tcp.flags.syn", "tcp.flags.ack",
              "tcp.flags.fin", "tcp.flags.reset"]
    args = ["-Y", "tcp", "-T", "fields", "-E", "separator=\t"]
    for field in fields:
        args += ["-e", field]
    streams: dict[int, dict[str, Any]] = {}
    for line in run_tshark(str(path), *args).splitlines():
        number, stream_id, source, port, syn, ack, fin, reset = line.split("\t")
        stream = streams.setdefault(
            int(stream_id), {"first": int(number), "client": None, "closed_at": None, "fin_from": set()}
        )
        if syn == "1" and ack == "0":
            stream["client"] = f"{source}:{port}"
        if stream["closed_at"] is not None:
            continue
        if fin == "1":
            stream["fin_from"].add((source, port))
        if reset == "1" or len(stream["fin_from"]) == 2:
            stream["closed_at"] = int(number)
    return [streams[key] for key in sorted(streams)]


# -- headless reporting ----------------------------------------------------------


def test_headless_report_after_linger_keeps_row() -> None:
    engine, finished = test_engine(linger_seconds=2.0)
    wire = closed_conversation(0, start=1000.0)
    engine.feed(wire.frames, wall_clock=wire.ts)
    assert finished == []

    feed_silence(engine, wire.ts, 1.5)
    assert finished == []
    feed_silence(engine, wire.ts + 1.5, 1.0)
    assert [conversation.client for conversation in finished] == [f"{CLIENT}:40000"]
    assert finished[0].reported_at is not None
    assert finished[0].reported_at > wire.ts + 2.0

    rows = engine.snapshot().rows
    assert [row.client for row in rows] == [f"{CLIENT}:40000"]
    assert rows[0].closed

    engine.finish_input(None)
    assert len(finished) == 1


def test_open_conversation_reported_at_end() -> None:
    engine, finished = test_engine(linger_seconds=2.0)
    wire = open_conversation(0, start=1000.0)
    engine.feed(wire.frames, wall_clock=wire.ts)
    feed_silence(engine, wire.ts, 10.0)
    assert finished == []

    engine.finish_input(None)
    assert [conversation.client for conversation in finished] == [f"{CLIENT}:40000"]


# -- the frame store ---------------------------------------------------------------


def test_frame_store_budget_counts_drops() -> None:
    engine, _ = test_engine(frame_store_mib=1)
    wire = Wire().handshake()
    wire.server(b"220 mx\r\n")
    for _ in range(1000):
        wire.client(b"NOOP " + b"x" * 1400 + b"\r\n")
    engine.feed(wire.frames)

    # The newest frames that fit in 1 MiB stay; every older one is dropped.
    budget = 1024 * 1024
    sizes = [len(frame[1]) for frame in wire.frames]
    kept_from = next(index for index in range(len(sizes)) if sum(sizes[index:]) <= budget)
    stats = engine.snapshot().stats
    assert stats.frame_budget == budget
    assert stats.frame_bytes == sum(sizes[kept_from:])
    assert stats.frames_dropped == kept_from

    detail = engine.detail(engine.snapshot().rows[0].key)
    assert detail is not None
    missing = [packet.frame_no for packet in detail.packets if packet.frame is None]
    assert missing == list(range(1, kept_from + 1))


def test_frame_store_of_zero_keeps_nothing() -> None:
    engine, _ = test_engine(frame_store_mib=0)
    wire = closed_conversation(0, start=1000.0)
    engine.feed(wire.frames)
    stats = engine.snapshot().stats
    assert stats.frame_bytes == 0
    assert stats.frames_dropped == len(wire.frames)


def test_evicted_frames_leave_store() -> None:
    engine, _ = test_engine(max_conversations=1)
    first = closed_conversation(0, start=1000.0)
    second = open_conversation(1, start=1010.0)
    engine.feed(first.frames + second.frames)

    stats = engine.snapshot().stats
    assert stats.evicted == 1
    assert stats.frame_bytes == sum(len(frame[1]) for frame in second.frames)
    assert stats.frames_dropped == 0


def test_other_protocol_frames_leave_store() -> None:
    engine, _ = test_engine()
    wire = Wire(server_port=8080).handshake()
    wire.client(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").server(b"HTTP/1.1 200 OK\r\n" + b"x" * 600)
    engine.feed(wire.frames)

    stats = engine.snapshot().stats
    assert stats.conversations_kept == 0
    assert stats.frame_bytes == 0
    assert stats.frames_dropped == 0


# -- packets per conversation ----------------------------------------------------


def test_packets_keep_first_and_newest() -> None:
    limit = 100
    engine, _ = test_engine(max_packets_per_conversation=limit)
    wire = Wire().handshake()
    wire.server(b"220 mx\r\n")
    for number in range(300):
        wire.client(f"NOOP {number}\r\n".encode())
    engine.feed(wire.frames)

    row = engine.snapshot().rows[0]
    detail = engine.detail(row.key)
    assert detail is not None
    frame_numbers = [packet.frame_no for packet in detail.packets]
    total = len(wire.frames)
    assert row.packets == total
    assert len(frame_numbers) <= limit
    assert detail.packets_not_kept == total - len(frame_numbers)
    assert detail.packets_not_kept_at == limit // 2

    # The first half, then a jump over the packets not kept, then the newest up to the last frame.
    head = frame_numbers[: detail.packets_not_kept_at]
    tail = frame_numbers[detail.packets_not_kept_at :]
    assert head == list(range(1, limit // 2 + 1))
    assert tail == list(range(total - len(tail) + 1, total + 1))
    assert tail[0] - head[-1] - 1 == detail.packets_not_kept

    # Frames of packets not kept leave the store, so it contains exactly the kept frames.
    kept_bytes = sum(len(wire.frames[number - 1][1]) for number in frame_numbers)
    assert engine.snapshot().stats.frame_bytes == kept_bytes


def test_packets_under_limit_all_kept() -> None:
    engine, _ = test_engine(max_packets_per_conversation=100)
    wire = closed_conversation(0, start=1000.0)
    engine.feed(wire.frames)
    detail = engine.detail(engine.snapshot().rows[0].key)
    assert detail is not None
    assert [packet.frame_no for packet in detail.packets] == list(range(1, len(wire.frames) + 1))
    assert detail.packets_not_kept == 0


def test_evicted_records_do_not_pile_up() -> None:
    # Within the budget no frame is dropped, so only compaction clears the records
    # that eviction emptied; the report queue likewise holds only unreported ones.
    engine, finished = test_engine(max_conversations=1, linger_seconds=1e9)
    count = 3 * COMPACT_MIN_DEAD // 10
    for number in range(count):
        engine.feed(closed_conversation(number, start=1000.0 + number).frames)

    assert engine.snapshot().stats.evicted == count - 1
    assert len(finished) == count - 1
    store_records = len(engine._frames._records)
    assert store_records <= 2 * COMPACT_MIN_DEAD + 20
    assert len(engine._unreported) <= 2 + 64 + 1


def test_silent_open_conversations_evicted_on_arrival() -> None:
    # Conversations whose FIN was never captured: open, then silent for good.
    engine, _ = test_engine(max_conversations=3, stale_open_seconds=600.0)
    for number in range(5):
        wire = open_conversation(number, start=1000.0 + number)
        engine.feed(wire.frames, wall_clock=wire.ts)
    feed_silence(engine, 1005.0, 700.0, step=10.0)

    # Silence alone evicts nothing.
    assert listed_ports(engine) == [40000, 40001, 40002, 40003, 40004]

    newcomer = open_conversation(5, start=1710.0)
    engine.feed(newcomer.frames, wall_clock=newcomer.ts)
    stats = engine.snapshot().stats
    assert listed_ports(engine) == [40003, 40004, 40005]
    assert stats.evicted == 3
    assert stats.conversations_total == 6


def test_recent_open_conversations_are_not_stale() -> None:
    engine, _ = test_engine(max_conversations=3, stale_open_seconds=600.0)
    for number in range(5):
        wire = open_conversation(number, start=1000.0 + number)
        engine.feed(wire.frames, wall_clock=wire.ts)

    newcomer = open_conversation(5, start=1100.0)
    engine.feed(newcomer.frames, wall_clock=newcomer.ts)
    assert engine.snapshot().stats.evicted == 0
    assert len(listed_ports(engine)) == 6


# -- totals that outlive eviction --------------------------------------------


def test_accepted_messages_outlive_eviction() -> None:
    capture = PUBLIC_CAPTURES / "smtp-arkime-starttls-decrypted.pcap"
    every = run_file(capture)
    rows = every.engine.snapshot().rows
    accepted = sum(row.messages for row in rows)
    assert len(rows) == 4
    assert accepted == 4
    assert every.engine.snapshot().stats.messages_accepted == accepted

    one_kept = run_file(capture, max_conversations=1)
    stats = one_kept.engine.snapshot().stats
    assert stats.evicted == 3
    assert sum(row.messages for row in one_kept.engine.snapshot().rows) == 1
    assert stats.messages_accepted == accepted
