"""TrafficMeter and the nearest-rank percentiles, with exact expected values."""

from __future__ import annotations

import pytest

from smtptop.metrics.percentiles import nearest_rank, summarize
from smtptop.metrics.stats import Percentiles
from smtptop.metrics.traffic import HISTORY_SECONDS, Side, TrafficMeter

SERVER = "192.0.2.25:25"
OTHER_SERVER = "192.0.2.26:25"
CLIENT = "192.0.2.10:40000"
OTHER_CLIENT = "192.0.2.11:40000"


# --- percentiles


def test_nearest_rank_of_one_to_hundred() -> None:
    values = [float(n) for n in range(1, 101)]
    assert nearest_rank(values, 50) == 50.0
    assert nearest_rank(values, 95) == 95.0
    assert nearest_rank(values, 99) == 99.0
    assert nearest_rank(values, 100) == 100.0


def test_nearest_rank_of_few_values() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert nearest_rank(values, 50) == 0.5
    # ceil(0.95 * 10) = 10: with ten samples p95 and p99 are the maximum.
    assert nearest_rank(values, 95) == 1.0
    assert nearest_rank(values, 99) == 1.0
    assert nearest_rank([7.0], 1) == 7.0


def test_nearest_rank_of_twenty_values() -> None:
    values = [float(n) for n in range(1, 21)]
    assert nearest_rank(values, 95) == 19.0
    assert nearest_rank(values, 99) == 20.0
    assert nearest_rank(values, 50) == 10.0


def test_nearest_rank_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        nearest_rank([], 50)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 101)


def test_summarize_sorts_and_counts() -> None:
    assert summarize([3.0, 1.0, 2.0]) == Percentiles(count=3, p50=2.0, p95=3.0, p99=3.0)
    assert summarize([]) is None


# --- rates and history


def test_rates_divide_by_seen_seconds() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    for ts in (1000.2, 1000.7, 1003.5, 1009.9):
        meter.conversation_opened(ts)
    meter.message_accepted(1004.0)
    meter.message_accepted(1005.0)
    stats = meter.snapshot(1009.95)
    # Seconds 1000 to 1009 are ten seconds of the window.
    assert stats.conversations_per_second == 0.4
    assert stats.messages_per_second == 0.2
    assert stats.window_seconds == 60.0
    assert stats.rate_seconds == 10.0


def test_rates_before_any_event_name_window() -> None:
    stats = TrafficMeter(window_seconds=60.0).snapshot(1009.95)
    assert stats.conversations_per_second == 0.0
    # With nothing seen to average over, a rate_seconds of 0 makes the panel name the whole window.
    assert stats.rate_seconds == 0.0


def test_rates_over_full_window() -> None:
    meter = TrafficMeter(window_seconds=10.0)
    for second in range(1000, 1030):
        meter.conversation_opened(second + 0.5)
        meter.conversation_opened(second + 0.6)
    stats = meter.snapshot(1029.9)
    assert stats.conversations_per_second == 2.0
    assert stats.rate_seconds == 10.0
    # Ten quiet seconds later the window is empty.
    assert meter.snapshot(1039.9).conversations_per_second == 0.0


def test_history_has_one_value_per_second() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    meter.conversation_opened(1000.1)
    meter.conversation_opened(1000.9)
    meter.conversation_opened(1002.5)
    meter.message_accepted(1002.6)
    history = meter.snapshot(1002.7).conversation_rate_history
    assert len(history) == HISTORY_SECONDS
    assert history[-3:] == (2.0, 0.0, 1.0)
    assert sum(history) == 3.0
    messages = meter.snapshot(1002.7).message_rate_history
    assert messages[-1] == 1.0
    assert sum(messages) == 1.0


def test_history_drops_seconds_past_sixty() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    meter.conversation_opened(1000.5)
    meter.conversation_opened(1060.5)
    history = meter.snapshot(1060.6).conversation_rate_history
    assert history[0] == 0.0
    assert history[-1] == 1.0
    assert sum(history) == 1.0


def test_out_of_order_timestamp_counts_in_its_second() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    meter.conversation_opened(1005.0)
    meter.conversation_opened(1003.0)
    meter.conversation_opened(1005.5)
    history = meter.snapshot(1005.9).conversation_rate_history
    assert history[-3:] == (1.0, 0.0, 2.0)


# --- replies and errors


def test_replies_by_class() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    for code in (220, 250, 250, 354, 421, 450, 550, 554, 999):
        meter.reply(1000.0, code, CLIENT, SERVER)
    stats = meter.snapshot(1001.0)
    assert stats.replies_by_class == (("2xx", 3), ("3xx", 1), ("4xx", 2), ("5xx", 2))


def test_top_error_peers_in_window() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    meter.reply(1000.0, 550, CLIENT, SERVER)
    meter.reply(1030.0, 450, CLIENT, OTHER_SERVER)
    meter.reply(1031.0, 554, OTHER_CLIENT, OTHER_SERVER)
    meter.reply(1032.0, 250, OTHER_CLIENT, SERVER)
    stats = meter.snapshot(1040.0)
    assert stats.top_error_servers == ((OTHER_SERVER, 2), (SERVER, 1))
    assert stats.top_error_clients == ((CLIENT, 2), (OTHER_CLIENT, 1))
    # At 1060.0 the error at 1000.0 is exactly one window old and leaves it.
    stats = meter.snapshot(1060.0)
    assert stats.top_error_servers == ((OTHER_SERVER, 2),)
    assert stats.top_error_clients == ((CLIENT, 1), (OTHER_CLIENT, 1))


def test_error_events_are_capped() -> None:
    meter = TrafficMeter(window_seconds=60.0, max_error_events=3)
    for number in range(5):
        meter.reply(1000.0 + number, 550, f"192.0.2.{number}:1", SERVER)
    stats = meter.snapshot(1005.0)
    assert stats.top_error_servers == ((SERVER, 3),)
    assert len(stats.top_error_clients) == 3


# --- latency percentiles


def test_phase_percentiles_exact() -> None:
    meter = TrafficMeter(window_seconds=60.0)
    for number in range(1, 21):
        meter.phase_latency(1000.0 + number, "RCPT", number / 100, SERVER, Side.SERVER)
    meter.phase_latency(1010.0, "body", 2.5, SERVER, Side.CLIENT)
    stats = dict(meter.snapshot(1021.0).phase_percentiles)
    assert stats["RCPT"] == Percentiles(count=20, p50=0.10, p95=0.19, p99=0.20)
    assert stats["body"] == Percentiles(count=1, p50=2.5, p95=2.5, p99=2.5)


def test_phase_samples_leave_the_window() -> None:
    meter = TrafficMeter(window_seconds=10.0)
    meter.phase_latency(1000.0, "EHLO", 5.0, SERVER, Side.SERVER)
    meter.phase_latency(1008.0, "EHLO", 1.0, SERVER, Side.SERVER)
    assert dict(meter.snapshot(1009.0).phase_percentiles)["EHLO"].count == 2
    assert dict(meter.snapshot(1010.0).phase_percentiles)["EHLO"] == Percentiles(1, 1.0, 1.0, 1.0)
    assert meter.snapshot(1018.0).phase_percentiles == ()


def test_phase_samples_keep_newest_when_capped() -> None:
    meter = TrafficMeter(window_seconds=60.0, max_samples_per_phase=3)
    for number in range(6):
        meter.phase_latency(1000.0 + number, "MAIL", float(number), SERVER, Side.SERVER)
    assert dict(meter.snapshot(1006.0).phase_percentiles)["MAIL"] == Percentiles(3, 4.0, 5.0, 5.0)


def test_phase_names_are_capped() -> None:
    meter = TrafficMeter(window_seconds=60.0, max_phases=2)
    for phase in ("EHLO", "MAIL", "RCPT"):
        meter.phase_latency(1000.0, phase, 0.1, SERVER, Side.SERVER)
    assert [name for name, _ in meter.snapshot(1001.0).phase_percentiles] == ["EHLO", "MAIL"]


def test_slowest_servers_by_p95() -> None:
    meter = TrafficMeter(window_seconds=60.0, top=2)
    for number in range(1, 21):
        meter.phase_latency(1000.0, "RCPT", number / 10, SERVER, Side.SERVER)
        meter.phase_latency(1000.0, "RCPT", number / 100, OTHER_SERVER, Side.SERVER)
    # Client-side time never counts against a server.
    meter.phase_latency(1000.0, "body", 60.0, "192.0.2.27:25", Side.CLIENT)
    meter.phase_latency(1000.0, "EHLO", 0.001, "192.0.2.28:25", Side.SERVER)
    stats = meter.snapshot(1001.0)
    assert stats.slowest_servers == ((SERVER, 1.9), (OTHER_SERVER, 0.19))


def test_servers_are_capped_least_recent_first() -> None:
    meter = TrafficMeter(window_seconds=60.0, max_servers=2)
    meter.phase_latency(1000.0, "EHLO", 3.0, "192.0.2.1:25", Side.SERVER)
    meter.phase_latency(1000.0, "EHLO", 2.0, "192.0.2.2:25", Side.SERVER)
    meter.phase_latency(1000.0, "EHLO", 0.5, "192.0.2.1:25", Side.SERVER)
    meter.phase_latency(1000.0, "EHLO", 1.0, "192.0.2.3:25", Side.SERVER)
    servers = [server for server, _ in meter.snapshot(1001.0).slowest_servers]
    assert servers == ["192.0.2.1:25", "192.0.2.3:25"]


def test_empty_meter_snapshot() -> None:
    stats = TrafficMeter().snapshot(1000.0)
    assert stats.conversations_per_second == 0.0
    assert stats.replies_by_class == (("2xx", 0), ("3xx", 0), ("4xx", 0), ("5xx", 0))
    assert stats.phase_percentiles == ()
    assert stats.conversation_rate_history == (0.0,) * HISTORY_SECONDS
    assert stats.slowest_servers == ()


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TrafficMeter(window_seconds=0.0)
