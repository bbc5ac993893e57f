"""Open export files readable by their owner only, as recordings are: they hold mail and AUTH credentials."""

from __future__ import annotations

import os
from typing import BinaryIO, TextIO

FILE_MODE = 0o600


def _create(path: str) -> int:
    # Created with mode 0600; an existing file is truncated and keeps its mode.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)


def open_private_binary(path: str) -> BinaryIO:
    """Open ``path`` for writing bytes, created with mode 0600."""
    return os.fdopen(_create(path), "wb")


def open_private_text(path: str) -> TextIO:
    """Open ``path`` for writing UTF-8 text, created with mode 0600."""
    return os.fdopen(_create(path), "w", encoding="utf-8")
