"""A short summary of an X.509 certificate seen in a TLS handshake.

Decoding is done by ``cryptography.x509``. The summary contains what an operator
checks at a glance: who the certificate names, who issued it, when it is
valid, and the public key's type and size. Nothing here verifies signatures
or chains.

Pure module: standard library and ``cryptography`` only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID

# Attribute names that RFC 4514 leaves to dotted OIDs, written as OpenSSL and
# most tools show them (RFC 4519 for serialNumber, PKCS #9 for emailAddress).
_ATTRIBUTE_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress", NameOID.SERIAL_NUMBER: "serialNumber"}


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """The fields of one certificate that smtptop shows.

    ``subject`` and ``issuer`` are RFC 4514 strings, with emailAddress and
    serialNumber named instead of given as dotted OIDs. ``sans`` contains the DNS
    names and IP addresses of the subjectAltName extension in their order.
    ``not_before`` and ``not_after`` are timezone-aware UTC. ``serial`` is the
    serial number in lower-case hexadecimal.
    """

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    key_type: str
    key_bits: int
    serial: str
    self_signed: bool

    def validity_at(self, when: datetime) -> str:
        """Return "valid", "expired" or "not yet valid" at ``when`` (a timezone-aware datetime)."""
        if when < self.not_before:
            return "not yet valid"
        if when > self.not_after:
            return "expired"
        return "valid"


def _subject_alternative_names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names = []
    for name in extension.value:
        if isinstance(name, x509.DNSName):
            names.append(name.value)
        elif isinstance(name, x509.IPAddress):
            names.append(str(name.value))
    return tuple(names)


def _key_type_and_bits(certificate: x509.Certificate) -> tuple[str, int]:
    """Return the public key's algorithm and size in bits, or ("unknown", 0)."""
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    # Edwards and Montgomery keys are named by their curve size (RFC 8032, RFC 7748).
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 448
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519", 256
    if isinstance(key, x448.X448PublicKey):
        return "X448", 448
    return type(key).__name__, 0


def _serial_hex(serial: int) -> str:
    # RFC 5280 section 4.1.2.2 requires a positive serial, but some issuers got it wrong.
    if serial < 0:
        return "-" + format(-serial, "x")
    return format(serial, "x")


# cryptography.x509 decoding errors that are not ValueError subclasses (cryptography 50).
_DECODE_ERRORS = (x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def summarize_certificate(der: bytes) -> CertificateSummary:
    """Summarise one DER-encoded certificate.

    Raises ValueError when the certificate does not decode, including the
    cryptography errors for an invalid version or a duplicate extension.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
        sans = _subject_alternative_names(certificate)
    except _DECODE_ERRORS as error:
        raise ValueError(f"invalid certificate: {error}") from error

    key_type, key_bits = _key_type_and_bits(certificate)
    return CertificateSummary(
        subject=certificate.subject.rfc4514_string(_ATTRIBUTE_NAMES),
        issuer=certificate.issuer.rfc4514_string(_ATTRIBUTE_NAMES),
        sans=sans,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        key_type=key_type,
        key_bits=key_bits,
        serial=_serial_hex(certificate.serial_number),
        self_signed=certificate.issuer == certificate.subject,
    )
