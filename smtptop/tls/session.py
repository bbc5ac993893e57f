"""One TLS session as a passive observer follows it: records in, handshake facts and plaintext out.

Theory of operation
-------------------
The SMTP conversation hands a ``TlsSession`` every byte of a direction once
TLS has started there (after STARTTLS, or from the first byte on implicit
TLS). Each direction has a ``RecordReader``, which cuts the bytes into TLS
records, and a ``HandshakeReader``, which joins handshake messages across
records. Records are handled in the order they were captured.

Records in the clear are read as they come: the hellos, the certificate, the
key exchange and alerts, each noted as a timed ``HandshakeStep``. In TLS 1.2
a direction is encrypted after its ChangeCipherSpec record; in TLS 1.3 every
application_data record after the ServerHello is (RFC 8446 section 5).

An encrypted record is decrypted when the keys allow it. Keys come from the
key log (TLS 1.2 master secret or TLS 1.3 traffic secrets, both found by the
ClientHello's random). For TLS 1.2 with RSA key exchange they may also come
from the server's private key, which decrypts the premaster secret in the
ClientKeyExchange (RFC 5246 section 7.4.7.1). Decrypted handshake messages go through the same
handshake reader, and decrypted application data comes out of ``feed`` for
the SMTP parser. Without keys, the steps that hide in encrypted records are
inferred from their position (the first record after ChangeCipherSpec is the
Finished message) and marked as encrypted.

A session that cannot decrypt gives the reason in one line (``decrypt_error``). On a
live capture the key log may grow later, so encrypted records are kept, up to
a bound, and ``retry`` decrypts them once the secrets arrive.

When a direction's bytes stop being TLS records, typically a plaintext SMTP
reply after a fatal alert, the rest of that direction is handed back as
``Fallback`` output, so the SMTP parser reads it as text again.

Pure module: standard library, ``cryptography`` (through the tls helpers) and
``smtptop.direction``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from smtptop.direction import Direction
from smtptop.tls.certificate import CertificateSummary, summarize_certificate
from smtptop.tls.handshake import (
    CERTIFICATE,
    CLIENT_HELLO,
    CLIENT_KEY_EXCHANGE,
    ENCRYPTED_EXTENSIONS,
    FINISHED,
    KEY_UPDATE,
    NEW_SESSION_TICKET,
    SERVER_HELLO,
    ClientHello,
    HandshakeError,
    HandshakeMessage,
    HandshakeReader,
    ServerHello,
    parse_alerts,
    parse_certificate,
    parse_client_hello,
    parse_encrypted_extensions,
    parse_new_session_ticket,
    parse_server_hello,
)
from smtptop.tls.keys import WAIT_LIMIT_BYTES, TlsKeys
from smtptop.tls.keyschedule import (
    decrypt_rsa_premaster,
    extended_master_secret,
    key_block,
    master_secret,
    tls13_next_secret,
    tls13_traffic_keys,
    transcript_hash,
)
from smtptop.tls.names import (
    alert_level_name,
    alert_name,
    extension_name,
    group_name,
    handshake_name,
    is_grease,
    version_name,
)
from smtptop.tls.protection import DecryptError, RecordDecrypter
from smtptop.tls.records import (
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    HANDSHAKE,
    RecordReader,
    TlsRecord,
)
from smtptop.tls.suites import CipherSuite, suite, suite_name
from smtptop.tls.summary import CertificateInfo, HandshakeStep, TlsAlert, TlsSummary

logger = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

TLS13 = 0x0304
TLS12 = 0x0303
# Ciphers the record layer can decrypt. Others (such as DES or Camellia) are named but not decrypted.
DECRYPTABLE = frozenset({"AES-GCM", "AES-CBC", "CHACHA20-POLY1305", "AES-CCM", "AES-CCM-8", "NULL", "RC4", "3DES"})
TLS13_SECRETS = (
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
)
NO_KEYS = "no keys given: pass --keylog FILE (or set SSLKEYLOGFILE) or --rsa-key FILE"
NOT_CAPTURED = (
    "the handshake was not captured (the capture started after it), so no key can be matched"
)


@dataclass(frozen=True, slots=True)
class Decrypted:
    """Application data of one record, decrypted."""

    direction: Direction
    data: bytes
    ts: float


@dataclass(frozen=True, slots=True)
class Fallback:
    """Bytes of a direction that stopped being TLS records, to be read as plaintext again."""

    direction: Direction
    data: bytes
    ts: float


Output = Decrypted | Fallback


class _Side:
    """Per-direction state: readers, the cipher state and what was seen."""

    __slots__ = (
        "cipher_changed",
        "decrypter",
        "encrypted_records",
        "failed",
        "finished_ts",
        "first_data_ts",
        "handshake",
        "reader",
        "rekey",
        "secret",
        "tls13_application",
    )

    def __init__(self) -> None:
        self.reader = RecordReader()
        self.handshake = HandshakeReader()
        self.cipher_changed = False  # TLS 1.2 ChangeCipherSpec seen: later records are encrypted
        self.decrypter: RecordDecrypter | None = None
        self.rekey = False  # build a new decrypter before the next encrypted record
        self.secret: bytes | None = None  # the current TLS 1.3 traffic secret
        self.tls13_application = False  # TLS 1.3: the handshake keys gave way to the traffic keys
        self.encrypted_records = 0
        self.failed = False  # a record failed to decrypt: the rest of the direction stays opaque
        self.finished_ts: float | None = None
        self.first_data_ts: float | None = None


class TlsSession:
    """The negotiation and, with keys, the plaintext of one TLS session."""

    def __init__(self, keys: TlsKeys | None = None, server: tuple[str, int] | None = None) -> None:
        self._keys = keys
        self._server = server
        self._sides = {C2S: _Side(), S2C: _Side()}
        self.client_hello: ClientHello | None = None  # the first, for the summary
        self.server_hello: ServerHello | None = None  # the first that is not a HelloRetryRequest
        self._hello: ClientHello | None = None  # the newest, for the keys (renegotiation)
        self._server_hello: ServerHello | None = None
        self.retry_requested = False
        self.certificates: list[bytes] = []
        self._certificate_summary: CertificateSummary | None = None
        self._client_key_exchange: bytes | None = None
        self._alpn: str | None = None  # TLS 1.3: from EncryptedExtensions, once decrypted
        self._ticket = b""  # NewSessionTicket from the server (TLS 1.2)
        self._transcript: list[
            bytes
        ] = []  # handshake messages up to the ClientKeyExchange (RFC 7627)
        self._transcript_open = True
        self._master: bytes | None = None
        self.alerts: list[TlsAlert] = []
        self.steps: list[HandshakeStep] = []
        self._new_steps: list[HandshakeStep] = []  # steps not yet taken by take_new_steps
        self.notes: list[str] = []
        self.records = 0
        self.decrypted_records = 0
        self.error: str | None = None
        self._final_error = False  # retrying with more secrets cannot help
        self._waiting: list[tuple[Direction, TlsRecord]] = []
        self._waiting_bytes = 0
        self._fell_back: set[Direction] = set()
        self._out: list[Output] = []

    # ------------------------------------------------------------------ input

    def feed(self, direction: Direction, data: bytes, ts: float) -> list[Output]:
        """Read the next bytes of a direction; return decrypted data and bytes that are not TLS."""
        side = self._sides[direction]
        for record in side.reader.feed(data, ts):
            self._record(direction, record)
        if side.reader.broken and direction not in self._fell_back:
            self._leave(direction, side, ts)
        return self._take()

    def _leave(self, direction: Direction, side: _Side, ts: float) -> None:
        """Hand back a direction whose bytes stopped being records after an alert, if they read as SMTP.

        A server that refuses TLS with an alert may go on in plaintext ("454 ..."), and
        its client with it. Other bytes mean the records lost their boundaries, and the
        direction stays opaque.
        """
        head = side.reader.leftover[:4]
        if len(head) < 4:
            return
        if not self.alerts or not _reads_as_smtp(direction, head):
            self._note(
                "bytes that are neither TLS records nor SMTP: the rest of this direction is not read"
            )
            side.reader.lose_sync()
            return
        self._fell_back.add(direction)
        self._out.append(Fallback(direction, side.reader.take_leftover(), ts))

    def gap(self, direction: Direction) -> None:
        """Note a hole in a direction, which loses its record boundaries and cipher state."""
        side = self._sides[direction]
        side.reader.lose_sync()
        if side.encrypted_records or side.cipher_changed:
            side.failed = True
            self._note("bytes missing from the capture: the rest of this direction stays encrypted")

    def retry(self) -> list[Output]:
        """Decrypt the records kept while their secrets were missing; call when the key log grew."""
        if not self._waiting or self._final_error:
            return []
        waiting, self._waiting = self._waiting, []
        self._waiting_bytes = 0
        self.error = None
        # The steps inferred from encrypted records give way to the decrypted ones.
        self.steps = [step for step in self.steps if not step.encrypted]
        for side in self._sides.values():
            side.first_data_ts = None
        for direction, record in waiting:
            self._encrypted(direction, record, replay=True)
        return self._take()

    def take_new_steps(self) -> list[HandshakeStep]:
        """Return the steps seen since the last call, for the transcript."""
        steps, self._new_steps = self._new_steps, []
        return steps

    @property
    def fell_back(self) -> frozenset[Direction]:
        """Directions whose bytes stopped being TLS records."""
        return frozenset(self._fell_back)

    @property
    def waiting(self) -> bool:
        """True while encrypted records wait for secrets that a growing key log may bring."""
        return bool(self._waiting)

    @property
    def version(self) -> int | None:
        hello = self._server_hello
        return hello.selected_version if hello is not None else None

    @property
    def failed(self) -> bool:
        """A fatal alert before the handshake finished, or a peer that left TLS."""
        if self._fell_back:
            return True
        finished = (
            self._sides[C2S].finished_ts is not None and self._sides[S2C].finished_ts is not None
        )
        return not finished and any(alert.level == "fatal" for alert in self.alerts)

    @property
    def decrypted(self) -> bool:
        return self.decrypted_records > 0

    # ------------------------------------------------------------------ records

    def _take(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def _record(self, direction: Direction, record: TlsRecord) -> None:
        self.records += 1
        side = self._sides[direction]
        content_type = record.content_type
        if self._is_encrypted(side, content_type):
            self._encrypted(direction, record, replay=False)
        elif content_type == CHANGE_CIPHER_SPEC:
            # TLS 1.3 sends a dummy ChangeCipherSpec for middleboxes (RFC 8446 appendix D.4).
            if self.version != TLS13:
                side.cipher_changed = True
                side.rekey = True
                self._step("ChangeCipherSpec", direction, record.ts)
        elif content_type == HANDSHAKE:
            self._handshake_bytes(direction, record.fragment, record.ts)
        elif content_type == ALERT:
            self._alerts(direction, record.fragment, record.ts)
        else:
            self._note(f"unexpected {content_type} record in the clear")

    def _is_encrypted(self, side: _Side, content_type: int) -> bool:
        # Application data is never sent in the clear. Before a ServerHello it means the
        # capture started mid-session, and in TLS 1.3 every protected record has this type.
        return side.cipher_changed or content_type == APPLICATION_DATA

    def _handshake_bytes(self, direction: Direction, fragment: bytes, ts: float) -> None:
        try:
            messages = self._sides[direction].handshake.feed(fragment, ts)
        except HandshakeError as error:
            self._note(f"unreadable handshake data: {error}")
            return
        for message in messages:
            try:
                self._handshake(direction, message)
            except HandshakeError as error:
                self._note(f"malformed {_step_name(message.msg_type)}: {error}")

    def _alerts(self, direction: Direction, fragment: bytes, ts: float) -> None:
        try:
            alerts = parse_alerts(fragment)
        except ValueError as error:
            self._note(f"malformed alert: {error}")
            return
        for alert in alerts:
            level = alert_level_name(alert.level)
            description = alert_name(alert.description)
            self.alerts.append(TlsAlert(level, description, alert.description, direction, ts))
            self._step("alert", direction, ts, f"{level} {description} ({alert.description})")

    # ------------------------------------------------------------------ handshake

    def _handshake(self, direction: Direction, message: HandshakeMessage) -> None:
        kind = message.msg_type
        if self._transcript_open:
            self._transcript.append(message.raw)
        if kind == CLIENT_HELLO:
            self._client_hello(message)
        elif kind == SERVER_HELLO:
            self._server_hello_message(message)
        elif kind == CERTIFICATE:
            self._certificate(direction, message)
        elif kind == CLIENT_KEY_EXCHANGE:
            self._client_key_exchange = message.body
            self._transcript_open = False
            self._step("ClientKeyExchange", direction, message.ts)
        elif kind == NEW_SESSION_TICKET:
            self._new_session_ticket(direction, message)
        elif kind == FINISHED:
            self._finished(direction, message.ts)
        elif kind == KEY_UPDATE:
            self._key_update(direction, message.ts)
        elif kind == ENCRYPTED_EXTENSIONS:
            # TLS 1.3 sends the server's ALPN choice here (RFC 8446 section 4.3.1).
            self._alpn = parse_encrypted_extensions(message.body).alpn
            self._step("EncryptedExtensions", direction, message.ts)
        else:
            self._step(_step_name(kind), direction, message.ts)

    def _client_hello(self, message: HandshakeMessage) -> None:
        hello = parse_client_hello(message.body)
        if self.client_hello is None:
            self.client_hello = hello
        elif not self.retry_requested:
            # A new handshake on the same connection (renegotiation, RFC 5746): the
            # ClientKeyExchange transcript starts again.
            self._transcript = [message.raw]
            self._transcript_open = True
        self._hello = hello
        versions = [version_name(v) for v in hello.supported_versions if not is_grease(v)]
        detail = ", ".join(versions) if versions else version_name(hello.legacy_version)
        if hello.sni:
            detail += f", SNI {hello.sni}"
        self._step("ClientHello", C2S, message.ts, detail)

    def _server_hello_message(self, message: HandshakeMessage) -> None:
        hello = parse_server_hello(message.body)
        if hello.is_retry_request:
            self.retry_requested = True
            group = group_name(hello.key_share_group) if hello.key_share_group is not None else ""
            self._step("HelloRetryRequest", S2C, message.ts, group)
            return
        if self.server_hello is None:
            self.server_hello = hello
        self._server_hello = hello
        self._master = None
        detail = f"{version_name(hello.selected_version)}, {suite_name(hello.cipher_suite)}"
        resumed = self._resumed_by(self._hello, hello) if self._hello is not None else ""
        if resumed:
            detail += f", resumed by {resumed}"
        self._step("ServerHello", S2C, message.ts, detail)
        if hello.selected_version == TLS13:
            self._transcript_open = False
            for side in self._sides.values():
                side.rekey = True

    def _certificate(self, direction: Direction, message: HandshakeMessage) -> None:
        certificates = parse_certificate(message.body, self.version == TLS13)
        detail = f"{len(certificates)} certificate{'s' if len(certificates) != 1 else ''}"
        if direction is S2C and certificates:
            self.certificates = certificates
            try:
                self._certificate_summary = summarize_certificate(certificates[0])
                detail = f"{self._certificate_summary.subject}, {detail}"
            except ValueError as error:
                self._note(f"unreadable server certificate: {error}")
        self._step("Certificate", direction, message.ts, detail)

    def _new_session_ticket(self, direction: Direction, message: HandshakeMessage) -> None:
        tls13 = self.version == TLS13
        try:
            ticket = parse_new_session_ticket(message.body, tls13)
        except HandshakeError as error:
            self._note(f"malformed NewSessionTicket: {error}")
            ticket = b""
        if not tls13 and ticket:
            self._ticket = ticket
            if self._keys is not None and self._master is not None:
                self._keys.remember(ticket, self._master)
        self._step("NewSessionTicket", direction, message.ts)

    def _finished(self, direction: Direction, ts: float) -> None:
        side = self._sides[direction]
        if side.finished_ts is None:
            side.finished_ts = ts
        self._step("Finished", direction, ts)
        if self.version == TLS13 and not side.tls13_application:
            # RFC 8446 section 7.1: the records after a side's Finished use its traffic secret.
            side.tls13_application = True
            side.rekey = True

    def _key_update(self, direction: Direction, ts: float) -> None:
        side = self._sides[direction]
        suite_info = self._suite()
        if side.secret is not None and suite_info is not None:
            side.secret = tls13_next_secret(suite_info.prf_hash, side.secret)
            key, iv = tls13_traffic_keys(suite_info, side.secret)
            side.decrypter = RecordDecrypter.tls13(suite_info, key, iv)
        self._step("KeyUpdate", direction, ts)

    # ------------------------------------------------------------------ decryption

    def _encrypted(self, direction: Direction, record: TlsRecord, replay: bool) -> None:
        side = self._sides[direction]
        if not replay:
            side.encrypted_records += 1
            if self._waiting:
                # Records already wait for secrets: this one must decrypt after them.
                self._infer_step(direction, side, record)
                self._wait(direction, record)
                return
        opened = self._decrypt(direction, side, record)
        if opened is not None:
            self.decrypted_records += 1
            self._plaintext(direction, opened[0], opened[1], record.ts)
            return
        if not replay:
            self._infer_step(direction, side, record)
        if not side.failed:
            self._wait(direction, record)

    def _decrypt(
        self, direction: Direction, side: _Side, record: TlsRecord
    ) -> tuple[int, bytes] | None:
        """Open one record; None when there are no keys for it or the direction failed before."""
        if side.failed:
            return None
        if side.rekey or side.decrypter is None:
            side.decrypter = self._new_decrypter(direction, side)
            if side.decrypter is None:
                return None
            side.rekey = False
        try:
            return side.decrypter.decrypt(record.content_type, record.version, record.fragment)
        except DecryptError as error:
            side.failed = True
            self.error = f"decryption failed: {error} (the secrets do not fit this session)"
            self._final_error = True
            return None

    def _plaintext(
        self, direction: Direction, content_type: int, plaintext: bytes, ts: float
    ) -> None:
        side = self._sides[direction]
        if content_type == APPLICATION_DATA:
            if side.first_data_ts is None:
                side.first_data_ts = ts
                self._step("application data", direction, ts)
            if plaintext:
                self._out.append(Decrypted(direction, plaintext, ts))
        elif content_type == HANDSHAKE:
            self._handshake_bytes(direction, plaintext, ts)
        elif content_type == ALERT:
            self._alerts(direction, plaintext, ts)
        elif content_type == CHANGE_CIPHER_SPEC:
            side.rekey = True  # a renegotiated handshake takes effect (RFC 5246 section 7.1)

    def _infer_step(self, direction: Direction, side: _Side, record: TlsRecord) -> None:
        """Name what an encrypted record most likely holds, from its position, for the timeline."""
        count = side.encrypted_records
        tls13 = self.version == TLS13
        if record.content_type == ALERT:
            self._step("alert", direction, record.ts, "encrypted", encrypted=True)
            return
        if count == 1:
            if tls13 and direction is S2C:
                self._step("encrypted handshake", direction, record.ts, encrypted=True)
                return
            if side.finished_ts is None:
                side.finished_ts = record.ts
            self._step("Finished", direction, record.ts, encrypted=True)
        elif count == 2 and record.content_type == APPLICATION_DATA and side.first_data_ts is None:
            if tls13 and direction is S2C:
                # The server's encrypted flight may span several records: its end is unknown.
                return
            side.first_data_ts = record.ts
            self._step("application data", direction, record.ts, encrypted=True)

    def _wait(self, direction: Direction, record: TlsRecord) -> None:
        keys = self._keys
        if keys is None or not keys.may_grow or self._final_error:
            return
        size = len(record.fragment)
        if self._waiting_bytes + size > WAIT_LIMIT_BYTES:
            self._final_error = True
            self._waiting = []
            self.error = "too many encrypted bytes arrived before their secrets; this session stays encrypted"
            return
        self._waiting_bytes += size
        self._waiting.append((direction, record))

    def _suite(self) -> CipherSuite | None:
        hello = self._server_hello
        return suite(hello.cipher_suite) if hello is not None else None

    def _new_decrypter(self, direction: Direction, side: _Side) -> RecordDecrypter | None:
        """Build the decrypter for a direction's next records, or set ``error`` saying why not."""
        hello, server_hello = self._hello, self._server_hello
        if hello is None or server_hello is None:
            self._fail(NOT_CAPTURED, final=True)
            return None
        if self._keys is None:
            self._fail(NO_KEYS, final=True)
            return None
        suite_info = suite(server_hello.cipher_suite)
        name = suite_name(server_hello.cipher_suite)
        if suite_info is None or suite_info.cipher not in DECRYPTABLE:
            self._fail(f"the cipher suite {name} cannot be decrypted here", final=True)
            return None
        if server_hello.selected_version == TLS13:
            return self._tls13_decrypter(direction, side, hello, suite_info)
        return self._tls12_decrypter(direction, hello, server_hello, suite_info)

    def _tls13_decrypter(
        self, direction: Direction, side: _Side, hello: ClientHello, suite_info: CipherSuite
    ) -> RecordDecrypter | None:
        assert self._keys is not None
        secrets = self._keys.tls13_secrets(hello.random)
        prefix = "CLIENT" if direction is C2S else "SERVER"
        label = (
            f"{prefix}_TRAFFIC_SECRET_0"
            if side.tls13_application
            else f"{prefix}_HANDSHAKE_TRAFFIC_SECRET"
        )
        secret = secrets.get(label)
        if secret is None:
            self._fail(self._tls13_missing(hello, secrets))
            return None
        side.secret = secret
        key, iv = tls13_traffic_keys(suite_info, secret)
        return RecordDecrypter.tls13(suite_info, key, iv)

    def _tls13_missing(self, hello: ClientHello, secrets: dict[str, bytes]) -> str:
        assert self._keys is not None
        if self._keys.keylog is None:
            return (
                "TLS 1.3 needs a key log (--keylog or SSLKEYLOGFILE); an RSA key cannot decrypt it"
            )
        missing = [label for label in TLS13_SECRETS if label not in secrets]
        if self._keys.master_secret(hello.random) is not None:
            return f"the key log has only CLIENT_RANDOM for this TLS 1.3 session; it lacks {', '.join(missing)}"
        if secrets:
            return f"the key log lacks {', '.join(missing)} for this session"
        return f"no secrets for client random {hello.random.hex()[:16]}… in the key log"

    def _tls12_decrypter(
        self,
        direction: Direction,
        hello: ClientHello,
        server_hello: ServerHello,
        suite_info: CipherSuite,
    ) -> RecordDecrypter | None:
        master = (
            self._master
            if self._master is not None
            else self._master_secret(hello, server_hello, suite_info)
        )
        if master is None:
            return None
        self._master = master
        version = server_hello.selected_version
        block = key_block(version, suite_info, master, hello.random, server_hello.random)
        etm = server_hello.encrypt_then_mac
        if direction is C2S:
            return RecordDecrypter.tls12(
                version, suite_info, block.client_key, block.client_iv, block.client_mac, etm
            )
        return RecordDecrypter.tls12(
            version, suite_info, block.server_key, block.server_iv, block.server_mac, etm
        )

    def _master_secret(
        self, hello: ClientHello, server_hello: ServerHello, suite_info: CipherSuite
    ) -> bytes | None:
        keys = self._keys
        assert keys is not None
        master = keys.master_secret(hello.random)
        if master is not None:
            return master
        resumed = self._resumed_by(hello, server_hello)
        if resumed:
            master = keys.resumed_master(server_hello.session_id, self._offered_ticket(hello))
            if master is None:
                self._fail(
                    f"the session was resumed by {resumed}, and no secret for it is known (a key log would have it)"
                )
            return master
        if suite_info.key_exchange != "RSA":
            if keys.keylog is None:
                self._fail(
                    f"ephemeral key exchange ({suite_info.key_exchange}) needs a key log; an RSA key cannot decrypt it",
                    final=True,
                )
            else:
                self._fail(
                    f"no secrets for client random {hello.random.hex()[:16]}… in the key log"
                )
            return None
        master = self._rsa_master(hello, server_hello, suite_info)
        if master is not None:
            keys.remember(server_hello.session_id, master)
            if self._ticket:
                keys.remember(self._ticket, master)
        return master

    def _rsa_master(
        self, hello: ClientHello, server_hello: ServerHello, suite_info: CipherSuite
    ) -> bytes | None:
        keys = self._keys
        assert keys is not None
        encrypted = self._client_key_exchange
        if encrypted is None:
            self._fail(
                "the ClientKeyExchange was not captured, so the RSA key cannot open the session",
                final=True,
            )
            return None
        premaster = keys.premaster_from_log(_encrypted_premaster(encrypted))
        if premaster is None:
            premaster = self._rsa_premaster(encrypted)
        if premaster is None:
            return None
        version = server_hello.selected_version
        if server_hello.extended_master_secret:
            session_hash = _transcript_hash(version, suite_info.prf_hash, self._transcript)
            return extended_master_secret(version, suite_info.prf_hash, premaster, session_hash)
        return master_secret(
            version, suite_info.prf_hash, premaster, hello.random, server_hello.random
        )

    def _rsa_premaster(self, encrypted: bytes) -> bytes | None:
        keys = self._keys
        assert keys is not None
        if not keys.rsa:
            self._fail(
                "no secrets for this session in the key log, and no RSA key given", final=True
            )
            return None
        if not keys.rsa_keys_for(self._server):
            where = f"{self._server[0]}:{self._server[1]}" if self._server else "this server"
            self._fail(f"no RSA key is listed for {where}; add it to the --rsa-keys list", final=True)
            return None
        if self.certificates:
            key = keys.rsa_key_for_certificate(self.certificates[0], self._server)
            if key is None:
                self._fail("the RSA key does not match the server's certificate", final=True)
                return None
            candidates = [key]
        else:
            candidates = keys.rsa_keys_for(self._server)
        for key in candidates:
            premaster = decrypt_rsa_premaster(key, encrypted)
            if premaster is not None:
                return premaster
        self._fail(
            "the RSA key does not open the premaster secret: it does not match the server's key",
            final=True,
        )
        return None

    def _fail(self, reason: str, final: bool = False) -> None:
        if self.error is None:
            renegotiated = self._hello is not self.client_hello and not self.retry_requested
            self.error = f"renegotiated handshake: {reason}" if renegotiated else reason
        if final:
            self._final_error = True

    # ------------------------------------------------------------------ resumption

    def _resumed_by(self, hello: ClientHello, server_hello: ServerHello) -> str:
        """Say how the session resumed: "session ID", "ticket", "PSK" or "" (a full handshake)."""
        if server_hello.selected_version == TLS13:
            return "PSK" if server_hello.psk_selected is not None else ""
        # RFC 5246 section 7.4.1.3: the server echoes the session ID only to resume it.
        # RFC 5077 section 3.4: a server that accepts a ticket echoes the session ID too,
        # or, when the client sent none, goes straight to ChangeCipherSpec.
        if hello.session_id and hello.session_id == server_hello.session_id:
            return "ticket" if hello.session_ticket_length else "session ID"
        full = self.certificates or self._client_key_exchange is not None
        if hello.session_ticket_length and self._sides[S2C].cipher_changed and not full:
            return "ticket"
        return ""

    @staticmethod
    def _offered_ticket(hello: ClientHello) -> bytes:
        # NOTE: the ClientHello parser reports the ticket's length, not its bytes, so
        # a ticket is matched only through the session ID the client sends with it.
        return b""

    # ------------------------------------------------------------------ views

    def _step(
        self, name: str, direction: Direction, ts: float, detail: str = "", encrypted: bool = False
    ) -> None:
        step = HandshakeStep(name, direction, ts, detail, encrypted)
        if not encrypted:
            # A decrypted step replaces the step inferred for the same record.
            for index, old in enumerate(self.steps):
                if old.encrypted and old.name == name and old.sender is direction and old.ts == ts:
                    self.steps[index] = step
                    return
        self.steps.append(step)
        self._new_steps.append(step)

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)
            logger.debug("TLS: %s", note)

    def summary(self, mode: str, starttls: str) -> TlsSummary:
        """Freeze what is known into a ``TlsSummary``; ``mode`` and ``starttls`` come from the SMTP side."""
        hello = self.client_hello
        server_hello = self.server_hello
        fields: dict[str, object] = {}
        if hello is not None:
            fields.update(_offer_fields(hello))
        if server_hello is not None and hello is not None:
            fields.update(self._choice_fields(hello, server_hello))
        alert = next(
            (a for a in self.alerts if a.level == "fatal"), self.alerts[0] if self.alerts else None
        )
        return TlsSummary(
            mode=mode,
            starttls=starttls,
            certificate=self._certificate_info(),
            alert=alert,
            steps=tuple(sorted(self.steps, key=lambda step: step.ts)),
            handshake_seconds=self._handshake_seconds(),
            decrypted=self.decrypted,
            decrypt_error=self._decrypt_error(),
            records=self.records,
            notes=tuple(self.notes),
            **fields,  # type: ignore[arg-type]
        )

    def _choice_fields(self, hello: ClientHello, server_hello: ServerHello) -> dict[str, object]:
        tls13 = server_hello.selected_version == TLS13
        resumed = self._resumed_by(hello, server_hello)
        return {
            "version": version_name(server_hello.selected_version),
            "cipher": suite_name(server_hello.cipher_suite),
            "alpn": server_hello.alpn or self._alpn,
            "group": group_name(server_hello.key_share_group)
            if server_hello.key_share_group is not None
            else None,
            "resumed": bool(resumed),
            "resumption": resumed,
            "extended_master_secret": None if tls13 else server_hello.extended_master_secret,
            "encrypt_then_mac": None if tls13 else server_hello.encrypt_then_mac,
        }

    def _certificate_info(self) -> CertificateInfo | None:
        summary = self._certificate_summary
        if summary is None:
            return None
        # Judged at the capture time of the handshake, never at the wall clock: the
        # Certificate step exists whenever a summary does, so the steps are not empty.
        when = datetime.fromtimestamp(min(step.ts for step in self.steps), UTC)
        return CertificateInfo(
            subject=summary.subject,
            issuer=summary.issuer,
            sans=summary.sans,
            not_before=summary.not_before.isoformat(),
            not_after=summary.not_after.isoformat(),
            key=f"{summary.key_type} {summary.key_bits}",
            validity=summary.validity_at(when),
            self_signed=summary.self_signed,
            chain_length=len(self.certificates),
        )

    def _handshake_seconds(self) -> float | None:
        start = next((step.ts for step in self.steps if step.name == "ClientHello"), None)
        end = self._sides[C2S].finished_ts
        if start is None or end is None or end < start:
            return None
        return end - start

    def _decrypt_error(self) -> str | None:
        if self.error is not None:
            return self.error
        encrypted = any(side.encrypted_records for side in self._sides.values())
        if not encrypted or self.decrypted:
            return None
        # No decrypter was ever built (no ServerHello, or no keys): give the reason here.
        if self._keys is None:
            return NO_KEYS
        if self._server_hello is None:
            return NOT_CAPTURED
        return None


def _offer_fields(hello: ClientHello) -> dict[str, object]:
    versions = hello.supported_versions or (hello.legacy_version,)
    offers = []
    if hello.session_id:
        offers.append("session ID")
    if hello.session_ticket_length:
        offers.append("ticket")
    if hello.psk_identities:
        offers.append("PSK")
    return {
        "offered_versions": tuple(version_name(v) for v in versions if not is_grease(v)),
        "offered_ciphers": tuple(suite_name(c) for c in hello.cipher_suites if not is_grease(c)),
        "sni": hello.sni,
        "offered_alpn": hello.alpn,
        "offered_groups": tuple(group_name(g) for g in hello.supported_groups if not is_grease(g)),
        "offered_extensions": _extension_names(hello),
        "offered_resumption": tuple(offers),
    }


def _extension_names(hello: ClientHello) -> tuple[str, ...]:
    return tuple(extension_name(t) for t in hello.extensions if not is_grease(t))


def _step_name(kind: int) -> str:
    """Name a handshake message the way the RFCs' prose does: "ServerHelloDone", "CertificateVerify"."""
    name = handshake_name(kind)
    if " " in name:
        return name  # an unknown type, already in words
    return "".join(part.capitalize() for part in name.split("_"))


def _reads_as_smtp(direction: Direction, head: bytes) -> bool:
    """True when four bytes can start an SMTP reply line (server) or command (client)."""
    if direction is S2C:
        return head[:3].isdigit() and head[3:4] in (b" ", b"-", b"\r")
    return head.isalpha()


def _encrypted_premaster(body: bytes) -> bytes:
    """Strip the two-byte length of an RSA ClientKeyExchange (RFC 5246 section 7.4.7.1)."""
    if len(body) >= 2 and (body[0] << 8 | body[1]) == len(body) - 2:
        return body[2:]
    return body


def _transcript_hash(version: int, hash_name: str, messages: list[bytes]) -> bytes:
    """Hash the handshake so far for the extended master secret (RFC 7627 section 3)."""
    return transcript_hash("MD5-SHA1" if version < TLS12 else hash_name, messages)
