"""TcpAnalysis: Wireshark's flags, windows, RTT and Zeek's summary, checked against tshark where it can be."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.decode.segment import ACK, FIN, PSH, RST, SYN, Segment
from smtptop.direction import Direction
from smtptop.tcp.analysis import FAST_RETRANSMISSION, TcpAnalysis
from smtptop.tcp.connection import TcpConnection
from smtptop.tcp.events import StreamData
from smtptop.tcp.options import parse_options

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 25)
C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
CLIENT_ISN = 1000
SERVER_ISN = 5000


def wscale(shift: int) -> bytes:
    return bytes([1, 3, 3, shift])


def seg(
    direction: Direction,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    ts: float = 0.0,
    window: int = 65535,
    options: bytes = b"",
) -> Segment:
    src, dst = (CLIENT, SERVER) if direction is C2S else (SERVER, CLIENT)
    return Segment(
        ts,
        0,
        (),
        src[0],
        dst[0],
        src[1],
        dst[1],
        seq,
        ack,
        flags,
        window,
        payload,
        len(payload),
        options,
    )


def handshake(
    client_options: bytes = b"", server_options: bytes = b"", window: int = 65535
) -> list[Segment]:
    return [
        seg(C2S, CLIENT_ISN, 0, SYN, ts=1.0, window=window, options=client_options),
        seg(
            S2C,
            SERVER_ISN,
            CLIENT_ISN + 1,
            SYN | ACK,
            ts=1.05,
            window=window,
            options=server_options,
        ),
        seg(C2S, CLIENT_ISN + 1, SERVER_ISN + 1, ACK, ts=1.1, window=window),
    ]


def c_seq(offset: int) -> int:
    return CLIENT_ISN + 1 + offset


def s_seq(offset: int) -> int:
    return SERVER_ISN + 1 + offset


def feed(segments: list[Segment]) -> tuple[TcpConnection, list[tuple[str, ...]], bytes]:
    """Run segments through a TcpConnection; return it, the tags per segment and the client's stream."""
    conn = TcpConnection.open(segments[0], frozenset({25}))
    tags: list[tuple[str, ...]] = []
    stream = b""
    for segment in segments:
        direction, events = conn.receive(segment)
        tags.append(conn.last_tags)
        if direction is C2S:
            stream += b"".join(event.data for event in events if isinstance(event, StreamData))
    return conn, tags, stream


def write_pcap(path: Path, segments: list[Segment]) -> None:
    """Write the segments as Ethernet/IPv4/TCP frames for tshark."""
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for segment in segments:
            options = segment.options + b"\x00" * (-len(segment.options) % 4)
            tcp = dpkt.tcp.TCP(
                sport=segment.sport,
                dport=segment.dport,
                seq=segment.seq,
                ack=segment.ack,
                flags=segment.flags,
                win=segment.window,
                opts=options,
                data=segment.payload,
            )
            tcp.off = (20 + len(options)) // 4
            ip = dpkt.ip.IP(src=segment.src, dst=segment.dst, p=dpkt.ip.IP_PROTO_TCP, data=tcp)
            ip.len = 20 + len(bytes(tcp))
            frame = dpkt.ethernet.Ethernet(
                src=b"\x02" * 6, dst=b"\x04" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip
            )
            writer.writepkt(bytes(frame), ts=segment.ts)


TSHARK_FIELDS = (
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.duplicate_ack_num",
    "tcp.analysis.zero_window",
    "tcp.analysis.window_update",
    "tcp.analysis.lost_segment",
    "tcp.analysis.keep_alive",
    "tcp.analysis.keep_alive_ack",
    "tcp.analysis.out_of_order",
)


def tshark_flags(path: Path) -> list[dict[str, str]]:
    """Return, per frame, the tcp.analysis fields tshark set on it."""
    command = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in output.splitlines():
        values = line.split("|")
        rows.append(
            {name: value for name, value in zip(TSHARK_FIELDS, values, strict=True) if value}
        )
    return rows


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def keep_alive_segments(probe: bytes) -> list[Segment]:
    segments = handshake()
    segments += [
        seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"220 ready\r\n", ts=1.2),
        seg(C2S, c_seq(0), s_seq(11), ACK | PSH, b"NOOP\r\n", ts=1.3),
        seg(S2C, s_seq(11), c_seq(6), ACK | PSH, b"250 ok\r\n", ts=1.4),
        seg(C2S, c_seq(6), s_seq(19), ACK, ts=1.5),
        # 60 s of idle, then the client probes with the byte before the next one.
        seg(C2S, c_seq(5), s_seq(19), ACK, probe, ts=61.5),
        seg(S2C, s_seq(19), c_seq(6), ACK, ts=61.55),
        seg(C2S, c_seq(6), s_seq(19), ACK | PSH, b"QUIT\r\n", ts=62.0),
    ]
    return segments


@pytest.mark.parametrize("probe", [b"", b"\n"], ids=["bare", "one-byte"])
def test_keep_alive_after_idle(probe: bytes) -> None:
    conn, tags, stream = feed(keep_alive_segments(probe))
    client = conn.analysis.stats(C2S)
    server = conn.analysis.stats(S2C)
    assert tags[7] == ("TCP Keep-Alive",)
    assert tags[8] == ("TCP Keep-Alive ACK",)
    assert client.keep_alives == 1
    assert server.keep_alive_acks == 1
    assert conn.retransmissions == 0
    assert conn.stream(C2S).retransmissions == 0
    assert client.duplicate_acks + server.duplicate_acks == 0
    assert stream == b"NOOP\r\nQUIT\r\n"


@needs_tshark
@pytest.mark.parametrize("probe", [b"", b"\n"], ids=["bare", "one-byte"])
def test_keep_alive_agrees_with_tshark(probe: bytes, tmp_path: Path) -> None:
    path = tmp_path / "keep-alive.pcap"
    write_pcap(path, keep_alive_segments(probe))
    rows = tshark_flags(path)
    assert "tcp.analysis.keep_alive" in rows[7]
    assert "tcp.analysis.keep_alive_ack" in rows[8]
    assert not any("tcp.analysis.retransmission" in row for row in rows)
    assert not any("tcp.analysis.duplicate_ack_num" in row for row in rows)


def window_hole_segments() -> list[Segment]:
    segments = handshake()
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"a" * 100, ts=1.2),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.25, window=0),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.5, window=4096),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.6, window=8192),
        # The client's segment at offset 100 is not captured.
        seg(C2S, c_seq(200), s_seq(0), ACK | PSH, b"c" * 100, ts=1.7),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.75, window=8192),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.76, window=8192),
        seg(S2C, s_seq(0), c_seq(100), ACK, ts=1.77, window=8192),
        seg(C2S, c_seq(100), s_seq(0), ACK | PSH, b"b" * 100, ts=2.0),
    ]
    return segments


EXPECTED_HOLE_TAGS = [
    (),
    (),
    (),
    (),
    ("ZeroWindow",),
    ("Window Update",),
    ("Window Update",),
    ("Previous segment not captured",),
    ("Dup ACK #1",),
    ("Dup ACK #2",),
    ("Dup ACK #3",),
    ("Retransmission",),
]


def test_zero_window_updates_dup_acks_and_hole() -> None:
    conn, tags, stream = feed(window_hole_segments())
    client = conn.analysis.stats(C2S)
    server = conn.analysis.stats(S2C)
    assert tags == EXPECTED_HOLE_TAGS
    assert server.zero_windows == 1
    assert server.window_updates == 2
    assert server.duplicate_acks == 3
    assert client.retransmissions == 1
    assert client.lost_segments == 1
    assert conn.retransmissions == 1
    assert stream == b"a" * 100 + b"b" * 100 + b"c" * 100


@needs_tshark
def test_zero_window_hole_agrees_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "window-hole.pcap"
    write_pcap(path, window_hole_segments())
    rows = tshark_flags(path)
    assert "tcp.analysis.zero_window" in rows[4]
    assert "tcp.analysis.window_update" in rows[5]
    assert "tcp.analysis.window_update" in rows[6]
    assert "tcp.analysis.lost_segment" in rows[7]
    assert [row.get("tcp.analysis.duplicate_ack_num") for row in rows[8:11]] == ["1", "2", "3"]
    assert "tcp.analysis.retransmission" in rows[11]
    assert "tcp.analysis.out_of_order" not in rows[11]
    assert "tcp.analysis.fast_retransmission" not in rows[11]


def test_mid_stream_scale_unknown() -> None:
    analysis = TcpAnalysis()
    analysis.observe(
        seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"250 ok\r\n", ts=5.0, window=501), S2C
    )
    tags = analysis.observe(seg(C2S, c_seq(0), s_seq(8), ACK, ts=5.1, window=0), C2S)
    client = analysis.stats(C2S)
    server = analysis.stats(S2C)
    assert tags == ("ZeroWindow",)
    assert client.zero_windows == 1
    assert client.window is None
    assert client.raw_window == 0
    assert client.window_scale is None
    assert server.window is None
    assert server.raw_window == 501


def test_window_scale_both_sides() -> None:
    conn, _, _ = feed(handshake(wscale(7), wscale(8), window=1000))
    conn.receive(seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"220\r\n", ts=1.2, window=100))
    client = conn.analysis.stats(C2S)
    server = conn.analysis.stats(S2C)
    assert client.window_scale == 7
    assert server.window_scale == 8
    assert client.window == 1000 << 7
    assert server.window == 100 << 8
    assert server.raw_window == 100


def test_window_scale_off_without_synack_option() -> None:
    conn, _, _ = feed(handshake(wscale(7), b"", window=1000))
    client = conn.analysis.stats(C2S)
    assert client.window_scale == 0
    assert conn.analysis.stats(S2C).window_scale == 0
    assert client.window == 1000


def test_window_scale_clamped_to_14() -> None:
    conn, _, _ = feed(handshake(wscale(15), wscale(20), window=2))
    assert conn.analysis.stats(C2S).window_scale == 14
    assert conn.analysis.stats(C2S).window == 2 << 14


def test_options_tolerate_damage() -> None:
    full = bytes([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7])
    options = parse_options(full)
    assert options.mss == 1460
    assert options.sack_permitted
    assert options.timestamp == (1, 2)
    assert options.window_scale == 7
    for cut in range(len(full)):
        parse_options(full[:cut])
    assert parse_options(bytes([3, 0, 7])).window_scale is None
    assert parse_options(bytes([3, 9, 7])).window_scale is None
    assert parse_options(bytes([2, 4, 5, 180, 3, 3])).mss == 1460


def test_initial_rtt_runs_from_the_retransmitted_syn() -> None:
    # The first SYN was lost; tshark times the iRTT from the SYN that got the SYN-ACK.
    lost_syn = seg(C2S, CLIENT_ISN, 0, SYN, ts=0.0)
    conn, _, _ = feed([lost_syn, *handshake()])

    assert conn.analysis.initial_rtt == pytest.approx(0.1)


def test_initial_and_ack_rtt() -> None:
    segments = handshake()
    segments += [
        seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"220 ready\r\n", ts=2.0),
        seg(C2S, c_seq(0), s_seq(11), ACK, ts=2.2),
        seg(S2C, s_seq(11), c_seq(0), ACK | PSH, b"x", ts=3.0),
        seg(C2S, c_seq(0), s_seq(12), ACK, ts=3.6),
    ]
    conn, _, _ = feed(segments)
    server = conn.analysis.stats(S2C)
    assert conn.analysis.initial_rtt == pytest.approx(0.1)
    # Samples: the SYN-ACK (0.05 s), then 0.2 s and 0.6 s.
    assert server.rtt_min == pytest.approx(0.05)
    assert server.rtt_max == pytest.approx(0.6)
    srtt = 0.05
    for sample in (0.2, 0.6):
        srtt += (sample - srtt) / 8
    assert server.rtt_smoothed == pytest.approx(srtt)
    assert conn.analysis.stats(C2S).rtt_min == pytest.approx(0.05)


def test_rtt_skips_retransmitted_segment() -> None:
    segments = handshake()
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"HELO\r\n", ts=2.0),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"HELO\r\n", ts=3.0),
        seg(S2C, s_seq(0), c_seq(6), ACK, ts=3.1),
    ]
    conn, tags, _ = feed(segments)
    assert tags[4] == ("Retransmission",)
    assert conn.analysis.stats(C2S).rtt_max == pytest.approx(0.05)


def close_segments() -> list[Segment]:
    segments = handshake()
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"QUIT\r\n", ts=1.2),
        seg(S2C, s_seq(0), c_seq(6), ACK, ts=1.3),
        seg(S2C, s_seq(0), c_seq(6), ACK | PSH, b"221 bye\r\n", ts=1.4),
        seg(C2S, c_seq(6), s_seq(9), ACK | FIN, ts=1.5),
        seg(S2C, s_seq(9), c_seq(7), ACK | FIN, ts=1.6),
        seg(C2S, c_seq(7), s_seq(10), ACK, ts=1.7),
    ]
    return segments


def test_zeek_full_close() -> None:
    conn, _, _ = feed(close_segments())
    assert conn.analysis.zeek_state() == "SF"
    assert conn.analysis.history() == "ShADadFf"


def test_zeek_refused() -> None:
    conn, _, _ = feed([handshake()[0], seg(S2C, 0, CLIENT_ISN + 1, RST | ACK, ts=1.01)])
    assert conn.analysis.zeek_state() == "REJ"
    assert conn.analysis.history() == "Sr"


def test_zeek_reset_by_originator() -> None:
    segments = handshake()
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"EHLO x\r\n", ts=1.2),
        seg(C2S, c_seq(8), s_seq(0), RST, ts=1.3),
    ]
    conn, _, _ = feed(segments)
    assert conn.analysis.zeek_state() == "RSTO"
    assert conn.analysis.history() == "ShADR"


def test_zeek_only_syn() -> None:
    conn, _, _ = feed([handshake()[0]])
    assert conn.analysis.zeek_state() == "S0"
    assert conn.analysis.history() == "S"


def test_zeek_mid_stream() -> None:
    conn, _, _ = feed(
        [
            seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"250 ok\r\n", ts=5.0),
            seg(C2S, c_seq(0), s_seq(8), ACK, ts=5.1),
        ]
    )
    assert conn.analysis.zeek_state() == "OTH"
    assert conn.analysis.history() == "dA"


def test_zeek_retransmission_letters_logarithmic() -> None:
    segments = handshake()
    segments.append(seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"xy", ts=2.0))
    segments += [seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"xy", ts=3.0 + i) for i in range(12)]
    conn, _, _ = feed(segments)
    assert conn.analysis.history() == "ShADTT"
    assert conn.analysis.stats(C2S).retransmissions == 12


ZEEK_CASES = [
    # (segments after the handshake or in place of it, state, history)
    ("established", [], "S1", "ShA"),
    ("client FIN only", [seg(C2S, c_seq(0), s_seq(0), ACK | FIN, ts=1.2)], "S2", "ShAF"),
    ("server FIN only", [seg(S2C, s_seq(0), c_seq(0), ACK | FIN, ts=1.2)], "S3", "ShAf"),
    ("server reset", [seg(S2C, s_seq(0), c_seq(0), RST | ACK, ts=1.2)], "RSTR", "ShAr"),
]


@pytest.mark.parametrize(
    ("name", "extra", "state", "history"), ZEEK_CASES, ids=[case[0] for case in ZEEK_CASES]
)
def test_zeek_states_after_handshake(
    name: str, extra: list[Segment], state: str, history: str
) -> None:
    conn, _, _ = feed(handshake() + extra)
    assert conn.analysis.zeek_state() == state
    assert conn.analysis.history() == history


def test_zeek_syn_then_originator_reset() -> None:
    conn, _, _ = feed([handshake()[0], seg(C2S, CLIENT_ISN + 1, 0, RST, ts=1.5)])
    assert conn.analysis.zeek_state() == "RSTOS0"
    assert conn.analysis.history() == "SR"


def test_zeek_syn_then_fin_half_open() -> None:
    conn, _, _ = feed([handshake()[0], seg(C2S, CLIENT_ISN + 1, 0, FIN, ts=1.5)])
    assert conn.analysis.zeek_state() == "SH"


def test_zero_window_probe_and_ack() -> None:
    segments = handshake()
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"a" * 10, ts=1.2),
        seg(S2C, s_seq(0), c_seq(10), ACK, ts=1.3, window=0),
        seg(C2S, c_seq(10), s_seq(0), ACK, b"b", ts=1.8),
        seg(S2C, s_seq(0), c_seq(10), ACK, ts=1.85, window=0),
    ]
    conn, tags, _ = feed(segments)
    assert tags[4] == ("ZeroWindow",)
    assert tags[5] == ("ZeroWindowProbe",)
    assert tags[6] == ("ZeroWindow", "ZeroWindowProbeAck")
    assert conn.analysis.stats(C2S).zero_window_probes == 1
    assert conn.analysis.stats(S2C).zero_window_probe_acks == 1
    assert conn.retransmissions == 0


def test_window_full_and_bytes_in_flight() -> None:
    conn, _, _ = feed(handshake(wscale(0), wscale(0), window=10))
    tags = conn.analysis.observe(seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"a" * 10, ts=1.2), C2S)
    assert tags == ("Window Full",)
    assert conn.analysis.stats(C2S).window_full == 1
    assert conn.analysis.stats(C2S).bytes_in_flight == 10


def test_acked_unseen_segment() -> None:
    segments = handshake()
    segments.append(seg(S2C, s_seq(0), c_seq(50), ACK, ts=1.2))
    conn, tags, _ = feed(segments)
    assert tags[3] == ("ACKed unseen segment",)
    assert conn.analysis.stats(S2C).acked_unseen == 1


def unseen_after_hole_segments() -> list[Segment]:
    """The server ACKs 100 client bytes that were never captured, then 6 bytes the client sends after the hole."""
    return [
        *handshake(),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"x" * 10, ts=1.2),
        seg(S2C, s_seq(0), c_seq(110), ACK | PSH, b"z" * 8, ts=1.3),
        seg(C2S, c_seq(110), s_seq(8), ACK, ts=1.4),
        seg(C2S, c_seq(110), s_seq(8), ACK | PSH, b"y" * 6, ts=1.5),
        seg(S2C, s_seq(8), c_seq(116), ACK, ts=1.6),
    ]


def unseen_once_segments() -> list[Segment]:
    """Two server ACKs past the client's data with no new client ACK between them, then client duplicate ACKs."""
    return [
        *handshake(),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"x" * 10, ts=1.2),
        seg(S2C, s_seq(0), c_seq(20), ACK, ts=1.3),
        seg(S2C, s_seq(0), c_seq(30), ACK, ts=1.4),
        seg(C2S, c_seq(10), s_seq(0), ACK, ts=1.5),
        seg(C2S, c_seq(10), s_seq(0), ACK, ts=1.6),
    ]


def unseen_during_dup_acks_segments() -> list[Segment]:
    """The server ACKs unseen client data while the client is sending duplicate ACKs."""
    return [
        *handshake(),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"x" * 10, ts=1.2),
        seg(C2S, c_seq(10), s_seq(0), ACK, ts=1.21),
        seg(C2S, c_seq(10), s_seq(0), ACK, ts=1.22),
        seg(S2C, s_seq(0), c_seq(20), ACK, ts=1.3),
        seg(C2S, c_seq(10), s_seq(0), ACK, ts=1.4),
    ]


def unseen_after_new_data_segments() -> list[Segment]:
    """The server ACKs unseen client data twice, and the client sends data past the hole between the two ACKs."""
    return [
        *handshake(),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"x" * 10, ts=1.2),
        seg(S2C, s_seq(0), c_seq(20), ACK, ts=1.3),
        seg(C2S, c_seq(20), s_seq(0), ACK | PSH, b"y" * 5, ts=1.4),
        seg(S2C, s_seq(0), c_seq(25), ACK, ts=1.5),
    ]


def fast_retransmission_after_unseen_segments() -> list[Segment]:
    """The server resends its data at the client's ACK 10 ms later, in a segment that ACKs unseen client data."""
    return [
        *handshake(),
        seg(S2C, s_seq(0), c_seq(0), ACK | PSH, b"z" * 10, ts=1.2),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"x" * 10, ts=1.4),
        seg(S2C, s_seq(0), c_seq(20), ACK | PSH, b"z" * 10, ts=1.41),
    ]


def test_acked_unseen_again_after_hole() -> None:
    conn, tags, _ = feed(unseen_after_hole_segments())
    assert tags[4] == ("ACKed unseen segment",)
    assert tags[5] == ("Previous segment not captured",)
    assert tags[7] == ("ACKed unseen segment",)
    assert conn.analysis.stats(S2C).acked_unseen == 2


def test_acked_unseen_once_per_stretch() -> None:
    conn, tags, _ = feed(unseen_once_segments())
    assert tags[4] == ("ACKed unseen segment",)
    assert tags[5] == ()
    assert tags[6] == ("Dup ACK #1",)
    assert tags[7] == ("Dup ACK #2",)
    assert conn.analysis.stats(S2C).acked_unseen == 1


def test_acked_unseen_not_during_dup_acks() -> None:
    conn, tags, _ = feed(unseen_during_dup_acks_segments())
    assert tags[6] == ()
    assert tags[7] == ("Dup ACK #1",)
    assert conn.analysis.stats(S2C).acked_unseen == 0


def test_acked_unseen_after_new_data() -> None:
    conn, tags, _ = feed(unseen_after_new_data_segments())
    assert tags[4] == ("ACKed unseen segment",)
    assert tags[5] == ("Previous segment not captured",)
    assert tags[6] == ("ACKed unseen segment",)
    assert conn.analysis.stats(S2C).acked_unseen == 2


def test_fast_retransmission_after_unseen() -> None:
    conn, tags, _ = feed(fast_retransmission_after_unseen_segments())
    assert tags[5] == ("ACKed unseen segment", "Fast Retransmission")
    assert conn.analysis.stats(S2C).fast_retransmissions == 1
    assert conn.analysis.stats(C2S).duplicate_acks == 0


@needs_tshark
@pytest.mark.parametrize(
    "build",
    [
        unseen_after_hole_segments,
        unseen_once_segments,
        unseen_during_dup_acks_segments,
        unseen_after_new_data_segments,
    ],
)
def test_acked_unseen_agrees_with_tshark(
    build: Callable[[], list[Segment]], tmp_path: Path
) -> None:
    segments = build()
    path = tmp_path / "unseen.pcap"
    write_pcap(path, segments)
    command = ["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.analysis.ack_lost_segment"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    expected = [bool(line) for line in output.splitlines()]
    _, tags, _ = feed(segments)
    assert ["ACKed unseen segment" in frame_tags for frame_tags in tags] == expected


@needs_tshark
def test_fast_retransmission_after_unseen_agrees_with_tshark(tmp_path: Path) -> None:
    segments = fast_retransmission_after_unseen_segments()
    path = tmp_path / "fast.pcap"
    write_pcap(path, segments)
    rows = tshark_flags(path)
    _, tags, _ = feed(segments)
    assert "tcp.analysis.fast_retransmission" in rows[5]
    assert [FAST_RETRANSMISSION in frame_tags for frame_tags in tags] == [
        "tcp.analysis.fast_retransmission" in row for row in rows
    ]


def probe_segments() -> list[Segment]:
    segments = handshake(wscale(0), wscale(0), window=10)
    segments += [
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, b"a" * 10, ts=1.2),
        seg(S2C, s_seq(0), c_seq(10), ACK, ts=1.3, window=0),
        seg(C2S, c_seq(10), s_seq(0), ACK, b"b", ts=1.8),
        seg(S2C, s_seq(0), c_seq(10), ACK, ts=1.85, window=0),
        seg(S2C, s_seq(0), c_seq(60), ACK, ts=1.9, window=0),
    ]
    return segments


# tshark 4.0's expert messages for the frames of ``probe_segments`` and the flags expected here.
PROBE_CASES = [
    (3, "TCP window specified by the receiver is now completely full", ("Window Full",)),
    (4, "TCP Zero Window segment", ("ZeroWindow",)),
    (5, "TCP Zero Window Probe", ("ZeroWindowProbe",)),
    (6, "ACK to a TCP Zero Window Probe", ("ZeroWindow", "ZeroWindowProbeAck")),
    (7, "ACKed segment that wasn't captured", ("ZeroWindow", "ACKed unseen segment")),
]


def test_probe_flags() -> None:
    _, tags, _ = feed(probe_segments())
    for index, _, expected in PROBE_CASES:
        assert tags[index] == expected, index


@needs_tshark
def test_probe_flags_agree_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "probe.pcap"
    write_pcap(path, probe_segments())
    command = ["tshark", "-r", str(path), "-T", "fields", "-e", "_ws.expert.message"]
    messages = subprocess.run(
        command, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for index, message, _ in PROBE_CASES:
        assert message in messages[index], index


segment_fields = st.tuples(
    st.booleans(),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFF),
    st.binary(max_size=3),
    st.integers(0, 0xFFFF),
    st.binary(max_size=44),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(segment_fields, max_size=30))
def test_observe_never_raises(fields: list[tuple[bool, int, int, int, bytes, int, bytes]]) -> None:
    analysis = TcpAnalysis()
    for index, (from_client, seq, ack, flags, payload, window, options) in enumerate(fields):
        direction = C2S if from_client else S2C
        segment = seg(direction, seq, ack, flags, payload, float(index), window, options)
        analysis.observe(segment, direction)
    for direction in (C2S, S2C):
        assert analysis.stats(direction).bytes_in_flight >= 0
    assert analysis.zeek_state()


# Times from a loopback capture where tshark 4.0 tagged a resend Retransmission and a
# float comparison tagged it Out-Of-Order. The resend came exactly one iRTT (29 us)
# after the highest segment, and tshark's integer test "below the iRTT" is false there.
BOUNDARY_SYN_TS = 1796440495.415216
BOUNDARY_ACK_TS = 1796440495.415245
BOUNDARY_HIGHEST_TS = 1796440495.846033
BOUNDARY_RESEND_TS = 1796440495.846062


def boundary_segments() -> list[Segment]:
    data = b"x" * 100
    return [
        seg(C2S, CLIENT_ISN, 0, SYN, ts=BOUNDARY_SYN_TS),
        seg(S2C, SERVER_ISN, CLIENT_ISN + 1, SYN | ACK, ts=BOUNDARY_SYN_TS + 0.000015),
        seg(C2S, c_seq(0), s_seq(0), ACK, ts=BOUNDARY_ACK_TS),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, data, ts=BOUNDARY_HIGHEST_TS - 0.000020),
        seg(C2S, c_seq(100), s_seq(0), ACK | PSH, data, ts=BOUNDARY_HIGHEST_TS),
        seg(C2S, c_seq(0), s_seq(0), ACK | PSH, data, ts=BOUNDARY_RESEND_TS),
    ]


def test_resend_one_irtt_later_is_retransmission() -> None:
    _, tags, _ = feed(boundary_segments())

    assert tags[-1] == ("Retransmission",)


@needs_tshark
def test_resend_one_irtt_later_agrees_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "boundary.pcap"
    write_pcap(path, boundary_segments())

    flags = tshark_flags(path)

    assert "tcp.analysis.retransmission" in flags[-1]
    assert "tcp.analysis.out_of_order" not in flags[-1]
