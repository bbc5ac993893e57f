"""Key derivation against RFC 8448 values, the OpenSSL command line and real captures.

RFC 8448 section 3 ("Simple 1-RTT Handshake") prints every TLS 1.3 secret,
key and IV of one handshake; the hex strings below are transcribed from it.
The TLS 1.0-1.2 PRF is checked against `openssl kdf ... TLS1-PRF`, and the
RSA premaster against the key log that ships with the capture.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from smtptop.tls.keylog import KeyLog
from smtptop.tls.keyschedule import (
    decrypt_rsa_premaster,
    hash_length,
    hkdf_expand_label,
    key_block,
    tls13_next_secret,
    tls13_traffic_keys,
    tls_prf,
    transcript_hash,
)
from smtptop.tls.rsa_keys import load_private_key
from smtptop.tls.suites import suite
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls import tshark_tls


def rfc_hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 8448 section 3, {server} derive secret "tls13 s hs traffic".
S_HS_TRAFFIC = rfc_hex(
    "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38"
)
# {server} derive write traffic keys for handshake data.
S_HS_KEY = rfc_hex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
S_HS_IV = rfc_hex("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
# {server} derive secret for master "tls13 derived" ... the master secret, and the
# transcript hash (ClientHello to server Finished) it is combined with.
MASTER = rfc_hex(
    "18 df 06 84 3d 13 a0 8b f2 a4 49 84 4c 5f 8a 47 80 01 bc 4d 4c 62 79 84 d5 a4 1d a8 d0 40 29 19"
)
HASH_CH_TO_SF = rfc_hex(
    "96 08 10 2a 0f 1c cc 6d b6 25 0b 7b 7e 41 7b 1a 00 0e aa da 3d aa e4 77 7a 76 86 c9 ff 83 df 13"
)
C_AP_TRAFFIC = rfc_hex(
    "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5"
)
S_AP_TRAFFIC = rfc_hex(
    "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43"
)
# {server} derive write traffic keys for application data.
S_AP_KEY = rfc_hex("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56")
S_AP_IV = rfc_hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 84")
# {client} derive write traffic keys for application data.
C_AP_KEY = rfc_hex("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51")
C_AP_IV = rfc_hex("5b 78 92 3d ee 08 57 90 33 e5 23 d9")

TLS_AES_128_GCM_SHA256 = suite(0x1301)

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed"
)


def test_expand_label_application_secrets() -> None:
    server = hkdf_expand_label("SHA256", MASTER, b"s ap traffic", HASH_CH_TO_SF, 32)
    client = hkdf_expand_label("SHA256", MASTER, b"c ap traffic", HASH_CH_TO_SF, 32)

    assert server == S_AP_TRAFFIC
    assert client == C_AP_TRAFFIC


def test_traffic_keys_handshake_secret() -> None:
    assert TLS_AES_128_GCM_SHA256 is not None

    key, iv = tls13_traffic_keys(TLS_AES_128_GCM_SHA256, S_HS_TRAFFIC)

    assert key == S_HS_KEY
    assert iv == S_HS_IV


def test_traffic_keys_application_secrets() -> None:
    assert TLS_AES_128_GCM_SHA256 is not None

    assert tls13_traffic_keys(TLS_AES_128_GCM_SHA256, S_AP_TRAFFIC) == (S_AP_KEY, S_AP_IV)
    assert tls13_traffic_keys(TLS_AES_128_GCM_SHA256, C_AP_TRAFFIC) == (C_AP_KEY, C_AP_IV)


def test_traffic_keys_sha384_lengths() -> None:
    aes256 = suite(0x1302)
    assert aes256 is not None

    key, iv = tls13_traffic_keys(aes256, bytes(48))

    assert len(key) == 32
    assert len(iv) == 12


def test_next_secret_changes_with_label() -> None:
    # RFC 8446 7.2: the next secret is HKDF-Expand-Label(secret, "traffic upd", "", Hash.length).
    following = tls13_next_secret("SHA256", S_AP_TRAFFIC)

    assert len(following) == 32
    assert following != S_AP_TRAFFIC
    assert tls13_next_secret("SHA256", following) != following
    assert len(tls13_next_secret("SHA384", bytes(48))) == 48


def test_expand_label_rejects_unknown_hash() -> None:
    with pytest.raises(ValueError, match="SHA512"):
        hkdf_expand_label("SHA512", S_HS_TRAFFIC, b"key", b"", 16)


def openssl_prf(digest: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """Run OpenSSL's TLS1-PRF KDF (label and seed given together as the seed)."""
    output = subprocess.run(
        [
            "openssl",
            "kdf",
            "-keylen",
            str(length),
            "-kdfopt",
            f"digest:{digest}",
            "-kdfopt",
            f"hexsecret:{secret.hex()}",
            "-kdfopt",
            f"hexseed:{seed.hex()}",
            "TLS1-PRF",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return bytes.fromhex(output.strip().replace(":", ""))


@needs_openssl
@pytest.mark.parametrize(
    ("version", "hash_name", "openssl_digest"),
    [
        (0x0301, "SHA256", "MD5-SHA1"),
        (0x0302, "SHA384", "MD5-SHA1"),
        (0x0303, "SHA256", "SHA256"),
        (0x0303, "SHA384", "SHA384"),
    ],
)
@pytest.mark.parametrize("secret_length", [47, 48])
def test_prf_matches_openssl(
    version: int, hash_name: str, openssl_digest: str, secret_length: int
) -> None:
    # An odd secret length makes the TLS 1.0 halves overlap by one byte (RFC 2246 5).
    secret = bytes(range(7, 7 + secret_length))
    seed = bytes(range(200, 232)) + bytes(range(32))
    expected = openssl_prf(openssl_digest, secret, b"key expansion" + seed, 104)

    assert tls_prf(version, hash_name, secret, b"key expansion", seed, 104) == expected


def test_prf_rejects_ssl3() -> None:
    with pytest.raises(ValueError, match="0x0300"):
        tls_prf(0x0300, "SHA256", b"secret", b"label", b"seed", 16)


def test_key_block_sizes_per_cipher() -> None:
    cases = {
        # code: (version, MAC key, cipher key, IV)
        0xC030: (0x0303, 0, 32, 4),  # GCM salt, RFC 5288 3
        0xCCA8: (0x0303, 0, 32, 12),  # ChaCha20-Poly1305 IV, RFC 7905 2
        0x003C: (0x0303, 32, 16, 0),  # CBC in TLS 1.2 carries its IV per record
        0x002F: (0x0301, 20, 16, 16),  # TLS 1.0 CBC takes the first IV from the key block
        0x000A: (0x0301, 20, 24, 8),
        0x0005: (0x0303, 20, 16, 0),
        0x003B: (0x0303, 32, 0, 0),
    }
    for code, (version, mac_length, key_length, iv_length) in cases.items():
        cipher_suite = suite(code)
        assert cipher_suite is not None

        block = key_block(version, cipher_suite, bytes(48), bytes(32), bytes(range(32)))

        assert (len(block.client_mac), len(block.server_mac)) == (mac_length, mac_length), code
        assert (len(block.client_key), len(block.server_key)) == (key_length, key_length), code
        assert (len(block.client_iv), len(block.server_iv)) == (iv_length, iv_length), code


def test_key_block_is_prf_output_in_order() -> None:
    # RFC 5246 6.3: client MAC, server MAC, client key, server key, client IV, server IV.
    gcm = suite(0xC02F)
    assert gcm is not None
    master, client_random, server_random = bytes(range(48)), b"c" * 32, b"s" * 32

    expected = tls_prf(
        0x0303, "SHA256", master, b"key expansion", server_random + client_random, 40
    )
    block = key_block(0x0303, gcm, master, client_random, server_random)

    assert block.client_key + block.server_key + block.client_iv + block.server_iv == expected


def test_transcript_hash_md5_sha1() -> None:
    messages = [b"\x01\x00\x00\x01a", b"\x02\x00\x00\x01b"]

    combined = transcript_hash("MD5-SHA1", messages)

    assert combined == transcript_hash("MD5", messages) + transcript_hash("SHA1", messages)
    assert len(combined) == 36
    assert hash_length("SHA384") == 48


@pytest.fixture(scope="module")
def rsa_capture() -> dict[int, tshark_tls.Hellos]:
    if tshark_path() is None:
        pytest.skip("tshark is not installed")
    return tshark_tls.all_hellos(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.pcap")


@needs_tshark
def test_rsa_premaster_matches_keylog_line(rsa_capture: dict[int, tshark_tls.Hellos]) -> None:
    # The capture's key log has an "RSA <encrypted prefix> <premaster>" line for stream 2.
    key = load_private_key(str(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"))
    keylog = KeyLog(str(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.keys"))
    keylog.refresh()
    encrypted = rsa_capture[2].encrypted_premaster

    premaster = decrypt_rsa_premaster(key, encrypted)

    assert premaster is not None
    assert premaster == keylog.premaster_for_encrypted(encrypted[:8])


@needs_tshark
def test_rsa_premaster_accepts_length_prefix(rsa_capture: dict[int, tshark_tls.Hellos]) -> None:
    key = load_private_key(str(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"))
    encrypted = rsa_capture[2].encrypted_premaster
    prefixed = len(encrypted).to_bytes(2, "big") + encrypted

    assert decrypt_rsa_premaster(key, prefixed) == decrypt_rsa_premaster(key, encrypted)


@needs_tshark
def test_rsa_premaster_wrong_key_gives_none(rsa_capture: dict[int, tshark_tls.Hellos]) -> None:
    # Stream 0 was encrypted to a different (4096-bit) server key.
    key = load_private_key(str(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"))

    assert decrypt_rsa_premaster(key, rsa_capture[0].encrypted_premaster) is None
    assert decrypt_rsa_premaster(key, b"") is None
    assert decrypt_rsa_premaster(key, bytes(256)) is None
