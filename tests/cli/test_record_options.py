"""Recording from the command line: -w with -C, -W and -G, checked with tshark and capinfos."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from tests.cli.test_cli import run_smtptop
from tests.support.tshark import run_tshark

DEMO = Path(__file__).resolve().parents[2] / "smtptop" / "demo" / "demo.pcap"
USAGE_ERROR = 2


def _frame_times(path: Path) -> list[str]:
    return run_tshark(path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len").split("\n")


def test_size_ring_holds_every_frame_in_order(tmp_path: Path) -> None:
    result = run_smtptop("-r", str(DEMO), "-w", str(tmp_path / "demo.pcap"), "-C", "20k", "-W", "5", "--json")

    assert result.returncode == 0
    files = sorted(tmp_path.iterdir())
    assert [path.name for path in files] == [f"demo.pcap{number}" for number in range(len(files))]
    assert 1 < len(files) <= 5
    for path in files:
        assert path.stat().st_size <= 20 * 1024
    # Frame times and original lengths, file after file, equal the input's.
    written = [line for path in files for line in _frame_times(path) if line]
    assert written == [line for line in _frame_times(DEMO) if line]


def test_time_slices_start_at_multiples_of_the_period(tmp_path: Path) -> None:
    pattern = tmp_path / "slice-%Y%m%d-%H%M%S.pcap"
    result = run_smtptop("-r", str(DEMO), "-w", str(pattern), "-G", "10", "--json")

    assert result.returncode == 0
    files = sorted(tmp_path.iterdir())
    assert len(files) > 1
    total = 0
    for path in files:
        start = time.mktime(datetime.strptime(path.stem, "slice-%Y%m%d-%H%M%S").timetuple())
        assert start % 10 == 0
        times = [float(line.split("\t")[0]) for line in _frame_times(path) if line]
        assert all(start <= ts < start + 10 for ts in times)
        total += len(times)
    assert total == len([line for line in _frame_times(DEMO) if line])


def test_rotation_options_need_w() -> None:
    result = run_smtptop("-r", str(DEMO), "-G", "2", "--json")

    assert result.returncode == USAGE_ERROR
    assert "add -w FILE" in result.stderr.decode()


def test_missing_directory_is_named(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.pcap"
    result = run_smtptop("-r", str(DEMO), "-w", str(target), "--json")

    assert result.returncode == USAGE_ERROR
    message = result.stderr.decode()
    assert str(target.parent) in message
    assert "Traceback" not in message
