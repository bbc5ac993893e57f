"""Live capture on loopback through the same pieces the CLI wires together.

``LoopbackCapture`` opens pypcap on ``lo`` with the filter ``tcp port N``,
feeds an ``Engine`` from a ``CaptureRunner`` thread and, once the client has
finished, waits until the engine has seen every expected connection close
before it stops. Waiting on the engine, not on the wall clock, keeps the last
packets from being lost, because the runner closes the capture handle on stop
and never reads what is still in the kernel buffer.

Start servers before the capture (see tests/support/servers.py). aiosmtpd
connects to its own port once while starting, and late packets of that probe
may still be captured, so ``dialogues`` keeps only the conversations whose SYN
was captured.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

from smtptop.capture.live import LiveCapture
from smtptop.config import SMTP_PORTS, EngineConfig
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.engine.snapshot import ConversationRow

INTERFACE = "lo"
SNAPLEN = 262144
BUFFER_KIB = 65536
# Generous bound for traffic on loopback to show up in the engine. It is a
# liveness check, not a speed requirement.
SETTLE_SECONDS = 10.0
POLL_SECONDS = 0.02


class LoopbackCapture:
    """A running capture of one server port on loopback, and the engine it feeds.

    Use it as a context manager: entering starts the capture thread, leaving
    stops it and ends the input, so ``finished`` contains every SMTP conversation
    the engine reported.
    """

    def __init__(self, port: int, *, reveal_secrets: bool = False) -> None:
        self.port = port
        self.bpf_filter = f"tcp port {port}"
        self.finished: list[Conversation] = []
        self._capture = LiveCapture(
            INTERFACE, SNAPLEN, BUFFER_KIB, self.bpf_filter, promiscuous=False
        )
        config = EngineConfig(
            smtp_ports=SMTP_PORTS | {port},
            reveal_secrets=reveal_secrets,
            # Nothing is evicted during a test, so finish_input reports every conversation.
            linger_seconds=3600.0,
        )
        self.engine = Engine(
            config,
            self._capture.link_type,
            INTERFACE,
            self.bpf_filter,
            on_finished=self.finished.append,
        )
        self._runner = CaptureRunner(self.engine, self._capture)
        self._stopped = False

    def __enter__(self) -> Self:
        self._runner.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the capture thread and tell the engine the input has ended. Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._runner.stop()
        self.engine.finish_input(None)

    def handshaken_rows(self) -> list[ConversationRow]:
        """Rows of the current snapshot whose connection was captured from its SYN."""
        rows = []
        for row in self.engine.snapshot().rows:
            detail = self.engine.detail(row.key)
            if detail is not None and detail.packets and detail.packets[0].flags == "S":
                rows.append(row)
        return rows

    def wait_closed(self, count: int = 1, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until `count` captured connections have closed, then stop the capture.

        Raises AssertionError naming what the engine saw when the bound passes.
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = self.handshaken_rows()
            failed = self.engine.error is not None
            if not failed and sum(1 for row in rows if row.closed) >= count:
                break
            if failed or time.monotonic() > deadline:
                seen = [(row.client, row.server, row.stage, row.closed) for row in rows]
                raise AssertionError(
                    f"expected {count} closed connection(s) on port {self.port} within {timeout} s, "
                    f"but the engine saw {seen} with error {self.engine.error!r}"
                )
            time.sleep(POLL_SECONDS)
        self.stop()

    def dialogues(self) -> list[Conversation]:
        """Finished SMTP conversations whose SYN was captured, in the order they started."""
        found = [c for c in self.finished if c.tcp.syn_ts is not None]
        return sorted(found, key=lambda conversation: conversation.start)

    def only_dialogue(self) -> Conversation:
        """The single finished conversation whose SYN was captured."""
        found = self.dialogues()
        assert len(found) == 1, f"expected one captured connection, got {[c.client for c in found]}"
        return found[0]
