"""The ring check: how many frames fit in the kernel capture buffer at smtptop's capture settings.

A pcap handle with smtptop's default snaplen (262144) and buffer (64 MiB) is
left unread while smtp-source sends, then read out: once in immediate mode and
once without it. In immediate mode, libpcap 1.10 on Linux uses TPACKET_V2 slots
of one fixed size, derived from the snaplen and the interface's MTU (65536 on
lo), so 64 MiB has room for a few hundred frames. Without it, TPACKET_V3 packs
frames into blocks by their real size. On lo the outgoing copy of every packet
takes a slot too, and libpcap skips it when reading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pcap

from bench.load import send_messages, smtp_sink
from bench.processes import free_port
from smtptop.config import DEFAULT_BUFFER_KIB, DEFAULT_SNAPLEN

DRAIN_IDLE_READS = 3  # empty reads in a row that end the draining


@dataclass(frozen=True, slots=True)
class RingResult:
    """One unread capture: frames read out afterwards, and pcap's counters."""

    immediate: bool
    messages: int
    frames_read: int
    received: int
    kernel_drops: int


def fill_ring(messages: int, immediate: bool) -> RingResult:
    port = free_port()
    with smtp_sink(port):
        handle = pcap.pcap(name="lo", snaplen=DEFAULT_SNAPLEN, promisc=False, immediate=immediate,
                           timeout_ms=50, buffer_size=DEFAULT_BUFFER_KIB * 1024)
        try:
            handle.setfilter(f"tcp port {port}")
            handle.setnonblock(True)
            send_messages(port, messages)
            # Longer than the 50 ms block timeout, so TPACKET_V3 hands over its last block.
            time.sleep(0.5)
            frames = _drain(handle)
            received, dropped, _ = handle.stats()
        finally:
            handle.close()
    return RingResult(immediate, messages, frames, received, dropped)


def _drain(handle: pcap.pcap) -> int:
    frames = 0
    idle = 0
    while idle < DRAIN_IDLE_READS:
        packets = handle.readpkts()
        if packets:
            frames += len(packets)
            idle = 0
        else:
            idle += 1
            time.sleep(0.05)
    return frames
