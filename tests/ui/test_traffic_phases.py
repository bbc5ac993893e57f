"""The traffic panel's phase table puts the phases where mail waits first."""

from __future__ import annotations

from rich.console import Console

from smtptop.metrics.stats import Percentiles
from smtptop.ui.traffic import percentile_table

PHASES = [
    "SYN-ACK", "handshake ACK", "greeting", "EHLO", "MAIL", "RCPT", "DATA",
    "body", "end-of-data", "QUIT", "TLS client", "TLS server",
]


def test_phase_table_waiting_phases_first() -> None:
    sample = Percentiles(count=3, p50=0.001, p95=0.002, p99=0.003)
    console = Console(width=80, record=True)
    console.print(percentile_table([(name, sample) for name in PHASES], 60.0))
    lines = [line.split()[0] for line in console.export_text().splitlines()[1:] if line.strip()]
    assert lines[:3] == ["greeting", "end-of-data", "DATA"]
    assert "SYN-ACK" not in lines
    assert lines[-1] == "+5"
