"""The save screen: ``s`` on the dashboard and on the conversation screen, with a real capture behind them.

The source is the CLI's own ``CaptureRunner`` on a public capture, with the
three members a source needs for a pcap export. tshark reads every file
written, and the expected frames come from tshark's reading of the input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, RadioSet, Static

from smtptop.capture.files import Frame, open_capture
from smtptop.config import EngineConfig
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import ConversationDetail, Snapshot
from smtptop.ui.app import SmtpTopApp
from smtptop.ui.conversation import ConversationScreen
from smtptop.ui.row_table import RowTable
from smtptop.ui.save import SaveFormat, SaveScreen
from tests.export.frames import stream_filter, tshark_frames
from tests.support import PUBLIC_CAPTURES
from tests.ui.dashboard_driver import make_app
from tests.ui.real_sources import start_capture, wait_until_finished
from tests.ui.ui_samples import sample_source

AUTH_MULTI = PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"
ZERO_WINDOW = PUBLIC_CAPTURES / "smtp-sv-2525-zero-window.pcap"
SIZE = (140, 40)


class ExportingSource:
    """The capture runner with the frame access the save screen uses for pcap files."""

    def __init__(self, runner: CaptureRunner, snaplen: int) -> None:
        self.runner = runner
        self.link_type = runner.engine.link_type
        self.snaplen = snaplen

    def snapshot(self) -> Snapshot:
        return self.runner.snapshot()

    def detail(self, key: int) -> ConversationDetail | None:
        return self.runner.detail(key)

    def stop(self) -> None:
        self.runner.stop()

    def set_reveal_secrets(self, reveal: bool) -> None:
        self.runner.set_reveal_secrets(reveal)

    def frames_for(self, keys: Collection[int]) -> tuple[list[Frame], int]:
        return self.runner.engine.frames_for(keys)


@pytest.fixture
def source() -> Iterator[ExportingSource]:
    runner, _ = start_capture(["-r", str(AUTH_MULTI)])
    wait_until_finished(runner)
    exporting = ExportingSource(runner, runner.source.snaplen)
    yield exporting
    runner.stop()


def _app(source: ExportingSource) -> SmtpTopApp:
    return SmtpTopApp(source, live=False, refresh_hz=0.1)


def _notifications(app: SmtpTopApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def _cursor_client(app: SmtpTopApp) -> tuple[int, str]:
    table = app.screen.query_one("#conversations", RowTable)
    key = int(table.cursor_key or "0")
    client = next(row.client for row in app.source.snapshot().rows if row.key == key)
    return key, client


async def test_dashboard_saves_cursor_conversation_as_pcap(
    source: ExportingSource, tmp_path: Path
) -> None:
    app = _app(source)
    out = tmp_path / "cursor.pcap"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        _, client = _cursor_client(app)

        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        path_input = app.screen.query_one("#save-path", Input)
        assert path_input.has_focus
        assert path_input.value.startswith("smtptop-")
        assert path_input.value.endswith(".pcap")

        path_input.value = str(out)
        await pilot.press("enter")
        await pilot.pause()

        assert not isinstance(app.screen, SaveScreen)
        expected = tshark_frames(AUTH_MULTI, stream_filter(AUTH_MULTI, client))
        assert tshark_frames(out) == expected
        (message,) = _notifications(app)
        assert str(out) in message
        assert f"Saved {len(expected)} packets" in message


async def test_dashboard_saves_marked_conversations(
    source: ExportingSource, tmp_path: Path
) -> None:
    app = _app(source)
    out = tmp_path / "marked.pcap"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = app.source.snapshot().rows
        assert len(rows) == 2
        await pilot.press("m", "down", "m", "s")
        await pilot.pause()

        # The scope choice is two fields before the path; its second button is "marked".
        await pilot.press("shift+tab", "shift+tab")
        assert app.screen.query_one("#save-scope", RadioSet).has_focus
        await pilot.press("down", "enter")
        await pilot.pause()
        app.screen.query_one("#save-path", Input).value = str(out)
        app.screen.query_one("#save-path", Input).focus()
        await pilot.press("enter")
        await pilot.pause()

        both = " || ".join(f"({stream_filter(AUTH_MULTI, row.client)})" for row in rows)
        assert tshark_frames(out) == tshark_frames(AUTH_MULTI, both)


async def test_conversation_screen_saves_transcript(
    source: ExportingSource, tmp_path: Path
) -> None:
    app = _app(source)
    out = tmp_path / "one.txt"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = app.source.snapshot().rows
        auth_row = next(row for row in rows if row.client == "10.10.1.4:1470")
        table = app.screen.query_one("#conversations", RowTable)
        table.move_cursor(row=table.get_row_index(str(auth_row.key)))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConversationScreen)

        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        await pilot.press("shift+tab")
        assert app.screen.query_one("#save-format", RadioSet).has_focus
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen.save_format is SaveFormat.TEXT
        path_input = app.screen.query_one("#save-path", Input)
        assert path_input.value.endswith(".txt")

        path_input.value = str(out)
        path_input.focus()
        await pilot.press("enter")
        await pilot.pause()

        assert isinstance(app.screen, ConversationScreen)
        text = out.read_text(encoding="utf-8")
        assert text.startswith("SMTP conversation 10.10.1.4:1470 → 74.53.140.153:25\n")
        assert "C: AUTH LOGIN\n" in text
        assert text.count("C: AUTH response ****\n") == 2
        assert "S: 221 " in text
        assert str(out) in _notifications(app)[-1]


async def test_unwritable_path_shows_error(source: ExportingSource, tmp_path: Path) -> None:
    app = _app(source)
    missing = tmp_path / "no-such-directory" / "out.pcap"
    existing = tmp_path / "existing.pcap"
    existing.write_bytes(b"keep me")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        path_input = app.screen.query_one("#save-path", Input)

        path_input.value = str(missing)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        error = str(app.screen.query_one("#save-error", Static).content)
        assert "directory does not exist" in error
        assert str(missing) in error

        path_input.value = str(existing)
        await pilot.press("enter")
        await pilot.pause()
        assert "already exists" in str(app.screen.query_one("#save-error", Static).content)
        assert existing.read_bytes() == b"keep me"

        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SaveScreen)
        assert _notifications(app) == []


async def test_static_source_cannot_save_pcap(tmp_path: Path) -> None:
    app = make_app(sample_source())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#save-path", Input).value = str(tmp_path / "x.pcap")
        await pilot.press("enter")
        await pilot.pause()

        assert isinstance(app.screen, SaveScreen)
        assert "save the transcript text instead" in str(
            app.screen.query_one("#save-error", Static).content
        )
        assert not (tmp_path / "x.pcap").exists()


async def test_notification_counts_frames_left_memory(tmp_path: Path) -> None:
    # 1 MiB of frame store for a 1.97 MB capture with one conversation.
    reader = open_capture(str(ZERO_WINDOW))
    engine = Engine(
        EngineConfig(linger_seconds=float("inf"), frame_store_mib=1),
        reader.link_type,
        "zero-window",
        "",
    )
    runner = CaptureRunner(engine, reader)
    runner.start()
    wait_until_finished(runner)
    app = _app(ExportingSource(runner, reader.snaplen))
    out = tmp_path / "partial.pcap"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (row,) = app.source.snapshot().rows
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#save-path", Input).value = str(out)
        await pilot.press("enter")
        await pilot.pause()

        expected = len(tshark_frames(ZERO_WINDOW, stream_filter(ZERO_WINDOW, row.client)))
        written = len(tshark_frames(out))
        (message,) = _notifications(app)
        assert 0 < written < expected
        assert f"Saved {written:,} packets to {out}." in message
        assert f"{expected - written:,} packets could not be written" in message
        assert "record with -w" in message
