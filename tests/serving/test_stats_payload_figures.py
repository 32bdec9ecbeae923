"""Figures of the ``stats`` payload that the run-based tests cannot tell apart: every
probe's drops, summed in ``dropped`` and shown by probe (the runs drop no frame, or one
probe's, where a total of the largest probe's count would pass), and the since-start
lateness, each figure given a distinct value (a run's are mostly equal, or zero), and
each recent window's work and host CPU, which a run of 0.3 s makes the same in both."""

from __future__ import annotations

import dataclasses

from spikestream.runtime.hostcpu import CpuShares
from spikestream.runtime.stats import LatenessSnapshot, WindowStatistics
from spikestream.runtime.streams import StreamStats
from spikestream.serving.statistics import ServiceStatistics, stats_payload
from tests.serving import offline_service
from tests.serving.test_metrics_windows import window


def _with_streams(snap: ServiceStatistics, streams: dict[str, StreamStats]) -> ServiceStatistics:
    return dataclasses.replace(snap, engine=dataclasses.replace(snap.engine, streams=streams))


def test_dropped_is_every_probes_drops_summed() -> None:
    """Drops on several probes: ``dropped`` is their sum, ``dropped_by_probe`` each one,
    and no drop count is taken for the frames sent, queued or coalesced."""
    snap = offline_service().statistics()
    names = list(snap.engine.streams)
    assert len(names) >= 3
    streams = {
        name: StreamStats(
            frames=100 + i, dropped=3 + i, coalesced=50 + i, queued=20 + i, capacity=64
        )
        for i, name in enumerate(names)
    }
    payload = stats_payload(_with_streams(snap, streams))
    assert payload["dropped"] == sum(3 + i for i in range(len(names)))
    assert payload["dropped_by_probe"] == {n: 3 + i for i, n in enumerate(names)}
    assert payload["frames"] == {n: 100 + i for i, n in enumerate(names)}
    assert payload["queued"] == {n: 20 + i for i, n in enumerate(names)}


def test_the_since_start_lateness_figures_are_each_their_own() -> None:
    """``late_p50_ms`` .. ``late_max_ms`` and ``late_over_1ms`` of the since-start
    lateness: each a distinct value here, so one reported under another's key (p999 as
    p99, the 250 us count as the 1 ms one) is caught."""
    snap = offline_service().statistics()
    lateness = LatenessSnapshot(
        count=1000,
        mean=0.0002,
        p50=0.0001,
        p99=0.0003,
        p999=0.0005,
        max=0.0007,
        thresholds=(0.00025, 0.001),
        over=(40, 7),
    )
    pacer = dataclasses.replace(snap.engine.pacer, lateness=lateness)
    payload = stats_payload(
        dataclasses.replace(snap, engine=dataclasses.replace(snap.engine, pacer=pacer))
    )
    got = {k: payload[k] for k in ("late_p50_ms", "late_p99_ms", "late_p999_ms", "late_max_ms")}
    assert got == {"late_p50_ms": 0.1, "late_p99_ms": 0.3, "late_p999_ms": 0.5, "late_max_ms": 0.7}
    assert payload["late_over_1ms"] == 7


def _window(seconds: float, base: float) -> WindowStatistics:
    """A window of 200 ticks whose figures scale with ``base`` (distinct per window)."""
    over = (int(50 * base * 1e4), int(10 * base * 1e4))
    return window(seconds, base, over=over, realtime_factor=0.5)


def test_each_window_shows_its_own_work_host_cpu_and_lateness_counts() -> None:
    """``window_1s`` holds the 1 s work window and the 1 s host CPU shares, ``window_10s``
    the 10 s ones (they are paired by position), and each window's tick counts past
    250 us and 1 ms are its own lateness's, not the other threshold's."""
    snap = offline_service().statistics()
    recent = (_window(1.0, 0.0001), _window(10.0, 0.0002))
    work = (_window(1.0, 0.001), _window(10.0, 0.002))
    host = (CpuShares(1.0, busy=0.25, steal=0.01), CpuShares(10.0, busy=0.5, steal=0.02))
    pacer = dataclasses.replace(snap.engine.pacer, recent=recent)
    engine = dataclasses.replace(snap.engine, pacer=pacer, work=work)
    payload = stats_payload(dataclasses.replace(snap, engine=engine, host_cpu=host))
    one, ten = payload["window_1s"], payload["window_10s"]
    assert (one["work_p50_ms"], ten["work_p50_ms"]) == (1.0, 2.0)
    assert (one["cpu_busy_pct"], ten["cpu_busy_pct"]) == (25.0, 50.0)
    assert (one["cpu_steal_pct"], ten["cpu_steal_pct"]) == (1.0, 2.0)
    assert (one["late_over_250us"], one["late_over_1ms"]) == (50, 10)
    assert (ten["late_over_250us"], ten["late_over_1ms"]) == (100, 20)


def test_the_clock_and_the_event_counts_are_each_their_own() -> None:
    """``t`` is the engine's simulated time (not the pacer's simulated seconds, which
    count the intervals between ticks), and events still waiting are not reported as
    events lost, nor lost ones as waiting."""
    snap = offline_service().statistics()
    pacer = dataclasses.replace(snap.engine.pacer, simulated=0.999)
    engine = dataclasses.replace(snap.engine, t=1.0, pacer=pacer)
    payload = stats_payload(
        dataclasses.replace(snap, engine=engine, events_pending=4, events_lost=9)
    )
    assert (payload["t"], payload["simulated_s"]) == (1.0, 0.999)
    assert (payload["events_pending"], payload["events_lost"]) == (4, 9)
