"""Readable names for TLS protocol numbers: versions, alerts, extensions, groups, handshake types.

Names follow the IANA "Transport Layer Security (TLS) Parameters" registries and
the RFCs cited at each table. GREASE values (RFC 8701) are recognised wherever
they may appear. Unknown numbers get a hexadecimal or decimal fallback, never
an exception.

Pure module: standard library only.
"""

from __future__ import annotations

_VERSIONS = {
    0x0002: "SSL 2.0",
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}

# RFC 8446 section 6 and RFC 5246 section 7.2; 21, 41 and 60 are reserved there
# but were sent by TLS 1.0 and SSL 3.0 peers, so they keep their old names.
_ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",  # RFC 6066
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",  # RFC 6066
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
    121: "ech_required",  # draft-ietf-tls-esni
}

_ALERT_LEVELS = {1: "warning", 2: "fatal"}

_EXTENSIONS = {
    0: "server_name",
    1: "max_fragment_length",
    2: "client_certificate_url",
    3: "trusted_ca_keys",
    4: "truncated_hmac",
    5: "status_request",
    6: "user_mapping",
    7: "client_authz",
    8: "server_authz",
    9: "cert_type",
    10: "supported_groups",
    11: "ec_point_formats",
    12: "srp",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    24: "token_binding",
    25: "cached_info",
    27: "compress_certificate",
    28: "record_size_limit",
    34: "delegated_credential",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    52: "transparency_info",
    54: "connection_id",
    57: "quic_transport_parameters",
    58: "ticket_request",
    59: "dnssec_chain",
    0x3374: "next_protocol_negotiation",  # never registered, sent by old clients
    0x4469: "application_settings",  # never registered, sent by Chrome
    0xFE0D: "encrypted_client_hello",
    0xFF01: "renegotiation_info",
}

_GROUPS = {
    # RFC 4492 section 5.1.1 (most deprecated by RFC 8422).
    1: "sect163k1",
    2: "sect163r1",
    3: "sect163r2",
    4: "sect193r1",
    5: "sect193r2",
    6: "sect233k1",
    7: "sect233r1",
    8: "sect239k1",
    9: "sect283k1",
    10: "sect283r1",
    11: "sect409k1",
    12: "sect409r1",
    13: "sect571k1",
    14: "sect571r1",
    15: "secp160k1",
    16: "secp160r1",
    17: "secp160r2",
    18: "secp192k1",
    19: "secp192r1",
    20: "secp224k1",
    21: "secp224r1",
    22: "secp256k1",
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    # RFC 7027 and RFC 8734.
    26: "brainpoolP256r1",
    27: "brainpoolP384r1",
    28: "brainpoolP512r1",
    29: "x25519",
    30: "x448",
    31: "brainpoolP256r1tls13",
    32: "brainpoolP384r1tls13",
    33: "brainpoolP512r1tls13",
    # RFC 7919 finite field groups.
    256: "ffdhe2048",
    257: "ffdhe3072",
    258: "ffdhe4096",
    259: "ffdhe6144",
    260: "ffdhe8192",
    # Post-quantum and hybrid groups (draft-ietf-tls-mlkem, draft-ietf-tls-ecdhe-mlkem).
    0x0200: "MLKEM512",
    0x0201: "MLKEM768",
    0x0202: "MLKEM1024",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
    0xFF01: "arbitrary_explicit_prime_curves",
    0xFF02: "arbitrary_explicit_char2_curves",
}

# RFC 8446 section 4, RFC 5246 section 7.4 and the IANA registry.
_HANDSHAKE_TYPES = {
    0: "hello_request",
    1: "client_hello",
    2: "server_hello",
    3: "hello_verify_request",
    4: "new_session_ticket",
    5: "end_of_early_data",
    6: "hello_retry_request",
    8: "encrypted_extensions",
    11: "certificate",
    12: "server_key_exchange",
    13: "certificate_request",
    14: "server_hello_done",
    15: "certificate_verify",
    16: "client_key_exchange",
    20: "finished",
    21: "certificate_url",
    22: "certificate_status",
    23: "supplemental_data",
    24: "key_update",
    25: "compressed_certificate",
    254: "message_hash",
}

# RFC 8701 section 2: one-byte GREASE values for PskKeyExchangeModes.
_GREASE_BYTES = frozenset({0x0B, 0x2A, 0x49, 0x68, 0x87, 0xA6, 0xC5, 0xE4})


def is_grease(value: int) -> bool:
    """Return whether a 16-bit value is GREASE (RFC 8701 section 2: 0x0A0A, 0x1A1A ... 0xFAFA)."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def is_grease_psk_mode(value: int) -> bool:
    """Return whether a one-byte PskKeyExchangeMode is GREASE (RFC 8701 section 2)."""
    return value in _GREASE_BYTES


def version_name(version: int) -> str:
    """Name a protocol version: "TLS 1.2", "TLS 1.3 draft 28", "GREASE" or "0x%04x"."""
    if version in _VERSIONS:
        return _VERSIONS[version]
    if is_grease(version):
        return "GREASE"
    # Internet-Drafts of TLS 1.3 sent 0x7F00 plus the draft number.
    if version >> 8 == 0x7F:
        return f"TLS 1.3 draft {version & 0xFF}"
    return f"0x{version:04x}"


def alert_name(description: int) -> str:
    """Name an alert description, for example "handshake_failure"."""
    return _ALERTS.get(description, f"alert {description}")


def alert_level_name(level: int) -> str:
    """Name an alert level: "warning" or "fatal"."""
    return _ALERT_LEVELS.get(level, f"level {level}")


def extension_name(extension_type: int) -> str:
    """Name an extension type, for example "server_name"."""
    if extension_type in _EXTENSIONS:
        return _EXTENSIONS[extension_type]
    if is_grease(extension_type):
        return "GREASE"
    return f"0x{extension_type:04x}"


def group_name(group: int) -> str:
    """Name a supported group (named curve or finite field group), for example "x25519"."""
    if group in _GROUPS:
        return _GROUPS[group]
    if is_grease(group):
        return "GREASE"
    return f"0x{group:04x}"


def handshake_name(handshake_type: int) -> str:
    """Name a handshake message type, for example "client_hello"."""
    return _HANDSHAKE_TYPES.get(handshake_type, f"handshake type {handshake_type}")
