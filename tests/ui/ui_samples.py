"""Snapshots for the UI tests: one conversation replayed from a public capture, two made by hand.

The first conversation's packets are the real frames of
``tests/data/public/smtp-sv-multi-mail.pcap`` (a Postfix server taking three
messages), decoded here with dpkt. The others are built with ``struct`` so
that their bytes are known exactly.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import dpkt

from smtptop.direction import Direction
from smtptop.engine.snapshot import (
    CaptureStats,
    ConversationDetail,
    ConversationRow,
    PacketRow,
    Percentiles,
    PhaseLatency,
    Snapshot,
    TrafficStats,
    TranscriptLine,
)
from smtptop.ui.source import StaticSource

CAPTURE = Path(__file__).parents[1] / "data" / "public" / "smtp-sv-multi-mail.pcap"
ETHERNET = 1

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

# Key of each sample conversation in the snapshots below.
POSTFIX_KEY = 1
STALLED_KEY = 2
IMPLICIT_KEY = 3


def _tcp_flags(flags: int) -> str:
    letters = ""
    bits = (
        (dpkt.tcp.TH_SYN, "S"),
        (dpkt.tcp.TH_FIN, "F"),
        (dpkt.tcp.TH_RST, "R"),
        (dpkt.tcp.TH_PUSH, "P"),
    )
    for bit, letter in bits:
        if flags & bit:
            letters += letter
    if flags & dpkt.tcp.TH_ACK:
        letters += "."
    return letters


def read_capture() -> list[tuple[float, bytes]]:
    """Return the (timestamp, frame) records of the public capture."""
    with CAPTURE.open("rb") as handle:
        return [(ts, bytes(frame)) for ts, frame in dpkt.pcap.Reader(handle)]


def capture_packets() -> tuple[PacketRow, ...]:
    """Decode the capture into packet rows with sequence numbers relative to each side's ISN."""
    rows = []
    initial_seq: dict[Direction, int] = {}
    for number, (ts, frame) in enumerate(read_capture(), start=1):
        tcp = dpkt.ethernet.Ethernet(frame).data.data
        direction = C2S if tcp.dport == 25 else S2C
        initial_seq.setdefault(direction, tcp.seq)
        payload = bytes(tcp.data)
        seq = (tcp.seq - initial_seq[direction]) % 2**32
        peer_isn = initial_seq.get(direction.reverse)
        has_ack = tcp.flags & dpkt.tcp.TH_ACK and peer_isn is not None
        ack = (tcp.ack - peer_isn) % 2**32 if has_ack else 0
        if payload:
            summary = payload.split(b"\r\n", 1)[0].decode("ascii", "replace")
        elif tcp.flags == dpkt.tcp.TH_ACK:
            summary = "[ACK]"
        else:
            summary = f"[{_tcp_flags(tcp.flags)}]"
        rows.append(
            PacketRow(
                frame_no=number,
                ts=ts,
                direction=direction,
                flags=_tcp_flags(tcp.flags),
                seq=seq,
                ack=ack,
                length=len(payload),
                window=tcp.win,
                summary=summary,
                frame=frame,
                link_type=ETHERNET,
            )
        )
    return tuple(rows)


def capture_transcript(packets: tuple[PacketRow, ...]) -> tuple[TranscriptLine, ...]:
    """Build the SMTP dialogue of the capture, with the message bodies as notes."""
    lines = []
    command_ts: float | None = None
    for packet in packets:
        if packet.length == 0:
            continue
        if packet.summary.startswith(("From:", "Date:", "Subject:")):
            note = f"message body, {packet.length} bytes"
            lines.append(TranscriptLine(packet.ts, None, note, None))
            command_ts = packet.ts
        elif packet.direction is C2S:
            lines.append(TranscriptLine(packet.ts, C2S, packet.summary, None))
            command_ts = packet.ts
        else:
            latency = None if command_ts is None else packet.ts - command_ts
            lines.append(TranscriptLine(packet.ts, S2C, packet.summary, latency))
    return tuple(lines)


def ipv4_frame(
    src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> bytes:
    """Build an Ethernet + IPv4 + TCP frame; checksums are left zero."""
    ethernet = bytes.fromhex("020000000002" "020000000001") + struct.pack("!H", 0x0800)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, total, 0x1234, 0x4000, 64, 6, 0,
        bytes(int(part) for part in src.split(".")),
        bytes(int(part) for part in dst.split(".")),
    )
    return ethernet + ip + tcp + payload


# 43.7 s before the first frame of the public capture, so all three conversations share a clock.
T0 = 1_782_924_000.0

STALLED_DIALOGUE = (
    (0.010, S2C, b"220 mx.example.org ESMTP ready\r\n"),
    (0.020, C2S, b"EHLO client.example.net\r\n"),
    (0.031, S2C, b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250 STARTTLS\r\n"),
    (0.040, C2S, b"MAIL FROM:<carol@example.net>\r\n"),
    (0.052, S2C, b"250 2.1.0 Ok\r\n"),
)


def stalled_packets() -> tuple[PacketRow, ...]:
    rows = []
    offsets = {C2S: 1, S2C: 1}
    for number, (delay, direction, payload) in enumerate(STALLED_DIALOGUE, start=1):
        if direction is C2S:
            addresses = ("10.0.0.5", "10.0.0.25", 40112, 25)
        else:
            addresses = ("10.0.0.25", "10.0.0.5", 25, 40112)
        seq, ack = offsets[direction], offsets[direction.reverse]
        frame = ipv4_frame(*addresses, 1000 + seq, 5000 + ack, 0x18, payload)
        offsets[direction] += len(payload)
        rows.append(
            PacketRow(
                frame_no=100 + number,
                ts=T0 + delay,
                direction=direction,
                flags="P.",
                seq=seq,
                ack=ack,
                length=len(payload),
                window=64240,
                summary=payload.split(b"\r\n", 1)[0].decode(),
                frame=frame,
                link_type=ETHERNET,
            )
        )
    return tuple(rows)


def stalled_transcript() -> tuple[TranscriptLine, ...]:
    """Build the dialogue of the stalled conversation; each line names its packet (frames 101-105)."""
    lines = []
    command_ts: float | None = None
    for number, (delay, direction, payload) in enumerate(STALLED_DIALOGUE, start=101):
        for text in payload.decode().splitlines():
            if direction is C2S:
                command_ts = T0 + delay
                lines.append(TranscriptLine(T0 + delay, C2S, text, None, frame_no=number))
            else:
                latency = None if command_ts is None else T0 + delay - command_ts
                lines.append(TranscriptLine(T0 + delay, S2C, text, latency, frame_no=number))
    return tuple(lines)


# What the stalled conversation waits for, as the engine words it on the conversation screen.
STALL_LINE = "client has not sent a command for 59 s after 250 to MAIL"


def stalled_phases() -> tuple[PhaseLatency, ...]:
    """Return the stalled conversation's phases: MAIL is the slowest complete one, RCPT is owed."""
    return (
        PhaseLatency("connect", T0, None, 0.004),
        PhaseLatency("greeting", T0 + 0.004, 0.006, 0.006),
        PhaseLatency("EHLO", T0 + 0.020, 0.011, 0.011),
        PhaseLatency("MAIL", T0 + 0.040, 0.010, 0.012),
        PhaseLatency("RCPT", T0 + 0.052, None, None),
    )


def sample_traffic() -> TrafficStats:
    """Return traffic statistics with every list filled, as a busy relay would have them."""
    return TrafficStats(
        window_seconds=60.0,
        conversations_per_second=1.25,
        messages_per_second=0.5,
        replies_by_class=(("2xx", 120), ("4xx", 3), ("5xx", 1)),
        phase_percentiles=(
            ("greeting", Percentiles(40, 0.006, 0.020, 0.150)),
            ("EHLO", Percentiles(40, 0.011, 0.030, 0.090)),
            ("MAIL", Percentiles(38, 0.004, 0.012, 0.020)),
            ("RCPT", Percentiles(61, 0.005, 0.250, 1.200)),
            ("end-of-data", Percentiles(30, 0.350, 5.000, 12.0)),
        ),
        conversation_rate_history=(0.0, 1.0, 2.0, 1.0, 3.0, 1.0),
        message_rate_history=(0.0, 0.0, 1.0, 0.0, 1.0, 0.0),
        top_error_servers=(("10.0.0.25:25", 3), ("172.22.0.2:25", 1)),
        top_error_clients=(("10.0.0.5:40112", 4),),
        slowest_servers=(("127.0.0.11:25", 5.0), ("10.0.0.25:25", 0.03)),
    )


def postfix_row(packets: tuple[PacketRow, ...]) -> ConversationRow:
    return ConversationRow(
        key=POSTFIX_KEY,
        client="172.22.0.1:58122",
        server="172.22.0.2:25",
        tls_mode="none",
        stage="closed",
        last_command="QUIT",
        last_reply="221 2.0.0 Bye",
        start=packets[0].ts,
        last_seen=packets[-1].ts,
        closed=True,
        messages=3,
        retransmissions=0,
        packets=len(packets),
        bytes=sum(packet.length for packet in packets),
        anomalies=0,
    )


def stalled_row() -> ConversationRow:
    return ConversationRow(
        key=STALLED_KEY,
        client="10.0.0.5:40112",
        server="10.0.0.25:25",
        tls_mode="starttls",
        stage="MAIL",
        last_command="MAIL FROM:<carol@example.net>",
        last_reply="250 2.1.0 Ok",
        start=T0,
        last_seen=T0 + 0.052,
        closed=False,
        messages=0,
        retransmissions=2,
        packets=5,
        bytes=190,
        anomalies=0,
        waiting_on="client",
        waiting_since=T0 + 0.052,
        waiting_for="next command",
    )


def implicit_row() -> ConversationRow:
    # An implicit-TLS conversation with no SMTP seen yet: empty command and reply.
    return ConversationRow(
        key=IMPLICIT_KEY,
        client="[2001:db8::7]:51000",
        server="[2001:db8::25]:465",
        tls_mode="implicit",
        stage="TLS",
        last_command="",
        last_reply="",
        start=T0 + 50.0,
        last_seen=T0 + 59.5,
        closed=False,
        messages=0,
        retransmissions=0,
        packets=9,
        bytes=4100,
        anomalies=1,
    )


def stats(now: float, **changes: object) -> CaptureStats:
    base = CaptureStats(
        source="smtp-sv-multi-mail.pcap",
        bpf_filter="tcp port 25 or tcp port 465",
        packets=53,
        bytes=9876,
        conversations_open=2,
        conversations_total=3,
        kernel_drops=None,
        interface_drops=None,
        undecodable=1,
        finished=False,
        now=now,
        error=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def sample_source(traffic: TrafficStats | None = None) -> StaticSource:
    """Return a source with the three sample conversations at capture time T0 + 60 s."""
    packets = capture_packets()
    rows = (postfix_row(packets), stalled_row(), implicit_row())
    snapshot = Snapshot(stats=stats(T0 + 60.0), rows=rows, traffic=traffic)
    details = {
        POSTFIX_KEY: ConversationDetail(
            row=rows[0],
            tcp_stage="closed",
            packets=packets,
            transcript=capture_transcript(packets),
            capabilities=(),
            anomalies=(),
        ),
        STALLED_KEY: ConversationDetail(
            row=rows[1],
            tcp_stage="established",
            packets=stalled_packets(),
            transcript=stalled_transcript(),
            capabilities=("PIPELINING", "SIZE 52428800", "STARTTLS"),
            anomalies=(),
            stall=STALL_LINE,
            phases=stalled_phases(),
        ),
        IMPLICIT_KEY: ConversationDetail(
            row=rows[2],
            tcp_stage="established",
            packets=(),
            transcript=(),
            capabilities=(),
            anomalies=("TLS record before handshake ×1",),
        ),
    }
    return StaticSource(snapshot, details)
