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
from collections.abc import Callable
from importlib import resources
from typing import NoReturn

from smtptop import __version__
from smtptop.capture.errors import CaptureError
from smtptop.capture.files import CaptureReader, compile_frame_filter, open_capture, open_stream
from smtptop.capture.live import LiveCapture
from smtptop.config import (
    DEFAULT_BUFFER_KIB,
    DEFAULT_LINGER_SECONDS,
    DEFAULT_QUEUE_MIB,
    DEFAULT_SNAPLEN,
    SMTP_PORTS,
    CaptureConfig,
    Config,
    EngineConfig,
    default_filter,
)
from smtptop.decode.packet import UnsupportedLinkType
from smtptop.engine.conversation import Conversation
from smtptop.engine.engine import Engine
from smtptop.engine.process import EngineProcess
from smtptop.engine.runner import CaptureRunner
from smtptop.export.headless import FrameSelection, save_capture
from smtptop.export.pcap import ExportError
from smtptop.record import RecordConfig, Recorder, RecordError, parse_file_size
from smtptop.record.privileges import check_readable_as, drop_privileges, import_roots, input_paths
from smtptop.runtime import tune_garbage_collector, tune_garbage_collector_for_display
from smtptop.tls.keylog import KeyLog, KeyLogError
from smtptop.tls.keys import KEYLOG_ENVIRONMENT, TlsKeys, keylog_path_from_environment

log = logging.getLogger(__name__)

USAGE_ERROR = 2
# The dashboard's capture process ended on its own: capture stopped before the user quit.
CAPTURE_FAILED = 1
DEMO_CAPTURE = "demo.pcap"
# Headless output reports a closed conversation once it has lingered this long, so late
# packets (a last ACK, a retransmitted FIN) are in its record.
HEADLESS_LINGER_SECONDS = 2.0
# Without the table on screen, a closed conversation is needed only until its record is
# written, so --json and --report keep fewer. On the bench's 20,000-conversation load
# capture this cut smtptop's peak RSS from 380 MiB to 90 MiB, with the same records.
HEADLESS_MAX_CONVERSATIONS = 1_000
DASHBOARD_MAX_CONVERSATIONS = 10_000


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
        "--queue-mb", dest="queue_mib", type=int, default=DEFAULT_QUEUE_MIB, metavar="MIB",
        help="live: packets read from the kernel buffer but not yet analysed, in MiB of memory "
        f"(default {DEFAULT_QUEUE_MIB}); a burst is lost only when it outlasts both, and packets "
        "dropped here are counted as queue drops",
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
    view.add_argument(
        "--save", metavar="FILE",
        help="with -r: write the frames of the SMTP conversations to the pcap FILE (all, or those --select picks)",
    )
    view.add_argument(
        "--select", metavar="TEXT",
        help="with --save: only conversations whose client, server, stage, TLS mode, command or reply contain "
        "TEXT, as the dashboard's / filter matches",
    )

    record = parser.add_argument_group(
        "recording (tcpdump's options)",
        "Every captured frame, before any display filter, is written by a background thread, so a slow "
        "disk never stalls the capture. As in tcpdump: strftime names, -C units and suffixes, -U, and -Z "
        "giving up root once the capture is open. "
        "Differences from tcpdump, on purpose: files after the first of a -C series are numbered with six "
        "digits (000001) so they sort, and with -W the ring numbers are zero-padded; -G slices start at "
        "multiples of SECONDS from the epoch, not at the first packet; the -C counter restarts in each "
        "-G slice; -W with -C is a ring of exactly COUNT zero-padded files, also with -G (a ring per "
        "slice); -W with only -G stops recording, not the program, after COUNT files; a full disk "
        "pauses recording, which resumes in the next numbered file when space is free.",
    )
    record.add_argument(
        "-w", dest="write_file", metavar="FILE",
        help="record to FILE; strftime %%-codes are expanded with the slice start (local time)",
    )
    record.add_argument(
        "-G", dest="rotate_seconds", type=int, metavar="SECONDS",
        help="start a new file every SECONDS, aligned to the clock",
    )
    record.add_argument(
        "-C", dest="rotate_size", metavar="SIZE",
        help="start a new file before one exceeds SIZE millions of bytes (or SIZEk, SIZEm, SIZEg: KiB, MiB, GiB)",
    )
    record.add_argument(
        "-W", dest="ring_files", type=int, metavar="COUNT",
        help="with -C: a ring of COUNT files; with only -G: stop recording after COUNT files",
    )
    record.add_argument(
        "--keep", dest="keep_files", type=int, metavar="N",
        help="delete older files so that only the newest N files written remain",
    )
    record.add_argument(
        "-Z", dest="user", metavar="USER",
        help="when started as root: once the capture is open, run as USER, so USER creates the files "
        "(as tcpdump -Z); checked before capture starts, including that USER can read smtptop's Python files",
    )
    record.add_argument(
        "-U", dest="flush_each_packet", action="store_true",
        help="write each packet to the file as it arrives",
    )

    memory = parser.add_argument_group("memory")
    memory.add_argument(
        "--buffer-mb", type=int, default=64, metavar="MIB",
        help="captured frame bytes kept in memory for the packet and hex views (default 64); "
        "the oldest frames leave first",
    )
    memory.add_argument(
        "--max-conversations", type=int, metavar="N",
        help=f"conversations kept in memory (default {DASHBOARD_MAX_CONVERSATIONS} with the dashboard, "
        f"{HEADLESS_MAX_CONVERSATIONS} with --json or --report); a new one over the limit evicts the closed "
        "conversation seen least recently, or an open one silent for 10 minutes (its end was not captured)",
    )

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
    if args.queue_mib < 1:
        raise UsageError(f"--queue-mb {args.queue_mib}: the queue must hold at least 1 MiB")
    if args.buffer_kib < 1:
        raise UsageError(f"-B {args.buffer_kib}: the buffer size must be at least 1 KiB")
    for port in args.ports:
        if not 1 <= port <= 65535:
            raise UsageError(f"--port {port}: a TCP port is between 1 and 65535")
    if args.buffer_mb < 0:
        raise UsageError(f"--buffer-mb {args.buffer_mb}: the frame memory must be 0 MiB or more")
    if args.max_conversations is not None and args.max_conversations < 1:
        raise UsageError(f"--max-conversations {args.max_conversations}: keep at least 1 conversation")
    if args.save and not args.read_file:
        raise UsageError("--save writes conversations read with -r FILE; to keep live traffic, record it with -w")
    if args.select is not None and not args.save:
        raise UsageError("--select picks the conversations --save writes: add --save FILE")
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
        queue_mib=args.queue_mib,
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
        frame_store_mib=args.buffer_mb,
        max_conversations=args.max_conversations
        or (HEADLESS_MAX_CONVERSATIONS if headless else DASHBOARD_MAX_CONVERSATIONS),
    )
    _check_keys(engine, args.keylog)

    record = _record_config(args)

    output = "ui"
    if args.json:
        output = "json"
    elif args.report:
        output = "report"
    elif args.save:
        output = "save"
    config = Config(
        capture=capture,
        engine=engine,
        record=record,
        stall_seconds=args.stall,
        demo=args.demo,
        output=output,
        save=args.save,
        select=args.select or "",
    )
    return config, args


def _record_config(args: argparse.Namespace) -> RecordConfig | None:
    """Build the recording settings from -w and its options; None without -w."""
    options = (args.rotate_seconds, args.rotate_size, args.ring_files, args.keep_files, args.user)
    if not args.write_file:
        if any(option is not None for option in options) or args.flush_each_packet:
            raise UsageError("-G, -C, -W, --keep, -Z and -U shape a recording: add -w FILE")
        return None
    try:
        size = parse_file_size(args.rotate_size) if args.rotate_size is not None else None
        return RecordConfig(
            pattern=args.write_file,
            rotate_seconds=args.rotate_seconds,
            rotate_bytes=size,
            ring_files=args.ring_files,
            keep_files=args.keep_files,
            user=args.user,
            flush_each_packet=args.flush_each_packet,
        )
    except (ValueError, RecordError) as error:
        raise UsageError(str(error)) from None


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
            reader.frame_filter = compile_frame_filter(capture.bpf_filter, reader.link_type)
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


def main(argv: list[str] | None = None) -> int:
    tune_garbage_collector()
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


def _check_recorder(config: Config, source: LiveCapture | CaptureReader) -> Recorder | None:
    """Check that the recording can create its files; None without -w."""
    if config.record is None:
        return None
    recorder = Recorder(config.record, source.link_type, source.snaplen)
    recorder.check()
    return recorder


def _drop_root(config: Config, recorder: Recorder | None) -> None:
    """With -Z as root, check that the user can read what smtptop still needs, then become that user.

    Called once everything that needs root is open (the capture handle, the
    TLS keys), and before any thread starts or the engine process is forked.
    The recording starts with the capture, so its files belong to the user.
    """
    if recorder is None:
        return
    owner = recorder.owner
    if owner is not None and os.geteuid() == 0:
        needed = import_roots() + input_paths(
            config.engine.tls_keylog, config.capture.read_file if config.save else None
        )
        check_readable_as(owner, needed)
        drop_privileges(owner)


def _drop_root_or_fail(config: Config, source: LiveCapture | CaptureReader, recorder: Recorder | None) -> None:
    try:
        _drop_root(config, recorder)
    except (RecordError, OSError) as error:
        source.close()
        _fail(str(error))


def _run(config: Config, source: LiveCapture | CaptureReader, name: str) -> int:
    bpf_filter = config.capture.bpf_filter or ""
    try:
        recorder = _check_recorder(config, source)
    except (RecordError, KeyError, OSError) as error:
        source.close()
        _fail(str(error))
    if config.output == "ui":
        # Textual is imported only for the UI, and before -Z drops root, so its files are checked too.
        from smtptop.ui.app import SmtpTopApp

        engine = Engine(config.engine, source.link_type, name, bpf_filter)
        runner = CaptureRunner(
            engine,
            source,
            realtime=config.capture.realtime,
            rebase_to_now=config.capture.rebase_to_now,
            recorder=recorder,
            queue_bytes=config.capture.queue_mib * 1024 * 1024,
        )
        # The capture and the engine run in a child process, so that keys do not wait for the analysis.
        source_process = EngineProcess(runner)
        app = SmtpTopApp(
            source_process,
            stall_seconds=config.stall_seconds,
            live=isinstance(source, LiveCapture) or config.demo,
            secrets_shown=config.engine.reveal_secrets,
        )
        _drop_root_or_fail(config, source, recorder)
        source_process.start()
        tune_garbage_collector_for_display()
        try:
            app.run()
        finally:
            source_process.stop()
        if source_process.ended is not None:
            # The dashboard showed it in its header; the terminal keeps it after the screen is gone.
            print(
                f"smtptop: error: {source_process.ended}, so capture stopped before you quit; "
                "start smtptop with --log FILE to keep the capture process's messages",
                file=sys.stderr,
            )
            return CAPTURE_FAILED
        return 0
    return _run_headless(config, source, name, bpf_filter, recorder)


def _run_headless(
    config: Config, source: LiveCapture | CaptureReader, name: str, bpf_filter: str, recorder: Recorder | None
) -> int:
    from smtptop.output.jsonl import JsonLinesWriter
    from smtptop.output.report import ReportCollector

    sink: JsonLinesWriter | ReportCollector | None = None
    if config.output == "json":
        sink = JsonLinesWriter(sys.stdout)
    elif config.output == "report":
        sink = ReportCollector()
    selection = _save_selection(config)
    engine = Engine(config.engine, source.link_type, name, bpf_filter, on_finished=_finished_hook(sink, selection))
    runner = CaptureRunner(
        engine,
        source,
        realtime=config.capture.realtime,
        recorder=recorder,
        queue_bytes=config.capture.queue_mib * 1024 * 1024,
    )
    _drop_root_or_fail(config, source, recorder)
    interrupted = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
        # Also when started in the background by a shell, which makes SIGINT ignored.
        signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    runner.start()
    try:
        while not interrupted.is_set() and runner.is_running() and not getattr(sink, "closed", False):
            interrupted.wait(0.1)
    except KeyboardInterrupt:
        pass
    runner.stop()
    engine.finish_input(None)
    if selection is not None and config.save is not None and config.capture.read_file is not None:
        try:
            summary = save_capture(engine, selection, config.capture.read_file, config.save, config.capture.bpf_filter)
        except (ExportError, CaptureError) as error:
            _fail(str(error))
        print(f"smtptop: {summary.line()}", file=sys.stderr)
        if not summary.conversations:
            print(f"smtptop: no SMTP conversation matched --select {config.select!r}", file=sys.stderr)
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


def _save_selection(config: Config) -> FrameSelection | None:
    """Collect the frames of the conversations --save writes; None without --save."""
    if config.save is None:
        return None
    return FrameSelection(
        config.select,
        reveal=config.engine.reveal_secrets,
        packet_limit=config.engine.max_packets_per_conversation,
    )


def _finished_hook(
    sink: Callable[[Conversation], None] | None, selection: FrameSelection | None
) -> Callable[[Conversation], None] | None:
    """Hand each finished conversation to the headless output and to the --save selection."""
    if selection is None:
        return sink
    if sink is None:
        return selection

    def both(conversation: Conversation) -> None:
        sink(conversation)
        selection(conversation)

    return both


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
