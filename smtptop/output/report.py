"""``--report``: a readable table of every conversation, then per-phase latency percentiles, printed when the input ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from smtptop.engine.conversation import Conversation
from smtptop.engine.snapshot import CaptureStats
from smtptop.metrics.percentiles import summarize
from smtptop.output.records import conversation_record
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_duration

COLUMNS = ("start", "client", "server", "tls", "greeting", "msgs", "rcpt ok/all", "last reply", "duration", "retr")
PHASE_COLUMNS = ("phase", "count", "p50", "p95", "p99")


class ReportCollector:
    """Collects finished conversations and writes them as an aligned table."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.closed = False  # the reader of the table went away, as ``| head`` does

    def __call__(self, conversation: Conversation) -> None:
        self.records.append(conversation_record(conversation))

    def write(self, stream: TextIO, capture: CaptureStats | None = None) -> None:
        """Write the table, the phase percentiles, the capture-loss counters of ``capture`` and the count."""
        rows = [COLUMNS] + [_cells(record) for record in sorted(self.records, key=lambda r: r["start"])]
        _write_table(stream, rows)
        phase_rows = _phase_rows(self.records)
        if len(phase_rows) > 1:
            stream.write("\nLatency per phase (nearest-rank percentiles over the conversations above)\n")
            _write_table(stream, phase_rows)
            stream.write("\n")
        if capture is not None:
            stream.write(f"{capture_loss_text(capture)}\n")
        # The count stays the last line, for scripts that read it.
        count = len(self.records)
        stream.write(f"{count} SMTP conversation{'' if count == 1 else 's'}\n")


def capture_loss_text(capture: CaptureStats) -> str:
    """Describe loss seen in the capture, so network loss can be told from packets the capture missed.

    Lost segments are gaps in a sender's sequence numbers, lost by the network
    or by the capture. An ACKed unseen segment reached the peer but not the
    capture. Kernel drops are packets the capture buffer had no room for, and queue
    drops those the capture queue in memory had no room for.
    """
    kernel = "n/a" if capture.kernel_drops is None else f"{capture.kernel_drops:,}"
    text = f"lost segments {capture.lost_segments:,}, ACKed unseen {capture.acked_unseen:,}, kernel drops {kernel}"
    if capture.queue_drops is not None:
        text += f", queue drops {capture.queue_drops:,}"
    return text


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
    messages = sum(1 for transaction in transactions if transaction["result"] == "accepted")
    greeting = record.get("greeting", {})
    return (
        datetime.fromtimestamp(record["start"]).strftime("%Y-%m-%d %H:%M:%S.%f"),
        record["client"],
        record["server"],
        _tls(record.get("tls", {})),
        str(greeting.get("code") or "-"),
        str(messages),
        f"{accepted}/{len(recipients)}",
        # Servers echo what they could not parse, binary bytes included.
        printable(_last_reply(record))[:40],
        format_duration(record["end"] - record["start"]),
        str(record["tcp"]["retransmissions"]),
    )


def _tls(tls: dict[str, Any]) -> str:
    """Return the mode, the version, and whether the session was decrypted: "starttls 1.3 dec"."""
    text = tls.get("mode", "plaintext")
    if tls.get("version"):
        text += " " + str(tls["version"]).removeprefix("TLS ")
    if tls.get("decrypted"):
        text += " dec"
    elif tls.get("starttls") == "failed":
        text += " failed"
    return text


def _last_reply(record: dict[str, Any]) -> str:
    """Return the newest reply of any kind: to a command, unsolicited (such as a 421), or the greeting."""
    replies: list[tuple[float, str]] = []
    for command in record.get("commands", []):
        if command["reply_code"] is not None and command["latency_ms"] is not None:
            text = f"{command['reply_code']} {command['reply_text'] or ''}".strip()
            replies.append((command["ts"] + command["latency_ms"] / 1000.0, text))
    for reply in record.get("unsolicited_replies", []):
        replies.append((reply["ts"], f"{reply['code']} {reply['text']}".strip()))
    if replies:
        return max(replies)[1]
    greeting = record.get("greeting", {})
    if greeting.get("code") is not None:
        return f"{greeting['code']} {greeting.get('text') or ''}".strip()
    return ""
