"""TcpConnection: roles, stages, and reassembly through both directions."""

from __future__ import annotations

from smtptop.decode.segment import ACK, FIN, PSH, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.tcp.connection import TcpConnection, TcpStage
from smtptop.tcp.events import StreamData, StreamGap

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 25)
SMTP_PORTS = frozenset({25, 465, 587})
C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def seg(direction: Direction, seq: int, ack: int, flags: int, payload: bytes = b"", ts: float = 0.0) -> Segment:
    src, dst = (CLIENT, SERVER) if direction is C2S else (SERVER, CLIENT)
    return Segment(ts, 0, (), src[0], dst[0], src[1], dst[1], seq, ack, flags, 65535, payload, len(payload), b"")


def handshake(client_isn: int = 100, server_isn: int = 5000) -> TcpConnection:
    syn = seg(C2S, client_isn, 0, SYN, ts=1.0)
    conn = TcpConnection.open(syn, SMTP_PORTS)
    conn.receive(syn)
    conn.receive(seg(S2C, server_isn, client_isn + 1, SYN | ACK, ts=1.1))
    conn.receive(seg(C2S, client_isn + 1, server_isn + 1, ACK, ts=1.2))
    return conn


def test_handshake_stages_and_times() -> None:
    syn = seg(C2S, 100, 0, SYN, ts=1.0)
    conn = TcpConnection.open(syn, SMTP_PORTS)
    assert conn.client == CLIENT
    assert conn.server == SERVER
    conn.receive(syn)
    assert conn.stage is TcpStage.SYN_SENT
    conn.receive(seg(S2C, 5000, 101, SYN | ACK, ts=1.1))
    assert conn.stage is TcpStage.SYN_ACK
    conn.receive(seg(C2S, 101, 5001, ACK, ts=1.2))
    assert conn.stage is TcpStage.ESTABLISHED
    assert (conn.syn_ts, conn.synack_ts, conn.established_ts) == (1.0, 1.1, 1.2)
    assert conn.relative_seq(C2S, 101) == 1
    assert conn.relative_seq(S2C, 5000) == 0


def test_roles_from_synack_first() -> None:
    conn = TcpConnection.open(seg(S2C, 5000, 101, SYN | ACK), frozenset())
    assert conn.client == CLIENT
    assert conn.server == SERVER


def test_roles_from_server_ports_then_lower_port() -> None:
    data = seg(S2C, 5000, 101, ACK | PSH, b"220 hi\r\n")
    assert TcpConnection.open(data, SMTP_PORTS).server == SERVER
    assert TcpConnection.open(data, frozenset()).server == SERVER  # 25 < 40000
    assert TcpConnection.open(data, frozenset({40000})).server == CLIENT


def test_smtp_dialogue_both_directions() -> None:
    conn = handshake()
    direction, events = conn.receive(seg(S2C, 5001, 101, ACK | PSH, b"220 mx ESMTP\r\n", 1.3))
    assert direction is S2C
    assert events == [StreamData(b"220 mx ESMTP\r\n", 1.3)]
    direction, events = conn.receive(seg(C2S, 101, 5015, ACK | PSH, b"EHLO a\r\n", 1.4))
    assert direction is C2S
    assert events == [StreamData(b"EHLO a\r\n", 1.4)]


def test_segment_captured_after_its_ack() -> None:
    conn = handshake()
    conn.receive(seg(C2S, 101, 5001, ACK | PSH, b"EHLO a\r\n", 2.0))
    # The server acknowledges MAIL FROM and replies before the capture records it.
    mail = b"MAIL FROM:<a@b>\r\n"
    _, events = conn.receive(seg(S2C, 5001, 109 + len(mail), ACK | PSH, b"250 ok\r\n", 2.1))
    assert events == [StreamData(b"250 ok\r\n", 2.1)]
    assert conn.expire(2.5) == []
    _, events = conn.receive(seg(C2S, 109, 5009, ACK | PSH, mail, 2.6))
    assert events == [StreamData(mail, 2.6)]
    assert conn.flush(10.0) == []
    assert conn.gap_bytes == 0
    assert conn.stream(Direction.CLIENT_TO_SERVER).retransmissions == 0
    # Wireshark calls data the peer already acknowledged a spurious retransmission.
    assert conn.last_tags == ("Spurious Retransmission",)
    assert not conn.has_pending_holes


def test_expire_reports_lost_segment() -> None:
    conn = handshake()
    conn.receive(seg(C2S, 109, 5001, ACK | PSH, b"QUIT\r\n", 2.0))  # bytes 101..108 never captured
    assert conn.has_pending_holes
    conn.receive(seg(S2C, 5001, 115, ACK, ts=2.1))
    assert conn.expire(2.5) == []
    released = conn.expire(3.2)
    assert len(released) == 2
    assert released[0][0] is C2S
    assert isinstance(released[0][1], StreamGap)
    assert released[0][1].length == 8
    assert released[1] == (C2S, StreamData(b"QUIT\r\n", 3.2))


def test_fin_each_way_closes() -> None:
    conn = handshake()
    conn.receive(seg(C2S, 101, 5001, ACK | FIN, ts=3.0))
    assert conn.stage is TcpStage.CLOSING
    assert not conn.closed
    conn.receive(seg(S2C, 5001, 102, ACK | FIN, ts=3.1))
    assert conn.stage is TcpStage.CLOSED
    assert conn.closed
    assert conn.end_ts == 3.1
    conn.receive(seg(C2S, 102, 5002, ACK, ts=3.2))
    assert conn.flush(4.0) == []


def test_rst_resets() -> None:
    conn = handshake()
    _, events = conn.receive(seg(S2C, 5001, 101, RST | ACK, b"diagnostic", 3.0))
    assert events == []
    assert conn.stage is TcpStage.RESET
    assert conn.closed
    assert conn.end_ts == 3.0


def test_rst_answering_syn_refused() -> None:
    syn = seg(C2S, 100, 0, SYN, ts=1.0)
    conn = TcpConnection.open(syn, SMTP_PORTS)
    conn.receive(syn)
    conn.receive(seg(S2C, 0, 101, RST | ACK, ts=1.01))
    assert conn.stage is TcpStage.REFUSED
    assert conn.closed


def test_midstream_start() -> None:
    first = seg(S2C, 7000, 300, ACK | PSH, b"250 ok\r\n", 5.0)
    conn = TcpConnection.open(first, SMTP_PORTS)
    _, events = conn.receive(first)
    assert events == [StreamData(b"250 ok\r\n", 5.0)]
    assert conn.stage is TcpStage.MIDSTREAM
    assert conn.established_ts == 5.0
    assert conn.syn_ts is None
    assert conn.relative_seq(S2C, 7000) == 1


def test_retransmission_counted_on_connection() -> None:
    conn = handshake()
    conn.receive(seg(C2S, 101, 5001, ACK | PSH, b"EHLO a\r\n", 2.0))
    _, events = conn.receive(seg(C2S, 101, 5001, ACK | PSH, b"EHLO a\r\n", 2.3))
    assert events == []
    assert conn.retransmissions == 1


def test_fast_open_syn_data() -> None:
    syn = seg(C2S, 100, 0, SYN, b"EHLO a\r\n", 1.0)
    conn = TcpConnection.open(syn, SMTP_PORTS)
    _, events = conn.receive(syn)
    assert events == [StreamData(b"EHLO a\r\n", 1.0)]
    conn.receive(seg(S2C, 5000, 109, SYN | ACK, ts=1.1))
    _, events = conn.receive(seg(C2S, 109, 5001, ACK | PSH, b"QUIT\r\n", 1.2))
    assert events == [StreamData(b"QUIT\r\n", 1.2)]
