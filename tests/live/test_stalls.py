"""Live capture of a slow aiosmtpd server: the engine shows who is stalled, and times the waits.

The server sleeps before its greeting and before its reply to the end of
the DATA body. While smtplib waits on it, the snapshot row must say that the
server owes the move, and the wait must pass a stall threshold; afterwards
the row must recover. The measured banner and end-of-data waits must match
the server's delays.
"""

from __future__ import annotations

import smtplib
import threading
import time

import pytest

from smtptop.engine.conversation import Conversation
from smtptop.engine.phases import conversation_phases
from smtptop.output.records import conversation_record
from tests.live.capture import SETTLE_SECONDS, LoopbackCapture
from tests.support.servers import aiosmtpd_server

pytestmark = pytest.mark.live

GREETING_DELAY = 3.0
DATA_DELAY = 5.0
STALL_SECONDS = 2.0
# A delay is measured between two capture timestamps (microsecond resolution
# on loopback), but the server's asyncio sleep may wake late and the reply
# then passes through the event loop and the kernel, which adds milliseconds
# on a loaded machine. 0.1 s covers that scheduling, and is still far below
# the delays, so a wrong start or end point of a wait (a whole phase off) fails.
TOLERANCE = 0.1
CLIENT_TIMEOUT = 30.0
POLL_SECONDS = 0.05
GREETING = ("server", "greeting")
END_OF_DATA = ("server", "reply to DATA end-of-data")


def _send_slowly(host: str, port: int, errors: list[Exception]) -> None:
    try:
        client = smtplib.SMTP(host, port, timeout=CLIENT_TIMEOUT)
        client.sendmail(
            "sender@test.example", ["alice@test.example"], b"Subject: slow\r\n\r\nhello\r\n"
        )
        client.quit()
    except (OSError, smtplib.SMTPException) as error:  # reported by the test thread
        errors.append(error)


def _watch(
    capture: LoopbackCapture, client: threading.Thread
) -> list[tuple[str | None, str, float]]:
    """Poll the snapshot until the client is done; return each (waiting_on, waiting_for, age) seen."""
    seen: list[tuple[str | None, str, float]] = []
    deadline = time.monotonic() + GREETING_DELAY + DATA_DELAY + SETTLE_SECONDS
    while client.is_alive() and time.monotonic() < deadline:
        for row in capture.handshaken_rows():
            # Live capture times are wall-clock times, so the age of a wait is measured as the engine does.
            now = max(capture.engine.snapshot().stats.now, time.time())
            age = now - row.waiting_since if row.waiting_since is not None else 0.0
            seen.append((row.waiting_on, row.waiting_for, age))
        time.sleep(POLL_SECONDS)
    return seen


def _run_slow_dialogue() -> tuple[Conversation, list[tuple[str | None, str, float]]]:
    with aiosmtpd_server(greeting_delay=GREETING_DELAY, data_delay=DATA_DELAY) as server:
        with LoopbackCapture(server.port) as capture:
            errors: list[Exception] = []
            client = threading.Thread(target=_send_slowly, args=(server.host, server.port, errors))
            client.start()
            seen = _watch(capture, client)
            client.join(CLIENT_TIMEOUT)
            assert errors == []
            capture.wait_closed()
            final = [(row.waiting_on, row.waiting_for, 0.0) for row in capture.handshaken_rows()]
        return capture.only_dialogue(), seen + final


def _stalled_on(seen: list[tuple[str | None, str, float]], owed: tuple[str, str]) -> int:
    """Return the index of the first observation where ``owed`` waited past the stall threshold."""
    for index, (side, what, age) in enumerate(seen):
        if (side, what) == owed and age > STALL_SECONDS:
            return index
    states = {(side, what) for side, what, _ in seen}
    raise AssertionError(
        f"no observation of {owed} older than {STALL_SECONDS} s; states seen: {states}"
    )


def test_slow_server_stalls_then_recovers() -> None:
    conversation, seen = _run_slow_dialogue()

    greeting_stall = _stalled_on(seen, GREETING)
    data_stall = _stalled_on(seen, END_OF_DATA)
    assert greeting_stall < data_stall
    # Once the greeting arrived the client spoke next. smtplib answers within
    # microseconds, which polling rarely sees, so the check is that the greeting
    # is no longer owed. After the end-of-data reply and QUIT the row closes.
    assert all((side, what) != GREETING for side, what, _ in seen[data_stall:])
    assert seen[-1][:2] == (None, "")

    stalled = conversation_record(conversation)["stalled"]
    assert stalled["waiting_on"] is None
    assert stalled["longest_wait_ms"] == pytest.approx(DATA_DELAY * 1000, abs=TOLERANCE * 1000)


def test_slow_server_waits_measured() -> None:
    conversation, _ = _run_slow_dialogue()
    phases = {
        phase.phase: phase for phase in conversation_phases(conversation.tcp, conversation.smtp)
    }

    assert phases["greeting"].complete == pytest.approx(GREETING_DELAY, abs=TOLERANCE)
    assert phases["end-of-data"].complete == pytest.approx(DATA_DELAY, abs=TOLERANCE)
    record = conversation_record(conversation)
    assert record["greeting"]["latency_ms"] == pytest.approx(
        GREETING_DELAY * 1000, abs=TOLERANCE * 1000
    )
