"""Exporting conversations' frames to pcap, checked against tshark's reading of the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtptop.config import EngineConfig
from smtptop.export.pcap import ExportError, write_pcap
from smtptop.ui.save import save_text
from tests.export.frames import read_engine, stream_filter, tshark_frames
from tests.support import PUBLIC_CAPTURES

AUTH_MULTI = PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"
ERRORS_MIXED = PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"
ZERO_WINDOW = PUBLIC_CAPTURES / "smtp-sv-2525-zero-window.pcap"


@pytest.mark.parametrize("capture", [AUTH_MULTI, ERRORS_MIXED], ids=lambda path: path.name)
def test_each_conversation_matches_tcp_stream(capture: Path, tmp_path: Path) -> None:
    engine, snaplen = read_engine(capture)
    rows = engine.snapshot().rows
    assert len(rows) >= 2

    for row in rows:
        frames, dropped = engine.frames_for([row.key])
        out = tmp_path / f"conversation-{row.key}.pcap"
        written = write_pcap(str(out), engine.link_type, snaplen, frames)

        expected = tshark_frames(capture, stream_filter(capture, row.client))
        assert dropped == 0
        assert written == len(expected)
        assert tshark_frames(out) == expected


def test_frames_for_keeps_capture_order(tmp_path: Path) -> None:
    engine, snaplen = read_engine(ERRORS_MIXED)
    keys = [row.key for row in engine.snapshot().rows]

    frames, dropped = engine.frames_for(reversed(keys))  # type: ignore[arg-type]
    out = tmp_path / "all.pcap"
    write_pcap(str(out), engine.link_type, snaplen, frames)

    # The file's four TCP connections are all SMTP, so every frame of the input is exported.
    assert dropped == 0
    assert tshark_frames(out) == tshark_frames(ERRORS_MIXED)


def test_dropped_frames_are_counted(tmp_path: Path) -> None:
    # 1 MiB of frame store for a 1.97 MB capture: the oldest frames' bytes leave memory.
    engine, snaplen = read_engine(
        ZERO_WINDOW, EngineConfig(linger_seconds=float("inf"), frame_store_mib=1)
    )
    (row,) = engine.snapshot().rows

    frames, dropped = engine.frames_for([row.key])
    out = tmp_path / "partial.pcap"
    written = write_pcap(str(out), engine.link_type, snaplen, frames)

    expected = tshark_frames(ZERO_WINDOW, stream_filter(ZERO_WINDOW, row.client))
    exported = tshark_frames(out)
    assert dropped > 0
    assert written + dropped == len(expected)
    assert len(exported) == written
    # What was kept is written unchanged and in order.
    remaining = iter(expected)
    assert all(frame in remaining for frame in exported)


def test_frames_for_unknown_key_is_empty() -> None:
    engine, _ = read_engine(AUTH_MULTI)
    assert engine.frames_for([10_000]) == ([], 0)


def test_unwritable_path_names_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "out.pcap"
    with pytest.raises(ExportError) as raised:
        write_pcap(str(missing), 1, 262144, [])
    message = str(raised.value)
    assert str(missing) in message
    assert "directory does not exist" in message
    assert "choose a writable directory" in message


def test_directory_as_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as raised:
        write_pcap(str(tmp_path), 1, 262144, [])
    assert "is a directory" in str(raised.value)


def test_exported_files_private(tmp_path: Path) -> None:
    engine, snaplen = read_engine(AUTH_MULTI)
    frames, _ = engine.frames_for([row.key for row in engine.snapshot().rows])
    capture = tmp_path / "auth.pcap"
    text = tmp_path / "auth.txt"

    write_pcap(str(capture), engine.link_type, snaplen, frames)
    save_text({1: "C: AUTH PLAIN ********"}, str(text))

    assert capture.stat().st_mode & 0o777 == 0o600
    assert text.stat().st_mode & 0o777 == 0o600
