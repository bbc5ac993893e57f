"""Run the smtptop benchmark: record a load, compare offline with tshark, go live, scale, profile.

Usage, as root from the repository root after scripts/setup.sh:
    ./bench/run.sh [--messages N] [--repeats N] [--quick] [--skip STEP ...]
Outputs go to bench/out/: the capture, results.json and the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (python bench/run.py): make the repository importable as for python -m bench.run.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load, machine, offline, profile, report
from smtptop.runtime import tune_garbage_collector

OUT_DIR = Path(__file__).resolve().parent / "out"
STEPS = ("offline", "profile", "ring", "live", "terminal", "scale")
log = logging.getLogger("bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000,
                        help="messages (and SMTP conversations) smtp-source sends in each load (default 20000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="offline runs of each tool; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2000 messages, 1 repeat, smaller scale step")
    parser.add_argument("--skip", action="append", choices=STEPS, default=[],
                        help="leave out a step (repeatable)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default bench/out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 2000
        args.repeats = 1
    if args.messages < 1 or args.repeats < 1:
        parser.error(f"--messages and --repeats must be 1 or more, got {args.messages} and {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The live and scale steps run the dashboard in this process: give it the CLI's settings.
    tune_garbage_collector()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if os.geteuid() != 0:
        print("bench: live capture with tcpdump and smtptop needs root; run: sudo ./bench/run.sh",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine.describe(), "messages": args.messages,
                               "repeats": args.repeats, "quick": args.quick}

    log.info("recording %d messages from smtp-source to smtp-sink on lo", args.messages)
    capture = load.record_load(args.messages, args.out / "load.pcap")
    results["load"] = report.load_record(capture)
    print(report.load_text(capture), flush=True)

    if "offline" not in args.skip:
        results["offline"] = run_offline(capture, args)
    if "profile" not in args.skip:
        results["profile"] = run_profile(capture, args)
    if "ring" not in args.skip:
        results["ring"] = run_ring(args)
    if "live" not in args.skip:
        results["live"] = run_live(args, capture.frames)
    if "terminal" not in args.skip:
        results["terminal"] = run_terminal(args)
    if "scale" not in args.skip:
        results["scale"] = run_scale(args)

    results["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=_plain) + "\n")
    print(f"\nresults: {args.out / 'results.json'} ({results['seconds']} s in all)")
    return 0


def run_offline(capture: load.LoadCapture, args: argparse.Namespace) -> dict[str, Any]:
    log.info("offline: tshark and smtptop, %d run(s) each", args.repeats)
    tshark, smtptop = offline.compare(capture, args.repeats)
    json_path = args.out / "smtptop.jsonl"
    offline.write_json(capture, json_path)
    counts = offline.count_json(json_path)
    print(report.offline_text(tshark, smtptop, counts, capture.messages), flush=True)
    return report.offline_record(tshark, smtptop, counts, capture.messages)


def run_profile(capture: load.LoadCapture, args: argparse.Namespace) -> dict[str, Any]:
    if not profile.py_spy_available():
        print("profile: py-spy is not installed; run .venv/bin/pip install py-spy", flush=True)
        return {"error": "py-spy not installed"}
    log.info("profile: py-spy on smtptop's offline run")
    try:
        svg, raw = profile.record_offline(capture, args.out)
        log.info("profile: py-spy on the dashboard sorting 10,000 conversations")
        ui_raw = profile.record_dashboard_sort(args.out)
    except RuntimeError as error:
        print(f"profile: {error}", flush=True)
        return {"error": str(error)}
    top, samples = profile.summarise(raw)
    ui_top, ui_samples = profile.summarise(ui_raw)
    print(report.profile_text("smtptop -r --json", top, samples, svg), flush=True)
    print(report.profile_text("dashboard, 10,000 conversations, key o", ui_top, ui_samples, ui_raw), flush=True)
    return {"offline": {"svg": svg, "raw": raw, "samples": samples, "top": top},
            "dashboard_sort": {"raw": ui_raw, "samples": ui_samples, "top": ui_top}}


def run_ring(args: argparse.Namespace) -> dict[str, Any]:
    from bench import ring

    log.info("ring: an unread capture with smtptop's snaplen and buffer, with and without immediate mode")
    results = [ring.fill_ring(args.messages, immediate) for immediate in (True, False)]
    print(report.ring_text(results), flush=True)
    return {"immediate" if item.immediate else "not_immediate": item for item in results}


def run_live(args: argparse.Namespace, reference_frames: int) -> dict[str, Any]:
    from bench import live  # imports Textual; the offline steps do not need it

    log.info("live: the dashboard captures on lo while smtp-source sends %d messages", args.messages)
    result = asyncio.run(live.measure(args.messages, reference_frames))
    print(report.live_text(result), flush=True)
    return dataclasses.asdict(result)


def run_terminal(args: argparse.Namespace) -> dict[str, Any]:
    from bench import terminal

    log.info("terminal: the smtptop command on a pseudo-terminal while smtp-source sends %d messages", args.messages)
    result = terminal.measure(args.messages)
    print(report.terminal_text(result), flush=True)
    return dataclasses.asdict(result)


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    from bench import scale

    log.info("scale: %d open conversations on the dashboard", scale.OPEN_CONVERSATIONS)
    ui = asyncio.run(scale.measure_ui(scale.OPEN_CONVERSATIONS))
    packets = scale.MEMORY_PACKETS // 10 if args.quick else scale.MEMORY_PACKETS
    log.info("scale: memory after %d packets in %d conversations", packets, packets // scale.PACKETS_PER_CONVERSATION)
    memory = scale.measure_memory_in_child(packets)
    print(report.scale_text(ui, memory), flush=True)
    return {"ui": dataclasses.asdict(ui), "memory": memory}


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


if __name__ == "__main__":
    sys.exit(main())
