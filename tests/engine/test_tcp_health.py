"""TCP analysis through the engine: packet tags, row counters, the detail's TCP record and capture totals.

tshark reading the same public captures is the oracle (see tshark_tcp.py).
"""

from __future__ import annotations

from collections import Counter

import pytest

from smtptop.direction import Direction
from smtptop.engine.conversation import Conversation
from tests.engine.helpers import run_file
from tests.engine.tshark_tcp import tcp_flag_counts
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")

DUPACK = PUBLIC_CAPTURES / "smtp-sv-long-command-dupack.pcap"
ZERO_WINDOW = PUBLIC_CAPTURES / "smtp-sv-2525-zero-window.pcap"
AUTH_MULTI = PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"
# Seconds a closed conversation stays listed: longer than any capture here spans
# (smtp-zeek-auth-multi joins two captures six years apart), so detail() finds every one.
KEEP_ALL = 1e10

# Counters that smtptop and tshark count the same way on every capture below.
AGREED_COUNTERS = (
    "acked_unseen",
    "fast_retransmissions",
    "duplicate_acks",
    "out_of_order",
    "lost_segments",
    "zero_windows",
    "zero_window_probes",
    "window_full",
    "window_updates",
    "keep_alives",
)


def _senders(conversation: Conversation) -> dict[Direction, tuple[str, str]]:
    return {
        Direction.CLIENT_TO_SERVER: (conversation.client, conversation.server),
        Direction.SERVER_TO_CLIENT: (conversation.server, conversation.client),
    }


@needs_tshark
@pytest.mark.parametrize(
    "name",
    [
        "smtp-sv-long-command-dupack.pcap",
        "smtp-sv-2525-zero-window.pcap",
        "smtp-zeek-auth-multi.pcap",
        "smtp-sv-587-overlap-retrans.pcap",
        "smtp-zeek-bdat-gap.pcap",
        "smtp-sv-multi-mail.pcap",
    ],
)
def test_direction_counters_match_tshark(name: str) -> None:
    path = PUBLIC_CAPTURES / name
    run = run_file(path, linger_seconds=KEEP_ALL)
    oracle = tcp_flag_counts(path)
    assert run.smtp()
    for conversation in run.smtp():
        details = run.engine.detail(conversation.key)
        assert details is not None and details.tcp is not None
        health = {Direction.CLIENT_TO_SERVER: details.tcp.client, Direction.SERVER_TO_CLIENT: details.tcp.server}
        for direction, sender in _senders(conversation).items():
            expected = oracle.get(sender, Counter())
            stats = health[direction]
            retransmitted = stats.retransmissions + stats.fast_retransmissions + stats.spurious_retransmissions
            assert retransmitted == expected["any_retransmission"], (sender, "retransmissions")
            for counter in AGREED_COUNTERS:
                assert getattr(stats, counter) == expected[counter], (sender, counter)


def test_dupack_capture_tags_packets() -> None:
    run = run_file(DUPACK, linger_seconds=KEEP_ALL)
    (conversation,) = run.smtp()
    details = run.engine.detail(conversation.key)
    assert details is not None
    tags = {packet.frame_no: packet.tags for packet in details.packets}

    # Frames 8 to 11 as tshark 4.0.17 shows them.
    assert tags[8] == ("Dup ACK #1",)
    assert tags[9] == ("Dup ACK #2",)
    assert tags[10] == ("Dup ACK #3",)
    assert "Fast Retransmission" in tags[11]
    assert tags[7] == ()


def test_dupack_capture_row_counters() -> None:
    run = run_file(DUPACK, linger_seconds=KEEP_ALL)
    (conversation,) = run.smtp()
    row = run.engine.snapshot().rows[0]

    assert row.key == conversation.key
    assert row.duplicate_acks == 3
    assert row.retransmissions == 1
    assert row.zero_windows == 0


def test_zero_window_capture_row_and_detail() -> None:
    run = run_file(ZERO_WINDOW, linger_seconds=KEEP_ALL)
    (conversation,) = run.smtp()
    row = run.engine.snapshot().rows[0]
    details = run.engine.detail(conversation.key)

    assert row.zero_windows == 15
    assert details is not None and details.tcp is not None
    assert details.tcp.server.zero_windows == 15
    assert details.tcp.client.zero_windows == 0
    assert sum(1 for packet in details.packets if "ZeroWindow" in packet.tags) == 15


def test_summary_keeps_its_text_without_tag_prefix() -> None:
    run = run_file(DUPACK, linger_seconds=KEEP_ALL)
    (conversation,) = run.smtp()
    details = run.engine.detail(conversation.key)
    assert details is not None

    assert all(not packet.summary.startswith("[retransmission]") for packet in details.packets)
    assert any(packet.tags and packet.summary for packet in details.packets)


def test_detail_zeek_summary() -> None:
    run = run_file(AUTH_MULTI, linger_seconds=KEEP_ALL)
    first = min(run.smtp(), key=lambda conversation: conversation.start)
    details = run.engine.detail(first.key)
    assert details is not None and details.tcp is not None

    # A full handshake and a FIN from each side: Zeek's "SF".
    assert details.tcp.zeek_state == "SF"
    assert details.tcp.history.startswith("ShA")
    assert details.tcp.initial_rtt is not None
    assert details.tcp.initial_rtt == pytest.approx(0.346982, abs=1e-6)


def test_capture_totals_count_lost_and_acked_unseen() -> None:
    run = run_file(PUBLIC_CAPTURES / "smtp-zeek-bdat-gap.pcap", linger_seconds=KEEP_ALL)
    stats = run.engine.snapshot().stats
    (conversation,) = run.smtp()
    details = run.engine.detail(conversation.key)
    assert details is not None and details.tcp is not None
    per_conversation = details.tcp.client, details.tcp.server

    assert stats.lost_segments == sum(side.lost_segments for side in per_conversation)
    assert stats.acked_unseen == sum(side.acked_unseen for side in per_conversation)
    assert stats.lost_segments == 1
