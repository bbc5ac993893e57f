"""``--report``: a readable table of every conversation, then per-phase latency percentiles, printed when the input ends."""

from __future__ import annotations

from typing import Any, TextIO

from smtptop.engine.conversation import Conversation
from smtptop.metrics.percentiles import summarize
from smtptop.output.records import conversation_record
from smtptop.text.timefmt import format_absolute, format_duration

COLUMNS = ("start", "client", "server", "tls", "greeting", "msgs", "rcpt ok/all", "last reply", "duration", "retr")
PHASE_COLUMNS = ("phase", "count", "p50", "p95", "p99")


class ReportCollector:
    """Collects finished conversations and writes them as an aligned table."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, conversation: Conversation) -> None:
        self.records.append(conversation_record(conversation))

    def write(self, stream: TextIO) -> None:
        rows = [COLUMNS] + [_cells(record) for record in sorted(self.records, key=lambda r: r["start"])]
        _write_table(stream, rows)
        phase_rows = _phase_rows(self.records)
        if len(phase_rows) > 1:
            stream.write("\nLatency per phase (nearest-rank percentiles over the conversations above)\n")
            _write_table(stream, phase_rows)
            stream.write("\n")
        # The count stays the last line, for scripts that read it.
        count = len(self.records)
        stream.write(f"{count} SMTP conversation{'' if count == 1 else 's'}\n")


def _write_table(stream: TextIO, rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    stream.writelines("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n" for row in rows)


def _phase_rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Build the percentile table of every completed phase, phases in order of first appearance."""
    latencies: dict[str, list[float]] = {}
    for record in records:
        for phase in record.get("phases", []):
            if phase["latency_ms"] is not None:
                latencies.setdefault(phase["phase"], []).append(phase["latency_ms"] / 1000.0)
    rows: list[tuple[str, ...]] = [PHASE_COLUMNS]
    for name, values in latencies.items():
        summary = summarize(values)
        assert summary is not None  # only phases with a completed sample are listed
        percentiles = (format_duration(summary.p50), format_duration(summary.p95), format_duration(summary.p99))
        rows.append((name, str(summary.count), *percentiles))
    return rows


def _cells(record: dict[str, Any]) -> tuple[str, ...]:
    transactions = record.get("transactions", [])
    recipients = [rcpt for transaction in transactions for rcpt in transaction["rcpt"]]
    accepted = sum(1 for rcpt in recipients if rcpt["code"] is not None and 200 <= rcpt["code"] < 300)
    commands = record.get("commands", [])
    last_reply = next(
        (f"{c['reply_code']} {c['reply_text'] or ''}".strip() for c in reversed(commands) if c["reply_code"]), ""
    )
    greeting = record.get("greeting", {})
    return (
        format_absolute(record["start"]),
        record["client"],
        record["server"],
        record.get("tls", {}).get("mode", "none"),
        str(greeting.get("code") or "-"),
        str(sum(1 for transaction in transactions if transaction["result_code"] is not None)),
        f"{accepted}/{len(recipients)}",
        last_reply[:40],
        format_duration(record["end"] - record["start"]),
        str(record["tcp"]["retransmissions"]),
    )
