"""Recognition of TLS record headers (RFC 8446 section 5.1) in the SMTP byte streams."""

from __future__ import annotations

import pytest

from smtptop.smtp.tls_records import MAX_FRAGMENT_OCTETS, record_size, starts_like_tls_record


@pytest.mark.parametrize(
    "head",
    [
        b"\x14\x03\x03\x00\x01",  # change_cipher_spec
        b"\x15\x03\x03\x00\x02",  # alert
        b"\x16\x03\x01\x02\x00",  # handshake, TLS 1.0 record version of a ClientHello
        b"\x17\x03\x03\x40\x00",  # application_data
        b"\x16\x03\x00\x00\x05",  # SSL 3.0
        b"\x16\x03\x04\x00\x05",
    ],
)
def test_record_header_recognised(head: bytes) -> None:
    assert starts_like_tls_record(head) is True


@pytest.mark.parametrize(
    "head",
    [
        b"EHLO ",
        b"\x13\x03\x03\x00\x01",  # content type below change_cipher_spec
        b"\x18\x03\x03\x00\x01",  # content type above application_data
        b"\x16\x02\x00\x00\x01",  # SSL 2.0 major version
        b"\x16\x03\x05\x00\x01",
        b"\x16\x03\x03\xff\xff",  # fragment longer than RFC 5246 section 6.2.3 allows
        b"\x16\x04",  # a wrong version byte decides before the length arrives
    ],
)
def test_not_a_record_header(head: bytes) -> None:
    assert starts_like_tls_record(head) is False


@pytest.mark.parametrize("head", [b"", b"\x16", b"\x16\x03", b"\x16\x03\x01", b"\x16\x03\x01\x00"])
def test_header_prefix_undecided(head: bytes) -> None:
    assert starts_like_tls_record(head) is None


def test_longest_fragment_accepted() -> None:
    longest = b"\x17\x03\x03" + MAX_FRAGMENT_OCTETS.to_bytes(2, "big")
    too_long = b"\x17\x03\x03" + (MAX_FRAGMENT_OCTETS + 1).to_bytes(2, "big")
    assert starts_like_tls_record(longest) is True
    assert starts_like_tls_record(too_long) is False


def test_record_size_counts_header() -> None:
    assert record_size(b"\x16\x03\x01\x01\x02") == 5 + 258
    assert record_size(b"\x15\x03\x03\x00\x00") == 5
