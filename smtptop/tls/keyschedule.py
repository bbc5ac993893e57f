"""TLS key derivation: the TLS 1.0-1.2 PRF and key block, and the TLS 1.3 HKDF labels.

TLS 1.0-1.2 (RFC 2246, RFC 4346, RFC 5246): premaster secret -> master secret
(or the extended master secret of RFC 7627) -> key block, which is cut into
MAC keys, cipher keys and implicit IVs.  TLS 1.3 (RFC 8446 7.1-7.3): a traffic
secret taken from the key log -> record key and IV, and the next secret after a
KeyUpdate.

Pure module: standard library and ``cryptography`` only.  Nothing here logs,
and no exception message contains key material.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from smtptop.tls.suites import CipherSuite

__all__ = [
    "KeyBlock",
    "decrypt_rsa_premaster",
    "extended_master_secret",
    "hash_length",
    "hkdf_expand_label",
    "key_block",
    "master_secret",
    "tls13_next_secret",
    "tls13_traffic_keys",
    "tls_prf",
    "transcript_hash",
]

TLS1_0 = 0x0301
TLS1_1 = 0x0302
TLS1_2 = 0x0303

MASTER_SECRET_LENGTH = 48
PREMASTER_SECRET_LENGTH = 48

# hashlib names for the hash names used in suites.CipherSuite.
_HASHLIB_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}
_CRYPTOGRAPHY_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
}

# Block sizes of the CBC ciphers, for the TLS 1.0 IV in the key block.
_BLOCK_SIZES = {"AES-CBC": 16, "3DES": 8}

# RFC 5288 3 and RFC 6655 3: GCM and CCM take a 4-byte salt from the key
# block.  RFC 7905 2 and RFC 8446 5.3: ChaCha20-Poly1305 and every TLS 1.3
# AEAD take a 12-byte IV.
_AEAD_FIXED_IV_LENGTHS = {"AES-GCM": 4, "AES-CCM": 4, "AES-CCM-8": 4, "CHACHA20-POLY1305": 12}
TLS13_IV_LENGTH = 12


def _hashlib_name(hash_name: str) -> str:
    try:
        return _HASHLIB_NAMES[hash_name]
    except KeyError:
        raise ValueError(f"unsupported hash: {hash_name}") from None


def hash_length(hash_name: str) -> int:
    """Return the digest size in bytes of "MD5", "SHA1", "SHA256" or "SHA384"."""
    return hashlib.new(_hashlib_name(hash_name)).digest_size


def _p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    # RFC 5246 5: A(0) = seed, A(i) = HMAC(secret, A(i-1)),
    # P_hash = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...
    digest = _hashlib_name(hash_name)
    output = bytearray()
    a = seed
    while len(output) < length:
        a = hmac.digest(secret, a, digest)
        output += hmac.digest(secret, a + seed, digest)
    return bytes(output[:length])


def tls_prf(
    version: int, hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int
) -> bytes:
    """Compute the TLS PRF.

    TLS 1.2 uses P_<hash_name> (RFC 5246 5).  TLS 1.0 and 1.1 XOR P_MD5 over
    the first half of the secret with P_SHA1 over the second half, and ignore
    ``hash_name`` (RFC 2246 5).  Raises ValueError for SSL 3.0 and unknown
    versions.
    """
    if version == TLS1_2:
        return _p_hash(hash_name, secret, label + seed, length)
    if version in (TLS1_0, TLS1_1):
        # The halves overlap by one byte when the secret has odd length.
        half = (len(secret) + 1) // 2
        md5_part = _p_hash("MD5", secret[:half], label + seed, length)
        sha1_part = _p_hash("SHA1", secret[len(secret) - half :], label + seed, length)
        return bytes(x ^ y for x, y in zip(md5_part, sha1_part))
    raise ValueError(f"no PRF for protocol version 0x{version:04x}")


def master_secret(
    version: int, hash_name: str, premaster: bytes, client_random: bytes, server_random: bytes
) -> bytes:
    """Derive the 48-byte master secret (RFC 5246 8.1)."""
    return tls_prf(
        version,
        hash_name,
        premaster,
        b"master secret",
        client_random + server_random,
        MASTER_SECRET_LENGTH,
    )


def extended_master_secret(
    version: int, hash_name: str, premaster: bytes, session_hash: bytes
) -> bytes:
    """Derive the RFC 7627 4 master secret from the hash of the handshake up to ClientKeyExchange.

    ``session_hash`` is transcript_hash(suite.prf_hash, ...) in TLS 1.2 and
    transcript_hash("MD5-SHA1", ...) in TLS 1.0 and 1.1 (RFC 7627 3).
    """
    return tls_prf(
        version, hash_name, premaster, b"extended master secret", session_hash, MASTER_SECRET_LENGTH
    )


def transcript_hash(hash_name: str, messages: list[bytes]) -> bytes:
    """Hash the concatenated handshake messages (each with its 4-byte header).

    "MD5-SHA1" gives MD5 followed by SHA-1, the TLS 1.0/1.1 session hash.
    """
    if hash_name == "MD5-SHA1":
        return transcript_hash("MD5", messages) + transcript_hash("SHA1", messages)
    digest = hashlib.new(_hashlib_name(hash_name))
    for message in messages:
        digest.update(message)
    return digest.digest()


def decrypt_rsa_premaster(key: RSAPrivateKey, encrypted: bytes) -> bytes | None:
    """Recover the premaster secret from an RSA ClientKeyExchange body, or return None.

    TLS 1.0 and later put a 2-byte length before the ciphertext (RFC 5246
    7.4.7.1); SSL 3.0 does not, so both forms are accepted.  Any failure gives
    None, never an exception, because a wrong key is an expected case.
    """
    size = key.key_size // 8 + (1 if key.key_size % 8 else 0)
    if len(encrypted) == size + 2 and int.from_bytes(encrypted[:2], "big") == size:
        encrypted = encrypted[2:]
    if len(encrypted) != size:
        return None
    try:
        premaster = key.decrypt(encrypted, padding.PKCS1v15())
    except ValueError:
        return None

    # NOTE: OpenSSL 3.2 and later return a synthetic random message for a bad
    # PKCS#1 v1.5 padding instead of an error (implicit rejection), so the
    # length and the major version byte are the only checks left.
    if len(premaster) != PREMASTER_SECRET_LENGTH or premaster[0] != 3:
        return None
    return premaster


@dataclass(frozen=True, slots=True)
class KeyBlock:
    """The keys cut from the TLS 1.0-1.2 key block (RFC 5246 6.3).

    MAC keys are empty for AEAD suites.  IVs are the GCM/CCM salt (4 bytes),
    the ChaCha20-Poly1305 IV (12 bytes), the TLS 1.0 CBC IV (one block), or
    empty for CBC in TLS 1.1 and later, where each record carries its IV.
    """

    client_mac: bytes
    server_mac: bytes
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes


def _iv_length(version: int, suite: CipherSuite) -> int:
    if suite.cipher in _AEAD_FIXED_IV_LENGTHS:
        return _AEAD_FIXED_IV_LENGTHS[suite.cipher]
    if version == TLS1_0 and suite.cipher in _BLOCK_SIZES:
        return _BLOCK_SIZES[suite.cipher]
    return 0


def key_block(
    version: int,
    suite: CipherSuite,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
) -> KeyBlock:
    """Expand the master secret into the MAC keys, cipher keys and IVs of both directions."""
    mac_length = 0 if suite.mac is None else hash_length(suite.mac)
    key_length = suite.key_length
    iv_length = _iv_length(version, suite)
    total = 2 * (mac_length + key_length + iv_length)

    # RFC 5246 6.3: the seed is server_random + client_random, the reverse of
    # the master secret's seed.
    block = tls_prf(
        version, suite.prf_hash, master, b"key expansion", server_random + client_random, total
    )

    parts = []
    offset = 0
    for length in (mac_length, mac_length, key_length, key_length, iv_length, iv_length):
        parts.append(block[offset : offset + length])
        offset += length
    return KeyBlock(*parts)


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """Compute HKDF-Expand-Label (RFC 8446 7.1)."""
    full_label = b"tls13 " + label
    hkdf_label = (
        struct.pack("!H", length)
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )
    algorithm = _cryptography_hash(hash_name)
    return HKDFExpand(algorithm, length, hkdf_label).derive(secret)


def _cryptography_hash(hash_name: str) -> hashes.HashAlgorithm:
    try:
        return _CRYPTOGRAPHY_HASHES[hash_name]()
    except KeyError:
        raise ValueError(f"unsupported TLS 1.3 hash: {hash_name}") from None


def tls13_traffic_keys(suite: CipherSuite, secret: bytes) -> tuple[bytes, bytes]:
    """Derive the record (key, iv) from a TLS 1.3 traffic secret (RFC 8446 7.3)."""
    key = hkdf_expand_label(suite.prf_hash, secret, b"key", b"", suite.key_length)
    iv = hkdf_expand_label(suite.prf_hash, secret, b"iv", b"", TLS13_IV_LENGTH)
    return key, iv


def tls13_next_secret(hash_name: str, secret: bytes) -> bytes:
    """Derive the traffic secret that follows a KeyUpdate (RFC 8446 7.2)."""
    return hkdf_expand_label(hash_name, secret, b"traffic upd", b"", hash_length(hash_name))
