"""The compare screen: row building on built summaries, and marking and comparing on real captures.

The built summaries only exercise the row rules. On real captures the
expected values come from tshark reading the same file.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from rich.text import Text
from test_real_captures import keys_by_client, table
from test_tls_panel import ERRORS_MIXED, SIZE, needs_tshark, read_capture, tls13_summary
from textual.widgets import Static
from ui_samples import IMPLICIT_KEY, POSTFIX_KEY, STALLED_KEY, sample_source

from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationDetail
from smtptop.tls.summary import MODE_PLAINTEXT, HandshakeStep, TlsAlert, TlsSummary
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.compare import (
    DIFF_MARKER,
    DIFF_STYLE,
    NO_SUMMARY,
    CompareRow,
    CompareScreen,
    align_steps,
    compare_rows,
    field_rows,
    step_rows,
)
from smtptop.ui.dashboard import MARK_PREFIX, MARKED_STYLE, DashboardScreen, compare_status
from smtptop.ui.source import StaticSource
from smtptop.ui.tls_panel import ABSENT
from tests.support.tshark import run_tshark

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def by_key(rows: list[CompareRow]) -> dict[str, CompareRow]:
    return {row.key: row for row in rows}


def tls12_summary() -> TlsSummary:
    """A TLS 1.2 full handshake with an RSA certificate, to set against the TLS 1.3 one."""
    return tls13_summary(
        version="TLS 1.2",
        cipher="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        group=None,
        extended_master_secret=True,
        encrypt_then_mac=False,
        steps=(
            HandshakeStep("ClientHello", C2S, 50.0, "TLS 1.2"),
            HandshakeStep(
                "ServerHello", S2C, 50.01, "TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ),
            HandshakeStep("Certificate", S2C, 50.01),
            HandshakeStep("ServerKeyExchange", S2C, 50.01),
            HandshakeStep("ServerHelloDone", S2C, 50.01),
            HandshakeStep("ClientKeyExchange", C2S, 50.02),
            HandshakeStep("ChangeCipherSpec", C2S, 50.02),
            HandshakeStep("Finished", C2S, 50.02, encrypted=True),
        ),
        handshake_seconds=0.02,
    )


# -- row rules ------------------------------------------------------------------------------


def test_equal_summaries_have_no_differences() -> None:
    rows = compare_rows(tls13_summary(), tls13_summary())

    assert rows
    assert not any(row.differs for row in rows)


def test_differing_fields_flagged() -> None:
    rows = by_key(field_rows(tls13_summary(), tls12_summary()))

    assert rows["version"].differs
    assert (rows["version"].left, rows["version"].right) == ("TLS 1.3", "TLS 1.2")
    assert rows["cipher"].differs
    assert rows["group"].differs
    assert rows["group"].right == ABSENT
    assert rows["ems"].differs
    assert (rows["ems"].left, rows["ems"].right) == ("n/a in TLS 1.3", "yes")
    assert not rows["sni"].differs
    assert not rows["mode"].differs
    assert not rows["offered_versions"].differs


def test_measured_time_compared_by_presence() -> None:
    slower = tls13_summary(handshake_seconds=0.5)
    unfinished = tls13_summary(handshake_seconds=None)

    timing = by_key(field_rows(tls13_summary(), slower))["handshake"]
    assert (timing.left, timing.right) == ("25.000 ms", "500.000 ms")
    assert not timing.differs
    assert by_key(field_rows(tls13_summary(), unfinished))["handshake"].differs


def test_alert_and_stop_flagged() -> None:
    alert = TlsAlert("fatal", "protocol_version", 70, S2C, 100.013)
    failed = tls13_summary(
        alert=alert,
        steps=(
            HandshakeStep("ClientHello", C2S, 100.0),
            HandshakeStep("alert", S2C, 100.013, "fatal protocol_version (70)"),
        ),
    )
    rows = by_key(field_rows(tls13_summary(), failed))

    assert rows["alert"].differs
    assert rows["alert"].right == "fatal protocol_version (70) from server"
    assert rows["last_step"].differs
    assert (rows["last_step"].left, rows["last_step"].right) == (
        "Finished from client",
        "alert from server",
    )


def test_missing_summary_fields() -> None:
    rows = field_rows(None, tls13_summary())

    assert all(row.left == NO_SUMMARY for row in rows)
    assert all(row.differs for row in rows)


def test_align_steps_by_name_and_sender() -> None:
    tls13 = tls13_summary().steps
    tls12 = tls12_summary().steps

    pairs = align_steps(tls13, tls12)

    paired = [(left, right) for left, right in pairs if left is not None and right is not None]
    assert [(tls13[left].name, tls12[right].name) for left, right in paired] == [
        ("ClientHello", "ClientHello"),
        ("ServerHello", "ServerHello"),
        ("Finished", "Finished"),
    ]
    assert sorted(left for left, _ in pairs if left is not None) == list(range(len(tls13)))
    assert sorted(right for _, right in pairs if right is not None) == list(range(len(tls12)))


def test_align_keeps_sender_apart() -> None:
    # The client's and the server's Finished are different steps.
    client = (HandshakeStep("Finished", C2S, 1.0),)
    server = (HandshakeStep("Finished", S2C, 1.0),)

    assert align_steps(client, server) == [(0, None), (None, 0)]


def test_one_sided_steps_flagged() -> None:
    rows = step_rows(tls13_summary(), tls12_summary())
    labels = [row.label for row in rows]

    assert labels[:2] == ["C→S ClientHello", "S→C ServerHello"]
    assert labels[-1] == "C→S Finished"
    one_sided = [row for row in rows if ABSENT in (row.left, row.right)]
    assert {row.label for row in one_sided} == {
        "S→C EncryptedExtensions",
        "S→C Certificate",
        "S→C ServerKeyExchange",
        "S→C ServerHelloDone",
        "C→S ClientKeyExchange",
        "C→S ChangeCipherSpec",
    }
    assert all(row.differs for row in one_sided)
    hello = rows[0]
    assert (hello.left, hello.right) == ("0.000 ms  TLS 1.3", "0.000 ms  TLS 1.2")
    assert hello.differs
    finished = rows[-1]
    assert (finished.left, finished.right) == ("25.000 ms  (encrypted)", "20.000 ms  (encrypted)")
    assert not finished.differs


def test_compare_status_messages() -> None:
    assert compare_status(0) == "compare needs two marked conversations: press m on two rows"
    assert "1 marked, press m on one more" in compare_status(1)
    assert "3 marked, press m on a row to unmark it" in compare_status(3)


# -- Pilot tests on a real capture ----------------------------------------------------------


def stream_client(stream: str) -> str:
    """Return the client address of a tshark TCP stream, as "ip:port"."""
    fields = run_tshark(
        ERRORS_MIXED,
        "-Y",
        f"tcp.stream == {stream} and tcp.flags.syn == 1 and tcp.flags.ack == 0",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
    ).split()
    return ":".join(fields)


def stream_with(display_filter: str) -> str:
    streams = set(
        run_tshark(ERRORS_MIXED, "-Y", display_filter, "-T", "fields", "-e", "tcp.stream").split()
    )
    assert len(streams) == 1, f"{display_filter!r} matches streams {streams}"
    return streams.pop()


async def move_to(pilot, app: SmtpTopApp, key: str) -> None:  # type: ignore[no-untyped-def]
    conversations = table(app, "conversations")
    while conversations.cursor_row > 0:
        await pilot.press("up")
    for _ in range(conversations.row_count):
        if conversations.cursor_key == key:
            return
        await pilot.press("down")
    assert conversations.cursor_key == key


async def mark(pilot, app: SmtpTopApp, key: str) -> None:  # type: ignore[no-untyped-def]
    await move_to(pilot, app, key)
    await pilot.press("m")
    await pilot.pause()


def header(app: SmtpTopApp) -> str:
    return str(app.screen.query_one("#header", Static).content)


def compare_cells(app: SmtpTopApp, row_key: str) -> dict[str, Text]:
    compare = table(app, "compare")
    return {
        column: compare.get_cell(row_key, column) for column in ("marker", "field", "left", "right")
    }


@needs_tshark
async def test_mark_and_compare_starttls() -> None:
    # The stream whose EHLO reply offers STARTTLS, against the one that greets with HELO.
    offered = stream_with('smtp.rsp.parameter contains "STARTTLS"')
    helo = stream_with('smtp.req.command == "HELO"')
    both = f"tcp.stream == {offered} or tcp.stream == {helo}"
    assert run_tshark(ERRORS_MIXED, "-Y", f"({both}) and tls").strip() == ""
    starttls_sent = f'tcp.stream == {offered} and smtp.req.command == "STAR"'
    assert run_tshark(ERRORS_MIXED, "-Y", starttls_sent).strip() == ""
    app = read_capture(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = keys_by_client(app)
        offered_key, helo_key = keys[stream_client(offered)], keys[stream_client(helo)]

        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert compare_status(0) in header(app)

        await mark(pilot, app, offered_key)
        client_cell = table(app, "conversations").get_cell(offered_key, "client")
        assert client_cell.plain == MARK_PREFIX + stream_client(offered)
        assert str(client_cell.style) == MARKED_STYLE
        assert "marked 1" in header(app)
        await pilot.press("c")
        await pilot.pause()
        assert compare_status(1) in header(app)

        await mark(pilot, app, helo_key)
        assert "compare needs" not in header(app)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.keys == (int(offered_key), int(helo_key))

        starttls = compare_cells(app, "starttls")
        assert starttls["left"].plain == "STARTTLS offered but not used"
        assert starttls["right"].plain != starttls["left"].plain
        assert starttls["marker"].plain == DIFF_MARKER
        assert all(str(cell.style) == DIFF_STYLE for cell in starttls.values())
        # tshark finds no TLS on either stream, so the mode and the negotiated fields are equal.
        for row_key in ("mode", "version", "cipher", "alert"):
            cells = compare_cells(app, row_key)
            assert cells["left"].plain == cells["right"].plain
            assert cells["marker"].plain.strip() == ""
            assert str(cells["left"].style) != DIFF_STYLE
        assert compare_cells(app, "mode")["left"].plain == "plaintext"

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert "marked 2" in header(app)


async def test_compare_needs_exactly_two() -> None:
    app = read_capture(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = table(app, "conversations").row_keys()
        for key in keys[:3]:
            await mark(pilot, app, key)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert compare_status(3) in header(app)

        # m on a marked row unmarks it, and its client cell loses the prefix.
        await mark(pilot, app, keys[2])
        assert (
            not table(app, "conversations")
            .get_cell(keys[2], "client")
            .plain.startswith(MARK_PREFIX)
        )
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)


def supported_versions(stream: str) -> list[str]:
    """Return the versions a ClientHello offers in its supported_versions extension, from tshark's details."""
    details = run_tshark(
        ERRORS_MIXED, "-Y", f"tcp.stream == {stream} and tls.handshake.type == 1", "-O", "tls", "-V"
    )
    return re.findall(r"Supported Version: (TLS [0-9.]+) \(0x", details)


@needs_tshark
async def test_compare_client_hello_on_plaintext_server() -> None:
    # On port 465 Postfix greets in plaintext and the client sends a ClientHello anyway;
    # tshark decodes that ClientHello, and the file has no ServerHello at all.
    tls_stream = stream_with("tls.handshake.type == 1")
    helo = stream_with('smtp.req.command == "HELO"')
    offered = supported_versions(tls_stream)
    assert offered
    assert run_tshark(ERRORS_MIXED, "-Y", "tls.handshake.type == 2").strip() == ""
    app = read_capture(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = keys_by_client(app)
        await mark(pilot, app, keys[stream_client(tls_stream)])
        await mark(pilot, app, keys[stream_client(helo)])
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)

        versions = compare_cells(app, "offered_versions")
        assert versions["left"].plain == ", ".join(offered)
        assert versions["right"].plain == ABSENT
        assert versions["marker"].plain == DIFF_MARKER
        assert compare_cells(app, "mode")["marker"].plain == DIFF_MARKER
        for row_key in ("version", "cipher"):
            cells = compare_cells(app, row_key)
            assert (cells["left"].plain, cells["right"].plain) == (ABSENT, ABSENT)
            assert cells["marker"].plain.strip() == ""
        hello = compare_cells(app, "step 0")
        assert hello["field"].plain == "C→S ClientHello"
        assert hello["right"].plain == ABSENT
        assert hello["marker"].plain == DIFF_MARKER


@pytest.mark.parametrize("keep", ["left", "right"])
def test_summary_absent_on_one_side(keep: str) -> None:
    plain = TlsSummary(mode=MODE_PLAINTEXT, starttls="not-offered")
    left, right = (plain, None) if keep == "left" else (None, plain)
    rows = by_key(field_rows(left, right))

    assert rows["mode"].differs
    assert NO_SUMMARY in (rows["mode"].left, rows["mode"].right)


# -- refreshing on a static source ----------------------------------------------------------


def details_with(left: TlsSummary, right: TlsSummary) -> dict[int, ConversationDetail]:
    """Return the sample details, the stalled conversation with ``left`` and the implicit one with ``right``."""
    source = sample_source()
    details = {}
    for key, summary in ((POSTFIX_KEY, None), (STALLED_KEY, left), (IMPLICIT_KEY, right)):
        detail = source.detail(key)
        assert detail is not None
        details[key] = dataclasses.replace(detail, tls=summary)
    return details


def source_with_summaries(left: TlsSummary, right: TlsSummary) -> StaticSource:
    source = sample_source()
    source.update(details=details_with(left, right))
    return source


async def open_compare(pilot, app: SmtpTopApp) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    for key in (STALLED_KEY, IMPLICIT_KEY):
        await mark(pilot, app, str(key))
    await pilot.press("c")
    await pilot.pause()
    assert isinstance(app.screen, CompareScreen)


async def test_compare_follows_newer_details() -> None:
    source = source_with_summaries(tls13_summary(), tls13_summary())
    app = SmtpTopApp(source, live=False, refresh_hz=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await open_compare(pilot, app)
        assert compare_cells(app, "version")["marker"].plain.strip() == ""

        source.update(details=details_with(tls13_summary(), tls12_summary()))
        assert isinstance(app.screen, CompareScreen)
        app.refresh_from_source()
        await pilot.pause()

        version = compare_cells(app, "version")
        assert (version["left"].plain, version["right"].plain) == ("TLS 1.3", "TLS 1.2")
        assert version["marker"].plain == DIFF_MARKER


async def test_compare_keeps_view_when_untracked() -> None:
    source = source_with_summaries(tls13_summary(), tls12_summary())
    app = SmtpTopApp(source, live=False, refresh_hz=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await open_compare(pilot, app)

        gone = details_with(tls13_summary(), tls12_summary())
        del gone[IMPLICIT_KEY]
        source.update(details=gone)
        assert isinstance(app.screen, CompareScreen)
        app.refresh_from_source()
        await pilot.pause()

        title = str(app.screen.query_one("#compare-title", Static).content)
        assert "B: [2001:db8::7]:51000 → [2001:db8::25]:465 (no longer tracked)" in title
        assert compare_cells(app, "version")["right"].plain == "TLS 1.2"


async def test_compare_paused_keeps_view() -> None:
    source = source_with_summaries(tls13_summary(), tls13_summary())
    app = SmtpTopApp(source, live=False, refresh_hz=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await open_compare(pilot, app)
        await pilot.press("p")
        await pilot.pause()

        source.update(details=details_with(tls13_summary(), tls12_summary()))
        assert isinstance(app.screen, CompareScreen)
        app.refresh_from_source()
        await pilot.pause()

        assert compare_cells(app, "version")["right"].plain == "TLS 1.3"


async def test_compare_untracked_conversation_says_so() -> None:
    source = source_with_summaries(tls13_summary(), tls12_summary())
    app = SmtpTopApp(source, live=False, refresh_hz=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key in (STALLED_KEY, IMPLICIT_KEY):
            await mark(pilot, app, str(key))
        details = details_with(tls13_summary(), tls12_summary())
        del details[IMPLICIT_KEY]
        source.update(details=details)

        await pilot.press("c")
        await pilot.pause()

        assert isinstance(app.screen, DashboardScreen)
        assert f"conversation {IMPLICIT_KEY} is no longer tracked" in header(app)
