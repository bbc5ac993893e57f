"""Certificate summaries checked against OpenSSL's view and tshark's x509 fields."""

from __future__ import annotations

import ipaddress
import itertools
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtptop.tls.certificate import CertificateSummary, summarize_certificate
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls.streams import tshark_fields

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed"
)
needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")


def openssl(*args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, check=True, timeout=60
    )
    return result.stdout.decode()


def make_certificate(
    directory: Path, name: str, key: str, subject: str, extra: tuple[str, ...] = ()
) -> bytes:
    """Create a self-signed certificate with `openssl req -x509` and return its DER bytes."""
    pem = directory / f"{name}.pem"
    openssl(
        "req", "-x509", "-newkey", key, "-nodes", "-keyout", str(directory / f"{name}.key"),
        "-out", str(pem), "-days", "30", "-subj", subject, *extra,
    )  # fmt: skip
    return openssl_der(pem)


def openssl_der(pem: Path) -> bytes:
    result = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-outform", "DER"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout


class OpensslView:
    """The fields `openssl x509 -noout` prints for a DER certificate."""

    def __init__(self, der: bytes) -> None:
        text = openssl(
            "x509", "-inform", "DER", "-noout", "-subject", "-issuer", "-dates", "-serial",
            "-ext", "subjectAltName", "-nameopt", "RFC2253", stdin=der,
        )  # fmt: skip
        values = dict(
            re.findall(r"^(subject|issuer|notBefore|notAfter|serial)=(.*)$", text, re.MULTILINE)
        )
        self.subject = values["subject"]
        self.issuer = values["issuer"]
        self.not_before = openssl_time(values["notBefore"])
        self.not_after = openssl_time(values["notAfter"])
        self.serial = int(values["serial"], 16)
        self.sans = [
            normalise_san(item) for item in re.findall(r"(?:DNS|IP Address):[^,\n]+", text)
        ]
        bits = re.search(
            r"\((\d+) bit\)", openssl("x509", "-inform", "DER", "-noout", "-text", stdin=der)
        )
        self.key_bits = int(bits.group(1)) if bits else None


def openssl_time(text: str) -> datetime:
    """Parse OpenSSL's "Dec  4 23:20:32 2026 GMT" form."""
    parsed = datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y GMT")
    return parsed.replace(tzinfo=UTC)


def normalise_san(item: str) -> str:
    kind, _, value = item.partition(":")
    if kind == "IP Address":
        # OpenSSL 3.0 writes IPv6 addresses uncompressed and in upper case.
        return str(ipaddress.ip_address(value))
    return value


def assert_matches_openssl(summary: CertificateSummary, der: bytes) -> None:
    view = OpensslView(der)
    assert summary.subject == view.subject
    assert summary.issuer == view.issuer
    assert summary.not_before == view.not_before
    assert summary.not_after == view.not_after
    assert int(summary.serial, 16) == view.serial
    assert list(summary.sans) == view.sans
    assert summary.key_bits == view.key_bits


@needs_openssl
def test_rsa_certificate_matches_openssl(tmp_path: Path) -> None:
    der = make_certificate(
        tmp_path,
        "rsa",
        "rsa:2048",
        "/C=DE/O=Example Mail, Inc./CN=mx.example.org",
        (
            "-addext",
            "subjectAltName=DNS:mx.example.org,IP:192.0.2.25,IP:2001:db8::25,email:a@example.org",
        ),
    )
    summary = summarize_certificate(der)

    assert_matches_openssl(summary, der)
    assert summary.subject == "CN=mx.example.org,O=Example Mail\\, Inc.,C=DE"
    assert summary.sans == ("mx.example.org", "192.0.2.25", "2001:db8::25")
    assert summary.key_type == "RSA"
    assert summary.key_bits == 2048
    assert summary.self_signed
    assert summary.not_before.tzinfo is not None
    assert summary.not_after - summary.not_before == timedelta(days=30)


@needs_openssl
def test_ec_certificate_issued_by_ca(tmp_path: Path) -> None:
    make_certificate(tmp_path, "ca", "rsa:2048", "/CN=Example CA")
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
        "-keyout", str(tmp_path / "leaf.key"), "-out", str(tmp_path / "leaf.csr"), "-subj", "/CN=smtp.example.net",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(tmp_path / "leaf.csr"), "-CA", str(tmp_path / "ca.pem"),
        "-CAkey", str(tmp_path / "ca.key"), "-set_serial", "0x1f00ab", "-days", "5",
        "-out", str(tmp_path / "leaf.pem"),
    )  # fmt: skip
    der = openssl_der(tmp_path / "leaf.pem")
    summary = summarize_certificate(der)

    assert_matches_openssl(summary, der)
    assert summary.issuer == "CN=Example CA"
    assert not summary.self_signed
    assert summary.key_type == "EC"
    assert summary.key_bits == 384
    assert summary.serial == "1f00ab"
    assert summary.sans == ()


@needs_openssl
def test_ed25519_certificate(tmp_path: Path) -> None:
    der = make_certificate(tmp_path, "ed", "ed25519", "/CN=ed.example.org")
    summary = summarize_certificate(der)

    assert summary.key_type == "Ed25519"
    assert summary.key_bits == 256
    assert summary.subject == OpensslView(der).subject


@needs_openssl
def test_validity_at(tmp_path: Path) -> None:
    summary = summarize_certificate(
        make_certificate(tmp_path, "rsa", "rsa:2048", "/CN=v.example.org")
    )

    assert summary.validity_at(summary.not_before + timedelta(days=1)) == "valid"
    assert summary.validity_at(summary.not_after + timedelta(seconds=1)) == "expired"
    assert summary.validity_at(summary.not_before - timedelta(seconds=1)) == "not yet valid"


@pytest.mark.parametrize(
    "der", [b"", b"\x30\x03\x02\x01\x01", b"-----BEGIN CERTIFICATE-----", bytes(range(256))]
)
def test_garbage_raises_value_error(der: bytes) -> None:
    with pytest.raises(ValueError):
        summarize_certificate(der)


def tshark_time(text: str) -> datetime:
    """Parse tshark's UTCTime form "2013-09-09 11:32:35 (UTC)"."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S (UTC)").replace(tzinfo=UTC)


# Captures whose certificates use UTCTime only, so tshark's times come in order.
CERTIFICATE_CAPTURES = [
    ("starttls-zeek-google.pcap", ()),
    ("implicit-tls-587-certgrep.pcapng", ("-d", "tcp.port==587,tls")),
    ("starttls-keylog-port25.pcapng", ()),
]


@needs_tshark
@needs_openssl
@pytest.mark.parametrize("name, decode_as", CERTIFICATE_CAPTURES)
def test_capture_certificates_match_tshark(name: str, decode_as: tuple[str, ...]) -> None:
    rows = tshark_fields(
        PUBLIC_CAPTURES / name,
        "tls.handshake.type == 11",
        ["tls.handshake.certificate", "x509af.serialNumber", "x509af.utcTime", "x509ce.dNSName"],
        decode_as,
    )
    assert rows
    for row in rows:
        summaries = [
            summarize_certificate(bytes.fromhex(der)) for der in row["tls.handshake.certificate"]
        ]
        assert [int(s.serial, 16) for s in summaries] == [
            int(v, 16) for v in row["x509af.serialNumber"]
        ]
        times = [tshark_time(text) for text in row["x509af.utcTime"]]
        assert [t for s in summaries for t in (s.not_before, s.not_after)] == times
        assert [name for s in summaries for name in s.sans] == row["x509ce.dNSName"]
        for summary, der in zip(summaries, row["tls.handshake.certificate"]):
            assert_matches_openssl(summary, bytes.fromhex(der))
        # Each certificate in the chain is issued by the next one (RFC 5246 section 7.4.2).
        for leaf, issuer in itertools.pairwise(summaries):
            assert leaf.issuer == issuer.subject


@needs_tshark
def test_far_future_expiry() -> None:
    # The server certificate of this capture expires in the year 4759 (GeneralizedTime).
    rows = tshark_fields(
        PUBLIC_CAPTURES / "tls12-rsa-pcapfs.pcap",
        "tls.handshake.type == 11",
        ["tls.handshake.certificate", "x509af.generalizedTime"],
    )
    summary = summarize_certificate(bytes.fromhex(rows[0]["tls.handshake.certificate"][0]))

    # The aggregator comma also splits tshark's "Apr 15, 4759 ..." text, so join it back.
    assert ",".join(rows[0]["x509af.generalizedTime"]).startswith("Apr 15, 4759 15:14:28")
    assert summary.not_after == datetime(4759, 4, 15, 15, 14, 28, tzinfo=UTC)
    assert summary.validity_at(datetime(2026, 1, 1, tzinfo=UTC)) == "valid"


@pytest.fixture(scope="module")
def google_chain() -> list[bytes]:
    if tshark_path() is None:
        pytest.skip("tshark is not installed")
    rows = tshark_fields(
        PUBLIC_CAPTURES / "starttls-zeek-google.pcap",
        "tls.handshake.type == 11",
        ["tls.handshake.certificate"],
    )
    return [bytes.fromhex(der) for der in rows[0]["tls.handshake.certificate"]]


@given(
    index=st.integers(min_value=0, max_value=2),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=3
    ),
)
@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_certificate_raises_value_error(
    google_chain: list[bytes], index: int, flips: list[tuple[int, int]]
) -> None:
    mutated = bytearray(google_chain[index % len(google_chain)])
    for position, value in flips:
        mutated[position % len(mutated)] = value
    try:
        summarize_certificate(bytes(mutated))
    except ValueError:
        pass


@pytest.mark.parametrize("version_byte", [0x03, 0x58])
def test_invalid_version_raises_value_error(google_chain: list[bytes], version_byte: int) -> None:
    # The version INTEGER follows the [0] tag A0 03 02 01 at the start of tbsCertificate.
    der = bytearray(google_chain[0])
    position = der.index(b"\xa0\x03\x02\x01") + 4
    der[position] = version_byte
    with pytest.raises(ValueError, match="version"):
        summarize_certificate(bytes(der))


@needs_tshark
@needs_openssl
@pytest.mark.parametrize(
    "name, keys, key_type",
    [
        ("tls13-chacha20-hotplace.pcapng", "tls13-chacha20-hotplace.keys", "EC"),
        ("tls12-tls13-scapy-nss.pcap", "tls12-tls13-scapy-nss.keys", "RSA"),
    ],
)
def test_tls13_certificates_match_openssl(name: str, keys: str, key_type: str) -> None:
    # TLS 1.3 sends the Certificate encrypted, so tshark decrypts it with the key log.
    rows = tshark_fields(
        PUBLIC_CAPTURES / name,
        "tls.handshake.type == 11 and tls.handshake.certificate_request_context_length",
        ["tls.handshake.certificate"],
        ("-o", f"tls.keylog_file:{PUBLIC_CAPTURES / keys}"),
    )
    ders = [bytes.fromhex(der) for row in rows for der in row["tls.handshake.certificate"]]
    assert ders
    for der in ders:
        summary = summarize_certificate(der)
        assert_matches_openssl(summary, der)
        assert summary.key_type == key_type
