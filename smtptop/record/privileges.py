"""-Z USER: give up root for USER once the capture is open, as tcpdump does.

After the drop smtptop still reads files: Python and Textual import some
modules only when first used, the TLS key log is read again as it grows, and
--save reads the -r capture a second time. A process that cannot read them
would fail mid-capture, so before the drop a child that has become USER
checks each of them, and smtptop stops with a message naming the path.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from smtptop.record.access import FileOwner, run_as, switch_to
from smtptop.record.options import RecordError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NeededPath:
    """A path the process reads after the drop, and why, for the error message."""

    path: str
    purpose: str
    is_directory: bool


def import_roots() -> list[NeededPath]:
    """List each sys.path directory that a loaded module came from, and that module's file.

    Modules imported later come from the same directories, so a user who can
    read these and the sample file in each can import them.
    """
    entries = sorted(
        {os.path.abspath(entry) for entry in sys.path if entry and os.path.isdir(entry)},
        key=len,
        reverse=True,
    )
    samples: dict[str, str] = {}
    for module in list(sys.modules.values()):
        module_file = getattr(module, "__file__", None)
        if not isinstance(module_file, str):
            continue
        path = os.path.abspath(module_file)
        for entry in entries:
            if path.startswith(entry + os.sep):
                samples.setdefault(entry, path)
                break

    needed: list[NeededPath] = []
    for root, sample in sorted(samples.items()):
        needed.append(NeededPath(root, "Python modules are imported from it", is_directory=True))
        needed.append(NeededPath(sample, "a Python module", is_directory=False))
    return needed


def input_paths(keylog: str | None, save_input: str | None) -> list[NeededPath]:
    """List the TLS key log and the capture --save reads again, when given."""
    needed: list[NeededPath] = []
    if keylog:
        if os.path.exists(keylog):
            needed.append(
                NeededPath(keylog, "the TLS key log is read again as it grows", is_directory=False)
            )
        else:
            # The key log may appear later; the user must at least reach its directory.
            directory = os.path.dirname(os.path.abspath(keylog))
            needed.append(
                NeededPath(directory, "the TLS key log will be created in it", is_directory=True)
            )
    if save_input and save_input != "-":
        needed.append(
            NeededPath(save_input, "--save reads the capture a second time", is_directory=False)
        )
    return needed


def first_unreadable(needed: list[NeededPath]) -> int | None:
    """Return the index of the first path this process cannot read (or list and enter), or None."""
    for index, item in enumerate(needed):
        mode = os.R_OK | os.X_OK if item.is_directory else os.R_OK
        if not os.access(item.path, mode):
            return index
    return None


def closed_directory(path: str) -> str | None:
    """Return the first directory on the way to ``path`` that this process cannot enter, or None."""
    parts = os.path.abspath(path).split(os.sep)[1:-1]
    directory = os.sep
    for part in parts:
        directory = os.path.join(directory, part)
        if not os.access(directory, os.X_OK):
            return directory
    return None


def check_readable_as(owner: FileOwner, needed: list[NeededPath]) -> None:
    """Raise RecordError unless ``owner`` can read every path in ``needed``; needs root."""

    def probe() -> str:
        index = first_unreadable(needed)
        if index is None:
            return ""
        return f"{index}\0{closed_directory(needed[index].path) or ''}"

    reply = run_as(owner, probe)
    if not reply:
        return
    index_text, _, closed = reply.partition("\0")
    if not index_text.isdigit() or int(index_text) >= len(needed):
        raise RecordError(
            f"-Z {owner.name}: could not check as user {owner.name} which files it can read"
        )

    item = needed[int(index_text)]
    if closed:
        problem = f"cannot enter {closed}, so it cannot reach {item.path} ({item.purpose})"
        fix = f"give {owner.name} access to {closed}"
    else:
        action = "enter and list" if item.is_directory else "read"
        problem = f"cannot {action} {item.path} ({item.purpose})"
        fix = f"make it readable for {owner.name}"
    raise RecordError(
        f"-Z {owner.name}: user {owner.name} {problem}, and smtptop runs as {owner.name} "
        f"once capture starts; {fix}, install smtptop with a Python that {owner.name} can "
        "read (for example a virtual environment made with /usr/bin/python3 under /opt), "
        "or leave out -Z"
    )


def drop_privileges(owner: FileOwner) -> None:
    """Switch this process to ``owner`` for good; raise RecordError if root could be regained."""
    switch_to(owner)
    try:
        os.setuid(0)
    except PermissionError:
        log.info(
            "running as user %s (uid %d, gid %d) from now on", owner.name, owner.uid, owner.gid
        )
        return
    raise RecordError(f"-Z {owner.name}: root could be regained after switching to {owner.name}")
