"""The two directions of a conversation, shared by the TCP, SMTP and TLS cores."""

from enum import Enum


class Direction(Enum):
    """Sender of a segment: the client (the side that sent the SYN) or the server."""

    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"

    @property
    def reverse(self) -> "Direction":
        if self is Direction.CLIENT_TO_SERVER:
            return Direction.SERVER_TO_CLIENT
        return Direction.CLIENT_TO_SERVER

    @property
    def arrow(self) -> str:
        return "→" if self is Direction.CLIENT_TO_SERVER else "←"
