"""Recording options: the frozen RecordConfig, tcpdump's -C size units and RecordError.

The options mirror tcpdump's -w, -G, -C, -W, -Z and -U, plus ``--keep``.
Validation here covers what can be judged from the values alone. Checks
that touch the file system or the user database live in ``access.py`` and
run from ``Recorder.check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# tcpdump(8), -C: "The default unit of file_size is millions of bytes
# (1,000,000 bytes, not 1,048,576 bytes). By adding a suffix of k, m or g to
# the value, the unit can be changed to 1,024 (KiB), 1,048,576 (MiB), or
# 1,073,741,824 (GiB) respectively." (tcpdump.1.in, March 2024). tcpdump's
# parser takes both cases of each suffix.
_SIZE_UNITS = {"": 1_000_000, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE_SYNTAX = re.compile(r"([0-9]+)([kKmMgG]?)")

# The smallest pcap file with a record: the 24-byte file header and one 16-byte record header.
MIN_ROTATE_BYTES = 24 + 16


class RecordError(Exception):
    """A recording option or target that cannot work; the message names the value and the fix."""


def parse_file_size(text: str) -> int:
    """Convert a tcpdump -C value to bytes: a bare number counts millions of bytes.

    Raises ValueError naming the value when it is not a positive whole number
    with an optional k, m or g suffix.
    """
    match = _SIZE_SYNTAX.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"-C {text!r}: invalid file size; give a whole number of millions of bytes, "
            "or add k, m or g for KiB, MiB or GiB (for example -C 100 or -C 512m)"
        )
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if size == 0:
        raise ValueError(f"-C {text!r}: the file size must be greater than 0")
    return size


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """Recording target and file rotation, as given with tcpdump's flags.

    ``pattern`` is -w (strftime codes allowed), ``rotate_seconds`` -G,
    ``rotate_bytes`` -C already in bytes, ``ring_files`` -W, ``keep_files``
    ``--keep``, ``user`` -Z and ``flush_each_packet`` -U. ``queue_packets``
    and ``queue_bytes`` (captured bytes) bound the frames waiting for the
    writer thread. The byte default matches smtptop's default kernel capture
    buffer (-B 65536 KiB).

    Raises RecordError when the values contradict each other or are out of range.
    """

    pattern: str
    rotate_seconds: int | None = None
    rotate_bytes: int | None = None
    ring_files: int | None = None
    keep_files: int | None = None
    user: str | None = None
    flush_each_packet: bool = False
    queue_packets: int = 200_000
    queue_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.pattern:
            raise RecordError("-w: the file name is empty; give a path such as /var/tmp/smtp.pcap")
        if self.pattern == "-":
            # NOTE: tcpdump writes a stream to stdout with -w -; smtptop's
            # dashboard owns the terminal, so only files are supported.
            raise RecordError("-w -: writing to standard output is not supported; give a file name")
        if self.pattern.endswith("/"):
            raise RecordError(
                f"-w {self.pattern}: names a directory; add a file name such as smtp.pcap"
            )
        _require_positive("-G", self.rotate_seconds, "seconds")
        _require_positive("-W", self.ring_files, "files")
        _require_positive("--keep", self.keep_files, "files")
        _require_positive("queue size", self.queue_packets, "packets")
        _require_positive("queue size", self.queue_bytes, "bytes")
        if self.rotate_bytes is not None and self.rotate_bytes < MIN_ROTATE_BYTES:
            raise RecordError(
                f"-C: {self.rotate_bytes} bytes is too small for a pcap file; "
                f"give at least {MIN_ROTATE_BYTES} bytes (for example -C 1 for 1,000,000 bytes)"
            )
        if (
            self.ring_files is not None
            and self.rotate_seconds is None
            and self.rotate_bytes is None
        ):
            raise RecordError(
                f"-W {self.ring_files}: needs -C SIZE (a ring of files) or -G SECONDS"
            )
        if self.user is not None and not self.user:
            raise RecordError("-Z: the user name is empty")


def _require_positive(option: str, value: int | None, unit: str) -> None:
    if value is not None and value <= 0:
        raise RecordError(f"{option} {value}: must be a positive number of {unit}")
