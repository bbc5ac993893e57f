"""A description of the machine and the tool versions behind the numbers."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata


def describe() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": _memory_total(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "tshark": _first_line(["tshark", "--version"]),
        "tcpdump": _first_line(["tcpdump", "--version"]),
        "textual": metadata.version("textual"),
        "smtptop": metadata.version("smtptop"),
    }


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_total() -> str:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _first_line(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = (result.stdout or result.stderr).splitlines()
    return lines[0] if lines else "unknown"
