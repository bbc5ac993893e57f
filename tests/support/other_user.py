"""Helpers for tests that switch to another user (-Z): the user, a skip mark, and a directory it can reach."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

OTHER_USER = "nobody"

needs_root_and_other_user = pytest.mark.skipif(
    os.geteuid() != 0 or not any(entry.pw_name == OTHER_USER for entry in pwd.getpwall()),
    reason=f"switching to user {OTHER_USER} needs root and that user",
)


@contextmanager
def shared_directory(prefix: str) -> Iterator[Path]:
    """Yield a new directory under /tmp, removed afterwards; the test sets its mode.

    pytest's tmp_path lies under a directory that only root may enter, so the
    other user could not reach anything in it.
    """
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)
