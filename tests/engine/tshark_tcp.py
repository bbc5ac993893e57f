"""tshark's TCP analysis flags counted per direction, as an oracle for smtptop's.

Checked with TShark 4.0.17: a flag field that has no value of its own
(``tcp.analysis.retransmission``) prints "1" on the frames that carry it, and
a fast retransmission also carries ``tcp.analysis.retransmission``. The
counter "any_retransmission" counts each frame with any of the three
retransmission flags once, which is what smtptop's total counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from os import PathLike

from tests.support.tshark import run_tshark

# Oracle fields, named after smtptop's counters.
FLAG_FIELDS = {
    "retransmissions": "tcp.analysis.retransmission",
    "fast_retransmissions": "tcp.analysis.fast_retransmission",
    "spurious_retransmissions": "tcp.analysis.spurious_retransmission",
    "duplicate_acks": "tcp.analysis.duplicate_ack_num",
    "out_of_order": "tcp.analysis.out_of_order",
    "lost_segments": "tcp.analysis.lost_segment",
    "acked_unseen": "tcp.analysis.ack_lost_segment",
    "zero_windows": "tcp.analysis.zero_window",
    "zero_window_probes": "tcp.analysis.zero_window_probe",
    "window_full": "tcp.analysis.window_full",
    "window_updates": "tcp.analysis.window_update",
    "keep_alives": "tcp.analysis.keep_alive",
}

# (source "ip:port", destination "ip:port") of a direction. IPv6 addresses are not bracketed here.
Sender = tuple[str, str]


def tcp_flag_counts(pcap: str | PathLike[str], extra_args: Iterable[str] = ()) -> dict[Sender, Counter[str]]:
    """Count the frames that carry each analysis flag, per direction (the sender's frames)."""
    fields = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", *FLAG_FIELDS.values()]
    args = [*extra_args, "-Y", "tcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for field in fields:
        args += ["-e", field]
    counts: dict[Sender, Counter[str]] = {}
    for line in run_tshark(pcap, *args).splitlines():
        cells = line.split("\t")
        source = f"{cells[0] or cells[1]}:{cells[2]}"
        destination = f"{cells[3] or cells[4]}:{cells[5]}"
        counter = counts.setdefault((source, destination), Counter())
        flagged = {name for name, cell in zip(FLAG_FIELDS, cells[6:]) if cell}
        counter.update(flagged)
        if flagged & RETRANSMISSION_FLAGS:
            counter["any_retransmission"] += 1
    return counts


RETRANSMISSION_FLAGS = frozenset(("retransmissions", "fast_retransmissions", "spurious_retransmissions"))


def total(counts: dict[Sender, Counter[str]], name: str) -> int:
    """Sum one counter over every direction."""
    return sum(counter[name] for counter in counts.values())
