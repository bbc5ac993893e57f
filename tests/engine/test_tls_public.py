"""Public TLS captures with their secrets, read by smtptop and by tshark.

For the SMTP captures, smtptop's decrypted commands must equal the ones
tshark decrypts with the same key log. For every capture, each TCP stream's
negotiated version, cipher suite and SNI must equal what tshark reads from
the hellos, and smtptop must decrypt exactly the streams tshark decrypts.
The files and what they hold are listed in tests/data/public/SOURCES.md.

smtptop tracks only conversations it recognises as SMTP or on configured
ports, so each file's TLS port is added to the SMTP ports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record
from tests.engine.helpers import run_file
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.support.tshark_tls import (
    Handshake,
    TsharkKeys,
    decrypted_smtp,
    decrypted_streams,
    handshakes,
    port_args,
)

pytestmark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")


class PublicCapture(NamedTuple):
    """A capture, the secret that goes with it, and the server port to treat as SMTP."""

    pcap: str
    port: int
    keylog: str | None = None
    rsa_key: str | None = None
    smtp: bool = False  # SMTP with STARTTLS inside; otherwise TLS carrying another protocol


CAPTURES = [
    PublicCapture(
        "starttls-keylog-port25.pcapng", 25, keylog="starttls-keylog-port25.keys", smtp=True
    ),
    PublicCapture(
        "starttls-keylog-port2525.pcapng", 2525, keylog="starttls-keylog-port2525.keys", smtp=True
    ),
    PublicCapture("tls12-rsa-pcapfs.pcap", 443, rsa_key="tls12-rsa-pcapfs.key"),
    PublicCapture("tls12-rsa-pcapfs.pcap", 443, keylog="tls12-rsa-pcapfs.keys"),
    PublicCapture("tls12-zeek-decryption.pcap", 443, keylog="tls12-zeek-decryption.keys"),
    PublicCapture("tls12-tls13-scapy-nss.pcap", 443, keylog="tls12-tls13-scapy-nss.keys"),
    PublicCapture("tls13-chacha20-hotplace.pcapng", 9000, keylog="tls13-chacha20-hotplace.keys"),
    PublicCapture("tls12-allciphers-pcapfs.pcap", 443, keylog="tls12-allciphers-pcapfs.keys"),
    PublicCapture(
        "tls12-renegotiation-hotplace.pcapng", 9000, keylog="tls12-renegotiation-hotplace.keys"
    ),
    PublicCapture("tls-null-cipher-keylog.pcapng", 443, keylog="tls-null-cipher-keylog.keys"),
    PublicCapture("tls12-tcpfrag-scapy.pcap.gz", 443, keylog="tls12-tcpfrag-scapy.keys"),
]


def _capture_id(capture: PublicCapture) -> str:
    secret = "rsa-key" if capture.rsa_key else "keylog"
    return f"{capture.pcap}-{secret}"


def _path(name: str | None) -> Path | None:
    return None if name is None else PUBLIC_CAPTURES / name


def _tshark_keys(capture: PublicCapture) -> TsharkKeys:
    return TsharkKeys(keylog=_path(capture.keylog), rsa_key=_path(capture.rsa_key))


def _tshark_ports(capture: PublicCapture) -> list[str]:
    # tshark runs SMTP with STARTTLS on 25 and 587 and TLS on 443 by itself.
    if capture.smtp:
        return port_args(smtp_ports=[capture.port] if capture.port not in (25, 587) else [])
    return port_args(tls_ports=[capture.port] if capture.port != 443 else [])


def _smtptop_conversations(capture: PublicCapture) -> dict[int, Conversation]:
    """Run the capture through the engine with its secret, and return its conversations by client port."""
    settings: dict[str, Any] = {"smtp_ports": frozenset({25, 465, 587, 2525, capture.port})}
    if capture.keylog is not None:
        settings["tls_keylog"] = str(_path(capture.keylog))
    if capture.rsa_key is not None:
        settings["tls_rsa_key"] = str(_path(capture.rsa_key))
    run = run_file(PUBLIC_CAPTURES / capture.pcap, **settings)
    found = [c for c in run.finished if c.tcp.server[1] == capture.port]
    by_port = {c.tcp.client[1]: c for c in found}
    assert len(by_port) == len(found), (
        "two conversations share a client port; match them another way"
    )
    return by_port


def _tshark_handshakes(capture: PublicCapture) -> dict[int, Handshake]:
    """Return tshark's handshake facts by client port, for the streams with a ServerHello."""
    found = handshakes(PUBLIC_CAPTURES / capture.pcap, ports=_tshark_ports(capture))
    by_port = {
        h.client_port: h
        for h in found.values()
        if h.cipher is not None and h.client_port is not None
    }
    assert by_port, f"tshark finds no ServerHello in {capture.pcap}"
    return by_port


def _tls_records(capture: PublicCapture, client_ports: list[int]) -> dict[int, dict[str, Any]]:
    conversations = _smtptop_conversations(capture)
    assert sorted(conversations) == sorted(client_ports)
    return {port: conversation_record(conversations[port])["tls"] for port in client_ports}


@pytest.mark.parametrize("capture", CAPTURES, ids=_capture_id)
def test_handshake_facts_match_tshark(capture: PublicCapture) -> None:
    expected = _tshark_handshakes(capture)
    tls = _tls_records(capture, list(expected))

    assert {port: t["version"] for port, t in tls.items()} == {
        p: h.version_name for p, h in expected.items()
    }
    assert {port: t["cipher"] for port, t in tls.items()} == {
        p: h.cipher_name for p, h in expected.items()
    }
    assert {port: t["sni"] for port, t in tls.items()} == {p: h.sni for p, h in expected.items()}


@pytest.mark.parametrize("capture", CAPTURES, ids=_capture_id)
def test_decrypted_streams_match_tshark(capture: PublicCapture) -> None:
    expected = _tshark_handshakes(capture)
    streams = decrypted_streams(
        PUBLIC_CAPTURES / capture.pcap, _tshark_keys(capture), _tshark_ports(capture)
    )
    tls = _tls_records(capture, list(expected))

    assert {port: t["decrypted"] for port, t in tls.items()} == {
        port: handshake.stream in streams for port, handshake in expected.items()
    }


@pytest.mark.parametrize("capture", [c for c in CAPTURES if c.smtp], ids=_capture_id)
def test_decrypted_smtp_matches_tshark(capture: PublicCapture) -> None:
    dialogues = decrypted_smtp(
        PUBLIC_CAPTURES / capture.pcap, _tshark_keys(capture), _tshark_ports(capture)
    )
    assert list(dialogues) == [0]
    dialogue = dialogues[0]
    assert dialogue.commands, "tshark decrypts no SMTP command"
    conversations = list(_smtptop_conversations(capture).values())
    assert len(conversations) == 1
    conversation = conversations[0]
    assert conversation.smtp is not None
    commands = conversation.smtp.commands

    assert [(c.verb, c.arg) for c in commands if c.decrypted and c.verb != "."] == dialogue.commands
    assert [(c.verb, c.arg) for c in commands if not c.decrypted] == dialogue.clear_commands
    assert conversation_record(conversation)["tls"]["mode"] == "starttls"
