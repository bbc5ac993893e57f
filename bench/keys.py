"""Key-press latency on a running Textual app: from the key event to the first repaint that shows its effect.

Pilot.press is not used for timing. It waits until the process looks idle,
comparing CPU time with wall time (Textual's ``wait_for_idle``). While the
capture thread is busy the process never looks idle, so each press would take
about a second. Here the key event goes to the driver as Pilot sends it, and a
wrapper around the screen's compositor refresh notes the first repaint after
the change the key should cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App
from textual.screen import Screen

KEY_TIMEOUT_SECONDS = 30.0


class RepaintWatch:
    """Notes when the screen is repainted with a condition true, after a key was sent."""

    def __init__(self, screen: Screen[Any]) -> None:
        self._condition: Callable[[], bool] | None = None
        self._painted = asyncio.Event()
        self.painted_at = 0.0
        original = screen._compositor_refresh

        def refresh_and_check() -> None:
            original()
            if self._condition is not None and self._condition():
                self.painted_at = time.perf_counter()
                self._condition = None
                self._painted.set()

        # NOTE: _compositor_refresh is Textual's private repaint step (Textual 8.2). The
        # screen looks it up on the instance, so the wrapper runs on every repaint.
        screen._compositor_refresh = refresh_and_check  # type: ignore[method-assign]

    async def press(self, app: App[Any], key: str, changed: Callable[[], bool]) -> float:
        """Send ``key`` and return the seconds until a repaint with ``changed()`` true."""
        self._painted.clear()
        self._condition = changed
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        started = time.perf_counter()
        assert app._driver is not None
        app._driver.send_message(event)
        try:
            await asyncio.wait_for(self._painted.wait(), KEY_TIMEOUT_SECONDS)
        except TimeoutError:
            self._condition = None
            raise TimeoutError(f"no repaint showed the effect of key {key!r} within {KEY_TIMEOUT_SECONDS} s")
        return self.painted_at - started
