"""Command line: options in tcpdump's spelling, a trailing filter expression, and the front end to run.

Every usage error names the option, the value and the fix, and exits with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from importlib import resources
from collections.abc import Callable
from typing import NoReturn

from smtptop import __version__
from smtptop.capture.errors import CaptureError
from smtptop.capture.files import CaptureReader, open_capture, open_stream
from smtptop.capture.live import LiveCapture
from smtptop.config import (
    DEFAULT_BUFFER_KIB,
    DEFAULT_LINGER_SECONDS,
    DEFAULT_SNAPLEN,
    SMTP_PORTS,
    CaptureConfig,
    Config,
    EngineConfig,
    default_filter,
)
from smtptop.decode.packet import UnsupportedLinkType
from smtptop.engine.engine import Engine
from smtptop.engine.runner import CaptureRunner
from smtptop.tls.keylog import KeyLog, KeyLogError
from smtptop.tls.keys import KEYLOG_ENVIRONMENT, TlsKeys, keylog_path_from_environment

log = logging.getLogger(__name__)

USAGE_ERROR = 2
DEMO_CAPTURE = "demo.pcap"
# Closed conversations of a live capture leave the table after this long; a file keeps them all
# up to EngineConfig.max_closed. Headless output reports a conversation once it has lingered.
HEADLESS_LINGER_SECONDS = 2.0


class UsageError(Exception):
    """A command-line value that cannot work; the message names it and the fix."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other usage error here."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see smtptop --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="smtptop",
        description=(
            "Watch SMTP conversations live or from a capture file: who is talking, at what stage, "
            "where the time went, down to the packets."
        ),
        epilog=(
            "EXPRESSION is a BPF filter in tcpdump's syntax. Live, it replaces the default "
            f"filter ({default_filter(SMTP_PORTS)}); with -r it selects frames as tcpdump -r does. "
            "Conversations on ports 25, 465, 587, 2525 and every --port are SMTP; on other ports a "
            "conversation is SMTP when the server's first bytes are a 220 greeting or the client's "
            "are EHLO/HELO."
        ),
    )

    source = parser.add_argument_group("source")
    source.add_argument("-i", dest="interface", metavar="IFACE", help="capture live on IFACE (default: any)")
    source.add_argument(
        "-r", dest="read_file", metavar="FILE",
        help="read a pcap or pcapng file, gzip-compressed or not; - reads a pcap stream from stdin",
    )
    source.add_argument("--demo", action="store_true", help="replay the bundled demo capture at its recorded pace")
    source.add_argument(
        "--realtime", action="store_true",
        help="replay -r FILE at its recorded pace (default: as fast as possible)",
    )
    source.add_argument(
        "-s", dest="snaplen", type=int, default=DEFAULT_SNAPLEN, metavar="SNAPLEN",
        help=f"bytes captured per packet, as tcpdump -s (default {DEFAULT_SNAPLEN})",
    )
    source.add_argument(
        "-B", dest="buffer_kib", type=int, default=DEFAULT_BUFFER_KIB, metavar="KiB",
        help=f"kernel capture buffer in KiB, as tcpdump -B (default {DEFAULT_BUFFER_KIB}, 64 MiB)",
    )
    source.add_argument(
        "-p", dest="no_promiscuous", action="store_true",
        help="do not put the interface into promiscuous mode, as tcpdump -p",
    )
    source.add_argument(
        "-n", dest="numeric", action="store_true",
        help="do not resolve names; smtptop never resolves them, so this is accepted for tcpdump habits",
    )
    source.add_argument(
        "--port", dest="ports", type=int, action="append", default=[], metavar="N",
        help="treat TCP port N as SMTP too (repeatable); live, it is added to the default filter",
    )

    view = parser.add_argument_group("display and output")
    view.add_argument(
        "--stall", type=_seconds, default=10.0, metavar="SECONDS",
        help="highlight open conversations idle for longer than this (default 10)",
    )
    view.add_argument(
        "--show-secrets", action="store_true",
        help="show AUTH credentials instead of masking them, on screen and in every output",
    )
    view.add_argument(
        "--json", action="store_true",
        help="no UI: write one JSON object per conversation to stdout when it ends",
    )
    view.add_argument("--report", action="store_true", help="no UI: print a table of all conversations at the end")
    view.add_argument("--log", metavar="FILE", help="write a debug log to FILE")

    tls = parser.add_argument_group("TLS decryption")
    tls.add_argument(
        "--keylog", metavar="FILE",
        help="NSS key log (as written with SSLKEYLOGFILE) to decrypt TLS 1.2 and 1.3 sessions; "
        "read again as it grows during a live capture. Default: $SSLKEYLOGFILE",
    )
    tls.add_argument(
        "--rsa-key", metavar="KEYFILE",
        help="server RSA private key (PEM or PKCS#12) to decrypt TLS 1.2 and older sessions with RSA key exchange, "
        "for any server; an encrypted key needs --rsa-keys, which takes a password",
    )
    tls.add_argument(
        "--rsa-keys", metavar="FILE",
        help="Wireshark's RSA keys list: lines of ip,port,protocol,keyfile[,password]",
    )

    parser.add_argument("--version", action="version", version=f"smtptop {__version__}")
    parser.add_argument("expression", nargs="*", help="BPF filter expression, as in tcpdump")
    return parser


def parse_config(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    """Turn the command line into the frozen configuration; raise UsageError for values that cannot work."""
    args = build_parser().parse_args(argv)

    if args.demo and (args.read_file or args.interface):
        raise UsageError("--demo replays the bundled capture; leave out -r and -i")
    if args.read_file and args.interface:
        raise UsageError(f"-r {args.read_file} and -i {args.interface} are exclusive: read a file or capture live")
    if not 1 <= args.snaplen <= DEFAULT_SNAPLEN:
        raise UsageError(f"-s {args.snaplen}: the snaplen must be between 1 and {DEFAULT_SNAPLEN} bytes")
    if args.buffer_kib < 1:
        raise UsageError(f"-B {args.buffer_kib}: the buffer size must be at least 1 KiB")
    for port in args.ports:
        if not 1 <= port <= 65535:
            raise UsageError(f"--port {port}: a TCP port is between 1 and 65535")
    if args.json and args.report:
        raise UsageError("--json and --report are exclusive: choose one headless output")

    ports = SMTP_PORTS | frozenset(args.ports)
    expression = " ".join(args.expression) or None
    live = not (args.read_file or args.demo)
    headless = args.json or args.report
    if live:
        linger = HEADLESS_LINGER_SECONDS if headless else DEFAULT_LINGER_SECONDS
    else:
        linger = HEADLESS_LINGER_SECONDS if headless else float("inf")

    capture = CaptureConfig(
        interface=(args.interface or "any") if live else None,
        read_file=args.read_file,
        bpf_filter=expression if expression or not live else default_filter(ports),
        snaplen=args.snaplen,
        buffer_kib=args.buffer_kib,
        promiscuous=not args.no_promiscuous,
        realtime=args.realtime or args.demo,
        rebase_to_now=args.demo,
    )
    engine = EngineConfig(
        smtp_ports=ports,
        reveal_secrets=args.show_secrets,
        linger_seconds=linger,
        stall_seconds=args.stall,
        tls_keylog=args.keylog or keylog_path_from_environment(),
        tls_rsa_key=args.rsa_key,
        tls_rsa_keys=args.rsa_keys,
        tls_keylog_watch=live,
    )
    _check_keys(engine, args.keylog)

    output = "ui"
    if args.json:
        output = "json"
    elif args.report:
        output = "report"
    return Config(capture=capture, engine=engine, stall_seconds=args.stall, demo=args.demo, output=output), args


def _check_keys(engine: EngineConfig, keylog_argument: str | None) -> None:
    """Read the keys once before starting, so a key that cannot be used stops the start.

    A live capture watches a key log that does not exist yet: the MTA may create it later.
    """
    try:
        TlsKeys.from_settings(None, engine.tls_rsa_key, engine.tls_rsa_keys, may_grow=False)
    except ValueError as error:
        raise UsageError(str(error)) from None
    path = engine.tls_keylog
    if not path:
        return
    origin = "" if path == keylog_argument else f"{KEYLOG_ENVIRONMENT}={path}: "
    if os.path.isdir(path):
        raise UsageError(f"{origin}the TLS key log {path} is a directory; give the key log file")
    if engine.tls_keylog_watch and not os.path.exists(path):
        return
    try:
        KeyLog(path).refresh()
    except KeyLogError as error:
        raise UsageError(f"{origin}{error}") from None


def open_source(config: Config) -> tuple[LiveCapture | CaptureReader, str]:
    """Open the capture source; return it with the name the header shows."""
    capture = config.capture
    if config.demo:
        path = str(resources.files("smtptop.demo").joinpath(DEMO_CAPTURE))
        return open_capture(path), "demo"
    if capture.read_file == "-" and config.output == "ui":
        reader = _stdin_for_dashboard()
    elif capture.read_file is not None:
        reader = open_capture(capture.read_file)
    if capture.read_file is not None:
        if capture.bpf_filter:
            reader.frame_filter = _compile_file_filter(capture.bpf_filter, reader.link_type)
        return reader, reader.name
    assert capture.interface is not None and capture.bpf_filter is not None
    live = LiveCapture(
        capture.interface, capture.snaplen, capture.buffer_kib, capture.bpf_filter, capture.promiscuous
    )
    return live, capture.interface


def _stdin_for_dashboard() -> CaptureReader:
    """Read the capture from a copy of stdin and give fd 0 to the terminal, where the dashboard reads keys."""
    try:
        terminal = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        raise UsageError(
            "-r - with the dashboard needs a terminal for the keys; "
            "read a stream without one with --json or --report"
        ) from None
    capture_fd = os.dup(0)
    os.dup2(terminal, 0)
    os.close(terminal)
    return open_stream(os.fdopen(capture_fd, "rb"), "stdin")


def _seconds(text: str) -> float:
    """Parse --stall: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, such as 10 or 2.5") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the stall threshold must be a positive number of seconds")
    return value


def _compile_file_filter(expression: str, link_type: int) -> Callable[[bytes], object]:
    import pcap

    try:
        matcher: Callable[[bytes], object] = pcap.bpf(expression.encode(), link_type).filter
        return matcher
    except OSError:
        raise CaptureError(
            f"invalid capture filter {expression!r} for link type {link_type}; "
            "the filter uses tcpdump's syntax (see man pcap-filter)"
        ) from None


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse_config(argv)
        _setup_logging(args.log, headless=config.output != "ui")
        source, name = open_source(config)
    except (UsageError, CaptureError) as error:
        _fail(str(error))
    try:
        return _run(config, source, name)
    except UnsupportedLinkType as error:
        source.close()
        _fail(f"{name}: {error}")


def _run(config: Config, source: LiveCapture | CaptureReader, name: str) -> int:
    bpf_filter = config.capture.bpf_filter or ""
    if config.output == "ui":
        engine = Engine(config.engine, source.link_type, name, bpf_filter)
        runner = CaptureRunner(
            engine, source, realtime=config.capture.realtime, rebase_to_now=config.capture.rebase_to_now
        )
        from smtptop.ui.app import SmtpTopApp  # Textual is imported only for the UI.

        app = SmtpTopApp(
            runner,
            stall_seconds=config.stall_seconds,
            live=isinstance(source, LiveCapture) or config.demo,
            secrets_shown=config.engine.reveal_secrets,
        )
        runner.start()
        try:
            app.run()
        finally:
            runner.stop()
        return 0
    return _run_headless(config, source, name, bpf_filter)


def _run_headless(config: Config, source: LiveCapture | CaptureReader, name: str, bpf_filter: str) -> int:
    from smtptop.output.jsonl import JsonLinesWriter
    from smtptop.output.report import ReportCollector

    sink = JsonLinesWriter(sys.stdout) if config.output == "json" else ReportCollector()
    engine = Engine(config.engine, source.link_type, name, bpf_filter, on_finished=sink)
    runner = CaptureRunner(engine, source, realtime=config.capture.realtime)
    interrupted = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    runner.start()
    try:
        while not interrupted.is_set() and runner.is_running() and not getattr(sink, "closed", False):
            interrupted.wait(0.1)
    except KeyboardInterrupt:
        pass
    runner.stop()
    engine.finish_input(None)
    if isinstance(sink, ReportCollector):
        try:
            sink.write(sys.stdout, engine.snapshot().stats)
            sys.stdout.flush()
        except BrokenPipeError:
            sink.closed = True
    if getattr(sink, "closed", False):
        # The reader of stdout left; point it at /dev/null so the flush at exit cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if engine.error:
        # What was read before the damage is reported above; the exit status marks the input as bad.
        print(f"smtptop: error: {engine.error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def _setup_logging(path: str | None, headless: bool) -> None:
    if path:
        logging.basicConfig(
            filename=path, level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
    elif headless:
        logging.basicConfig(level=logging.WARNING, format="smtptop: %(message)s")
    else:
        # The dashboard owns the terminal; without --log, messages would garble it.
        logging.getLogger().addHandler(logging.NullHandler())


def _fail(message: str) -> NoReturn:
    print(f"smtptop: error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)
