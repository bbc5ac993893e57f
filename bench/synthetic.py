"""Synthetic SMTP conversations as Ethernet frames, built with struct, for the scale step.

Every address is on 127.0.0.0/8 and nothing is sent anywhere: the frames go
straight into an Engine. Checksums are left at zero because smtptop's decoder
does not verify them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from smtptop.capture.files import Frame
from smtptop.decode.segment import ACK, FIN, PSH, SYN

SERVER_ADDRESS = bytes([127, 0, 0, 1])
SERVER_PORT = 25
_ETHERNET = bytes.fromhex("020000000002" "020000000001" "0800")
_TCP = struct.Struct("!HHIIBBHHH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
PACKET_SECONDS = 0.00001  # capture-time step between two frames

# (side, flags, payload) for each packet: "c" is the client, "s" the server.
Step = tuple[str, int, bytes]

OPEN_DIALOGUE: tuple[Step, ...] = (
    ("c", SYN, b""),
    ("s", SYN | ACK, b""),
    ("c", ACK, b""),
    ("s", PSH | ACK, b"220 sink.example ESMTP\r\n"),
    ("c", PSH | ACK, b"EHLO client.example\r\n"),
    ("s", PSH | ACK, b"250-sink.example\r\n250 PIPELINING\r\n"),
    ("c", PSH | ACK, b"MAIL FROM:<sender@client.example>\r\n"),
    ("s", PSH | ACK, b"250 2.1.0 Ok\r\n"),
)
# One message with MAIL, RCPT and DATA pipelined, as RFC 2920 allows, then QUIT and a close.
_BODY = b"Subject: bench\r\n\r\n" + b"x" * 900 + b"\r\n.\r\n"
CLOSED_DIALOGUE: tuple[Step, ...] = (
    ("c", SYN, b""),
    ("s", SYN | ACK, b""),
    ("c", ACK, b""),
    ("s", PSH | ACK, b"220 sink.example ESMTP\r\n"),
    ("c", PSH | ACK, b"EHLO client.example\r\n"),
    ("s", PSH | ACK, b"250-sink.example\r\n250 PIPELINING\r\n"),
    ("c", PSH | ACK, b"MAIL FROM:<sender@client.example>\r\nRCPT TO:<rcpt@sink.example>\r\nDATA\r\n"),
    ("s", PSH | ACK, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
    ("c", PSH | ACK, _BODY + b"QUIT\r\n"),
    ("s", FIN | PSH | ACK, b"250 2.0.0 Ok: queued as 4XYZ\r\n221 2.0.0 Bye\r\n"),
    ("c", FIN | ACK, b""),
)


def client_address(index: int) -> tuple[bytes, int]:
    """Return a distinct loopback address and port for conversation ``index`` (up to 16 million)."""
    address = bytes([127, 1 + (index >> 16) % 254, (index >> 8) & 0xFF, index & 0xFF])
    return address, 40000 + index % 20000


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = _TCP.pack(sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = _IPV4.pack(0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return _ETHERNET + ip + tcp + payload


def _conversation_frames(index: int, dialogue: tuple[Step, ...]) -> list[bytes]:
    client, client_port = client_address(index)
    seq = {"c": 1000 + index, "s": 5000 + index}
    frames = []
    for side, flags, payload in dialogue:
        if side == "c":
            data = _frame(client, SERVER_ADDRESS, client_port, SERVER_PORT, seq["c"], seq["s"], flags, payload)
        else:
            data = _frame(SERVER_ADDRESS, client, SERVER_PORT, client_port, seq["s"], seq["c"], flags, payload)
        frames.append(data)
        seq[side] += len(payload) + (1 if flags & (SYN | FIN) else 0)
    return frames


def interleaved_batches(conversations: int, dialogue: tuple[Step, ...], start: float,
                        concurrent: int = 50, batch_size: int = 512) -> Iterator[list[Frame]]:
    """Yield frames of ``conversations`` conversations, ``concurrent`` at a time, step by step.

    The conversations of a group advance together, one packet each per step,
    as concurrent connections do, so each has other conversations' packets between its own.
    """
    ts = start
    batch: list[Frame] = []
    for first in range(0, conversations, concurrent):
        group = [_conversation_frames(index, dialogue)
                 for index in range(first, min(first + concurrent, conversations))]
        for step in range(len(dialogue)):
            for frames in group:
                data = frames[step]
                ts += PACKET_SECONDS
                batch.append((ts, data, len(data)))
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
    if batch:
        yield batch
