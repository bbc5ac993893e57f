"""Stall detection inside decrypted TLS: the SMTP rules apply again once the records open."""

from __future__ import annotations

from pathlib import Path

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.direction import Direction
from smtptop.engine.engine import Engine
from tests.support.tshark import run_tshark

PUBLIC = Path(__file__).parent.parent / "data" / "public"
CAPTURE = PUBLIC / "starttls-keylog-port25.pcapng"
KEYS = PUBLIC / "starttls-keylog-port25.keys"


def _frame_of_decrypted_mail() -> int:
    """Return the frame that carries the client's MAIL command inside TLS, as tshark decrypts it."""
    output = run_tshark(
        CAPTURE,
        "-o",
        f"tls.keylog_file:{KEYS}",
        "-Y",
        'tls and smtp.req.command == "MAIL"',
        "-T",
        "fields",
        "-e",
        "frame.number",
    )
    (frame,) = output.split()
    return int(frame)


def _engine_after(frames: int, keylog: Path | None) -> Engine:
    reader = open_capture(str(CAPTURE))
    config = EngineConfig(tls_keylog=None if keylog is None else str(keylog), linger_seconds=float("inf"))
    engine = Engine(config, reader.link_type, "test", "")
    for batch in reader.batches():
        engine.feed(batch[: max(frames - engine.packets, 0)])
        if engine.packets >= frames:
            break
    reader.close()
    return engine


def test_decrypted_command_is_owed_a_reply() -> None:
    mail = _frame_of_decrypted_mail()
    engine = _engine_after(mail, KEYS)

    conversation = next(iter(engine.conversations.values()))
    assert conversation.smtp is not None
    assert conversation.smtp.waiting_on is Direction.SERVER_TO_CLIENT
    assert conversation.smtp.waiting_for == "reply to MAIL"


def test_without_keys_nothing_is_owed_inside_tls() -> None:
    engine = _engine_after(_frame_of_decrypted_mail(), None)

    conversation = next(iter(engine.conversations.values()))
    assert conversation.smtp is not None
    # The dialogue inside TLS is invisible, so no side can be blamed for a stall.
    assert conversation.smtp.waiting_on is None
    assert conversation.smtp.waiting_for == ""
