"""Checks that the recording can create its files: the target directory, and -Z USER for real.

For -Z, a forked child switches to the user (supplementary groups, group,
then user, the order setuid(2) requires) and creates and removes a probe
file. Its result comes back through a pipe. ``os.access`` would check the
real user ID of this process, not USER, and would miss ACLs and read-only
mounts.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from smtptop.record.options import RecordError

PROBE_PREFIX = ".smtptop-probe-"


@dataclass(frozen=True, slots=True)
class FileOwner:
    """The -Z user: name, IDs and supplementary groups."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def resolve_user(name: str) -> FileOwner:
    """Look up -Z ``name`` in the user database; raise RecordError when it does not exist."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RecordError(
            f"-Z {name}: no such user; give an existing user name (see getent passwd)"
        ) from None
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    return FileOwner(name, entry.pw_uid, entry.pw_gid, groups)


def probe_directory(directory: str) -> int:
    """Create and remove a probe file in ``directory``; return 0 or the errno of the failure."""
    probe = os.path.join(directory, PROBE_PREFIX + secrets.token_hex(6))
    try:
        fd = os.open(
            probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return error.errno or errno.EIO
    return 0


def probe_directory_as(directory: str, owner: FileOwner) -> int:
    """Run probe_directory in a child that has switched to ``owner``; return its errno (0: success).

    Needs root.
    """
    reply = run_as(owner, lambda: str(probe_directory(directory)))
    return int(reply) if reply.isdigit() else errno.EIO


def run_as(owner: FileOwner, work: Callable[[], str]) -> str:
    """Call ``work`` in a forked child that has switched to ``owner``; return the text it returned.

    Needs root. A child that fails to switch returns the errno as text. Between
    fork and _exit the child must call only os functions and never log, so it
    cannot wait on a logging lock that another thread held at the fork.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        reply = str(errno.EIO)
        try:
            os.close(read_end)
            switch_to(owner)
            reply = work()
        except OSError as error:
            reply = str(error.errno or errno.EIO)
        finally:
            try:
                os.write(write_end, reply.encode("utf-8", "surrogateescape"))
            finally:
                os._exit(0)
    os.close(write_end)
    try:
        reply_bytes = b""
        while chunk := os.read(read_end, 4096):
            reply_bytes += chunk
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return reply_bytes.decode("utf-8", "surrogateescape")


def switch_to(owner: FileOwner) -> None:
    """Give up root for ``owner``: supplementary groups, group, then user, the order setuid(2) requires."""
    os.setgroups(list(owner.groups))
    os.setgid(owner.gid)
    os.setuid(owner.uid)


def check_writable(directory: str, option: str, owner: FileOwner | None) -> None:
    """Raise RecordError unless files can be created in ``directory`` (as ``owner`` with -Z, when root)."""
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise RecordError(
            f"{option}: the directory {directory} {what}; create it or choose another path"
        )
    if owner is not None and os.geteuid() == 0:
        failure = probe_directory_as(directory, owner)
        if failure:
            raise RecordError(
                f"{option}: user {owner.name} cannot create files in {directory} "
                f"({os.strerror(failure)}); give {owner.name} write access "
                f"(for example chown {owner.name} {directory}) or choose another directory"
            )
        return
    if owner is not None and owner.uid != os.geteuid():
        raise RecordError(
            f"-Z {owner.name}: switching to another user needs root; run smtptop as root or leave out -Z"
        )
    failure = probe_directory(directory)
    if failure:
        raise RecordError(
            f"{option}: cannot create files in {directory} ({os.strerror(failure)}); "
            "check the directory's permissions or choose another path"
        )
