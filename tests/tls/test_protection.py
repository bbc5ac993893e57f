"""Record decryption against RFC 8448 records and tshark's decryption of real captures.

Each capture test derives keys with smtptop.tls.keyschedule from the key log
or the RSA key, and decrypts every protected record of a TCP stream with
RecordDecrypter.  The oracle is the application data that tshark 4.0 decrypts
from the same capture and secrets.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.tls.keylog import KeyLog
from smtptop.tls.keyschedule import (
    decrypt_rsa_premaster,
    extended_master_secret,
    key_block,
    master_secret,
    tls13_next_secret,
    tls13_traffic_keys,
    transcript_hash,
)
from smtptop.tls.protection import DecryptError, RecordDecrypter
from smtptop.tls.rsa_keys import load_private_key
from smtptop.tls.suites import CipherSuite, suite
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls import tshark_tls
from tests.tls.test_keyschedule import C_AP_IV, C_AP_KEY, S_AP_IV, S_AP_KEY, rfc_hex
from tests.tls.tshark_tls import CLIENT, SERVER, Hellos, Record

CHANGE_CIPHER_SPEC = 20
HANDSHAKE = 22
APPLICATION_DATA = 23
FINISHED = 20
CLIENT_KEY_EXCHANGE = 16
KEY_UPDATE = 24
EXTENDED_MASTER_SECRET = 23  # RFC 7627 extension type
ENCRYPT_THEN_MAC = 22  # RFC 7366 extension type

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")


def known_suite(code: int) -> CipherSuite:
    found = suite(code)
    assert found is not None, hex(code)
    return found


# ---------------------------------------------------------------- RFC 8448

# RFC 8448 section 3: {server} send application_data record, complete record.
RFC8448_SERVER_RECORD = rfc_hex(
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc"
    " 32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8"
    " fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d"
)
# {client} send application_data record, complete record.
RFC8448_CLIENT_RECORD = rfc_hex(
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea"
    " 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b"
    " 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
)
# Both records carry the 50 bytes 00 01 02 ... 31.
RFC8448_PAYLOAD = bytes(range(50))


def test_rfc8448_server_application_record() -> None:
    decrypter = RecordDecrypter.tls13(known_suite(0x1301), S_AP_KEY, S_AP_IV)
    # The server's first record under these keys is its NewSessionTicket, so the
    # application data record has sequence number 1.
    decrypter.sequence = 1

    content_type, plaintext = decrypter.decrypt(0x17, 0x0303, RFC8448_SERVER_RECORD[5:])

    assert content_type == APPLICATION_DATA
    assert plaintext == RFC8448_PAYLOAD
    assert decrypter.sequence == 2


def test_rfc8448_client_application_record() -> None:
    decrypter = RecordDecrypter.tls13(known_suite(0x1301), C_AP_KEY, C_AP_IV)

    content_type, plaintext = decrypter.decrypt(0x17, 0x0303, RFC8448_CLIENT_RECORD[5:])

    assert content_type == APPLICATION_DATA
    assert plaintext == RFC8448_PAYLOAD


def test_rfc8448_wrong_sequence_fails() -> None:
    decrypter = RecordDecrypter.tls13(known_suite(0x1301), S_AP_KEY, S_AP_IV)

    with pytest.raises(DecryptError, match="authentication tag mismatch"):
        decrypter.decrypt(0x17, 0x0303, RFC8448_SERVER_RECORD[5:])

    # The failed record still used up sequence number 0.
    assert decrypter.sequence == 1
    assert decrypter.decrypt(0x17, 0x0303, RFC8448_SERVER_RECORD[5:])[1] == RFC8448_PAYLOAD


def test_rfc8448_header_is_authenticated() -> None:
    decrypter = RecordDecrypter.tls13(known_suite(0x1301), S_AP_KEY, S_AP_IV)
    decrypter.sequence = 1

    # RFC 8446 5.2: the record header is the additional data.
    with pytest.raises(DecryptError):
        decrypter.decrypt(0x17, 0x0301, RFC8448_SERVER_RECORD[5:])


# ---------------------------------------------------------------- captures


def tls12_stream(
    records: list[Record], hellos: Hellos, master: bytes
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Decrypt a TLS 1.2 stream; return (application data, first decrypted handshake record)."""
    cipher_suite = known_suite(hellos.cipher_suite)
    block = key_block(
        hellos.version, cipher_suite, master, hellos.client_random, hellos.server_random
    )
    etm = ENCRYPT_THEN_MAC in hellos.server_extensions
    decrypters = {
        CLIENT: RecordDecrypter.tls12(
            hellos.version, cipher_suite, block.client_key, block.client_iv, block.client_mac, etm
        ),
        SERVER: RecordDecrypter.tls12(
            hellos.version, cipher_suite, block.server_key, block.server_iv, block.server_mac, etm
        ),
    }
    application = {CLIENT: b"", SERVER: b""}
    finished: dict[str, bytes] = {}
    protected: set[str] = set()
    for record in records:
        if record.content_type == CHANGE_CIPHER_SPEC:
            protected.add(record.direction)
            continue
        if record.direction not in protected:
            continue
        content_type, plaintext = decrypters[record.direction].decrypt(
            record.content_type, record.version, record.fragment
        )
        if content_type == APPLICATION_DATA:
            application[record.direction] += plaintext
        elif content_type == HANDSHAKE:
            finished.setdefault(record.direction, plaintext)
    return application, finished


def handshake_through_key_exchange(records: list[Record]) -> list[bytes]:
    """Return the handshake messages up to and including ClientKeyExchange (RFC 7627 3)."""
    messages = []
    for message in tshark_tls.plaintext_handshake(records):
        messages.append(message)
        if message[0] == CLIENT_KEY_EXCHANGE:
            break
    return messages


def check_finished(finished: dict[str, bytes]) -> None:
    # RFC 5246 7.4.9: Finished is type 20 with 12 bytes of verify_data.
    for direction in (CLIENT, SERVER):
        assert finished[direction][:4] == b"\x14\x00\x00\x0c", direction
        assert len(finished[direction]) == 16, direction


class Capture:
    """Records, hello fields and tshark's decryption of some streams of one capture."""

    def __init__(self, name: str, streams: list[int], tshark_args: list[str], extra: list[str]):
        path = PUBLIC_CAPTURES / name
        self.hellos = tshark_tls.all_hellos(path, extra)
        self.records = tshark_tls.tls_records(path, streams, extra)
        self.expected = tshark_tls.decrypted_data(path, streams, [*extra, *tshark_args])


def keylog_for(name: str) -> KeyLog:
    keylog = KeyLog(str(PUBLIC_CAPTURES / name))
    keylog.refresh()
    return keylog


_captures: dict[tuple[str, str, tuple[int, ...]], Capture] = {}


def capture(name: str, streams: list[int], secrets: str, extra: list[str] | None = None) -> Capture:
    """Load a capture once per test session; `secrets` is a key log or an RSA key file."""
    if tshark_path() is None:
        pytest.skip("tshark is not installed")
    key = (name, secrets, tuple(streams))
    if key not in _captures:
        secret_path = PUBLIC_CAPTURES / secrets
        if secrets.endswith(".key"):
            tshark_args = tshark_tls.rsa_key_args(secret_path)
        else:
            tshark_args = tshark_tls.keylog_args(secret_path)
        _captures[key] = Capture(name, streams, tshark_args, extra or [])
    return _captures[key]


ALLCIPHERS_STREAMS = list(range(31))


@needs_tshark
@pytest.mark.parametrize("stream", ALLCIPHERS_STREAMS)
def test_tls12_allciphers_stream(stream: int) -> None:
    # One stream per suite: RC4, AES-CBC with SHA-1/SHA-256/SHA-384 MACs in both
    # MAC orders (encrypt-then-MAC in some), AES-GCM with SHA-256 and SHA-384 PRFs.
    loaded = capture(
        "tls12-allciphers-pcapfs.pcap", ALLCIPHERS_STREAMS, "tls12-allciphers-pcapfs.keys"
    )
    hellos = loaded.hellos[stream]
    master = keylog_for("tls12-allciphers-pcapfs.keys").master_secret(hellos.client_random)
    assert master is not None

    application, finished = tls12_stream(loaded.records[stream], hellos, master)

    check_finished(finished)
    assert application[CLIENT] == loaded.expected[stream][CLIENT]
    assert application[SERVER] == loaded.expected[stream][SERVER]
    assert application[CLIENT]


@needs_tshark
def test_tls12_gcm_with_ems() -> None:
    loaded = capture("tls12-zeek-decryption.pcap", [0], "tls12-zeek-decryption.keys")
    hellos = loaded.hellos[0]
    assert hellos.cipher_suite == 0xC030
    assert EXTENDED_MASTER_SECRET in hellos.server_extensions
    master = keylog_for("tls12-zeek-decryption.keys").master_secret(hellos.client_random)
    assert master is not None

    application, finished = tls12_stream(loaded.records[0], hellos, master)

    check_finished(finished)
    assert application[CLIENT] == loaded.expected[0][CLIENT]
    assert application[SERVER] == loaded.expected[0][SERVER]
    assert application[CLIENT].startswith(b"GET / HTTP/1.1")


@needs_tshark
def test_tls12_null_cipher() -> None:
    loaded = capture("tls-null-cipher-keylog.pcapng", [0], "tls-null-cipher-keylog.keys")
    hellos = loaded.hellos[0]
    assert hellos.cipher_suite == 0x003B
    master = keylog_for("tls-null-cipher-keylog.keys").master_secret(hellos.client_random)
    assert master is not None

    application, finished = tls12_stream(loaded.records[0], hellos, master)

    check_finished(finished)
    assert application[CLIENT] == loaded.expected[0][CLIENT]
    assert application[SERVER] == loaded.expected[0][SERVER]


@needs_tshark
def test_tls12_null_cipher_bad_mac() -> None:
    loaded = capture("tls-null-cipher-keylog.pcapng", [0], "tls-null-cipher-keylog.keys")
    hellos = loaded.hellos[0]
    cipher_suite = known_suite(hellos.cipher_suite)
    block = key_block(
        hellos.version, cipher_suite, bytes(48), hellos.client_random, hellos.server_random
    )
    decrypter = RecordDecrypter.tls12(
        hellos.version, cipher_suite, block.client_key, block.client_iv, block.client_mac, False
    )
    first_data = next(
        record
        for record in loaded.records[0]
        if record.direction == CLIENT and record.content_type == APPLICATION_DATA
    )

    with pytest.raises(DecryptError, match="bad record MAC"):
        decrypter.decrypt(first_data.content_type, first_data.version, first_data.fragment)


@needs_tshark
@pytest.mark.parametrize("stream", [1, 2])
def test_tls12_rsa_private_key(stream: int) -> None:
    # Stream 1 is AES128-SHA256 and stream 2 RC4-SHA, both with EMS.
    loaded = capture("tls12-rsa-pcapfs.pcap", [1, 2], "tls12-rsa-pcapfs.key")
    hellos = loaded.hellos[stream]
    cipher_suite = known_suite(hellos.cipher_suite)
    key = load_private_key(str(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"))
    premaster = decrypt_rsa_premaster(key, hellos.encrypted_premaster)
    assert premaster is not None
    assert EXTENDED_MASTER_SECRET in hellos.server_extensions
    session_hash = transcript_hash(
        cipher_suite.prf_hash, handshake_through_key_exchange(loaded.records[stream])
    )
    master = extended_master_secret(hellos.version, cipher_suite.prf_hash, premaster, session_hash)

    application, finished = tls12_stream(loaded.records[stream], hellos, master)

    check_finished(finished)
    assert application[CLIENT] == loaded.expected[stream][CLIENT]
    assert application[SERVER] == loaded.expected[stream][SERVER]
    assert application[CLIENT].startswith(b"hello")


@needs_tshark
def test_plain_master_fails_for_ems_session() -> None:
    # Stream 2 negotiated extended master secret, so the RFC 5246 8.1 master
    # secret from the same premaster must not decrypt it (RFC 7627 4).
    loaded = capture("tls12-rsa-pcapfs.pcap", [1, 2], "tls12-rsa-pcapfs.key")
    hellos = loaded.hellos[2]
    cipher_suite = known_suite(hellos.cipher_suite)
    premaster = keylog_for("tls12-rsa-pcapfs.keys").premaster_for_encrypted(
        hellos.encrypted_premaster[:8]
    )
    assert premaster is not None
    wrong = master_secret(
        hellos.version, cipher_suite.prf_hash, premaster, hellos.client_random, hellos.server_random
    )

    with pytest.raises(DecryptError, match="bad record MAC"):
        tls12_stream(loaded.records[2], hellos, wrong)


def tls13_stream(
    records: list[Record],
    cipher_suite: CipherSuite,
    secrets: dict[str, bytes],
    follow_key_updates: bool = True,
) -> tuple[dict[str, bytes], dict[str, list[int]]]:
    """Decrypt a TLS 1.3 stream; return (application data, handshake types seen encrypted)."""
    decrypters = {}
    current: dict[str, bytes] = {}
    for direction, label in ((CLIENT, "CLIENT"), (SERVER, "SERVER")):
        key, iv = tls13_traffic_keys(cipher_suite, secrets[f"{label}_HANDSHAKE_TRAFFIC_SECRET"])
        decrypters[direction] = RecordDecrypter.tls13(cipher_suite, key, iv)
    application = {CLIENT: b"", SERVER: b""}
    handshake_types: dict[str, list[int]] = {CLIENT: [], SERVER: []}
    for record in records:
        # RFC 8446 5: only records of outer type application_data are protected.
        if record.content_type != APPLICATION_DATA:
            continue
        content_type, plaintext = decrypters[record.direction].decrypt(
            record.content_type, record.version, record.fragment
        )
        if content_type == APPLICATION_DATA:
            application[record.direction] += plaintext
        if content_type != HANDSHAKE:
            continue

        types = handshake_message_types(plaintext)
        handshake_types[record.direction] += types
        # RFC 8446 7.3: after its Finished each side switches to application keys,
        # and RFC 8446 4.6.3: after a KeyUpdate to the next generation.
        if FINISHED in types:
            label = "CLIENT" if record.direction == CLIENT else "SERVER"
            current[record.direction] = secrets[f"{label}_TRAFFIC_SECRET_0"]
        elif KEY_UPDATE in types and follow_key_updates:
            secret = tls13_next_secret(cipher_suite.prf_hash, current[record.direction])
            current[record.direction] = secret
        else:
            continue
        key, iv = tls13_traffic_keys(cipher_suite, current[record.direction])
        decrypters[record.direction] = RecordDecrypter.tls13(cipher_suite, key, iv)
    return application, handshake_types


def handshake_message_types(plaintext: bytes) -> list[int]:
    types = []
    while len(plaintext) >= 4:
        types.append(plaintext[0])
        plaintext = plaintext[4 + int.from_bytes(plaintext[1:4], "big") :]
    return types


@needs_tshark
@pytest.mark.parametrize(
    ("name", "keys", "stream", "code", "extra"),
    [
        ("tls12-tls13-scapy-nss.pcap", "tls12-tls13-scapy-nss.keys", 1, 0x1302, []),
        (
            "tls13-chacha20-hotplace.pcapng",
            "tls13-chacha20-hotplace.keys",
            0,
            0x1303,
            ["-d", "tcp.port==9000,tls"],
        ),
    ],
)
def test_tls13_stream(name: str, keys: str, stream: int, code: int, extra: list[str]) -> None:
    loaded = capture(name, [stream], keys, extra)
    hellos = loaded.hellos[stream]
    assert hellos.cipher_suite == code
    secrets = keylog_for(keys).tls13_secrets(hellos.client_random)

    application, handshake_types = tls13_stream(loaded.records[stream], known_suite(code), secrets)

    # Server: EncryptedExtensions ... Finished; client: Finished (RFC 8446 2).
    assert handshake_types[SERVER][0] == 8
    assert FINISHED in handshake_types[SERVER]
    assert handshake_types[CLIENT][0] == FINISHED
    assert application[CLIENT] == loaded.expected[stream][CLIENT]
    assert application[SERVER] == loaded.expected[stream][SERVER]
    assert application[CLIENT]


@needs_tshark
def test_tls12_and_tls13_in_one_capture() -> None:
    loaded = capture("tls12-tls13-scapy-nss.pcap", [0, 1], "tls12-tls13-scapy-nss.keys")
    hellos = loaded.hellos[0]
    assert hellos.cipher_suite == 0xC030
    master = keylog_for("tls12-tls13-scapy-nss.keys").master_secret(hellos.client_random)
    assert master is not None

    application, _ = tls12_stream(loaded.records[0], hellos, master)

    assert application[CLIENT] == loaded.expected[0][CLIENT]
    assert application[SERVER] == loaded.expected[0][SERVER]


# ---------------------------------------------------------------- synthetic checks


def test_etm_mac_checked_before_decrypting() -> None:
    # A garbled last block would give bad padding; with encrypt-then-MAC the MAC
    # fails first (RFC 7366 3), so the error names the MAC.
    cbc = known_suite(0x002F)
    decrypter = RecordDecrypter.tls12(0x0303, cbc, bytes(16), b"", bytes(20), True)

    with pytest.raises(DecryptError, match="bad record MAC"):
        decrypter.decrypt(23, 0x0303, bytes(16 + 32 + 20))


def test_mac_then_encrypt_checks_padding() -> None:
    cbc = known_suite(0x002F)
    decrypter = RecordDecrypter.tls12(0x0303, cbc, bytes(16), b"", bytes(20), False)

    with pytest.raises(DecryptError, match="padding|MAC"):
        decrypter.decrypt(23, 0x0303, bytes(16 + 32))


def test_cbc_partial_block_rejected() -> None:
    cbc = known_suite(0x002F)
    decrypter = RecordDecrypter.tls12(0x0303, cbc, bytes(16), b"", bytes(20), False)

    with pytest.raises(DecryptError, match="whole number of blocks"):
        decrypter.decrypt(23, 0x0303, bytes(16 + 33))
    assert decrypter.sequence == 1


def test_tls13_all_zero_record_rejected() -> None:
    key, iv = bytes(range(16)), bytes(range(12))
    header = bytes([23, 3, 3, 0, 4 + 16])
    fragment = AESGCM(key).encrypt(iv, bytes(4), header)
    decrypter = RecordDecrypter.tls13(known_suite(0x1301), key, iv)

    with pytest.raises(DecryptError, match="no inner content type"):
        decrypter.decrypt(23, 0x0303, fragment)


def test_wrong_key_length_rejected() -> None:
    with pytest.raises(ValueError, match="16-byte key"):
        RecordDecrypter.tls13(known_suite(0x1301), bytes(32), bytes(12))
    with pytest.raises(ValueError, match="TLS 1.3 suite"):
        RecordDecrypter.tls12(0x0303, known_suite(0x1301), bytes(16), bytes(4), b"", False)


# TLS 1.3 AEADs, then TLS 1.2 GCM, ChaCha20, CCM_8, CBC, 3DES, RC4 and NULL.
FUZZ_SUITES = [0x1301, 0x1303, 0x1304, 0x1305]
FUZZ_SUITES += [0xC02F, 0xC030, 0xCCA8, 0xC0A0, 0x002F, 0x003D, 0xC028, 0x000A, 0x0005, 0x003B]


def fuzz_decrypter(code: int, version: int, etm: bool) -> RecordDecrypter:
    cipher_suite = known_suite(code)
    if cipher_suite.tls13:
        return RecordDecrypter.tls13(cipher_suite, bytes(cipher_suite.key_length), bytes(12))
    block = key_block(version, cipher_suite, bytes(48), bytes(32), bytes(32))
    return RecordDecrypter.tls12(
        version, cipher_suite, block.client_key, block.client_iv, block.client_mac, etm
    )


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(FUZZ_SUITES),
    version=st.sampled_from([0x0301, 0x0302, 0x0303]),
    etm=st.booleans(),
    content_type=st.integers(0, 255),
    fragments=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
)
def test_random_bytes_raise_only_decrypt_error(
    code: int, version: int, etm: bool, content_type: int, fragments: list[bytes]
) -> None:
    decrypter = fuzz_decrypter(code, version, etm)
    for number, fragment in enumerate(fragments, start=1):
        try:
            decrypter.decrypt(content_type, version, fragment)
        except DecryptError:
            pass
        assert decrypter.sequence == number


# ---------------------------------------------------------------- OpenSSL peers in memory

# Python's ssl module (OpenSSL) runs both ends over memory BIOs, so every byte
# on the "wire" is known.  The oracles are OpenSSL's own key log and the
# plaintext that was sent.  This covers what no public capture has: TLS 1.0 and
# 1.1 CBC, CCM, TLS 1.2 ChaCha20-Poly1305, and RSA key exchange without EMS.

# OpenSSL option bits from openssl/ssl.h (3.0) that the ssl module has no name for.
OP_NO_EXTENDED_MASTER_SECRET = 1 << 0
OP_NO_ENCRYPT_THEN_MAC = 1 << 19

CLIENT_MESSAGES = [b"EHLO client.example\r\n", bytes(range(256)) * 4, b"x" * 5000]
SERVER_MESSAGES = [b"250 ok\r\n", b"y" * 3000]


@pytest.fixture(scope="module")
def server_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("openssl-peer")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtptop test server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path = directory / "server.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    certificate_path = directory / "server.crt"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, certificate_path


def run_openssl_session(
    version: str, ciphers: str, options: int, identity: tuple[Path, Path], keylog: Path
) -> list[tuple[str, bytes]]:
    """Run a handshake and the message exchange in memory; return the wire chunks."""
    tls_version = getattr(ssl.TLSVersion, version)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    client_context.keylog_filename = str(keylog)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(identity[1]), str(identity[0]))
    for context in (client_context, server_context):
        context.minimum_version = tls_version
        context.maximum_version = tls_version
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        context.options |= options

    pipes = {end: (ssl.MemoryBIO(), ssl.MemoryBIO()) for end in (CLIENT, SERVER)}
    client = client_context.wrap_bio(*pipes[CLIENT])
    server = server_context.wrap_bio(*pipes[SERVER], server_side=True)
    wire: list[tuple[str, bytes]] = []

    def pump() -> None:
        for sender, receiver in ((CLIENT, SERVER), (SERVER, CLIENT)):
            data = pipes[sender][1].read()
            if data:
                wire.append((sender, data))
                pipes[receiver][0].write(data)

    def read_all(end: ssl.SSLObject, expected: int) -> bytes:
        received = b""
        while len(received) < expected:
            received += end.read(65536)
        return received

    finished: set[str] = set()
    for _ in range(10):
        for direction, end in ((CLIENT, client), (SERVER, server)):
            try:
                end.do_handshake()
                finished.add(direction)
            except ssl.SSLWantReadError:
                pass
            pump()
    assert finished == {CLIENT, SERVER}

    for message in CLIENT_MESSAGES:
        client.write(message)
    pump()
    assert read_all(server, sum(map(len, CLIENT_MESSAGES))) == b"".join(CLIENT_MESSAGES)
    for message in SERVER_MESSAGES:
        server.write(message)
    pump()
    assert read_all(client, sum(map(len, SERVER_MESSAGES))) == b"".join(SERVER_MESSAGES)
    return wire


def hellos_from_wire(records: list[Record]) -> Hellos:
    """Read the hello fields straight from the handshake bytes (RFC 5246 7.4.1.2-7.4.1.4)."""
    messages = tshark_tls.plaintext_handshake(records)
    client_hello = next(message for message in messages if message[0] == 1)
    server_hello = next(message for message in messages if message[0] == 2)
    key_exchange = [message for message in messages if message[0] == CLIENT_KEY_EXCHANGE]
    session_id_end = 39 + server_hello[38]
    suite_end = session_id_end + 2

    # After the suite: one compression byte, the extensions length, then
    # (type, length, data) entries.
    extensions = []
    position = suite_end + 3
    while position + 4 <= len(server_hello):
        extensions.append(int.from_bytes(server_hello[position : position + 2], "big"))
        position += 4 + int.from_bytes(server_hello[position + 2 : position + 4], "big")

    return Hellos(
        client_random=client_hello[6:38],
        server_random=server_hello[6:38],
        session_id=server_hello[39:session_id_end],
        cipher_suite=int.from_bytes(server_hello[session_id_end:suite_end], "big"),
        version=int.from_bytes(server_hello[4:6], "big"),
        server_extensions=tuple(extensions),
        encrypted_premaster=key_exchange[0][6:] if key_exchange else b"",
        certificate=b"",
    )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize(
    ("version", "ciphers", "options", "code"),
    [
        ("TLSv1", "AES128-SHA", 0, 0x002F),
        ("TLSv1", "AES256-SHA", OP_NO_ENCRYPT_THEN_MAC | OP_NO_EXTENDED_MASTER_SECRET, 0x0035),
        ("TLSv1_1", "AES128-SHA", OP_NO_EXTENDED_MASTER_SECRET, 0x002F),
        ("TLSv1_1", "ECDHE-RSA-AES256-SHA", OP_NO_ENCRYPT_THEN_MAC, 0xC014),
        ("TLSv1_2", "AES128-SHA256", OP_NO_EXTENDED_MASTER_SECRET, 0x003C),
        ("TLSv1_2", "AES256-SHA256", OP_NO_ENCRYPT_THEN_MAC, 0x003D),
        ("TLSv1_2", "AES128-CCM", 0, 0xC09C),
        ("TLSv1_2", "AES256-CCM8", OP_NO_EXTENDED_MASTER_SECRET, 0xC0A1),
        ("TLSv1_2", "ECDHE-RSA-CHACHA20-POLY1305", 0, 0xCCA8),
        ("TLSv1_2", "AES256-GCM-SHA384", 0, 0x009D),
    ],
)
def test_openssl_tls12_session(
    version: str,
    ciphers: str,
    options: int,
    code: int,
    server_identity: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    keylog_path = tmp_path / "keys"
    wire = run_openssl_session(version, ciphers, options, server_identity, keylog_path)
    records = tshark_tls.split_records(wire)
    hellos = hellos_from_wire(records)
    assert hellos.cipher_suite == code
    assert (EXTENDED_MASTER_SECRET in hellos.server_extensions) == (
        not options & OP_NO_EXTENDED_MASTER_SECRET
    )
    cipher_suite = known_suite(code)
    logged_master = keylog_for_path(keylog_path).master_secret(hellos.client_random)
    assert logged_master is not None

    # RSA key exchange: recover the master secret with the server key and
    # check it against OpenSSL's key log.
    if cipher_suite.key_exchange == "RSA":
        server_key = load_private_key(str(server_identity[0]))
        premaster = decrypt_rsa_premaster(server_key, hellos.encrypted_premaster)
        assert premaster is not None
        if EXTENDED_MASTER_SECRET not in hellos.server_extensions:
            derived = master_secret(
                hellos.version,
                cipher_suite.prf_hash,
                premaster,
                hellos.client_random,
                hellos.server_random,
            )
        else:
            hash_name = "MD5-SHA1" if hellos.version < 0x0303 else cipher_suite.prf_hash
            session_hash = transcript_hash(hash_name, handshake_through_key_exchange(records))
            derived = extended_master_secret(
                hellos.version, cipher_suite.prf_hash, premaster, session_hash
            )
        assert derived == logged_master

    application, finished = tls12_stream(records, hellos, logged_master)

    check_finished(finished)
    assert application[CLIENT] == b"".join(CLIENT_MESSAGES)
    assert application[SERVER] == b"".join(SERVER_MESSAGES)


def test_openssl_tls13_session(server_identity: tuple[Path, Path], tmp_path: Path) -> None:
    # NOTE: Python's ssl module cannot choose TLS 1.3 suites, so OpenSSL picks its
    # preferred one (TLS_AES_256_GCM_SHA384 in OpenSSL 3.0).
    keylog_path = tmp_path / "keys"
    wire = run_openssl_session("TLSv1_3", "ALL", 0, server_identity, keylog_path)
    records = tshark_tls.split_records(wire)
    hellos = hellos_from_wire(records)
    secrets = keylog_for_path(keylog_path).tls13_secrets(hellos.client_random)
    assert hellos.cipher_suite in (0x1301, 0x1302, 0x1303)

    application, handshake_types = tls13_stream(records, known_suite(hellos.cipher_suite), secrets)

    assert FINISHED in handshake_types[SERVER]
    assert application[CLIENT] == b"".join(CLIENT_MESSAGES)
    assert application[SERVER] == b"".join(SERVER_MESSAGES)


def keylog_for_path(path: Path) -> KeyLog:
    keylog = KeyLog(str(path))
    keylog.refresh()
    return keylog


# ---------------------------------------------------------------- KeyUpdate with openssl s_client


class RecordingRelay:
    """A loopback TCP relay between one client and one server that records both directions."""

    def __init__(self, server_port: int) -> None:
        self.wire: list[tuple[str, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._server_port = server_port
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._listener.settimeout(30)
        client, _ = self._listener.accept()
        server = socket.create_connection(("127.0.0.1", self._server_port), timeout=30)
        peers = {client: (CLIENT, server), server: (SERVER, client)}
        open_sockets = {client, server}
        while open_sockets:
            readable, _, _ = select.select(list(open_sockets), [], [], 30)
            if not readable:
                break
            for sock in readable:
                direction, other = peers[sock]
                data = sock.recv(65536)
                if not data:
                    open_sockets.discard(sock)
                    with contextlib.suppress(OSError):
                        other.shutdown(socket.SHUT_WR)
                    continue
                self.wire.append((direction, data))
                other.sendall(data)
        for sock in (client, server, self._listener):
            sock.close()

    def client_records(self) -> int:
        return sum(record.direction == CLIENT for record in tshark_tls.split_records(self.wire))

    def wait_for_client_records(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.client_records() < count:
            assert time.monotonic() < deadline, f"the client never sent record {count}"
            time.sleep(0.02)

    def join(self) -> None:
        self._thread.join(30)


def start_openssl_server(identity: tuple[Path, Path]) -> tuple[subprocess.Popen[bytes], int]:
    command = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-tls1_3"]
    command += ["-cert", str(identity[1]), "-key", str(identity[0])]
    server = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert server.stdout is not None
    for raw in server.stdout:
        # s_server prints the port it bound, for example "ACCEPT 127.0.0.1:43707".
        found = re.search(rb"ACCEPT 127\.0\.0\.1:(\d+)", raw)
        if found:
            return server, int(found.group(1))
    raise AssertionError("openssl s_server did not report its port")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_key_update(server_identity: tuple[Path, Path], tmp_path: Path) -> None:
    keylog_path = tmp_path / "keys"
    server, server_port = start_openssl_server(server_identity)
    relay = RecordingRelay(server_port)
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{relay.port}", "-tls1_3"]
    command += ["-keylogfile", str(keylog_path)]
    client = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert client.stdin is not None
    try:
        # ClientHello, ChangeCipherSpec and Finished, then one record per input line.
        # A line "k" makes s_client send a KeyUpdate instead of data.
        relay.wait_for_client_records(3)
        for count, line in enumerate([b"hello\n", b"k\n", b"after\n"], start=4):
            client.stdin.write(line)
            client.stdin.flush()
            relay.wait_for_client_records(count)
        client.stdin.close()
        client.wait(30)
    finally:
        client.kill()
        server.kill()
        server.wait(30)
        relay.join()

    records = tshark_tls.split_records(relay.wire)
    hellos = hellos_from_wire(records)
    cipher_suite = known_suite(hellos.cipher_suite)
    secrets = keylog_for_path(keylog_path).tls13_secrets(hellos.client_random)

    application, handshake_types = tls13_stream(records, cipher_suite, secrets)

    assert KEY_UPDATE in handshake_types[CLIENT]
    assert application[CLIENT] == b"hello\nafter\n"
    with pytest.raises(DecryptError):
        tls13_stream(records, cipher_suite, secrets, follow_key_updates=False)
