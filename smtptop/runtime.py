"""Process-wide settings for running smtptop: the garbage collector's thresholds.

The engine keeps millions of small objects alive for a long time (packets,
events, records), and CPython's default thresholds (700, 10, 10) scan them
again and again. Full collections took 3.7 s of a 19.8 s offline run of the
bench's load capture. With these thresholds,
``smtptop -r`` on that capture took 17.5 s instead of 20.3 s (medians of 3
alternating runs on a 2-core machine), with the same output and peak RSS.

The dashboard's process, once the engine runs in a child, needs short
pauses more than throughput. In the bench's live step, with the engine's
thresholds, a young collection in the dashboard took up to 60 ms. With
DISPLAY_GC_THRESHOLDS and the objects of start-up frozen, the longest
collection took 20 and 28 ms in two runs, and a full one about 21 ms. Without
the freeze, full collections took 64 and 70 ms.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)
DISPLAY_GC_THRESHOLDS = (5_000, 10, 10)


def tune_garbage_collector() -> None:
    """Collect less often, for a process that keeps many long-lived objects."""
    gc.set_threshold(*GC_THRESHOLDS)


def tune_garbage_collector_for_display() -> None:
    """Keep collections short in a process that only draws: freeze what exists, collect young objects often."""
    gc.freeze()
    gc.set_threshold(*DISPLAY_GC_THRESHOLDS)
