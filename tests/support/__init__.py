"""Helpers shared by the test suite: capture paths, privilege checks, real peers.

Import them as `tests.support` (tests/conftest.py puts the repository root on
sys.path): `tests.support.servers` starts SMTP servers and runs swaks, and
`tests.support.tshark` reads captures with tshark as an oracle.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_CAPTURES = REPO_ROOT / "tests" / "data" / "public"
DEMO_CAPTURE = REPO_ROOT / "smtptop" / "demo" / "demo.pcap"

# Bit 13 of the capability sets in /proc/<pid>/status (linux/capability.h).
_CAP_NET_RAW = 13


def has_capture_privilege() -> bool:
    """Return True when this process may open a live capture: root or CAP_NET_RAW."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    effective = int(line.split()[1], 16)
                    return bool(effective >> _CAP_NET_RAW & 1)
    except OSError:
        return False
    return False


CAPTURE_PRIVILEGE_REASON = "live capture needs root or CAP_NET_RAW (run the tests as root)"

# Skips a test when the process cannot capture; live tests also carry @pytest.mark.live.
requires_capture_privilege = pytest.mark.skipif(
    not has_capture_privilege(), reason=CAPTURE_PRIVILEGE_REASON
)
