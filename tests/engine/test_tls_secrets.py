"""Key material stays out of every output: logs, JSON, the screens' records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from smtptop.engine.tls_view import tls_summary
from smtptop.output.records import conversation_record
from tests.engine.helpers import run_file

PUBLIC = Path(__file__).parent.parent / "data" / "public"


@pytest.mark.parametrize(
    ("capture", "keys", "port"),
    [
        ("starttls-keylog-port25.pcapng", "starttls-keylog-port25.keys", 25),
        ("tls12-tls13-scapy-nss.pcap", "tls12-tls13-scapy-nss.keys", 443),
    ],
)
def test_secrets_never_reach_logs_or_json(
    capture: str, keys: str, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [
        line.split()[-1].lower()
        for line in (PUBLIC / keys).read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert secrets

    with caplog.at_level(logging.DEBUG):
        run = run_file(PUBLIC / capture, smtp_ports=frozenset({port}), tls_keylog=str(PUBLIC / keys))
        conversations = run.smtp()
        records = [json.dumps(conversation_record(conversation)) for conversation in conversations]
        summaries = [repr(tls_summary(conversation, 0.0)) for conversation in conversations]

    assert conversations
    assert all(tls_summary(conversation, 0.0).decrypted for conversation in conversations)
    outputs = caplog.text.lower() + "".join(records).lower() + "".join(summaries).lower()
    for secret in secrets:
        assert secret not in outputs
        # A secret may also be split in the hex dump of some debug output: its head is enough.
        assert secret[:24] not in outputs
