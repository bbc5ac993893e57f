"""The transcript text of a real conversation: header, lines as the transcript tab shows them, AUTH masked."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from smtptop.engine.snapshot import ConversationDetail
from smtptop.export.transcript import transcript_text
from smtptop.text.timefmt import TimeDisplay
from smtptop.ui.conversation import transcript_cells
from tests.export.frames import read_engine, tcp_stream_of
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark

AUTH_MULTI = PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"
AUTH_CLIENT = "10.10.1.4:1470"


def _auth_detail(reveal: bool = False) -> ConversationDetail:
    engine, _ = read_engine(AUTH_MULTI)
    engine.set_reveal_secrets(reveal)
    key = next(row.key for row in engine.snapshot().rows if row.client == AUTH_CLIENT)
    detail = engine.detail(key)
    assert detail is not None
    return detail


def _credentials() -> list[str]:
    """Return the AUTH LOGIN user name and password lines as the client sent them, read by tshark."""
    fields = run_tshark(
        AUTH_MULTI,
        "-Y",
        "smtp.auth.username || smtp.auth.password",
        "-T",
        "fields",
        "-e",
        "smtp.auth.username",
        "-e",
        "smtp.auth.password",
    )
    values = fields.split()
    assert len(values) == 2
    return values


def test_auth_masked_by_default() -> None:
    text = transcript_text(_auth_detail())

    for credential in _credentials():
        assert credential not in text
    assert "C: AUTH LOGIN\n" in text
    assert text.count("C: AUTH response ****\n") == 2
    assert "AUTH credentials masked" in text


def test_auth_shown_when_revealed() -> None:
    text = transcript_text(_auth_detail(reveal=True), reveal=True)

    for credential in _credentials():
        assert f"C: AUTH response {credential}\n" in text
    assert "AUTH credentials shown" in text


def test_revealed_detail_masked_without_reveal() -> None:
    # A detail from an engine that shows secrets still gives a masked file unless the caller reveals.
    text = transcript_text(_auth_detail(reveal=True), reveal=False)

    for credential in _credentials():
        assert credential not in text
    assert text.count("C: AUTH response ****\n") == 2


def test_lines_match_transcript_tab() -> None:
    detail = _auth_detail()
    lines = transcript_text(detail).splitlines()
    body = lines[lines.index("") + 1 :]

    assert len(body) == len(detail.transcript)
    for text_line, line in zip(body, detail.transcript):
        time, latency, words = (
            cell.plain for cell in transcript_cells(line, TimeDisplay.ABSOLUTE, 0.0, None)
        )
        assert text_line == f"{time}  {latency:>8}  {words}"


def test_header_names_endpoints_and_times() -> None:
    detail = _auth_detail()
    header = transcript_text(detail).split("\n\n", 1)[0]

    stream = tcp_stream_of(AUTH_MULTI, AUTH_CLIENT)
    times = run_tshark(
        AUTH_MULTI, "-Y", f"tcp.stream=={stream} && !icmp", "-T", "fields", "-e", "frame.time_epoch"
    )
    first, last = Decimal(times.split()[0]), Decimal(times.split()[-1])
    assert header.startswith("SMTP conversation 10.10.1.4:1470 → 74.53.140.153:25\n")
    assert (
        f"start {datetime.fromtimestamp(float(first)).strftime('%Y-%m-%d %H:%M:%S.%f')}" in header
    )
    assert f"end {datetime.fromtimestamp(float(last)).strftime('%Y-%m-%d %H:%M:%S.%f')}" in header
