"""TLS cipher suites: IANA names and the parameters record decryption needs.

The table lists code points from the IANA "TLS Cipher Suites" registry
(RFC 8446 B.4 for TLS 1.3, RFC 5246 A.5 and later RFCs for TLS 1.2 and
older).  Each entry is written as (code, IANA name), and the parameters are
derived from the name, because an IANA name spells out its key exchange,
bulk cipher, key length and MAC.

Pure module: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CipherSuite", "is_grease", "suite", "suite_name"]


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One cipher suite and the parameters needed to derive keys and decrypt.

    ``key_exchange`` is "RSA", "DHE", "ECDHE", "DH", "ECDH", "PSK",
    "DHE_PSK", "ECDHE_PSK", "RSA_PSK" or "TLS13".  Only "RSA" means the
    server's RSA private key can recover the premaster secret.
    ``authentication`` is "RSA", "ECDSA", "DSS", "anon", "PSK" or "" (TLS 1.3,
    where the suite does not fix it).  ``cipher`` is "AES-GCM", "AES-CBC",
    "CHACHA20-POLY1305", "AES-CCM", "AES-CCM-8", "NULL", "RC4" or "3DES".
    ``key_length`` is in bytes.  ``mac`` is the HMAC hash for non-AEAD
    suites and None for AEAD suites.  ``prf_hash`` is the TLS 1.2 PRF hash
    (RFC 5246 5) or the TLS 1.3 HKDF hash.
    """

    code: int
    name: str
    key_exchange: str
    cipher: str
    key_length: int
    mac: str | None
    prf_hash: str
    tls13: bool
    authentication: str

    @property
    def aead(self) -> bool:
        """True for GCM, CCM and ChaCha20-Poly1305 suites."""
        return self.mac is None


# Code points that are not negotiable suites but appear in ClientHello offers.
# suite() returns None for these, and suite_name() still names them.
_SIGNALLING: dict[int, str] = {
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",  # RFC 5746 3.3
    0x5600: "TLS_FALLBACK_SCSV",  # RFC 7507
}

_NAMES: tuple[tuple[int, str], ...] = (
    # TLS 1.3, RFC 8446 B.4.  The SM4 suites of RFC 8998 are left out.
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0x1304, "TLS_AES_128_CCM_SHA256"),
    (0x1305, "TLS_AES_128_CCM_8_SHA256"),
    # RSA key exchange.
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x003B, "TLS_RSA_WITH_NULL_SHA256"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0xC09C, "TLS_RSA_WITH_AES_128_CCM"),
    (0xC09D, "TLS_RSA_WITH_AES_256_CCM"),
    (0xC0A0, "TLS_RSA_WITH_AES_128_CCM_8"),
    (0xC0A1, "TLS_RSA_WITH_AES_256_CCM_8"),
    # Finite-field Diffie-Hellman, ephemeral.
    (0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
    (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"),
    (0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256"),
    (0x006A, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"),
    (0x00A2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00A3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM"),
    (0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM"),
    (0xC0A2, "TLS_DHE_RSA_WITH_AES_128_CCM_8"),
    (0xC0A3, "TLS_DHE_RSA_WITH_AES_256_CCM_8"),
    (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    # Anonymous finite-field Diffie-Hellman.
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"),
    (0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    (0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
    (0x006C, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"),
    (0x006D, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
    (0x00A6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
    (0x00A7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
    # Static elliptic-curve Diffie-Hellman (RFC 4492, RFC 5289).
    (0xC004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC00E, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"),
    (0xC00F, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"),
    (0xC025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC02A, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC02D, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02E, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384"),
    # Ephemeral elliptic-curve Diffie-Hellman with ECDSA certificates.
    (0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"),
    (0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    (0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    (0xC0AE, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    (0xC0AF, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    # Ephemeral elliptic-curve Diffie-Hellman with RSA certificates.
    (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    # Anonymous elliptic-curve Diffie-Hellman.
    (0xC015, "TLS_ECDH_anon_WITH_NULL_SHA"),
    (0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA"),
    (0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
    (0xC019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"),
    # Pre-shared keys (RFC 4279, RFC 5487, RFC 5489, RFC 6655, RFC 7905, RFC 8442).
    (0x002C, "TLS_PSK_WITH_NULL_SHA"),
    (0x008A, "TLS_PSK_WITH_RC4_128_SHA"),
    (0x008B, "TLS_PSK_WITH_3DES_EDE_CBC_SHA"),
    (0x008C, "TLS_PSK_WITH_AES_128_CBC_SHA"),
    (0x008D, "TLS_PSK_WITH_AES_256_CBC_SHA"),
    (0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384"),
    (0x00AE, "TLS_PSK_WITH_AES_128_CBC_SHA256"),
    (0x00AF, "TLS_PSK_WITH_AES_256_CBC_SHA384"),
    (0x00B0, "TLS_PSK_WITH_NULL_SHA256"),
    (0x00B1, "TLS_PSK_WITH_NULL_SHA384"),
    (0xC0A4, "TLS_PSK_WITH_AES_128_CCM"),
    (0xC0A5, "TLS_PSK_WITH_AES_256_CCM"),
    (0xC0A8, "TLS_PSK_WITH_AES_128_CCM_8"),
    (0xC0A9, "TLS_PSK_WITH_AES_256_CCM_8"),
    (0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0x00AA, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00AB, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384"),
    (0xCCAD, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0x00AC, "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00AD, "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384"),
    (0xCCAE, "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xC035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA"),
    (0xC036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA"),
    (0xC037, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"),
    (0xC038, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384"),
    (0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xD001, "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256"),
    (0xD002, "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384"),
    (0xD003, "TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256"),
    (0xD005, "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256"),
)

# Bulk cipher spellings in IANA names, longest first so "AES_128_CCM_8" wins
# over "AES_128_CCM".  Values are (cipher, key length in bytes).
_CIPHERS: tuple[tuple[str, str, int], ...] = (
    ("AES_128_CCM_8", "AES-CCM-8", 16),
    ("AES_256_CCM_8", "AES-CCM-8", 32),
    ("AES_128_CCM", "AES-CCM", 16),
    ("AES_256_CCM", "AES-CCM", 32),
    ("AES_128_GCM", "AES-GCM", 16),
    ("AES_256_GCM", "AES-GCM", 32),
    ("AES_128_CBC", "AES-CBC", 16),
    ("AES_256_CBC", "AES-CBC", 32),
    ("CHACHA20_POLY1305", "CHACHA20-POLY1305", 32),
    ("3DES_EDE_CBC", "3DES", 24),
    ("RC4_128", "RC4", 16),
    ("NULL", "NULL", 0),
)

_MAC_SUFFIXES = {"SHA": "SHA1", "SHA256": "SHA256", "SHA384": "SHA384", "MD5": "MD5"}

# Key exchange spelling in the name -> (key_exchange, authentication).
_KEY_EXCHANGES: dict[str, tuple[str, str]] = {
    "RSA": ("RSA", "RSA"),
    "DHE_RSA": ("DHE", "RSA"),
    "DHE_DSS": ("DHE", "DSS"),
    "DH_anon": ("DHE", "anon"),
    "ECDH_RSA": ("ECDH", "RSA"),
    "ECDH_ECDSA": ("ECDH", "ECDSA"),
    "ECDHE_RSA": ("ECDHE", "RSA"),
    "ECDHE_ECDSA": ("ECDHE", "ECDSA"),
    "ECDH_anon": ("ECDHE", "anon"),
    "PSK": ("PSK", "PSK"),
    "DHE_PSK": ("DHE_PSK", "PSK"),
    "ECDHE_PSK": ("ECDHE_PSK", "PSK"),
    "RSA_PSK": ("RSA_PSK", "PSK"),
}


def _cipher_of(bulk: str) -> tuple[str, int, str]:
    """Split the part after WITH_ into (cipher, key length, rest of name)."""
    for spelling, cipher, key_length in _CIPHERS:
        if bulk == spelling or bulk.startswith(spelling + "_"):
            return cipher, key_length, bulk[len(spelling) + 1 :]
    raise ValueError(f"unknown bulk cipher in suite name: {bulk}")


def _tls13_suite(code: int, name: str) -> CipherSuite:
    # RFC 8446 B.4: TLS_<AEAD>_<HASH>; the hash drives HKDF.
    bulk, _, hash_name = name[len("TLS_") :].rpartition("_")
    cipher, key_length, _ = _cipher_of(bulk)
    return CipherSuite(code, name, "TLS13", cipher, key_length, None, hash_name, True, "")


def _tls12_suite(code: int, name: str) -> CipherSuite:
    exchange, _, bulk = name[len("TLS_") :].partition("_WITH_")
    key_exchange, authentication = _KEY_EXCHANGES[exchange]
    cipher, key_length, suffix = _cipher_of(bulk)

    # AEAD names end with the PRF hash (GCM, ChaCha20) or with nothing (CCM).
    # Block and stream cipher names end with the HMAC hash.
    aead = cipher in ("AES-GCM", "AES-CCM", "AES-CCM-8", "CHACHA20-POLY1305")
    mac = None if aead else _MAC_SUFFIXES[suffix]

    # RFC 5246 5 and RFC 5289 3: suites named *_SHA384 use SHA-384 as the PRF
    # hash, all others use SHA-256 in TLS 1.2.
    prf_hash = "SHA384" if suffix == "SHA384" else "SHA256"
    return CipherSuite(
        code, name, key_exchange, cipher, key_length, mac, prf_hash, False, authentication
    )


def _build_table() -> dict[int, CipherSuite]:
    table: dict[int, CipherSuite] = {}
    for code, name in _NAMES:
        if 0x1301 <= code <= 0x13FF:
            table[code] = _tls13_suite(code, name)
        else:
            table[code] = _tls12_suite(code, name)
    return table


_TABLE = _build_table()


def is_grease(value: int) -> bool:
    """True for RFC 8701 GREASE values (0x0A0A, 0x1A1A, ... 0xFAFA)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def suite(code: int) -> CipherSuite | None:
    """Return the suite for a code point, or None when it is unknown or a signalling value."""
    return _TABLE.get(code)


def suite_name(code: int) -> str:
    """Return the IANA name, "GREASE" for RFC 8701 values, or "0x%04x" when unknown."""
    known = _TABLE.get(code)
    if known is not None:
        return known.name
    if code in _SIGNALLING:
        return _SIGNALLING[code]
    if is_grease(code):
        return "GREASE"
    return f"0x{code:04x}"
