"""Phase timing: each command to its reply, the DATA body, and the TLS handshake."""

from __future__ import annotations

from smtptop.smtp.events import PhaseLatency
from smtptop.smtp.tls_records import RecordScanner

from tests.smtp.helpers import Dialogue, greeted


def record(content_type: int, fragment: bytes) -> bytes:
    return bytes([content_type, 3, 3, len(fragment) >> 8, len(fragment) & 0xFF]) + fragment


CLIENT_HELLO = record(0x16, b"\x01" + b"\x00" * 300)
SERVER_HELLO = record(0x16, b"\x02" + b"\x00" * 90)
CHANGE_CIPHER_SPEC = record(0x14, b"\x01")
APPLICATION_DATA = record(0x17, b"\xaa" * 40)


def test_transaction_phases() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n", 1.1)
    dialogue.server(b"354 go ahead\r\n", 1.2)
    dialogue.client(b"Subject: x\r\n\r\nbody\r\n", 1.5)
    dialogue.client(b".\r\n", 2.0)
    dialogue.server(b"250 2.0.0 Ok: queued as ABC123\r\n", 2.6)

    assert dialogue.conv.phase_latencies() == [
        PhaseLatency("EHLO", 0.1, 0.3, 0.3),
        PhaseLatency("MAIL", 1.0, 1.1, 1.1),
        PhaseLatency("RCPT", 1.0, 1.1, 1.1),
        PhaseLatency("DATA", 1.0, 1.2, 1.2),
        PhaseLatency("body", 1.2, 1.5, 2.0),
        PhaseLatency("end-of-data", 2.0, 2.6, 2.6),
    ]


def test_reply_split_over_chunks() -> None:
    dialogue = greeted()
    dialogue.client(b"NOOP\r\n", 1.0)
    dialogue.server(b"250-first\r\n", 1.25)
    dialogue.server(b"250 last\r\n", 1.5)

    noop = dialogue.conv.phase_latencies()[-1]
    assert noop == PhaseLatency("NOOP", 1.0, 1.25, 1.5)
    assert noop.latency == 0.5
    assert noop.first_byte_latency == 0.25


def test_open_phases_have_no_end() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n", 1.2)

    body = dialogue.conv.phase_latencies()[-1]
    assert body == PhaseLatency("body", 1.2, None, None)
    assert body.latency is None

    dialogue.client(b"part", 1.4)
    assert dialogue.conv.phase_latencies()[-1] == PhaseLatency("body", 1.2, 1.4, None)


def test_auth_and_bdat_phases() -> None:
    dialogue = greeted(b"250-mx\r\n250 AUTH LOGIN\r\n")
    dialogue.client(b"AUTH LOGIN\r\n", 1.0)
    dialogue.server(b"334 VXNlcm5hbWU6\r\n", 1.1)
    dialogue.client(b"Y2Fyb2w=\r\n", 1.2)
    dialogue.server(b"235 ok\r\n", 1.4)
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc", 2.0)
    dialogue.client(b"BDAT 2 LAST\r\nde", 2.1)
    dialogue.server(b"250 ok\r\n250 ok\r\n250 3 octets\r\n", 2.2)
    dialogue.server(b"250 2.0.0 queued as Q1\r\n", 2.5)

    phases = [
        (phase.phase, phase.start, phase.complete) for phase in dialogue.conv.phase_latencies()
    ]
    assert phases[1:] == [
        ("AUTH", 1.0, 1.1),
        ("AUTH response", 1.2, 1.4),
        ("MAIL", 2.0, 2.2),
        ("RCPT", 2.0, 2.2),
        ("BDAT", 2.0, 2.2),
        ("BDAT", 2.1, 2.5),
    ]


def test_starttls_handshake_phases() -> None:
    dialogue = greeted(b"250-mx\r\n250 STARTTLS\r\n")
    dialogue.client(b"STARTTLS\r\n", 1.0)
    dialogue.server(b"220 2.0.0 Ready to start TLS\r\n", 1.1)
    # The ClientHello spans three chunks, and its header is cut after two bytes.
    dialogue.client(CLIENT_HELLO[:2], 1.2)
    dialogue.client(CLIENT_HELLO[2:100], 1.25)
    dialogue.client(CLIENT_HELLO[100:], 1.3)
    dialogue.server(SERVER_HELLO + CHANGE_CIPHER_SPEC + APPLICATION_DATA[:7], 1.5)
    dialogue.server(APPLICATION_DATA[7:], 1.55)
    dialogue.client(CHANGE_CIPHER_SPEC + APPLICATION_DATA, 1.7)

    phases = dialogue.conv.phase_latencies()
    assert phases[-2:] == [
        PhaseLatency("TLS client", 1.2, None, 1.7),
        PhaseLatency("TLS server", 1.2, 1.5, 1.5),
    ]
    assert [phase.phase for phase in phases] == [
        "EHLO",
        "STARTTLS",
        "TLS client",
        "TLS server",
    ]


def test_implicit_tls_handshake_phases() -> None:
    dialogue = Dialogue(implicit_tls=True)
    dialogue.client(CLIENT_HELLO, 0.1)
    dialogue.server(SERVER_HELLO, 0.2)
    dialogue.server(CHANGE_CIPHER_SPEC + APPLICATION_DATA, 0.3)
    dialogue.client(APPLICATION_DATA, 0.4)

    assert dialogue.conv.phase_latencies() == [
        PhaseLatency("TLS client", 0.1, None, 0.4),
        PhaseLatency("TLS server", 0.1, 0.2, 0.3),
    ]


def test_handshake_unfinished() -> None:
    dialogue = Dialogue(implicit_tls=True)
    dialogue.client(CLIENT_HELLO, 0.1)

    assert dialogue.conv.phase_latencies() == [
        PhaseLatency("TLS client", 0.1, None, None),
        PhaseLatency("TLS server", 0.1, None, None),
    ]


def test_scanner_every_split_point() -> None:
    stream = CLIENT_HELLO + CHANGE_CIPHER_SPEC + APPLICATION_DATA
    for cut in range(1, len(stream)):
        scanner = RecordScanner()
        scanner.feed(stream[:cut], 1.0)
        scanner.feed(stream[cut:], 2.0)

        # A record's time is that of the chunk with its first header byte.
        assert scanner.first_handshake_ts == 1.0, cut
        expected_application = 1.0 if cut > len(stream) - len(APPLICATION_DATA) else 2.0
        assert scanner.first_application_data_ts == expected_application, cut
        assert scanner.done, cut


def test_scanner_stops_at_non_record() -> None:
    scanner = RecordScanner()
    scanner.feed(b"EHLO client.example\r\n", 1.0)

    assert scanner.done
    assert scanner.first_handshake_ts is None
    assert scanner.first_application_data_ts is None


def test_body_sent_before_354() -> None:
    dialogue = greeted()
    dialogue.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nbody\r\n.\r\n", 1.0)
    dialogue.server(b"250 ok\r\n250 ok\r\n354 go ahead\r\n250 queued\r\n", 1.3)

    body = [phase for phase in dialogue.conv.phase_latencies() if phase.phase == "body"]
    assert body == [PhaseLatency("body", 1.0, 1.0, 1.0)]
