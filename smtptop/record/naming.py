"""File names and the rotation policy: which file each frame goes to. Pure: no I/O.

Theory of operation. ``RotationPolicy.place`` takes a frame's capture time
and its record size and returns where the frame goes. It sets ``opens`` when
a new file has to be opened first.

- ``-G SECONDS`` cuts time into slices aligned to the clock: a slice starts
  at a multiple of SECONDS since the Unix epoch. The start does not depend on
  the first packet, so sparse traffic cannot make the boundaries drift. The
  slice is chosen by the frame's capture time. Alignment is to the epoch,
  not to local midnight: with -G 86400 a file starts at 00:00 UTC, and with
  -G 3600 in a zone offset by half an hour, files start at :30 local time.
  A file is opened only when a frame arrives for its slice, so quiet slices
  leave no empty files. A frame stamped before the current slice (the clock
  stepped back) stays in the current file.
- The name is the -w pattern expanded by strftime(3) with the slice start in
  local time, as tcpdump expands it. Without -G, the whole recording is one
  slice that starts at the first frame's capture time. tcpdump leaves the
  pattern unexpanded in that case.
- ``-C BYTES`` opens a new file when the current one would grow past BYTES.
  A frame that alone does not fit goes into a file of its own. The size and
  the file number restart in each time slice.
- File numbers are appended to the expanded name as tcpdump appends them.
  Without -W, the first file of a slice carries no number and later ones
  carry 000001, 000002, ... (six digits, so a listing sorts them up to
  999,999 files per slice). With -W and -C, every file carries a number
  from 0 to W-1 with enough leading zeros for W-1, as tcpdump(8) describes.
- ``-W COUNT`` with ``-C`` is a ring: after file W-1 the next file is number
  0 again, overwriting it. With ``-G`` as well, each time slice has its own
  ring of W files. The names of different slices differ by their time codes,
  so the ring cannot overwrite an older slice. That keeps every completed
  slice whole, which is what a time-based recording is for. ``--keep``
  bounds the total. tcpdump 4.99.3 ignores -W when both -C and -G are given.
- ``-W COUNT`` with ``-G`` but no ``-C`` stops recording after COUNT files,
  where tcpdump exits. smtptop keeps monitoring and reports the stop.
- ``--keep N`` deletes the oldest file written by this recording once more
  than N exist. A ring file that is opened again counts as the newest.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from smtptop.record.options import RecordConfig

# Width of the file number without -W: six digits sort up to 999,999 files.
UNBOUNDED_NUMBER_WIDTH = 6

PCAP_FILE_HEADER_SIZE = 24


def slice_start(ts: float, rotate_seconds: int) -> int:
    """Return the start of the -G slice holding ``ts``: a multiple of rotate_seconds since the epoch."""
    return int(ts // rotate_seconds) * rotate_seconds


def expand_pattern(pattern: str, when: float) -> str:
    """Expand the strftime(3) codes of ``pattern`` with ``when`` in local time, as tcpdump does."""
    if "%" not in pattern:
        return pattern
    return time.strftime(pattern, time.localtime(when))


def number_width(ring_files: int | None) -> int:
    """Return the digits of a file number: those of W-1 with -W, else UNBOUNDED_NUMBER_WIDTH."""
    if ring_files is None:
        return UNBOUNDED_NUMBER_WIDTH
    return len(str(max(ring_files - 1, 0)))


def repeated_name(config: RecordConfig, now: float, slices: int = 4) -> str | None:
    """Return a name that consecutive -G slices would share, or None.

    A pattern without time codes as fine as -G (such as %H with -G 60) makes
    each slice overwrite the previous one, which tcpdump allows silently.
    Only consecutive slices are compared: a pattern that repeats after a
    longer period (%H with -G 3600) is a deliberate daily cycle.
    """
    seconds = config.rotate_seconds
    if seconds is None:
        return None
    start = slice_start(now, seconds)
    names = [expand_pattern(config.pattern, start + i * seconds) for i in range(slices + 1)]
    for earlier, later in itertools.pairwise(names):
        if earlier == later:
            return earlier
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    """The destination of one frame: ``path``, opened first when ``opens``; ``deletes`` lists the files --keep retires."""

    path: str
    opens: bool
    slice_start: float
    number: int | None
    deletes: tuple[str, ...] = ()


class RotationPolicy:
    """The -G/-C/-W/--keep state of one recording; see the module docstring."""

    def __init__(self, config: RecordConfig) -> None:
        self._config = config
        self._ring = config.ring_files is not None and config.rotate_bytes is not None
        self._stop_after = config.ring_files if not self._ring else None
        self._width = number_width(config.ring_files if self._ring else None)
        self._slice: float | None = None
        self._base = ""
        self._sequence = 0  # files opened so far in this slice
        self._size = 0  # bytes in the current file; 0 when no file is open
        self._records = 0
        self._current: str | None = None
        self._files_opened = 0
        self._kept: OrderedDict[str, None] = OrderedDict()
        self.stopped_reason: str | None = None

    def place(self, ts: float, record_size: int) -> Placement | None:
        """Return where a frame of ``record_size`` bytes (record header included) goes; None once stopped."""
        if self.stopped_reason is not None:
            return None
        start = self._slice_for(ts)
        if start != self._slice:
            self._begin_slice(start)
        needs_file = self._size == 0 or self._too_big(record_size)
        if not needs_file:
            assert self._current is not None
            self._add(record_size)
            return Placement(self._current, False, start, self._number_of(self._sequence - 1))
        return self._open_next(start, record_size)

    def abandon(self, kept_records: bool) -> None:
        """Forget the current file after a write error.

        With ``kept_records`` the broken file stays on disk, so the next file
        takes the next name. Without, nothing was kept and the same name is
        tried again.
        """
        if self._current is None:
            return
        if not kept_records:
            self._sequence -= 1
            self._files_opened -= 1
            self._kept.pop(self._current, None)
        self._current = None
        self._size = 0
        self._records = 0

    def _slice_for(self, ts: float) -> float:
        seconds = self._config.rotate_seconds
        if seconds is None:
            return ts if self._slice is None else self._slice
        start = float(slice_start(ts, seconds))
        if self._slice is not None and start < self._slice:
            return self._slice
        return start

    def _begin_slice(self, start: float) -> None:
        self._slice = start
        self._base = expand_pattern(self._config.pattern, start)
        self._sequence = 0
        self._current = None
        self._size = 0
        self._records = 0

    def _too_big(self, record_size: int) -> bool:
        limit = self._config.rotate_bytes
        return limit is not None and self._records > 0 and self._size + record_size > limit

    def _open_next(self, start: float, record_size: int) -> Placement | None:
        if self._stop_after is not None and self._files_opened >= self._stop_after:
            self.stopped_reason = (
                f"recording stopped after {self._stop_after} files (-W {self._stop_after})"
            )
            self._current = None
            return None
        number = self._number_of(self._sequence)
        path = self._base if number is None else f"{self._base}{number:0{self._width}d}"
        self._sequence += 1
        self._files_opened += 1
        self._current = path
        self._size = PCAP_FILE_HEADER_SIZE
        self._records = 0
        self._add(record_size)
        return Placement(path, True, start, number, self._retire(path))

    def _number_of(self, sequence: int) -> int | None:
        if self._ring:
            assert self._config.ring_files is not None
            return sequence % self._config.ring_files
        return sequence if sequence > 0 else None

    def _add(self, record_size: int) -> None:
        self._size += record_size
        self._records += 1

    def _retire(self, path: str) -> tuple[str, ...]:
        keep = self._config.keep_files
        if keep is None:
            return ()
        self._kept[path] = None
        self._kept.move_to_end(path)
        retired: list[str] = []
        while len(self._kept) > keep:
            oldest, _ = self._kept.popitem(last=False)
            retired.append(oldest)
        return tuple(retired)


def directory_of(path: str) -> str:
    """Return the directory a file name lives in, "." for a bare name."""
    return os.path.dirname(path) or "."
