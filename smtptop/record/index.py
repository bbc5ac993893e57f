"""Where each recorded frame sits on disk: a compact index from frame number to file and offset.

Frames are numbered 1, 2, 3, ... in submit order and written in that order,
so each file contains an ascending run of frame numbers. A segment records one
file: its first and last frame, the frames inside that range that are not in
it (gaps, stored as ranges), and the offset of every ``STRIDE``-th record.
Finding a frame means reading at most STRIDE-1 record headers forward from
the nearest stored offset. That costs about 8 / STRIDE bytes of memory per
frame instead of a Python object per frame.

Frames that never reached a file are kept as runs with a reason code, so
``gone_reason`` can report why a frame is missing. Segments of removed files
and old runs are forgotten past fixed limits, and their frames then get a
generic reason.

Not thread-safe by itself: ``Recorder`` serialises access with its lock.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field

STRIDE = 32
MAX_GONE_SEGMENTS = 4096
MAX_MISSING_RUNS = 65_536

# Reasons a frame never reached a file.
QUEUE_FULL = 0
WRITE_ERROR = 1
STOPPED = 2
CLOSED = 3

_MISSING_TEXT = {
    QUEUE_FULL: "the recording queue was full (the disk could not keep up)",
    WRITE_ERROR: "writing was failing at the time",
    STOPPED: "recording had stopped",
    CLOSED: "it arrived after the recording was closed",
}


@dataclass(slots=True)
class Segment:
    """One file's run of frames; ``gone`` is the reason the file no longer contains them, if it does not."""

    path: str
    first: int
    last: int = 0
    records: int = 0
    checkpoints: array[int] = field(default_factory=lambda: array("q"))
    gap_starts: array[int] = field(default_factory=lambda: array("q"))
    gap_ends: array[int] = field(default_factory=lambda: array("q"))
    gaps_before: array[int] = field(
        default_factory=lambda: array("q")
    )  # frames skipped up to gap i
    gone: str | None = None

    def record_number(self, frame_no: int) -> int | None:
        """Return the position of ``frame_no`` among this file's records, or None when it is not here."""
        if self.records == 0 or not self.first <= frame_no <= self.last:
            return None
        gap = bisect.bisect_right(self.gap_starts, frame_no) - 1
        skipped = 0
        if gap >= 0:
            if frame_no <= self.gap_ends[gap]:
                return None
            skipped = self.gaps_before[gap]
        return frame_no - self.first - skipped


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A written frame: its segment, the offset of a record at or before it and the records to skip."""

    segment: Segment
    checkpoint: int
    skip: int


class FrameIndex:
    """Frame numbers to (file, offset) for the files one recording wrote."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._firsts: array[int] = array("q")
        self._live: dict[str, Segment] = {}
        self._gone_count = 0
        self._forgot_segments = False
        self._run_firsts: array[int] = array("q")
        self._run_lasts: array[int] = array("q")
        self._run_reasons: array[int] = array("b")
        self._runs_forgotten_before = 1

    def add(self, path: str, frame_no: int, offset: int) -> None:
        """Note that ``frame_no`` was written at ``offset`` in ``path``.

        The first frame added for a path starts its segment, so a file that
        broke before its first record never appears here.
        """
        segment = self._live.get(path)
        if segment is None:
            segment = Segment(path, frame_no)
            self._segments.append(segment)
            self._firsts.append(frame_no)
            self._live[path] = segment
        elif frame_no != segment.last + 1:
            before = segment.gaps_before[-1] if segment.gaps_before else 0
            segment.gap_starts.append(segment.last + 1)
            segment.gap_ends.append(frame_no - 1)
            segment.gaps_before.append(before + frame_no - 1 - segment.last)
        if segment.records % STRIDE == 0:
            segment.checkpoints.append(offset)
        segment.last = frame_no
        segment.records += 1

    def remove_file(self, path: str, reason: str) -> int:
        """Mark the frames of ``path`` as gone for ``reason``; return how many it held."""
        segment = self._live.pop(path, None)
        if segment is None:
            return 0
        segment.gone = reason
        segment.checkpoints = array("q")
        self._gone_count += 1
        if self._gone_count > 2 * MAX_GONE_SEGMENTS:
            self._forget_old_segments()
        return segment.records

    def live_segment(self, path: str) -> Segment | None:
        return self._live.get(path)

    def note_missing(self, first: int, last: int, reason: int) -> None:
        """Record that frames ``first``..``last`` reached no file, for ``reason``."""
        if first > last:
            return
        if self._run_lasts and self._run_lasts[-1] + 1 == first and self._run_reasons[-1] == reason:
            self._run_lasts[-1] = last
            return
        self._run_firsts.append(first)
        self._run_lasts.append(last)
        self._run_reasons.append(reason)
        if len(self._run_firsts) > MAX_MISSING_RUNS:
            drop = len(self._run_firsts) - MAX_MISSING_RUNS
            self._runs_forgotten_before = self._run_lasts[drop - 1] + 1
            del self._run_firsts[:drop], self._run_lasts[:drop], self._run_reasons[:drop]

    def find(self, frame_no: int) -> IndexEntry | None:
        """Return where a written frame is, or None when no existing file contains it."""
        segment = self._segment_of(frame_no)
        if segment is None or segment.gone is not None:
            return None
        number = segment.record_number(frame_no)
        if number is None:
            return None
        return IndexEntry(segment, segment.checkpoints[number // STRIDE], number % STRIDE)

    def gone_reason(self, frame_no: int, last_submitted: int, last_handled: int) -> str:
        """Say why ``frame_no`` cannot be read back: which file it was in and what removed it."""
        if frame_no < 1 or frame_no > last_submitted:
            return f"frame {frame_no} was never submitted for recording"
        segment = self._segment_of(frame_no)
        if segment is not None and segment.record_number(frame_no) is not None:
            if segment.gone is None:
                return f"frame {frame_no} is in {segment.path}"
            return f"frame {frame_no} was in {segment.path}, which was {segment.gone}"
        reason = self._missing_reason(frame_no)
        if reason is not None:
            return f"frame {frame_no} was not written: {_MISSING_TEXT[reason]}"
        if frame_no > last_handled:
            return f"frame {frame_no} is still waiting in the recording queue"
        if self._forgot_segments or frame_no < self._runs_forgotten_before:
            return f"frame {frame_no} is in no file of this recording (older details are no longer kept)"
        return f"frame {frame_no} was not written"

    def _segment_of(self, frame_no: int) -> Segment | None:
        position = bisect.bisect_right(self._firsts, frame_no) - 1
        return self._segments[position] if position >= 0 else None

    def _missing_reason(self, frame_no: int) -> int | None:
        position = bisect.bisect_right(self._run_firsts, frame_no) - 1
        if position >= 0 and frame_no <= self._run_lasts[position]:
            return self._run_reasons[position]
        return None

    def _forget_old_segments(self) -> None:
        # Keep every live segment and the newest MAX_GONE_SEGMENTS removed ones.
        gone_positions = [i for i, segment in enumerate(self._segments) if segment.gone is not None]
        dropped = set(gone_positions[:-MAX_GONE_SEGMENTS])
        self._segments = [s for i, s in enumerate(self._segments) if i not in dropped]
        self._firsts = array("q", (s.first for s in self._segments))
        self._gone_count = MAX_GONE_SEGMENTS
        self._forgot_segments = True
