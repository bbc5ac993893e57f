"""-Z USER: check() creates a probe file as the user for real, and files are handed to the user."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtptop.record import RecordConfig, Recorder, RecordError
from tests.record.helpers import packet_count, read_frames

USER = "nobody"

needs_root_and_user = pytest.mark.skipif(
    os.geteuid() != 0 or not any(entry.pw_name == USER for entry in pwd.getpwall()),
    reason=f"switching to user {USER} needs root and that user",
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    # pytest's tmp_path lies under a directory that only root may enter.
    directory = Path(tempfile.mkdtemp(prefix="smtptop-record-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@needs_root_and_user
def test_unwritable_directory_rejected(shared_dir: Path) -> None:
    shared_dir.chmod(0o755)
    recorder = Recorder(RecordConfig(str(shared_dir / "x.pcap"), user=USER), 1, 65535)

    with pytest.raises(RecordError) as failure:
        recorder.check()

    message = str(failure.value)
    assert f"user {USER} cannot create files in {shared_dir}" in message
    assert "Permission denied" in message
    assert f"chown {USER}" in message
    assert list(shared_dir.iterdir()) == []


@needs_root_and_user
def test_writable_directory_every_file_owned(public_captures: Path, shared_dir: Path) -> None:
    shared_dir.chmod(0o1777)
    frames, link_type, snaplen = read_frames(public_captures / "smtp-zeek-auth-multi.pcap")
    config = RecordConfig(str(shared_dir / "z.pcap"), rotate_bytes=4000, user=USER)
    recorder = Recorder(config, link_type, snaplen)

    recorder.check()
    recorder.start()
    recorder.submit(frames)
    recorder.close()

    stats = recorder.stats()
    paths = sorted(shared_dir.iterdir())
    assert stats.last_error is None
    assert len(paths) == stats.files_written > 1
    uid = pwd.getpwnam(USER).pw_uid
    for path in paths:
        assert path.stat().st_uid == uid
    assert sum(packet_count(p) for p in paths) == len(frames)


def test_unknown_user_rejected(tmp_path: Path) -> None:
    recorder = Recorder(
        RecordConfig(str(tmp_path / "x.pcap"), user="no-such-user-smtptop"), 1, 65535
    )

    with pytest.raises(RecordError, match="-Z no-such-user-smtptop: no such user"):
        recorder.check()
