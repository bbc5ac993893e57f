"""``--json``: one JSON object per line for each conversation, written when it ends."""

from __future__ import annotations

import json
from typing import TextIO

from smtptop.engine.conversation import Conversation
from smtptop.output.records import conversation_record

# The encoder that json.dumps(record, ensure_ascii=False) builds per call, made once. A record
# is a tree of fresh dicts and lists without cycles, so the circular-reference check is skipped.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)


class JsonLinesWriter:
    """Writes each finished conversation as one line, flushed so ``tail -f`` and pipes see it at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written = 0
        self.closed = False  # the reader went away, as ``| head -1`` does

    def __call__(self, conversation: Conversation) -> None:
        if self.closed:
            return
        try:
            self._stream.write(_ENCODER.encode(conversation_record(conversation)) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            self.closed = True
            return
        self.written += 1
