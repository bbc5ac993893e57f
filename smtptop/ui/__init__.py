"""The Textual front end: the dashboard of conversations and the conversation screen.

This is the only package that imports Textual. It reads the engine only
through ``SnapshotSource`` (see ``source.py``) and never touches engine
objects directly.
"""

from smtptop.ui.source import SnapshotSource, StaticSource

__all__ = ["SnapshotSource", "StaticSource"]
