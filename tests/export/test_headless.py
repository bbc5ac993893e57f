"""``--save`` with and without ``--select``: the second read of the file writes the chosen conversations' frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pcap

from smtptop.config import EngineConfig
from smtptop.export.headless import FrameSelection, SaveSummary, save_capture
from tests.export.frames import read_engine, stream_filter, tshark_frames
from tests.support import PUBLIC_CAPTURES

AUTH_MULTI = PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"
ERRORS_MIXED = PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"
STREAM_0_CLIENT = "10.10.1.4:1470"  # EHLO, AUTH LOGIN, a message, then QUIT
STREAM_2_CLIENT = "192.168.133.100:49648"  # EHLO, MAIL, three RCPT, DATA; no QUIT


def _save(
    capture: Path,
    out: Path,
    text: str = "",
    config: EngineConfig | None = None,
    bpf_filter: str | None = None,
    read_file: str | None = None,
) -> tuple[int, int, int, int]:
    selection = FrameSelection(text)
    frame_filter: Callable[[bytes], object] | None = None
    if bpf_filter:
        frame_filter = pcap.bpf(bpf_filter.encode(), 1).filter
    # One frame per batch, so the engine's housekeeping (and eviction) runs after every frame.
    engine, _ = read_engine(
        capture, config, on_finished=selection, frame_filter=frame_filter, batch_size=1
    )
    summary = save_capture(engine, selection, read_file or str(capture), str(out), bpf_filter)
    listed = len(engine.snapshot().rows)
    return summary.conversations, summary.packets_written, summary.packets_not_written, listed


def test_select_by_server_address(tmp_path: Path) -> None:
    out = tmp_path / "selected.pcap"
    conversations, written, not_written, _ = _save(ERRORS_MIXED, out, "197.26.11.151")

    expected = tshark_frames(ERRORS_MIXED, stream_filter(ERRORS_MIXED, "10.7.29.101:49740"))
    assert conversations == 1
    assert not_written == 0
    assert written == len(expected)
    assert tshark_frames(out) == expected


def test_select_by_last_command_ignores_case(tmp_path: Path) -> None:
    out = tmp_path / "quit.pcap"
    conversations, _, _, _ = _save(AUTH_MULTI, out, "  quit ")

    assert conversations == 1
    assert tshark_frames(out) == tshark_frames(
        AUTH_MULTI, stream_filter(AUTH_MULTI, STREAM_0_CLIENT)
    )


def test_no_select_saves_every_smtp_conversation(tmp_path: Path) -> None:
    out = tmp_path / "all.pcap"
    conversations, written, _, _ = _save(AUTH_MULTI, out)

    # Two of the file's six TCP connections are SMTP; the TLS, 5050 and 5223 ones are left out.
    streams = " || ".join(
        f"({stream_filter(AUTH_MULTI, client)})" for client in (STREAM_0_CLIENT, STREAM_2_CLIENT)
    )
    expected = tshark_frames(AUTH_MULTI, streams)
    assert conversations == 2
    assert written == len(expected)
    assert tshark_frames(out) == expected


def test_select_matching_nothing_writes_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "none.pcap"
    conversations, written, _, _ = _save(AUTH_MULTI, out, "no conversation has this text")

    assert (conversations, written) == (0, 0)
    assert tshark_frames(out) == []


def test_bpf_filter_keeps_frame_numbers_aligned(tmp_path: Path) -> None:
    out = tmp_path / "port25.pcap"
    conversations, written, not_written, _ = _save(ERRORS_MIXED, out, bpf_filter="tcp port 25")

    # The filter hides the port 465 connection and renumbers the frames of the other three.
    expected = tshark_frames(ERRORS_MIXED, "tcp.port==25")
    assert conversations == 3
    assert not_written == 0
    assert written == len(expected)
    assert tshark_frames(out) == expected


def test_evicted_conversations_are_saved(tmp_path: Path) -> None:
    out = tmp_path / "evicted.pcap"
    # The file's four conversations follow one another, so each new one evicts the closed one before it.
    config = EngineConfig(linger_seconds=float("inf"), max_conversations=1)
    conversations, written, _, listed = _save(ERRORS_MIXED, out, config=config)

    assert listed < conversations
    assert conversations == 4
    assert written == len(tshark_frames(ERRORS_MIXED))
    assert tshark_frames(out) == tshark_frames(ERRORS_MIXED)


def test_stdin_saves_from_memory(tmp_path: Path) -> None:
    out = tmp_path / "stdin.pcap"
    conversations, written, not_written, _ = _save(AUTH_MULTI, out, "74.53.140.153", read_file="-")

    assert conversations == 1
    assert not_written == 0
    assert tshark_frames(out) == tshark_frames(
        AUTH_MULTI, stream_filter(AUTH_MULTI, STREAM_0_CLIENT)
    )
    assert written == len(tshark_frames(out))


def test_stdin_counts_evicted_frames_as_not_written(tmp_path: Path) -> None:
    out = tmp_path / "stdin-evicted.pcap"
    config = EngineConfig(linger_seconds=float("inf"), max_conversations=1)
    conversations, written, not_written, listed = _save(
        ERRORS_MIXED, out, config=config, read_file="-"
    )

    # Evicted conversations' frames are gone from memory, and stdin cannot be read twice.
    assert conversations == 4
    assert listed < conversations
    assert not_written > 0
    assert written + not_written == len(tshark_frames(ERRORS_MIXED))


def test_summary_line_names_counts() -> None:
    summary = SaveSummary("out.pcap", 1, 53, 0)
    from_stdin = SaveSummary("out.pcap", 4, 100, 58, from_memory=True)

    assert summary.line() == "saved 53 packets of 1 conversation to out.pcap"
    assert from_stdin.line().startswith(
        "saved 100 packets of 4 conversations to out.pcap; 58 packets not written"
    )
    assert "-r FILE --save" in from_stdin.line()


def test_trimmed_conversation_saved_whole(tmp_path: Path) -> None:
    out = tmp_path / "trimmed.pcap"
    # 20 packet records per conversation: the 53-packet AUTH conversation loses its middle ones.
    config = EngineConfig(linger_seconds=float("inf"), max_packets_per_conversation=20)
    selection = FrameSelection("74.53.140.153", packet_limit=20)
    engine, _ = read_engine(AUTH_MULTI, config, on_finished=selection)
    summary = save_capture(engine, selection, str(AUTH_MULTI), str(out))

    expected = tshark_frames(AUTH_MULTI, stream_filter(AUTH_MULTI, STREAM_0_CLIENT))
    # The engine itself no longer keeps every packet of the conversation.
    kept, not_kept = engine.frames_for(selection.keys)
    assert not_kept > 0
    assert len(kept) + not_kept == len(expected)
    assert summary.packets_written == len(expected)
    assert summary.packets_not_written == 0
    assert tshark_frames(out) == expected
