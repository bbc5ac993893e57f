"""Recorded TLS SMTP sessions on loopback: pcap files, key logs and what the client sent.

Each ``record_*`` function starts a server on a port the kernel picks, starts
tcpdump on ``lo`` for that port, runs one client, stops tcpdump and returns a
``TlsRecording``: the pcap file, the client's NSS key log or the server's RSA
private key, and the SMTP lines the client wrote with the reply codes it read.

Scenarios:

- STARTTLS with TLS 1.3 (smtplib against aiosmtpd requiring STARTTLS).
- Implicit TLS with TLS 1.2 and an ECDHE suite (smtplib's SMTP_SSL).
- STARTTLS with TLS 1.2 and RSA key exchange (``openssl s_client``), with GCM
  or CBC suites, with or without encrypt-then-MAC (RFC 7366) and extended
  master secret (RFC 7627).
- A server that rejects the ClientHello with a fatal handshake_failure alert
  and then sends a plaintext 454 reply.
- A plaintext client on an implicit-TLS port, waiting for a greeting.
- A TLS client that sends a ClientHello to a plaintext server.

Servers start before tcpdump, so the connection aiosmtpd's controller makes
to its own port while starting stays out of the recording (see
tests/support/servers.py). Every external process runs under a timeout.
"""

from __future__ import annotations

import logging
import os
import random
import re
import selectors
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.live.clients import ClientLine, RecordingSMTP
from tests.support.servers import (
    LOOPBACK,
    BoundSocketController,
    CertificateFiles,
    RecordingHandler,
    aiosmtpd_server,
    bind_listening_socket,
    find_program,
    make_self_signed_certificate,
    server_tls_context,
    stop_process,
)

logger = logging.getLogger(__name__)

INTERFACE = "lo"
SUBMISSIONS_PORT = 465
SERVER_NAME = "mx.test.example"  # the SNI sent by the clients that send one
CLIENT_NAME = "client.test.example"
SENDER = "sender@test.example"
RECIPIENT = "rcpt@test.example"
MESSAGE = b"Subject: TLS test\r\n\r\nHello over TLS.\r\n"

CLIENT_TIMEOUT = 20.0
TCPDUMP_START_TIMEOUT = 10.0
# Time for the last packets to pass through the kernel into tcpdump's file
# before it is stopped. Loopback needs far less, so this is a safety margin.
TCPDUMP_SETTLE_SECONDS = 0.5
PROCESS_STOP_TIMEOUT = 10.0

# The record a server sends to reject a ClientHello: content type 21 (alert),
# version 0x0303, length 2, level 2 (fatal), description 40 (handshake_failure).
# RFC 8446 section 6 and RFC 5246 section 7.2.
HANDSHAKE_FAILURE_ALERT = bytes.fromhex("15030300020228")
TLS_UNAVAILABLE_REPLY = b"454 4.7.0 TLS not available due to temporary reason\r\n"

# OpenSSL 3.0's SSL_OP_NO_EXTENDED_MASTER_SECRET (bit 0 of the SSL options,
# openssl/ssl.h). Python's ssl module has no name for it.
OPENSSL_NO_EXTENDED_MASTER_SECRET = 1 << 0


@dataclass
class TlsRecording:
    """One recorded scenario.

    `lines` are the SMTP lines the client wrote, with the reply code it read
    for each, named as ``CommandRecord`` names them. `tls_lines` are the ones
    it wrote inside TLS. `keylog` is the client's NSS key log, `rsa_key` the
    server's RSA private key (PEM), when the scenario has them.
    """

    pcap: Path
    port: int
    host: str = LOOPBACK  # the server's address
    keylog: Path | None = None
    rsa_key: Path | None = None
    lines: list[ClientLine] = field(default_factory=list)
    tls_lines: list[ClientLine] = field(default_factory=list)
    cipher: str | None = None  # the one cipher suite the client offered, by its OpenSSL name
    greeting_in_tls: int | None = None  # the greeting's code when it came inside TLS
    client_error: str | None = None  # the client's TLS or socket error, when it had one


# ---------------------------------------------------------------------------
# tcpdump


@contextmanager
def tcpdump_recording(pcap: Path, port: int, host: str | None = None) -> Iterator[Path]:
    """Record `tcp port PORT` (and `host HOST` when given) on loopback into `pcap` for the duration of the block.

    Entering waits until tcpdump prints "listening on". Leaving waits a
    moment, then stops tcpdump with SIGINT so it writes out every packet.
    """
    program = find_program("tcpdump")
    if program is None:
        raise FileNotFoundError("tcpdump not found; install it (scripts/setup.sh does)")
    # --immediate-mode hands each packet to tcpdump as it arrives (libpcap otherwise
    # buffers them for up to tcpdump's 1000 ms read timeout), and -U writes each one
    # out at once, so the SIGINT that stops tcpdump loses nothing.
    bpf_filter = f"tcp port {port}" if host is None else f"tcp port {port} and host {host}"
    command = [
        program,
        "-i",
        INTERFACE,
        "-U",
        "--immediate-mode",
        "-n",
        "-w",
        str(pcap),
        bpf_filter,
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_output(process, b"listening on", TCPDUMP_START_TIMEOUT, "tcpdump")
        yield pcap
        time.sleep(TCPDUMP_SETTLE_SECONDS)
    finally:
        stop_process(process, PROCESS_STOP_TIMEOUT, signal.SIGINT)
        if process.stderr:
            process.stderr.close()


def _wait_for_output(
    process: subprocess.Popen[bytes], marker: bytes, timeout: float, name: str
) -> None:
    """Read `process`'s stderr until `marker` appears; raise when it exits or the timeout passes."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while marker not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{name} did not print {marker!r} within {timeout} s: {seen!r}")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                process.wait(PROCESS_STOP_TIMEOUT)
                raise RuntimeError(
                    f"{name} exited with status {process.returncode}: {seen.decode(errors='replace')}"
                )
            seen += chunk


# ---------------------------------------------------------------------------
# Certificates and servers


def make_rsa_certificate(directory: Path, common_name: str = SERVER_NAME) -> CertificateFiles:
    """Write a self-signed RSA-2048 certificate and its PKCS#8 PEM key into `directory`."""
    return make_self_signed_certificate(directory, common_name, rsa_key=True)


def write_rsa_key_list(directory: Path, port: int, key_file: Path) -> Path:
    """Write a Wireshark RSA keys list ("ip,port,protocol,keyfile") naming `key_file` for the server."""
    path = directory / "rsa_keys.txt"
    path.write_text(f"# the test server's key\n{LOOPBACK},{port},smtp,{key_file.name}\n")
    return path


def bind_loopback_port(port: int, attempts: int = 8) -> socket.socket:
    """Bind `port` on some 127.0.0.0/8 address where it is free, trying random addresses.

    Linux accepts connections to every 127.0.0.0/8 address on ``lo``, so a
    well-known port such as 465 is nearly always free on one of them, even
    when a local server listens on it at 127.0.0.1.
    """
    error: OSError | None = None
    for _ in range(attempts):
        host = ".".join(["127", *(str(random.randrange(1, 255)) for _ in range(3))])
        try:
            return bind_listening_socket(host, port)
        except OSError as bind_error:
            error = bind_error
    raise OSError(f"port {port} was in use on {attempts} loopback addresses: {error}")


@contextmanager
def tls_smtp_server(
    context: ssl.SSLContext,
    *,
    implicit: bool = False,
    require_starttls: bool = True,
    listen_socket: socket.socket | None = None,
) -> Iterator[int]:
    """Run aiosmtpd with `context` on `listen_socket` (default: a free 127.0.0.1 port), and yield the port.

    With `implicit`, every connection starts with a TLS handshake (as on
    port 465, RFC 8314 section 3.3). Otherwise the server offers STARTTLS
    and, with `require_starttls`, accepts no mail before it.
    """
    options: dict[str, Any] = {"server_hostname": SERVER_NAME}
    if implicit:
        options["ssl_context"] = context
    else:
        options["tls_context"] = context
        options["require_starttls"] = require_starttls

    if listen_socket is None:
        listen_socket = bind_listening_socket()
    controller = BoundSocketController(RecordingHandler(), listen_socket, **options)
    try:
        controller.start()
    except BaseException:
        listen_socket.close()
        raise
    try:
        yield listen_socket.getsockname()[1]
    finally:
        controller.stop()
        listen_socket.close()


def _rsa_server_context(
    files: CertificateFiles, ciphers: str, extended_master_secret: bool = True
) -> ssl.SSLContext:
    """Build a TLS 1.2 server context limited to `ciphers`, optionally without RFC 7627 extended master secret."""
    context = server_tls_context(files)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    if not extended_master_secret:
        context.options |= ssl.Options(OPENSSL_NO_EXTENDED_MASTER_SECRET)
    return context


def _client_context(
    keylog: Path, version: ssl.TLSVersion, ciphers: str | None = None
) -> ssl.SSLContext:
    """Build a client context pinned to `version` that writes its secrets to `keylog`.

    The test servers present self-signed certificates, so it verifies nothing.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = version
    context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    context.keylog_filename = str(keylog)
    return context


# ---------------------------------------------------------------------------
# smtplib scenarios


class _RecordingSMTPSSL(RecordingSMTP, smtplib.SMTP_SSL):
    """smtplib's SMTP_SSL that keeps what it sends and reads (see RecordingSMTP), sending SNI `sni`."""

    sni = SERVER_NAME

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib sends its connect host as SNI, and a client sends no SNI for an
        # IP address (RFC 6066 section 3), so the name is put in here.
        sock = socket.create_connection((host, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self.sni)


def _send_one_message(client: RecordingSMTP) -> None:
    client.ehlo(CLIENT_NAME)
    client.sendmail(SENDER, [RECIPIENT], MESSAGE)
    client.quit()


def _lines_after(lines: list[ClientLine], verb: str) -> list[ClientLine]:
    """Return the lines after the first `verb` line: those sent inside TLS after STARTTLS."""
    verbs = [line.verb for line in lines]
    return lines[verbs.index(verb) + 1 :]


def record_starttls_tls13(directory: Path) -> TlsRecording:
    """Record smtplib sending one message over STARTTLS with TLS 1.3."""
    keylog = directory / "tls13.keys"
    # An RSA certificate, so that tests can also hand the server's key to a decoder.
    certificate = make_rsa_certificate(directory)
    with tls_smtp_server(server_tls_context(certificate)) as port:
        recording = TlsRecording(
            directory / "starttls-tls13.pcap", port, keylog=keylog, rsa_key=certificate.key_path
        )
        with tcpdump_recording(recording.pcap, port):
            client = RecordingSMTP(
                LOOPBACK, port, local_hostname=CLIENT_NAME, timeout=CLIENT_TIMEOUT
            )
            client.ehlo(CLIENT_NAME)
            client.starttls(context=_client_context(keylog, ssl.TLSVersion.TLSv1_3))
            _send_one_message(client)
    recording.lines = client.lines()
    recording.tls_lines = _lines_after(recording.lines, "STARTTLS")
    return recording


def record_implicit_tls12_ecdhe(
    directory: Path, cipher: str = "ECDHE-RSA-AES128-GCM-SHA256"
) -> TlsRecording:
    """Record smtplib's SMTP_SSL sending one message over implicit TLS 1.2 with an ECDHE suite."""
    keylog = directory / "tls12-ecdhe.keys"
    certificate = make_rsa_certificate(directory)
    context = _rsa_server_context(certificate, cipher)
    with tls_smtp_server(context, implicit=True) as port:
        recording = TlsRecording(
            directory / "implicit-tls12.pcap",
            port,
            keylog=keylog,
            rsa_key=certificate.key_path,
            cipher=cipher,
        )
        client_context = _client_context(keylog, ssl.TLSVersion.TLSv1_2, cipher)
        with tcpdump_recording(recording.pcap, port):
            client = _RecordingSMTPSSL(
                LOOPBACK,
                port,
                local_hostname=CLIENT_NAME,
                timeout=CLIENT_TIMEOUT,
                context=client_context,
            )
            _send_one_message(client)
    recording.lines = client.lines()
    recording.tls_lines = list(recording.lines)
    recording.greeting_in_tls = client.greeting_code
    return recording


# ---------------------------------------------------------------------------
# openssl s_client with RSA key exchange

# One message, sent line by line, each after the reply to the line before.
S_CLIENT_LINES = (
    f"EHLO {CLIENT_NAME}\r\n".encode(),
    f"MAIL FROM:<{SENDER}>\r\n".encode(),
    f"RCPT TO:<{RECIPIENT}>\r\n".encode(),
    b"DATA\r\n",
    MESSAGE + b".\r\n",
    b"QUIT\r\n",
)
_FINAL_REPLY_LINE = re.compile(rb"^([0-9]{3})(?: .*)?\r?$", re.MULTILINE)


class _ReplyReader:
    """Reads SMTP replies from a process's stdout, one complete reply at a time."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._fd = process.stdout.fileno()
        self._buffer = b""

    def next_code(self, timeout: float) -> int:
        """Return the code of the next complete reply (the line "NNN " or "NNN" ends it)."""
        deadline = time.monotonic() + timeout
        while True:
            match = _FINAL_REPLY_LINE.search(self._buffer)
            if match is not None and self._buffer[match.end() : match.end() + 1] == b"\n":
                self._buffer = self._buffer[match.end() + 1 :]
                return int(match.group(1))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete SMTP reply within {timeout} s: {self._buffer!r}")
            with selectors.DefaultSelector() as selector:
                selector.register(self._fd, selectors.EVENT_READ)
                if not selector.select(remaining):
                    continue
            chunk = os.read(self._fd, 4096)
            if not chunk:
                raise EOFError(
                    f"s_client closed its output before a complete reply: {self._buffer!r}"
                )
            self._buffer += chunk


def _s_client_command(port: int, cipher: str, keylog: Path, encrypt_then_mac: bool) -> list[str]:
    program = find_program("openssl")
    if program is None:
        raise FileNotFoundError("openssl not found; install it (scripts/setup.sh does)")
    command = [
        program, "s_client",
        "-connect", f"{LOOPBACK}:{port}",
        "-starttls", "smtp", "-name", CLIENT_NAME,
        "-servername", SERVER_NAME,
        "-tls1_2", "-cipher", cipher,
        "-keylogfile", str(keylog),
        # -quiet prints only what the server sends and keeps the connection open
        # at the end of input; -nocommands stops "R…" (RCPT) from meaning "renegotiate".
        "-quiet", "-nocommands",
    ]  # fmt: skip
    if not encrypt_then_mac:
        command.append("-no_etm")
    return command


def record_starttls_rsa(
    directory: Path,
    cipher: str = "AES128-GCM-SHA256",
    *,
    encrypt_then_mac: bool = True,
    extended_master_secret: bool = True,
) -> TlsRecording:
    """Record ``openssl s_client -starttls smtp`` sending one message over TLS 1.2 with RSA key exchange.

    s_client sends EHLO and STARTTLS itself; the lines in S_CLIENT_LINES
    follow inside TLS. The server does not negotiate EMS when `extended_master_secret`
    is False, and s_client offers no encrypt-then-MAC when `encrypt_then_mac`
    is False.
    """
    keylog = directory / "rsa.keys"
    certificate = make_rsa_certificate(directory)
    context = _rsa_server_context(
        certificate, "AES128-GCM-SHA256:AES128-SHA256:AES128-SHA", extended_master_secret
    )
    with tls_smtp_server(context) as port:
        recording = TlsRecording(
            directory / f"rsa-{cipher}.pcap",
            port,
            keylog=keylog,
            rsa_key=certificate.key_path,
            cipher=cipher,
        )
        with tcpdump_recording(recording.pcap, port):
            recording.tls_lines = _run_s_client(
                _s_client_command(port, cipher, keylog, encrypt_then_mac)
            )
    recording.lines = list(recording.tls_lines)
    return recording


def _run_s_client(command: Sequence[str]) -> list[ClientLine]:
    """Run s_client, send S_CLIENT_LINES one reply at a time, and return them with their codes."""
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    lines: list[ClientLine] = []
    try:
        replies = _ReplyReader(process)
        previous_code = 0
        for data in S_CLIENT_LINES:
            process.stdin.write(data)
            process.stdin.flush()
            code = replies.next_code(CLIENT_TIMEOUT)
            verb = "." if previous_code == 354 else data.split(b" ", 1)[0].strip().decode().upper()
            lines.append(ClientLine(verb, data, code))
            previous_code = code
        process.stdin.close()
        # The server closes after its 221 reply, and s_client exits.
        process.wait(CLIENT_TIMEOUT)
    finally:
        stop_process(process, PROCESS_STOP_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return lines


# ---------------------------------------------------------------------------
# Failed and mismatched TLS


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _serve_alerting_starttls(listen_socket: socket.socket) -> None:
    """Accept one client: greet, offer STARTTLS, accept it, then reject the ClientHello.

    Socket errors (the client gone, the listening socket closed) end the
    server quietly, because the test checks the recording, not this server.
    """
    try:
        conn, _ = listen_socket.accept()
    except OSError as error:
        logger.debug("alerting server: accept failed: %s", error)
        return
    with conn:
        conn.settimeout(CLIENT_TIMEOUT)
        try:
            conn.sendall(f"220 {SERVER_NAME} ESMTP test server\r\n".encode())
            _read_line(conn)  # EHLO
            conn.sendall(f"250-{SERVER_NAME}\r\n250 STARTTLS\r\n".encode())
            _read_line(conn)  # STARTTLS
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            header = _read_exactly(conn, 5)
            if len(header) == 5:
                _read_exactly(conn, int.from_bytes(header[3:5], "big"))
            conn.sendall(HANDSHAKE_FAILURE_ALERT)
            conn.sendall(TLS_UNAVAILABLE_REPLY)
            # Wait for the client to close before closing, so the server's FIN comes last.
            conn.recv(4096)
        except OSError as error:
            logger.debug("alerting server: connection failed: %s", error)


def record_alert_then_454(directory: Path) -> TlsRecording:
    """Record a server that accepts STARTTLS, rejects the ClientHello with a fatal alert, then sends 454."""
    keylog = directory / "alert.keys"
    listen_socket = bind_listening_socket()
    listen_socket.listen(1)
    port = listen_socket.getsockname()[1]
    recording = TlsRecording(directory / "starttls-alert.pcap", port, keylog=keylog)
    server = threading.Thread(target=_serve_alerting_starttls, args=(listen_socket,), daemon=True)
    try:
        with tcpdump_recording(recording.pcap, port):
            server.start()
            client = RecordingSMTP(
                LOOPBACK, port, local_hostname=CLIENT_NAME, timeout=CLIENT_TIMEOUT
            )
            client.ehlo(CLIENT_NAME)
            try:
                client.starttls(context=_client_context(keylog, ssl.TLSVersion.TLSv1_3))
            except (ssl.SSLError, OSError) as error:
                recording.client_error = str(error)
            client.close()
            server.join(CLIENT_TIMEOUT)
    finally:
        listen_socket.close()
    recording.lines = client.lines()
    return recording


def record_plaintext_client_on_tls_port(directory: Path, wait_seconds: float = 1.5) -> TlsRecording:
    """Record a raw TCP client that waits `wait_seconds` on port 465 (implicit TLS) for a greeting, then closes.

    Only the port shows that the server waits for a ClientHello, so the
    server listens on 465 (RFC 8314 section 7.3) on a free loopback address.
    """
    certificate = make_self_signed_certificate(directory)
    listen_socket = bind_loopback_port(SUBMISSIONS_PORT)
    host = listen_socket.getsockname()[0]
    with tls_smtp_server(
        server_tls_context(certificate), implicit=True, listen_socket=listen_socket
    ) as port:
        recording = TlsRecording(directory / "plaintext-client-tls-port.pcap", port, host=host)
        with (
            tcpdump_recording(recording.pcap, port, host),
            socket.create_connection((host, port), CLIENT_TIMEOUT) as sock,
        ):
            sock.settimeout(wait_seconds)
            try:
                sock.recv(4096)
            except TimeoutError:
                pass
    return recording


def record_tls_client_on_plaintext_server(directory: Path, hello_first: bool) -> TlsRecording:
    """Record a client that sends a ClientHello to a plaintext aiosmtpd.

    With `hello_first` the server greets half a second late, so the
    ClientHello comes first. Otherwise the client reads the 220 greeting and
    then starts TLS anyway. Without either, the order would be a race.
    """
    keylog = directory / "mismatch.keys"
    greeting_delay = 0.5 if hello_first else 0.0
    with aiosmtpd_server(greeting_delay=greeting_delay) as server:
        recording = TlsRecording(
            directory / "tls-client-plaintext-server.pcap", server.port, keylog=keylog
        )
        context = _client_context(keylog, ssl.TLSVersion.TLSv1_3)
        with (
            tcpdump_recording(recording.pcap, server.port),
            socket.create_connection((server.host, server.port), CLIENT_TIMEOUT) as sock,
        ):
            sock.settimeout(greeting_delay + 2.0)
            try:
                if not hello_first:
                    _read_line(sock)
                # The server's plaintext is not a TLS record, so the handshake fails.
                with context.wrap_socket(sock, server_hostname=SERVER_NAME):
                    pass
            except (ssl.SSLError, OSError) as error:
                recording.client_error = str(error)
    return recording
