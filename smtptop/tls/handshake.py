"""TLS handshake messages: reassembly from records, and parsers for the messages smtptop shows.

A handshake message has a four-byte header, the type (1 byte) and the body
length (3 bytes), as in RFC 8446 section 4 and RFC 5246 section 7.4. Messages
may span several records and a record may hold several messages, so
``HandshakeReader`` rebuilds messages from the plaintext fragments of one
direction's handshake records. It must only see plaintext: the caller stops
feeding it (or feeds decrypted fragments) once the direction is encrypted.

The parsers are strict about lengths: every vector must fit its enclosing
structure, and a structure must end where its length field puts its end. Malformed input
raises ``HandshakeError`` (a ``ValueError``) with a short reason, never
``IndexError`` or ``struct.error``.

Pure module: standard library only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtptop.tls.names import extension_name

# Handshake types, RFC 8446 section 4 and RFC 5246 section 7.4.
HELLO_REQUEST = 0
CLIENT_HELLO = 1
SERVER_HELLO = 2
NEW_SESSION_TICKET = 4
END_OF_EARLY_DATA = 5
ENCRYPTED_EXTENSIONS = 8
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
SERVER_HELLO_DONE = 14
CERTIFICATE_VERIFY = 15
CLIENT_KEY_EXCHANGE = 16
FINISHED = 20
KEY_UPDATE = 24

# Extension types parsed below (IANA TLS ExtensionType Values).
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

# RFC 8446 section 4.1.3: a ServerHello with this random is a HelloRetryRequest.
# The value is SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

HANDSHAKE_HEADER_LENGTH = 4
RANDOM_LENGTH = 32
MAX_SESSION_ID_LENGTH = 32


class HandshakeError(ValueError):
    """A handshake message, alert or extension that does not follow its RFC structure."""


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """One reassembled handshake message.

    ``raw`` is the four-byte header followed by the body, as transcript hashes
    need it. ``ts`` is the capture time of the record that completed the message.
    """

    msg_type: int
    body: bytes
    raw: bytes
    ts: float


class HandshakeReader:
    """Rebuilds the handshake messages of one direction from handshake record fragments.

    NOTE: a message may claim up to 2^24 - 1 bytes, and the reader buffers that
    much before it completes. A caller that needs a smaller limit compares ``pending`` with it.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()  # the start of a message that is not complete yet

    @property
    def pending(self) -> int:
        """Number of buffered bytes of a message that is not complete yet."""
        return len(self._buffer)

    def feed(self, fragment: bytes, ts: float) -> list[HandshakeMessage]:
        """Add one handshake record's plaintext fragment and return the messages it completes."""
        buffer = self._buffer
        buffer += fragment
        messages: list[HandshakeMessage] = []
        position = 0
        while len(buffer) - position >= HANDSHAKE_HEADER_LENGTH:
            length = int.from_bytes(buffer[position + 1 : position + 4], "big")
            end = position + HANDSHAKE_HEADER_LENGTH + length
            if end > len(buffer):
                break
            raw = bytes(buffer[position:end])
            messages.append(HandshakeMessage(raw[0], raw[HANDSHAKE_HEADER_LENGTH:], raw, ts))
            position = end
        del buffer[:position]
        return messages


class _Cursor:
    """Reads the fields of one structure in order, raising HandshakeError when they do not fit."""

    __slots__ = ("_data", "_position", "structure")

    def __init__(self, data: bytes, structure: str) -> None:
        self._data = data
        self._position = 0
        self.structure = structure

    def take(self, count: int, field: str) -> bytes:
        end = self._position + count
        if end > len(self._data):
            raise HandshakeError(f"{self.structure}: {field} truncated")
        chunk = self._data[self._position : end]
        self._position = end
        return chunk

    def integer(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def vector(self, length_size: int, field: str, minimum: int = 0, maximum: int = 2**24) -> bytes:
        """Read a variable-length vector (RFC 8446 section 3.4) and check its length bounds."""
        length = self.integer(length_size, f"{field} length")
        if not minimum <= length <= maximum:
            raise HandshakeError(f"{self.structure}: {field} length {length} out of range")
        return self.take(length, field)

    def at_end(self) -> bool:
        return self._position == len(self._data)

    def expect_end(self) -> None:
        if not self.at_end():
            extra = len(self._data) - self._position
            raise HandshakeError(f"{self.structure}: {extra} unexpected bytes at the end")


def _integers(data: bytes, size: int, field: str) -> tuple[int, ...]:
    """Split a vector of fixed-size integers, such as a cipher suite list."""
    if len(data) % size:
        raise HandshakeError(f"{field}: length {len(data)} is not a multiple of {size}")
    return tuple(int.from_bytes(data[i : i + size], "big") for i in range(0, len(data), size))


def _empty(data: bytes, extension: int) -> bool:
    """Check an extension whose extension_data must be empty, and return True."""
    if data:
        raise HandshakeError(f"{extension_name(extension)}: extension data must be empty")
    return True


def _read_extensions(cursor: _Cursor, structure: str) -> dict[int, bytes]:
    """Read the extensions that end a hello (RFC 8446 section 4.2), keeping their order.

    RFC 5246 section 7.4.1.2 lets a hello end after the compression methods,
    with no extensions block at all.
    """
    extensions: dict[int, bytes] = {}
    if cursor.at_end():
        return extensions
    block = _Cursor(cursor.vector(2, "extensions"), structure)
    cursor.expect_end()
    while not block.at_end():
        extension_type = block.integer(2, "extension type")
        data = block.vector(2, extension_name(extension_type))
        # RFC 8446 section 4.2: at most one extension of each type per block.
        if extension_type in extensions:
            raise HandshakeError(
                f"{structure}: duplicate {extension_name(extension_type)} extension"
            )
        extensions[extension_type] = data
    return extensions


# Extension bodies, one small parser per structure.


def _server_name(data: bytes) -> str | None:
    """Return the host_name of a ClientHello server_name extension (RFC 6066 section 3)."""
    names = _Cursor(data, "server_name")
    entries = _Cursor(names.vector(2, "server_name_list", minimum=1), "server_name")
    names.expect_end()
    host_name = None
    while not entries.at_end():
        name_type = entries.integer(1, "name_type")
        if name_type != 0:
            # Only host_name (0) is defined, and other types have no known length.
            raise HandshakeError(f"server_name: unknown name_type {name_type}")
        name = entries.vector(2, "host_name", minimum=1)
        if host_name is None:
            host_name = name.decode("ascii", "backslashreplace")
    return host_name


def _protocol_names(data: bytes) -> tuple[str, ...]:
    """Return the names of an ALPN ProtocolNameList (RFC 7301 section 3.1)."""
    outer = _Cursor(data, "application_layer_protocol_negotiation")
    names = _Cursor(outer.vector(2, "protocol_name_list", minimum=2), outer.structure)
    outer.expect_end()
    protocols = []
    while not names.at_end():
        protocol = names.vector(1, "protocol_name", minimum=1)
        protocols.append(protocol.decode("ascii", "backslashreplace"))
    return tuple(protocols)


def _u16_vector(data: bytes, extension: int, length_size: int, minimum: int) -> tuple[int, ...]:
    """Return a vector of 16-bit values that is the whole extension body."""
    cursor = _Cursor(data, extension_name(extension))
    values = _integers(cursor.vector(length_size, "list", minimum=minimum), 2, cursor.structure)
    cursor.expect_end()
    return values


def _u16_only(data: bytes, extension: int) -> int:
    """Return a single 16-bit value that is the whole extension body."""
    cursor = _Cursor(data, extension_name(extension))
    value = cursor.integer(2, "value")
    cursor.expect_end()
    return value


def _client_key_share_groups(data: bytes) -> tuple[int, ...]:
    """Return the groups of a ClientHello key_share's client_shares (RFC 8446 section 4.2.8)."""
    outer = _Cursor(data, "key_share")
    shares = _Cursor(outer.vector(2, "client_shares"), "key_share")
    outer.expect_end()
    groups = []
    while not shares.at_end():
        groups.append(shares.integer(2, "group"))
        shares.vector(2, "key_exchange", minimum=1)
    return tuple(groups)


def _server_key_share_group(data: bytes) -> int:
    """Return the group of a ServerHello key_share's server_share (RFC 8446 section 4.2.8)."""
    cursor = _Cursor(data, "key_share")
    group = cursor.integer(2, "group")
    cursor.vector(2, "key_exchange", minimum=1)
    cursor.expect_end()
    return group


def _psk_identity_count(data: bytes) -> int:
    """Count the identities of a ClientHello pre_shared_key's OfferedPsks (RFC 8446 section 4.2.11)."""
    outer = _Cursor(data, "pre_shared_key")
    identities = _Cursor(outer.vector(2, "identities", minimum=7), "pre_shared_key")
    binders = _Cursor(outer.vector(2, "binders", minimum=33), "pre_shared_key")
    outer.expect_end()
    count = 0
    while not identities.at_end():
        identities.vector(2, "identity", minimum=1)
        identities.integer(4, "obfuscated_ticket_age")
        count += 1
    binder_count = 0
    while not binders.at_end():
        binders.vector(1, "binder", minimum=32)
        binder_count += 1
    # RFC 8446 section 4.2.11: one binder per identity.
    if binder_count != count:
        raise HandshakeError(f"pre_shared_key: {count} identities but {binder_count} binders")
    return count


def _psk_modes(data: bytes) -> tuple[int, ...]:
    """Return the modes of psk_key_exchange_modes (RFC 8446 section 4.2.9)."""
    cursor = _Cursor(data, "psk_key_exchange_modes")
    modes = tuple(cursor.vector(1, "ke_modes", minimum=1))
    cursor.expect_end()
    return modes


def _renegotiation_info(data: bytes) -> bool:
    """Check a renegotiation_info body (RFC 5746 section 3.2), and return True."""
    cursor = _Cursor(data, "renegotiation_info")
    cursor.vector(1, "renegotiated_connection")
    cursor.expect_end()
    return True


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The fields of a ClientHello (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2).

    ``extensions`` lists the extension types in the order sent. Fields read from
    an extension hold an empty or false value when the extension is absent.
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression: tuple[int, ...]
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    session_ticket: bool
    session_ticket_length: int
    psk_identities: int
    psk_modes: tuple[int, ...]
    extended_master_secret: bool
    encrypt_then_mac: bool
    renegotiation_info: bool


def parse_client_hello(body: bytes) -> ClientHello:
    """Parse a ClientHello body (the handshake message without its four-byte header)."""
    cursor = _Cursor(body, "ClientHello")
    legacy_version = cursor.integer(2, "legacy_version")
    random = cursor.take(RANDOM_LENGTH, "random")
    session_id = cursor.vector(1, "legacy_session_id", maximum=MAX_SESSION_ID_LENGTH)
    suites = _integers(cursor.vector(2, "cipher_suites", minimum=2), 2, "cipher_suites")
    compression = tuple(cursor.vector(1, "compression_methods", minimum=1))
    extensions = _read_extensions(cursor, "ClientHello")

    def has(extension: int) -> bool:
        return extension in extensions

    ticket = extensions.get(EXT_SESSION_TICKET, b"")
    return ClientHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suites=suites,
        compression=compression,
        extensions=tuple(extensions),
        sni=_server_name(extensions[EXT_SERVER_NAME]) if has(EXT_SERVER_NAME) else None,
        alpn=_protocol_names(extensions[EXT_ALPN]) if has(EXT_ALPN) else (),
        supported_versions=(
            _u16_vector(extensions[EXT_SUPPORTED_VERSIONS], EXT_SUPPORTED_VERSIONS, 1, 2)
            if has(EXT_SUPPORTED_VERSIONS)
            else ()
        ),
        supported_groups=(
            _u16_vector(extensions[EXT_SUPPORTED_GROUPS], EXT_SUPPORTED_GROUPS, 2, 2)
            if has(EXT_SUPPORTED_GROUPS)
            else ()
        ),
        key_share_groups=(
            _client_key_share_groups(extensions[EXT_KEY_SHARE]) if has(EXT_KEY_SHARE) else ()
        ),
        signature_algorithms=(
            _u16_vector(extensions[EXT_SIGNATURE_ALGORITHMS], EXT_SIGNATURE_ALGORITHMS, 2, 2)
            if has(EXT_SIGNATURE_ALGORITHMS)
            else ()
        ),
        # RFC 5077 section 3.2: the extension body is the ticket itself (empty to ask for one).
        session_ticket=has(EXT_SESSION_TICKET),
        session_ticket_length=len(ticket),
        psk_identities=(
            _psk_identity_count(extensions[EXT_PRE_SHARED_KEY]) if has(EXT_PRE_SHARED_KEY) else 0
        ),
        psk_modes=(
            _psk_modes(extensions[EXT_PSK_KEY_EXCHANGE_MODES])
            if has(EXT_PSK_KEY_EXCHANGE_MODES)
            else ()
        ),
        extended_master_secret=(
            has(EXT_EXTENDED_MASTER_SECRET)
            and _empty(extensions[EXT_EXTENDED_MASTER_SECRET], EXT_EXTENDED_MASTER_SECRET)
        ),
        encrypt_then_mac=(
            has(EXT_ENCRYPT_THEN_MAC)
            and _empty(extensions[EXT_ENCRYPT_THEN_MAC], EXT_ENCRYPT_THEN_MAC)
        ),
        renegotiation_info=(
            has(EXT_RENEGOTIATION_INFO) and _renegotiation_info(extensions[EXT_RENEGOTIATION_INFO])
        ),
    )


@dataclass(frozen=True, slots=True)
class ServerHello:
    """The fields of a ServerHello or HelloRetryRequest (RFC 8446 section 4.1.3, RFC 5246 section 7.4.1.3).

    ``selected_version`` is the supported_versions value when that extension is
    present (TLS 1.3 keeps 0x0303 in ``legacy_version``), else ``legacy_version``.
    In a HelloRetryRequest ``key_share_group`` is the group the server requests.
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: tuple[int, ...]
    selected_version: int
    is_retry_request: bool
    key_share_group: int | None
    psk_selected: int | None
    alpn: str | None
    session_ticket: bool
    extended_master_secret: bool
    encrypt_then_mac: bool
    renegotiation_info: bool


def _server_alpn(data: bytes) -> str:
    """Return the one protocol a server selects with ALPN (RFC 7301 section 3.1)."""
    protocols = _protocol_names(data)
    if len(protocols) != 1:
        raise HandshakeError(f"application_layer_protocol_negotiation: {len(protocols)} names")
    return protocols[0]


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello body. A HelloRetryRequest is recognised by its random."""
    cursor = _Cursor(body, "ServerHello")
    legacy_version = cursor.integer(2, "legacy_version")
    random = cursor.take(RANDOM_LENGTH, "random")
    session_id = cursor.vector(1, "legacy_session_id_echo", maximum=MAX_SESSION_ID_LENGTH)
    cipher_suite = cursor.integer(2, "cipher_suite")
    compression = cursor.integer(1, "legacy_compression_method")
    extensions = _read_extensions(cursor, "ServerHello")
    is_retry_request = random == HELLO_RETRY_REQUEST_RANDOM

    def has(extension: int) -> bool:
        return extension in extensions

    key_share_group = None
    if has(EXT_KEY_SHARE):
        key_share = extensions[EXT_KEY_SHARE]
        # RFC 8446 section 4.2.8: a HelloRetryRequest carries only the selected group.
        if is_retry_request:
            key_share_group = _u16_only(key_share, EXT_KEY_SHARE)
        else:
            key_share_group = _server_key_share_group(key_share)

    return ServerHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=cipher_suite,
        compression=compression,
        extensions=tuple(extensions),
        selected_version=(
            _u16_only(extensions[EXT_SUPPORTED_VERSIONS], EXT_SUPPORTED_VERSIONS)
            if has(EXT_SUPPORTED_VERSIONS)
            else legacy_version
        ),
        is_retry_request=is_retry_request,
        key_share_group=key_share_group,
        psk_selected=(
            _u16_only(extensions[EXT_PRE_SHARED_KEY], EXT_PRE_SHARED_KEY)
            if has(EXT_PRE_SHARED_KEY)
            else None
        ),
        alpn=_server_alpn(extensions[EXT_ALPN]) if has(EXT_ALPN) else None,
        session_ticket=(
            has(EXT_SESSION_TICKET) and _empty(extensions[EXT_SESSION_TICKET], EXT_SESSION_TICKET)
        ),
        extended_master_secret=(
            has(EXT_EXTENDED_MASTER_SECRET)
            and _empty(extensions[EXT_EXTENDED_MASTER_SECRET], EXT_EXTENDED_MASTER_SECRET)
        ),
        encrypt_then_mac=(
            has(EXT_ENCRYPT_THEN_MAC)
            and _empty(extensions[EXT_ENCRYPT_THEN_MAC], EXT_ENCRYPT_THEN_MAC)
        ),
        renegotiation_info=(
            has(EXT_RENEGOTIATION_INFO) and _renegotiation_info(extensions[EXT_RENEGOTIATION_INFO])
        ),
    )


@dataclass(frozen=True, slots=True)
class EncryptedExtensions:
    """The TLS 1.3 EncryptedExtensions message (RFC 8446 section 4.3.1), which carries the ALPN choice."""

    extensions: tuple[int, ...]
    alpn: str | None


def parse_encrypted_extensions(body: bytes) -> EncryptedExtensions:
    """Parse an EncryptedExtensions body."""
    cursor = _Cursor(body, "EncryptedExtensions")
    if cursor.at_end():
        raise HandshakeError("EncryptedExtensions: extensions missing")
    extensions = _read_extensions(cursor, "EncryptedExtensions")
    alpn = _server_alpn(extensions[EXT_ALPN]) if EXT_ALPN in extensions else None
    return EncryptedExtensions(tuple(extensions), alpn)


def parse_certificate(body: bytes, tls13: bool) -> list[bytes]:
    """Return the DER certificates of a Certificate message, sender's certificate first.

    TLS 1.3 (RFC 8446 section 4.4.2) adds a certificate_request_context and
    extensions after each certificate, while TLS 1.2 (RFC 5246 section 7.4.2) has the
    list only. An empty list is valid (a client without a certificate).
    """
    cursor = _Cursor(body, "Certificate")
    if tls13:
        cursor.vector(1, "certificate_request_context")
    entries = _Cursor(cursor.vector(3, "certificate_list"), "Certificate")
    cursor.expect_end()
    certificates = []
    while not entries.at_end():
        certificates.append(entries.vector(3, "cert_data", minimum=1))
        if tls13:
            entries.vector(2, "extensions")
    return certificates


def parse_new_session_ticket(body: bytes, tls13: bool) -> bytes:
    """Return the ticket of a NewSessionTicket (RFC 8446 section 4.6.1, RFC 5077 section 3.3)."""
    cursor = _Cursor(body, "NewSessionTicket")
    cursor.integer(4, "ticket_lifetime")
    if tls13:
        cursor.integer(4, "ticket_age_add")
        cursor.vector(1, "ticket_nonce")
        ticket = cursor.vector(2, "ticket", minimum=1)
        cursor.vector(2, "extensions")
    else:
        ticket = cursor.vector(2, "ticket")
    cursor.expect_end()
    return ticket


def parse_key_update(body: bytes) -> bool:
    """Return whether a KeyUpdate requests that the peer update its keys too (RFC 8446 section 4.6.3)."""
    if body not in (b"\x00", b"\x01"):
        raise HandshakeError("KeyUpdate: request_update must be one byte, 0 or 1")
    return body == b"\x01"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert (RFC 8446 section 6, RFC 5246 section 7.2). names.alert_name gives its name."""

    level: int
    description: int


def parse_alerts(fragment: bytes) -> list[Alert]:
    """Parse the plaintext fragment of an alert record: one or more two-byte alerts.

    Raises HandshakeError for an empty fragment or an odd length, because
    RFC 8446 section 5.1 forbids fragmenting alerts across records.
    """
    if not fragment or len(fragment) % 2:
        raise HandshakeError(
            f"invalid alert record of {len(fragment)} bytes: each alert is 2 bytes"
        )
    return [Alert(fragment[i], fragment[i + 1]) for i in range(0, len(fragment), 2)]
