"""TCP payload and TLS handshake facts from real captures, read with tshark.

``follow_tcp`` returns a conversation's payload as tshark's "follow TCP
stream" output shows it (reassembled, in order, one chunk per segment), independent of
smtptop's own TCP code. ``tshark_fields`` returns tshark's decoded fields
per frame, the oracle for the record and handshake parsers.

Facts about tshark 4.0.17 output relied on here: `-z follow,tcp,raw,N`
prints one hexadecimal line per chunk after the "Node 0: ADDRESS:PORT" and
"Node 1: ..." lines, and a line starting with a tab is data sent by node 1.
Several records or handshake messages in one frame give comma-separated
values in one field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from os import PathLike

from smtptop.tls.handshake import HandshakeMessage, HandshakeReader
from smtptop.tls.records import CHANGE_CIPHER_SPEC, HANDSHAKE, RecordReader, TlsRecord
from tests.support.tshark import run_tshark

_SEPARATOR = "\t"


@dataclass(frozen=True)
class Chunk:
    """A piece of one direction's TCP payload; ``from_node0`` names the sender."""

    from_node0: bool
    data: bytes


def tcp_stream_ids(pcap: str | PathLike[str]) -> tuple[int, ...]:
    """Return tshark's tcp.stream indices of the conversations that carry payload."""
    return _tcp_stream_ids(str(pcap))


@cache
def _tcp_stream_ids(pcap: str) -> tuple[int, ...]:
    output = run_tshark(pcap, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.stream")
    return tuple(sorted({int(line) for line in output.split()}))


@dataclass(frozen=True)
class FollowedStream:
    """A TCP conversation's payload and the TCP ports of its two nodes."""

    node0_port: int
    node1_port: int
    chunks: list[Chunk]


def follow_tcp(pcap: str | PathLike[str], stream: int) -> FollowedStream:
    """Return the reassembled payload chunks of TCP stream ``stream``, both directions in order."""
    node0_port, node1_port, chunks = _follow(str(pcap), stream, "tcp", ())
    return FollowedStream(node0_port, node1_port, list(chunks))


def follow_tls(pcap: str | PathLike[str], stream: int, keylog: str | PathLike[str]) -> FollowedStream:
    """Return what tshark decrypts on TCP stream ``stream`` with ``keylog``, both directions in order.

    tshark may leave the port of a node that sent no decrypted data at 0.
    """
    options = ("-o", f"tls.keylog_file:{keylog}")
    node0_port, node1_port, chunks = _follow(str(pcap), stream, "tls", options)
    return FollowedStream(node0_port, node1_port, list(chunks))


@cache
def _follow(pcap: str, stream: int, protocol: str, options: tuple[str, ...]) -> tuple[int, int, tuple[Chunk, ...]]:
    output = run_tshark(pcap, *options, "-q", "-z", f"follow,{protocol},raw,{stream}")
    chunks = []
    ports = {}
    started = False
    for line in output.splitlines():
        if line.startswith(("Node 0:", "Node 1:")):
            ports[line[5]] = int(line.rsplit(":", 1)[1])
            started = line.startswith("Node 1:")
            continue
        if not started or line.startswith("====") or not line.strip():
            continue
        chunks.append(Chunk(not line.startswith("\t"), bytes.fromhex(line.strip())))
    return ports["0"], ports["1"], tuple(chunks)


def tls_chunks(chunks: list[Chunk], from_node0: bool) -> list[bytes]:
    """Return one direction's chunks from its first TLS handshake record on.

    A STARTTLS conversation begins with plaintext lines, so the TLS part starts
    at the first 0x16 0x03 at the start of the payload or right after a CRLF.
    """
    data = [chunk.data for chunk in chunks if chunk.from_node0 == from_node0]
    joined = b"".join(data)
    start = 0 if joined.startswith(b"\x16\x03") else joined.find(b"\r\n\x16\x03") + 2
    if start == 1:  # not found
        return []
    result = []
    offset = 0
    for piece in data:
        if offset + len(piece) > start:
            result.append(piece[max(0, start - offset) :])
        offset += len(piece)
    return result


def plaintext_handshake(chunks: list[bytes]) -> tuple[list[TlsRecord], list[HandshakeMessage]]:
    """Feed chunks through the record and handshake readers, up to ChangeCipherSpec.

    Handshake records after ChangeCipherSpec are encrypted, so they are not
    parsed as handshake messages. TLS 1.3 sends its encrypted handshake as
    application data records, which are not handshake records either.
    """
    records_reader = RecordReader()
    handshake_reader = HandshakeReader()
    records: list[TlsRecord] = []
    messages: list[HandshakeMessage] = []
    encrypted = False
    for index, chunk in enumerate(chunks):
        for record in records_reader.feed(chunk, float(index)):
            records.append(record)
            if record.content_type == CHANGE_CIPHER_SPEC:
                encrypted = True
            if record.content_type == HANDSHAKE and not encrypted:
                messages += handshake_reader.feed(record.fragment, record.ts)
    return records, messages


def tshark_fields(
    pcap: str | PathLike[str],
    display_filter: str,
    fields: list[str],
    extra_args: tuple[str, ...] = (),
) -> list[dict[str, list[str]]]:
    """Return, for each frame matching ``display_filter``, the values tshark decodes per field."""
    args = [*extra_args, "-Y", display_filter, "-T", "fields"]
    args += ["-E", f"separator={_SEPARATOR}", "-E", "aggregator=,"]
    for name in fields:
        args += ["-e", name]
    rows = []
    for line in run_tshark(pcap, *args).splitlines():
        columns = line.split(_SEPARATOR)
        columns += [""] * (len(fields) - len(columns))
        rows.append(
            {name: [v for v in value.split(",") if v] for name, value in zip(fields, columns)}
        )
    return rows


def decrypted_handshakes(
    pcap: str | PathLike[str], keylog: str | PathLike[str], display_filter: str
) -> list[bytes]:
    """Return the raw handshake messages tshark decodes with a key log, in capture order.

    tshark's JSON output with raw bytes (`-T json -x`) gives each message as
    "tls.handshake_raw": [hex, offset, length, bitmask, type]. For a message
    inside an encrypted record, the hex is the decrypted message.
    """
    output = run_tshark(
        pcap,
        "-o",
        f"tls.keylog_file:{keylog}",
        "-Y",
        display_filter,
        "-T",
        "json",
        "-x",
        "--no-duplicate-keys",
    )
    messages: list[bytes] = []
    _collect_raw(json.loads(output), messages)
    return messages


def _collect_raw(node: object, messages: list[bytes]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect_raw(item, messages)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key != "tls.handshake_raw":
            _collect_raw(value, messages)
            continue
        # One message is a list starting with its hex; several are a list of such lists.
        entries = [value] if isinstance(value[0], str) else value
        messages += [bytes.fromhex(entry[0]) for entry in entries]
