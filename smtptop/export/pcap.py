"""Writing frames to a classic pcap file (microsecond timestamps) for an export.

The file format is the recorder's: ``smtptop.record.pcapfile`` builds the
headers and records, so exports and ``-w`` recordings are the same kind of
file, with each frame's original length on the wire. This module adds the
file handling and error messages an export needs.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable

from smtptop.capture.files import Frame
from smtptop.export.private import open_private_binary
from smtptop.record.pcapfile import dump

log = logging.getLogger(__name__)


class ExportError(Exception):
    """A file could not be written; the message names the path, the reason and what to do."""


def write_pcap(path: str, link_type: int, snaplen: int, frames: Iterable[Frame]) -> int:
    """Write ``frames`` to ``path`` as a classic pcap file; return how many were written.

    An existing file is replaced, as ``tcpdump -w`` does. A snaplen of 0 or
    less (pcapng allows 0 for "no limit") is written as 262144. On failure the
    partial file is removed and ``ExportError`` is raised.
    """
    try:
        stream = open_private_binary(path)
    except OSError as error:
        raise ExportError(write_failure(path, error)) from None

    try:
        with stream:
            written = dump(stream, link_type, snaplen, frames)
    except OSError as error:
        _remove_partial(path)
        raise ExportError(write_failure(path, error)) from None
    log.debug("wrote %d frames to %s", written, path)
    return written


def _remove_partial(path: str) -> None:
    try:
        os.remove(path)
    except OSError as error:
        log.debug("could not remove the partial file %s: %s", path, error)


def write_failure(path: str, error: OSError) -> str:
    """Describe why writing ``path`` failed and what the user can do, in one line."""
    if isinstance(error, FileNotFoundError):
        reason = "the directory does not exist"
    elif isinstance(error, IsADirectoryError):
        reason = "it is a directory"
    elif isinstance(error, PermissionError):
        reason = "permission denied"
    elif error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif error.errno == errno.EROFS:
        reason = "the file system is read-only"
    else:
        reason = error.strerror or str(error)
    return f"cannot write {path}: {reason}; choose a writable directory and file name"
