"""Pilot tests of the traffic panel's reply classes and phase counts, read off the screen."""

from __future__ import annotations

import dataclasses

from dashboard_driver import make_app
from rich.console import Console
from screen_text import screen_lines
from ui_samples import sample_source, sample_traffic

from smtptop.metrics.stats import Percentiles
from smtptop.metrics.traffic import DEFAULT_MAX_SAMPLES_PER_PHASE
from smtptop.ui.traffic import percentile_table, reply_classes_text

BIG_CLASSES = (("2xx", 911_249), ("3xx", 187_100), ("4xx", 123_456), ("5xx", 654_321))


def panel_lines(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("conversations/s"))
    return lines[start : start + 9]


async def test_reply_classes_six_digit_counts() -> None:
    traffic = dataclasses.replace(sample_traffic(), replies_by_class=BIG_CLASSES)
    for width in (160, 120):
        app = make_app(sample_source(traffic))
        async with app.run_test(size=(width, 40)) as pilot:
            await pilot.pause()
            panel = " ".join(panel_lines(screen_lines(app)))
            for name, count in BIG_CLASSES:
                assert f"{name} {count:,}" in panel, (width, name)


def test_seven_digit_counts_fit_column() -> None:
    classes = tuple((name, count * 10) for name, count in BIG_CLASSES)
    console = Console(width=36, record=True)
    console.print(reply_classes_text(classes, 60.0))
    lines = console.export_text().splitlines()
    assert len(lines) == 2
    assert " ".join(lines).split() == [
        "replies", "2xx", "9,112,490", "3xx", "1,871,000", "4xx", "1,234,560", "5xx", "6,543,210",
    ]


async def test_quiet_window_says_none() -> None:
    quiet = dataclasses.replace(
        sample_traffic(),
        replies_by_class=(("2xx", 0), ("3xx", 0), ("4xx", 0), ("5xx", 0)),
        phase_percentiles=(),
    )
    app = make_app(sample_source(quiet))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        panel = "\n".join(panel_lines(screen_lines(app)))
        assert "replies none in the last minute" in panel
        assert "2xx 0" not in panel
        assert "none in the last minute" in panel.split("phase", 1)[1]
        assert "yet" not in panel


def test_quiet_window_other_lengths() -> None:
    console = Console(width=80, record=True)
    console.print(reply_classes_text((("2xx", 0),), 30.0))
    assert "none in the last 30 s" in console.export_text()


def test_capped_phase_count_is_marked() -> None:
    cap = DEFAULT_MAX_SAMPLES_PER_PHASE
    phases = [
        ("RCPT", Percentiles(cap, 0.001, 0.002, 0.003)),
        ("MAIL", Percentiles(cap - 1, 0.001, 0.002, 0.003)),
    ]
    console = Console(width=80, record=True)
    console.print(percentile_table(phases, 60.0))
    counts = {line.split()[0]: line.split()[1] for line in console.export_text().splitlines()[1:]}
    assert counts == {"RCPT": f"{cap:,}+", "MAIL": f"{cap - 1:,}"}
