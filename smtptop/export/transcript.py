"""A conversation's SMTP dialogue as plain text, as the transcript tab shows it.

Each line has the absolute capture time, the reply latency and the text with
a ``C:``/``S:`` prefix (``C (TLS):`` for lines read from decrypted TLS, ``--``
for smtptop's own notes). The engine masks AUTH credentials in the detail
unless the user revealed them. Without ``reveal``, the AUTH lines and SASL
responses are masked once more here, so text from a revealing engine cannot
leak into a file the user did not ask to hold secrets.
"""

from __future__ import annotations

from datetime import datetime

from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationDetail, TranscriptLine
from smtptop.smtp.redact import mask_sasl_response, redact_command
from smtptop.text.printable import printable
from smtptop.text.timefmt import format_absolute, format_duration, format_latency

PREFIXES = {Direction.CLIENT_TO_SERVER: "C: ", Direction.SERVER_TO_CLIENT: "S: "}
NOTE_PREFIX = "-- "
# A 334 reply is a SASL challenge, and the client sends its response as the next line (RFC 4954, section 4).
SASL_CHALLENGE = "334"
# The start of a SASL response line in the engine's transcript (``SaslResponse.summary``).
SASL_RESPONSE_PREFIX = "AUTH response "


def transcript_text(detail: ConversationDetail, reveal: bool = False) -> str:
    """Format a header and the transcript of one conversation, one line each, ending with a newline."""
    lines = header_lines(detail, reveal)
    lines.append("")
    in_sasl = False
    for line in detail.transcript:
        text = line.text
        if line.direction is Direction.SERVER_TO_CLIENT:
            in_sasl = text.startswith(SASL_CHALLENGE)
        elif line.direction is Direction.CLIENT_TO_SERVER and not reveal:
            text = _masked(text, in_sasl)
        lines.append(
            f"{format_absolute(line.ts)}  {format_latency(line.latency):>8}  {line_prefix(line)}{printable(text)}"
        )
    return "\n".join(lines) + "\n"


def header_lines(detail: ConversationDetail, reveal: bool) -> list[str]:
    """Describe the conversation: endpoints, start and end with the date, and its counters."""
    row = detail.row
    duration = format_duration(row.last_seen - row.start)
    return [
        f"SMTP conversation {printable(row.client)} → {printable(row.server)}",
        f"start {_dated(row.start)}  end {_dated(row.last_seen)}  ({duration})",
        f"TLS {printable(row.tls_mode)}  TCP {printable(detail.tcp_stage)}  stage {printable(row.stage)}",
        f"packets {row.packets:,}  bytes {row.bytes:,}  messages {row.messages}",
        "AUTH credentials shown" if reveal else "AUTH credentials masked",
    ]


def line_prefix(line: TranscriptLine) -> str:
    """Return the prefix the transcript tab gives a line: ``C: ``, ``S (TLS): `` or ``-- `` for notes."""
    if line.direction is None:
        return NOTE_PREFIX
    prefix = PREFIXES[line.direction]
    return prefix.replace(":", " (TLS):") if line.decrypted else prefix


def _masked(text: str, in_sasl: bool) -> str:
    """Mask an AUTH initial response, a SASL response line, or any client line sent after a 334 challenge."""
    if text.startswith(SASL_RESPONSE_PREFIX):
        return SASL_RESPONSE_PREFIX + mask_sasl_response(
            text.removeprefix(SASL_RESPONSE_PREFIX), False
        )
    verb, _, arg = text.partition(" ")
    if verb.upper() == "AUTH":
        return redact_command("AUTH", arg, False, spelled=verb)
    if in_sasl:
        return mask_sasl_response(text, False)
    return text


def _dated(ts: float) -> str:
    """Format a capture time with its date and UTC offset, in the local time zone as the screens use."""
    try:
        return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f %z")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"
