"""Tables and records of the benchmark's results, for the terminal and results.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load import LoadCapture
from bench.offline import Counts, ToolResult
from bench.profile import FunctionTime

if TYPE_CHECKING:
    from bench.live import LiveResult
    from bench.ring import RingResult
    from bench.scale import ScaleUiResult
    from bench.terminal import TerminalResult


def load_record(capture: LoadCapture) -> dict[str, Any]:
    return {"file": str(capture.path), "port": capture.port, "messages": capture.messages,
            "frames": capture.frames, "kernel_drops": capture.kernel_drops,
            "send_seconds": round(capture.send_seconds, 3),
            "messages_per_second": round(capture.messages / capture.send_seconds)}


def load_text(capture: LoadCapture) -> str:
    return (f"\nload: {capture.messages} messages sent in {capture.send_seconds:.2f} s "
            f"({capture.messages / capture.send_seconds:,.0f}/s); {capture.frames:,} frames captured, "
            f"{capture.kernel_drops} dropped by the kernel (tcpdump -B 65536)")


def offline_record(tshark: ToolResult, smtptop: ToolResult, counts: Counts, messages: int) -> dict[str, Any]:
    return {
        tool.name: {"median_seconds": round(tool.median_seconds, 3), "peak_rss_kib": tool.peak_rss_kib,
                    "runs_seconds": [round(run.seconds, 3) for run in tool.runs]}
        for tool in (tshark, smtptop)
    } | {
        "time_ratio_tshark_over_smtptop": round(tshark.median_seconds / smtptop.median_seconds, 3),
        "memory_ratio_smtptop_over_tshark": round(smtptop.peak_rss_kib / tshark.peak_rss_kib, 3),
        "conversations": counts.conversations,
        "accepted": counts.accepted,
        "all_counted": counts.conversations == messages and counts.accepted == messages,
    }


def offline_text(tshark: ToolResult, smtptop: ToolResult, counts: Counts, messages: int) -> str:
    runs = len(tshark.runs)
    lines = [f"\noffline ({runs} run{'s' if runs > 1 else ''} each, median wall time, max peak RSS)",
             f"  {'tool':8} {'wall s':>8} {'peak RSS MiB':>13}"]
    for tool in (tshark, smtptop):
        lines.append(f"  {tool.name:8} {tool.median_seconds:8.2f} {tool.peak_rss_kib / 1024:13.1f}")
    lines.append(f"  time tshark/smtptop {tshark.median_seconds / smtptop.median_seconds:.2f}x "
                 f"(target >= 5); memory smtptop/tshark {smtptop.peak_rss_kib / tshark.peak_rss_kib:.2f} "
                 f"(target <= 0.33)")
    verdict = "all counted" if counts.conversations == messages and counts.accepted == messages else "MISSING"
    lines.append(f"  smtptop counted {counts.conversations}/{messages} conversations and "
                 f"{counts.accepted}/{messages} accepted messages: {verdict}")
    return "\n".join(lines)


def profile_text(title: str, top: list[FunctionTime], samples: int, path: Path) -> str:
    lines = [f"\nprofile of {title}: {samples} samples, {path}",
             f"  {'self %':>6} {'total %':>7}  function"]
    for entry in top:
        lines.append(f"  {100 * entry.self_samples / samples:6.1f} {100 * entry.total_samples / samples:7.1f}"
                     f"  {entry.function}")
    return "\n".join(lines)


def _latency(name: str, samples: list[float]) -> str:
    if not samples:
        return f"  {name}: no samples"
    ordered = sorted(samples)
    median = ordered[len(ordered) // 2]
    return (f"  {name}: median {median * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms "
            f"over {len(samples)} presses (target < 100 ms)")


def live_text(result: LiveResult) -> str:
    drops = (f"  kernel drops {result.kernel_drops}, queue drops {result.queue_drops} (queue peak "
             f"{result.queue_peak_mib:,.1f} MiB), packets processed {result.packets:,} "
             f"(tcpdump captured {result.reference_frames:,} frames of the recorded load)")
    counted = (f"  conversations seen {result.conversations}/{result.messages}, accepted messages "
               f"{result.accepted}/{result.messages}; the engine took in packets for "
               f"{result.catch_up_seconds:.1f} s after sending")
    return "\n".join([
        f"\nlive: {result.messages} messages sent in {result.send_seconds:.2f} s while the dashboard captured",
        drops,
        counted,
        _latency("key o (sort) while sending", result.sort_latencies),
        _latency("key o (sort) while the engine catches up", result.sort_latencies_catching_up),
    ])


def terminal_text(result: TerminalResult) -> str:
    return "\n".join([
        (f"\nterminal: {result.messages} messages sent in {result.send_seconds:.2f} s while the smtptop "
         "command ran on a pseudo-terminal"),
        _latency("key o (sort) while sending", result.sort_latencies),
        _latency(f"key o (sort) in the {result.after_seconds:g} s after sending", result.sort_latencies_after),
    ])


def ring_text(results: list[RingResult]) -> str:
    lines = ["\nring: capture left unread while smtp-source sends, then read out (snaplen 262144, -B 64 MiB)"]
    for item in results:
        mode = "immediate mode" if item.immediate else "not immediate mode"
        lines.append(f"  {mode:27} frames read {item.frames_read:,}, kernel drops {item.kernel_drops:,} "
                     f"of {item.received:,} received (lo counts each packet twice)")
    return "\n".join(lines)


def scale_text(ui: ScaleUiResult, memory: dict[str, Any]) -> str:
    before = memory["rss_before_kib"] / 1024
    after = memory["rss_after_kib"] / 1024
    shown = (f"\nscale: {ui.conversations:,} open conversations on the dashboard "
             f"(first snapshot drawn in {ui.first_draw_seconds:.2f} s)")
    rss = (f"  memory: {memory['packets']:,} packets in {memory['conversations']:,} conversations fed in "
           f"{memory['feed_seconds']:.1f} s: RSS {before:.0f} MiB before, {after:.0f} MiB after "
           f"(peak {memory['peak_rss_kib'] / 1024:.0f} MiB)")
    kept = (f"  kept {memory['conversations_kept']:,} (limit {memory['max_conversations']:,}), evicted "
            f"{memory['evicted']:,}, frame bytes {memory['frame_bytes'] / 1024 / 1024:.1f} MiB "
            f"(budget {memory['frame_budget'] / 1024 / 1024:.0f} MiB), frames dropped {memory['frames_dropped']:,}")
    return "\n".join([
        shown,
        _latency("key pgdn (scroll)", ui.page_down_latencies),
        _latency("key o (sort)", ui.sort_latencies),
        rss,
        kept,
    ])
