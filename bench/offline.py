"""The offline step: tshark's SMTP dissection and smtptop --json on the same capture, timed alike."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadCapture
from bench.processes import Measured, run_measured

SMTPTOP = str(Path(sys.executable).with_name("smtptop"))


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The runs of one tool: median wall time and the largest peak RSS over the runs."""

    name: str
    runs: tuple[Measured, ...]

    @property
    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def peak_rss_kib(self) -> int:
        return max(run.peak_rss_kib for run in self.runs)


@dataclass(frozen=True, slots=True)
class Counts:
    """Counts from smtptop's JSON output: conversations, and transactions the server accepted."""

    conversations: int
    accepted: int


def tshark_command(capture: LoadCapture) -> list[str]:
    # -d decodes the sink's random port as SMTP; -Y smtp makes tshark dissect every SMTP line.
    return ["tshark", "-r", str(capture.path), "-d", f"tcp.port=={capture.port},smtp", "-Y", "smtp",
            "-T", "fields", "-e", "smtp.req.command"]


def smtptop_command(capture: LoadCapture) -> list[str]:
    return [SMTPTOP, "-r", str(capture.path), "--port", str(capture.port), "--json"]


def compare(capture: LoadCapture, repeats: int) -> tuple[ToolResult, ToolResult]:
    """Run tshark and smtptop ``repeats`` times each, alternating, with stdout to /dev/null."""
    tshark_runs: list[Measured] = []
    smtptop_runs: list[Measured] = []
    for _ in range(repeats):
        tshark_runs.append(_checked(tshark_command(capture)))
        smtptop_runs.append(_checked(smtptop_command(capture)))
    return ToolResult("tshark", tuple(tshark_runs)), ToolResult("smtptop", tuple(smtptop_runs))


def _checked(command: list[str]) -> Measured:
    measured = run_measured(command)
    if measured.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with status {measured.returncode}")
    return measured


def write_json(capture: LoadCapture, path: Path) -> None:
    """Run smtptop --json once into ``path``, untimed, for the count check."""
    with open(path, "wb") as output:
        subprocess.run(smtptop_command(capture), stdout=output, check=True)


def count_json(path: Path) -> Counts:
    """Count the conversations and accepted transactions in smtptop's JSON lines."""
    conversations = 0
    accepted = 0
    with open(path) as lines:
        for line in lines:
            record = json.loads(line)
            conversations += 1
            accepted += sum(1 for item in record["transactions"] if item["result"] == "accepted")
    return Counts(conversations, accepted)
