"""TLS record decryption: one ``RecordDecrypter`` per direction and key epoch.

Each decrypter keeps the 64-bit record sequence number that every TLS version
feeds into the MAC or the AEAD nonce.  So records must be given in the order
they were sent, and none may be skipped: a skipped record shifts the sequence
number, and every later record then fails.

Supported record protection:

* TLS 1.2 AEAD: AES-GCM (RFC 5288) and AES-CCM / CCM_8 (RFC 6655) with a
  4-byte salt plus an 8-byte explicit nonce, ChaCha20-Poly1305 (RFC 7905)
  with no explicit nonce.
* TLS 1.0-1.2 CBC (AES, 3DES) with HMAC, MAC-then-encrypt (RFC 5246 6.2.3.2)
  or encrypt-then-MAC (RFC 7366).  TLS 1.0 chains the IV from the previous
  record, TLS 1.1 and later carry it at the start of each record.
* RC4 and NULL ciphers with HMAC.
* TLS 1.3 AEAD records (RFC 8446 5.2-5.4).

Pure module: standard library and ``cryptography`` only.  Error messages name
the check that failed and never contain key material or plaintext.
"""

from __future__ import annotations

import hmac
import struct
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from smtptop.tls.suites import CipherSuite

__all__ = ["DecryptError", "RecordDecrypter"]

TLS1_0 = 0x0301

_TAG_LENGTH = 16
_EXPLICIT_NONCE_LENGTH = 8
_SEQUENCE_MASK = (1 << 64) - 1
_HMAC_DIGESTS = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}


class DecryptError(ValueError):
    """A record could not be decrypted or failed its integrity check."""


class _Scheme(Protocol):
    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes: ...


class _AeadCipher(Protocol):
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


def _sequence_bytes(sequence: int) -> bytes:
    return struct.pack("!Q", sequence & _SEQUENCE_MASK)


def _tls12_additional_data(sequence: int, content_type: int, version: int, length: int) -> bytes:
    # RFC 5246 6.2.3.3: seq_num + type + version + length of the plaintext.
    return _sequence_bytes(sequence) + struct.pack("!BHH", content_type, version, length)


def _xor_nonce(iv: bytes, sequence: int) -> bytes:
    # RFC 7905 2 and RFC 8446 5.3: the sequence number, left-padded to the IV
    # length, XORed with the IV.
    padded = _sequence_bytes(sequence).rjust(len(iv), b"\x00")
    return bytes(x ^ y for x, y in zip(iv, padded))


def _open_aead(aead: _AeadCipher, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptError("authentication tag mismatch") from None


def _make_aead(cipher: str, key: bytes) -> tuple[_AeadCipher, int]:
    """Return the AEAD object and its tag length."""
    if cipher == "AES-GCM":
        return AESGCM(key), _TAG_LENGTH
    if cipher == "AES-CCM":
        return AESCCM(key, tag_length=16), 16
    if cipher == "AES-CCM-8":
        return AESCCM(key, tag_length=8), 8
    if cipher == "CHACHA20-POLY1305":
        return ChaCha20Poly1305(key), _TAG_LENGTH
    raise ValueError(f"not an AEAD cipher: {cipher}")


class _ExplicitNonceAead:
    """TLS 1.2 GCM and CCM: nonce = 4-byte salt + 8-byte explicit nonce (RFC 5288 3)."""

    def __init__(self, cipher: str, key: bytes, salt: bytes) -> None:
        if len(salt) != 4:
            raise ValueError("GCM and CCM need a 4-byte implicit IV")
        self._aead, self._tag_length = _make_aead(cipher, key)
        self._salt = salt

    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes:
        plaintext_length = len(fragment) - _EXPLICIT_NONCE_LENGTH - self._tag_length
        if plaintext_length < 0:
            raise DecryptError("record too short for an AEAD nonce and tag")
        nonce = self._salt + fragment[:_EXPLICIT_NONCE_LENGTH]
        aad = _tls12_additional_data(sequence, content_type, version, plaintext_length)
        return _open_aead(self._aead, nonce, fragment[_EXPLICIT_NONCE_LENGTH:], aad)


class _ChaChaTls12:
    """TLS 1.2 ChaCha20-Poly1305: nonce = IV XOR sequence number, nothing explicit (RFC 7905 2)."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(iv) != 12:
            raise ValueError("ChaCha20-Poly1305 needs a 12-byte IV")
        self._aead = ChaCha20Poly1305(key)
        self._iv = iv

    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes:
        plaintext_length = len(fragment) - _TAG_LENGTH
        if plaintext_length < 0:
            raise DecryptError("record too short for an AEAD tag")
        aad = _tls12_additional_data(sequence, content_type, version, plaintext_length)
        return _open_aead(self._aead, _xor_nonce(self._iv, sequence), fragment, aad)


class _Mac:
    """The TLS record HMAC (RFC 5246 6.2.3.1)."""

    def __init__(self, hash_name: str | None, key: bytes) -> None:
        if hash_name not in _HMAC_DIGESTS:
            raise ValueError(f"unsupported MAC hash: {hash_name}")
        self._digest = _HMAC_DIGESTS[hash_name]
        self.length = len(hmac.digest(b"", b"", self._digest))
        if len(key) != self.length:
            raise ValueError("MAC key length does not match the MAC hash")
        self._key = key

    def check(
        self, sequence: int, content_type: int, version: int, data: bytes, mac: bytes
    ) -> None:
        header = _tls12_additional_data(sequence, content_type, version, len(data))
        expected = hmac.digest(self._key, header + data, self._digest)
        if not hmac.compare_digest(expected, mac):
            raise DecryptError("bad record MAC")


class _Cbc:
    """CBC block ciphers with HMAC, in either MAC order."""

    def __init__(
        self, suite: CipherSuite, version: int, key: bytes, iv: bytes, mac: _Mac, etm: bool
    ) -> None:
        # NOTE: the 3DES path is only fuzzed.  No public capture uses 3DES, and
        # the OpenSSL 3.0.22 used by the tests selects no 3DES suite.
        self._algorithm = TripleDES if suite.cipher == "3DES" else algorithms.AES
        self._key = key
        self._block = self._algorithm.block_size // 8
        self._mac = mac
        self._encrypt_then_mac = etm

        # TLS 1.0 (RFC 2246 6.2.3.2): the first IV comes from the key block and
        # each later one is the last ciphertext block of the previous record.
        self._chained_iv: bytes | None = None
        if version == TLS1_0:
            if len(iv) != self._block:
                raise ValueError("TLS 1.0 CBC needs an IV of one block from the key block")
            self._chained_iv = iv

    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes:
        if self._encrypt_then_mac:
            # RFC 7366 3: the MAC covers IV + ciphertext and is checked before decrypting.
            if len(fragment) < self._mac.length:
                raise DecryptError("record too short for its MAC")
            encrypted = fragment[: len(fragment) - self._mac.length]
            mac = fragment[len(fragment) - self._mac.length :]
            iv, ciphertext = self._split_iv(encrypted)
            self._mac.check(sequence, content_type, version, encrypted, mac)
            return self._unpad(self._decrypt(iv, ciphertext))

        iv, ciphertext = self._split_iv(fragment)
        plaintext = self._unpad(self._decrypt(iv, ciphertext))
        if len(plaintext) < self._mac.length:
            raise DecryptError("record too short for its MAC")
        data = plaintext[: len(plaintext) - self._mac.length]
        self._mac.check(sequence, content_type, version, data, plaintext[len(data) :])
        return data

    def _split_iv(self, encrypted: bytes) -> tuple[bytes, bytes]:
        """Return (IV, ciphertext), and move the TLS 1.0 IV chain on even if the record fails later."""
        if self._chained_iv is None:
            iv, ciphertext = encrypted[: self._block], encrypted[self._block :]
        else:
            iv, ciphertext = self._chained_iv, encrypted
        if not ciphertext or len(ciphertext) % self._block:
            raise DecryptError("CBC ciphertext is not a whole number of blocks")
        if self._chained_iv is not None:
            self._chained_iv = ciphertext[-self._block :]
        return iv, ciphertext

    def _decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        decryptor = Cipher(self._algorithm(self._key), modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    @staticmethod
    def _unpad(plaintext: bytes) -> bytes:
        # RFC 5246 6.2.3.2: padding_length bytes, each equal to padding_length,
        # followed by the padding_length byte itself.
        padding_length = plaintext[-1]
        if padding_length + 1 > len(plaintext):
            raise DecryptError("bad CBC padding")
        padding = plaintext[len(plaintext) - padding_length - 1 :]
        if padding.count(padding_length) != len(padding):
            raise DecryptError("bad CBC padding")
        return plaintext[: len(plaintext) - padding_length - 1]


class _StreamOrNull:
    """RC4 (one keystream for the whole epoch) or the NULL cipher, each followed by an HMAC."""

    def __init__(self, key: bytes, mac: _Mac, rc4: bool) -> None:
        self._stream: CipherContext | None = None
        if rc4:
            self._stream = Cipher(ARC4(key), mode=None).decryptor()
        self._mac = mac

    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes:
        plaintext = fragment if self._stream is None else self._stream.update(fragment)
        if len(plaintext) < self._mac.length:
            raise DecryptError("record too short for its MAC")
        data = plaintext[: len(plaintext) - self._mac.length]
        self._mac.check(sequence, content_type, version, data, plaintext[len(data) :])
        return data


class _Tls13:
    """TLS 1.3 records: AAD is the record header, nonce is IV XOR sequence number (RFC 8446 5.2-5.3)."""

    def __init__(self, cipher: str, key: bytes, iv: bytes) -> None:
        if len(iv) != 12:
            raise ValueError("TLS 1.3 needs a 12-byte IV")
        self._aead, self._tag_length = _make_aead(cipher, key)
        self._iv = iv

    def open(self, sequence: int, content_type: int, version: int, fragment: bytes) -> bytes:
        if len(fragment) < self._tag_length:
            raise DecryptError("record too short for an AEAD tag")
        aad = struct.pack("!BHH", content_type, version, len(fragment))
        return _open_aead(self._aead, _xor_nonce(self._iv, sequence), fragment, aad)


def _split_inner_plaintext(inner: bytes) -> tuple[int, bytes]:
    # RFC 8446 5.4: content + content type byte + zero padding.  A record of
    # zeros only has no content type and is a protocol error.
    content = inner.rstrip(b"\x00")
    if not content:
        raise DecryptError("TLS 1.3 record has no inner content type")
    return content[-1], content[:-1]


def _check_key_length(suite: CipherSuite, key: bytes) -> None:
    if len(key) != suite.key_length:
        raise ValueError(f"{suite.name} needs a {suite.key_length}-byte key, got {len(key)} bytes")


class RecordDecrypter:
    """Decrypts the records of one direction under one set of keys.

    Build it with ``tls12()`` or ``tls13()``.  ``sequence`` is the sequence
    number of the next record, starting at 0 when the keys take effect.
    """

    def __init__(self, scheme: _Scheme, tls13: bool) -> None:
        self._scheme = scheme
        self._tls13 = tls13
        self.sequence = 0

    @classmethod
    def tls12(
        cls,
        version: int,
        suite: CipherSuite,
        key: bytes,
        iv: bytes,
        mac_key: bytes,
        encrypt_then_mac: bool,
    ) -> RecordDecrypter:
        """Build a TLS 1.0-1.2 decrypter from one direction's part of the key block.

        ``encrypt_then_mac`` is whether both hellos carried the RFC 7366
        extension, and applies to CBC suites only.  Raises ValueError for key
        or IV lengths that do not fit the suite, and for TLS 1.3 suites.
        """
        if suite.tls13:
            raise ValueError(f"{suite.name} is a TLS 1.3 suite")
        _check_key_length(suite, key)

        scheme: _Scheme
        if suite.cipher in ("AES-GCM", "AES-CCM", "AES-CCM-8"):
            scheme = _ExplicitNonceAead(suite.cipher, key, iv)
        elif suite.cipher == "CHACHA20-POLY1305":
            scheme = _ChaChaTls12(key, iv)
        elif suite.cipher in ("AES-CBC", "3DES"):
            mac = _Mac(suite.mac, mac_key)
            scheme = _Cbc(suite, version, key, iv, mac, encrypt_then_mac)
        else:
            # RC4 and NULL are not block ciphers, so RFC 7366 does not apply.
            mac = _Mac(suite.mac, mac_key)
            scheme = _StreamOrNull(key, mac, suite.cipher == "RC4")
        return cls(scheme, tls13=False)

    @classmethod
    def tls13(cls, suite: CipherSuite, key: bytes, iv: bytes) -> RecordDecrypter:
        """Build a TLS 1.3 decrypter from ``keyschedule.tls13_traffic_keys()`` output."""
        if not suite.tls13:
            raise ValueError(f"{suite.name} is not a TLS 1.3 suite")
        _check_key_length(suite, key)
        return cls(_Tls13(suite.cipher, key, iv), tls13=True)

    def decrypt(self, content_type: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        """Decrypt one record given its header fields; return (content type, plaintext).

        For TLS 1.3 the returned content type is the inner one and the zero
        padding is removed.  The sequence number advances even when
        DecryptError is raised, because the peer did send that record.
        """
        sequence = self.sequence
        self.sequence += 1
        plaintext = self._scheme.open(sequence, content_type, version, fragment)
        if self._tls13:
            return _split_inner_plaintext(plaintext)
        return content_type, plaintext
