"""``TrafficMeter``: event counters and latency samples over a sliding window of capture time.

Theory of operation
-------------------
The engine calls one method per event, with the event's capture time: a
conversation opened, a message accepted, a reply with its code, a latency
sample of a phase. Each call is O(1) amortised: it bumps a counter in the
bucket of its whole capture second, or appends to a bounded deque. Nothing
is sorted or rescanned per event. ``snapshot(now)`` runs a few times per
second: it drops what fell out of the window and sorts the remaining
samples to compute percentiles.

Two kinds of window:

* Counts (rates, reply classes, sparklines) live in per-second buckets. The
  window is the last ``ceil(window_seconds)`` whole seconds up to and
  including the second of ``now``. A rate divides by the seconds of that
  window that the meter has seen, at least one, so the rate of a capture
  that started 5 s ago is not diluted by 55 empty seconds.
* Samples (latencies, errors per peer) carry their exact capture time and
  are in the window while ``ts > now - window_seconds``.

Samples are dropped from the old end of each deque, so a sample fed out of
capture-time order may stay until the samples before it leave the window.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from enum import Enum

from smtptop.metrics.percentiles import nearest_rank, summarize
from smtptop.metrics.stats import Percentiles, TrafficStats

HISTORY_SECONDS = 60
REPLY_CLASSES = (2, 3, 4, 5)
DEFAULT_MAX_SAMPLES_PER_PHASE = 10_000
DEFAULT_MAX_PHASES = 64
DEFAULT_MAX_SERVERS = 512
DEFAULT_MAX_SAMPLES_PER_SERVER = 256
DEFAULT_MAX_ERROR_EVENTS = 50_000
DEFAULT_TOP = 5


class Side(Enum):
    """The peer a latency is charged to: the one that was expected to answer.

    ``NETWORK`` marks TCP handshake steps, which the kernels and the path
    answer, so that they never count as a server's reply latency.
    """

    CLIENT = "client"
    SERVER = "server"
    NETWORK = "network"


class _Second:
    """Counters of one whole second of capture time."""

    __slots__ = ("conversations", "messages", "replies", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        self.conversations = 0
        self.messages = 0
        self.replies = [0, 0, 0, 0, 0, 0]  # indexed by reply class, 2 to 5 used


class TrafficMeter:
    """Window counters and latency percentiles for the dashboard (see the module docstring).

    Memory is bounded whatever the traffic. The meter keeps at most:

    * ``max(ceil(window), 60) + 1`` second buckets;
    * ``max_phases`` phase deques of ``max_samples_per_phase`` samples each;
    * ``max_servers`` per-server deques of ``max_samples_per_server`` reply
      latencies, forgetting the least recently updated server first;
    * ``max_error_events`` 4xx/5xx replies for the per-peer error counts.

    When the
    window holds more samples than a deque keeps, only the newest count, so a
    percentile then covers less than the whole window. A phase name beyond the
    first ``max_phases`` is not recorded.
    """

    def __init__(
        self,
        window_seconds: float = 60.0,
        *,
        max_samples_per_phase: int = DEFAULT_MAX_SAMPLES_PER_PHASE,
        max_phases: int = DEFAULT_MAX_PHASES,
        max_servers: int = DEFAULT_MAX_SERVERS,
        max_samples_per_server: int = DEFAULT_MAX_SAMPLES_PER_SERVER,
        max_error_events: int = DEFAULT_MAX_ERROR_EVENTS,
        top: int = DEFAULT_TOP,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        self.window_seconds = window_seconds
        self.top = top
        self._window_buckets = max(1, math.ceil(window_seconds))
        self._kept_buckets = max(self._window_buckets, HISTORY_SECONDS) + 1
        self._max_samples_per_phase = max_samples_per_phase
        self._max_phases = max_phases
        self._max_servers = max_servers
        self._max_samples_per_server = max_samples_per_server
        self._max_error_events = max_error_events
        self._first_second: int | None = None
        self._seconds: deque[_Second] = deque()
        self._phases: dict[str, deque[tuple[float, float]]] = {}
        self._server_latency: OrderedDict[str, deque[tuple[float, float]]] = OrderedDict()
        self._errors: deque[tuple[float, str, str]] = deque()
        self._server_errors: dict[str, int] = {}
        self._client_errors: dict[str, int] = {}
        self.messages_total = 0  # accepted messages since the start, not only in the window

    # -- events ----------------------------------------------------------------

    def conversation_opened(self, ts: float) -> None:
        """Count an SMTP conversation that started at ``ts``."""
        bucket = self._bucket(ts)
        if bucket is not None:
            bucket.conversations += 1

    def message_accepted(self, ts: float) -> None:
        """Count a message the server accepted (a 2xx reply to the end of its body) at ``ts``."""
        self.messages_total += 1
        bucket = self._bucket(ts)
        if bucket is not None:
            bucket.messages += 1

    def reply(self, ts: float, code: int, client: str, server: str) -> None:
        """Count a complete reply by class; a 4xx or 5xx reply also counts against both peers."""
        reply_class = code // 100
        if reply_class not in REPLY_CLASSES:
            return
        bucket = self._bucket(ts)
        if bucket is not None:
            bucket.replies[reply_class] += 1
        if reply_class >= 4:
            self._errors.append((ts, server, client))
            _increment(self._server_errors, server)
            _increment(self._client_errors, client)
            if len(self._errors) > self._max_error_events:
                self._forget_oldest_error()

    def phase_latency(self, ts: float, phase: str, seconds: float, server: str, side: Side) -> None:
        """Record how long a phase took, at the capture time ``ts`` it completed.

        Latencies charged to the server (its replies, the greeting, the
        SYN-ACK) also count towards that server's p95 for ``slowest_servers``.
        """
        samples = self._phases.get(phase)
        if samples is None:
            if len(self._phases) >= self._max_phases:
                return
            samples = self._phases[phase] = deque(maxlen=self._max_samples_per_phase)
        samples.append((ts, seconds))
        if side is Side.SERVER:
            self._server_sample(ts, server, seconds)

    # -- the snapshot ----------------------------------------------------------

    def snapshot(self, now: float) -> TrafficStats:
        """Drop what left the window before ``now`` and compute the stats over what remains."""
        cutoff = now - self.window_seconds
        now_second = math.floor(now)
        self._drop_errors(cutoff)
        by_second = {bucket.second: bucket for bucket in self._seconds}
        window = [by_second[s] for s in range(now_second - self._window_buckets + 1, now_second + 1) if s in by_second]
        covered = self._covered_seconds(now_second)
        history = [by_second.get(s) for s in range(now_second - HISTORY_SECONDS + 1, now_second + 1)]
        return TrafficStats(
            window_seconds=self.window_seconds,
            conversations_per_second=sum(bucket.conversations for bucket in window) / covered,
            messages_per_second=sum(bucket.messages for bucket in window) / covered,
            replies_by_class=tuple(
                (f"{reply_class}xx", sum(bucket.replies[reply_class] for bucket in window))
                for reply_class in REPLY_CLASSES
            ),
            phase_percentiles=self._phase_percentiles(cutoff),
            conversation_rate_history=tuple(float(b.conversations) if b else 0.0 for b in history),
            message_rate_history=tuple(float(b.messages) if b else 0.0 for b in history),
            top_error_servers=_top_counts(self._server_errors, self.top),
            top_error_clients=_top_counts(self._client_errors, self.top),
            slowest_servers=self._slowest_servers(cutoff),
            # Before the first event there is nothing to average, and the label names the window.
            rate_seconds=float(covered) if self._first_second is not None else 0.0,
        )

    # -- internals -------------------------------------------------------------

    def _bucket(self, ts: float) -> _Second | None:
        """Return the bucket of ``ts``'s whole second, creating it; None when older than every kept bucket."""
        second = math.floor(ts)
        if self._first_second is None or second < self._first_second:
            self._first_second = second
        seconds = self._seconds
        if not seconds or second > seconds[-1].second:
            seconds.append(_Second(second))
            while seconds[0].second <= second - self._kept_buckets:
                seconds.popleft()
            return seconds[-1]
        # A timestamp out of capture order: walk back from the newest bucket.
        for index in range(len(seconds) - 1, -1, -1):
            bucket = seconds[index]
            if bucket.second == second:
                return bucket
            if bucket.second < second:
                seconds.insert(index + 1, _Second(second))
                return seconds[index + 1]
        if second > seconds[-1].second - self._kept_buckets:
            seconds.appendleft(_Second(second))
            return seconds[0]
        return None

    def _covered_seconds(self, now_second: int) -> int:
        """Return how many seconds of the count window the meter has seen, at least 1."""
        if self._first_second is None:
            return 1
        seen = now_second - self._first_second + 1
        return max(1, min(self._window_buckets, seen))

    def _server_sample(self, ts: float, server: str, seconds: float) -> None:
        samples = self._server_latency.get(server)
        if samples is None:
            samples = self._server_latency[server] = deque(maxlen=self._max_samples_per_server)
            if len(self._server_latency) > self._max_servers:
                self._server_latency.popitem(last=False)
        else:
            self._server_latency.move_to_end(server)
        samples.append((ts, seconds))

    def _forget_oldest_error(self) -> None:
        _, server, client = self._errors.popleft()
        _decrement(self._server_errors, server)
        _decrement(self._client_errors, client)

    def _drop_errors(self, cutoff: float) -> None:
        while self._errors and self._errors[0][0] <= cutoff:
            self._forget_oldest_error()

    def _phase_percentiles(self, cutoff: float) -> tuple[tuple[str, Percentiles], ...]:
        result: list[tuple[str, Percentiles]] = []
        for phase, samples in self._phases.items():
            _drop_samples(samples, cutoff)
            summary = summarize(seconds for _, seconds in samples)
            if summary is not None:
                result.append((phase, summary))
        return tuple(result)

    def _slowest_servers(self, cutoff: float) -> tuple[tuple[str, float], ...]:
        p95s: list[tuple[str, float]] = []
        for server, samples in list(self._server_latency.items()):
            _drop_samples(samples, cutoff)
            if not samples:
                del self._server_latency[server]
                continue
            p95s.append((server, nearest_rank(sorted(seconds for _, seconds in samples), 95)))
        p95s.sort(key=lambda item: (-item[1], item[0]))
        return tuple(p95s[: self.top])


def _drop_samples(samples: deque[tuple[float, float]], cutoff: float) -> None:
    while samples and samples[0][0] <= cutoff:
        samples.popleft()


def _increment(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


def _top_counts(counts: dict[str, int], top: int) -> tuple[tuple[str, int], ...]:
    """Return the ``top`` largest counts, ties broken by name so the order is stable."""
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top])
