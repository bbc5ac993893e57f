"""Every public capture through the engine: no exception, and the SMTP dialogue tshark sees.

tshark's SMTP dissector is the independent oracle. Where it is known to
decode less than smtptop (pipelined commands, BDAT, SASL lines after a 334
challenge, data after an end-of-data in the same segment), the expected
dialogue is written out here with the reason; everywhere else the commands
and the reply codes of each conversation must equal tshark's.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from smtptop.decode.packet import UnsupportedLinkType
from smtptop.engine.conversation import Conversation
from smtptop.smtp.events import CommandKind
from tests.engine.helpers import run_file
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import smtp_dialogue

CAPTURES = sorted(
    path for path in PUBLIC_CAPTURES.iterdir() if path.suffix in {".pcap", ".pcapng", ".gz"}
)
SMTP_CAPTURES = [path for path in CAPTURES if path.name.startswith(("smtp-", "smtps-"))]

# Captures tshark cannot read at all (it stops at the damaged record); their
# frames before the damage are checked by the reader tests instead.
TSHARK_UNREADABLE = {"smtp-sv-corrupt-record.pcap"}

# (file, client port) -> (commands, reply codes) that smtptop must produce where tshark decodes less.
BEYOND_TSHARK: dict[tuple[str, int], tuple[list[str], list[str]]] = {
    # tshark takes a QUIT that follows the end-of-data in the same segment as message content.
    ("smtp-arkime-starttls-decrypted.pcap", 49475): (
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
        ["220", "250", "220", "250", "250", "250", "354", "250", "221"],
    ),
    ("smtp-arkime-starttls-decrypted.pcap", 41347): (
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
        ["220", "250", "220", "250", "250", "250", "354", "250", "221"],
    ),
    # tshark 4.0 has no BDAT (RFC 3030): the chunk and what follows it are content to it.
    ("smtp-arkime-starttls-decrypted.pcap", 28120): (
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "BDAT", "QUIT"],
        ["220", "250", "220", "250", "250", "250", "250", "221"],
    ),
    ("smtp-arkime-starttls-decrypted.pcap", 28134): (
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "BDAT", "QUIT"],
        ["220", "250", "220", "250", "250", "250", "250", "221"],
    ),
    ("smtp-zeek-bdat-invalid.pcapng", 33472): (
        ["EHLO", "MAIL", "RCPT", "BDAT", "QUIT"],
        ["220", "250", "250", "250", "521"],
    ),
    ("smtp-zeek-bdat-invalid.pcapng", 52364): (
        ["EHLO", "MAIL", "RCPT", "BDAT", "QUIT"],
        ["220", "250", "250", "250", "521"],
    ),
    ("smtp-zeek-bdat-gap.pcap", 12345): (
        ["EHLO", "MAIL", "RCPT", "BDAT", "DATA"],
        ["220", "250", "250", "250", "250", "250", "354", "250", "221"],
    ),
    ("smtp-zeek-bdat-pipeline-8bitmime.pcap", 56074): (
        ["EHLO", "MAIL", "RCPT", "BDAT", "MAIL", "RCPT", "BDAT", "QUIT"],
        ["220", "250", "250", "250", "250", "250", "250", "250", "221"],
    ),
    # tshark decodes only the first command of a pipelined segment (RFC 2920).
    ("smtp-sv-pipelining-null.pcap", 50287): (
        ["EHLO", "MAIL", "RCPT", "DATA"],
        ["220", "250", "250", "250", "354", "250"],
    ),
    ("smtp-sv-data-rejected.pcap", 49898): (
        ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"],
        ["220", "250", "553", "503", "503", "250", "250", "250", "354", "554"],
    ),
    # Lines sent after a 334 challenge are SASL data, not commands (RFC 4954, section 4);
    # tshark lists the base64 strings as verbs.
    ("smtp-sv-587-overlap-retrans.pcap", 3326): (
        ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"],
        ["220"],
    ),
    # The QUIT arrives while the server still waits for the AUTH LOGIN answer: the
    # server answers it with 334, so it is SASL data, as the server saw it.
    ("smtp-sv-long-command-dupack.pcap", 59096): (
        ["EHLO", "AUTH"],
        ["220", "250", "334", "334"],
    ),
    # After DATA is refused (503) the client sends its body anyway; the server
    # answers each line with 500, so each is a command. tshark assumes a body.
    ("smtp-zeek-invalid-transactions.pcap", 44478): (
        ["EHLO", "MAIL", "RCPT", "DATA", "RCPT", "DATA", "HELLO,", ".", "MAIL", "DATA", "HELLO,", ".",
         "DATA", "HELLO,", ".", "MAIL", "RCPT", "DATA", "QUIT"],
        ["220", "250", "250", "250", "354", "250", "503", "503", "500", "500", "250", "503", "500",
         "500", "503", "500", "500", "503", "250", "354", "250", "221"],
    ),
}


def _key(conversation: Conversation) -> tuple[str, int, str, int]:
    (client_ip, client_port), (server_ip, server_port) = conversation.tcp.client, conversation.tcp.server
    return (
        str(ipaddress.ip_address(client_ip)),
        client_port,
        str(ipaddress.ip_address(server_ip)),
        server_port,
    )


def _dialogue(conversation: Conversation) -> tuple[list[str], list[str]]:
    assert conversation.smtp is not None
    verbs = [record.verb for record in conversation.smtp.commands if record.kind is CommandKind.COMMAND]
    codes = [str(reply.code) for reply in conversation.replies]
    return verbs, codes


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name)
def test_capture_runs_without_exception(path: Path) -> None:
    try:
        run = run_file(path)
    except UnsupportedLinkType as error:
        assert error.link_type == 182
        return
    snapshot = run.engine.snapshot()
    assert snapshot.stats.packets > 0 or run.error is not None
    for row in snapshot.rows:
        assert run.engine.detail(row.key) is not None


@pytest.mark.parametrize("path", SMTP_CAPTURES, ids=lambda path: path.name)
def test_smtp_dialogue_matches_tshark(path: Path) -> None:
    if path.name in TSHARK_UNREADABLE:
        pytest.skip("tshark stops at the damaged record")
    run = run_file(path)
    ours = {_key(conversation): _dialogue(conversation) for conversation in run.smtp()}
    oracle = smtp_dialogue(path, extra_ports=(2525, 465))
    assert oracle, "tshark found no SMTP in a capture named as SMTP"
    for conversation, items in oracle.items():
        expected = BEYOND_TSHARK.get((path.name, conversation.client_port))
        if expected is None:
            expected = ([verb for side, verb in items if side == "C"], [code for side, code in items if side == "S"])
        assert tuple(conversation) in ours, f"{conversation} not reported as SMTP"
        verbs, codes = ours[tuple(conversation)]
        assert verbs == expected[0], f"commands of {conversation}"
        assert codes == expected[1], f"reply codes of {conversation}"
