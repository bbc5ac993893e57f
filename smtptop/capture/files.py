"""Reading captures from files and streams: pcap, pcapng, either one gzip-compressed, or stdin.

The format is decided by the magic number, never by the file name: a
``.pcap`` file may hold pcapng, and ``-r -`` gives no name at all.

Classic pcap is read here rather than with dpkt's reader (dpkt 1.9.8). That
reader turns nanosecond timestamps into ``Decimal`` on every packet and drops
the original length. It also trusts any record length, and returns a record
cut short by the end of the file as if it were whole. pcapng goes through dpkt.
"""

from __future__ import annotations

import gzip
import io
import logging
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import dpkt

from smtptop.capture.errors import CaptureError

log = logging.getLogger(__name__)

Frame = tuple[float, bytes, int]  # capture time, captured bytes, length on the wire

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

# A record longer than this is damaged: libpcap itself rejects records over
# 256 KiB, and pcap files written with larger snaplens are rare.
MAX_RECORD_LEN = 16 * 1024 * 1024


class CaptureReader:
    """Frames of one capture file or stream, read in batches.

    Reading stops at the first damaged or cut-short record; the frames
    before it are kept, and ``error`` describes what was wrong.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.name = name
        self.error: str | None = None
        # A compiled BPF program's match function, applied to every frame as tcpdump -r does.
        self.frame_filter: Callable[[bytes], object] | None = None
        self._stream = stream
        self._frames = self._open()

    link_type: int
    snaplen: int

    def batches(self, size: int = 512) -> Iterator[list[Frame]]:
        """Yield lists of up to ``size`` frames until the input ends or breaks."""
        batch: list[Frame] = []
        accept = self.frame_filter
        frames = self._frames
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (EOFError, OSError, zlib.error) as error:
                # A gzip stream cut short raises from inside the decompressor.
                self.error = f"{self.name}: the compressed capture is cut short or damaged ({error})"
                break
            if accept is not None and not accept(frame[1]):
                continue
            batch.append(frame)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._stream.close()

    def _open(self) -> Iterator[Frame]:
        head = _peek(self._stream, 4)
        if head[:2] == GZIP_MAGIC:
            self._stream = gzip.GzipFile(fileobj=self._stream, mode="rb")  # type: ignore[assignment]
            head = _peek(self._stream, 4)
        if head in PCAP_MAGICS:
            return self._read_pcap(*PCAP_MAGICS[head])
        if head == PCAPNG_MAGIC:
            return self._read_pcapng()
        if not head:
            raise CaptureError(f"{self.name}: the file is empty; expected a pcap or pcapng capture")
        raise CaptureError(
            f"{self.name}: not a pcap or pcapng capture (starts with {head.hex()}); "
            "write captures with tcpdump -w or save them as pcap/pcapng in Wireshark"
        )

    def _read_pcap(self, order: str, unit: float) -> Iterator[Frame]:
        header = self._stream.read(24)
        if len(header) < 24:
            raise CaptureError(f"{self.name}: the pcap file header is cut short ({len(header)} of 24 bytes)")
        self.snaplen, self.link_type = struct.unpack(order + "16xII", header)
        # Only the low 16 bits name the link type; the upper bits carry FCS
        # information in some writers' files (pcap file format, LinkType field).
        self.link_type &= 0xFFFF
        return self._pcap_records(struct.Struct(order + "IIII"), unit)

    def _pcap_records(self, record: struct.Struct, unit: float) -> Iterator[Frame]:
        read = self._stream.read
        unpack = record.unpack
        number = 0
        while True:
            header = read(16)
            if len(header) < 16:
                if header:
                    self.error = f"{self.name}: the file ends inside a record header after frame {number}"
                return
            seconds, fraction, caplen, wire_len = unpack(header)
            if caplen > MAX_RECORD_LEN:
                self.error = (
                    f"{self.name}: record {number + 1} claims {caplen} captured bytes; "
                    "the file is damaged from there on"
                )
                return
            data = read(caplen)
            if len(data) < caplen:
                self.error = (
                    f"{self.name}: the file is cut short inside frame {number + 1} "
                    f"({len(data)} of {caplen} bytes)"
                )
                return
            number += 1
            yield seconds + fraction * unit, data, max(wire_len, caplen)

    def _read_pcapng(self) -> Iterator[Frame]:
        try:
            reader = dpkt.pcapng.Reader(self._stream)
        except (ValueError, dpkt.UnpackError, struct.error) as error:
            raise CaptureError(f"{self.name}: the pcapng file header is invalid ({error})") from None
        self.link_type = reader.datalink()
        self.snaplen = reader.snaplen
        return self._pcapng_records(reader)

    def _pcapng_records(self, reader: dpkt.pcapng.Reader) -> Iterator[Frame]:
        number = 0
        records = iter(reader)
        while True:
            try:
                ts, data = next(records)
            except StopIteration:
                return
            except (ValueError, dpkt.UnpackError, dpkt.NeedData, struct.error) as error:
                self.error = f"{self.name}: damaged pcapng block after frame {number} ({error})"
                return
            number += 1
            # NOTE: dpkt's pcapng reader does not return the original length,
            # so frames cut by the snaplen show their loss only through the IP length.
            yield float(ts), bytes(data), len(data)


def _peek(stream: BinaryIO, size: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:
        raise CaptureError("internal: capture streams must be buffered")
    return bytes(peek(size)[:size])


def open_stream(stream: BinaryIO, name: str) -> CaptureReader:
    """Read a capture from an already open, buffered binary stream, such as a copy of stdin."""
    return CaptureReader(stream, name)


def open_capture(path: str) -> CaptureReader:
    """Open ``path`` (or ``-`` for stdin) as a capture; raise CaptureError with a user-facing message."""
    if path == "-":
        return CaptureReader(sys.stdin.buffer, "stdin")
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise CaptureError(f"-r {path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"-r {path}: is a directory; give a pcap or pcapng file") from None
    except PermissionError:
        raise CaptureError(f"-r {path}: permission denied; check the file's mode or run as its owner") from None
    except OSError as error:
        raise CaptureError(f"-r {path}: cannot open ({error.strerror})") from None
    try:
        return CaptureReader(io.BufferedReader(stream), path)
    except CaptureError:
        stream.close()
        raise
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        stream.close()
        raise CaptureError(f"-r {path}: cannot read the capture ({error})") from None


def compile_frame_filter(expression: str, link_type: int) -> Callable[[bytes], object]:
    """Compile a tcpdump filter expression into a matcher of frame bytes, for reading files."""
    import pcap  # pypcap is imported only where a filter is used.

    try:
        matcher: Callable[[bytes], object] = pcap.bpf(expression.encode(), link_type).filter
        return matcher
    except OSError:
        raise CaptureError(
            f"invalid capture filter {expression!r} for link type {link_type}; "
            "the filter uses tcpdump's syntax (see man pcap-filter)"
        ) from None
