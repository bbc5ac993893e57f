"""Pilot tests of the help screen: it fits a small terminal and scrolls to its last entry."""

from __future__ import annotations

from dashboard_driver import make_app
from screen_text import screen_text
from textual.containers import VerticalScroll
from textual.events import MouseScrollDown
from ui_samples import sample_source

from smtptop.ui.app import SmtpTopApp
from smtptop.ui.help import KEYS, HelpScreen

SMALL = (80, 24)
LAST_KEY = KEYS[-1][0]


def help_scroll(app: SmtpTopApp) -> VerticalScroll:
    return app.screen.query_one("#help", VerticalScroll)


async def open_help(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(pilot.app.screen, HelpScreen)


async def test_help_fits_small_terminal() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SMALL) as pilot:
        await open_help(pilot)
        box = help_scroll(app).region
        assert box.y >= 0
        assert box.bottom <= SMALL[1] - 1
        assert "smtptop keys" in screen_text(app)
        assert LAST_KEY not in screen_text(app)


async def test_help_box_above_footer() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=(160, 45)) as pilot:
        await open_help(pilot)
        scroll = help_scroll(app)
        assert 0 <= scroll.region.y
        assert scroll.region.bottom <= 45
        lines = screen_text(app).splitlines()
        # The whole box, bottom border included, sits above the help screen's own footer.
        assert lines[-2].strip().startswith("╰")
        assert "Close" in lines[-1]


async def test_help_end_shows_last_entry() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SMALL) as pilot:
        await open_help(pilot)

        await pilot.press("end")
        await pilot.pause()

        scroll = help_scroll(app)
        assert scroll.max_scroll_y > 0
        assert scroll.scroll_y == scroll.max_scroll_y
        assert LAST_KEY in screen_text(app)
        assert "smtptop keys" in screen_text(app)

        await pilot.press("home")
        await pilot.pause()
        assert scroll.scroll_y == 0
        assert LAST_KEY not in screen_text(app)


async def test_help_page_and_arrow_keys() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SMALL) as pilot:
        await open_help(pilot)
        scroll = help_scroll(app)

        await pilot.press("down")
        await pilot.pause()
        assert scroll.scroll_y == 1

        await pilot.press("up")
        await pilot.pause()
        assert scroll.scroll_y == 0

        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
        assert LAST_KEY in screen_text(app)

        await pilot.press("pageup")
        await pilot.pause()
        assert scroll.scroll_y < scroll.max_scroll_y


async def test_help_mouse_wheel_scrolls() -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SMALL) as pilot:
        await open_help(pilot)
        scroll = help_scroll(app)

        # Pilot has no wheel helper; this is the path its clicks take, with the wheel's event.
        for _ in range(20):
            await pilot._post_mouse_events([MouseScrollDown], "#help")
        await pilot.pause()

        assert scroll.scroll_y == scroll.max_scroll_y
        assert LAST_KEY in screen_text(app)


async def test_help_closes_after_scrolling() -> None:
    for key in ("escape", "q", "question_mark"):
        app = make_app(sample_source())
        async with app.run_test(size=SMALL) as pilot:
            await open_help(pilot)
            await pilot.press("end")
            await pilot.press(key)
            await pilot.pause()

            assert not isinstance(app.screen, HelpScreen), key
            assert app.is_running, key
