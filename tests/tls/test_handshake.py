"""Handshake reassembly and message parsers (RFC 8446 section 4, RFC 5246 section 7.4).

Real hellos and certificates from public captures are checked against tshark's
dissection; hand-built messages follow the RFC structures byte by byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtptop.tls import names
from smtptop.tls.handshake import (
    CERTIFICATE,
    CLIENT_HELLO,
    NEW_SESSION_TICKET,
    SERVER_HELLO,
    Alert,
    HandshakeError,
    HandshakeMessage,
    HandshakeReader,
    parse_alerts,
    parse_certificate,
    parse_client_hello,
    parse_encrypted_extensions,
    parse_key_update,
    parse_new_session_ticket,
    parse_server_hello,
)
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls.streams import (
    decrypted_handshakes,
    follow_tcp,
    plaintext_handshake,
    tcp_stream_ids,
    tls_chunks,
    tshark_fields,
)

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")

HANDSHAKE_CAPTURES = [
    ("tls12-rsa-pcapfs.pcap", ()),
    ("tls12-tls13-scapy-nss.pcap", ()),
    ("starttls-keylog-port25.pcapng", ()),
    ("starttls-zeek-google.pcap", ()),
    ("tls13-chacha20-hotplace.pcapng", ()),
    ("smtps-465-ndpi-clienthello.pcapng", ()),
    ("implicit-tls-587-certgrep.pcapng", ("-d", "tcp.port==587,tls")),
    ("starttls-keylog-port2525.pcapng", ("-d", "tcp.port==2525,smtp")),
    ("starttls-ndpi-v4-v6.pcap", ()),
    ("tls12-allciphers-pcapfs.pcap", ()),
    ("tls12-zeek-decryption.pcap", ()),
    ("tls12-tcpfrag-scapy.pcap.gz", ()),
    ("tls12-renegotiation-hotplace.pcapng", ()),
    ("tls-null-cipher-keylog.pcapng", ()),
    ("smtp-sv-errors-mixed.pcap", ()),
]

# Captures whose servers reply with a ServerHello. TLS 1.3 sends its Certificate encrypted.
WITH_SERVER_HELLO = [c for c in HANDSHAKE_CAPTURES if "465" not in c[0] and "errors" not in c[0]]


# Encoders for hand-built messages, written from the RFC 8446 section 3 presentation language.


def vector(data: bytes, length_size: int) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


def extension(extension_type: int, data: bytes) -> bytes:
    return extension_type.to_bytes(2, "big") + vector(data, 2)


def u16s(*values: int) -> bytes:
    return b"".join(value.to_bytes(2, "big") for value in values)


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def client_hello_body(extensions: list[bytes], suites: tuple[int, ...] = (0x1301,)) -> bytes:
    return (
        u16s(0x0303)
        + bytes(range(32))
        + vector(b"\x07" * 32, 1)
        + vector(u16s(*suites), 2)
        + vector(b"\x00", 1)
        + vector(b"".join(extensions), 2)
    )


def server_hello_body(random: bytes, extensions: list[bytes], suite: int = 0x1301) -> bytes:
    return (
        u16s(0x0303)
        + random
        + vector(b"", 1)
        + u16s(suite)
        + b"\x00"
        + vector(b"".join(extensions), 2)
    )


# Messages from the public captures, per (capture, stream, TCP source port).


@cache
def capture_messages(name: str) -> dict[tuple[int, int], list[HandshakeMessage]]:
    """Return the plaintext handshake messages of a capture per (tcp.stream, sender's TCP port)."""
    pcap = PUBLIC_CAPTURES / name
    messages: dict[tuple[int, int], list[HandshakeMessage]] = {}
    for stream in tcp_stream_ids(pcap):
        followed = follow_tcp(pcap, stream)
        for from_node0, port in ((True, followed.node0_port), (False, followed.node1_port)):
            _, found = plaintext_handshake(tls_chunks(followed.chunks, from_node0))
            messages[(stream, port)] = found
    return messages


def messages_of_type(name: str, stream: int, port: int, msg_type: int) -> list[HandshakeMessage]:
    """Return the parsed messages of one type sent from TCP port ``port`` of a stream."""
    return [m for m in capture_messages(name).get((stream, port), []) if m.msg_type == msg_type]


def oracle_rows(
    name: str, decode_as: tuple[str, ...], msg_type: int, fields: list[str]
) -> list[dict[str, list[str]]]:
    return tshark_fields(
        PUBLIC_CAPTURES / name,
        f"tls.handshake.type == {msg_type}",
        ["tcp.stream", "tcp.srcport", "tls.handshake.type", *fields],
        decode_as,
    )


def paired(
    name: str, decode_as: tuple[str, ...], msg_type: int, fields: list[str]
) -> list[tuple[HandshakeMessage, dict[str, list[str]]]]:
    """Pair each frame where tshark decodes one message of ``msg_type`` with the message parsed here."""
    pairs = []
    rows = oracle_rows(name, decode_as, msg_type, fields)
    by_direction: dict[tuple[int, int], list[dict[str, list[str]]]] = {}
    for row in rows:
        assert row["tls.handshake.type"].count(str(msg_type)) == 1
        key = (int(row["tcp.stream"][0]), int(row["tcp.srcport"][0]))
        by_direction.setdefault(key, []).append(row)
    for (stream, port), direction_rows in by_direction.items():
        mine = messages_of_type(name, stream, port, msg_type)
        assert len(mine) == len(direction_rows), f"{name} stream {stream} port {port}"
        pairs += list(zip(mine, direction_rows))
    return pairs


def first_or_none(values: list[str]) -> str | None:
    return values[0] if values else None


def hex_list(values: list[str]) -> tuple[int, ...]:
    return tuple(int(value, 16) for value in values)


CLIENT_HELLO_FIELDS = [
    "tls.handshake.version",
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.ciphersuite",
    "tls.handshake.comp_method",
    "tls.handshake.extension.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_supported_group",
    "tls.handshake.sig_hash_alg",
    "tls.handshake.extensions_key_share_group",
    "tls.extension.psk_ke_mode",
    "tls.handshake.extensions.psk.identity.obfuscated_ticket_age",
]

# Extensions whose SignatureSchemeList tshark also reports as tls.handshake.sig_hash_alg.
DELEGATED_CREDENTIAL = 34
SIGNATURE_ALGORITHMS_CERT = 50


def assert_signature_algorithms(
    mine: tuple[int, ...], extensions: tuple[int, ...], row: dict[str, list[str]]
) -> None:
    reported = hex_list(row["tls.handshake.sig_hash_alg"])
    if DELEGATED_CREDENTIAL in extensions or SIGNATURE_ALGORITHMS_CERT in extensions:
        # tshark joins the lists of all three extensions, so ours must be one contiguous run.
        assert mine
        assert any(reported[i : i + len(mine)] == mine for i in range(len(reported)))
    else:
        assert mine == reported


@needs_tshark
@pytest.mark.parametrize("name, decode_as", HANDSHAKE_CAPTURES)
def test_client_hello_matches_tshark(name: str, decode_as: tuple[str, ...]) -> None:
    pairs = paired(name, decode_as, CLIENT_HELLO, CLIENT_HELLO_FIELDS)
    assert pairs
    for message, row in pairs:
        hello = parse_client_hello(message.body)
        assert hello.legacy_version == int(row["tls.handshake.version"][0], 16)
        assert hello.random.hex() == row["tls.handshake.random"][0]
        assert hello.session_id.hex() == "".join(row["tls.handshake.session_id"])
        assert hello.cipher_suites == hex_list(row["tls.handshake.ciphersuite"])
        assert hello.compression == tuple(int(v) for v in row["tls.handshake.comp_method"])
        assert hello.extensions == tuple(int(v) for v in row["tls.handshake.extension.type"])
        assert hello.sni == first_or_none(row["tls.handshake.extensions_server_name"])
        assert hello.alpn == tuple(row["tls.handshake.extensions_alpn_str"])
        assert hello.supported_versions == hex_list(
            row["tls.handshake.extensions.supported_version"]
        )
        assert hello.supported_groups == hex_list(row["tls.handshake.extensions_supported_group"])
        assert_signature_algorithms(hello.signature_algorithms, hello.extensions, row)
        assert hello.psk_identities == len(
            row["tls.handshake.extensions.psk.identity.obfuscated_ticket_age"]
        )
        assert hello.key_share_groups == tuple(
            int(v) for v in row["tls.handshake.extensions_key_share_group"]
        )
        assert hello.psk_modes == tuple(int(v) for v in row["tls.extension.psk_ke_mode"])


SERVER_HELLO_FIELDS = [
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.ciphersuite",
    "tls.handshake.comp_method",
    "tls.handshake.extension.type",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions_key_share_group",
]


@needs_tshark
@pytest.mark.parametrize("name, decode_as", WITH_SERVER_HELLO)
def test_server_hello_matches_tshark(name: str, decode_as: tuple[str, ...]) -> None:
    pairs = paired(name, decode_as, SERVER_HELLO, SERVER_HELLO_FIELDS)
    assert pairs
    for message, row in pairs:
        hello = parse_server_hello(message.body)
        assert hello.random.hex() == row["tls.handshake.random"][0]
        assert hello.session_id.hex() == "".join(row["tls.handshake.session_id"])
        assert hello.cipher_suite == int(row["tls.handshake.ciphersuite"][0], 16)
        assert hello.compression == int(row["tls.handshake.comp_method"][0])
        assert hello.extensions == tuple(int(v) for v in row["tls.handshake.extension.type"])
        versions = hex_list(row["tls.handshake.extensions.supported_version"])
        assert hello.selected_version == (versions[0] if versions else hello.legacy_version)
        assert hello.alpn == first_or_none(row["tls.handshake.extensions_alpn_str"])
        groups = tuple(int(v) for v in row["tls.handshake.extensions_key_share_group"])
        assert (hello.key_share_group,) == (groups or (None,))
        assert not hello.is_retry_request


@needs_tshark
def test_tls13_server_hello_versions() -> None:
    pairs = paired("tls13-chacha20-hotplace.pcapng", (), SERVER_HELLO, [])
    hello = parse_server_hello(pairs[0][0].body)

    # RFC 8446 section 4.1.3: TLS 1.3 keeps 0x0303 in legacy_version.
    assert hello.legacy_version == 0x0303
    assert hello.selected_version == 0x0304
    assert hello.cipher_suite == 0x1303


@needs_tshark
@pytest.mark.parametrize(
    "name, decode_as",
    [c for c in WITH_SERVER_HELLO if "tls13" not in c[0]],
)
def test_certificates_match_tshark(name: str, decode_as: tuple[str, ...]) -> None:
    pairs = paired(name, decode_as, CERTIFICATE, ["tls.handshake.certificate"])
    assert pairs
    for message, row in pairs:
        certificates = parse_certificate(message.body, tls13=False)
        assert [der.hex() for der in certificates] == row["tls.handshake.certificate"]


@needs_tshark
def test_session_tickets_match_tshark() -> None:
    name = "tls12-rsa-pcapfs.pcap"
    pairs = paired(name, (), NEW_SESSION_TICKET, ["tls.handshake.session_ticket"])
    assert len(pairs) == 2
    for message, row in pairs:
        assert (
            parse_new_session_ticket(message.body, tls13=False).hex()
            == row["tls.handshake.session_ticket"][0]
        )


@needs_tshark
def test_handshake_types_match_tshark() -> None:
    # The server flight of each stream: ServerHello, Certificate, ServerHelloDone in one frame.
    name = "tls12-rsa-pcapfs.pcap"
    rows = oracle_rows(name, (), SERVER_HELLO, [])
    for row in rows:
        stream, port = int(row["tcp.stream"][0]), int(row["tcp.srcport"][0])
        sent = [m.msg_type for m in capture_messages(name)[(stream, port)]]
        assert sent[:3] == [int(t) for t in row["tls.handshake.type"]]


# Reassembly.


def real_client_hello() -> bytes:
    """Return the raw ClientHello message of the SMTPS capture (512 bytes with padding)."""
    messages = capture_messages("smtps-465-ndpi-clienthello.pcapng")
    return next(m.raw for found in messages.values() for m in found if m.msg_type == CLIENT_HELLO)


@needs_tshark
def test_message_split_over_two_records() -> None:
    raw = real_client_hello()
    for cut in (1, 3, 4, 5, len(raw) // 2, len(raw) - 1):
        reader = HandshakeReader()
        assert reader.feed(raw[:cut], 1.0) == []
        assert reader.pending == cut
        messages = reader.feed(raw[cut:], 2.0)
        assert messages == [HandshakeMessage(CLIENT_HELLO, raw[4:], raw, 2.0)]
        assert reader.pending == 0


def test_large_client_hello_over_two_records() -> None:
    # A ClientHello larger than one record (2^14 bytes, RFC 8446 section 5.1).
    padding = extension(21, bytes(20000))
    body = client_hello_body(
        [extension(0, vector(b"\x00" + vector(b"mx.example.org", 2), 2)), padding]
    )
    raw = handshake(CLIENT_HELLO, body)
    reader = HandshakeReader()

    first = reader.feed(raw[: 2**14], 1.0)
    second = reader.feed(raw[2**14 :], 2.0)

    assert first == []
    assert len(second) == 1
    hello = parse_client_hello(second[0].body)
    assert hello.sni == "mx.example.org"
    assert hello.extensions == (0, 21)


def test_several_messages_in_one_record() -> None:
    fragment = handshake(2, b"a") + handshake(11, b"bc") + handshake(14, b"") + handshake(12, b"d")
    reader = HandshakeReader()

    messages = reader.feed(fragment[:-1], 5.0)

    assert [(m.msg_type, m.body) for m in messages] == [(2, b"a"), (11, b"bc"), (14, b"")]
    assert reader.pending == 4
    assert [m.body for m in reader.feed(fragment[-1:], 6.0)] == [b"d"]


# Hand-built hellos.


def test_client_hello_extensions() -> None:
    body = client_hello_body(
        [
            extension(0x0A0A, b""),  # GREASE (RFC 8701)
            extension(0, vector(b"\x00" + vector(b"smtp.example.com", 2), 2)),
            extension(10, vector(u16s(0x11EC, 29, 23), 2)),
            extension(13, vector(u16s(0x0804, 0x0403), 2)),
            extension(16, vector(vector(b"smtp", 1) + vector(b"h2", 1), 2)),
            extension(22, b""),
            extension(23, b""),
            extension(35, b"T" * 40),
            extension(43, vector(u16s(0x0304, 0x0303), 1)),
            extension(45, vector(b"\x01", 1)),
            extension(51, vector(u16s(29) + vector(bytes(32), 2), 2)),
            extension(0xFF01, vector(b"", 1)),
            extension(41, vector(vector(b"id", 2) + bytes(4), 2) + vector(vector(bytes(32), 1), 2)),
        ]
    )
    hello = parse_client_hello(body)

    assert hello.extensions == (0x0A0A, 0, 10, 13, 16, 22, 23, 35, 43, 45, 51, 0xFF01, 41)
    assert hello.sni == "smtp.example.com"
    assert hello.supported_groups == (0x11EC, 29, 23)
    assert hello.signature_algorithms == (0x0804, 0x0403)
    assert hello.alpn == ("smtp", "h2")
    assert hello.encrypt_then_mac
    assert hello.extended_master_secret
    assert hello.session_ticket
    assert hello.session_ticket_length == 40
    assert hello.supported_versions == (0x0304, 0x0303)
    assert hello.psk_modes == (1,)
    assert hello.key_share_groups == (29,)
    assert hello.renegotiation_info
    assert hello.psk_identities == 1
    assert hello.session_id == b"\x07" * 32


def test_client_hello_without_extensions() -> None:
    # RFC 5246 section 7.4.1.2: the extensions block may be absent.
    body = u16s(0x0301) + bytes(32) + vector(b"", 1) + vector(u16s(0x0004), 2) + vector(b"\x00", 1)
    hello = parse_client_hello(body)

    assert hello.extensions == ()
    assert hello.sni is None
    assert hello.supported_versions == ()
    assert not hello.session_ticket


def test_hello_retry_request() -> None:
    # RFC 8446 section 4.1.3: the HelloRetryRequest random is SHA-256("HelloRetryRequest").
    random = hashlib.sha256(b"HelloRetryRequest").digest()
    body = server_hello_body(random, [extension(43, u16s(0x0304)), extension(51, u16s(23))])
    hello = parse_server_hello(body)

    assert hello.is_retry_request
    assert hello.key_share_group == 23
    assert hello.selected_version == 0x0304


def test_tls13_server_hello() -> None:
    body = server_hello_body(
        bytes(32),
        [
            extension(43, u16s(0x0304)),
            extension(51, u16s(29) + vector(bytes(32), 2)),
            extension(41, u16s(0)),
        ],
    )
    hello = parse_server_hello(body)

    assert not hello.is_retry_request
    assert hello.legacy_version == 0x0303
    assert hello.selected_version == 0x0304
    assert hello.key_share_group == 29
    assert hello.psk_selected == 0


def test_tls12_server_hello_flags() -> None:
    body = server_hello_body(
        bytes(32),
        [
            extension(35, b""),
            extension(23, b""),
            extension(22, b""),
            extension(16, vector(vector(b"smtp", 1), 2)),
        ],
        suite=0xC02F,
    )
    hello = parse_server_hello(body)

    assert hello.session_ticket
    assert hello.extended_master_secret
    assert hello.encrypt_then_mac
    assert hello.alpn == "smtp"
    assert hello.selected_version == 0x0303
    assert hello.key_share_group is None


def test_encrypted_extensions_alpn() -> None:
    body = vector(extension(0, b"") + extension(16, vector(vector(b"smtp", 1), 2)), 2)
    parsed = parse_encrypted_extensions(body)

    assert parsed.extensions == (0, 16)
    assert parsed.alpn == "smtp"


def test_tls13_certificate_entries() -> None:
    # RFC 8446 section 4.4.2: request context, then entries with their own extensions.
    first, second = b"\x30\x03\x02\x01\x01", b"\x30\x03\x02\x01\x02"
    entries = (
        vector(first, 3) + vector(extension(5, b"ocsp"), 2) + vector(second, 3) + vector(b"", 2)
    )
    body = vector(b"", 1) + vector(entries, 3)

    assert parse_certificate(body, tls13=True) == [first, second]
    with pytest.raises(HandshakeError):
        parse_certificate(body, tls13=False)


def test_tls12_certificate_list() -> None:
    first, second = b"\x30\x03\x02\x01\x01", b"\x30\x03\x02\x01\x02"
    body = vector(vector(first, 3) + vector(second, 3), 3)

    assert parse_certificate(body, tls13=False) == [first, second]
    assert parse_certificate(vector(b"", 3), tls13=False) == []


def test_tls13_session_ticket() -> None:
    body = bytes(4) + bytes(4) + vector(b"\x00", 1) + vector(b"ticket", 2) + vector(b"", 2)
    assert parse_new_session_ticket(body, tls13=True) == b"ticket"


def test_key_update() -> None:
    assert parse_key_update(b"\x01")
    assert not parse_key_update(b"\x00")
    with pytest.raises(HandshakeError):
        parse_key_update(b"\x02")


def test_alerts() -> None:
    assert parse_alerts(b"\x02\x28") == [Alert(2, 40)]
    assert parse_alerts(b"\x01\x00\x01\x00") == [Alert(1, 0), Alert(1, 0)]
    for bad in (b"", b"\x02", b"\x02\x28\x01"):
        with pytest.raises(HandshakeError):
            parse_alerts(bad)


# Malformed input.


@needs_tshark
def test_truncated_client_hello_rejected() -> None:
    body = real_client_hello()[4:]
    hello = parse_client_hello(body)
    # Cutting right after the compression methods leaves a valid hello without extensions.
    end_of_compression = (
        2 + 32 + 1 + len(hello.session_id) + 2 + 2 * len(hello.cipher_suites) + 1 + 1
    )
    for cut in range(len(body)):
        if cut == end_of_compression:
            assert parse_client_hello(body[:cut]).extensions == ()
            continue
        with pytest.raises(HandshakeError):
            parse_client_hello(body[:cut])


@needs_tshark
def test_truncated_server_messages_rejected() -> None:
    name = "starttls-zeek-google.pcap"
    server_hello = paired(name, (), SERVER_HELLO, [])[0][0].body
    certificate = paired(name, (), CERTIFICATE, [])[0][0].body
    for cut in range(len(server_hello)):
        # A TLS 1.2 ServerHello may end after the compression method.
        if cut == 2 + 32 + 1 + server_hello[34] + 2 + 1:
            continue
        with pytest.raises(HandshakeError):
            parse_server_hello(server_hello[:cut])
    for cut in range(0, len(certificate), 7):
        with pytest.raises(HandshakeError):
            parse_certificate(certificate[:cut], tls13=False)


@pytest.mark.parametrize(
    "body, reason",
    [
        (client_hello_body([extension(23, b""), extension(23, b"")]), "duplicate"),
        (client_hello_body([extension(23, b"x")]), "must be empty"),
        (client_hello_body([extension(22, b"x")]), "must be empty"),
        (client_hello_body([extension(43, vector(u16s(0x0304), 1) + b"!")]), "unexpected bytes"),
        (client_hello_body([extension(43, b"\x03\x03\x04\x03")]), "not a multiple"),
        (client_hello_body([extension(0, vector(b"\x01" + vector(b"x", 2), 2))]), "name_type"),
        (client_hello_body([extension(10, vector(b"", 2))]), "out of range"),
        (client_hello_body([extension(16, vector(vector(b"", 1) + b"\x00", 2))]), "out of range"),
        (
            client_hello_body(
                [extension(51, vector(u16s(29) + vector(bytes(32), 2) + b"\x00", 2))]
            ),
            "truncated",
        ),
        (
            client_hello_body(
                [extension(41, vector(vector(b"id", 2) + bytes(4), 2) + vector(b"", 2))]
            ),
            "out of range",
        ),
        (client_hello_body([]) + b"\x00", "unexpected bytes"),
        (client_hello_body([extension(0xFF01, b"\x05")]), "truncated"),
        (u16s(0x0303) + bytes(32) + vector(bytes(33), 1), "out of range"),
        (u16s(0x0303) + bytes(32) + b"\x00" + b"\x00\x03\x13\x01\x13", "not a multiple"),
        (u16s(0x0303) + bytes(32) + b"\x00" + b"\x00\x00", "out of range"),
    ],
)
def test_malformed_client_hello(body: bytes, reason: str) -> None:
    with pytest.raises(HandshakeError, match=reason):
        parse_client_hello(body)


def test_server_alpn_needs_one_name() -> None:
    body = server_hello_body(
        bytes(32), [extension(16, vector(vector(b"a", 1) + vector(b"b", 1), 2))]
    )
    with pytest.raises(HandshakeError, match="2 names"):
        parse_server_hello(body)


def test_handshake_error_is_value_error() -> None:
    assert issubclass(HandshakeError, ValueError)


PARSERS: list[Callable[[bytes], object]] = [
    parse_client_hello,
    parse_server_hello,
    parse_encrypted_extensions,
    parse_key_update,
    parse_alerts,
    lambda body: parse_certificate(body, True),
    lambda body: parse_certificate(body, False),
    lambda body: parse_new_session_ticket(body, True),
    lambda body: parse_new_session_ticket(body, False),
]


@given(st.binary(max_size=400))
@settings(max_examples=400, deadline=None)
def test_fuzz_parsers_raise_only_handshake_error(data: bytes) -> None:
    for parser in PARSERS:
        try:
            parser(data)
        except HandshakeError:
            pass


@pytest.fixture(scope="module")
def real_hello_body() -> bytes:
    if tshark_path() is None:
        pytest.skip("tshark is not installed")
    return real_client_hello()[4:]


@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4)
)
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_mutated_client_hello(real_hello_body: bytes, flips: list[tuple[int, int]]) -> None:
    mutated = bytearray(real_hello_body)
    for position, value in flips:
        mutated[position % len(mutated)] = value
    try:
        parse_client_hello(bytes(mutated))
    except HandshakeError:
        pass


@given(st.lists(st.binary(max_size=40), max_size=10))
@settings(max_examples=200, deadline=None)
def test_fuzz_reader_keeps_every_byte(fragments: list[bytes]) -> None:
    reader = HandshakeReader()
    messages = [m for fragment in fragments for m in reader.feed(fragment, 0.0)]
    assert sum(len(m.raw) for m in messages) + reader.pending == sum(len(f) for f in fragments)


# Names (values from RFC 8446 section 6, RFC 8701 section 2 and the IANA registries).


def test_grease_values() -> None:
    grease = [0x0A0A + 0x1010 * i for i in range(16)]
    assert all(names.is_grease(value) for value in grease)
    assert not names.is_grease(0x0A1A)
    assert not names.is_grease(0x1301)
    assert names.version_name(0x7A7A) == "GREASE"
    assert names.extension_name(0xFAFA) == "GREASE"
    assert names.group_name(0x2A2A) == "GREASE"


def test_version_names() -> None:
    assert names.version_name(0x0300) == "SSL 3.0"
    assert names.version_name(0x0301) == "TLS 1.0"
    assert names.version_name(0x0303) == "TLS 1.2"
    assert names.version_name(0x0304) == "TLS 1.3"
    assert names.version_name(0x0305) == "0x0305"


@pytest.mark.parametrize(
    "code, name",
    [
        (0, "close_notify"),
        (10, "unexpected_message"),
        (20, "bad_record_mac"),
        (22, "record_overflow"),
        (40, "handshake_failure"),
        (42, "bad_certificate"),
        (43, "unsupported_certificate"),
        (44, "certificate_revoked"),
        (45, "certificate_expired"),
        (46, "certificate_unknown"),
        (47, "illegal_parameter"),
        (48, "unknown_ca"),
        (49, "access_denied"),
        (50, "decode_error"),
        (51, "decrypt_error"),
        (70, "protocol_version"),
        (71, "insufficient_security"),
        (80, "internal_error"),
        (86, "inappropriate_fallback"),
        (90, "user_canceled"),
        (109, "missing_extension"),
        (110, "unsupported_extension"),
        (112, "unrecognized_name"),
        (113, "bad_certificate_status_response"),
        (115, "unknown_psk_identity"),
        (116, "certificate_required"),
        (120, "no_application_protocol"),
        # RFC 5246 section 7.2 only.
        (21, "decryption_failed"),
        (30, "decompression_failure"),
        (100, "no_renegotiation"),
    ],
)
def test_alert_names(code: int, name: str) -> None:
    assert names.alert_name(code) == name


def test_other_names() -> None:
    assert names.alert_level_name(2) == "fatal"
    assert names.alert_level_name(1) == "warning"
    assert names.group_name(0x11EC) == "X25519MLKEM768"
    assert names.group_name(29) == "x25519"
    assert names.group_name(30) == "x448"
    assert names.group_name(23) == "secp256r1"
    assert names.group_name(25) == "secp521r1"
    assert names.group_name(256) == "ffdhe2048"
    assert names.extension_name(0xFF01) == "renegotiation_info"
    assert names.extension_name(43) == "supported_versions"
    assert names.handshake_name(1) == "client_hello"
    assert names.handshake_name(24) == "key_update"
    assert names.handshake_name(99) == "handshake type 99"


# TLS 1.3 handshakes decrypted by tshark with the capture's key log.
TLS13_CAPTURES = [
    ("tls13-chacha20-hotplace.pcapng", "tls13-chacha20-hotplace.keys", 0),
    ("tls12-tls13-scapy-nss.pcap", "tls12-tls13-scapy-nss.keys", 1),
]


@needs_tshark
@pytest.mark.parametrize("name, keys, stream", TLS13_CAPTURES)
def test_tls13_decrypted_handshake(name: str, keys: str, stream: int) -> None:
    pcap, keylog = PUBLIC_CAPTURES / name, PUBLIC_CAPTURES / keys
    display_filter = f"tls.handshake and tcp.stream == {stream}"
    raws = decrypted_handshakes(pcap, keylog, display_filter)
    oracle = tshark_fields(
        pcap,
        display_filter,
        ["tls.handshake.certificate", "tls.handshake.session_ticket"],
        ("-o", f"tls.keylog_file:{keylog}"),
    )
    certificates = [der for row in oracle for der in row["tls.handshake.certificate"]]
    tickets = [ticket for row in oracle for ticket in row["tls.handshake.session_ticket"]]

    # The reader rebuilds the same messages from their concatenation cut into 100-byte pieces.
    joined = b"".join(raws)
    reader = HandshakeReader()
    rebuilt = [
        m.raw for i in range(0, len(joined), 100) for m in reader.feed(joined[i : i + 100], 0.0)
    ]
    assert rebuilt == raws

    types = [raw[0] for raw in raws]
    assert types[:2] == [CLIENT_HELLO, SERVER_HELLO]
    assert 8 in types  # EncryptedExtensions
    assert CERTIFICATE in types
    for raw in raws:
        body = raw[4:]
        if raw[0] == SERVER_HELLO:
            assert parse_server_hello(body).selected_version == 0x0304
        elif raw[0] == 8:
            assert parse_encrypted_extensions(body).alpn is None
        elif raw[0] == CERTIFICATE:
            assert [der.hex() for der in parse_certificate(body, tls13=True)] == certificates
            with pytest.raises(HandshakeError):
                parse_certificate(body, tls13=False)
        elif raw[0] == NEW_SESSION_TICKET:
            assert parse_new_session_ticket(body, tls13=True).hex() == tickets.pop(0)
    assert tickets == []
