"""Running a capture file through the engine the way ``smtptop -r FILE --json`` does."""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine


@dataclass
class FileRun:
    engine: Engine
    finished: list[Conversation] = field(default_factory=list)
    error: str | None = None

    def smtp(self) -> list[Conversation]:
        return [conversation for conversation in self.finished if conversation.is_smtp]


def run_file(path: str | PathLike[str], **settings: object) -> FileRun:
    """Feed a whole capture file to a fresh engine and collect every conversation it reports."""
    reader = open_capture(str(path))
    config = EngineConfig(**settings)  # type: ignore[arg-type]
    finished: list[Conversation] = []
    engine = Engine(config, reader.link_type, reader.name, "", on_finished=finished.append)
    for batch in reader.batches():
        engine.feed(batch)
    engine.finish_input(reader.error)
    reader.close()
    return FileRun(engine, finished, reader.error)
