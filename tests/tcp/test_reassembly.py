"""StreamReassembler: in-order delivery, retransmissions, holes and the 2**32 wrap."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.tcp.events import GapReason, StreamData, StreamGap
from smtptop.tcp.reassembly import StreamReassembler

StreamEvent = StreamData | StreamGap


def data_of(events: list[StreamEvent]) -> bytes:
    return b"".join(event.data for event in events if isinstance(event, StreamData))


def gaps_of(events: list[StreamEvent]) -> list[StreamGap]:
    return [event for event in events if isinstance(event, StreamGap)]


def add(stream: StreamReassembler, seq: int, payload: bytes, ts: float = 0.0) -> list[StreamEvent]:
    return stream.add(seq & 0xFFFFFFFF, payload, len(payload), ts)


COMMANDS = [b"EHLO a\r\n", b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<c@d>\r\n"]


def test_wrap_in_order() -> None:
    stream = StreamReassembler()
    isn = 0xFFFFFFF0
    assert stream.add(isn, b"", 0, 0.0, syn=True) == []
    events: list[StreamEvent] = []
    seq = isn + 1
    for command in COMMANDS:
        events += add(stream, seq, command)
        seq += len(command)
    assert data_of(events) == b"".join(COMMANDS)
    assert gaps_of(events) == []
    assert stream.retransmissions == 0
    assert stream.next_seq == (isn + 1 + len(b"".join(COMMANDS))) & 0xFFFFFFFF


def test_wrap_out_of_order() -> None:
    stream = StreamReassembler()
    isn = 0xFFFFFFF0
    stream.add(isn, b"", 0, 0.0, syn=True)
    first, second, third = COMMANDS
    seq1 = isn + 1  # 0xFFFFFFF1: "EHLO a\r\n" ends at 0xFFFFFFF9
    seq2 = seq1 + len(first)  # crosses 2**32
    seq3 = seq2 + len(second)  # past the wrap
    assert seq3 > 0xFFFFFFFF
    events = add(stream, seq3, third, 1.0)
    assert events == []
    events += add(stream, seq2, second, 2.0)
    assert events == []
    events += add(stream, seq1, first, 3.0)
    assert events == [StreamData(b"".join(COMMANDS), 3.0)]
    assert stream.retransmissions == 0
    assert stream.out_of_order == 2
    assert stream.gap_bytes == 0
    assert not stream.has_hole


def test_retransmission_delivered_once() -> None:
    stream = StreamReassembler()
    assert add(stream, 100, b"EHLO a\r\n") == [StreamData(b"EHLO a\r\n", 0.0)]
    assert add(stream, 100, b"EHLO a\r\n", 0.2) == []
    assert stream.retransmissions == 1
    assert stream.retransmitted_bytes == 8


def test_overlap_with_new_tail() -> None:
    stream = StreamReassembler()
    add(stream, 100, b"MAIL FROM")
    events = add(stream, 100, b"MAIL FROM:<a@b>\r\n", 1.0)
    assert events == [StreamData(b":<a@b>\r\n", 1.0)]
    assert stream.retransmissions == 0
    assert stream.retransmitted_bytes == 9


def test_first_copy_wins() -> None:
    stream = StreamReassembler()
    add(stream, 0, b"A")
    add(stream, 5, b"xxxxx")  # held, [5, 10)
    events = add(stream, 1, b"BBBByyyyyZZ")  # [1, 12): [5, 10) already held
    assert data_of(events) == b"BBBBxxxxxZZ"


def test_hole_filled_later() -> None:
    stream = StreamReassembler()
    add(stream, 1, b"220 ")
    assert add(stream, 9, b"ready\r\n", 1.0) == []
    assert stream.has_hole
    events = add(stream, 5, b"mx1 ", 2.0)
    assert events == [StreamData(b"mx1 ready\r\n", 2.0)]
    assert not stream.has_hole
    assert stream.out_of_order == 1


def test_ack_alone_releases_nothing() -> None:
    stream = StreamReassembler(ack_grace=1.0)
    add(stream, 1, b"EHLO a\r\n", 0.0)
    stream.note_peer_ack(1 + 8 + 17, 0.1)  # the peer acknowledged MAIL FROM, not captured yet
    assert stream.expire(0.5) == []
    events = add(stream, 9, b"MAIL FROM:<a@b>\r\n", 0.6)
    assert events == [StreamData(b"MAIL FROM:<a@b>\r\n", 0.6)]
    assert stream.expire(5.0) == []
    assert stream.gap_bytes == 0


def test_hole_released_by_expire_after_grace() -> None:
    stream = StreamReassembler(ack_grace=1.0)
    add(stream, 1, b"AAAA", 0.0)
    add(stream, 9, b"CCCC", 0.1)  # [5, 9) missing
    stream.note_peer_ack(13, 0.2)
    assert stream.expire(1.0) == []
    assert stream.expire(1.2) == []
    events = stream.expire(1.3)
    assert events == [StreamGap(4, 1.3, GapReason.LOST), StreamData(b"CCCC", 1.3)]
    assert stream.lost_bytes == 4
    assert not stream.has_hole


def test_expire_releases_acked_unseen_tail() -> None:
    stream = StreamReassembler(ack_grace=1.0)
    add(stream, 1, b"AAAA", 0.0)
    stream.note_peer_ack(11, 0.1)
    assert stream.expire(2.0) == [StreamGap(6, 2.0, GapReason.LOST)]
    # A late copy of released bytes is old now.
    assert add(stream, 5, b"BBBBBB", 2.1) == []


def test_flush_releases_holes() -> None:
    stream = StreamReassembler()
    add(stream, 1, b"AAAA")
    add(stream, 9, b"CCCC")
    add(stream, 17, b"EEEE")
    events = stream.flush(9.0)
    assert events == [
        StreamGap(4, 9.0, GapReason.LOST),
        StreamData(b"CCCC", 9.0),
        StreamGap(4, 9.0, GapReason.LOST),
        StreamData(b"EEEE", 9.0),
    ]
    assert stream.flush(10.0) == []


def test_cap_releases_hole() -> None:
    stream = StreamReassembler(max_held_bytes=10)
    add(stream, 1, b"A")
    assert add(stream, 3, b"x" * 6) == []
    events = add(stream, 9, b"y" * 6)
    assert events == [StreamGap(1, 0.0, GapReason.LOST), StreamData(b"x" * 6 + b"y" * 6, 0.0)]


def test_not_captured_gap_then_continues() -> None:
    stream = StreamReassembler()
    events = stream.add(1, b"DATA", 100, 0.0)
    assert events == [StreamData(b"DATA", 0.0), StreamGap(96, 0.0, GapReason.NOT_CAPTURED)]
    assert add(stream, 101, b"QUIT\r\n") == [StreamData(b"QUIT\r\n", 0.0)]


def test_not_captured_held_out_of_order() -> None:
    stream = StreamReassembler()
    add(stream, 1, b"AB")
    assert stream.add(5, b"EF", 6, 0.0) == []
    events = add(stream, 3, b"CD", 1.0)
    assert events == [StreamData(b"CDEF", 1.0), StreamGap(4, 1.0, GapReason.NOT_CAPTURED)]


def test_fin_takes_one_sequence_number() -> None:
    stream = StreamReassembler()
    add(stream, 1, b"QUIT\r\n")
    stream.add(7, b"", 0, 0.0, fin=True)
    assert stream.next_seq == 8
    stream.note_peer_ack(8, 0.1)
    assert stream.flush(5.0) == []


def test_syn_payload_delivered() -> None:
    stream = StreamReassembler()
    events = stream.add(500, b"EHLO", 4, 0.0, syn=True)
    assert events == [StreamData(b"EHLO", 0.0)]
    assert stream.isn == 500


def test_midstream_isn() -> None:
    stream = StreamReassembler()
    add(stream, 7000, b"250 ok\r\n")
    assert stream.isn == 6999


def test_far_ahead_segment_ignored() -> None:
    stream = StreamReassembler()
    add(stream, 1, b"A")
    assert add(stream, 2 + (1 << 30) + 1, b"zz") == []
    assert stream.out_of_window == 1
    assert stream.flush(1.0) == []


def _segments(total: int, cuts: list[int]) -> list[tuple[int, int]]:
    bounds = sorted({0, total, *[cut % (total + 1) for cut in cuts]})
    return list(zip(bounds, bounds[1:]))


@settings(max_examples=200, deadline=None)
@given(
    isn=st.integers(0, 0xFFFFFFFF),
    total=st.integers(1, 300),
    cuts=st.lists(st.integers(0, 300), max_size=12),
    extra=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 60)), max_size=8),
    seed=st.integers(0, 2**32),
    drop=st.booleans(),
)
def test_random_orders_deliver_each_byte_once(
    isn: int, total: int, cuts: list[int], extra: list[tuple[int, int]], seed: int, drop: bool
) -> None:
    content = bytes((i * 7) % 251 for i in range(total))
    pieces = _segments(total, cuts)
    pieces += [(start % total, min(start % total + length, total)) for start, length in extra]
    rng = random.Random(seed)
    rng.shuffle(pieces)
    if drop and len(pieces) > 1:
        pieces.pop()
    stream = StreamReassembler(max_held_bytes=64)
    stream.add(isn, b"", 0, 0.0, syn=True)
    events: list[StreamEvent] = []
    for ts, (start, end) in enumerate(pieces):
        events += stream.add((isn + 1 + start) & 0xFFFFFFFF, content[start:end], end - start, float(ts))
    events += stream.flush(99.0)

    rebuilt = bytearray()
    for event in events:
        if isinstance(event, StreamData):
            rebuilt += event.data
        else:
            rebuilt += b"\0" * event.length
    covered = len(rebuilt)
    assert covered <= total
    for offset, byte in enumerate(rebuilt):
        if byte:  # non-zero bytes must be the content at that offset
            assert byte == content[offset]
    assert sum(len(event.data) for event in events if isinstance(event, StreamData)) == stream.delivered_bytes
