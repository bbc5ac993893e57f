"""The interface between the UI and whatever produces snapshots.

The app calls ``snapshot()`` a few times per second on the event loop
thread, so implementations must return quickly and not block.
``detail(key)`` is called at the same rate for the one conversation on screen.
``set_reveal_secrets`` is optional. The app looks it up with ``getattr`` and
shows a notification when a source does not have it. ``details(keys)`` is
optional too: an export of many conversations uses it when present, and
calls ``detail`` for each otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from smtptop.engine.snapshot import ConversationDetail, Snapshot


class SnapshotSource(Protocol):
    """The engine interface that the UI uses, and the only one."""

    def snapshot(self) -> Snapshot:
        """Return the current state of every tracked conversation; must not block."""
        ...

    def detail(self, key: int) -> ConversationDetail | None:
        """Return the drill-down of one conversation, or None once it is no longer tracked."""
        ...

    def stop(self) -> None:
        """Stop capturing; the app calls this once when it exits."""
        ...


class RevealingSource(SnapshotSource, Protocol):
    """A source that can also show AUTH credentials unmasked in later snapshots and details."""

    def set_reveal_secrets(self, reveal: bool) -> None:
        """Show AUTH arguments as sent when ``reveal`` is True, masked when False."""
        ...


class StaticSource:
    """A source that returns fixed snapshots, for tests and screenshots.

    Tests replace the current state with ``update`` and then ask the app to
    refresh, so every step is deterministic.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        details: Mapping[int, ConversationDetail] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._details = dict(details or {})
        self.snapshot_calls = 0
        self.stop_calls = 0
        self.reveal_calls: list[bool] = []

    def update(
        self,
        snapshot: Snapshot | None = None,
        details: Mapping[int, ConversationDetail] | None = None,
    ) -> None:
        """Replace the snapshot, the details, or both."""
        if snapshot is not None:
            self._snapshot = snapshot
        if details is not None:
            self._details = dict(details)

    def snapshot(self) -> Snapshot:
        self.snapshot_calls += 1
        return self._snapshot

    def detail(self, key: int) -> ConversationDetail | None:
        return self._details.get(key)

    def stop(self) -> None:
        self.stop_calls += 1

    def set_reveal_secrets(self, reveal: bool) -> None:
        """Record the request; a static source has no secrets of its own to unmask."""
        self.reveal_calls.append(reveal)
