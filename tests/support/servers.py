"""Real SMTP peers for tests: aiosmtpd servers, Postfix's smtp-sink and swaks.

Every server listens on 127.0.0.1 and, unless told otherwise, on a port the
kernel picks; the context managers yield that port and stop the server on
exit. External programs run with a timeout and are killed if they outlive it,
so a failing test leaves no process behind.

The aiosmtpd controller opens one connection to its own port while it starts
(to check that the server answers). Start a server before starting a capture
so that this probe connection stays out of the recording.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"
TEST_USER = "demo"
TEST_PASSWORD = "demo-password"

# Postfix installs smtp-sink in /usr/sbin, which is not on every user's PATH.
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_program(name: str) -> str | None:
    """Return the path of `name` on PATH or in the sbin directories, or None."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN_DIRS)
    return shutil.which(name, path=path)


# ---------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A self-signed certificate and its private key, both PEM files."""

    cert_path: Path
    key_path: Path


def make_self_signed_certificate(
    directory: Path, common_name: str = "localhost", *, rsa_key: bool = False
) -> CertificateFiles:
    """Write a new self-signed certificate for `common_name` and 127.0.0.1 into `directory`.

    The key is EC P-256, or RSA-2048 with `rsa_key`, which RSA key exchange and
    ECDHE_RSA suites need. The files are cert.pem and key.pem, or rsa-cert.pem and
    rsa-key.pem.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if rsa_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = x509.SubjectAlternativeName(
        [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(alt_names, critical=False)
        .sign(key, hashes.SHA256())
    )

    prefix = "rsa-" if rsa_key else ""
    files = CertificateFiles(directory / f"{prefix}cert.pem", directory / f"{prefix}key.pem")
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def server_tls_context(files: CertificateFiles) -> ssl.SSLContext:
    """Build a server-side TLS context that presents `files`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


# ---------------------------------------------------------------------------
# aiosmtpd


@dataclass
class ReceivedMessage:
    """One message accepted by a test server."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class RecordingHandler:
    """aiosmtpd handler that accepts mail, rejects some recipients and can stall.

    `reject_recipients` get "550 5.1.1"; `data_delay` seconds pass before the
    reply to the end-of-data dot. Accepted messages are kept in `messages`.
    """

    reject_recipients: Collection[str] = ()
    data_delay: float = 0.0
    messages: list[ReceivedMessage] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in {a.lower() for a in self.reject_recipients}:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)
        content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        self.messages.append(
            ReceivedMessage(envelope.mail_from or "", list(envelope.rcpt_tos), content or b"")
        )
        return "250 2.0.0 Message accepted for delivery"


def fixed_user_authenticator(
    user: str = TEST_USER, password: str = TEST_PASSWORD
) -> Callable[..., AuthResult]:
    """Return an aiosmtpd authenticator that accepts only `user` with `password`."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        accepted = auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False lets aiosmtpd send the 535 reply for a rejected login.
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)

    return authenticate


class _DelayedGreetingSMTP(SMTP):
    """aiosmtpd SMTP protocol that waits before sending its 220 greeting."""

    def __init__(self, handler: Any, *, greeting_delay: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._greeting_delay = greeting_delay

    async def _handle_client(self) -> None:
        # NOTE: _handle_client is aiosmtpd's private coroutine that sends the
        # greeting first (checked on aiosmtpd 1.4.6); a later release may rename it.
        await asyncio.sleep(self._greeting_delay)
        await super()._handle_client()


class BoundSocketController(Controller):
    """aiosmtpd Controller serving on an already bound socket.

    aiosmtpd's Controller binds `hostname:port` itself and then connects to
    that same port, so it cannot use port 0. Binding the socket here first
    removes the race of picking a free port and binding it later.
    """

    def __init__(
        self,
        handler: Any,
        listen_socket: socket.socket,
        greeting_delay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        host, port = listen_socket.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._listen_socket = listen_socket
        self._greeting_delay = greeting_delay

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listen_socket, ssl=self.ssl_context
        )

    def factory(self) -> SMTP:
        if self._greeting_delay > 0:
            return _DelayedGreetingSMTP(
                self.handler, greeting_delay=self._greeting_delay, **self.SMTP_kwargs
            )
        return SMTP(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server started by a context manager in this module."""

    host: str
    port: int
    handler: RecordingHandler | None = None
    certificate: CertificateFiles | None = None


def bind_listening_socket(host: str = LOOPBACK, port: int = 0) -> socket.socket:
    """Return a TCP socket bound to `host:port` (port 0: the kernel picks one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def aiosmtpd_server(
    *,
    host: str = LOOPBACK,
    port: int = 0,
    starttls: bool = False,
    reject_recipients: Collection[str] = (),
    data_delay: float = 0.0,
    greeting_delay: float = 0.0,
    auth: bool = False,
    auth_require_tls: bool = False,
    server_hostname: str = "mx.test.example",
) -> Iterator[RunningServer]:
    """Run an aiosmtpd server in a thread for the duration of the block.

    `starttls` offers STARTTLS with a self-signed certificate made for this
    server. `auth` enables AUTH LOGIN and PLAIN for TEST_USER/TEST_PASSWORD;
    it is offered before STARTTLS unless `auth_require_tls` is set.
    """
    handler = RecordingHandler(reject_recipients=reject_recipients, data_delay=data_delay)
    options: dict[str, Any] = {"server_hostname": server_hostname}

    with tempfile.TemporaryDirectory(prefix="smtptop-cert-") as cert_dir:
        certificate = None
        if starttls:
            certificate = make_self_signed_certificate(Path(cert_dir))
            options["tls_context"] = server_tls_context(certificate)
        if auth:
            options["authenticator"] = fixed_user_authenticator()
            options["auth_require_tls"] = auth_require_tls

        listen_socket = bind_listening_socket(host, port)
        controller = BoundSocketController(
            handler, listen_socket, greeting_delay=greeting_delay, **options
        )
        try:
            controller.start()
        except BaseException:
            listen_socket.close()
            raise
        try:
            bound_port = listen_socket.getsockname()[1]
            yield RunningServer(host, bound_port, handler, certificate)
        finally:
            controller.stop()
            listen_socket.close()


# ---------------------------------------------------------------------------
# Postfix smtp-sink


def pick_free_port(host: str = LOOPBACK) -> int:
    """Return a port that was free on `host` a moment ago.

    NOTE: another process can take the port between this call and the
    moment the caller binds it. smtp-sink cannot be handed an open socket, so
    smtp_sink() lives with this race and fails loudly if it loses it.
    """
    with bind_listening_socket(host, 0) as sock:
        port: int = sock.getsockname()[1]
        return port


def _is_listening(host: str, port: int) -> bool:
    """Check /proc/net/tcp{,6} for a LISTEN socket on `host:port` without connecting.

    Connecting would add a session to the server's log and to any capture
    running at the time.
    """
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    # /proc/net/tcp prints each 32-bit word of the address in host byte order.
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    address_hex = "".join(int.from_bytes(w, "little").to_bytes(4, "big").hex() for w in words)
    expected = f"{address_hex}:{port:04X}".upper()
    any_address = f"{'0' * len(address_hex)}:{port:04X}"
    table = "/proc/net/tcp6" if ":" in host else "/proc/net/tcp"
    listen_state = "0A"
    with open(table, encoding="ascii") as lines:
        next(lines)
        for line in lines:
            columns = line.split()
            if columns[3] == listen_state and columns[1].upper() in (expected, any_address):
                return True
    return False


def stop_process(process: subprocess.Popen[Any], grace: float = 3.0, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to `process` and wait for it, killing it when it outlives `grace` seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def smtp_sink(
    *extra_args: str,
    host: str = LOOPBACK,
    port: int = 0,
    backlog: int = 100,
    command_timeout: int = 30,
    start_timeout: float = 10.0,
) -> Iterator[RunningServer]:
    """Run Postfix's smtp-sink on `host:port` for the duration of the block.

    smtp-sink accepts every command, throws messages away and advertises
    PIPELINING unless `-p` is in `extra_args` (see smtp-sink(1)). Port 0
    picks a free port first (see pick_free_port for the race).
    """
    program = find_program("smtp-sink")
    if program is None:
        raise FileNotFoundError("smtp-sink not found; install Postfix (scripts/setup.sh does)")
    if port == 0:
        port = pick_free_port(host)

    command = [program, "-t", str(command_timeout)]
    if os.geteuid() == 0:
        # smtp-sink exits when run as root without -u, a user to switch to after binding.
        command += ["-u", "nobody"]
    listen_address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    command += [*extra_args, listen_address, str(backlog)]

    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + start_timeout
        while not _is_listening(host, port):
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(
                    f"smtp-sink exited with status {process.returncode} before listening "
                    f"on {listen_address}: {output.strip()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"smtp-sink did not listen on {listen_address} "
                                   f"within {start_timeout} s")
            time.sleep(0.02)
        yield RunningServer(host, port)
    finally:
        stop_process(process)
        if process.stdout:
            process.stdout.close()


# ---------------------------------------------------------------------------
# swaks


def swaks(
    port: int,
    *args: str,
    host: str = LOOPBACK,
    to: str = "rcpt@test.example",
    sender: str = "sender@test.example",
    helo: str = "client.test.example",
    timeout: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one swaks transaction against `host:port` and return its output.

    `args` are further swaks options, such as "--tls", "--pipeline" or
    "--auth", "LOGIN". With `check`, a non-zero exit raises
    CalledProcessError whose output holds the transcript.
    """
    program = find_program("swaks")
    if program is None:
        raise FileNotFoundError("swaks not found; install it (scripts/setup.sh does)")
    command: Sequence[str] = [
        program,
        "--server", host,
        "--port", str(port),
        "--to", to,
        "--from", sender,
        "--helo", helo,
        "--timeout", str(int(timeout)),
        *args,
    ]
    return subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
