"""Reader for NSS key log files (SSLKEYLOGFILE), which may grow while smtptop runs.

Format (https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/index.html):
one secret per line, ``<label> <client random hex> <secret hex>``, plus two
older RSA forms, ``RSA Session-ID:<hex> Master-Key:<hex>`` and
``RSA <first 8 bytes of the encrypted premaster, hex> <premaster hex>``.
Lines starting with ``#`` and blank lines are skipped.  Lines with an unknown
label are skipped too, because newer writers add labels, and counted in
``unknown_lines``.
Malformed lines are counted in ``bad_lines`` and never echoed anywhere.

Growth: ``refresh()`` reads only the bytes after the last complete line.  A
last line without a newline is used when it already parses (a key log may end
without one), but is read again on the next refresh in case the writer was
still in the middle of it.  A file that shrank, was replaced (new inode) or
was rewritten in place (the 64 bytes before the read offset changed) is read
again from the start.  Secrets already learned are kept in every case.

This module reads a file but logs nothing about its content, and its
exception messages name the path only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

__all__ = ["TLS13_LABELS", "KeyLog", "KeyLogError"]

logger = logging.getLogger(__name__)

CLIENT_RANDOM_LENGTH = 32
MASTER_SECRET_LENGTH = 48

# Labels whose secret is a TLS 1.3 traffic or exporter secret (RFC 8446 7.1),
# as long as the suite's hash: 32 bytes for SHA-256, 48 for SHA-384.
TLS13_LABELS = frozenset(
    {
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EARLY_EXPORTER_SECRET",
        "EXPORTER_SECRET",
    }
)
_TLS13_SECRET_LENGTHS = (32, 48)

_SESSION_ID_PREFIX = "Session-ID:"
_MASTER_KEY_PREFIX = "Master-Key:"
_ENCRYPTED_PREFIX_LENGTH = 8
# Bytes kept from just before the read offset.  A file truncated and rewritten
# past its old size is only noticed when these bytes differ.
_TAIL_LENGTH = 64


class KeyLogError(OSError):
    """The key log file could not be read.  The message names the path and the fix."""


class _MalformedLine(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parsed line: the table it belongs to, its lookup key and its secret."""

    table: str  # "master", "session", "premaster" or a TLS 1.3 label
    key: bytes
    secret: bytes


def _hex(text: str, lengths: tuple[int, ...]) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise _MalformedLine() from None
    if len(value) not in lengths:
        raise _MalformedLine()
    return value


def _parse_rsa_line(fields: list[str]) -> _Entry:
    first, second = fields[1], fields[2]
    if first.startswith(_SESSION_ID_PREFIX) and second.startswith(_MASTER_KEY_PREFIX):
        # RFC 5246 7.4.1.2: a session ID is at most 32 bytes.
        session_id = _hex(first[len(_SESSION_ID_PREFIX) :], tuple(range(1, 33)))
        master = _hex(second[len(_MASTER_KEY_PREFIX) :], (MASTER_SECRET_LENGTH,))
        return _Entry("session", session_id, master)
    prefix = _hex(first, (_ENCRYPTED_PREFIX_LENGTH,))
    premaster = _hex(second, (MASTER_SECRET_LENGTH,))
    return _Entry("premaster", prefix, premaster)


def _parse_line(line: str) -> _Entry | None:
    """Parse one non-comment line; None for an unknown label."""
    fields = line.split()
    if len(fields) != 3:
        raise _MalformedLine()
    label = fields[0]
    if label == "RSA":
        return _parse_rsa_line(fields)
    if label == "CLIENT_RANDOM":
        client_random = _hex(fields[1], (CLIENT_RANDOM_LENGTH,))
        return _Entry("master", client_random, _hex(fields[2], (MASTER_SECRET_LENGTH,)))
    if label in TLS13_LABELS:
        client_random = _hex(fields[1], (CLIENT_RANDOM_LENGTH,))
        return _Entry(label, client_random, _hex(fields[2], _TLS13_SECRET_LENGTHS))
    return None


class KeyLog:
    """The secrets of one NSS key log file, re-read as it grows.

    The constructor does no I/O: call ``refresh()`` to read the file, and
    again whenever new sessions may have been logged.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.bad_lines = 0
        self.unknown_lines = 0
        self._offset = 0  # byte offset just after the last complete line read
        self._inode: tuple[int, int] | None = None
        self._tail = b""  # the bytes just before the offset, to notice a rewritten file
        self._pending: bytes = b""  # the last line without a newline, already parsed once
        self._pending_counted = False
        # (table, lookup key) -> secret; the table is "master", "session",
        # "premaster" or a TLS 1.3 label, and the lookup key a client random,
        # session ID or encrypted premaster prefix.
        self._secrets: dict[tuple[str, bytes], bytes] = {}

    def refresh(self) -> bool:
        """Read complete lines appended since the last call; return True when new secrets arrived.

        Raises KeyLogError when the file cannot be opened or read.
        """
        try:
            with open(self.path, "rb") as stream:
                status = os.fstat(stream.fileno())
                stream.seek(self._offset - len(self._tail))
                tail = stream.read(len(self._tail))
                self._restart_if_replaced(status, tail)
                stream.seek(self._offset)
                data = stream.read()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise KeyLogError(
                f"cannot read TLS key log {self.path}: {reason}; "
                "check the path and that it is readable"
            ) from None

        changed = self._consume(data)
        logger.debug(
            "key log %s: %d secrets, %d malformed lines",
            self.path,
            len(self._secrets),
            self.bad_lines,
        )
        return changed

    def _restart_if_replaced(self, status: os.stat_result, tail: bytes) -> None:
        # A new inode, a shorter file, or different bytes before the offset
        # (truncated and written again past the old size) all mean a new file.
        inode = (status.st_dev, status.st_ino)
        replaced = inode != self._inode or status.st_size < self._offset or tail != self._tail
        if self._inode is not None and replaced:
            logger.debug("key log %s was truncated or replaced; reading it again", self.path)
            self._offset = 0
            self._tail = b""
            self._pending = b""
            self._pending_counted = False
        self._inode = inode

    def _consume(self, data: bytes) -> bool:
        complete, newline, partial = data.rpartition(b"\n")
        changed = False
        if newline:
            for raw in complete.split(b"\n"):
                changed |= self._take_line(raw, count_bad=True)
            self._offset += len(complete) + 1
            self._tail = (complete + newline)[-_TAIL_LENGTH:]
            self._pending_counted = False

        # The offset stays before a partial last line, so it is read in full
        # again once the writer finishes it.
        # NOTE: a 48-byte TLS 1.3 secret cut after 32 bytes parses as a valid
        # 32-byte secret, and stays wrong until the next refresh reads the whole line.
        if partial and partial != self._pending:
            changed |= self._take_line(partial, count_bad=False)
        elif partial and not self._pending_counted:
            # Unchanged since the last refresh, so the writer is done with it.
            self._take_line(partial, count_bad=True)
            self._pending_counted = True
        self._pending = partial
        return changed

    def _take_line(self, raw: bytes, count_bad: bool) -> bool:
        """Parse and store one line; True when it added or changed a secret."""
        line = raw.decode("ascii", errors="replace").strip()
        if not line or line.startswith("#"):
            return False
        try:
            entry = _parse_line(line)
        except _MalformedLine:
            if count_bad:
                self.bad_lines += 1
            return False
        if entry is None:
            if count_bad:
                self.unknown_lines += 1
            return False
        return self._store(entry)

    def _store(self, entry: _Entry) -> bool:
        slot = (entry.table, entry.key)
        if self._secrets.get(slot) == entry.secret:
            return False
        self._secrets[slot] = entry.secret
        return True

    def master_secret(self, client_random: bytes) -> bytes | None:
        """Return the TLS 1.0-1.2 master secret logged as CLIENT_RANDOM, if any."""
        return self._secrets.get(("master", client_random))

    def tls13_secrets(self, client_random: bytes) -> dict[str, bytes]:
        """Return the TLS 1.3 secrets logged for a client random, by NSS label."""
        found = {}
        for label in TLS13_LABELS:
            secret = self._secrets.get((label, client_random))
            if secret is not None:
                found[label] = secret
        return found

    def session_master_secret(self, session_id: bytes) -> bytes | None:
        """Return the master secret logged as ``RSA Session-ID:... Master-Key:...``, if any."""
        return self._secrets.get(("session", session_id))

    def premaster_for_encrypted(self, encrypted_premaster_prefix8: bytes) -> bytes | None:
        """Return the premaster secret logged for the first 8 bytes of an encrypted premaster."""
        return self._secrets.get(("premaster", encrypted_premaster_prefix8))

    def __repr__(self) -> str:
        # Secrets stay out of the representation, which may end up in logs.
        return f"KeyLog({self.path!r}, {len(self._secrets)} secrets)"
