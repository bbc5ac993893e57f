"""Recognition of TLS record headers in a byte stream that may also carry SMTP text.

Every TLS record starts with a five-byte header: content type (1 byte), legacy
record version (2 bytes) and fragment length (2 bytes, big-endian), as in RFC 8446
section 5.1 and RFC 5246 section 6.2.1. No SMTP line can start like this, because
the content types are control characters.

Pure module: standard library only.
"""

from __future__ import annotations

RECORD_HEADER_OCTETS = 5
# RFC 5246 section 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 octets.
# RFC 8446 section 5.2 allows less (2^14 + 256), so this bound accepts both versions.
MAX_FRAGMENT_OCTETS = 2**14 + 2048


def is_tls_content_type(byte: int) -> bool:
    """Return whether ``byte`` is a TLS record content type.

    RFC 8446 section 5.1 and RFC 5246 section 6.2.1 define change_cipher_spec (20),
    alert (21), handshake (22) and application_data (23).
    """
    return 0x14 <= byte <= 0x17


def starts_like_tls_record(head: bytes) -> bool | None:
    """Check whether ``head`` starts with a TLS record header.

    Returns None while every byte seen matches but fewer than
    ``RECORD_HEADER_OCTETS`` arrived, so a header split across chunks is not
    mistaken for text. The record version must be 0x0300 to 0x0304: SSL 3.0 to
    TLS 1.2 send 0x0300 to 0x0303, TLS 1.3 sends 0x0301 or 0x0303, and 0x0304 is
    accepted in case a peer writes TLS 1.3's own version number there.
    """
    if not head:
        return None
    if not is_tls_content_type(head[0]):
        return False
    if len(head) >= 2 and head[1] != 0x03:
        return False
    if len(head) >= 3 and head[2] > 0x04:
        return False
    if len(head) < RECORD_HEADER_OCTETS:
        return None
    return fragment_length(head) <= MAX_FRAGMENT_OCTETS


def fragment_length(head: bytes) -> int:
    """Return the fragment length field of a record header of at least five bytes."""
    return head[3] << 8 | head[4]


def record_size(head: bytes) -> int:
    """Return the size on the wire of the record whose header starts ``head``: header and fragment."""
    return RECORD_HEADER_OCTETS + fragment_length(head)


HANDSHAKE = 0x16
APPLICATION_DATA = 0x17


class RecordScanner:
    """Follows the TLS record boundaries of one direction, reading headers only, never decrypting.

    Each record's length field gives where the next header starts, so a chunk costs
    one step per record in it, and records may span chunks. Scanning stops at the
    first application data record, and also at a byte that is not a record header
    or at a hole in the stream, because the boundaries are then lost.
    """

    __slots__ = (
        "_header",
        "_header_ts",
        "_left",
        "done",
        "first_application_data_ts",
        "first_handshake_ts",
        "first_ts",
    )

    def __init__(self) -> None:
        self._header = b""  # the start of a record header split across chunks
        self._header_ts = 0.0  # capture time of the chunk with the header's first byte
        self._left = 0  # fragment octets of the current record not seen yet
        self.done = False
        # Capture times of the chunk with the first byte of the first record, of the
        # first handshake record and of the first application data record.
        self.first_ts: float | None = None
        self.first_handshake_ts: float | None = None
        self.first_application_data_ts: float | None = None

    def feed(self, data: bytes, ts: float) -> None:
        """Scan the next bytes of the direction, captured at ``ts``."""
        if self.done or not data:
            return
        if self.first_ts is None:
            self.first_ts = ts
        position = 0
        size = len(data)
        while position < size:
            if self._left:
                step = min(self._left, size - position)
                self._left -= step
                position += step
                continue
            if not self._header:
                self._header_ts = ts
            needed = RECORD_HEADER_OCTETS - len(self._header)
            self._header += data[position : position + needed]
            position += needed
            if len(self._header) < RECORD_HEADER_OCTETS:
                return
            header, self._header = self._header, b""
            if not self._read_header(header, self._header_ts):
                return

    def _read_header(self, header: bytes, ts: float) -> bool:
        """Note one record header; return False once scanning is over."""
        content_type = header[0]
        if not is_tls_content_type(content_type) or header[1] != 0x03:
            self.done = True
            return False
        if content_type == APPLICATION_DATA:
            self.first_application_data_ts = ts
            self.done = True
            return False
        if content_type == HANDSHAKE and self.first_handshake_ts is None:
            self.first_handshake_ts = ts
        self._left = fragment_length(header)
        return True

    def lose_sync(self) -> None:
        """Stop scanning after a hole in the stream, where the record boundaries are lost."""
        self.done = True
