"""The TLS tab: layout rules on built summaries, and Pilot tests on real captures checked against tshark.

The built summaries only exercise the layout's branches. What the tab shows
for a real capture is compared with tshark reading the same file with the same
key log, never with smtptop's own output.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest
from real_sources import wait_until_finished
from rich.console import Console, Group
from rich.segment import Segment
from rich.table import Table
from test_real_captures import column, keys_by_client, open_conversation, table
from textual.widgets import TabbedContent

from smtptop.cli import open_source, parse_config
from smtptop.direction import Direction
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.tls.summary import (
    MODE_IMPLICIT,
    MODE_PLAINTEXT,
    MODE_STARTTLS,
    CertificateInfo,
    HandshakeStep,
    TlsAlert,
    TlsSummary,
)
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.tls_panel import (
    ABSENT,
    ENCRYPTED_STYLE,
    ERROR_STYLE,
    WARNING_STYLE,
    TlsPanel,
    absence_line,
    alert_text,
    certificate_fields,
    choice_fields,
    decryption_text,
    offer_fields,
    outcome_lines,
    step_lines,
    steps_table,
    tls_panel,
)
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark, tshark_path

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

STARTTLS_25 = PUBLIC_CAPTURES / "starttls-keylog-port25.pcapng"
STARTTLS_25_KEYS = PUBLIC_CAPTURES / "starttls-keylog-port25.keys"
ERRORS_MIXED = PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"
SIZE = (160, 50)

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is needed as the oracle")

# The cipher suites and groups a client offers in RFC 8448 section 3 (simple 1-RTT handshake).
RFC8448_CIPHERS = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_256_GCM_SHA384",
)
RFC8448_GROUPS = ("x25519", "secp256r1", "secp384r1", "secp521r1", "ffdhe2048")


def tls13_summary(**changes: object) -> TlsSummary:
    """A completed TLS 1.3 negotiation shaped like RFC 8448 section 3, for the layout rules."""
    values: dict[str, object] = {
        "mode": MODE_IMPLICIT,
        "starttls": "not-offered",
        "offered_versions": ("TLS 1.3",),
        "offered_ciphers": RFC8448_CIPHERS,
        "sni": "server",
        "offered_groups": RFC8448_GROUPS,
        "offered_extensions": (
            "server_name",
            "supported_groups",
            "key_share",
            "supported_versions",
        ),
        "version": "TLS 1.3",
        "cipher": "TLS_AES_128_GCM_SHA256",
        "group": "x25519",
        "resumed": False,
        "steps": (
            HandshakeStep("ClientHello", C2S, 100.0, "TLS 1.3"),
            HandshakeStep("ServerHello", S2C, 100.0125, "TLS 1.3, TLS_AES_128_GCM_SHA256"),
            HandshakeStep("EncryptedExtensions", S2C, 100.0126, encrypted=True),
            HandshakeStep("Finished", C2S, 100.025, encrypted=True),
        ),
        "handshake_seconds": 0.025,
        "decrypt_error": "no key log entry for this ClientHello",
        "records": 6,
    }
    values.update(changes)
    return TlsSummary(**values)  # type: ignore[arg-type]


def certificate(validity: str = "valid") -> CertificateInfo:
    return CertificateInfo(
        subject="CN=mail.example.com",
        issuer="CN=Example CA",
        sans=("mail.example.com", "mx.example.com"),
        not_before="2015-01-30T11:27:08+00:00",
        not_after="2018-01-29T11:27:08+00:00",
        key="RSA 2048",
        validity=validity,
        self_signed=False,
        chain_length=2,
    )


def fields_by_label(fields: list[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    return {label: (value, style) for label, value, style in fields}


def rendered(summary: TlsSummary | None) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(tls_panel(summary))
    return console.export_text()


# -- layout rules -------------------------------------------------------------------------


def test_absence_line_for_plaintext() -> None:
    assert absence_line(None) == "no TLS information for this conversation"
    offered = TlsSummary(mode=MODE_PLAINTEXT, starttls="offered")
    assert absence_line(offered) == "plaintext: STARTTLS offered but not used"
    refused = TlsSummary(mode=MODE_PLAINTEXT, starttls="refused")
    assert absence_line(refused) == "plaintext: STARTTLS refused by the server"
    assert rendered(offered).strip() == "plaintext: STARTTLS offered but not used"


def test_absence_line_none_when_steps_exist() -> None:
    hello = (HandshakeStep("ClientHello", C2S, 1.0),)

    assert absence_line(TlsSummary(mode=MODE_PLAINTEXT, starttls="unknown", steps=hello)) is None
    assert absence_line(TlsSummary(mode=MODE_STARTTLS, starttls="accepted")) is None


def test_step_times_since_client_hello() -> None:
    lines = step_lines(tls13_summary().steps)

    assert [line.offset_ms for line in lines] == [0.0, 12.5, 12.6, 25.0]
    assert [line.sender for line in lines] == [
        "client → server",
        "server → client",
        "server → client",
        "client → server",
    ]
    assert [line.encrypted for line in lines] == [False, False, True, True]


def test_step_times_without_client_hello() -> None:
    # A capture that starts mid-handshake: the first step seen is the reference.
    steps = (HandshakeStep("ServerHello", S2C, 5.0), HandshakeStep("Certificate", S2C, 5.002))

    assert [line.offset_ms for line in step_lines(steps)] == [0.0, 2.0]


def test_encrypted_steps_dimmed() -> None:
    renderable = steps_table(tls13_summary())
    assert isinstance(renderable, Group)
    step_table = renderable.renderables[0]

    assert isinstance(step_table, Table)
    assert [str(row.style) for row in step_table.rows] == ["", "", ENCRYPTED_STYLE, ENCRYPTED_STYLE]
    assert "dim: seen only as an encrypted record" in rendered(tls13_summary())


def test_offer_cuts_cipher_list() -> None:
    many = RFC8448_CIPHERS + ("TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256")
    fields = fields_by_label(offer_fields(tls13_summary(offered_ciphers=many)))

    assert fields["ciphers"][0] == ", ".join(many[:4]) + " +1 more"
    assert fields["SNI"][0] == "server"
    assert fields["groups"][0] == ", ".join(RFC8448_GROUPS)
    assert fields["ALPN"][0] == ABSENT
    assert fields["EMS / EtM"][0] == "none"


def test_offer_names_ems_and_etm() -> None:
    summary = tls13_summary(
        offered_extensions=("extended_master_secret", "encrypt_then_mac"),
        offered_resumption=("session ID", "ticket"),
    )
    fields = fields_by_label(offer_fields(summary))

    assert fields["EMS / EtM"][0] == "EMS, EtM"
    assert fields["resumption"][0] == "session ID, ticket"


def test_offer_without_client_hello() -> None:
    summary = TlsSummary(mode=MODE_STARTTLS, starttls="accepted")

    assert offer_fields(summary) == [("ClientHello", "not seen", "dim")]


def test_choice_of_tls13() -> None:
    fields = fields_by_label(choice_fields(tls13_summary()))

    assert fields["version"][0] == "TLS 1.3"
    assert fields["cipher"][0] == "TLS_AES_128_GCM_SHA256"
    assert fields["group"][0] == "x25519"
    assert fields["resumed"][0] == "no, full handshake"
    assert fields["EMS"][0] == "n/a in TLS 1.3"
    assert fields["EtM"][0] == "n/a in TLS 1.3"


def test_choice_of_resumed_tls12() -> None:
    summary = tls13_summary(
        version="TLS 1.2",
        cipher="TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        resumed=True,
        resumption="ticket",
        extended_master_secret=True,
        encrypt_then_mac=False,
        alpn="smtp",
    )
    fields = fields_by_label(choice_fields(summary))

    assert fields["resumed"][0] == "yes, by ticket"
    assert fields["EMS"][0] == "yes"
    assert fields["EtM"][0] == "no"
    assert fields["ALPN"][0] == "smtp"


def test_choice_without_server_hello() -> None:
    summary = tls13_summary(version=None, cipher=None, group=None, resumed=None)

    assert choice_fields(summary) == [("ServerHello", "not seen", "dim")]


def test_certificate_out_of_validity_warns() -> None:
    for validity in ("expired", "not yet valid"):
        fields = fields_by_label(
            certificate_fields(tls13_summary(certificate=certificate(validity)))
        )
        value, style = fields["validity"]
        assert value.endswith(f"({validity})")
        assert style == WARNING_STYLE

    valid = fields_by_label(certificate_fields(tls13_summary(certificate=certificate())))
    assert valid["validity"][1] == ""
    assert valid["SANs"][0] == "mail.example.com, mx.example.com"
    assert valid["chain"][0] == "2 certificates sent"


def test_tls13_certificate_is_encrypted() -> None:
    fields = certificate_fields(tls13_summary())

    assert fields == [("certificate", "encrypted (TLS 1.3), not decrypted", "dim")]


def test_alert_words_and_style() -> None:
    alert = TlsAlert("fatal", "handshake_failure", 40, S2C, 100.02)

    assert alert_text(alert) == "fatal handshake_failure (40) from server"
    assert alert_text(None) == "none"

    text = outcome_lines(tls13_summary(alert=alert))
    expected = "fatal handshake_failure (40) from server"
    styles = [
        str(span.style) for span in text.spans if text.plain[span.start : span.end] == expected
    ]
    assert styles == [ERROR_STYLE]


def test_decryption_line() -> None:
    assert decryption_text(tls13_summary(decrypted=True, decrypt_error=None)) == "decrypted"
    assert (
        decryption_text(tls13_summary()) == "not decrypted: no key log entry for this ClientHello"
    )


def test_wire_text_escaped() -> None:
    # The SNI comes off the wire: an escape sequence must not reach the terminal.
    fields = fields_by_label(offer_fields(tls13_summary(sni="evil\x1b[2Jhost")))

    assert fields["SNI"][0] == "evil\\x1b[2Jhost"


# -- Pilot tests on real captures -----------------------------------------------------------


def read_capture(path: Path, keylog: Path | None = None) -> SmtpTopApp:
    """Read ``path`` to its end through the real engine, with an NSS key log, and build the app on it."""
    config, _ = parse_config(["-r", str(path)])
    engine_config = dataclasses.replace(
        config.engine, tls_keylog=None if keylog is None else str(keylog)
    )
    source, name = open_source(config)
    engine = Engine(engine_config, source.link_type, name, config.capture.bpf_filter or "")
    runner = CaptureRunner(engine, source, realtime=False)
    runner.start()
    wait_until_finished(runner)
    return SmtpTopApp(runner, live=False, refresh_hz=0.5)


def tls_tab_lines(app: SmtpTopApp) -> list[str]:
    panel = app.screen.query_one("#tls", TlsPanel)
    return [strip.text.strip() for strip in panel.render_lines(panel.region.reset_offset)]


def tls_tab_segments(app: SmtpTopApp) -> list[Segment]:
    """Return the TLS tab's rendered text segments, each with the style the terminal gets."""
    panel = app.screen.query_one("#tls", TlsPanel)
    return [segment for strip in panel.render_lines(panel.region.reset_offset) for segment in strip]


def field_value(lines: list[str], label: str) -> str:
    """Return the value after ``label`` on the first line that starts with it."""
    pattern = re.compile(rf"{re.escape(label)}\s+(.*)")
    matches = (pattern.fullmatch(line) for line in lines)
    return next(match.group(1) for match in matches if match is not None)


def server_hello_oracle(path: Path, keylog: Path) -> dict[str, str]:
    """Read the ServerHello's version and cipher suite names from tshark's packet details."""
    details = run_tshark(
        path, "-o", f"tls.keylog_file:{keylog}", "-Y", "tls.handshake.type==2", "-O", "tls", "-V"
    )
    hello = details[details.index("Handshake Type: Server Hello (2)") :]
    found: dict[str, str] = {}
    for pattern, key in (
        (r"Supported Version: (TLS [0-9.]+) \(0x", "version"),
        (r"^\s*Version: (TLS [0-9.]+) \(0x", "legacy_version"),
        (r"Cipher Suite: (\w+) \(0x", "cipher"),
    ):
        match = re.search(pattern, hello, re.MULTILINE)
        if match is not None:
            found[key] = match.group(1)
    found.setdefault("version", found["legacy_version"])
    return found


def handshake_times(path: Path, keylog: Path) -> dict[str, Decimal]:
    """Return the capture times of the first ClientHello, ServerHello and client Finished, from tshark."""
    rows = run_tshark(
        path,
        "-o",
        f"tls.keylog_file:{keylog}",
        "-Y",
        "tls.handshake",
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "tcp.srcport",
        "-e",
        "tls.handshake.type",
    ).splitlines()
    times: dict[str, Decimal] = {}
    for row in rows:
        epoch, source_port, types = row.split("\t")
        kinds = types.split(",")
        # The server is the side on port 25; type 1 is ClientHello, 2 ServerHello, 20 Finished.
        if "1" in kinds:
            times.setdefault("ClientHello", Decimal(epoch))
        if "2" in kinds:
            times.setdefault("ServerHello", Decimal(epoch))
        if "20" in kinds and source_port != "25":
            times.setdefault("client Finished", Decimal(epoch))
    return times


def alert_oracle(path: Path, keylog: Path) -> tuple[str, str]:
    """Return the first alert's level and description codes as tshark decodes them."""
    row = run_tshark(
        path,
        "-o",
        f"tls.keylog_file:{keylog}",
        "-Y",
        "tls.alert_message",
        "-T",
        "fields",
        "-e",
        "tls.alert_message.level",
        "-e",
        "tls.alert_message.desc",
    ).splitlines()[0]
    level, description = row.split("\t")
    return level, description


def milliseconds(start: Decimal, end: Decimal) -> float:
    return float((end - start) * 1000)


def shown_milliseconds(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


@needs_tshark
async def test_tls_tab_matches_tshark() -> None:
    oracle = server_hello_oracle(STARTTLS_25, STARTTLS_25_KEYS)
    times = handshake_times(STARTTLS_25, STARTTLS_25_KEYS)
    level, description = alert_oracle(STARTTLS_25, STARTTLS_25_KEYS)
    app = read_capture(STARTTLS_25, STARTTLS_25_KEYS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        key = table(app, "conversations").row_keys()[0]
        await open_conversation(pilot, app, key)

        await pilot.press("6")
        await pilot.pause()
        assert app.screen.query_one("#tabs", TabbedContent).active == "tls-tab"
        assert app.focused is not None
        assert app.focused.id == "tls-scroll"
        lines = tls_tab_lines(app)

        assert lines[0].startswith("mode STARTTLS  STARTTLS accepted")
        assert field_value(lines, "version") == oracle["version"]
        assert field_value(lines, "cipher") == oracle["cipher"]
        assert field_value(lines, "decryption") == "decrypted"

        # Times are in capture time; the float timestamps agree with tshark's to a microsecond.
        expected_handshake = milliseconds(times["ClientHello"], times["client Finished"])
        shown_handshake = re.search(r"handshake ([0-9.,]+) ms", lines[0])
        assert shown_handshake is not None
        assert abs(shown_milliseconds(shown_handshake.group(1)) - expected_handshake) <= 0.002
        server_hello = next(line for line in lines if "ServerHello" in line and "→" in line)
        assert "server → client" in server_hello
        expected_server_hello = milliseconds(times["ClientHello"], times["ServerHello"])
        assert abs(shown_milliseconds(server_hello) - expected_server_hello) <= 0.002
        assert oracle["cipher"] in server_hello

        # tshark's level 2 is fatal (RFC 5246 section 7.2).
        alert = field_value(lines, "alert")
        assert alert.startswith("fatal " if level == "2" else "warning ")
        assert f"({description}) from" in alert
        segments = tls_tab_segments(app)
        alert_segment = next(seg for seg in segments if seg.text.startswith(alert))
        plain_segment = next(seg for seg in segments if seg.text.startswith("decrypted"))
        assert alert_segment.style is not None and plain_segment.style is not None
        assert alert_segment.style.bold
        assert alert_segment.style.color != plain_segment.style.color


@needs_tshark
async def test_transcript_marks_decrypted_lines() -> None:
    # tshark's SMTP commands inside TLS, with the same key log.
    inside = run_tshark(
        STARTTLS_25,
        "-o",
        f"tls.keylog_file:{STARTTLS_25_KEYS}",
        "-Y",
        "tls and smtp.req",
        "-T",
        "fields",
        "-e",
        "smtp.req.command",
    ).split()
    assert inside == ["EHLO", "MAIL"]
    app = read_capture(STARTTLS_25, STARTTLS_25_KEYS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await open_conversation(pilot, app, table(app, "conversations").row_keys()[0])
        await pilot.press("2")
        await pilot.pause()
        lines = [cell.plain for cell in column(app, "transcript", "line")]

        decrypted = [line.split()[2] for line in lines if line.startswith("C (TLS): ")]
        plaintext = [line.split()[1] for line in lines if line.startswith("C: ") and not line.startswith("C: [")]
        assert decrypted == inside
        assert plaintext == ["EHLO", "STARTTLS"]
        assert any(line.startswith("S (TLS): 421 ") for line in lines)
        assert any(line.startswith("S: [TLS ServerHello: TLS 1.2") for line in lines)


@needs_tshark
async def test_tls_tab_plaintext_line() -> None:
    # tshark finds no handshake and no STARTTLS in the conversation that greets with HELO.
    helo_streams = run_tshark(
        ERRORS_MIXED, "-Y", 'smtp.req.command == "HELO"', "-T", "fields", "-e", "tcp.stream"
    ).split()
    assert len(helo_streams) == 1
    stream = helo_streams[0]
    handshakes = run_tshark(ERRORS_MIXED, "-Y", f"tcp.stream == {stream} and tls").strip()
    starttls = run_tshark(
        ERRORS_MIXED, "-Y", f'tcp.stream == {stream} and smtp.rsp.parameter contains "STARTTLS"'
    ).strip()
    assert handshakes == ""
    assert starttls == ""
    client = run_tshark(
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
    app = read_capture(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        key = keys_by_client(app)[":".join(client)]
        await open_conversation(pilot, app, key)
        await pilot.press("6")
        await pilot.pause()

        lines = [line for line in tls_tab_lines(app) if line]
        assert lines == ["plaintext: STARTTLS not offered"]


@needs_tshark
async def test_dashboard_tls_column_on_real_captures() -> None:
    version = run_tshark(
        STARTTLS_25, "-Y", "tls.handshake.type==2", "-T", "fields", "-e", "tls.handshake.version"
    ).split()
    assert version == ["0x0303"]  # TLS 1.2
    for keylog, expected in ((STARTTLS_25_KEYS, "1.2 dec"), (None, "STLS 1.2")):
        app = read_capture(STARTTLS_25, keylog)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            (key,) = table(app, "conversations").row_keys()
            assert table(app, "conversations").get_cell(key, "tls").plain == expected

    # The port 465 client that sent a ClientHello after a plaintext 220 greeting.
    app = read_capture(ERRORS_MIXED)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        conversations = table(app, "conversations")
        on_465 = [
            conversations.get_cell(key, "tls").plain
            for key in conversations.row_keys()
            if conversations.get_cell(key, "server").plain.endswith(":465")
        ]
        assert on_465 == ["mismatch"]
