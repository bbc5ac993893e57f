"""The Textual app: pulls snapshots from the source on a timer and shows them.

The source is read only from the app's timer on the event loop, a few times
per second, never per packet. ``p`` stops reading (the source keeps
capturing), so the screen does not change while the user reads it. ``R``
requests AUTH credentials unmasked from the source, after a confirmation, and
masks them again on the next press.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from smtptop.engine.runner import BEHIND_SHOWN_SECONDS
from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.text.timefmt import TimeDisplay
from smtptop.ui.compare import CompareScreen
from smtptop.ui.confirm import ConfirmScreen
from smtptop.ui.conversation import ConversationScreen
from smtptop.ui.dashboard import DashboardScreen
from smtptop.ui.help import HelpScreen
from smtptop.ui.source import SnapshotSource

logger = logging.getLogger(__name__)

# Seconds between two log records about the same failing source call, so a
# source that fails on every refresh does not flood the log.
_ERROR_LOG_INTERVAL = 30.0


class SmtpTopApp(App[None]):
    """The dashboard of SMTP conversations and its drill-down screens."""

    CSS_PATH = "smtptop.tcss"
    TITLE = "smtptop"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("R", "toggle_secrets", "Secrets", key_display="R"),
    ]

    REVEAL_QUESTION = "Show AUTH credentials on screen? y/n"

    def __init__(
        self,
        source: SnapshotSource,
        *,
        stall_seconds: float = 10.0,
        refresh_hz: float = 4.0,
        live: bool = True,
        secrets_shown: bool = False,
    ) -> None:
        if not refresh_hz > 0:
            raise ValueError(
                f"refresh_hz must be a positive number of refreshes per second, got {refresh_hz!r}"
            )
        if not stall_seconds >= 0:
            raise ValueError(f"stall_seconds must be zero or more seconds, got {stall_seconds!r}")
        super().__init__()
        self.source = source
        self.stall_seconds = stall_seconds
        self.refresh_hz = refresh_hz
        self.live = live
        self.paused = False
        # True when the source was started revealing AUTH credentials, so the header says so.
        self.secrets_shown = secrets_shown
        self.time_display = TimeDisplay.ABSOLUTE
        self.dashboard = DashboardScreen()
        self._last_error_log: dict[str, float] = {}

    def get_default_screen(self) -> Screen[None]:
        return self.dashboard

    def on_mount(self) -> None:
        self.refresh_from_source()
        self.set_interval(1 / self.refresh_hz, self.refresh_from_source)

    def on_unmount(self) -> None:
        try:
            self.source.stop()
        except Exception:
            logger.exception("stopping the snapshot source failed")

    def display_now(self, capture_now: float, finished: bool = False) -> float:
        """Return the time that ages and idle times are measured against.

        Live captures use the later of the newest packet time and the wall
        clock, so a conversation keeps ageing while no packets arrive, except
        while the analysis is behind the capture, and once the capture has
        ended: then packet time. A file replay uses only packet time, so its
        numbers do not depend on when it is replayed.
        """
        if finished:
            # Nothing more can arrive, so the wall clock would only make open conversations look stalled.
            return capture_now
        backlog = self.dashboard.backlog
        if backlog is not None and backlog.seconds >= BEHIND_SHOWN_SECONDS:
            # The analysis is behind: the wall clock would count the time packets wait in
            # the queue as idle time and flag conversations as stalled that are not.
            return capture_now
        if self.live:
            return max(capture_now, time.time())
        return capture_now

    def refresh_from_source(self) -> None:
        """Read a snapshot, and the details of the open conversation or comparison, unless paused."""
        if self.paused:
            return
        if not self.is_running:
            # The timer can still fire while the app shuts down and removes the screens' widgets.
            return
        snapshot, error = self._fetch_snapshot()
        capture_now = snapshot.stats.now if snapshot is not None else 0.0
        finished = snapshot.stats.finished if snapshot is not None else False
        recording = getattr(self.source, "recording", None)
        self.dashboard.recording = recording() if recording is not None else None
        backlog = getattr(self.source, "backlog", None)
        self.dashboard.backlog = backlog() if backlog is not None else None
        self.dashboard.show_snapshot(snapshot, self.display_now(capture_now, finished), error)
        screen = self.screen
        if isinstance(screen, ConversationScreen):
            screen.show_detail(self.fetch_detail(screen.key))
        elif isinstance(screen, CompareScreen):
            screen.show_details(self.fetch_detail(screen.keys[0]), self.fetch_detail(screen.keys[1]))

    def _fetch_snapshot(self) -> tuple[Snapshot | None, str | None]:
        try:
            return self.source.snapshot(), None
        except Exception as error:
            # A failing source must not take the screen down; the header shows the error.
            self._log_source_error("snapshot", error)
            return None, f"reading a snapshot failed: {error}"

    def fetch_detail(self, key: int) -> ConversationDetail | None:
        """Read one conversation's detail; None when it is gone or the source failed (logged)."""
        try:
            return self.source.detail(key)
        except Exception as error:
            self._log_source_error("detail", error)
            return None

    def fetch_details(self, keys: Collection[int]) -> dict[int, ConversationDetail | None]:
        """Read the details of many conversations for an export; None for each one no longer tracked.

        A source with ``details`` gives them in one call. Unlike ``fetch_detail``, a
        failing source raises, so the export can report the error.
        """
        details = getattr(self.source, "details", None)
        if details is None:
            return {key: self.source.detail(key) for key in keys}
        found: dict[int, ConversationDetail | None] = details(keys)
        return found

    def _log_source_error(self, call: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(call, -_ERROR_LOG_INTERVAL) >= _ERROR_LOG_INTERVAL:
            self._last_error_log[call] = now
            logger.error("source.%s() failed: %r", call, error, exc_info=error)

    def open_conversation(self, key: int) -> None:
        """Push the conversation screen for ``key``, or notify that it is no longer tracked."""
        try:
            detail = self.source.detail(key)
        except Exception as error:
            self._log_source_error("detail", error)
            self.notify(f"Cannot open this conversation: {error}", severity="error")
            return
        if detail is None:
            self.notify(f"Conversation {key} is no longer tracked.", severity="warning")
            return
        self.push_screen(
            ConversationScreen(key, detail, self.time_display, self.stall_seconds)
        )

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.dashboard.refresh_view()
        if not self.paused:
            self.refresh_from_source()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_secrets(self) -> None:
        """Mask AUTH credentials again at once, or ask before showing them."""
        if self.secrets_shown:
            self._set_reveal_secrets(False)
            return
        if isinstance(self.screen, ConfirmScreen):
            return

        def answered(reveal: bool | None) -> None:
            if reveal:
                self._set_reveal_secrets(True)

        self.push_screen(ConfirmScreen(self.REVEAL_QUESTION), answered)

    def _set_reveal_secrets(self, reveal: bool) -> None:
        # set_reveal_secrets is optional in SnapshotSource, so older sources lack it.
        setter = getattr(self.source, "set_reveal_secrets", None)
        if setter is None:
            self.notify("This source cannot show AUTH credentials.", severity="warning")
            return
        try:
            setter(reveal)
        except Exception as error:
            self._log_source_error("set_reveal_secrets", error)
            self.notify(f"Changing the AUTH masking failed: {error}", severity="error")
            return
        self.secrets_shown = reveal
        self.dashboard.refresh_view()
        self.refresh_from_source()
