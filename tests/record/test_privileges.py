"""Checks made before -Z drops root: the user must be able to read what smtptop reads afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import smtptop
from smtptop.record.access import resolve_user
from smtptop.record.options import RecordError
from smtptop.record.privileges import NeededPath, check_readable_as, import_roots, input_paths
from tests.support.other_user import OTHER_USER, needs_root_and_other_user, shared_directory

USER = OTHER_USER


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with shared_directory("smtptop-privileges-") as directory:
        yield directory


def test_import_roots_cover_loaded_modules() -> None:
    needed = import_roots()
    roots = [item.path for item in needed if item.is_directory]
    samples = [item.path for item in needed if not item.is_directory]

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(smtptop.__file__)))
    standard_library = os.path.dirname(os.path.abspath(os.__file__))
    assert package_parent in roots
    assert any(
        standard_library == root or standard_library.startswith(root + os.sep) for root in roots
    )
    assert len(samples) == len(roots)
    for root, sample in zip(roots, samples, strict=True):
        assert sample.startswith(root + os.sep)
        assert os.path.isfile(sample)


def test_missing_keylog_needs_its_directory(tmp_path: Path) -> None:
    needed = input_paths(str(tmp_path / "later.log"), None)

    assert needed == [
        NeededPath(str(tmp_path), "the TLS key log will be created in it", is_directory=True)
    ]


def test_save_input_listed_only_with_file(tmp_path: Path) -> None:
    capture = tmp_path / "in.pcap"
    capture.write_bytes(b"")

    assert [item.path for item in input_paths(None, str(capture))] == [str(capture)]
    assert input_paths(None, "-") == []


@needs_root_and_other_user
def test_private_directory_rejected(shared_dir: Path) -> None:
    private = shared_dir / "private"
    private.mkdir(mode=0o700)
    shared_dir.chmod(0o755)
    needed = [
        NeededPath(str(shared_dir), "Python modules are imported from it", is_directory=True),
        NeededPath(str(private), "Python modules are imported from it", is_directory=True),
    ]

    with pytest.raises(RecordError) as failure:
        check_readable_as(resolve_user(USER), needed)

    message = str(failure.value)
    assert (
        f"user {USER} cannot enter and list {private} (Python modules are imported from it)"
        in message
    )
    assert "leave out -Z" in message


@needs_root_and_other_user
def test_private_file_rejected(shared_dir: Path) -> None:
    shared_dir.chmod(0o755)
    secret = shared_dir / "keys.log"
    secret.write_text("")
    secret.chmod(0o600)

    with pytest.raises(RecordError, match=f"cannot read {secret} "):
        check_readable_as(
            resolve_user(USER), [NeededPath(str(secret), "the TLS key log", is_directory=False)]
        )


@needs_root_and_other_user
def test_readable_paths_accepted(shared_dir: Path) -> None:
    shared_dir.chmod(0o755)
    readable = shared_dir / "module.py"
    readable.write_text("")
    readable.chmod(0o644)

    check_readable_as(
        resolve_user(USER),
        [
            NeededPath(str(shared_dir), "Python modules are imported from it", is_directory=True),
            NeededPath(str(readable), "a Python module", is_directory=False),
        ],
    )


@needs_root_and_other_user
def test_closed_parent_directory_named(shared_dir: Path) -> None:
    shared_dir.chmod(0o755)
    closed = shared_dir / "closed"
    closed.mkdir(mode=0o700)
    inside = closed / "lib"
    inside.mkdir(mode=0o755)

    with pytest.raises(RecordError) as failure:
        check_readable_as(
            resolve_user(USER),
            [NeededPath(str(inside), "Python modules are imported from it", is_directory=True)],
        )

    message = str(failure.value)
    assert f"user {USER} cannot enter {closed}, so it cannot reach {inside}" in message
    assert f"give {USER} access to {closed}" in message
    assert "a virtual environment made with /usr/bin/python3" in message
