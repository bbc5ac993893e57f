"""The Recorder: writes submitted frames to rotating pcap files on its own thread.

The capture thread calls ``submit``, which only appends to a bounded queue
and never blocks on the disk. The writer thread places each frame with the
RotationPolicy (naming.py), writes it through PcapFile (pcapfile.py) and
records its position in the FrameIndex (index.py).

Errors do not reach the capture thread. When opening or writing a file
fails (a full disk, a permission change), the writer truncates the broken
file to its last whole record (if that fails too, ``last_error`` says the
file may end with a partial record), closes it, and sets ``last_error``. It drops
frames, counting them in ``packets_not_written``, until it can open a new
file, trying at most once a second and only while frames arrive. After
recovery ``last_error`` is kept, with a note saying when and in which file
recording resumed, so a gap in the files stays explained; ``recording``
turns True again.

Counters: ``packets_written`` and ``bytes_written`` only grow. The files on
disk contain ``packets_written - packets_overwritten - packets_deleted``
frames. After ``close``, ``packets_written + packets_not_written`` equals
the frames submitted. While running, the difference is the frames still
queued or buffered.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

from smtptop.capture.files import Frame
from smtptop.record import index as frame_index
from smtptop.record.access import FileOwner, check_writable, resolve_user
from smtptop.record.index import FrameIndex, IndexEntry
from smtptop.record.naming import (
    Placement,
    RotationPolicy,
    directory_of,
    expand_pattern,
    repeated_name,
)
from smtptop.record.options import RecordConfig, RecordError
from smtptop.record.pcapfile import RECORD_HEADER, PcapFile, PcapWriteError, record

log = logging.getLogger(__name__)

# Without -U, records collect up to this many bytes before one write; the
# writer also writes whenever it has emptied the queue.
BUFFER_BYTES = 256 * 1024
RETRY_SECONDS = 1.0
IDLE_WAIT_SECONDS = 0.5
FILE_MODE = 0o600  # captures hold mail contents and AUTH credentials
DIRECTORY_MODE = 0o750
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counters and state of one recording, as shown to the user."""

    current_file: str | None
    files_written: int
    packets_written: int
    bytes_written: int
    packets_not_written: int
    last_error: str | None
    recording: bool
    packets_overwritten: int = 0
    packets_deleted: int = 0
    packets_queued: int = 0
    stopped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class FrameLocation:
    """A written frame: its file, the offset of its 16-byte record header, and its captured length."""

    path: str
    offset: int
    captured_length: int


class Recorder:
    """Records frames to pcap files as configured by RecordConfig; see the module docstring."""

    def __init__(self, config: RecordConfig, link_type: int, snaplen: int) -> None:
        self._config = config
        self._link_type = link_type
        self._snaplen = snaplen
        self._policy = RotationPolicy(config)
        self._owner: FileOwner | None = None
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._queue: deque[tuple[int, list[Frame]]] = deque()
        self._queued = 0
        self._queued_bytes = 0
        self._next_frame = 1
        self._handled = 0
        self._index = FrameIndex()
        self._file: PcapFile | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._failing = False
        self._retry_at = 0.0
        self._files_written = 0
        self._packets_written = 0
        self._bytes_written = 0
        self._not_written = 0
        self._overwritten = 0
        self._deleted = 0
        self._last_error: str | None = None
        self._stopped_reason: str | None = None

    # ------------------------------------------------------------------
    # Called by the front end

    def check(self) -> None:
        """Verify before capture starts that the files can be created; raise RecordError otherwise.

        With -Z USER and root, the check creates and removes a probe file as
        USER in a forked child (see access.py).
        """
        config = self._config
        self._owner = resolve_user(config.user) if config.user else None
        now = time.time()
        repeated = repeated_name(config, now)
        if repeated is not None:
            raise RecordError(
                f"-w {config.pattern}: with -G {config.rotate_seconds}, consecutive files would all be "
                f"named {repeated}, each overwriting the last; add time codes that change every "
                f"{config.rotate_seconds} s, such as %Y%m%d-%H%M%S"
            )
        first = expand_pattern(config.pattern, now)
        if os.path.isdir(first):
            raise RecordError(
                f"-w {config.pattern}: {first} is a directory; add a file name such as smtp.pcap"
            )
        directory = directory_of(first)
        if "%" in os.path.dirname(config.pattern):
            # Directories named by time codes are created as they are needed,
            # so their nearest existing parent must be writable.
            while not os.path.exists(directory) and directory not in ("", ".", "/"):
                directory = directory_of(directory)
        check_writable(directory, f"-w {config.pattern}", self._owner)

    @property
    def owner(self) -> FileOwner | None:
        """The -Z user once check() has run, else None."""
        return self._owner

    def start(self) -> None:
        """Start the writer thread; calling it again does nothing."""
        if self._thread is not None:
            return
        if self._config.user and self._owner is None:
            self._owner = resolve_user(self._config.user)
        self._thread = threading.Thread(target=self._run, name="smtptop-recorder", daemon=True)
        self._thread.start()

    def submit(self, frames: list[Frame]) -> None:
        """Queue frames for writing; never blocks on the disk and never raises.

        Frames get the numbers 1, 2, 3, ... in submit order, as the engine
        numbers them. Frames that do not fit in the queue are counted as not
        written. The lock taken here is never held across disk I/O.
        """
        count = len(frames)
        if count == 0:
            return
        with self._lock:
            first = self._next_frame
            self._next_frame += count
            if self._closing or self._stopped_reason is not None:
                reason = frame_index.CLOSED if self._closing else frame_index.STOPPED
                self._missing(first, first + count - 1, reason)
                return
            accepted, size = self._fitting(frames)
            if accepted:
                self._queue.append((first, accepted))
                self._queued += len(accepted)
                self._queued_bytes += size
            if len(accepted) < count:
                self._missing(first + len(accepted), first + count - 1, frame_index.QUEUE_FULL)
        self._wakeup.set()

    def _fitting(self, frames: list[Frame]) -> tuple[list[Frame], int]:
        # Called with the lock held: the leading frames that fit both queue bounds, and their size.
        room = self._config.queue_packets - self._queued
        byte_room = self._config.queue_bytes - self._queued_bytes
        size = 0
        fitting = 0
        for _, data, _ in frames[: max(room, 0)]:
            if size + len(data) > byte_room:
                break
            size += len(data)
            fitting += 1
        return (frames if fitting == len(frames) else frames[:fitting]), size

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then flush and close the current file; calling it again does nothing."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wakeup.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning(
                    "the recorder did not finish writing within %.1f s; frames still queued are lost",
                    timeout,
                )
            return
        with self._lock:
            while self._queue:
                first, frames = self._queue.popleft()
                self._queued -= len(frames)
                self._queued_bytes -= sum(len(data) for _, data, _ in frames)
                self._missing(first, first + len(frames) - 1, frame_index.CLOSED)

    def stats(self) -> RecorderStats:
        with self._lock:
            current = self._file.path if self._file is not None else None
            return RecorderStats(
                current_file=current,
                files_written=self._files_written,
                packets_written=self._packets_written,
                bytes_written=self._bytes_written,
                packets_not_written=self._not_written,
                last_error=self._last_error,
                recording=not self._failing and self._stopped_reason is None,
                packets_overwritten=self._overwritten,
                packets_deleted=self._deleted,
                packets_queued=self._queued,
                stopped_reason=self._stopped_reason,
            )

    def locate(self, frame_no: int) -> FrameLocation | None:
        """Return where a written frame is on disk, or None when no existing file contains it."""
        found = self._read(frame_no, with_data=False)
        return found[0] if found is not None else None

    def read_frame(self, frame_no: int) -> bytes | None:
        """Return the captured bytes of a frame read back from its file, or None (see gone_reason)."""
        found = self._read(frame_no, with_data=True)
        return found[1] if found is not None else None

    def gone_reason(self, frame_no: int) -> str:
        """Say why read_frame returns None for ``frame_no``: the file it was in and what removed it."""
        with self._lock:
            return self._index.gone_reason(frame_no, self._next_frame - 1, self._handled)

    # ------------------------------------------------------------------
    # Reading back (any thread)

    def _read(self, frame_no: int, with_data: bool) -> tuple[FrameLocation, bytes] | None:
        with self._lock:
            entry = self._index.find(frame_no)
        if entry is None:
            return None
        try:
            found = _read_record(entry, with_data)
        except (OSError, ValueError, struct.error) as error:
            log.debug(
                "reading frame %d back from %s failed: %s", frame_no, entry.segment.path, error
            )
            return None
        with self._lock:
            # The writer marks a file gone before it truncates or deletes it,
            # so a file still live now was intact while it was read.
            if entry.segment.gone is not None:
                return None
        return found

    # ------------------------------------------------------------------
    # The writer thread

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                with self._lock:
                    if self._closing and not self._queue:
                        break
                continue
            first, frames = batch
            for number, frame in enumerate(frames, start=first):
                try:
                    self._write(number, frame)
                except Exception:  # the writer must survive anything one frame causes
                    log.exception("recording frame %d failed", number)
                    with self._lock:
                        self._missing(number, number, frame_index.WRITE_ERROR)
            with self._lock:
                caught_up = not self._queue
            if caught_up:
                self._flush()
        self._finish_file()
        log.info("recording closed: %s", self.stats())

    def _take(self) -> tuple[int, list[Frame]] | None:
        with self._lock:
            if self._queue:
                first, frames = self._queue.popleft()
                self._queued -= len(frames)
                self._queued_bytes -= sum(len(data) for _, data, _ in frames)
                return first, frames
            if self._closing:
                return None
            self._wakeup.clear()
        self._wakeup.wait(IDLE_WAIT_SECONDS)
        return None

    def _write(self, frame_no: int, frame: Frame) -> None:
        if self._failing and time.monotonic() < self._retry_at:
            with self._lock:
                self._missing(frame_no, frame_no, frame_index.WRITE_ERROR)
            return
        data = record(frame)
        placement = self._policy.place(frame[0], len(data))
        if placement is None:
            self._stop(frame_no)
            return
        if placement.opens:
            # The policy has moved on to the new file, so a failure while
            # finishing the old one must not make it abandon the new one.
            self._finish_file(abandon=False)
            self._delete(placement)
            waiting = self._failing and time.monotonic() < self._retry_at
            if waiting or not self._open(placement.path):
                self._policy.abandon(kept_records=False)
                with self._lock:
                    self._missing(frame_no, frame_no, frame_index.WRITE_ERROR)
                return
        assert self._file is not None
        self._file.append(frame_no, data)
        if self._config.flush_each_packet or self._file.buffered >= BUFFER_BYTES:
            self._flush()

    def _open(self, path: str) -> bool:
        with self._lock:
            # Mark an older file of the same name gone before truncating it,
            # so that no reader takes the new contents for the old frames.
            replaced = self._index.remove_file(path, self._overwrite_reason())
            self._overwritten += replaced
        try:
            self._ensure_directory(path)
            fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
        except OSError as error:
            self._fail(f"cannot create {path}: {error.strerror}")
            return False
        self._chown(fd, path)
        try:
            pcap = PcapFile(fd, path, self._link_type, self._snaplen)
        except PcapWriteError as error:
            os.close(fd)
            _unlink_quietly(path)
            self._fail(f"cannot write {path}: {error.error.strerror}")
            return False
        with self._lock:
            self._file = pcap
            self._files_written += 1
            self._bytes_written += pcap.on_disk
            if self._failing:
                stamp = time.strftime("%H:%M:%S")
                self._last_error = f"{self._last_error} (recording resumed at {stamp} in {path})"
                self._failing = False
                log.warning("recording resumed in %s", path)
        log.info("recording to %s", path)
        return True

    def _flush(self, abandon: bool = True) -> None:
        pcap = self._file
        if pcap is None:
            return
        before = pcap.on_disk
        try:
            done = pcap.flush()
        except PcapWriteError as error:
            self._settle(pcap, error.kept, pcap.on_disk - before)
            self._broken(pcap, error, abandon)
            return
        self._settle(pcap, done, pcap.on_disk - before)

    def _settle(self, pcap: PcapFile, done: list[tuple[int, int]], size: int) -> None:
        with self._lock:
            for frame_no, offset in done:
                self._index.add(pcap.path, frame_no, offset)
            self._packets_written += len(done)
            self._bytes_written += size
            if done:
                self._handled = max(self._handled, done[-1][0])

    def _broken(self, pcap: PcapFile, error: PcapWriteError, abandon: bool) -> None:
        message = f"cannot write {pcap.path}: {error.error.strerror}"
        if not error.truncated:
            message += "; the file may end with a partial record"
        with self._lock:
            self._file = None
            for frame_no in error.lost:
                self._missing(frame_no, frame_no, frame_index.WRITE_ERROR)
        _close_quietly(pcap)
        if pcap.records == 0:
            _unlink_quietly(pcap.path)
        if abandon:
            self._policy.abandon(kept_records=pcap.records > 0)
        self._fail(message)

    def _finish_file(self, abandon: bool = True) -> None:
        self._flush(abandon)
        pcap = self._file
        if pcap is None:
            return
        with self._lock:
            self._file = None
        _close_quietly(pcap)

    def _delete(self, placement: Placement) -> None:
        for path in placement.deletes:
            with self._lock:
                self._deleted += self._index.remove_file(
                    path, f"deleted by --keep {self._config.keep_files}"
                )
            _unlink_quietly(path)
            log.info("deleted %s (--keep %s)", path, self._config.keep_files)

    def _stop(self, frame_no: int) -> None:
        self._finish_file(abandon=False)
        reason = self._policy.stopped_reason
        with self._lock:
            if self._stopped_reason is None:
                log.info("%s", reason)
            self._stopped_reason = reason
            self._missing(frame_no, frame_no, frame_index.STOPPED)

    def _fail(self, message: str) -> None:
        if not self._failing:
            log.error("%s; retrying once a second while packets arrive", message)
        else:
            log.debug("retry failed: %s", message)
        with self._lock:
            self._last_error = message
            self._failing = True
        self._retry_at = time.monotonic() + RETRY_SECONDS

    def _missing(self, first: int, last: int, reason: int) -> None:
        # Called with the lock held.
        self._index.note_missing(first, last, reason)
        self._not_written += last - first + 1
        self._handled = max(self._handled, last)

    def _overwrite_reason(self) -> str:
        stamp = time.strftime("%H:%M:%S")
        if self._config.ring_files is not None and self._config.rotate_bytes is not None:
            return (
                f"overwritten at {stamp} by the next turn of the -W {self._config.ring_files} ring"
            )
        return f"overwritten at {stamp} because the -w pattern gave the same name again"

    def _ensure_directory(self, path: str) -> None:
        directory = os.path.dirname(path)
        if (
            not directory
            or "%" not in os.path.dirname(self._config.pattern)
            or os.path.isdir(directory)
        ):
            return
        os.makedirs(directory, DIRECTORY_MODE, exist_ok=True)
        if self._owner is not None and os.geteuid() == 0:
            os.chown(directory, self._owner.uid, self._owner.gid)

    def _chown(self, fd: int, path: str) -> None:
        # The command line drops root before recording, so this serves callers that keep
        # running as root with a -Z user.
        if self._owner is None or os.geteuid() != 0:
            return
        try:
            os.fchown(fd, self._owner.uid, self._owner.gid)
        except OSError as error:
            log.warning("cannot give %s to user %s: %s", path, self._owner.name, error.strerror)


def _read_record(entry: IndexEntry, with_data: bool) -> tuple[FrameLocation, bytes]:
    path = entry.segment.path
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset = entry.checkpoint
        for _ in range(entry.skip):
            _, _, captured, _ = RECORD_HEADER.unpack(os.pread(fd, RECORD_HEADER.size, offset))
            offset += RECORD_HEADER.size + captured
        _, _, captured, _ = RECORD_HEADER.unpack(os.pread(fd, RECORD_HEADER.size, offset))
        data = os.pread(fd, captured, offset + RECORD_HEADER.size) if with_data else b""
    finally:
        os.close(fd)
    if with_data and len(data) != captured:
        raise ValueError(f"record at offset {offset} is cut short")
    return FrameLocation(path, offset, captured), data


def _close_quietly(pcap: PcapFile) -> None:
    try:
        pcap.close()
    except OSError as error:
        log.warning("closing %s failed: %s", pcap.path, error.strerror)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("cannot delete %s: %s", path, error.strerror)
