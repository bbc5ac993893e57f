"""TlsSession on real TLS streams: what it sees, what it decrypts, and why it cannot.

The streams come from public captures through tshark's "follow tcp"; the
decrypted bytes are compared with tshark's "follow tls" using the same key log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smtptop.direction import Direction
from smtptop.tls.keylog import KeyLog
from smtptop.tls.keys import TlsKeys
from smtptop.tls.rsa_keys import RsaKeyList
from smtptop.tls.session import Decrypted, Fallback, Output, TlsSession
from tests.support.tshark import tshark_path
from tests.tls.streams import Chunk, follow_tcp, follow_tls

pytestmark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")

PUBLIC = Path(__file__).parent.parent / "data" / "public"
ECDHE_CAPTURE = PUBLIC / "tls12-zeek-decryption.pcap"
ECDHE_KEYS = PUBLIC / "tls12-zeek-decryption.keys"
MIXED_CAPTURE = PUBLIC / "tls12-tls13-scapy-nss.pcap"
MIXED_KEYS = PUBLIC / "tls12-tls13-scapy-nss.keys"
UNRELATED_RSA_KEY = PUBLIC / "tls12-rsa-pcapfs.key"

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def _directed(chunks: list[Chunk], server_port: int, node0_port: int) -> list[tuple[Direction, bytes]]:
    client_is_node0 = node0_port != server_port
    return [(C2S if chunk.from_node0 == client_is_node0 else S2C, chunk.data) for chunk in chunks]


def _stream(pcap: Path, stream: int = 0) -> list[tuple[Direction, bytes]]:
    followed = follow_tcp(pcap, stream)
    server_port = min(followed.node0_port, followed.node1_port)
    return _directed(followed.chunks, server_port, followed.node0_port)


def _run(session: TlsSession, stream: list[tuple[Direction, bytes]], piece: int | None = None) -> list[Output]:
    """Feed the stream chunk by chunk, or ``piece`` bytes at a time; time is the chunk's index."""
    out: list[Output] = []
    for index, (direction, data) in enumerate(stream):
        step = piece or len(data)
        for start in range(0, len(data), step):
            out += session.feed(direction, data[start : start + step], float(index))
    return out


def _plaintext(out: list[Output], direction: Direction) -> bytes:
    return b"".join(item.data for item in out if isinstance(item, Decrypted) and item.direction is direction)


def _keys(keylog: Path, may_grow: bool = False) -> TlsKeys:
    keys = TlsKeys(KeyLog(str(keylog)), may_grow=may_grow)
    keys.refresh()
    return keys


def _tshark_plaintext(pcap: Path, keylog: Path, stream: int = 0) -> tuple[bytes, bytes]:
    """Return what tshark decrypts on a stream: client bytes, then server bytes."""
    decrypted = follow_tls(pcap, stream, keylog)
    # The server has the lower port in these captures. Only node 0's port is compared,
    # because tshark may leave the other at 0.
    followed = follow_tcp(pcap, stream)
    node0_is_client = decrypted.node0_port != min(followed.node0_port, followed.node1_port)
    client = b"".join(chunk.data for chunk in decrypted.chunks if chunk.from_node0 == node0_is_client)
    server = b"".join(chunk.data for chunk in decrypted.chunks if chunk.from_node0 != node0_is_client)
    return client, server


def test_ecdhe_session_decrypts_as_tshark_does() -> None:
    stream = _stream(ECDHE_CAPTURE)
    session = TlsSession(_keys(ECDHE_KEYS))
    out = _run(session, stream)

    summary = session.summary("implicit", "unknown")
    assert summary.decrypted
    assert summary.decrypt_error is None
    client, server = _tshark_plaintext(ECDHE_CAPTURE, ECDHE_KEYS)
    assert client
    assert _plaintext(out, C2S) == client
    assert _plaintext(out, S2C) == server


def test_one_byte_segments_give_the_same_session() -> None:
    stream = _stream(ECDHE_CAPTURE)
    whole = TlsSession(_keys(ECDHE_KEYS))
    whole_out = _run(whole, stream)
    bytewise = TlsSession(_keys(ECDHE_KEYS))
    bytewise_out = _run(bytewise, stream, piece=1)

    assert bytewise.summary("implicit", "unknown") == whole.summary("implicit", "unknown")
    assert [step.name for step in bytewise.steps].count("ClientHello") == 1
    for direction in (C2S, S2C):
        assert _plaintext(bytewise_out, direction) == _plaintext(whole_out, direction)


def test_without_keys_the_reason_is_given() -> None:
    session = TlsSession(None)
    _run(session, _stream(ECDHE_CAPTURE))

    summary = session.summary("implicit", "unknown")
    assert not summary.decrypted
    assert summary.decrypt_error is not None
    assert "--keylog" in summary.decrypt_error
    # The handshake is still visible.
    assert summary.version == "TLS 1.2"
    assert summary.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    assert summary.sni == "heise.de"


def test_rsa_key_ecdhe_needs_keylog() -> None:
    keys = TlsKeys(rsa=[RsaKeyList.for_any_server(str(UNRELATED_RSA_KEY))])
    session = TlsSession(keys, ("193.99.144.80", 443))
    _run(session, _stream(ECDHE_CAPTURE))

    error = session.summary("implicit", "unknown").decrypt_error
    assert error is not None
    assert "ephemeral key exchange (ECDHE) needs a key log" in error


def test_capture_that_starts_after_the_handshake() -> None:
    stream = _stream(ECDHE_CAPTURE)
    # Drop every chunk up to the client's first application data (its third chunk:
    # ClientHello, then ClientKeyExchange with Finished).
    client_chunks = [index for index, (direction, _) in enumerate(stream) if direction is C2S]
    session = TlsSession(_keys(ECDHE_KEYS))
    _run(session, stream[client_chunks[2] :])

    summary = session.summary("implicit", "unknown")
    assert not summary.decrypted
    assert summary.decrypt_error is not None
    assert "handshake was not captured" in summary.decrypt_error


def test_growing_key_log_decrypts_the_records_that_waited(tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    keylog.write_text("")
    keys = _keys(keylog, may_grow=True)
    session = TlsSession(keys)
    stream = _stream(ECDHE_CAPTURE)
    assert _run(session, stream) == []
    assert session.waiting
    assert "no secrets for client random" in (session.summary("implicit", "unknown").decrypt_error or "")

    keylog.write_text(ECDHE_KEYS.read_text())
    assert keys.refresh()
    out = session.retry()

    client, server = _tshark_plaintext(ECDHE_CAPTURE, ECDHE_KEYS)
    assert _plaintext(out, C2S) == client
    assert _plaintext(out, S2C) == server
    summary = session.summary("implicit", "unknown")
    assert summary.decrypted
    assert summary.decrypt_error is None
    assert not any(step.encrypted for step in summary.steps)


def _tls13_stream() -> tuple[list[tuple[Direction, bytes]], int]:
    for stream_id in (0, 1):
        stream = _stream(MIXED_CAPTURE, stream_id)
        session = TlsSession(None)
        _run(session, stream)
        if session.summary("implicit", "unknown").version == "TLS 1.3":
            return stream, stream_id
    raise AssertionError("no TLS 1.3 stream in the capture")


def test_tls13_decrypts_as_tshark_does() -> None:
    stream, stream_id = _tls13_stream()
    session = TlsSession(_keys(MIXED_KEYS))
    out = _run(session, stream)

    client, server = _tshark_plaintext(MIXED_CAPTURE, MIXED_KEYS, stream_id)
    assert server
    assert _plaintext(out, C2S) == client
    assert _plaintext(out, S2C) == server
    # The certificate travels encrypted in TLS 1.3; decryption makes it visible.
    assert session.summary("implicit", "unknown").certificate is not None


def test_tls13_client_random_only(tmp_path: Path) -> None:
    stream, _ = _tls13_stream()
    probe = TlsSession(None)
    _run(probe, stream)
    assert probe.client_hello is not None
    keylog = tmp_path / "keys.log"
    keylog.write_text(f"CLIENT_RANDOM {probe.client_hello.random.hex()} {'00' * 48}\n")

    session = TlsSession(_keys(keylog))
    _run(session, stream)

    error = session.summary("implicit", "unknown").decrypt_error
    assert error is not None
    assert "only CLIENT_RANDOM" in error
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in error


def test_rsa_key_tls13_needs_keylog() -> None:
    stream, _ = _tls13_stream()
    session = TlsSession(TlsKeys(rsa=[RsaKeyList.for_any_server(str(UNRELATED_RSA_KEY))]))
    _run(session, stream)

    error = session.summary("implicit", "unknown").decrypt_error
    assert error is not None
    assert "TLS 1.3 needs a key log" in error


def test_alert_then_plaintext_reply_is_handed_back() -> None:
    stream = _stream(ECDHE_CAPTURE)
    client_hello = stream[0][1]
    assert stream[0][0] is C2S
    session = TlsSession(None)
    session.feed(C2S, client_hello, 1.0)
    # RFC 8446 section 6: level 2 (fatal), description 40 (handshake_failure).
    reply = b"454 4.7.0 TLS not available due to temporary reason\r\n"
    out = session.feed(S2C, bytes.fromhex("15030300020228") + reply, 2.0)

    assert out == [Fallback(S2C, reply, 2.0)]
    assert session.failed
    summary = session.summary("starttls", "failed")
    assert summary.alert is not None
    assert (summary.alert.level, summary.alert.description, summary.alert.code) == ("fatal", "handshake_failure", 40)
    assert summary.alert.sender is S2C


def test_non_records_without_alert_opaque() -> None:
    session = TlsSession(None)
    out = session.feed(S2C, b"220 not a record\r\n", 1.0)

    assert out == []
    assert not session.failed
