"""The frozen results of ``TrafficMeter.snapshot``, read by the dashboard and re-exported by the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Nearest-rank percentiles of a set of latencies, in seconds."""

    count: int
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """Rates and latency percentiles over a sliding window of capture time, for the dashboard panel."""

    window_seconds: float
    conversations_per_second: float
    messages_per_second: float
    replies_by_class: tuple[tuple[str, int], ...]  # ("2xx", n), ("3xx", n), ("4xx", n), ("5xx", n)
    phase_percentiles: tuple[tuple[str, Percentiles], ...]  # seconds, per phase name
    conversation_rate_history: tuple[float, ...]  # one value per second, oldest first, for a sparkline
    message_rate_history: tuple[float, ...]
    top_error_servers: tuple[tuple[str, int], ...]  # server "ip:port" and its 4xx+5xx count
    top_error_clients: tuple[tuple[str, int], ...]
    slowest_servers: tuple[tuple[str, float], ...]  # server and its p95 reply latency in seconds
    # The seconds the rates are averaged over: the window, or less while the meter has seen less. 0 means the window.
    rate_seconds: float = 0.0
