"""A thread that empties the kernel's capture buffer into a bounded queue in memory.

Under a burst the analysis falls behind the link. Without this thread the
packets wait in the kernel buffer (-B), and once it is full the kernel drops
them. Reading the buffer on a thread of its own moves them into this queue,
which the analysis empties at its own pace, so a burst must outlast both
buffers before anything is lost. The thread shares the interpreter with the
analysis, so it runs when the analysis thread yields the GIL (every 5 ms by
default) or waits for the engine lock.

When the queue is full the newest packets are dropped and counted. The
queue's size counts each frame's bytes plus FRAME_OVERHEAD_BYTES for the
Python objects that hold it.

With a recording (-w), each batch goes to the recorder as it enters the
queue, so the files keep up with the link while the analysis is behind, and
a stop loses nothing that was queued. The recorder numbers frames in the
order the analysis takes them in, so a batch dropped from a full queue is
left out of both.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from smtptop.capture.errors import CaptureError
from smtptop.capture.files import Frame
from smtptop.capture.live import LiveCapture

log = logging.getLogger(__name__)

# Memory of one queued frame besides its bytes: the tuple, the bytes object's
# header, the float and the int (CPython 3.11, 64-bit; measured with sys.getsizeof).
FRAME_OVERHEAD_BYTES = 150
POLL_SECONDS = 0.1


class CaptureDrain:
    """Reads a LiveCapture on its own thread; ``take`` hands the frames on in capture order."""

    def __init__(
        self, capture: LiveCapture, max_bytes: int, on_queued: Callable[[list[Frame]], None] | None = None
    ) -> None:
        self.capture = capture
        self.max_bytes = max_bytes
        # Called with each batch that enters the queue, before the analysis can take it; must not block.
        self.on_queued = on_queued
        self._batches: deque[list[Frame]] = deque()
        self._queued_bytes = 0
        self._queued_frames = 0
        self._dropped = 0
        self._peak_bytes = 0
        self._error: CaptureError | None = None
        self._finished = False
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="smtptop-capture-read", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after one more read; frames already queued can still be taken."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Return whether the reading thread still runs."""
        return self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Frames dropped because the queue was full."""
        with self._ready:
            return self._dropped

    def backlog(self) -> tuple[int, float | None]:
        """Return the frames waiting in the queue and the capture time of the oldest (None when empty)."""
        with self._ready:
            if not self._batches:
                return 0, None
            return self._queued_frames, self._batches[0][0][0]

    @property
    def peak_bytes(self) -> int:
        """The maximum the queue held, counted as for max_bytes."""
        with self._ready:
            return self._peak_bytes

    def take(self, max_frames: int, timeout: float) -> list[Frame] | None:
        """Return up to ``max_frames`` queued frames, waiting up to ``timeout`` seconds for one.

        Returns an empty list when nothing came in time, and None once the
        thread has ended and the queue is empty. Raises the CaptureError that
        ended the reading, after the frames read before it.
        """
        with self._ready:
            if not self._batches and not self._finished:
                self._ready.wait(timeout)
            if not self._batches:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                return None if self._finished else []
            frames: list[Frame] = []
            while self._batches and len(frames) < max_frames:
                batch = self._batches[0]
                room = max_frames - len(frames)
                if len(batch) <= room:
                    frames.extend(self._batches.popleft())
                else:
                    frames.extend(batch[:room])
                    self._batches[0] = batch[room:]
            self._queued_bytes -= _size(frames)
            self._queued_frames -= len(frames)
            return frames

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._put(self.capture.read_batch(POLL_SECONDS))
            # Read what is left in the kernel buffer at a stop request, bounded so a busy link cannot delay the exit.
            for _ in range(20):
                batch = self.capture.read_batch(0.0)
                if not batch:
                    break
                self._put(batch)
        except CaptureError as error:
            with self._ready:
                self._error = error
        finally:
            with self._ready:
                self._finished = True
                self._ready.notify_all()

    def _put(self, batch: list[Frame]) -> None:
        if not batch:
            return
        size = _size(batch)
        with self._ready:
            if self._queued_bytes + size > self.max_bytes:
                if not self._dropped:
                    log.warning(
                        "capture queue full (%d MiB): dropping packets until the analysis catches up",
                        self.max_bytes // (1024 * 1024),
                    )
                self._dropped += len(batch)
                return
            if self.on_queued is not None:
                self.on_queued(batch)
            self._batches.append(batch)
            self._queued_bytes += size
            self._queued_frames += len(batch)
            self._peak_bytes = max(self._peak_bytes, self._queued_bytes)
            self._ready.notify()


def _size(frames: list[Frame]) -> int:
    return sum(len(data) for _, data, _ in frames) + FRAME_OVERHEAD_BYTES * len(frames)
