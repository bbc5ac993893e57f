"""The profile step: py-spy samples smtptop's offline run; the raw stacks are summed by self time."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.load import LoadCapture
from bench.offline import smtptop_command

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
SAMPLE_RATE = 200  # samples per second; py-spy's default is 100
# py-spy writes a frame as "function (path:line)"; the line number is dropped to sum per function.
_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True, slots=True)
class FunctionTime:
    """Samples in which a function was on top of the stack (self) or anywhere on it (total)."""

    function: str
    self_samples: int
    total_samples: int


def py_spy_available() -> bool:
    return Path(PY_SPY).exists() or shutil.which("py-spy") is not None


def record_offline(capture: LoadCapture, out_dir: Path) -> tuple[Path, Path]:
    """Profile smtptop's offline run twice: a flamegraph SVG to look at, and raw stacks to sum."""
    svg = out_dir / "profile.svg"
    raw = out_dir / "profile.txt"
    command = smtptop_command(capture)
    _py_spy(["--format", "raw", "-o", str(raw)], command, subprocess.DEVNULL)
    _py_spy(["--format", "flamegraph", "-o", str(svg)], command, subprocess.DEVNULL)
    return svg, raw


def record_dashboard_sort(out_dir: Path) -> Path:
    """Profile the dashboard with 10,000 open conversations while the sort key is pressed."""
    raw = out_dir / "profile-ui.txt"
    command = [sys.executable, "-m", "bench.scale", "ui", "10000"]
    _py_spy(["--format", "raw", "-o", str(raw)], command, subprocess.DEVNULL)
    return raw


def _py_spy(options: list[str], command: list[str], stdout: IO[bytes] | int) -> None:
    # --subprocesses is not needed: both profiled commands do their work in one process.
    result = subprocess.run([PY_SPY, "record", "-r", str(SAMPLE_RATE), *options, "--", *command],
                            stdout=stdout, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"py-spy failed with status {result.returncode}: "
                           f"{result.stderr.decode(errors='replace').strip()[-500:]}")


def summarise(raw: Path, limit: int = 15) -> tuple[list[FunctionTime], int]:
    """Return the ``limit`` functions with the most self samples, and the number of samples."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        # A sample of a thread with no Python frame has an empty stack; it is left out.
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        samples += count
        self_samples[frames[-1]] += count
        # A recursive function counts once per sample in its total.
        for frame in set(frames):
            total_samples[frame] += count
    top = [FunctionTime(name, count, total_samples[name]) for name, count in self_samples.most_common(limit)]
    return top, samples
