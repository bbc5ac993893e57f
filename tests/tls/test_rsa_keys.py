"""RSA key loading (PEM, encrypted PEM, PKCS#12) and Wireshark RSA keys lists.

Keys are made with the openssl command line in a temporary directory; the
certificate matching uses the server certificates of tls12-rsa-pcapfs.pcap,
read with tshark.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from smtptop.tls.rsa_keys import RsaKeyError, RsaKeyList, load_private_key
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls import tshark_tls

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")

CAPTURE_KEY = PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"
PASSWORD = "correct horse"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of keys in every supported format, all holding the same RSA key."""
    directory = tmp_path_factory.mktemp("keys")
    plain = directory / "pkcs1.pem"
    openssl("genrsa", "-traditional", "-out", str(plain), "2048")

    # The same key as PKCS#8, encrypted PKCS#8 and encrypted PKCS#1.
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(plain), "-out", str(directory / "pkcs8.pem"))
    openssl(
        "pkcs8",
        "-topk8",
        "-in",
        str(plain),
        "-passout",
        f"pass:{PASSWORD}",
        "-out",
        str(directory / "pkcs8-encrypted.pem"),
    )
    openssl(
        "rsa",
        "-aes256",
        "-traditional",
        "-in",
        str(plain),
        "-passout",
        f"pass:{PASSWORD}",
        "-out",
        str(directory / "pkcs1-encrypted.pem"),
    )

    # PKCS#12 bundles need a certificate.
    certificate = directory / "cert.pem"
    openssl(
        "req",
        "-new",
        "-x509",
        "-key",
        str(plain),
        "-subj",
        "/CN=smtptop test",
        "-days",
        "2",
        "-out",
        str(certificate),
    )
    for name, password in (("with-password.p12", PASSWORD), ("no-password.p12", "")):
        openssl(
            "pkcs12",
            "-export",
            "-inkey",
            str(plain),
            "-in",
            str(certificate),
            "-passout",
            f"pass:{password}",
            "-out",
            str(directory / name),
        )

    openssl(
        "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(directory / "ec.pem")
    )
    return directory


def modulus(key: RSAPrivateKey) -> int:
    return key.private_numbers().public_numbers.n


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("pkcs1.pem", None),
        ("pkcs8.pem", None),
        ("pkcs8-encrypted.pem", PASSWORD),
        ("pkcs1-encrypted.pem", PASSWORD),
        ("with-password.p12", PASSWORD),
        ("no-password.p12", None),
        ("no-password.p12", ""),
        # A password given for an unencrypted key is ignored.
        ("pkcs1.pem", PASSWORD),
    ],
)
def test_load_formats(key_dir: Path, name: str, password: str | None) -> None:
    reference = load_private_key(str(key_dir / "pkcs1.pem"))

    key = load_private_key(str(key_dir / name), password)

    assert modulus(key) == modulus(reference)


def test_format_detected_by_content(key_dir: Path) -> None:
    disguised = key_dir / "looks-like.pem"
    shutil.copy(key_dir / "with-password.p12", disguised)

    key = load_private_key(str(disguised), PASSWORD)

    assert modulus(key) == modulus(load_private_key(str(key_dir / "pkcs1.pem")))


def test_certificate_before_key(key_dir: Path) -> None:
    # Servers often keep the certificate and the key in one PEM file.
    combined = key_dir / "combined.pem"
    combined.write_bytes((key_dir / "cert.pem").read_bytes() + (key_dir / "pkcs8.pem").read_bytes())

    key = load_private_key(str(combined))

    assert modulus(key) == modulus(load_private_key(str(key_dir / "pkcs1.pem")))


@pytest.mark.parametrize(
    "name", ["pkcs8-encrypted.pem", "pkcs1-encrypted.pem", "with-password.p12"]
)
def test_wrong_password(key_dir: Path, name: str) -> None:
    path = key_dir / name

    with pytest.raises(RsaKeyError) as caught:
        load_private_key(str(path), "wrong")

    message = str(caught.value)
    assert str(path) in message
    assert "wrong password" in message
    assert "wrong" not in message.replace("wrong password", "")


@pytest.mark.parametrize("name", ["pkcs8-encrypted.pem", "pkcs1-encrypted.pem"])
def test_missing_password(key_dir: Path, name: str) -> None:
    with pytest.raises(RsaKeyError, match="encrypted; give its password"):
        load_private_key(str(key_dir / name))


def test_missing_password_pkcs12(key_dir: Path) -> None:
    with pytest.raises(RsaKeyError, match="needs a password"):
        load_private_key(str(key_dir / "with-password.p12"))


def test_not_rsa(key_dir: Path) -> None:
    with pytest.raises(RsaKeyError, match="not an RSA private key"):
        load_private_key(str(key_dir / "ec.pem"))


def test_unreadable_and_garbage(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(
        b"-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n"
    )
    binary = tmp_path / "random.der"
    binary.write_bytes(bytes(range(256)))

    with pytest.raises(RsaKeyError, match="check the path and that it is readable"):
        load_private_key(str(missing))
    with pytest.raises(RsaKeyError, match="no readable private key"):
        load_private_key(str(garbage))
    with pytest.raises(RsaKeyError, match="not a PEM or PKCS#12 key"):
        load_private_key(str(binary))


def test_wireshark_list(key_dir: Path) -> None:
    listing = key_dir / "rsa_keys"
    listing.write_text(
        "# ip,port,protocol,keyfile,password\n"
        '"192.0.2.1","465","smtp","pkcs1.pem",""\n'
        f'"2001:db8::25","start_tls","smtp","pkcs8-encrypted.pem","{PASSWORD}"\n'
        f"any,0,smtp,{CAPTURE_KEY}\n"
        "\n"
    )

    keys = RsaKeyList.from_wireshark_file(str(listing))

    generated = modulus(load_private_key(str(key_dir / "pkcs1.pem")))
    capture = modulus(load_private_key(str(CAPTURE_KEY)))
    assert len(keys) == 3
    assert [modulus(key) for key in keys.keys_for("192.0.2.1", 465)] == [generated, capture]
    assert [modulus(key) for key in keys.keys_for("192.0.2.1", 25)] == [capture]
    assert [modulus(key) for key in keys.keys_for("2001:db8:0::25", 25)] == [generated, capture]
    assert [modulus(key) for key in keys.keys_for("198.51.100.7", 587)] == [capture]


def test_wireshark_list_two_columns(key_dir: Path) -> None:
    # Wireshark 3.x and later "rsa_keys" table: key file and password only.
    listing = key_dir / "rsa_keys_two"
    listing.write_text(f'"with-password.p12","{PASSWORD}"\n')

    keys = RsaKeyList.from_wireshark_file(str(listing))

    assert len(keys.keys_for("203.0.113.9", 25)) == 1


def test_wireshark_list_errors(key_dir: Path) -> None:
    bad_port = key_dir / "bad_port"
    bad_port.write_text("127.0.0.1,seventy,smtp,pkcs1.pem\n")
    bad_password = key_dir / "bad_password"
    bad_password.write_text("any,any,smtp,pkcs8-encrypted.pem,nope\n")
    bad_fields = key_dir / "bad_fields"
    bad_fields.write_text("127.0.0.1,25,smtp\n")

    with pytest.raises(RsaKeyError, match=r"bad_port line 1: invalid port 'seventy'"):
        RsaKeyList.from_wireshark_file(str(bad_port))
    with pytest.raises(RsaKeyError, match="wrong password"):
        RsaKeyList.from_wireshark_file(str(bad_password))
    with pytest.raises(RsaKeyError, match="expected ip,port,protocol,keyfile"):
        RsaKeyList.from_wireshark_file(str(bad_fields))
    with pytest.raises(RsaKeyError, match="check the path"):
        RsaKeyList.from_wireshark_file(str(key_dir / "no_such_list"))


@pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")
def test_matching_key_uses_certificate_modulus(key_dir: Path) -> None:
    hellos = tshark_tls.all_hellos(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.pcap")
    keys = RsaKeyList.from_wireshark_file(str(_list_with_both_keys(key_dir)))

    matched = keys.matching_key(hellos[1].certificate, "127.0.0.1", 443)

    assert matched is not None
    assert modulus(matched) == modulus(load_private_key(str(CAPTURE_KEY)))
    # Stream 0's server used another key, so nothing matches.
    assert keys.matching_key(hellos[0].certificate, "127.0.0.1", 443) is None
    # The entry is for port 443 only.
    assert keys.matching_key(hellos[1].certificate, "127.0.0.1", 25) is None
    assert keys.matching_key(b"not a certificate", "127.0.0.1", 443) is None


def _list_with_both_keys(key_dir: Path) -> Path:
    listing = key_dir / "both"
    listing.write_text(f"127.0.0.1,443,http,pkcs1.pem\n127.0.0.1,443,http,{CAPTURE_KEY}\n")
    return listing


def test_for_any_server() -> None:
    keys = RsaKeyList.for_any_server(str(CAPTURE_KEY))

    assert len(keys.keys_for("10.0.0.1", 2525)) == 1
    assert len(keys.keys_for("not an address", 25)) == 1
