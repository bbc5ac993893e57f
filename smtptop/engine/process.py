"""The capture and the engine in a child process, so the dashboard keeps an interpreter of its own.

In one process the engine thread and the dashboard share the GIL. While the
engine catches up with a burst, every key press waits for its turn: in the
bench's live step, a sort key took a median of 72 to 108 ms and often over
100 ms. Here the CaptureRunner runs in a forked child and the dashboard
handles keys on the newest state the child sent, without waiting for it.

Every ``push_seconds`` the child sends a state message:

* the capture statistics and the traffic panel, whole;
* the table rows that changed since the previous state, and the keys that
  left the table. Rows travel as plain tuples, because unpickling 10,000
  frozen dataclass rows takes about 50 ms, which would hold the dashboard up;
* the live queue's backlog and the recorder's counters;
* the detail of each conversation the dashboard watches: one whose detail
  it requested twice within WATCH_SECONDS, as the open conversation screen
  (or the two of a comparison) does on every refresh.

Calls that need a response (the detail of a conversation opened just now,
the details and frames for an export, a frame read back from the recording,
showing or masking AUTH secrets) go with a number. After showing or masking,
the child sends a state message before the response, so the state read
after it already shows the change.

The child is forked before any thread starts and after -Z dropped root. It
owns the capture handle, the TLS keys and the recorder. The dashboard has
only what the child sent. When the dashboard goes away without a stop, the
child notices the pipe close and stops the capture and the recording, as on a stop.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import signal
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from multiprocessing.connection import Connection, Pipe
from typing import Any, NoReturn

from smtptop.capture.files import Frame
from smtptop.engine.runner import RECORDER_CLOSE_SECONDS, STOP_FEED_SECONDS, Backlog, CaptureRunner
from smtptop.engine.snapshot import ConversationDetail, ConversationRow, Snapshot
from smtptop.record import RecorderStats

log = logging.getLogger(__name__)

PUSH_SECONDS = 0.25
# A detail requested twice within this time is sent with every state from then on, until
# the dashboard has not requested it for this long: its screen was closed.
WATCH_SECONDS = 1.0
CALL_TIMEOUT_SECONDS = 10.0
# Frames for an export can be read back from many recorded files.
EXPORT_TIMEOUT_SECONDS = 120.0
# How long a stop waits for the child: it feeds the engine for STOP_FEED_SECONDS, joins the
# capture thread (2 s at most), then closes the recording.
STOP_WAIT_SECONDS = STOP_FEED_SECONDS + 2.0 + RECORDER_CLOSE_SECONDS + 2.0
# The calls the dashboard may make in the child, all of them CaptureRunner methods.
CALLS = frozenset({"detail", "details", "frames_for", "read_frame", "set_reveal_secrets"})
# The calls that change what the screens show, so the child sends a state before responding.
STATE_CHANGING_CALLS = frozenset({"set_reveal_secrets"})

# At most 15 characters, the kernel's limit for a process name.
CHILD_NAME = "smtptop-capture"
# The capture process yields the CPU to the dashboard (and to the mail server). In the bench's
# terminal step on 2 cores, with smtp-source and smtp-sink busy too, a key took up to 120 to
# 234 ms at the same priority and at most 92 ms at this one. There were no kernel or queue
# drops and the catch-up was not slower, because packets wait in the kernel buffer and the queue.
CAPTURE_NICENESS = 10

_ROW_FIELDS = tuple(field.name for field in fields(ConversationRow))
_row_values = operator.attrgetter(*_ROW_FIELDS)


@dataclass(frozen=True, slots=True)
class _State:
    """The dashboard's data, as of the child's last state message."""

    snapshot: Snapshot
    backlog: Backlog | None
    recording: RecorderStats | None
    details: dict[int, ConversationDetail | None]


class _Reply:
    """The response to one call, filled in by the reading thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None

    def set(self, ok: bool, value: Any) -> None:
        self.ok = ok
        self.value = value
        self.done.set()


class EngineProcess:
    """A snapshot source whose CaptureRunner runs in a child process; see the module docstring.

    It offers what the dashboard reads from a CaptureRunner: ``snapshot``,
    ``detail``, ``backlog``, ``recording``, ``set_reveal_secrets``,
    ``frames_for``, ``read_frame``, ``link_type``, ``snaplen`` and ``stop``.
    """

    def __init__(self, runner: CaptureRunner, push_seconds: float = PUSH_SECONDS) -> None:
        self.runner = runner
        self.push_seconds = push_seconds
        self.link_type = runner.link_type
        self.snaplen = runner.snaplen
        # Until the child's first state arrives, the dashboard shows the empty engine.
        self._state = _State(runner.snapshot(), None, None, {})
        self._rows: dict[int, ConversationRow] = {}
        self._requested: dict[int, float] = {}  # key: when the dashboard last requested its detail
        self._watched: set[int] = set()
        self._watch_sent: tuple[int, ...] = ()
        self._replies: dict[int, _Reply] = {}
        self._call_ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._connection: Connection | None = None
        self._pid: int | None = None
        self._exit_status: int | None = None
        self._ended: str | None = None  # why the child is gone, when it ended without a stop
        self._stopping = False
        self._reader = threading.Thread(target=self._read, name="smtptop-engine-reader", daemon=True)

    def start(self) -> None:
        """Fork the child, which starts the capture.

        Call it before starting threads of your own: the child is a copy of this
        process with only the calling thread, so a lock another thread holds stays
        locked there.
        """
        ours, theirs = Pipe()
        pid = os.fork()
        if pid == 0:
            _child_main(self.runner, theirs, ours, self.push_seconds)
        theirs.close()
        self._pid = pid
        self._connection = ours
        self._reader.start()
        log.debug("engine process %d started", pid)

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def ended(self) -> str | None:
        """Why the child ended without a stop, such as "the capture process (pid 7) was killed by signal 9 (SIGKILL)".

        None while it runs and after a stop.
        """
        return self._ended

    def _ended_error(self) -> str:
        """Return the error the dashboard shows once the child has ended without a stop."""
        return (
            f"{self._ended}; capture has stopped and the screen shows what it sent last. "
            "Restart smtptop, and start it with --log FILE to keep the capture process's messages"
        )

    # -- what the dashboard reads --------------------------------------------

    def snapshot(self) -> Snapshot:
        self._forget_unwatched()
        snapshot = self._state.snapshot
        if self._ended is None:
            return snapshot
        # Nothing more comes from a process that has ended: the input is finished.
        return replace(snapshot, stats=replace(snapshot.stats, error=self._ended_error(), finished=True))

    def detail(self, key: int) -> ConversationDetail | None:
        now = time.monotonic()
        previous = self._requested.get(key)
        self._requested[key] = now
        details = self._state.details
        if key in details:
            return details[key]
        if previous is not None and now - previous < WATCH_SECONDS:
            # A screen refreshes this detail, so the child sends it with each state from now on.
            self._watched.add(key)
            self._send_watch()
        detail: ConversationDetail | None = self._call("detail", key)
        return detail

    def details(self, keys: Collection[int]) -> dict[int, ConversationDetail | None]:
        """Return the details of ``keys`` in one call, for an export of many conversations."""
        found: dict[int, ConversationDetail | None] = self._call("details", tuple(keys), timeout=EXPORT_TIMEOUT_SECONDS)
        return found

    def backlog(self) -> Backlog | None:
        return self._state.backlog

    def recording(self) -> RecorderStats | None:
        return self._state.recording

    def set_reveal_secrets(self, reveal: bool) -> None:
        self._call("set_reveal_secrets", reveal)

    def frames_for(self, keys: Collection[int]) -> tuple[list[Frame], int]:
        frames: tuple[list[Frame], int] = self._call("frames_for", tuple(keys), timeout=EXPORT_TIMEOUT_SECONDS)
        return frames

    def read_frame(self, key: int, frame_no: int) -> tuple[bytes | None, str] | None:
        try:
            found: tuple[bytes | None, str] | None = self._call("read_frame", key, frame_no)
        except (RuntimeError, TimeoutError) as error:
            # The hex view shows the reason in place of the bytes.
            return None, str(error)
        return found

    def stop(self) -> None:
        """Stop the child's capture and recording, and wait for it; calling it again does nothing."""
        if self._stopping or self._pid is None:
            return
        self._stopping = True
        self._send(("stop",))
        self._wait_for_child(STOP_WAIT_SECONDS)
        if self._exit_status is None:
            log.warning("engine process %d did not stop within %g s; killing it", self._pid, STOP_WAIT_SECONDS)
            os.kill(self._pid, signal.SIGKILL)
            self._wait_for_child(None)
        self._reader.join(1.0)
        if self._connection is not None:
            self._connection.close()

    # -- the pipe --------------------------------------------------------------

    def _call(self, name: str, *args: Any, timeout: float = CALL_TIMEOUT_SECONDS) -> Any:
        if self._ended is not None:
            raise RuntimeError(self._ended_error())
        reply = _Reply()
        call_id = next(self._call_ids)
        self._replies[call_id] = reply
        self._send(("call", call_id, name, args))
        if not reply.done.wait(timeout):
            self._replies.pop(call_id, None)
            raise TimeoutError(f"timed out: the capture process did not respond to {name} within {timeout:g} s")
        if not reply.ok:
            raise reply.value
        return reply.value

    def _send(self, message: tuple[Any, ...]) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            with self._send_lock:
                connection.send(message)
        except OSError:
            # The child is gone, and the reading thread reports why.
            log.debug("engine process gone; %s not sent", message[0])

    def _send_watch(self) -> None:
        watched = tuple(sorted(self._watched))
        if watched != self._watch_sent:
            self._watch_sent = watched
            self._send(("watch", watched))

    def _forget_unwatched(self) -> None:
        cutoff = time.monotonic() - WATCH_SECONDS
        for key in [key for key, requested in self._requested.items() if requested < cutoff]:
            del self._requested[key]
            self._watched.discard(key)
        self._send_watch()

    def _read(self) -> None:
        assert self._connection is not None
        try:
            while True:
                message = self._connection.recv()
                if message[0] == "state":
                    self._apply(*message[1:])
                elif message[0] == "reply":
                    _, call_id, ok, value = message
                    reply = self._replies.pop(call_id, None)
                    if reply is not None:
                        reply.set(ok, value)
        except (EOFError, OSError):
            pass
        except Exception:
            # A message this side cannot read: without a reader the child would block on its
            # next send, so it is stopped, and the header says why.
            log.exception("reading a message from the capture process failed")
            self._ended = "reading a message from the capture process failed"
            self._send(("stop",))
        self._wait_for_child(1.0)
        if not self._stopping and self._ended is None:
            self._ended = self._end_text()
            log.error("%s", self._ended)
        failure = RuntimeError(self._ended_error() if self._ended else "the capture process has stopped")
        for reply in list(self._replies.values()):
            reply.set(False, failure)

    def _apply(
        self,
        stats: Any,
        traffic: Any,
        changed: list[tuple[Any, ...]],
        removed: list[int],
        backlog: Backlog | None,
        recording: RecorderStats | None,
        details: dict[int, ConversationDetail | None],
    ) -> None:
        rows = self._rows
        for key in removed:
            rows.pop(key, None)
        # The child lists rows by key. A conversation becomes SMTP after later ones can, so a
        # new row may belong before rows already listed.
        newest = next(reversed(rows), 0) if rows else 0
        out_of_order = False
        for values in changed:
            row = ConversationRow(*values)
            if row.key not in rows and row.key < newest:
                out_of_order = True
            rows[row.key] = row
        if out_of_order:
            self._rows = rows = dict(sorted(rows.items()))
        snapshot = Snapshot(stats, tuple(rows.values()), traffic)
        self._state = _State(snapshot, backlog, recording, details)

    def _wait_for_child(self, timeout: float | None) -> None:
        if self._pid is None or self._exit_status is not None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self._pid, 0 if deadline is None else os.WNOHANG)
            except ChildProcessError:
                self._exit_status = 0
                return
            if pid:
                self._exit_status = status
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.02)

    def _end_text(self) -> str:
        status = self._exit_status
        if status is None:
            how = "closed its pipe"
        elif os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            how = f"was killed by signal {number} ({signal.Signals(number).name})"
        else:
            how = f"ended with exit status {os.waitstatus_to_exitcode(status)}"
        return f"the capture process (pid {self._pid}) {how}"


def _child_main(runner: CaptureRunner, connection: Connection, parents_end: Connection, push_seconds: float) -> NoReturn:
    """Run the capture and serve the dashboard until it stops us or goes away; never returns."""
    status = 0
    try:
        parents_end.close()
        # The dashboard stops the child, and a dashboard that dies closes the pipe, which
        # stops it too. A Ctrl-C or a hangup sent to the whole process group must not cut
        # the recording short; a SIGTERM stops as the dashboard would.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _exit_on_terminate)
        # Forked from a running event loop (the test harness, the bench), signals here must not
        # wake the dashboard's loop through the descriptor the child inherited.
        signal.set_wakeup_fd(-1)
        # The dashboard owns the terminal: stray output from here would garble it. Messages go to --log.
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        os.close(quiet)
        _name_process(CHILD_NAME)
        # Before any thread starts, so that the capture's threads inherit it.
        os.nice(CAPTURE_NICENESS)
        _Server(runner, connection, push_seconds).run()
    except BaseException:
        log.exception("the capture process failed")
        status = 1
    finally:
        logging.shutdown()
        os._exit(status)


def _name_process(name: str) -> None:
    """Set the name that top and ps -o comm show, to tell the capture process from the dashboard."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        log.debug("cannot name the capture process %s", name)


def _exit_on_terminate(signum: int, frame: object) -> None:
    # A second SIGTERM must not cut short the stop that the first one starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


class _Server:
    """The child's side: runs the capture and serves the dashboard's requests on one thread."""

    def __init__(self, runner: CaptureRunner, connection: Connection, push_seconds: float) -> None:
        self.runner = runner
        self.connection = connection
        self.push_seconds = push_seconds
        self._sent: dict[int, ConversationRow] = {}
        self._watched: tuple[int, ...] = ()

    def run(self) -> None:
        self.runner.start()
        try:
            self._serve()
        except (EOFError, OSError):
            log.info("the dashboard went away; stopping the capture")
        except SystemExit:
            log.info("received SIGTERM, stopping the capture")
        finally:
            self.runner.stop()

    def _serve(self) -> None:
        next_push = 0.0
        while True:
            ready = self.connection.poll(max(next_push - time.monotonic(), 0.0))
            if ready and not self._handle(self.connection.recv()):
                return
            if time.monotonic() >= next_push:
                self._push()
                next_push = time.monotonic() + self.push_seconds

    def _handle(self, message: tuple[Any, ...]) -> bool:
        """Act on one message from the dashboard; False for a stop."""
        kind = message[0]
        if kind == "stop":
            return False
        if kind == "watch":
            self._watched = message[1]
        elif kind == "call":
            _, call_id, name, args = message
            ok, value = self._run_call(name, args)
            if name in STATE_CHANGING_CALLS:
                self._push()
            self.connection.send(("reply", call_id, ok, value))
        return True

    def _run_call(self, name: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
        if name not in CALLS:
            return False, RuntimeError(f"the capture process has no call {name!r}")
        try:
            return True, getattr(self.runner, name)(*args)
        except Exception as error:
            log.exception("%s failed in the capture process", name)
            # The dashboard shows the error; an exception of our own may not pickle, its text does.
            return False, RuntimeError(f"{name} failed in the capture process: {error}")

    def _push(self) -> None:
        runner = self.runner
        snapshot = runner.snapshot()
        sent = self._sent
        rows = {row.key: row for row in snapshot.rows}
        changed = [_row_values(row) for key, row in rows.items() if sent.get(key) is not row]
        removed = [key for key in sent if key not in rows]
        self._sent = rows
        details = {key: runner.detail(key) for key in self._watched}
        self.connection.send(
            ("state", snapshot.stats, snapshot.traffic, changed, removed, runner.backlog(), runner.recording(), details)
        )
