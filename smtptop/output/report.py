"""``--report``: a readable table of every conversation, printed when the input ends."""

from __future__ import annotations

from typing import Any, TextIO

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record
from smtptop.text.timefmt import format_absolute, format_duration

COLUMNS = ("start", "client", "server", "tls", "greeting", "msgs", "rcpt ok/all", "last reply", "duration", "retr")


class ReportCollector:
    """Collects finished conversations and writes them as an aligned table."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, conversation: Conversation) -> None:
        self.records.append(conversation_record(conversation))

    def write(self, stream: TextIO) -> None:
        rows = [COLUMNS] + [_cells(record) for record in sorted(self.records, key=lambda r: r["start"])]
        widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
        for row in rows:
            stream.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
        count = len(self.records)
        stream.write(f"{count} SMTP conversation{'' if count == 1 else 's'}\n")


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
