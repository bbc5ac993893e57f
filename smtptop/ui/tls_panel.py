"""The TLS tab of the conversation screen: one negotiation laid out from its ``TlsSummary``.

The tab shows the mode and the STARTTLS outcome, the handshake steps with
their times since the ClientHello, what the client offered, what the server
chose, the server's certificate, the first alert and whether the records
were decrypted. The functions below turn a summary into lines of words and
then into Rich renderables, without widgets, so tests can check each rule
directly. ``compare.py`` reuses the same wording for its side-by-side rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from smtptop.direction import Direction
from smtptop.text.printable import printable
from smtptop.tls.summary import (
    MODE_IMPLICIT,
    MODE_PLAINTEXT,
    MODE_PLAINTEXT_CLIENT_TLS_PORT,
    MODE_STARTTLS,
    MODE_TLS_CLIENT_PLAINTEXT_SERVER,
    CertificateInfo,
    HandshakeStep,
    TlsAlert,
    TlsSummary,
)

WARNING_STYLE = "bold yellow"
ERROR_STYLE = "bold red"
ENCRYPTED_STYLE = "dim"
SECTION_STYLE = "bold underline"
LABEL_STYLE = "bold"

# The ClientHello section lists this many cipher suites, then "+N more", and the certificate this many SANs.
LISTED_CIPHERS = 4
LISTED_SANS = 6

# The value of a field the negotiation never reached.
ABSENT = "—"

MODE_LABELS = {
    MODE_PLAINTEXT: "plaintext",
    MODE_STARTTLS: "STARTTLS",
    MODE_IMPLICIT: "implicit TLS",
    MODE_TLS_CLIENT_PLAINTEXT_SERVER: "client sent TLS to a plaintext server",
    MODE_PLAINTEXT_CLIENT_TLS_PORT: "plaintext client on a TLS port",
}

STARTTLS_LABELS = {
    "not-offered": "STARTTLS not offered",
    "offered": "STARTTLS offered but not used",
    "accepted": "STARTTLS accepted",
    "refused": "STARTTLS refused by the server",
    "failed": "STARTTLS failed",
    "unknown": "STARTTLS support unknown",
}

SENDER_LABELS = {
    Direction.CLIENT_TO_SERVER: "client → server",
    Direction.SERVER_TO_CLIENT: "server → client",
}
SIDE_NAMES = {Direction.CLIENT_TO_SERVER: "client", Direction.SERVER_TO_CLIENT: "server"}


# -- words for single fields, shared with the compare screen ------------------------------


def mode_label(mode: str) -> str:
    return MODE_LABELS.get(mode, printable(mode))


def starttls_label(starttls: str) -> str:
    return STARTTLS_LABELS.get(starttls, f"STARTTLS {printable(starttls)}")


def joined(values: Sequence[str], limit: int | None = None) -> str:
    """Join wire values with commas, listing the first ``limit`` and counting the rest as "+N more"."""
    if not values:
        return ABSENT
    listed = values if limit is None else values[:limit]
    text = ", ".join(printable(value) for value in listed)
    if len(values) > len(listed):
        text += f" +{len(values) - len(listed)} more"
    return text


def optional(value: str | None) -> str:
    return ABSENT if value is None or value == "" else printable(value)


def is_tls13(summary: TlsSummary) -> bool:
    return (summary.version or "").startswith("TLS 1.3")


def server_hello_seen(summary: TlsSummary) -> bool:
    # The engine sets resumed (True or False) when it parses the ServerHello.
    return summary.resumed is not None or summary.version is not None


def resumed_text(summary: TlsSummary) -> str:
    if summary.resumed is None:
        return ABSENT
    if summary.resumed:
        method = printable(summary.resumption) if summary.resumption else "method unknown"
        return f"yes, by {method}"
    return "no, full handshake"


def negotiated_flag(summary: TlsSummary, value: bool | None) -> str:
    """Describe whether the server agreed to EMS or EtM.

    TLS 1.3 has neither: its key schedule always binds the transcript
    (RFC 8446 section 7.1) and it only uses AEAD ciphers, so both read "n/a".
    """
    if value is not None:
        return "yes" if value else "no"
    if is_tls13(summary):
        return "n/a in TLS 1.3"
    if not server_hello_seen(summary):
        return ABSENT
    return "unknown"


def _extension_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def offers_extension(summary: TlsSummary, name: str) -> bool:
    """Check whether the ClientHello carried an extension, by IANA name in any spelling."""
    expected = _extension_key(name)
    return any(_extension_key(offered) == expected for offered in summary.offered_extensions)


def offered_flags_text(summary: TlsSummary) -> str:
    """Describe the ClientHello's EMS (RFC 7627) and EtM (RFC 7366) offers, as "EMS, EtM" or "none"."""
    if not client_hello_seen(summary):
        return ABSENT
    offered = [
        label
        for label, extension in (("EMS", "extended_master_secret"), ("EtM", "encrypt_then_mac"))
        if offers_extension(summary, extension)
    ]
    return ", ".join(offered) if offered else "none"


def client_hello_seen(summary: TlsSummary) -> bool:
    return bool(summary.offered_versions or summary.offered_ciphers) or any(
        step.name == "ClientHello" for step in summary.steps
    )


def alert_text(alert: TlsAlert | None) -> str:
    """Describe an alert as "fatal handshake_failure (40) from server"."""
    if alert is None:
        return "none"
    side = SIDE_NAMES.get(alert.sender, "?")
    return f"{printable(alert.level)} {printable(alert.description)} ({alert.code}) from {side}"


def decryption_text(summary: TlsSummary) -> str:
    if summary.decrypted:
        return "decrypted"
    if summary.decrypt_error:
        return f"not decrypted: {printable(summary.decrypt_error)}"
    return "not decrypted"


def handshake_text(summary: TlsSummary) -> str:
    milliseconds = summary.handshake_ms
    return ABSENT if milliseconds is None else f"{milliseconds:,.3f} ms"


def last_step_text(summary: TlsSummary) -> str:
    """Name the last step seen, where the negotiation stopped or moved on to data.

    A close_notify alert is the normal end of a session, not where it stopped.
    """
    steps = [step for step in summary.steps if not (step.name == "alert" and "close_notify" in step.detail)]
    if not steps:
        return ABSENT
    step = steps[-1]
    return f"{printable(step.name)} from {SIDE_NAMES.get(step.sender, '?')}"


def validity_text(certificate: CertificateInfo) -> str:
    return (
        f"{printable(certificate.not_before)} to {printable(certificate.not_after)}"
        f" ({printable(certificate.validity)})"
    )


def issuer_text(certificate: CertificateInfo) -> str:
    issuer = printable(certificate.issuer)
    return f"{issuer} (self-signed)" if certificate.self_signed else issuer


def absence_line(summary: TlsSummary | None) -> str | None:
    """Return the one line that replaces the tab when there is no TLS to show, else None."""
    if summary is None:
        # The engine gives no summary for a conversation it does not follow as SMTP.
        return "no TLS information for this conversation"
    if summary.mode == MODE_PLAINTEXT and not summary.steps:
        return f"plaintext: {starttls_label(summary.starttls)}"
    return None


# -- the handshake step table -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepLine:
    """One row of the step table, in words."""

    offset_ms: float | None  # since the ClientHello; None when no step has a usable reference
    sender: str  # "client → server"
    name: str
    detail: str
    encrypted: bool


def reference_time(steps: Sequence[HandshakeStep]) -> float | None:
    """Return the ClientHello's capture time, or the first step's when no ClientHello was seen."""
    for step in steps:
        if step.name == "ClientHello":
            return step.ts
    return steps[0].ts if steps else None


def step_lines(steps: Sequence[HandshakeStep]) -> list[StepLine]:
    """Build the step table rows, with times in milliseconds since the ClientHello."""
    start = reference_time(steps)
    lines = []
    for step in steps:
        offset = None if start is None else round((step.ts - start) * 1000.0, 3)
        lines.append(
            StepLine(
                offset_ms=offset,
                sender=SENDER_LABELS.get(step.sender, "?"),
                name=printable(step.name),
                detail=printable(step.detail),
                encrypted=step.encrypted,
            )
        )
    return lines


def format_offset_ms(offset_ms: float | None) -> str:
    return ABSENT if offset_ms is None else f"{offset_ms:,.3f}"


def steps_table(summary: TlsSummary) -> RenderableType:
    if not summary.steps:
        return Text("No handshake steps seen.", style="dim")
    table = Table(box=None, padding=(0, 2), show_edge=False, expand=False)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("sender", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("detail", no_wrap=True, overflow="ellipsis")
    lines = step_lines(summary.steps)
    for line in lines:
        table.add_row(
            format_offset_ms(line.offset_ms),
            line.sender,
            line.name,
            line.detail,
            style=ENCRYPTED_STYLE if line.encrypted else "",
        )
    if not any(line.encrypted for line in lines):
        return table
    legend = Text("dim: seen only as an encrypted record, named by its position", style="dim")
    return Group(table, legend)


# -- the sections -------------------------------------------------------------------------

# (label, value, style) of one line in a section.
Field = tuple[str, str, str]


def offer_fields(summary: TlsSummary) -> list[Field]:
    """Build the ClientHello section: what the client offered."""
    if not client_hello_seen(summary):
        return [("ClientHello", "not seen", "dim")]
    return [
        ("versions", joined(summary.offered_versions), ""),
        ("ciphers", joined(summary.offered_ciphers, LISTED_CIPHERS), ""),
        ("SNI", optional(summary.sni), ""),
        ("ALPN", joined(summary.offered_alpn), ""),
        ("groups", joined(summary.offered_groups), ""),
        ("resumption", joined(summary.offered_resumption), ""),
        ("EMS / EtM", offered_flags_text(summary), ""),
    ]


def choice_fields(summary: TlsSummary) -> list[Field]:
    """Build the ServerHello section: what the server chose."""
    if not server_hello_seen(summary):
        return [("ServerHello", "not seen", "dim")]
    return [
        ("version", optional(summary.version), ""),
        ("cipher", optional(summary.cipher), ""),
        ("ALPN", optional(summary.alpn), ""),
        ("group", optional(summary.group), ""),
        ("resumed", resumed_text(summary), ""),
        ("EMS", negotiated_flag(summary, summary.extended_master_secret), ""),
        ("EtM", negotiated_flag(summary, summary.encrypt_then_mac), ""),
    ]


def chain_text(length: int) -> str:
    return f"{length} certificate sent" if length == 1 else f"{length} certificates sent"


def certificate_fields(summary: TlsSummary) -> list[Field]:
    """Build the certificate section; a certificate outside its validity period is a warning."""
    certificate = summary.certificate
    if certificate is None:
        # RFC 8446 section 4.4.2: in TLS 1.3 the Certificate message is encrypted.
        if is_tls13(summary) and not summary.decrypted:
            return [("certificate", "encrypted (TLS 1.3), not decrypted", "dim")]
        return [("certificate", "not seen", "dim")]
    validity_style = "" if certificate.validity == "valid" else WARNING_STYLE
    return [
        ("subject", printable(certificate.subject), ""),
        ("issuer", issuer_text(certificate), ""),
        ("SANs", joined(certificate.sans, LISTED_SANS), ""),
        ("validity", validity_text(certificate), validity_style),
        ("key", printable(certificate.key), ""),
        ("chain", chain_text(certificate.chain_length), ""),
    ]


def fields_table(fields: Sequence[Field]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style=LABEL_STYLE, no_wrap=True)
    table.add_column()
    for label, value, style in fields:
        table.add_row(label, Text(value, style=style))
    return table


def status_line(summary: TlsSummary) -> Text:
    text = Text()
    text.append("mode ", style=LABEL_STYLE)
    text.append(mode_label(summary.mode))
    text.append("  ")
    text.append(starttls_label(summary.starttls))
    text.append("  handshake ", style=LABEL_STYLE)
    text.append(handshake_text(summary))
    text.append("  records ", style=LABEL_STYLE)
    text.append(f"{summary.records:,}")
    return text


def outcome_lines(summary: TlsSummary) -> Text:
    """Build the alert line, in the error style when there is one, and the decryption line."""
    text = Text()
    text.append("alert ", style=LABEL_STYLE)
    text.append(alert_text(summary.alert), style=ERROR_STYLE if summary.alert else "")
    text.append("\n")
    text.append("decryption ", style=LABEL_STYLE)
    decryption_style = "" if summary.decrypted or summary.decrypt_error is None else WARNING_STYLE
    text.append(decryption_text(summary), style=decryption_style)
    for note in summary.notes:
        text.append("\n")
        text.append(f"note: {printable(note)}", style=WARNING_STYLE)
    return text


def _section(title: str) -> Text:
    return Text(title, style=SECTION_STYLE)


def tls_panel(summary: TlsSummary | None) -> RenderableType:
    """Build the TLS tab for one negotiation, or its one-line absence."""
    absent = absence_line(summary)
    if absent is not None or summary is None:
        return Text(absent or "", style="dim")
    return Group(
        status_line(summary),
        outcome_lines(summary),
        Text(),
        _section("Handshake"),
        steps_table(summary),
        Text(),
        _section("ClientHello offer"),
        fields_table(offer_fields(summary)),
        Text(),
        _section("ServerHello choice"),
        fields_table(choice_fields(summary)),
        Text(),
        _section("Certificate"),
        fields_table(certificate_fields(summary)),
    )


class TlsPanel(Static):
    """The TLS tab's content: as wide as its lines, so the tab scrolls instead of wrapping them."""

    DEFAULT_CSS = """
    TlsPanel {
        width: auto;
        padding: 0 1;
    }
    """

    def show(self, summary: TlsSummary | None) -> None:
        self.update(tls_panel(summary))
