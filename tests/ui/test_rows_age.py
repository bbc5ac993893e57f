"""The age column fits five characters, also for conversations younger than a second."""

from __future__ import annotations

from smtptop.ui.rows import _age_text


def test_age_under_a_second_fits_the_column() -> None:
    assert _age_text(0.277) == "<1 s"
    assert _age_text(5.0) == "5.0 s"
    for seconds in (0.0, 0.5, 1.0, 59.0, 3600.0, 400_000.0):
        assert len(_age_text(seconds)) <= 5, seconds
