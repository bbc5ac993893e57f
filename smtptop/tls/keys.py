"""Every secret the user gave for decryption, in one place the TLS sessions ask.

The user may give a key log (``--keylog`` or ``SSLKEYLOGFILE``), an RSA key for
any server (``--rsa-key``) and Wireshark's RSA keys list (``--rsa-keys``).
``TlsKeys`` answers the questions a session asks while it decrypts: the master
secret for a client random, the TLS 1.3 secrets, the RSA key for a server. It
also remembers the master secrets it derived with an RSA key, by session ID and
ticket, so a resumed session decrypts too (RFC 5246 section 7.3, RFC 5077).

Nothing here logs or formats a secret; the problems it reports name files only.
"""

from __future__ import annotations

import logging
import os

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from smtptop.tls.keylog import KeyLog, KeyLogError
from smtptop.tls.rsa_keys import RsaKeyList

logger = logging.getLogger(__name__)

KEYLOG_ENVIRONMENT = "SSLKEYLOGFILE"
# A session that waits for its secrets keeps at most this many encrypted bytes.
WAIT_LIMIT_BYTES = 4 * 1024 * 1024


class TlsKeys:
    """The key log and RSA keys of one run, and the master secrets learned from them."""

    def __init__(
        self,
        keylog: KeyLog | None = None,
        rsa: list[RsaKeyList] | None = None,
        *,
        may_grow: bool = False,
    ) -> None:
        self.keylog = keylog
        self.rsa = rsa or []
        # True on a live capture: the key log may still get the secrets of a session
        # already seen, so sessions keep their encrypted records until it does.
        self.may_grow = may_grow
        self.generation = 0  # counts the refreshes that brought new secrets
        self.problem: str | None = None  # the last error reading the key log, in words
        self._learned: dict[bytes, bytes] = {}  # session ID or ticket to master secret

    @classmethod
    def from_settings(
        cls,
        keylog_path: str | None,
        rsa_key_path: str | None,
        rsa_keys_path: str | None,
        *,
        may_grow: bool,
    ) -> TlsKeys | None:
        """Load what the settings name; None when they name nothing.

        RSA key problems raise ``ValueError`` with a message for the user, because a
        key given on the command line that cannot be read is a mistake to fix before
        starting. A key log that does not exist yet is normal on a live capture (the
        MTA creates it when it starts), so it is watched instead.
        """
        rsa: list[RsaKeyList] = []
        if rsa_keys_path:
            rsa.append(RsaKeyList.from_wireshark_file(rsa_keys_path))
        if rsa_key_path:
            rsa.append(RsaKeyList.for_any_server(rsa_key_path))
        keylog = KeyLog(keylog_path) if keylog_path else None
        if keylog is None and not rsa:
            return None
        keys = cls(keylog, rsa, may_grow=may_grow)
        keys.refresh()
        return keys

    def refresh(self) -> bool:
        """Read what was appended to the key log; True when new secrets arrived."""
        if self.keylog is None:
            return False
        if self.may_grow and not os.path.exists(self.keylog.path):
            # The MTA creates the key log when it starts: wait for it quietly.
            if self.problem is None:
                logger.warning("TLS key log %s does not exist yet; waiting for it", self.keylog.path)
            self.problem = f"waiting for the TLS key log {self.keylog.path}"
            return False
        try:
            grew = self.keylog.refresh()
        except KeyLogError as error:
            if str(error) != self.problem:
                logger.warning("%s", error)
            self.problem = str(error)
            return False
        self.problem = None
        if grew:
            self.generation += 1
        return grew

    # ------------------------------------------------------------------ lookups

    def master_secret(self, client_random: bytes) -> bytes | None:
        if self.keylog is None:
            return None
        return self.keylog.master_secret(client_random)

    def tls13_secrets(self, client_random: bytes) -> dict[str, bytes]:
        if self.keylog is None:
            return {}
        return self.keylog.tls13_secrets(client_random)

    def resumed_master(self, session_id: bytes, ticket: bytes) -> bytes | None:
        """Return the master secret of the session being resumed, by its ID or ticket."""
        for handle in (session_id, ticket):
            if not handle:
                continue
            if handle in self._learned:
                return self._learned[handle]
            if self.keylog is not None:
                master = self.keylog.session_master_secret(handle)
                if master is not None:
                    return master
        return None

    def premaster_from_log(self, encrypted_premaster: bytes) -> bytes | None:
        if self.keylog is None or len(encrypted_premaster) < 8:
            return None
        return self.keylog.premaster_for_encrypted(encrypted_premaster[:8])

    def remember(self, handle: bytes, master: bytes) -> None:
        """Keep a derived master secret under a session ID or ticket, for resumption."""
        if handle:
            self._learned[handle] = master

    def rsa_keys_for(self, server: tuple[str, int] | None) -> list[RSAPrivateKey]:
        host, port = server if server is not None else ("", 0)
        return [key for keys in self.rsa for key in keys.keys_for(host, port)]

    def rsa_key_for_certificate(
        self, certificate: bytes, server: tuple[str, int] | None
    ) -> RSAPrivateKey | None:
        host, port = server if server is not None else ("", 0)
        for keys in self.rsa:
            key = keys.matching_key(certificate, host, port)
            if key is not None:
                return key
        return None


def keylog_path_from_environment() -> str | None:
    """Return the key log named by ``SSLKEYLOGFILE``, the variable browsers and MTAs honour."""
    path = os.environ.get(KEYLOG_ENVIRONMENT, "").strip()
    return path or None
