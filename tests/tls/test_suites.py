"""The cipher suite table against Wireshark's names and the suites used in the public captures."""

from __future__ import annotations

import subprocess

import pytest

from smtptop.tls import suites
from smtptop.tls.suites import is_grease, suite, suite_name
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark, tshark_path

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")

# Every capture with a ServerHello, and the decode-as rules tshark needs to see it.
CAPTURES_WITH_TLS = {
    "link-sll-irc-starttls.pcap": ["-o", "tcp.try_heuristic_first:TRUE"],
    "smtp-zeek-auth-multi.pcap": [],
    "starttls-ndpi-v4-v6.pcap": [],
    "starttls-zeek-google.pcap": [],
    "tls12-allciphers-pcapfs.pcap": [],
    "tls12-rsa-pcapfs.pcap": [],
    "tls12-tls13-scapy-nss.pcap": [],
    "tls12-zeek-decryption.pcap": [],
    "tls12-zeek-stream-keylog.pcap": [],
    "implicit-tls-587-certgrep.pcapng": ["-d", "tcp.port==587,tls"],
    "starttls-keylog-port25.pcapng": [],
    "starttls-keylog-port2525.pcapng": ["-d", "tcp.port==2525,smtp"],
    "tls-null-cipher-keylog.pcapng": [],
    "tls12-renegotiation-hotplace.pcapng": ["-d", "tcp.port==9000,tls"],
    "tls13-chacha20-hotplace.pcapng": ["-d", "tcp.port==9000,tls"],
    "tls12-tcpfrag-scapy.pcap.gz": [],
}


@pytest.fixture(scope="module")
def wireshark_names() -> dict[int, str]:
    """Wireshark's value string for tls.handshake.ciphersuite (`tshark -G values`)."""
    if tshark_path() is None:
        pytest.skip("tshark is not installed")
    output = subprocess.run(
        ["tshark", "-G", "values"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    names = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[:2] == ["V", "tls.handshake.ciphersuite"]:
            names[int(fields[2])] = fields[3]
    return names


@needs_tshark
def test_names_match_wireshark(wireshark_names: dict[int, str]) -> None:
    for code, name in suites._NAMES:
        assert wireshark_names.get(code) == name, hex(code)
    for code, name in suites._SIGNALLING.items():
        assert wireshark_names.get(code) == name, hex(code)


@needs_tshark
@pytest.mark.parametrize("name", sorted(CAPTURES_WITH_TLS))
def test_captured_suites_are_known(name: str) -> None:
    output = run_tshark(
        PUBLIC_CAPTURES / name,
        *CAPTURES_WITH_TLS[name],
        "-Y",
        "tls.handshake.type==2",
        "-T",
        "fields",
        "-e",
        "tls.handshake.ciphersuite",
    )
    codes = {int(value, 16) for value in output.split()}

    assert codes, name
    for code in codes:
        assert suite(code) is not None, f"{name}: 0x{code:04x}"


@pytest.mark.parametrize(
    ("code", "key_exchange", "cipher", "key_length", "mac", "prf_hash", "tls13"),
    [
        (0x1301, "TLS13", "AES-GCM", 16, None, "SHA256", True),
        (0x1302, "TLS13", "AES-GCM", 32, None, "SHA384", True),
        (0x1303, "TLS13", "CHACHA20-POLY1305", 32, None, "SHA256", True),
        (0x1305, "TLS13", "AES-CCM-8", 16, None, "SHA256", True),
        (0xC030, "ECDHE", "AES-GCM", 32, None, "SHA384", False),
        (0xC02B, "ECDHE", "AES-GCM", 16, None, "SHA256", False),
        (0xCCA8, "ECDHE", "CHACHA20-POLY1305", 32, None, "SHA256", False),
        (0xC028, "ECDHE", "AES-CBC", 32, "SHA384", "SHA384", False),
        (0x006B, "DHE", "AES-CBC", 32, "SHA256", "SHA256", False),
        (0x002F, "RSA", "AES-CBC", 16, "SHA1", "SHA256", False),
        (0x009D, "RSA", "AES-GCM", 32, None, "SHA384", False),
        (0xC09C, "RSA", "AES-CCM", 16, None, "SHA256", False),
        (0x0004, "RSA", "RC4", 16, "MD5", "SHA256", False),
        (0x000A, "RSA", "3DES", 24, "SHA1", "SHA256", False),
        (0x0001, "RSA", "NULL", 0, "MD5", "SHA256", False),
        (0x003B, "RSA", "NULL", 0, "SHA256", "SHA256", False),
        (0x00A7, "DHE", "AES-GCM", 32, None, "SHA384", False),
        (0x00B1, "PSK", "NULL", 0, "SHA384", "SHA384", False),
        (0xD003, "ECDHE_PSK", "AES-CCM-8", 16, None, "SHA256", False),
    ],
)
def test_suite_parameters(
    code: int,
    key_exchange: str,
    cipher: str,
    key_length: int,
    mac: str | None,
    prf_hash: str,
    tls13: bool,
) -> None:
    found = suite(code)
    assert found is not None

    assert found.key_exchange == key_exchange
    assert found.cipher == cipher
    assert found.key_length == key_length
    assert found.mac == mac
    assert found.prf_hash == prf_hash
    assert found.tls13 is tls13


def test_prf_hash_follows_name() -> None:
    # RFC 5246 5 / RFC 5289 3: *_SHA384 suites use SHA-384, all other TLS 1.2 suites SHA-256.
    for code, name in suites._NAMES:
        found = suite(code)
        assert found is not None
        expected = "SHA384" if name.endswith("_SHA384") else "SHA256"
        assert found.prf_hash == expected, name


def test_anonymous_suites_authentication() -> None:
    dh_anon = suite(0x0034)
    ecdhe_rsa = suite(0xC02F)
    assert dh_anon is not None and ecdhe_rsa is not None

    assert dh_anon.authentication == "anon"
    assert ecdhe_rsa.authentication == "RSA"


def test_suite_name_fallbacks() -> None:
    assert suite_name(0xC02F) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert suite_name(0x00FF) == "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    assert suite(0x00FF) is None
    assert suite_name(0x1234) == "0x1234"
    assert suite_name(0xFAFA) == "GREASE"


def test_grease_values() -> None:
    # RFC 8701 2: 0x0A0A, 0x1A1A, ..., 0xFAFA.
    grease = [0x0A0A + 0x1010 * step for step in range(16)]

    assert all(is_grease(value) for value in grease)
    assert not is_grease(0x0A1A)
    assert not is_grease(0x1301)
    assert sum(is_grease(value) for value in range(0x10000)) == 16
