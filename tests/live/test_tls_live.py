"""Recorded TLS SMTP sessions on loopback, checked with tshark and then with smtptop.

Each scenario in tests/support/tls_peers.py is recorded once per module.
Every test first checks the recording with tshark, which must decrypt the
capture with the same secrets and find the commands the client wrote. Then
it runs the pcap file through smtptop's engine and compares its TLS summary
and decrypted commands with the client's own record and with tshark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record
from tests.engine.helpers import run_file
from tests.live.clients import END_OF_DATA_VERB, ClientLine
from tests.support import tls_peers
from tests.support.tls_peers import SERVER_NAME, TlsRecording
from tests.support.tshark import smtp_dialogue, tcp_payload_segment_count
from tests.support.tshark_tls import (
    Alert,
    Handshake,
    TlsDialogue,
    TsharkKeys,
    cut_before,
    decrypted_smtp,
    decrypted_streams,
    first_application_data_frame,
    handshakes,
    port_args,
)

pytestmark = pytest.mark.live

# Extension types (RFC 7366 section 2, RFC 7627 section 4).
ENCRYPT_THEN_MAC = 22
EXTENDED_MASTER_SECRET = 23
HANDSHAKE_FAILURE = 40
FATAL = 2


# ---------------------------------------------------------------------------
# Helpers


def _smtp_ports(port: int) -> frozenset[int]:
    return frozenset({25, 465, 587, 2525, port})


def _only_conversation(pcap: Path, port: int, **settings: Any) -> Conversation:
    """Run `pcap` through the engine and return the one conversation with the server on `port`."""
    run = run_file(pcap, smtp_ports=_smtp_ports(port), **settings)
    found = [c for c in run.finished if c.tcp.server[1] == port]
    assert len(found) == 1, (
        f"expected one conversation to port {port}, got {[c.client for c in found]}"
    )
    return found[0]


def _client_commands(lines: list[ClientLine]) -> list[tuple[str, str]]:
    """Return (VERB, argument) for each line except the end of a DATA body, as written."""
    commands = []
    for line in lines:
        if line.verb == END_OF_DATA_VERB:
            continue
        text = line.sent.decode("ascii").rstrip("\r\n")
        commands.append((line.verb, text.split(" ", 1)[1] if " " in text else ""))
    return commands


def _decrypted(conversation: Conversation) -> list[Any]:
    assert conversation.smtp is not None
    return [command for command in conversation.smtp.commands if command.decrypted]


def _verbs_and_codes(commands: list[Any]) -> list[tuple[str, int | None]]:
    return [(c.verb, c.reply.code if c.reply else None) for c in commands]


def _verbs_and_args(commands: list[Any]) -> list[tuple[str, str]]:
    return [(c.verb, c.arg) for c in commands if c.verb != END_OF_DATA_VERB]


def _only(found: dict[int, Any]) -> Any:
    assert list(found) == [0], f"expected one TCP stream, tshark found {list(found)}"
    return found[0]


def _only_dialogue(pcap: Path, port: int) -> list[tuple[str, str]]:
    """Return tshark's clear-text SMTP items of the capture's one conversation (see tests/support/tshark.py)."""
    dialogues = list(smtp_dialogue(pcap, [port]).values())
    assert len(dialogues) == 1, f"expected one SMTP conversation, tshark found {len(dialogues)}"
    return dialogues[0]


def _expected_alert(handshake: Handshake) -> dict[str, Any] | None:
    """Return the last alert tshark read, in the form of smtptop's record, or None.

    Only the alerts these recordings contain (close_notify and handshake_failure) are named.
    """
    if not handshake.alerts:
        return None
    alert = handshake.alerts[-1]
    return {
        "level": {1: "warning", 2: "fatal"}[alert.level],
        "description": {0: "close_notify", 40: "handshake_failure"}[alert.description],
        "code": alert.description,
        "sender": "server" if alert.source_port == handshake.server_port else "client",
    }


def _check_oracle_decrypts(
    recording: TlsRecording, keys: TsharkKeys, ports: list[str]
) -> TlsDialogue:
    """Check that tshark decrypts the client's TLS lines from the recording with `keys`, and return its dialogue."""
    dialogue: TlsDialogue = _only(decrypted_smtp(recording.pcap, keys, ports))
    codes = [line.reply_code for line in recording.tls_lines]
    if recording.greeting_in_tls is not None:
        codes.insert(0, recording.greeting_in_tls)

    assert dialogue.commands == _client_commands(recording.tls_lines)
    assert dialogue.reply_codes == codes
    return dialogue


def _check_tls_summary(tls: dict[str, Any], handshake: Handshake) -> None:
    """Check smtptop's version, cipher and SNI against tshark's reading of the hellos."""
    assert tls["version"] == handshake.version_name
    assert tls["cipher"] == handshake.cipher_name
    assert tls["sni"] == handshake.sni


def _check_decrypted_commands(
    conversation: Conversation, recording: TlsRecording, dialogue: TlsDialogue
) -> None:
    decrypted = _decrypted(conversation)
    assert _verbs_and_codes(decrypted) == [
        (line.verb, line.reply_code) for line in recording.tls_lines
    ]
    assert _verbs_and_args(decrypted) == _client_commands(recording.tls_lines)
    assert _verbs_and_args(decrypted) == dialogue.commands


# ---------------------------------------------------------------------------
# Recordings, one per module


@pytest.fixture(scope="module")
def starttls13(tmp_path_factory: pytest.TempPathFactory) -> TlsRecording:
    return tls_peers.record_starttls_tls13(tmp_path_factory.mktemp("starttls13"))


# OpenSSL's names of the ECDHE suites recorded with implicit TLS, and their IANA names.
ECDHE_SUITES = {
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


@pytest.fixture(scope="module", params=list(ECDHE_SUITES))
def implicit12(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TlsRecording:
    directory = tmp_path_factory.mktemp("implicit12")
    return tls_peers.record_implicit_tls12_ecdhe(directory, request.param)


# ---------------------------------------------------------------------------
# (a) STARTTLS with TLS 1.3


def test_starttls13_oracle_decrypts(starttls13: TlsRecording) -> None:
    ports = port_args([starttls13.port])
    dialogue = _check_oracle_decrypts(starttls13, TsharkKeys(keylog=starttls13.keylog), ports)
    handshake = _only(handshakes(starttls13.pcap, ports=ports))

    assert [verb for verb, _ in dialogue.clear_commands] == ["EHLO", "STARTTLS"]
    assert handshake.version_name == "TLS 1.3"


def test_starttls13_decrypted_by_smtptop(starttls13: TlsRecording) -> None:
    ports = port_args([starttls13.port])
    dialogue = _only(decrypted_smtp(starttls13.pcap, TsharkKeys(keylog=starttls13.keylog), ports))
    handshake = _only(handshakes(starttls13.pcap, ports=ports))
    conversation = _only_conversation(
        starttls13.pcap, starttls13.port, tls_keylog=str(starttls13.keylog)
    )
    tls = conversation_record(conversation)["tls"]
    assert conversation.smtp is not None
    clear = [c for c in conversation.smtp.commands if not c.decrypted]

    assert tls["mode"] == "starttls"
    assert tls["starttls"] == "accepted"
    _check_tls_summary(tls, handshake)
    assert tls["decrypted"] is True
    assert tls["decrypt_error"] is None
    assert tls["resumed"] is False
    assert tls["alert"] == _expected_alert(
        _only(handshakes(starttls13.pcap, TsharkKeys(keylog=starttls13.keylog), ports))
    )
    assert isinstance(tls["handshake_ms"], float)
    _check_decrypted_commands(conversation, starttls13, dialogue)
    assert _verbs_and_args(clear) == dialogue.clear_commands
    assert _verbs_and_codes(clear) == [
        (line.verb, line.reply_code) for line in starttls13.lines[:2]
    ]


def test_starttls13_certificate_read_after_decryption(starttls13: TlsRecording) -> None:
    # TLS 1.3 encrypts the Certificate message (RFC 8446 section 2), so smtptop can read it only with the keys.
    conversation = _only_conversation(
        starttls13.pcap, starttls13.port, tls_keylog=str(starttls13.keylog)
    )
    certificate = conversation_record(conversation)["tls"]["certificate"]

    assert certificate is not None
    assert SERVER_NAME in certificate["subject"]
    assert SERVER_NAME in certificate["sans"]
    assert certificate["validity"] == "valid"


def test_starttls13_rsa_key_needs_keylog(starttls13: TlsRecording) -> None:
    assert starttls13.rsa_key is not None
    ports = port_args([starttls13.port])
    assert (
        decrypted_streams(starttls13.pcap, TsharkKeys(rsa_key=starttls13.rsa_key), ports) == set()
    )

    conversation = _only_conversation(
        starttls13.pcap, starttls13.port, tls_rsa_key=str(starttls13.rsa_key)
    )
    tls = conversation_record(conversation)["tls"]

    assert tls["decrypted"] is False
    assert "TLS 1.3" in tls["decrypt_error"]
    assert "key log" in tls["decrypt_error"]
    assert _decrypted(conversation) == []


def test_starttls13_client_random_only_keylog(starttls13: TlsRecording, tmp_path: Path) -> None:
    ports = port_args([starttls13.port])
    handshake = _only(handshakes(starttls13.pcap, ports=ports))
    # A TLS 1.2 style line for the right client random: TLS 1.3 has no use for a master secret.
    keylog = tmp_path / "client-random-only.keys"
    keylog.write_text(f"CLIENT_RANDOM {handshake.client_random.hex()} {'00' * 48}\n")
    assert decrypted_streams(starttls13.pcap, TsharkKeys(keylog=keylog), ports) == set()

    conversation = _only_conversation(starttls13.pcap, starttls13.port, tls_keylog=str(keylog))
    tls = conversation_record(conversation)["tls"]

    assert tls["decrypted"] is False
    assert "HANDSHAKE_TRAFFIC_SECRET" in tls["decrypt_error"]
    assert _decrypted(conversation) == []


# ---------------------------------------------------------------------------
# (b) Implicit TLS 1.2 with ECDHE


def test_implicit12_oracle_decrypts(implicit12: TlsRecording) -> None:
    ports = port_args(implicit_tls_ports=[implicit12.port])
    _check_oracle_decrypts(implicit12, TsharkKeys(keylog=implicit12.keylog), ports)
    handshake = _only(handshakes(implicit12.pcap, ports=ports))

    assert handshake.version_name == "TLS 1.2"
    assert implicit12.cipher is not None
    assert handshake.cipher_name == ECDHE_SUITES[implicit12.cipher]
    assert handshake.sni == SERVER_NAME


def test_implicit12_decrypted_by_smtptop(implicit12: TlsRecording) -> None:
    ports = port_args(implicit_tls_ports=[implicit12.port])
    dialogue = _only(decrypted_smtp(implicit12.pcap, TsharkKeys(keylog=implicit12.keylog), ports))
    handshake = _only(handshakes(implicit12.pcap, ports=ports))
    conversation = _only_conversation(
        implicit12.pcap, implicit12.port, tls_keylog=str(implicit12.keylog)
    )
    record = conversation_record(conversation)
    tls = record["tls"]

    assert tls["mode"] == "implicit"
    _check_tls_summary(tls, handshake)
    assert tls["decrypted"] is True
    assert tls["decrypt_error"] is None
    assert "RSA" in tls["certificate"]["key"]
    _check_decrypted_commands(conversation, implicit12, dialogue)
    # The greeting came inside TLS too.
    assert record["greeting"]["code"] == dialogue.reply_codes[0] == 220


def test_implicit12_rsa_key_cannot_decrypt_ecdhe(implicit12: TlsRecording) -> None:
    assert implicit12.rsa_key is not None
    ports = port_args(implicit_tls_ports=[implicit12.port])
    assert (
        decrypted_streams(implicit12.pcap, TsharkKeys(rsa_key=implicit12.rsa_key), ports) == set()
    )

    conversation = _only_conversation(
        implicit12.pcap, implicit12.port, tls_rsa_key=str(implicit12.rsa_key)
    )
    tls = conversation_record(conversation)["tls"]

    assert tls["decrypted"] is False
    assert "ephemeral" in tls["decrypt_error"]
    assert "key log" in tls["decrypt_error"]
    assert _decrypted(conversation) == []


def test_capture_started_after_handshake(implicit12: TlsRecording, tmp_path: Path) -> None:
    ports = port_args(implicit_tls_ports=[implicit12.port])
    first = first_application_data_frame(implicit12.pcap, ports)
    cut = cut_before(implicit12.pcap, first, tmp_path / "after-handshake.pcap")
    keys = TsharkKeys(keylog=implicit12.keylog)
    assert all(not d.commands for d in decrypted_smtp(cut, keys, ports).values())
    assert all(h.client_random == b"" for h in handshakes(cut, keys, ports).values())

    conversation = _only_conversation(cut, implicit12.port, tls_keylog=str(implicit12.keylog))
    tls = conversation_record(conversation)["tls"]

    assert tls["decrypted"] is False
    assert "handshake" in tls["decrypt_error"]
    assert "not captured" in tls["decrypt_error"]


# ---------------------------------------------------------------------------
# (c) TLS 1.2 with RSA key exchange, from openssl s_client

RSA_VARIANTS = [
    pytest.param(("AES128-GCM-SHA256", True, True), id="gcm"),
    pytest.param(("AES128-GCM-SHA256", True, False), id="gcm-no-ems"),
    pytest.param(("AES128-SHA256", True, True), id="cbc-sha256-etm-ems"),
    pytest.param(("AES128-SHA256", False, True), id="cbc-sha256-ems"),
    pytest.param(("AES128-SHA256", True, False), id="cbc-sha256-etm"),
    pytest.param(("AES128-SHA256", False, False), id="cbc-sha256"),
    pytest.param(("AES128-SHA", True, True), id="cbc-sha-etm-ems"),
    pytest.param(("AES128-SHA", False, True), id="cbc-sha-ems"),
    pytest.param(("AES128-SHA", True, False), id="cbc-sha-etm"),
    pytest.param(("AES128-SHA", False, False), id="cbc-sha"),
]
# The IANA names of the suites OpenSSL calls by the names above.
IANA_NAMES = {
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES128-SHA256": "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
}


@pytest.fixture(scope="module", params=RSA_VARIANTS)
def rsa_recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TlsRecording, str, bool, bool]:
    cipher, encrypt_then_mac, extended_master_secret = request.param
    recording = tls_peers.record_starttls_rsa(
        tmp_path_factory.mktemp("rsa"),
        cipher,
        encrypt_then_mac=encrypt_then_mac,
        extended_master_secret=extended_master_secret,
    )
    return recording, cipher, encrypt_then_mac, extended_master_secret


def test_rsa_oracle_decrypts_with_server_key(
    rsa_recording: tuple[TlsRecording, str, bool, bool],
) -> None:
    recording, cipher, encrypt_then_mac, extended_master_secret = rsa_recording
    ports = port_args([recording.port])
    _check_oracle_decrypts(recording, TsharkKeys(rsa_key=recording.rsa_key), ports)
    handshake = _only(handshakes(recording.pcap, ports=ports))
    # Encrypt-then-MAC applies only to CBC suites (RFC 7366 section 3), so a server
    # never echoes it for GCM.
    expect_etm = encrypt_then_mac and "GCM" not in cipher

    assert handshake.cipher_name == IANA_NAMES[cipher]
    assert handshake.version_name == "TLS 1.2"
    assert handshake.sni == SERVER_NAME
    assert (ENCRYPT_THEN_MAC in handshake.client_extensions) == encrypt_then_mac
    assert (ENCRYPT_THEN_MAC in handshake.server_extensions) == expect_etm
    assert EXTENDED_MASTER_SECRET in handshake.client_extensions
    assert (EXTENDED_MASTER_SECRET in handshake.server_extensions) == extended_master_secret


def test_rsa_decrypted_by_smtptop(rsa_recording: tuple[TlsRecording, str, bool, bool]) -> None:
    recording = rsa_recording[0]
    ports = port_args([recording.port])
    dialogue = _only(decrypted_smtp(recording.pcap, TsharkKeys(rsa_key=recording.rsa_key), ports))
    handshake = _only(handshakes(recording.pcap, ports=ports))
    conversation = _only_conversation(
        recording.pcap, recording.port, tls_rsa_key=str(recording.rsa_key)
    )
    tls = conversation_record(conversation)["tls"]

    assert tls["mode"] == "starttls"
    assert tls["starttls"] == "accepted"
    _check_tls_summary(tls, handshake)
    assert tls["decrypted"] is True
    assert tls["decrypt_error"] is None
    _check_decrypted_commands(conversation, recording, dialogue)


def test_rsa_key_list_file(rsa_recording: tuple[TlsRecording, str, bool, bool]) -> None:
    recording = rsa_recording[0]
    assert recording.rsa_key is not None
    key_list = tls_peers.write_rsa_key_list(
        recording.rsa_key.parent, recording.port, recording.rsa_key
    )
    dialogue = _only(
        decrypted_smtp(
            recording.pcap, TsharkKeys(rsa_key=recording.rsa_key), port_args([recording.port])
        )
    )
    conversation = _only_conversation(recording.pcap, recording.port, tls_rsa_keys=str(key_list))

    assert conversation_record(conversation)["tls"]["decrypted"] is True
    _check_decrypted_commands(conversation, recording, dialogue)


# ---------------------------------------------------------------------------
# (d) to (f): failed and mismatched TLS


def test_alert_then_454(tmp_path: Path) -> None:
    recording = tls_peers.record_alert_then_454(tmp_path)
    ports = port_args([recording.port])
    handshake = _only(handshakes(recording.pcap, ports=ports))
    clear = _only_dialogue(recording.pcap, recording.port)
    assert recording.client_error is not None
    assert handshake.alerts == [Alert(recording.port, FATAL, HANDSHAKE_FAILURE)]
    assert handshake.version is None
    assert ("S", "454") in clear

    conversation = _only_conversation(recording.pcap, recording.port)
    tls = conversation_record(conversation)["tls"]
    assert conversation.smtp is not None
    codes = [c.reply.code for c in conversation.smtp.commands if c.reply] + [
        r.code for r in conversation.replies
    ]

    assert tls["starttls"] == "failed"
    assert tls["alert"] == {
        "level": "fatal",
        "description": "handshake_failure",
        "code": 40,
        "sender": "server",
    }
    assert tls["version"] is None
    assert 454 in codes


def test_plaintext_client_on_tls_port(tmp_path: Path) -> None:
    recording = tls_peers.record_plaintext_client_on_tls_port(tmp_path)
    # No payload byte was sent: the client waited for a greeting, the server for a ClientHello.
    assert tcp_payload_segment_count(recording.pcap) == 0

    conversation = _only_conversation(recording.pcap, recording.port)

    assert conversation_record(conversation)["tls"]["mode"] == "plaintext-client-tls-port"


@pytest.mark.parametrize(
    "hello_first", [pytest.param(True, id="hello-first"), pytest.param(False, id="greeting-first")]
)
def test_tls_client_on_plaintext_server(tmp_path: Path, hello_first: bool) -> None:
    recording = tls_peers.record_tls_client_on_plaintext_server(tmp_path, hello_first)
    # Decoded as SMTP, the ClientHello is only text to tshark, so the hellos are read as TLS.
    ports = port_args(tls_ports=[recording.port])
    handshake = _only(handshakes(recording.pcap, ports=ports))
    clear = _only_dialogue(recording.pcap, recording.port)
    assert recording.client_error is not None
    assert handshake.client_random != b""
    assert handshake.version is None
    assert clear[0] == ("S", "220")

    conversation = _only_conversation(recording.pcap, recording.port)

    assert conversation_record(conversation)["tls"]["mode"] == "tls-client-plaintext-server"
