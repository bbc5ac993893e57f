"""The classic pcap file format (microsecond timestamps) and a writer that never leaves half a record.

Layout, from the pcap file format (draft-ietf-opsawg-pcap): a 24-byte file
header (magic 0xA1B2C3D4, version 2.4, reserved zeros, snaplen, link type),
then per packet a 16-byte record header (seconds, microseconds, captured
length, original length) followed by the captured bytes. Files are written
little-endian. Readers detect the byte order from the magic.

``PcapFile`` keeps its own buffer and writes it with os.write, so it can
tell which records reached the file. When a write fails, it truncates the file
back to the end of the last whole record before reporting the error.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import BinaryIO

from smtptop.capture.files import Frame

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
FILE_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")
DEFAULT_SNAPLEN = 262144
MAX_SECONDS = 0xFFFFFFFF

# Link-type numbers that libpcap returns for a live handle (DLT_) but that
# files must carry as their LINKTYPE_ value: raw IP is DLT 12 on Linux and
# 14 on OpenBSD, and LINKTYPE_RAW (101) in files, as libpcap's dlt_to_linktype maps it.
_DLT_TO_LINKTYPE = {12: 101, 14: 101}


def file_link_type(link_type: int) -> int:
    """Return the LINKTYPE_ number a pcap file header needs for a handle's DLT_ number."""
    return _DLT_TO_LINKTYPE.get(link_type, link_type)


def file_header(link_type: int, snaplen: int) -> bytes:
    """Return the 24-byte header of a microsecond pcap file; a snaplen of 0 or less becomes 262144."""
    if snaplen <= 0:
        snaplen = DEFAULT_SNAPLEN
    return FILE_HEADER.pack(PCAP_MAGIC_MICROSECONDS, 2, 4, 0, 0, snaplen, file_link_type(link_type))


def split_timestamp(ts: float) -> tuple[int, int]:
    """Split a capture time into whole seconds and microseconds, rounded to the nearest microsecond.

    Rounding the whole value first and then dividing means the microseconds
    are always below 1,000,000 (0.9999996 becomes (1, 0)). Times before the
    epoch become 0 and times past 2106 the last second a pcap file can hold.
    """
    micros = round(ts * 1_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    if seconds < 0:
        return 0, 0
    if seconds > MAX_SECONDS:
        return MAX_SECONDS, 999_999
    return seconds, micros


def record(frame: Frame) -> bytes:
    """Return one frame as a pcap record: header and captured bytes, keeping the original length."""
    ts, data, wire_len = frame
    seconds, micros = split_timestamp(ts)
    captured = len(data)
    return RECORD_HEADER.pack(seconds, micros, captured, max(wire_len, captured)) + data


def dump(stream: BinaryIO, link_type: int, snaplen: int, frames: Iterable[Frame]) -> int:
    """Write a whole pcap file to ``stream``; return the number of frames written."""
    stream.write(file_header(link_type, snaplen))
    count = 0
    for frame in frames:
        stream.write(record(frame))
        count += 1
    return count


class PcapWriteError(Exception):
    """A failed write: ``kept`` lists the (frame, offset) records that reached the file, ``lost`` the frames that did not."""

    def __init__(
        self, error: OSError, kept: list[tuple[int, int]], lost: list[int], truncated: bool
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.kept = kept
        self.lost = lost
        # False when truncating back to the last whole record failed too.
        self.truncated = truncated


class PcapFile:
    """One pcap file being written through a raw descriptor, with its own buffer.

    ``append`` buffers a record; ``flush`` writes the buffer and returns the
    (frame number, offset) of each record that is now in the file. On a
    failed write, flush truncates the file to the end of the last whole
    record and raises PcapWriteError. The descriptor's offset then lies past
    the end, so close the file after an error instead of writing on.
    """

    def __init__(self, fd: int, path: str, link_type: int, snaplen: int) -> None:
        self.fd = fd
        self.path = path
        self.records = 0
        self._buffer = bytearray()
        self._pending: list[tuple[int, int, int]] = []  # frame number, offset, end offset
        self._on_disk = 0
        header = file_header(link_type, snaplen)
        self._buffer += header
        self.size = len(header)
        self.flush()

    @property
    def on_disk(self) -> int:
        """Bytes written to the file so far, all of them whole records."""
        return self._on_disk

    @property
    def buffered(self) -> int:
        """Bytes appended but not yet written to the file."""
        return len(self._buffer)

    def append(self, frame_no: int, data: bytes) -> None:
        offset = self.size
        self._buffer += data
        self.size += len(data)
        self._pending.append((frame_no, offset, self.size))

    def flush(self) -> list[tuple[int, int]]:
        """Write the buffer; return (frame number, offset) of the records written by this call."""
        written = 0
        view = memoryview(self._buffer)
        try:
            while written < len(view):
                written += os.write(self.fd, view[written:])
        except OSError as error:
            view.release()
            raise self._fail(error, self._on_disk + written) from error
        view.release()
        self._on_disk += written
        done = [(frame_no, offset) for frame_no, offset, _ in self._pending]
        self.records += len(done)
        self._buffer.clear()
        self._pending.clear()
        return done

    def close(self) -> None:
        """Close the descriptor without flushing; call flush first to keep buffered records."""
        os.close(self.fd)

    def _fail(self, error: OSError, reached: int) -> PcapWriteError:
        kept = [(no, offset) for no, offset, end in self._pending if end <= reached]
        whole = self._pending[len(kept) - 1][2] if kept else self._on_disk
        lost = [no for no, _, _ in self._pending[len(kept) :]]
        self.records += len(kept)
        truncated = True
        try:
            os.ftruncate(self.fd, whole)
        except OSError:
            truncated = whole == reached
        self.size = self._on_disk = whole
        self._buffer.clear()
        self._pending.clear()
        return PcapWriteError(error, kept, lost, truncated)
