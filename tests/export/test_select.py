"""The ``--select`` text rule agrees with the dashboard's ``/`` filter on real rows."""

from __future__ import annotations

import pytest

from smtptop.export.select import row_selected
from smtptop.ui.rows import RowFilter
from tests.export.frames import read_engine
from tests.support import PUBLIC_CAPTURES

CAPTURES = (
    "smtp-zeek-auth-multi.pcap",
    "smtp-sv-errors-mixed.pcap",
    "smtp-arkime-starttls-decrypted.pcap",
)
TEXTS = (
    "",
    "25",
    "10.7",
    "QUIT",
    "quit",
    "closed",
    "fin",
    "reset",
    "none",
    "starttls",
    "250",
    "data",
    "<end",
    "zzz",
)


@pytest.mark.parametrize("capture", CAPTURES)
def test_select_matches_dashboard_filter(capture: str) -> None:
    engine, _ = read_engine(PUBLIC_CAPTURES / capture)
    snapshot = engine.snapshot()
    assert snapshot.rows

    for row in snapshot.rows:
        for text in TEXTS:
            shown = RowFilter(text=text).matches(row, snapshot.stats.now, 10.0)
            assert row_selected(row, text) == shown, (row.client, text)
