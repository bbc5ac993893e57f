"""TLS facts read from captures with tshark, independently of smtptop's TLS parser.

The key schedule and record tests need the raw records of a TCP stream, the
hello randoms, the negotiated suite and extensions, and tshark's own
decryption as the oracle.  This module gets them from tshark 4.0:

- ``-z follow,tcp,raw,N`` prints the stream's TCP payload as hex, one line
  per segment, in capture order.  Lines from the second node start with a
  tab.  The first node is the side that sent the first packet (the client in
  every capture used here).
- ``-z follow,tls,raw,N`` prints decrypted application data in the same way.
- ``-T fields`` gives hello fields; a field with several values in one frame
  lists them separated by commas.

Records are split here with a few lines of code (5-byte header, then the
fragment) so the tests do not depend on smtptop.tls.records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tests.support.tshark import run_tshark

CLIENT = "client"
SERVER = "server"
_RECORD_HEADER = 5


@dataclass(frozen=True)
class Record:
    direction: str
    content_type: int
    version: int
    fragment: bytes


@dataclass(frozen=True)
class Hellos:
    """What the ClientHello, ServerHello and ClientKeyExchange of one stream show."""

    client_random: bytes
    server_random: bytes
    session_id: bytes
    cipher_suite: int
    version: int  # negotiated: supported_versions in the ServerHello, else its legacy version
    server_extensions: tuple[int, ...]
    encrypted_premaster: bytes  # RSA ClientKeyExchange ciphertext without its length, or b""
    certificate: bytes  # the server's first certificate (DER), or b""


def keylog_args(keylog: Path) -> list[str]:
    return ["-o", f"tls.keylog_file:{keylog}"]


def rsa_key_args(key: Path) -> list[str]:
    # Wireshark 4.0's "rsa_keys" table has two columns: key file and password.
    return ["-o", f'uat:rsa_keys:"{key.resolve()}",""']


@dataclass
class _Followed:
    first_node: str  # "address:port" of node 0
    chunks: list[tuple[str, bytes]]  # (CLIENT for node 0 or SERVER for node 1, bytes)


def _follow(pcap: Path, kind: str, streams: list[int], extra: list[str]) -> dict[int, _Followed]:
    """Run one tshark with a follow statistic per stream; return each stream's chunks."""
    args = [*extra, "-q"]
    for stream in streams:
        args += ["-z", f"follow,{kind},raw,{stream}"]
    result = {stream: _Followed("", []) for stream in streams}
    current: _Followed | None = None
    in_body = False
    for line in run_tshark(pcap, *args).splitlines():
        if line.startswith("Filter: tcp.stream eq "):
            current = result[int(line.rsplit(" ", 1)[1])]
            in_body = False
        elif line.startswith("Node 0:") and current is not None:
            current.first_node = line.split(":", 1)[1].strip()
        elif line.startswith("Node 1:"):
            in_body = True
        elif line.startswith("===="):
            in_body = False
        elif in_body and line.strip() and current is not None:
            direction = SERVER if line.startswith("\t") else CLIENT
            current.chunks.append((direction, bytes.fromhex(line.strip())))
    return result


def tcp_chunks(
    pcap: Path, streams: list[int], extra: list[str] | None = None
) -> dict[int, list[tuple[str, bytes]]]:
    """Return each stream's TCP payloads as (direction, bytes) in capture order."""
    return {
        stream: followed.chunks
        for stream, followed in _follow(pcap, "tcp", streams, extra or []).items()
    }


def decrypted_data(pcap: Path, streams: list[int], extra: list[str]) -> dict[int, dict[str, bytes]]:
    """Return the application data tshark decrypts, per stream and direction.

    In the TLS follow output node 0 is whichever side sent the first decrypted
    data (the server, in TLS 1.3 sessions that start with a NewSessionTicket),
    so directions are matched by address against the TCP follow output.
    """
    clients = {
        stream: followed.first_node
        for stream, followed in _follow(pcap, "tcp", streams, extra).items()
    }
    result = {}
    for stream, followed in _follow(pcap, "tls", streams, extra).items():
        swapped = followed.first_node != clients[stream]
        joined = {CLIENT: b"", SERVER: b""}
        for direction, data in followed.chunks:
            if swapped:
                direction = SERVER if direction == CLIENT else CLIENT
            joined[direction] += data
        result[stream] = joined
    return result


def split_records(chunks: list[tuple[str, bytes]]) -> list[Record]:
    """Cut each direction's bytes into TLS records, in the order the records complete."""
    buffers = {CLIENT: b"", SERVER: b""}
    records = []
    for direction, data in chunks:
        buffers[direction] += data
        buffer = buffers[direction]
        while len(buffer) >= _RECORD_HEADER:
            content_type, version, length = struct.unpack("!BHH", buffer[:_RECORD_HEADER])
            end = _RECORD_HEADER + length
            if len(buffer) < end:
                break
            records.append(Record(direction, content_type, version, buffer[_RECORD_HEADER:end]))
            buffer = buffer[end:]
        buffers[direction] = buffer
    return records


def tls_records(
    pcap: Path, streams: list[int], extra: list[str] | None = None
) -> dict[int, list[Record]]:
    """Return each stream's TLS records, assuming the streams carry TLS from their first byte."""
    return {
        stream: split_records(chunks) for stream, chunks in tcp_chunks(pcap, streams, extra).items()
    }


def plaintext_handshake(records: list[Record]) -> list[bytes]:
    """Return the handshake messages (header included) sent before each side's ChangeCipherSpec."""
    buffers = {CLIENT: b"", SERVER: b""}
    encrypted = set()
    messages = []
    for record in records:
        if record.content_type == 20:
            encrypted.add(record.direction)
        if record.content_type != 22 or record.direction in encrypted:
            continue
        buffer = buffers[record.direction] + record.fragment
        while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[1:4], "big"):
            end = 4 + int.from_bytes(buffer[1:4], "big")
            messages.append(buffer[:end])
            buffer = buffer[end:]
        buffers[record.direction] = buffer
    return messages


_HELLO_FIELDS = (
    "tcp.stream",
    "tls.handshake.type",
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.ciphersuite",
    "tls.handshake.extension.type",
    "tls.handshake.version",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.epms",
    "tls.handshake.certificate",
)


def _first(value: str) -> str:
    return value.split(",")[0]


def all_hellos(pcap: Path, extra: list[str] | None = None) -> dict[int, Hellos]:
    """Read the hello fields of every TCP stream that has a ServerHello."""
    args = [*(extra or []), "-Y", "tls.handshake", "-T", "fields", "-E", "separator=\t"]
    for name in _HELLO_FIELDS:
        args += ["-e", name]
    rows_by_stream: dict[int, list[list[str]]] = {}
    for line in run_tshark(pcap, *args).splitlines():
        row = line.split("\t")
        row += [""] * (len(_HELLO_FIELDS) - len(row))
        rows_by_stream.setdefault(int(row[0]), []).append(row)

    result = {}
    for stream, rows in rows_by_stream.items():
        client = [row for row in rows if "1" in row[1].split(",")]
        server = [row for row in rows if "2" in row[1].split(",")]
        if not client or not server:
            continue
        result[stream] = _hellos_from_rows(client[0], server[0], rows)
    return result


def _hellos_from_rows(client: list[str], server: list[str], rows: list[list[str]]) -> Hellos:
    key_exchange = [row for row in rows if "16" in row[1].split(",")]
    certificates = [row for row in rows if "11" in row[1].split(",") and row[9]]
    version = int(server[7] or _first(server[6]), 16)
    epms = key_exchange[0][8] if key_exchange else ""
    return Hellos(
        client_random=bytes.fromhex(_first(client[2])),
        server_random=bytes.fromhex(_first(server[2])),
        session_id=bytes.fromhex(_first(server[3])),
        cipher_suite=int(_first(server[4]), 16),
        version=version,
        server_extensions=tuple(int(value) for value in server[5].split(",") if value),
        encrypted_premaster=bytes.fromhex(epms.replace(":", "")),
        certificate=bytes.fromhex(_first(certificates[0][9])) if certificates else b"",
    )
