"""A TCP conversation built frame by frame, with sequence and ACK numbers kept right on both sides."""

from __future__ import annotations

from tests.decode.frames import CLIENT_V4, SERVER_V4, ethernet, ipv4, tcp

from smtptop.capture.files import Frame
from smtptop.config import EngineConfig
from smtptop.decode.linktypes import ETHERNET
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.decode.segment import ACK, FIN, PSH, RST, SYN


class Wire:
    """Ethernet frames of one IPv4 TCP connection between a client and a server."""

    def __init__(self, client_port: int = 40000, server_port: int = 25, start: float = 1000.0,
                 client_isn: int = 100, server_isn: int = 5000) -> None:
        self.client_port = client_port
        self.server_port = server_port
        self.ts = start
        self.seq = {"c": client_isn, "s": server_isn}
        self.frames: list[Frame] = []

    def _frame(self, side: str, flags: int, payload: bytes = b"", after: float = 0.001) -> Frame:
        self.ts += after
        other = "s" if side == "c" else "c"
        ports = (self.client_port, self.server_port) if side == "c" else (self.server_port, self.client_port)
        addresses = (CLIENT_V4, SERVER_V4) if side == "c" else (SERVER_V4, CLIENT_V4)
        header = tcp(sport=ports[0], dport=ports[1], seq=self.seq[side], ack=self.seq[other], flags=flags)
        data = ethernet(ipv4(header + payload, src=addresses[0], dst=addresses[1]))
        frame = (self.ts, data, len(data))
        self.frames.append(frame)
        self.seq[side] = (self.seq[side] + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return frame

    def handshake(self) -> "Wire":
        self._frame("c", SYN)
        self._frame("s", SYN | ACK)
        self._frame("c", ACK)
        return self

    def handshake_refused_by_challenge_ack(self, old_server_seq: int) -> "Wire":
        """Send a SYN that the server replies to with an ACK of an older connection on these ports, and the client's reset.

        The client then sends its SYN again with the same number, as a client
        whose port the server still remembers does (RFC 9293, section 3.10.7.4).
        """
        isn = self.seq["c"]
        self._frame("c", SYN)
        self.seq["s"] = old_server_seq
        self._frame("s", ACK)
        self._frame("c", RST)
        self.seq["c"] = isn
        return self

    def client(self, payload: bytes, after: float = 0.001) -> "Wire":
        self._frame("c", ACK | PSH, payload, after)
        return self

    def server(self, payload: bytes, after: float = 0.001) -> "Wire":
        self._frame("s", ACK | PSH, payload, after)
        return self

    def ack(self, side: str, after: float = 0.001) -> "Wire":
        """Send a bare ACK from ``side`` ("c" or "s") of everything the peer sent so far."""
        self._frame(side, ACK, b"", after)
        return self

    def retransmit(self, side: str, payload: bytes, after: float = 0.2) -> "Wire":
        """Send ``payload`` again from ``side``, with the sequence number it had the first time."""
        self.seq[side] = (self.seq[side] - len(payload)) & 0xFFFFFFFF
        self._frame(side, ACK | PSH, payload, after)
        return self

    def talk(self, dialogue: list[tuple[str, bytes]]) -> "Wire":
        """Send each (side, payload) in turn: "c" for the client, "s" for the server."""
        for side, payload in dialogue:
            if side == "c":
                self.client(payload)
            else:
                self.server(payload)
        return self

    def close(self) -> "Wire":
        self._frame("c", FIN | ACK)
        self._frame("s", FIN | ACK)
        self._frame("c", ACK)
        return self

    def reset(self) -> "Wire":
        self._frame("s", RST | ACK)
        return self


def test_engine(**settings: object) -> tuple[Engine, list[Conversation]]:
    """Build an engine for Ethernet frames; the list collects every conversation it reports."""
    finished: list[Conversation] = []
    engine = Engine(EngineConfig(**settings), ETHERNET, "test", "", on_finished=finished.append)  # type: ignore[arg-type]
    return engine, finished


test_engine.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test for pytest to collect
