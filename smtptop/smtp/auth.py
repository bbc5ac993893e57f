"""Following a SASL exchange (RFC 4954) far enough to name the user who authenticates.

Only the user name is extracted. Passwords and other credentials are read to find
the user name and then dropped; nothing here keeps or logs them.

Pure module: standard library only.
"""

from __future__ import annotations

import binascii
from base64 import b64decode


def decode_base64(data: str) -> bytes | None:
    """Decode a SASL base64 line, or return None when it is not valid base64."""
    if data == "=":  # RFC 4954 section 4: "=" is an empty initial response
        return b""
    try:
        return b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _text(raw: bytes) -> str | None:
    name = raw.decode("utf-8", errors="replace").strip()
    return name or None


class SaslExchange:
    """One AUTH exchange: the mechanism and the client responses seen so far."""

    __slots__ = ("mechanism", "responses")

    def __init__(self, mechanism: str) -> None:
        self.mechanism = mechanism.upper()
        self.responses = 0  # client responses, the initial response included

    def user_from_response(self, data: str) -> str | None:
        """Count one client response and return the user name it carries, if any."""
        self.responses += 1
        if data == "*":
            return None
        raw = decode_base64(data)
        if raw is None:
            return None
        if self.mechanism == "PLAIN":
            return _user_from_plain(raw)
        if self.mechanism == "LOGIN" and self.responses == 1:
            # draft-murchison-sasl-login: the first response is the user name,
            # the second the password.
            return _text(raw)
        if self.mechanism == "CRAM-MD5":
            # RFC 2195 section 2: "user SP hex-digest".
            return _text(raw.rpartition(b" ")[0])
        if self.mechanism == "XOAUTH2":
            return _user_from_xoauth2(raw)
        return None


def _user_from_plain(raw: bytes) -> str | None:
    # RFC 4616 section 2: authzid NUL authcid NUL passwd. The authcid is the user
    # whose password is checked; the authzid is only a request to act as another.
    parts = raw.split(b"\x00")
    if len(parts) != 3:
        return None
    return _text(parts[1]) or _text(parts[0])


def _user_from_xoauth2(raw: bytes) -> str | None:
    # Google's XOAUTH2 format: "user=NAME ^A auth=Bearer TOKEN ^A ^A".
    for field in raw.split(b"\x01"):
        if field.startswith(b"user="):
            return _text(field[5:])
    return None
