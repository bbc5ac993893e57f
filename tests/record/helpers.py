"""Helpers for the recording tests: real captures in, capinfos and tshark as the oracle out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from smtptop.capture.files import Frame, open_capture
from tests.support.tshark import run_tshark

requires_wireshark_tools = pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("capinfos") is None,
    reason="tshark and capinfos are needed (scripts/setup.sh installs them)",
)

# One tshark row per frame: capture time, length on the wire, captured length.
FRAME_FIELDS = ("frame.time_epoch", "frame.len", "frame.cap_len")


def read_frames(path: str | Path) -> tuple[list[Frame], int, int]:
    """Return the frames, link type and snaplen of a capture file."""
    reader = open_capture(str(path))
    try:
        frames = [frame for batch in reader.batches() for frame in batch]
        assert reader.error is None, reader.error
        return frames, reader.link_type, reader.snaplen
    finally:
        reader.close()


def capinfos(path: str | Path) -> dict[str, str]:
    """Run capinfos on ``path``; return its "Name: value" lines, failing the test on any complaint."""
    result = subprocess.run(
        ["capinfos", "-c", "-E", "-l", "-t", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"capinfos {path}: {result.stderr}"
    assert result.stderr == "", f"capinfos {path}: {result.stderr}"
    info: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            info[name.strip()] = value.strip()
    return info


def packet_count(path: str | Path) -> int:
    """Return capinfos' packet count of ``path``, in full: without -M it prints "60 k" from 10,000 on."""
    result = subprocess.run(["capinfos", "-M", "-c", str(path)], capture_output=True, text=True, timeout=60, check=True)
    return int(result.stdout.rsplit(":", 1)[1])


def frame_rows(path: str | Path) -> list[tuple[str, ...]]:
    """Return tshark's (time_epoch, len, cap_len) for every frame of ``path``."""
    output = run_tshark(
        path, "-T", "fields", *(arg for field in FRAME_FIELDS for arg in ("-e", field))
    )
    return [tuple(line.split("\t")) for line in output.splitlines() if line]
