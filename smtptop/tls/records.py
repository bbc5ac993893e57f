"""TLS record layer framing: cut one direction's byte stream into records.

Theory of operation: every record starts with a five-byte header, the content
type (1 byte), the legacy record version (2 bytes) and the fragment length
(2 bytes, big-endian), as in RFC 8446 section 5.1 and RFC 5246 section 6.2.1.
The length gives where the next header starts, so the reader keeps at most one
unfinished record between calls and slices whole fragments out of its buffer.
TCP chunks of any size, and several records per chunk, give the same records.

When bytes appear that cannot be a record header, the stream is no longer TLS
(a server may send an alert and then fall back to plaintext SMTP, for example
"454 4.7.0 TLS not available"). The reader then stops and keeps every byte
from the bad header on in ``leftover``, so the caller can hand them back to
the plaintext parser.

Pure module: standard library only, no I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Content types, RFC 8446 section 5.1 and RFC 5246 section 6.2.1.
CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
# Heartbeat records (RFC 6520 section 2) are accepted so that they do not break framing.
HEARTBEAT = 24

RECORD_HEADER_LENGTH = 5
# RFC 5246 section 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
# RFC 8446 section 5.2 allows less (2^14 + 256), so this bound covers both versions.
MAX_FRAGMENT_LENGTH = 2**14 + 2048


@dataclass(frozen=True, slots=True)
class TlsRecord:
    """One TLS record as sent on the wire: header fields and the fragment.

    ``first_ts`` is the capture time of the chunk holding the header's first
    byte, and ``ts`` the capture time of the chunk that completed the record.
    """

    content_type: int
    version: int
    fragment: bytes
    first_ts: float
    ts: float


def header_prefix_valid(head: bytes | bytearray) -> bool:
    """Check that the first bytes of a record header (up to five) can start a record.

    A prefix shorter than five bytes is judged on the bytes present, so plaintext
    such as "454 " is rejected on its first byte.
    """
    if head and not CHANGE_CIPHER_SPEC <= head[0] <= HEARTBEAT:
        return False
    # Every SSL 3.0 to TLS 1.3 record carries major version 3 (RFC 8446 section 5.1).
    if len(head) >= 2 and head[1] != 3:
        return False
    if len(head) >= RECORD_HEADER_LENGTH:
        return int.from_bytes(head[3:5], "big") <= MAX_FRAGMENT_LENGTH
    return True


class RecordReader:
    """Reassembles the TLS records of one direction from in-order TCP chunks.

    ``broken`` is set once bytes appear that are not a record header, and
    ``synced`` is cleared by ``lose_sync`` after a hole in the stream. In both
    cases later feeds return no records.
    """

    __slots__ = ("_buffer", "_first_ts", "broken", "leftover", "synced")

    def __init__(self) -> None:
        self._buffer = bytearray()  # the start of a record that is not complete yet
        self._first_ts = 0.0  # capture time of the chunk with the buffered header's first byte
        self.broken = False
        self.leftover = b""
        self.synced = True

    def feed(self, data: bytes, ts: float) -> list[TlsRecord]:
        """Add the next chunk of the direction, captured at ``ts``, and return the records it completes."""
        if not self.synced:
            return []
        if self.broken:
            self.leftover += data
            return []
        if not data:
            return []

        if not self._buffer:
            self._first_ts = ts
        buffer = self._buffer
        buffer += data

        records: list[TlsRecord] = []
        position = 0
        while position < len(buffer):
            head = buffer[position : position + RECORD_HEADER_LENGTH]
            if not header_prefix_valid(head):
                self._break(bytes(buffer[position:]))
                break
            if len(head) < RECORD_HEADER_LENGTH:
                break
            end = position + RECORD_HEADER_LENGTH + int.from_bytes(head[3:5], "big")
            if end > len(buffer):
                break
            fragment = bytes(buffer[position + RECORD_HEADER_LENGTH : end])
            version = int.from_bytes(head[1:3], "big")
            records.append(TlsRecord(head[0], version, fragment, self._first_ts, ts))
            # The next record, if any, starts inside this chunk.
            self._first_ts = ts
            position = end

        del buffer[:position]
        return records

    def _break(self, rest: bytes) -> None:
        logger.debug("bytes that are not a TLS record header, %d bytes left over", len(rest))
        self.broken = True
        self.leftover = rest
        self._buffer.clear()

    def take_leftover(self) -> bytes:
        """Return the bytes kept since the stream stopped being TLS, and clear them."""
        rest, self.leftover = self.leftover, b""
        return rest

    def lose_sync(self) -> None:
        """Give up after a hole in the stream: record boundaries are lost for good."""
        self.synced = False
        self._buffer.clear()
