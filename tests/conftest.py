"""Suite-wide pytest configuration.

Shared helpers live in tests/support and are imported from there; this file
only makes that package importable, provides the `public_captures` fixture,
and skips tests marked `live` when the process cannot capture packets.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from tests.support import (  # noqa: E402  (needs the sys.path entry above)
    CAPTURE_PRIVILEGE_REASON,
    PUBLIC_CAPTURES,
    has_capture_privilege,
)


@pytest.fixture(scope="session")
def public_captures() -> Path:
    """Directory of the public captures in tests/data/public."""
    return PUBLIC_CAPTURES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if has_capture_privilege():
        return
    skip_live = pytest.mark.skip(reason=CAPTURE_PRIVILEGE_REASON)
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip_live)
