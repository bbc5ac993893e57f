"""The two directions of a conversation, shared by the TCP, SMTP and TLS cores."""

from enum import Enum


class Direction(Enum):
    """Sender of a segment: the client (the side that sent the SYN) or the server."""

    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"

    # The other direction, set on each member below. A plain attribute rather than a
    # property, because the per-packet path reads it several times per segment.
    reverse: "Direction"

    # Members are singletons, so identity hashing is correct. It runs in C, unlike Enum's
    # Python-level __hash__, and directions are dict keys on the per-packet path.
    __hash__ = object.__hash__

    @property
    def arrow(self) -> str:
        return "→" if self is Direction.CLIENT_TO_SERVER else "←"


Direction.CLIENT_TO_SERVER.reverse = Direction.SERVER_TO_CLIENT
Direction.SERVER_TO_CLIENT.reverse = Direction.CLIENT_TO_SERVER
