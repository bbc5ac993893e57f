"""The ``tcp`` object of the JSON record and the capture-loss line of ``--report``, on public captures."""

from __future__ import annotations

import io
from dataclasses import fields, replace

import pytest

from smtptop.engine.snapshot import TcpDirectionHealth
from smtptop.output.records import conversation_record
from smtptop.output.report import ReportCollector, capture_loss_text
from tests.engine.helpers import run_file
from tests.engine.tshark_tcp import tcp_flag_counts
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark, tshark_path

DUPACK = PUBLIC_CAPTURES / "smtp-sv-long-command-dupack.pcap"
BDAT_GAP = PUBLIC_CAPTURES / "smtp-zeek-bdat-gap.pcap"
COUNTERS = [field.name for field in fields(TcpDirectionHealth) if not field.name.startswith("rtt_")]


def test_tcp_object_has_every_counter_per_direction() -> None:
    (conversation,) = run_file(DUPACK).smtp()
    tcp = conversation_record(conversation)["tcp"]

    for side in ("client", "server"):
        assert sorted(tcp[side]) == sorted([*COUNTERS, "rtt_ms"])
        assert sorted(tcp[side]["rtt_ms"]) == ["avg", "max", "min"]
    for key in ("state", "stage", "history", "retransmissions", "initial_rtt_ms"):
        assert key in tcp
    assert tcp["stage"] == "closed (FIN)"
    assert tcp["state"] == "SF"
    assert tcp["retransmissions"] == 1
    assert tcp["server"]["duplicate_acks"] == 3
    assert tcp["client"]["fast_retransmissions"] == 1


@pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")
def test_tcp_object_matches_tshark() -> None:
    (conversation,) = run_file(DUPACK).smtp()
    tcp = conversation_record(conversation)["tcp"]
    oracle = tcp_flag_counts(DUPACK)
    client = oracle[(conversation.client, conversation.server)]
    server = oracle[(conversation.server, conversation.client)]

    assert tcp["retransmissions"] == client["any_retransmission"] + server["any_retransmission"]
    assert tcp["server"]["duplicate_acks"] == server["duplicate_acks"]
    assert tcp["client"]["duplicate_acks"] == client["duplicate_acks"]


def test_rtt_in_milliseconds() -> None:
    (conversation,) = run_file(DUPACK).smtp()
    tcp = conversation_record(conversation)["tcp"]
    rtt = tcp["client"]["rtt_ms"]

    assert rtt["min"] is not None
    assert rtt["min"] <= rtt["avg"] <= rtt["max"]
    assert tcp["initial_rtt_ms"] is not None and tcp["initial_rtt_ms"] > 0


def test_report_footer_counts_capture_loss() -> None:
    collector = ReportCollector()
    finished = run_file(BDAT_GAP)
    for conversation in finished.smtp():
        collector(conversation)
    stream = io.StringIO()
    collector.write(stream, finished.engine.snapshot().stats)
    lines = stream.getvalue().splitlines()

    # tshark counts the frames it flags with each expert message on the same file.
    lost = len(run_tshark(BDAT_GAP, "-Y", "tcp.analysis.lost_segment", "-T", "fields", "-e", "frame.number").split())
    unseen = len(run_tshark(BDAT_GAP, "-Y", "tcp.analysis.ack_lost_segment", "-T", "fields", "-e", "frame.number").split())
    assert lost >= 1
    assert unseen >= 1
    assert lines[-2] == f"lost segments {lost}, ACKed unseen {unseen}, kernel drops n/a"
    assert lines[-1] == "1 SMTP conversation"


def test_capture_loss_text_with_kernel_drops() -> None:
    stats = run_file(DUPACK).engine.snapshot().stats

    assert capture_loss_text(replace(stats, kernel_drops=12)) == "lost segments 0, ACKed unseen 0, kernel drops 12"


def test_capture_loss_text_with_queue_drops() -> None:
    stats = run_file(DUPACK).engine.snapshot().stats

    assert (
        capture_loss_text(replace(stats, kernel_drops=0, queue_drops=7))
        == "lost segments 0, ACKed unseen 0, kernel drops 0, queue drops 7"
    )
