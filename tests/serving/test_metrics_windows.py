"""The Prometheus export agrees with the ``stats`` payload figure for figure
(docs/PROTOCOL.md §6.2.1 and the metrics table) where the run-based test of
test_statistics.py cannot tell: the recent windows' lateness and the histogram buckets
(each figure given a distinct value, so a metric that read another one, p99 for p999 or
one threshold's share for the other's, is caught), the figures before any tick or input
(NaN, null, +Inf), and several networks in one scrape."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from spikestream.runtime.stats import LatenessHistogram, LatenessSnapshot, WindowStatistics
from spikestream.serving.metrics import MultiCollector, ServiceCollector, snapshot_metrics
from spikestream.serving.statistics import ServiceStatistics, stats_payload
from tests.serving import offline_service

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(snap: ServiceStatistics) -> Samples:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "net"))): s.value
        for family in snapshot_metrics(snap)
        for s in family.samples
    }


def window(
    seconds: float,
    base: float,
    *,
    over: tuple[int, int] = (50, 10),
    realtime_factor: float | None = None,
) -> WindowStatistics:
    """A window of 200 ticks whose every figure differs from every other (``over``: the
    ticks past 0.25 and 1 ms; the real-time factor 0.9 + ``base`` unless given)."""
    lateness = LatenessSnapshot(
        count=200,
        mean=base,
        p50=base,
        p99=3 * base,
        p999=5 * base,
        max=7 * base,
        thresholds=(0.00025, 0.001),
        over=over,
    )
    rtf = 0.9 + base if realtime_factor is None else realtime_factor
    return WindowStatistics(seconds, lateness, realtime_factor_actual=rtf)


def test_window_lateness_and_pace_metrics_equal_their_stats_keys() -> None:
    """Per window: the lateness quantiles, the largest lateness, the share of ticks past
    each threshold and the real-time factor, in seconds and ratios, equal the stats'
    milliseconds and percents."""
    snap = offline_service().statistics()
    recent = (window(1.0, 0.0001), window(10.0, 0.0002))
    pacer = dataclasses.replace(snap.engine.pacer, recent=recent, realtime_factor=0.5)
    snap = dataclasses.replace(snap, engine=dataclasses.replace(snap.engine, pacer=pacer))
    payload = stats_payload(snap)
    got = samples(snap)
    assert got[("spikestream_realtime_factor", ())] == payload["realtime_factor"] == 0.5
    checked = 0
    for w in recent:
        name = f"{w.seconds:g}s"
        stats = payload[f"window_{name}"]

        def metric(family: str, window: str = name, **labels: str) -> float:
            return got[(family, tuple(sorted({"window": window, **labels}.items())))]

        for q, key in (("0.5", "late_p50_ms"), ("0.99", "late_p99_ms"), ("0.999", "late_p999_ms")):
            value = metric("spikestream_window_tick_lateness_seconds", quantile=q)
            assert round(value * 1e3, 4) == stats[key], (name, q)
        assert (
            round(metric("spikestream_window_tick_lateness_max_seconds") * 1e3, 4)
            == (stats["late_max_ms"])
        )
        for threshold, key in (("0.00025", "late_over_250us_pct"), ("0.001", "late_over_1ms_pct")):
            ratio = metric("spikestream_window_late_ticks_ratio", threshold=threshold)
            assert round(ratio * 100, 4) == stats[key], (name, threshold)
        assert metric("spikestream_window_realtime_factor_actual") == pytest.approx(
            stats["realtime_factor_actual"], rel=1e-6
        )
        assert metric("spikestream_window_ticks") == stats["ticks"] == 200
        checked += 1
    assert checked == 2
    assert payload["window_1s"]["late_over_250us_pct"] == 25.0  # the figures are distinct
    assert payload["window_1s"]["late_over_1ms_pct"] == 5.0


def test_the_lateness_histogram_buckets_count_the_ticks_at_or_below_each_edge() -> None:
    """Ticks 0.5 ms late fall in the ``le="0.0005"`` bucket and every bucket above it,
    none below (a fine bucket counts only under an edge it ends at or below); the ``+Inf``
    bucket and ``_count`` are every tick, ``_sum`` their total."""
    snap = offline_service().statistics()
    edges = np.array([0.0, 0.0001, 0.0005, 0.002, math.inf])
    hist = LatenessHistogram(
        upper_bounds=edges, counts=np.array([1, 2, 4, 8, 0]), count=15, sum=0.0123
    )
    got = samples(dataclasses.replace(snap, lateness=hist))

    def bucket(le: str) -> float:
        return got[("spikestream_tick_lateness_seconds_bucket", (("le", le),))]

    assert bucket("1e-05") == 1  # only the tick at 0 s
    assert bucket("0.0001") == 3
    assert bucket("0.00025") == 3
    assert bucket("0.0005") == 7
    assert bucket("0.001") == 7  # the 8 ticks up to 2 ms are not known to be within 1 ms
    assert bucket("0.0025") == 15
    assert bucket("+Inf") == 15
    assert got[("spikestream_tick_lateness_seconds_count", ())] == 15
    assert got[("spikestream_tick_lateness_seconds_sum", ())] == 0.0123


def test_before_the_first_tick_and_value_the_metrics_say_what_the_stats_say() -> None:
    """A service that has not ticked yet and has had no input: the measured factor is 0
    (stats null), the input's age +Inf (stats null) and it is stale (runs on its default),
    and no CPU latency limit is held (-1, stats ``not requested``). A scrape taken right
    after a start or a ``reset`` must not show an input as fresh or a speed of NaN."""
    snap = offline_service().statistics()
    payload = stats_payload(snap)
    got = samples(snap)
    assert payload["realtime_factor_actual"] is None
    assert got[("spikestream_realtime_factor_actual", ())] == 0.0
    assert payload["inputs"]["u"]["age_ms"] is None
    assert payload["inputs"]["u"]["stale_now"] is True
    assert got[("spikestream_input_age_seconds", (("input", "u"),))] == math.inf
    assert got[("spikestream_input_stale", (("input", "u"),))] == 1.0
    assert payload["cpu_latency"] == "not requested"
    assert got[("spikestream_cpu_latency_limit_us", ())] == -1.0
    assert payload["paused"] is False
    assert got[("spikestream_paused", ())] == 0.0
    chrt = samples(dataclasses.replace(snap, fifo_priority=7, cpu_latency_held_us=20))
    assert chrt[("spikestream_tick_thread_fifo_priority", ())] == 7.0
    assert chrt[("spikestream_cpu_latency_limit_us", ())] == 20.0


def test_one_scrape_of_several_networks_has_each_networks_series() -> None:
    """``serve`` with several networks exports one family per name with a series per
    network: the second network's samples are merged in, not dropped."""
    first, second = offline_service().statistics(), offline_service().statistics()
    second = dataclasses.replace(second, net="other")
    collector = MultiCollector([ServiceCollector(lambda: first), ServiceCollector(lambda: second)])
    families = list(collector.collect())
    assert len({f.name for f in families}) == len(families)
    ticks = next(f for f in families if f.name == "spikestream_ticks")
    assert sorted(s.labels["net"] for s in ticks.samples) == ["other", "seed"]
    connected = next(f for f in families if f.name == "spikestream_connected")
    assert sorted(s.labels["net"] for s in connected.samples) == ["other", "seed"]
