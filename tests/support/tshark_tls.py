"""tshark as the oracle for TLS captures: decrypted SMTP and handshake facts.

``decrypted_smtp`` returns, per TCP stream, the SMTP commands and reply
codes tshark reads inside TLS when it is given an NSS key log
(`-o tls.keylog_file:K`) or an RSA private key (`-o uat:rsa_keys:…`).
``handshakes`` returns the fields of each stream's ClientHello and ServerHello,
with the alerts tshark can read, and the names Wireshark gives the version
and cipher suite.

Facts about tshark's output that the parsing below relies on (checked with
TShark 4.0.17, Debian 12):

- ``tls.handshake.ciphersuite`` and the version fields print as hexadecimal
  ("0x1302"); ``tshark -G values`` lists their names, which for the suites
  in this suite's captures are the IANA names.
- A decrypted frame lists one ``smtp.response`` value per reply line, so
  "250-…" lines continue a reply and a "250 …" line ends it. A frame read in
  clear folds the continuation lines into one value instead; replies read in
  clear are left to tests/support/tshark.py.
- STARTTLS appears as "STAR" in ``smtp.req.command`` (see tshark.py).
- The SMTP dissector handles STARTTLS by itself on ports 25 and 587 and on
  ports added with `-d tcp.port==N,smtp`. Implicit TLS needs
  `-d tcp.port==N,tls` and, for the SMTP inside, `-d tls.port==N,smtp`.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from tests.support.tshark import normalise_verb, run_tshark, tshark_path

_SEPARATOR = "\t"
# Reply lines contain commas, so values of one field are joined with a character they do not contain.
_AGGREGATOR = "\x1f"
APPLICATION_DATA = 23
# The random of a HelloRetryRequest (RFC 8446 section 4.1.3), which is not a real ServerHello.
HELLO_RETRY_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)


@dataclass(frozen=True, slots=True)
class TsharkKeys:
    """The secrets handed to tshark: an NSS key log, an RSA private key, or both."""

    keylog: Path | None = None
    rsa_key: Path | None = None

    def args(self) -> list[str]:
        args: list[str] = []
        if self.keylog is not None:
            args += ["-o", f"tls.keylog_file:{Path(self.keylog).resolve()}"]
        if self.rsa_key is not None:
            # Wireshark's RSA keys table: "key file","password" (an empty password here).
            args += ["-o", f'uat:rsa_keys:"{Path(self.rsa_key).resolve()}",""']
        return args


def port_args(
    smtp_ports: Iterable[int] = (),
    implicit_tls_ports: Iterable[int] = (),
    tls_ports: Iterable[int] = (),
) -> list[str]:
    """Return tshark decode-as rules: SMTP (with STARTTLS) on `smtp_ports`, SMTP inside TLS on `implicit_tls_ports`, bare TLS on `tls_ports`."""
    args: list[str] = []
    for port in smtp_ports:
        args += ["-d", f"tcp.port=={int(port)},smtp"]
    for port in implicit_tls_ports:
        args += ["-d", f"tcp.port=={int(port)},tls", "-d", f"tls.port=={int(port)},smtp"]
    for port in tls_ports:
        args += ["-d", f"tcp.port=={int(port)},tls"]
    return args


def _rows(
    pcap: str | PathLike[str], fields: Sequence[str], display_filter: str, extra_args: Sequence[str]
) -> list[list[str]]:
    """Return one list of field values per frame matching `display_filter`."""
    args = [*extra_args, "-Y", display_filter, "-T", "fields"]
    args += ["-E", f"separator={_SEPARATOR}", "-E", f"aggregator={_AGGREGATOR}"]
    for name in fields:
        args += ["-e", name]
    rows = []
    for line in run_tshark(pcap, *args).splitlines():
        columns = line.split(_SEPARATOR)
        rows.append(columns + [""] * (len(fields) - len(columns)))
    return rows


def _values(column: str) -> list[str]:
    return [value for value in column.split(_AGGREGATOR) if value]


def _ints(column: str) -> list[int]:
    return [int(value, 0) for value in _values(column)]


# ---------------------------------------------------------------------------
# SMTP inside TLS


@dataclass
class TlsDialogue:
    """The SMTP tshark read inside TLS on one TCP stream.

    `commands` are (VERB, parameter) pairs, the verb upper-cased and STARTTLS
    spelled out. The end of a DATA body has no entry, because tshark gives it
    none. `reply_codes` has one code per complete reply. `clear_commands` are
    the commands read before TLS started.
    """

    commands: list[tuple[str, str]] = field(default_factory=list)
    reply_codes: list[int] = field(default_factory=list)
    clear_commands: list[tuple[str, str]] = field(default_factory=list)


_SMTP_FIELDS = (
    "tcp.stream",
    "tls.record.content_type",
    "smtp.req.command",
    "smtp.req.parameter",
    "smtp.response",
)


def decrypted_smtp(
    pcap: str | PathLike[str], keys: TsharkKeys, ports: Sequence[str] = ()
) -> dict[int, TlsDialogue]:
    """Return, per TCP stream index, the SMTP commands and replies tshark decrypts with `keys`.

    `ports` are decode-as arguments from port_args() for ports other than 25 and 587.
    """
    dialogues: dict[int, TlsDialogue] = {}
    for stream, content_types, verbs, parameters, responses in _rows(
        pcap, _SMTP_FIELDS, "smtp", [*keys.args(), *ports]
    ):
        dialogue = dialogues.setdefault(int(stream), TlsDialogue())
        inside_tls = bool(content_types)
        pairs = _command_pairs(_values(verbs), parameters)
        if inside_tls:
            dialogue.commands += pairs
            dialogue.reply_codes += _complete_reply_codes(_values(responses))
        else:
            dialogue.clear_commands += pairs
    return dialogues


def _command_pairs(verbs: list[str], parameters: str) -> list[tuple[str, str]]:
    # A command without a parameter ("QUIT") has no smtp.req.parameter value,
    # so the two lists pair up only for one command per frame, which is all
    # the clients in these tests send.
    values = parameters.split(_AGGREGATOR) if parameters else []
    if len(verbs) > 1 and len(values) != len(verbs):
        raise AssertionError(f"cannot pair commands {verbs} with parameters {values}")
    values += [""] * (len(verbs) - len(values))
    pairs = []
    for verb, value in zip(verbs, values):
        # tshark splits "STARTTLS" into the verb "STAR" and the parameter "TLS".
        if verb.upper() == "STAR" and value.upper() == "TLS":
            value = ""
        pairs.append((normalise_verb(verb), value))
    return pairs


def _complete_reply_codes(lines: list[str]) -> list[int]:
    """Return the code of each reply that ends in `lines` (on a "NNN " or "NNN" line, RFC 5321 section 4.2.1)."""
    codes = []
    for line in lines:
        text = line.replace("\\r\\n", "").rstrip("\r\n")
        if len(text) >= 3 and text[:3].isdigit() and (len(text) == 3 or text[3] != "-"):
            codes.append(int(text[:3]))
    return codes


# ---------------------------------------------------------------------------
# Handshake facts


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert tshark could read: the sender's port, the level and the description code."""

    source_port: int
    level: int
    description: int


@dataclass
class Handshake:
    """The fields of one TCP stream's hellos, as tshark reads them.

    `version` is the ServerHello's supported_versions value when present,
    else its legacy version (RFC 8446 section 4.1.3). Names come from
    Wireshark's own tables.
    """

    stream: int
    client_port: int | None = None
    client_random: bytes = b""
    sni: str | None = None
    client_extensions: tuple[int, ...] = ()
    version: int | None = None
    cipher: int | None = None
    server_extensions: tuple[int, ...] = ()
    server_port: int | None = None
    alerts: list[Alert] = field(default_factory=list)

    @property
    def version_name(self) -> str | None:
        return (
            None if self.version is None else wireshark_name("tls.handshake.version", self.version)
        )

    @property
    def cipher_name(self) -> str | None:
        return (
            None
            if self.cipher is None
            else wireshark_name("tls.handshake.ciphersuite", self.cipher)
        )


_CLIENT_HELLO_FIELDS = (
    "tcp.stream",
    "tcp.srcport",
    "tls.handshake.random",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extension.type",
)
_SERVER_HELLO_FIELDS = (
    "tcp.stream",
    "tcp.srcport",
    "tls.handshake.random",
    "tls.handshake.ciphersuite",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.version",
    "tls.handshake.extension.type",
)
_ALERT_FIELDS = ("tcp.stream", "tcp.srcport", "tls.alert_message.level", "tls.alert_message.desc")


def handshakes(
    pcap: str | PathLike[str], keys: TsharkKeys = TsharkKeys(), ports: Sequence[str] = ()
) -> dict[int, Handshake]:
    """Return the first ClientHello's and first real ServerHello's facts per TCP stream, with alerts.

    A frame holding several hellos (a renegotiation, or a HelloRetryRequest
    and the ServerHello) counts its first; the tests' captures have one per frame.
    """
    extra = [*keys.args(), *ports]
    found: dict[int, Handshake] = {}
    for stream, port, randoms, names, extensions in _rows(
        pcap, _CLIENT_HELLO_FIELDS, "tls.handshake.type == 1", extra
    ):
        handshake = found.setdefault(int(stream), Handshake(int(stream)))
        if not handshake.client_random:
            handshake.client_port = int(port)
            handshake.client_random = bytes.fromhex(_values(randoms)[0])
            sni_values = _values(names)
            handshake.sni = sni_values[0] if sni_values else None
            handshake.client_extensions = tuple(_ints(extensions))

    for stream, port, randoms, suites, supported, legacy, extensions in _rows(
        pcap, _SERVER_HELLO_FIELDS, "tls.handshake.type == 2", extra
    ):
        handshake = found.setdefault(int(stream), Handshake(int(stream)))
        if handshake.cipher is not None or bytes.fromhex(_values(randoms)[0]) == HELLO_RETRY_RANDOM:
            continue
        handshake.server_port = int(port)
        handshake.cipher = _ints(suites)[0]
        handshake.version = (_ints(supported) or _ints(legacy))[0]
        handshake.server_extensions = tuple(_ints(extensions))

    for stream, port, levels, descriptions in _rows(
        pcap, _ALERT_FIELDS, "tls.alert_message", extra
    ):
        handshake = found.setdefault(int(stream), Handshake(int(stream)))
        for level, description in zip(_ints(levels), _ints(descriptions)):
            handshake.alerts.append(Alert(int(port), level, description))
    return found


def decrypted_streams(
    pcap: str | PathLike[str], keys: TsharkKeys, ports: Sequence[str] = ()
) -> set[int]:
    """Return the TCP streams where tshark decrypts a Finished message with `keys`.

    Finished is always sent encrypted (RFC 5246 section 7.4.9, RFC 8446
    section 4.4.4), so tshark shows its handshake type only after decrypting.
    """
    rows = _rows(pcap, ("tcp.stream",), "tls.handshake.type == 20", [*keys.args(), *ports])
    return {int(row[0]) for row in rows}


@functools.cache
def _value_names() -> dict[str, dict[int, str]]:
    """Read Wireshark's value-name tables (`tshark -G values`) for the TLS handshake fields."""
    program = tshark_path()
    if program is None:
        raise FileNotFoundError("tshark not found; install it (scripts/setup.sh does)")
    output = subprocess.run(
        [program, "-G", "values"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    tables: dict[str, dict[int, str]] = {}
    for line in output.splitlines():
        columns = line.split("\t")
        if len(columns) == 4 and columns[0] == "V" and columns[1].startswith("tls.handshake."):
            tables.setdefault(columns[1], {})[int(columns[2], 0)] = columns[3]
    return tables


def wireshark_name(field_name: str, value: int) -> str:
    """Return Wireshark's name for `value` of `field_name`, e.g. "TLS 1.2" or "TLS_AES_128_GCM_SHA256"."""
    return _value_names()[field_name].get(value, f"0x{value:04x}")


# ---------------------------------------------------------------------------
# Cutting captures


def first_application_data_frame(pcap: str | PathLike[str], ports: Sequence[str] = ()) -> int:
    """Return the number of the first frame whose TLS records are all application data."""
    rows = _rows(
        pcap, ("frame.number", "tls.record.content_type"), "tls.record.content_type", ports
    )
    for number, content_types in rows:
        if set(_ints(content_types)) == {APPLICATION_DATA}:
            return int(number)
    raise AssertionError(f"{pcap} has no frame of application data records")


def cut_before(pcap: str | PathLike[str], first_frame: int, output: Path) -> Path:
    """Write `output` with the frames of `pcap` from `first_frame` on (editcap -r)."""
    # editcap 4.0 takes only closed ranges ("11-40").
    last_frame = len(_rows(pcap, ("frame.number",), "frame", ()))
    subprocess.run(
        ["editcap", "-r", str(pcap), str(output), f"{first_frame}-{last_frame}"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return output
