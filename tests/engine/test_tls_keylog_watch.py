"""A live key log: sessions seen before their secrets were written decrypt once the file grows."""

from __future__ import annotations

from pathlib import Path

from smtptop.capture.files import open_capture
from smtptop.config import EngineConfig
from smtptop.direction import Direction
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import KEYLOG_CHECK_SECONDS, Engine
from tests.support.tshark import run_tshark

PUBLIC = Path(__file__).parent.parent / "data" / "public"
CAPTURE = PUBLIC / "starttls-keylog-port25.pcapng"
KEYS = PUBLIC / "starttls-keylog-port25.keys"


def _decrypted_commands_by_tshark() -> list[str]:
    output = run_tshark(
        CAPTURE, "-o", f"tls.keylog_file:{KEYS}", "-Y", "tls and smtp.req", "-T", "fields", "-e", "smtp.req.command"
    )
    return output.split()


def _feed_whole_file(engine: Engine) -> None:
    reader = open_capture(str(CAPTURE))
    for batch in reader.batches():
        engine.feed(batch)
    reader.close()


def test_late_secrets_decrypt_sessions(tmp_path: Path) -> None:
    keylog = tmp_path / "sslkeys.log"
    keylog.write_text("# the MTA has not written this session's secrets yet\n")
    finished: list[Conversation] = []
    # The capture has one frame stamped 2063, so only an endless linger keeps the conversation listed.
    config = EngineConfig(tls_keylog=str(keylog), tls_keylog_watch=True, linger_seconds=float("inf"))
    reader = open_capture(str(CAPTURE))
    engine = Engine(config, reader.link_type, "test", "", on_finished=finished.append)
    reader.close()
    _feed_whole_file(engine)

    (row,) = engine.snapshot().rows
    before = engine.detail(row.key)
    assert before is not None and before.tls is not None
    assert not before.tls.decrypted
    assert "no secrets for client random" in (before.tls.decrypt_error or "")
    assert not any(line.decrypted for line in before.transcript)

    keylog.write_text(keylog.read_text() + KEYS.read_text())
    # A live source passes the wall clock even when no packet arrives.
    engine.feed([], wall_clock=engine.now + KEYLOG_CHECK_SECONDS + 0.1)

    after = engine.detail(row.key)
    assert after is not None and after.tls is not None
    assert after.tls.decrypted
    assert after.tls.decrypt_error is None
    decrypted_commands = [
        line.text.split()[0] for line in after.transcript if line.decrypted and line.direction is Direction.CLIENT_TO_SERVER
    ]
    expected = _decrypted_commands_by_tshark()
    assert expected == ["EHLO", "MAIL"]
    assert decrypted_commands == expected
    assert after.row.tls == "1.2 dec"

    # Late keys give the same view as keys present from the start.
    early = Engine(EngineConfig(tls_keylog=str(KEYS), linger_seconds=float("inf")), engine.link_type, "test", "")
    _feed_whole_file(early)
    (early_row,) = early.snapshot().rows
    reference = early.detail(early_row.key)
    assert reference is not None and reference.tls is not None
    assert [(line.ts, line.direction, line.text) for line in after.transcript] == [
        (line.ts, line.direction, line.text) for line in reference.transcript
    ]
    assert [line.frame_no for line in after.transcript] == [line.frame_no for line in reference.transcript]
    assert after.row.stage == reference.row.stage
    assert after.tls.steps == reference.tls.steps
    assert [packet.summary for packet in after.packets] == [packet.summary for packet in reference.packets]
