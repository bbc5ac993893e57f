"""Pilot tests of the reveal-secrets key: the confirmation, the source call and the header."""

from __future__ import annotations

from textual.widgets import Static

from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.confirm import ConfirmScreen
from smtptop.ui.conversation import ConversationScreen
from smtptop.ui.source import StaticSource
from ui_samples import STALLED_KEY, sample_source

SIZE = (160, 40)


def make_app(source: object) -> SmtpTopApp:
    return SmtpTopApp(source, live=False, refresh_hz=0.1)  # type: ignore[arg-type]


def header(app: SmtpTopApp) -> str:
    return str(app.dashboard.query_one("#header", Static).content)


class MaskingOnlySource:
    """A source without ``set_reveal_secrets``, as a source written before it existed."""

    def __init__(self, inner: StaticSource) -> None:
        self.inner = inner

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def detail(self, key: int) -> ConversationDetail | None:
        return self.inner.detail(key)

    def stop(self) -> None:
        self.inner.stop()


async def test_reveal_asks_then_reveals_on_yes() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("R")
        await pilot.pause()

        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one("#confirm-question", Static).content)
        assert question == "Show AUTH credentials on screen? y/n"
        assert source.reveal_calls == []

        await pilot.press("y")
        await pilot.pause()

        assert not isinstance(app.screen, ConfirmScreen)
        assert source.reveal_calls == [True]
        assert "SECRETS SHOWN" in header(app)


async def test_reveal_no_keeps_masked() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("R")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()

        assert not isinstance(app.screen, ConfirmScreen)
        assert source.reveal_calls == []
        assert "SECRETS SHOWN" not in header(app)

        await pilot.press("R", "escape")
        await pilot.pause()
        assert source.reveal_calls == []


async def test_second_press_masks_without_asking() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("R", "y")
        await pilot.pause()

        await pilot.press("R")
        await pilot.pause()

        assert not isinstance(app.screen, ConfirmScreen)
        assert source.reveal_calls == [True, False]
        assert "SECRETS SHOWN" not in header(app)


async def test_reveal_shown_on_conversation_title() -> None:
    source = sample_source()
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConversationScreen)
        assert app.screen.key == STALLED_KEY

        await pilot.press("R", "y")
        await pilot.pause()

        title = str(app.screen.query_one("#title", Static).content)
        assert "SECRETS SHOWN" in title


async def test_source_without_reveal_notifies() -> None:
    app = make_app(MaskingOnlySource(sample_source()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("R", "y")
        await pilot.pause()

        assert "SECRETS SHOWN" not in header(app)
        messages = [notification.message for notification in app._notifications]
        assert "This source cannot show AUTH credentials." in messages


async def test_failing_reveal_notifies() -> None:
    class FailingSource(StaticSource):
        def set_reveal_secrets(self, reveal: bool) -> None:
            raise RuntimeError("engine stopped")

    app = make_app(FailingSource(sample_source().snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("R", "y")
        await pilot.pause()

        assert "SECRETS SHOWN" not in header(app)
        messages = [notification.message for notification in app._notifications]
        assert any("engine stopped" in message for message in messages)
        assert app.is_running
