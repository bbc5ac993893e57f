"""-Z USER: check() creates a probe file as the user for real, and files are handed to the user."""

from __future__ import annotations

import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtptop.record import RecordConfig, Recorder, RecordError
from tests.record.helpers import packet_count, read_frames
from tests.support.other_user import OTHER_USER, needs_root_and_other_user, shared_directory

USER = OTHER_USER


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with shared_directory("smtptop-record-") as directory:
        yield directory


@needs_root_and_other_user
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


@needs_root_and_other_user
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
