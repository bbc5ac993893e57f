"""The save screen (``s``): write conversations to a pcap file or their transcripts to a text file.

The dashboard offers the conversation under the cursor, the marked ones or
all rows the filters show; the conversation screen offers its own
conversation. A pcap file contains the frames the engine still keeps in
memory. Its frame store is bounded, so the notification counts the frames
whose bytes are gone and points to ``-w``, which records every frame. Errors stay
on the screen, so the user can correct the path and try again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from smtptop.capture.files import Frame
from smtptop.export.pcap import ExportError, write_failure, write_pcap
from smtptop.export.private import open_private_text
from smtptop.export.transcript import transcript_text

if TYPE_CHECKING:
    from smtptop.ui.app import SmtpTopApp

log = logging.getLogger(__name__)


class SaveScope(Enum):
    """The set of conversations to save."""

    CURSOR = "the conversation under the cursor"
    MARKED = "the marked conversations"
    DISPLAYED = "all conversations shown after the filters"
    THIS = "this conversation"


class SaveFormat(Enum):
    """The file format: the frames as pcap, or the SMTP dialogue as text."""

    PCAP = "pcap (the packets as captured, AUTH credentials unmasked)"
    TEXT = "transcript text"

    @property
    def suffix(self) -> str:
        return ".pcap" if self is SaveFormat.PCAP else ".txt"


@runtime_checkable
class FrameSource(Protocol):
    """A snapshot source that can also hand out the captured frames of conversations."""

    link_type: int
    snaplen: int

    def frames_for(self, keys: Collection[int]) -> tuple[list[Frame], int]:
        """Return the frames of ``keys`` in capture order and how many left memory."""
        ...


@dataclass(frozen=True, slots=True)
class SaveResult:
    """The outcome of one save, for the notification."""

    path: str
    format: SaveFormat
    conversations: int  # conversations written
    packets_written: int = 0  # pcap only
    packets_not_written: int = 0  # pcap only: frames whose bytes left memory

    def message(self) -> str:
        """Describe the save for the notification: the path, what was written and what was not."""
        if self.format is SaveFormat.TEXT:
            return f"Saved the transcript of {self.conversations} conversation(s) to {self.path}."
        text = f"Saved {self.packets_written:,} packets to {self.path}."
        if self.packets_not_written:
            text += (
                f" {self.packets_not_written:,} packets could not be written because their bytes"
                " left memory; record with -w to keep every frame."
            )
        return text


def default_path(save_format: SaveFormat, now: float | None = None) -> str:
    """Return a file name in the current directory such as ``smtptop-20261204-235959.pcap``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"smtptop-{stamp}{save_format.suffix}"


def check_path(text: str) -> str:
    """Expand ``~`` and check that the file can be created; return the absolute path or raise ExportError.

    An existing file is never replaced from the dashboard, so a typing slip cannot destroy a capture.
    """
    if not text.strip():
        raise ExportError("the file name is empty; type a path")
    path = os.path.abspath(os.path.expanduser(text.strip()))
    if os.path.exists(path):
        raise ExportError(f"{path} already exists; choose another name")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ExportError(write_failure(path, FileNotFoundError()))
    return path


def save_pcap(source: object, keys: Collection[int], path: str) -> SaveResult:
    """Write the frames of ``keys`` that are still in memory to ``path``."""
    if not isinstance(source, FrameSource):
        raise ExportError("this source does not provide captured frames; save the transcript text instead")
    frames, dropped = source.frames_for(keys)
    written = write_pcap(path, source.link_type, source.snaplen, frames)
    return SaveResult(path, SaveFormat.PCAP, len(keys), written, dropped)


def save_text(transcripts: Mapping[int, str], path: str) -> SaveResult:
    """Write the transcripts, one after the other with a blank line between, to ``path``."""
    if not transcripts:
        raise ExportError("none of these conversations is still tracked; nothing to save")
    try:
        with open_private_text(path) as stream:
            stream.write("\n".join(transcripts.values()))
    except OSError as error:
        raise ExportError(write_failure(path, error)) from None
    return SaveResult(path, SaveFormat.TEXT, len(transcripts))


class SaveScreen(ModalScreen[SaveResult | None]):
    """Ask what to save, in which format and where; save on Enter, close on Esc.

    ``choices`` maps each offered scope to its conversation keys; a scope
    with no keys is shown but cannot be chosen. The screen dismisses with the
    result after a successful save, or None when cancelled.
    """

    DEFAULT_CSS = """
    SaveScreen {
        align: center middle;
    }
    #save {
        width: 80;
        max-width: 100%;
        height: auto;
        padding: 1 2;
        border: round $accent;
        background: $surface;
    }
    #save RadioSet {
        width: 100%;
    }
    #save-title {
        text-style: bold;
    }
    #save Label {
        margin-top: 1;
    }
    #save-error {
        color: $error;
        height: auto;
    }
    #save-keys {
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, choices: Mapping[SaveScope, Collection[int]]) -> None:
        super().__init__()
        self.choices = {scope: tuple(keys) for scope, keys in choices.items()}
        # The first scope that has conversations is chosen at first.
        self.scope = next(
            (scope for scope, keys in self.choices.items() if keys), next(iter(self.choices))
        )
        self.save_format = SaveFormat.PCAP

    @property
    def smtptop(self) -> SmtpTopApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="save"):
            yield Label("Save conversations", id="save-title")
            yield Label("Conversations")
            with RadioSet(id="save-scope"):
                for scope, keys in self.choices.items():
                    yield RadioButton(
                        f"{scope.value} ({len(keys)})",
                        value=scope is self.scope,
                        disabled=not keys,
                        name=scope.name,
                    )
            yield Label("Format")
            with RadioSet(id="save-format"):
                for save_format in SaveFormat:
                    yield RadioButton(
                        save_format.value,
                        value=save_format is self.save_format,
                        name=save_format.name,
                    )
            yield Label("File")
            yield Input(default_path(self.save_format), id="save-path")
            yield Static(id="save-error", markup=False)
            yield Static(
                "Enter saves: the cursor starts in the file field  "
                "Tab next field  ↑ ↓ Enter choose in a list  Esc cancel",
                id="save-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#save-path", Input).focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        name = event.pressed.name or ""
        if event.radio_set.id == "save-scope":
            self.scope = SaveScope[name]
            return
        self.save_format = SaveFormat[name]
        # Follow the format with the suffix, unless the user typed a name of their own.
        path_input = self.query_one("#save-path", Input)
        stem, suffix = os.path.splitext(path_input.value)
        if suffix in (".pcap", ".txt"):
            path_input.value = stem + self.save_format.suffix

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.save(event.value)

    def save(self, text: str) -> None:
        """Save the chosen conversations to ``text``; dismiss on success, show the error otherwise."""
        keys = self.choices.get(self.scope, ())
        try:
            if not keys:
                raise ExportError(f"no conversations to save in {self.scope.value}; choose another")
            path = check_path(text)
            result = self._write(keys, path)
        except ExportError as error:
            log.info("save failed: %s", error)
            self._show_error(str(error))
            return
        except Exception as error:
            # A failing source must not take the screen down; the log has the traceback.
            log.exception("saving to %s failed", text)
            self._show_error(f"saving failed: {error}")
            return
        self.dismiss(result)

    def _show_error(self, message: str) -> None:
        self.query_one("#save-error", Static).update(message)

    def _write(self, keys: tuple[int, ...], path: str) -> SaveResult:
        app = self.smtptop
        if self.save_format is SaveFormat.PCAP:
            return save_pcap(app.source, keys, path)
        transcripts: dict[int, str] = {}
        for key, detail in app.fetch_details(keys).items():
            if detail is not None:
                # The detail is masked unless the user revealed secrets with R; the file follows the screen.
                transcripts[key] = transcript_text(detail, reveal=app.secrets_shown)
        return save_text(transcripts, path)

    def action_cancel(self) -> None:
        self.dismiss(None)


def notify_saved(app: SmtpTopApp, result: SaveResult | None) -> None:
    """Show the outcome of the save screen; a cancelled screen shows nothing."""
    if result is None:
        return
    if result.packets_not_written:
        app.notify(result.message(), severity="warning", timeout=10)
    else:
        app.notify(result.message(), timeout=10)
