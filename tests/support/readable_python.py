"""A Python command that another user can run with this environment's packages, for -Z tests.

smtptop -Z refuses to drop root when the user cannot read its Python files,
and the interpreter of a development machine often lives under /root. In that
case python_for_user builds a virtual environment from the system Python of the
same version, in a directory everyone can read. Its site directory loads this
environment's site-packages, so the user runs the code under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smtptop.record.access import resolve_user
from smtptop.record.options import RecordError
from smtptop.record.privileges import check_readable_as, import_roots


@contextmanager
def python_for_user(user: str) -> Iterator[list[str]]:
    """Yield a command prefix that runs this environment's code with a Python that ``user`` can read."""
    owner = resolve_user(user)
    try:
        check_readable_as(owner, import_roots())
    except RecordError:
        pass
    else:
        yield [sys.executable]
        return

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system_python is None:
        pytest.skip(f"user {user} cannot read this Python, and no system python{version} was found")

    directory = Path(tempfile.mkdtemp(prefix="smtptop-python-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        venv = directory / "venv"
        subprocess.run(
            [system_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
        )
        python = venv / "bin" / "python"
        site_packages = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        # site.addsitedir also runs the .pth files there, such as the editable install's.
        ours = sysconfig.get_paths()["purelib"]
        Path(site_packages, "smtptop-tests.pth").write_text(
            f"import site; site.addsitedir({ours!r})\n"
        )
        os.chmod(Path(site_packages, "smtptop-tests.pth"), 0o644)
        yield [str(python)]
    finally:
        shutil.rmtree(directory)
