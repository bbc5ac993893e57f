"""The per-direction byte buffer of an SMTP conversation, and line splitting over it.

Bytes arrive in arbitrary chunks, each with the capture time of its packet. The
buffer keeps the unconsumed bytes and where each chunk started, so a line or reply
split over chunks gets the capture time of its first and of its last byte.

Pure module: standard library only.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

# RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
MAX_LINE_OCTETS = 1000
# A partial line longer than this is discarded instead of buffered, so a peer that
# never sends a line ending cannot grow memory without bound.
MAX_PARTIAL_LINE = 64 * 1024


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class Line:
    content: bytes  # without the line ending
    bare_lf: bool  # ended by LF alone, not CRLF
    octets: int  # length on the wire, line ending included
    first_ts: float  # capture time of the chunk holding the first byte
    ts: float  # capture time of the chunk holding the line ending


class StreamBuffer:
    """Unconsumed bytes of one direction, with the capture time of every chunk."""

    __slots__ = (
        "_data",
        "_pos",
        "_base",
        "_mark_offsets",
        "_mark_times",
        "_discarding",
        "_lf_scan",
    )

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0  # index in _data of the first unconsumed byte
        self._base = 0  # stream offset of _data[0]
        self._mark_offsets: list[int] = []  # stream offset where each chunk starts
        self._mark_times: list[float] = []
        self._discarding = False  # dropping the rest of an overlong line
        # Index in _data before which no LF is left to find, so a line growing over
        # many small chunks is scanned once, not once per chunk.
        self._lf_scan = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def append(self, data: bytes, ts: float) -> None:
        self._mark_offsets.append(self._base + len(self._data))
        self._mark_times.append(ts)
        self._data += data

    def peek(self, count: int) -> bytes:
        return bytes(self._data[self._pos : self._pos + count])

    def ts_at(self, index: int) -> float:
        """Capture time of the unconsumed byte at ``index`` (0 is the next byte)."""
        offset = self._base + self._pos + index
        mark = bisect_right(self._mark_offsets, offset) - 1
        return self._mark_times[max(mark, 0)] if self._mark_times else 0.0

    def skip(self, count: int) -> int:
        """Consume up to ``count`` bytes and return how many were consumed."""
        consumed = min(count, len(self))
        self._pos += consumed
        return consumed

    def find(self, needle: bytes, start: int = 0) -> int:
        """Index of ``needle`` relative to the next unconsumed byte, or -1."""
        found = self._data.find(needle, self._pos + start)
        return -1 if found < 0 else found - self._pos

    def read_line(self) -> Line | None:
        """Consume and return the next complete line, or None until its LF arrives."""
        while True:
            end = self._data.find(b"\n", max(self._pos, self._lf_scan))
            if end < 0:
                self._lf_scan = len(self._data)
                if self._discarding:
                    self._pos = len(self._data)
                return None
            if self._discarding:
                # The head of this line was already dropped as overlong.
                self._pos = end + 1
                self._discarding = False
                continue
            return self._take_line(end)

    def _take_line(self, end: int) -> Line:
        start = self._pos
        first_ts = self.ts_at(0)
        ts = self.ts_at(end - start)
        bare_lf = end == start or self._data[end - 1] != 0x0D
        content = bytes(self._data[start : end if bare_lf else end - 1])
        self._pos = end + 1
        return Line(content, bare_lf, end + 1 - start, first_ts, ts)

    def drop_overlong(self) -> bool:
        """Drop a partial line past ``MAX_PARTIAL_LINE`` and the rest of it when it arrives.

        Returns True when bytes were dropped now and the line had not been dropped before.
        """
        if self._discarding or len(self) <= MAX_PARTIAL_LINE:
            return False
        self._pos = len(self._data)
        self._discarding = True
        return True

    def unconsumed_chunks(self) -> list[tuple[bytes, float]]:
        """Split the unconsumed bytes at chunk boundaries, each part with its capture time."""
        start = self._base + self._pos
        first = max(bisect_right(self._mark_offsets, start) - 1, 0)
        parts: list[tuple[bytes, float]] = []
        for index in range(first, len(self._mark_offsets)):
            low = max(self._mark_offsets[index], start) - self._base
            if index + 1 < len(self._mark_offsets):
                high = self._mark_offsets[index + 1] - self._base
            else:
                high = len(self._data)
            if high > low:
                parts.append((bytes(self._data[low:high]), self._mark_times[index]))
        return parts

    def clear(self) -> None:
        """Drop every unconsumed byte, as after a hole in the stream."""
        self._pos = len(self._data)
        self._discarding = False

    def compact(self) -> None:
        """Release consumed bytes and the chunk times that no unconsumed byte refers to."""
        if self._pos:
            self._lf_scan = max(self._lf_scan - self._pos, 0)
            del self._data[: self._pos]
            self._base += self._pos
            self._pos = 0
        keep = max(bisect_right(self._mark_offsets, self._base) - 1, 0)
        if keep:
            del self._mark_offsets[:keep]
            del self._mark_times[:keep]
