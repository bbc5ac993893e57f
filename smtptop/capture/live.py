"""Live capture from a network interface through pypcap (libpcap).

The descriptor is put in non-blocking mode and read in batches after a
``select`` with a short timeout, so the reading thread can notice a stop
request within that timeout even when no packet matches the filter.
"""

from __future__ import annotations

import logging
import os
import select

import pcap

from smtptop.capture.errors import CaptureError
from smtptop.capture.files import Frame

log = logging.getLogger(__name__)


def _libpcap_reason(error: OSError) -> str:
    """Pull libpcap's own words out of pypcap's message, which wraps them in a bytes repr."""
    text = str(error)
    for quote in ("b'", 'b"'):
        start = text.find(quote)
        if start != -1:
            return text[start + 2 : -1] if text.endswith(quote[1]) else text[start + 2 :]
    return text


class LiveCapture:
    """An open capture on one interface, with its BPF filter applied."""

    def __init__(self, interface: str, snaplen: int, buffer_kib: int, bpf_filter: str, promiscuous: bool) -> None:
        self.name = interface
        self.bpf_filter = bpf_filter
        try:
            self._handle = pcap.pcap(
                name=interface,
                snaplen=snaplen,
                promisc=promiscuous,
                # Not immediate mode: libpcap then fills the kernel buffer with packets back
                # to back in blocks, delivered when full or after timeout_ms. In immediate
                # mode a 10,000-message smtp-source burst on lo left 2,611 conversations
                # whole, against 7,864 without it, with the same 64 MiB buffer.
                immediate=False,
                timeout_ms=50,
                buffer_size=buffer_kib * 1024,
            )
        except OSError as error:
            raise CaptureError(_open_failure(interface, _libpcap_reason(error))) from None
        try:
            self._handle.setfilter(bpf_filter)
        except OSError as error:
            self._handle.close()
            raise CaptureError(
                f"invalid capture filter {bpf_filter!r}: {_libpcap_reason(error)}; "
                "the filter uses tcpdump's syntax (see man pcap-filter)"
            ) from None
        self._handle.setnonblock(True)
        self._closed = False
        self.link_type: int = self._handle.datalink()
        self.snaplen = snaplen
        self._fd = self._handle.fileno()
        log.info("capturing on %s, link type %d, filter %r", interface, self.link_type, bpf_filter)

    def read_batch(self, timeout: float) -> list[Frame]:
        """Return the frames that are waiting, after waiting up to ``timeout`` seconds for one."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        try:
            packets = self._handle.readpkts()
        except OSError as error:
            raise CaptureError(f"capture on {self.name} failed: {_libpcap_reason(error)}") from None
        # pypcap does not expose the original length; the decoder takes the
        # payload length on the wire from the IP header instead.
        return [(ts, data, len(data)) for ts, data in packets]

    def drops(self) -> tuple[int, int]:
        """Return (dropped by the kernel buffer, dropped by the interface) since the capture started."""
        _, dropped, interface_dropped = self._handle.stats()
        return dropped, interface_dropped

    def close(self) -> None:
        # pypcap 1.3.0 passes a closed handle's NULL pointer to pcap_close again,
        # which crashes the process, so a second close must not reach it.
        if not self._closed:
            self._closed = True
            self._handle.close()


def _open_failure(interface: str, reason: str) -> str:
    lowered = reason.lower()
    if "permission" in lowered or "not permitted" in lowered:
        return (
            f"cannot capture on {interface}: {reason}. Live capture needs root or CAP_NET_RAW "
            "(sudo smtptop, or setcap cap_net_raw,cap_net_admin=eip on the Python binary); "
            "to look without capturing, read a file with -r FILE or try --demo"
        )
    if "no such device" in lowered or "doesn't exist" in lowered:
        names = ", ".join(sorted(os.listdir("/sys/class/net"))) if os.path.isdir("/sys/class/net") else ""
        hint = f" (interfaces here: {names}, or any)" if names else ""
        return f"-i {interface}: no such interface{hint}"
    return f"cannot capture on {interface}: {reason}"
