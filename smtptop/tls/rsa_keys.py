"""RSA private keys for decrypting TLS sessions that use RSA key exchange.

Keys come from a single file (``for_any_server``) or from a list in the format
of Wireshark's RSA keys list.  That is the "ssl_keys" UAT file and the former
``ssl.keys_list`` preference (Wireshark User's Guide, "RSA Keys"), with one
entry per line, comma-separated and optionally double-quoted:
``ip,port,protocol,keyfile[,password]``.  The IP may be "any" or an
unspecified address, and the port "any", "0" or "start_tls", to match every
server.  The two-field form ``keyfile[,password]`` of Wireshark's newer
"rsa_keys" UAT applies to every server.  A relative key file is looked up in
the list file's directory.  The protocol field is ignored.

Key files are recognised by content, not by name: PEM (PKCS#1 or PKCS#8,
encrypted or not) or DER (PKCS#12 or a bare private key).

Error messages name the file and the fix and never contain key material or
passwords.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_pem_private_key,
    pkcs12,
)

__all__ = ["RsaKeyError", "RsaKeyList", "load_private_key"]

logger = logging.getLogger(__name__)

_ANY_ADDRESS = frozenset({"", "any", "0.0.0.0", "::"})
# NOTE: Wireshark uses "start_tls" to mean "the port of a STARTTLS upgrade";
# smtptop only decrypts SMTP, so it is treated as "every port".
_ANY_PORT = frozenset({"", "any", "0", "start_tls"})


class RsaKeyError(ValueError):
    """An RSA key or key list could not be used.  The message names the file and the fix."""


def _read(path: str, description: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RsaKeyError(
            f"cannot read {description} {path}: {reason}; check the path and that it is readable"
        ) from None


def _load_pem(path: str, data: bytes, password: bytes | None) -> object:
    try:
        return load_pem_private_key(data, password)
    except TypeError:
        # cryptography raises TypeError for a missing or unneeded password.
        if password is None:
            raise RsaKeyError(
                f"RSA key file {path} is encrypted; give its password in an --rsa-keys list line "
                "(ip,port,protocol,keyfile,password)"
            ) from None
        return load_pem_private_key(data, None)
    except ValueError:
        if password is not None:
            raise RsaKeyError(
                f"cannot decrypt RSA key file {path}: wrong password or unsupported format"
            ) from None
        raise RsaKeyError(
            f"RSA key file {path} contains no readable private key; "
            "expected PEM (PKCS#1 or PKCS#8) or PKCS#12"
        ) from None


def _load_der(path: str, data: bytes, password: bytes | None) -> object:
    try:
        return load_der_private_key(data, password)
    except (TypeError, ValueError):
        pass

    # PKCS#12 files made with an empty password need b"" rather than None.
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            key, _, _ = pkcs12.load_key_and_certificates(data, attempt)
        except ValueError:
            continue
        if key is None:
            raise RsaKeyError(f"PKCS#12 file {path} contains no private key")
        return key

    if password is None:
        raise RsaKeyError(
            f"cannot read RSA key file {path}: not a PEM or PKCS#12 key, "
            "or it is encrypted and needs a password in an --rsa-keys list line "
            "(ip,port,protocol,keyfile,password)"
        )
    raise RsaKeyError(
        f"cannot decrypt RSA key file {path}: wrong password or not a PEM or PKCS#12 key"
    )


def load_private_key(path: str, password: str | None = None) -> RSAPrivateKey:
    """Load an RSA private key from PEM or PKCS#12, recognised by content.

    Raises RsaKeyError when the file is unreadable, the password is wrong or
    missing, or the key is not RSA.
    """
    data = _read(path, "RSA key file")
    secret = password.encode("utf-8") if password is not None else None
    if b"-----BEGIN" in data:
        key = _load_pem(path, data, secret)
    else:
        key = _load_der(path, data, secret)
    if not isinstance(key, RSAPrivateKey):
        raise RsaKeyError(
            f"key file {path} contains a {type(key).__name__}, not an RSA private key; "
            "only RSA key exchange can be decrypted with a private key"
        )
    return key


@dataclass(frozen=True, slots=True)
class _Entry:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # None matches every server
    port: int | None  # None matches every port
    key: RSAPrivateKey

    def matches(self, server_ip: str, server_port: int) -> bool:
        if self.port is not None and self.port != server_port:
            return False
        if self.address is None:
            return True
        try:
            return ipaddress.ip_address(server_ip) == self.address
        except ValueError:
            return False


def _parse_address(text: str, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text.lower() in _ANY_ADDRESS:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise RsaKeyError(
            f"{where}: invalid IP address {text!r}; use an address or 'any'"
        ) from None
    return None if address.is_unspecified else address


def _parse_port(text: str, where: str) -> int | None:
    if text.lower() in _ANY_PORT:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RsaKeyError(f"{where}: invalid port {text!r}; use 1-65535, 'any' or 'start_tls'")
    return int(text)


class RsaKeyList:
    """RSA private keys, each for one server address and port or for every server."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = entries

    @classmethod
    def for_any_server(cls, keyfile: str, password: str | None = None) -> RsaKeyList:
        """Use one key for every server."""
        return cls([_Entry(None, None, load_private_key(keyfile, password))])

    @classmethod
    def from_wireshark_file(cls, path: str) -> RsaKeyList:
        """Load a Wireshark RSA keys list and every key it names.

        Raises RsaKeyError naming the list file and line for a malformed line,
        and naming the key file for a key that cannot be loaded.
        """
        text = _read(path, "RSA keys list").decode("utf-8", errors="replace")
        base = os.path.dirname(os.path.abspath(path))
        entries = []
        for number, fields in _list_lines(text):
            entries.append(_parse_entry(fields, base, f"{path} line {number}"))
        logger.debug("RSA keys list %s: %d keys", path, len(entries))
        return cls(entries)

    def keys_for(self, server_ip: str, server_port: int) -> list[RSAPrivateKey]:
        """Return the keys that apply to a server, in list order."""
        return [entry.key for entry in self._entries if entry.matches(server_ip, server_port)]

    def matching_key(
        self, certificate_der: bytes, server_ip: str, server_port: int
    ) -> RSAPrivateKey | None:
        """Return the key for this server whose modulus equals the certificate's, if any."""
        try:
            public_key = x509.load_der_x509_certificate(certificate_der).public_key()
        except ValueError:
            return None
        if not isinstance(public_key, RSAPublicKey):
            return None
        modulus = public_key.public_numbers().n
        for key in self.keys_for(server_ip, server_port):
            if key.public_key().public_numbers().n == modulus:
                return key
        return None

    def __len__(self) -> int:
        return len(self._entries)


def _list_lines(text: str) -> list[tuple[int, list[str]]]:
    """Return (line number, fields) for each entry line, skipping blanks and '#' comments."""
    result = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = next(csv.reader([stripped], skipinitialspace=True))
        result.append((number, [field.strip() for field in fields]))
    return result


def _parse_entry(fields: list[str], base: str, where: str) -> _Entry:
    if len(fields) in (1, 2):
        address, port = None, None
        keyfile, password = fields[0], (fields[1] if len(fields) == 2 else "")
    elif len(fields) in (4, 5):
        address = _parse_address(fields[0], where)
        port = _parse_port(fields[1], where)
        keyfile, password = fields[3], (fields[4] if len(fields) == 5 else "")
    else:
        raise RsaKeyError(
            f"{where}: expected ip,port,protocol,keyfile[,password] or keyfile[,password]"
        )
    if not keyfile:
        raise RsaKeyError(f"{where}: the key file field is empty")

    keyfile = os.path.join(base, os.path.expanduser(keyfile))
    # An empty password field means "no password" in Wireshark's lists.
    key = load_private_key(keyfile, password or None)
    return _Entry(address, port, key)
