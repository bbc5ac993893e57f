"""tshark as an independent oracle for what a capture contains.

Tests compare smtptop's view of a capture with Wireshark's dissectors: which
TCP conversations exist, how many TCP segments there are, and the ordered
SMTP commands and reply codes on each conversation.

Facts about tshark's output that the parsing below relies on (checked with
TShark 4.0.17, Debian 12):

- A frame that carries several pipelined commands or replies lists one value
  per item in one field, separated by the aggregator character.
- smtp.req.command keeps the case the client sent ("mail", "RSET"), and for
  STARTTLS it holds only the first four letters ("STAR", "staR" for
  "staRttLs"). smtp_dialogue() upper-cases verbs and maps STAR to STARTTLS.
- Within one frame, tshark folds the continuation lines of a multi-line reply
  ("250-…") into one smtp.response item. A reply whose lines arrive in
  several frames (aiosmtpd sends each line on its own) gives one item per
  frame, so smtp_dialogue() reads the frame's payload to tell whether it ends
  inside a reply and merges the next frame's first item into that reply.
- The SMTP dissector runs on TCP ports 25 and 587 unless told otherwise with
  `-d tcp.port==N,smtp`; `extra_ports` adds such decode-as rules.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from os import PathLike
from typing import NamedTuple

TSHARK_TIMEOUT = 120.0

# tshark separates the values of one field in one frame with this character.
_AGGREGATOR = ","
_FIELD_SEPARATOR = "\t"


class Conversation(NamedTuple):
    """A TCP conversation: the client's and the server's address and port."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


# ("C", "MAIL") for a client command, ("S", "250") for a server reply code.
DialogueItem = tuple[str, str]


def tshark_path() -> str | None:
    """Return the path of tshark, or None when it is not installed."""
    return shutil.which("tshark")


def run_tshark(pcap_path: str | PathLike[str], *args: str) -> str:
    """Run `tshark -r pcap_path ARGS` and return its standard output.

    Raises FileNotFoundError when tshark is missing and RuntimeError with
    tshark's message when it fails.
    """
    program = tshark_path()
    if program is None:
        raise FileNotFoundError("tshark not found; install it (scripts/setup.sh does)")
    command = [program, "-n", "-r", str(pcap_path), *args]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TSHARK_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"tshark failed with status {result.returncode} on {pcap_path}: "
            f"{result.stderr.strip()}"
        )
    return result.stdout


def _decode_as_args(extra_ports: Iterable[int]) -> list[str]:
    args: list[str] = []
    for port in extra_ports:
        args += ["-d", f"tcp.port=={int(port)},smtp"]
    return args


def _field_rows(
    pcap_path: str | PathLike[str],
    fields: Sequence[str],
    display_filter: str,
    extra_args: Sequence[str] = (),
) -> list[list[str]]:
    """Return one list of field values (as text) per frame matching `display_filter`."""
    args = [*extra_args, "-Y", display_filter, "-T", "fields"]
    args += ["-E", f"separator={_FIELD_SEPARATOR}", "-E", f"aggregator={_AGGREGATOR}"]
    for name in fields:
        args += ["-e", name]
    output = run_tshark(pcap_path, *args)
    rows = []
    for line in output.splitlines():
        columns = line.split(_FIELD_SEPARATOR)
        columns += [""] * (len(fields) - len(columns))
        rows.append(columns)
    return rows


def _values(column: str) -> list[str]:
    return [value for value in column.split(_AGGREGATOR) if value]


def _last_address(ipv4: str, ipv6: str) -> str:
    """Return the innermost IP address of a frame (the last one, for tunnels)."""
    addresses = _values(ipv4) or _values(ipv6)
    return addresses[-1] if addresses else ""


def normalise_verb(verb: str) -> str:
    """Upper-case a tshark command verb and undo its STARTTLS abbreviation."""
    verb = verb.upper()
    if verb == "STAR":
        return "STARTTLS"
    return verb


_DIALOGUE_FIELDS = (
    "tcp.stream",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "smtp.req.command",
    "smtp.response.code",
    "tcp.payload",
)

# A reply line whose code is followed by "-": more lines of the same reply follow.
_CONTINUATION_LINE = re.compile(rb"^[0-9]{3}-")


def _ends_inside_reply(payload_hex: str) -> bool:
    """Return True when the segment's last line is a continuation line ("250-…")."""
    try:
        payload = bytes.fromhex(payload_hex.replace(":", ""))
    except ValueError:
        return False
    lines = payload.rstrip(b"\r\n").split(b"\n")
    return bool(_CONTINUATION_LINE.match(lines[-1]))


def smtp_dialogue(
    pcap_path: str | PathLike[str], extra_ports: Iterable[int] = ()
) -> dict[Conversation, list[DialogueItem]]:
    """Return, per TCP conversation, the SMTP commands and reply codes tshark decodes.

    Items keep capture order: ("C", VERB) for each command and ("S", CODE)
    for each reply. The client is the side that sends commands. Message
    content after DATA, and anything inside TLS, yields no item.
    """
    rows = _field_rows(pcap_path, _DIALOGUE_FIELDS, "smtp", _decode_as_args(extra_ports))
    conversations_by_stream: dict[str, Conversation] = {}
    dialogues: dict[Conversation, list[DialogueItem]] = {}
    # Streams whose last server segment ended inside a multi-line reply.
    inside_reply: set[str] = set()

    for stream, ip4_src, ip6_src, sport, ip4_dst, ip6_dst, dport, verbs, codes, payload in rows:
        source = (_last_address(ip4_src, ip6_src), int(sport))
        destination = (_last_address(ip4_dst, ip6_dst), int(dport))
        if verbs:
            client, server = source, destination
        elif codes:
            client, server = destination, source
        else:
            # Message content or a line tshark could not parse: no item.
            continue

        conversation = conversations_by_stream.setdefault(
            stream, Conversation(client[0], client[1], server[0], server[1])
        )
        items = dialogues.setdefault(conversation, [])
        items += [("C", normalise_verb(verb)) for verb in _values(verbs)]

        reply_codes = _values(codes)
        if not reply_codes:
            continue
        if stream in inside_reply:
            # The first item continues the reply begun in an earlier segment.
            reply_codes = reply_codes[1:]
        items += [("S", code) for code in reply_codes]
        if _ends_inside_reply(payload):
            inside_reply.add(stream)
        else:
            inside_reply.discard(stream)

    return dialogues


def tcp_segment_count(pcap_path: str | PathLike[str]) -> int:
    """Return the number of frames that carry a TCP header (with or without payload)."""
    return len(_field_rows(pcap_path, ("frame.number",), "tcp"))


def tcp_payload_segment_count(pcap_path: str | PathLike[str]) -> int:
    """Return the number of TCP frames with at least one byte of payload."""
    return len(_field_rows(pcap_path, ("frame.number",), "tcp.len > 0"))


def conversation_count(pcap_path: str | PathLike[str]) -> int:
    """Return the number of TCP conversations (tshark's tcp.stream indices)."""
    rows = _field_rows(pcap_path, ("tcp.stream",), "tcp")
    return len({row[0] for row in rows})
