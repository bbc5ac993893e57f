"""``--json``: one JSON object per line for each conversation, written when it ends."""

from __future__ import annotations

import json
from typing import TextIO

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record


class JsonLinesWriter:
    """Writes each finished conversation as one line, flushed so ``tail -f`` and pipes see it at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written = 0

    def __call__(self, conversation: Conversation) -> None:
        self._stream.write(json.dumps(conversation_record(conversation), ensure_ascii=False) + "\n")
        self._stream.flush()
        self.written += 1
