"""A two-ended driver for ``SmtpConversation``: plays the client and the server in a test."""

from __future__ import annotations

from typing import TypeVar

from smtptop.direction import Direction
from smtptop.smtp.conversation import SmtpConversation
from smtptop.smtp.events import Command, Event, Phase, Reply

EventType = TypeVar("EventType")


class Dialogue:
    """Feeds client and server bytes with capture times and keeps every event returned."""

    def __init__(self, implicit_tls: bool = False, reveal_secrets: bool = False) -> None:
        self.conv = SmtpConversation(implicit_tls=implicit_tls, reveal_secrets=reveal_secrets)
        self.events: list[Event] = []

    def client(self, data: bytes, ts: float) -> list[Event]:
        return self._keep(self.conv.receive(Direction.CLIENT_TO_SERVER, data, ts))

    def server(self, data: bytes, ts: float) -> list[Event]:
        return self._keep(self.conv.receive(Direction.SERVER_TO_CLIENT, data, ts))

    def client_gap(self, length: int, ts: float) -> list[Event]:
        return self._keep(self.conv.gap(Direction.CLIENT_TO_SERVER, length, ts))

    def server_gap(self, length: int, ts: float) -> list[Event]:
        return self._keep(self.conv.gap(Direction.SERVER_TO_CLIENT, length, ts))

    def close(self, ts: float) -> list[Event]:
        return self._keep(self.conv.close(ts))

    def _keep(self, events: list[Event]) -> list[Event]:
        self.events.extend(events)
        return events

    def of_type(self, kind: type[EventType]) -> list[EventType]:
        return [event for event in self.events if isinstance(event, kind)]

    def replies(self) -> list[Reply]:
        return self.of_type(Reply)

    def commands(self) -> list[Command]:
        return self.of_type(Command)

    def pairs(self) -> list[tuple[str, int | None]]:
        """Each command verb with the code of the reply it got, in order."""
        return [
            (record.verb, record.reply.code if record.reply else None)
            for record in self.conv.commands
        ]

    def phase(self) -> Phase:
        # A method, not a property, so mypy does not narrow the phase between checks.
        return self.conv.phase

    def summaries(self, reveal: bool = False) -> list[str]:
        return [event.summary(reveal) for event in self.events]


def greeted(ehlo_reply: bytes = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n") -> Dialogue:
    """A dialogue past the greeting and EHLO, at capture times 0 to 0.3."""
    dialogue = Dialogue()
    dialogue.server(b"220 mx.example ESMTP\r\n", 0.0)
    dialogue.client(b"EHLO client.example\r\n", 0.1)
    dialogue.server(ehlo_reply, 0.3)
    return dialogue
