"""The capture thread: reads a source in batches and feeds the engine.

The thread never touches widgets. The front ends read the engine through
``snapshot`` and ``detail``, and call ``stop`` when they exit. The thread
checks for a stop request at least every ``POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from smtptop.capture.drain import CaptureDrain
from smtptop.capture.errors import CaptureError
from smtptop.capture.files import CaptureReader, Frame
from smtptop.capture.live import LiveCapture
from smtptop.config import DEFAULT_QUEUE_MIB
from smtptop.engine.engine import Engine
from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.record import Recorder, RecorderStats

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# Frames per Engine.feed call. The engine lock is held for one call, and the
# dashboard's snapshot waits for it. In the bench's live step, the median key
# latency while the engine caught up was 135 ms with 1,000 frames, 90 to 108 ms
# with 250, and 72 to 81 ms with 100. The catch-up itself took as long.
FEED_FRAMES = 100
# After a stop request, the engine takes in queued frames for this long and skips the
# rest, so a backlog cannot delay the exit. The recording has them already: the
# capture queue hands each frame to the recorder as it enters.
STOP_FEED_SECONDS = 1.0
# The reading thread notices a stop within its poll (0.1 s) plus up to 20 quick reads.
DRAIN_JOIN_SECONDS = 0.5
# How long stopping waits for the recorder to write its queue and close the current file.
RECORDER_CLOSE_SECONDS = 10.0


# From this far behind, the dashboard shows the backlog and measures idle times on the
# capture clock, because the wall clock runs ahead of the packets still queued.
BEHIND_SHOWN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """Frames captured live but not yet analysed, how long the oldest has waited, and the queue's peak."""

    frames: int
    seconds: float
    peak_bytes: int = 0  # the maximum the queue has held (see CaptureDrain.peak_bytes)


class CaptureRunner:
    """Runs one source into one engine on a daemon thread."""

    def __init__(
        self,
        engine: Engine,
        source: LiveCapture | CaptureReader,
        realtime: bool = False,
        rebase_to_now: bool = False,
        recorder: Recorder | None = None,
        queue_bytes: int = DEFAULT_QUEUE_MIB * 1024 * 1024,
    ) -> None:
        self.engine = engine
        # Bound of the queue between the kernel buffer and the engine, for live capture.
        self.queue_bytes = queue_bytes
        self.source = source
        # Gets every batch the engine gets, in the same order, so both number frames alike:
        # from the capture queue as frames enter it, or here for a file.
        self.recorder = recorder
        self.realtime = realtime
        # A replay shown as live (the demo) moves capture times to the wall clock,
        # so ages and idle times count from the replay, not from the recording.
        self.rebase_to_now = rebase_to_now
        self._stop = threading.Event()
        self._stopped = False
        self._drain: CaptureDrain | None = None
        self._thread = threading.Thread(target=self._run, name="smtptop-capture", daemon=True)

    def start(self) -> None:
        """Start the recorder, if any, and the capture thread."""
        if self.recorder is not None:
            self.recorder.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop the capture thread and close the source; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.recorder is not None:
            # The current file is completed even when the capture thread is stuck.
            self.recorder.close(RECORDER_CLOSE_SECONDS)
        if self._thread.is_alive():
            # Still blocked reading a quiet stream such as stdin. Closing the stream
            # now would wait for that read; the daemon thread ends with the process.
            log.debug("capture thread still reading at stop; leaving its source open")
            return
        self.source.close()

    @property
    def drain(self) -> CaptureDrain | None:
        """The thread that reads a live capture into the queue; None for files."""
        return self._drain

    @property
    def queue_peak_bytes(self) -> int:
        """The maximum the live capture queue held (see CaptureDrain.peak_bytes); 0 for files."""
        return self._drain.peak_bytes if self._drain is not None else 0

    def backlog(self) -> Backlog | None:
        """Return what the live capture queue holds for the engine; None for files."""
        if self._drain is None:
            return None
        frames, oldest = self._drain.backlog()
        behind = max(time.time() - oldest, 0.0) if oldest is not None else 0.0
        return Backlog(frames, behind, self._drain.peak_bytes)

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot()

    def detail(self, key: int) -> ConversationDetail | None:
        return self.engine.detail(key)

    def details(self, keys: Collection[int]) -> dict[int, ConversationDetail | None]:
        """Return the details of ``keys``, None for each no longer tracked."""
        return {key: self.engine.detail(key) for key in keys}

    @property
    def link_type(self) -> int:
        return self.engine.link_type

    @property
    def snaplen(self) -> int:
        return self.source.snaplen

    def frames_for(self, keys: Collection[int]) -> tuple[list[Frame], int]:
        """Return the frames of these conversations, from memory or the recording, and how many are in neither."""
        read_back = self.recorder.read_frame if self.recorder is not None else None
        return self.engine.frames_for(keys, read_back)

    def read_frame(self, key: int, frame_no: int) -> tuple[bytes | None, str] | None:
        """Read a frame whose bytes left memory back from the recording, masked like the screens.

        Returns the bytes, or None with the reason they are gone; None without a recording.
        """
        if self.recorder is None:
            return None
        data = self.recorder.read_frame(frame_no)
        if data is None:
            return None, self.recorder.gone_reason(frame_no)
        return self.engine.mask_frame(key, data), ""

    def recording(self) -> RecorderStats | None:
        """Return the recorder's counters, or None when nothing is recorded."""
        return self.recorder.stats() if self.recorder is not None else None

    def set_reveal_secrets(self, reveal: bool) -> None:
        """Show AUTH secrets unmasked in later snapshots and details, or mask them again."""
        self.engine.set_reveal_secrets(reveal)

    def _run(self) -> None:
        try:
            if isinstance(self.source, LiveCapture):
                self._run_live(self.source)
            else:
                self._run_file(self.source)
        except CaptureError as error:
            log.error("%s", error)
            self.engine.finish_input(str(error))
        except Exception:
            # The UI must stay up to show what was captured so far.
            log.exception("capture thread failed")
            self.engine.finish_input("internal error in the capture thread; see the log")

    def _run_live(self, capture: LiveCapture) -> None:
        record = self.recorder.submit if self.recorder is not None else None
        drain = self._drain = CaptureDrain(capture, self.queue_bytes, on_queued=record)
        drain.start()
        try:
            self._feed_from(drain, capture)
        finally:
            # stop() closes the capture once this thread ends, so the reading thread
            # must be out of libpcap by then, also when the engine raised.
            drain.stop()
            drain.join(DRAIN_JOIN_SECONDS)

    def _feed_from(self, drain: CaptureDrain, capture: LiveCapture) -> None:
        stop_deadline: float | None = None
        while True:
            if stop_deadline is None and self._stop.is_set():
                drain.stop()
                stop_deadline = time.monotonic() + STOP_FEED_SECONDS
            frames = drain.take(FEED_FRAMES, POLL_SECONDS)
            if frames is None:
                break
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                # The recorder got these when they were queued; only the analysis skips them.
                continue
            # While frames wait in the queue, the wall clock runs ahead of the packets,
            # so it would age the conversations by the queue's delay.
            queued, _ = drain.backlog()
            self.engine.feed(frames, wall_clock=None if queued else time.time())
            kernel, interface = capture.drops()
            self.engine.set_drops(kernel, interface, drain.dropped)

    def _run_file(self, reader: CaptureReader) -> None:
        pace = _Pacer(self.rebase_to_now) if self.realtime else None
        for batch in reader.batches():
            if self._stop.is_set():
                return
            if pace is None:
                self._feed(batch)
                continue
            for frame in batch:
                if not pace.wait_for(frame, self._stop):
                    return
                self._feed([pace.rebase(frame)])
        self.engine.finish_input(reader.error)

    def _feed(self, batch: list[Frame]) -> None:
        """Feed frames read from a file to the recorder and the engine."""
        if self.recorder is not None:
            self.recorder.submit(batch)
        self.engine.feed(batch)


class _Pacer:
    """Holds frames back until their capture time, relative to the first, has passed on the wall clock."""

    def __init__(self, rebase_to_now: bool) -> None:
        self._first_ts: float | None = None
        self._start = 0.0
        self._rebase_to_now = rebase_to_now
        self._offset = 0.0

    def wait_for(self, frame: Frame, stop: threading.Event) -> bool:
        """Sleep until ``frame`` is due; return False if a stop was requested meanwhile."""
        ts = frame[0]
        if self._first_ts is None:
            self._first_ts = ts
            self._start = time.monotonic()
            self._offset = time.time() - ts if self._rebase_to_now else 0.0
        due = self._start + max(0.0, ts - self._first_ts)
        delay = due - time.monotonic()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()

    def rebase(self, frame: Frame) -> Frame:
        """Return the frame with its capture time moved by the replay's offset (zero unless rebasing)."""
        if not self._offset:
            return frame
        ts, data, wire_len = frame
        return ts + self._offset, data, wire_len
