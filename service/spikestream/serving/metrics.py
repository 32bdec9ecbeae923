"""Prometheus metrics for ``serve --metrics-port``.

A custom collector takes one :class:`~spikestream.serving.statistics.ServiceStatistics`
snapshot per service when Prometheus scrapes, and reads nothing else: the figures are the
ones the ``stats`` topic shows, counted once, and the tick thread does no extra work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from spikestream.errors import ConfigError
from spikestream.runtime.hostcpu import CpuShares
from spikestream.runtime.stats import WindowStatistics
from spikestream.serving.statistics import ServiceStatistics

#: Prometheus histogram buckets of tick lateness, seconds: the fine log buckets of the
#: pacer coarsened to a readable set.
LATENESS_EDGES = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1e-1)


class ServiceCollector(Collector):
    """Exports one service's statistics, labelled with the network name.

    Args:
        snapshot: takes a fresh snapshot (``Service.statistics``), called once per scrape.
    """

    def __init__(self, snapshot: Callable[[], ServiceStatistics]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from snapshot_metrics(self.snapshot())


def snapshot_metrics(s: ServiceStatistics) -> Iterator[Metric]:
    """The metric families of one snapshot."""
    net = s.net
    es = s.engine
    hist = s.lateness
    cumulative = np.cumsum(hist.counts)
    buckets: list[tuple[str, float]] = []
    for edge in LATENESS_EDGES:
        i = int(np.searchsorted(hist.upper_bounds, edge, side="right")) - 1
        buckets.append((repr(edge), float(cumulative[i]) if i >= 0 else 0.0))
    buckets.append(("+Inf", float(hist.count)))
    h = HistogramMetricFamily(
        "spikestream_tick_lateness_seconds",
        "How late each tick started after its deadline",
        labels=["net"],
    )
    h.add_metric([net], buckets, sum_value=hist.sum)
    yield h
    yield _gauge(
        "spikestream_realtime_factor",
        "Requested real-time factor",
        net,
        es.pacer.realtime_factor,
    )
    rf = es.pacer.realtime_factor_actual
    yield _gauge(
        "spikestream_realtime_factor_actual",
        "Simulated over wall time",
        net,
        0.0 if rf != rf else rf,
    )
    yield from _window_metrics(net, es.pacer.recent, es.work, s.host_cpu)
    yield _counter("spikestream_ticks", "Ticks run", net, es.pacer.ticks)
    yield _counter("spikestream_overruns", "Ticks that started late", net, es.pacer.overruns)
    yield _counter("spikestream_skipped_ticks", "Ticks skipped to realign", net, es.skipped_ticks)
    yield _counter("spikestream_realigns", "Backlogs catch-up gave up on", net, es.pacer.realigns)
    yield _counter("spikestream_slips", "Schedule moves under --overrun slip", net, es.pacer.slips)
    yield _counter(
        "spikestream_behind_seconds",
        "Simulated seconds the schedule dropped (realigns, slips, resumes)",
        net,
        es.pacer.behind,
    )
    yield _gauge("spikestream_paused", "1 while paused", net, float(es.paused))
    yield _gauge(
        "spikestream_tick_threads",
        "Threads that step each tick (2: the tick cut in two stages, --tick-threads)",
        net,
        float(s.tick_threads),
    )
    yield _gauge(
        "spikestream_spin_contended",
        "1 while the tick thread is kept waiting for a CPU and spins --busy-spin",
        net,
        float(s.spin_contended),
    )
    yield _counter(
        "spikestream_contended_ticks",
        "Ticks that waited with --busy-spin (the tick thread kept waiting for a CPU)",
        net,
        s.contended_ticks,
    )
    yield _counter(
        "spikestream_contended_spells", "Spells of CPU contention begun", net, s.contended_spells
    )
    yield _counter(
        "spikestream_takeovers",
        "Tick stages one tick thread ran for the other, late to begin them",
        net,
        s.takeovers,
    )
    yield _counter(
        "spikestream_early_ticks",
        "Ticks started before their deadlines because a new input had arrived",
        net,
        s.early_ticks,
    )
    yield _gauge(
        "spikestream_tick_thread_fifo_priority",
        "SCHED_FIFO priority of the tick thread (0: ordinary scheduling)",
        net,
        float(s.fifo_priority),
    )
    held = s.cpu_latency_held_us
    yield _gauge(
        "spikestream_cpu_latency_limit_us",
        "CPU wake-up latency limit this process holds, microseconds (-1: none)",
        net,
        float(held) if held is not None else -1.0,
    )
    frames = CounterMetricFamily("spikestream_frames", "Frames produced", labels=["net", "probe"])
    dropped = CounterMetricFamily(
        "spikestream_frames_dropped", "Frames dropped by backpressure", labels=["net", "probe"]
    )
    depth = GaugeMetricFamily(
        "spikestream_queue_depth", "Frames waiting to be published", labels=["net", "probe"]
    )
    for probe, st in es.streams.items():
        frames.add_metric([net, probe], st.frames)
        dropped.add_metric([net, probe], st.dropped)
        depth.add_metric([net, probe], st.queued)
    yield from (frames, dropped, depth)
    accepted = CounterMetricFamily(
        "spikestream_inputs_accepted", "Input messages accepted", labels=["net", "input"]
    )
    stale = CounterMetricFamily(
        "spikestream_inputs_stale",
        "Inputs that fell back after their TTL",
        labels=["net", "input"],
    )
    age = GaugeMetricFamily(
        "spikestream_input_age_seconds",
        "Seconds since the input's last value (+Inf before the first)",
        labels=["net", "input"],
    )
    stale_now = GaugeMetricFamily(
        "spikestream_input_stale",
        "1 while the input runs on its default (no value yet, or its TTL expired)",
        labels=["net", "input"],
    )
    for name, counts in es.inputs.items():
        accepted.add_metric([net, name], counts["accepted"])
        stale.add_metric([net, name], counts["stale"])
        fresh = s.freshness[name]
        age.add_metric([net, name], float("inf") if fresh.age is None else fresh.age)
        stale_now.add_metric([net, name], float(fresh.stale))
    yield from (accepted, stale, age, stale_now)
    rejected = CounterMetricFamily(
        "spikestream_inputs_rejected",
        "Payloads rejected, by reason",
        labels=["net", "reason"],
    )
    for reason, count in s.rejected.items():
        rejected.add_metric([net, reason], count)
    yield rejected
    link = s.link
    yield _counter("spikestream_reconnects", "Reconnections to the broker", net, link.reconnects)
    yield _counter(
        "spikestream_publish_refused",
        "Publishes the broker refused (negative PUBACK)",
        net,
        link.publish_refused,
    )
    yield _counter(
        "spikestream_events_lost",
        "Events that could not be published",
        net,
        s.events_lost,  # both sides, as the stats count them
    )
    yield _counter(
        "spikestream_failovers",
        "Moves to the next broker of the --broker list",
        net,
        link.failovers,
    )
    yield _counter(
        "spikestream_frames_resent",
        "Messages a lost connection had not confirmed, sent again on the next one",
        net,
        link.resent,
    )
    yield _counter(
        "spikestream_messages_dropped_unread",
        "Incoming messages past every payload limit, dropped without being held",
        net,
        link.dropped_unread,
    )
    yield _gauge(
        "spikestream_connected",
        "1 while connected to the broker",
        net,
        float(link.connected),
    )


class MultiCollector(Collector):
    """Merges the families of several services (one family per name, a label per net)."""

    def __init__(self, collectors: list[ServiceCollector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for collector in self.collectors:
            for family in collector.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


def _window_metrics(
    net: str,
    recent: tuple[WindowStatistics, ...],
    work: tuple[WindowStatistics, ...],
    host: tuple[CpuShares | None, ...],
) -> Iterator[Metric]:
    """Gauges over the last 1 s and 10 s (label ``window``), beside the since-start counters
    and histogram: they show an episode while it lasts. NaN when no tick ran in the window.
    ``work``: the ticks' work durations over the same windows; ``host``: the host's CPU
    shares over them (NaN where unknown)."""
    labels = ["net", "window"]
    rf = GaugeMetricFamily(
        "spikestream_window_realtime_factor_actual",
        "Simulated over wall time in the last window",
        labels=labels,
    )
    ticks = GaugeMetricFamily(
        "spikestream_window_ticks", "Ticks run in the last window", labels=labels
    )
    quantiles = GaugeMetricFamily(
        "spikestream_window_tick_lateness_seconds",
        "Tick lateness percentiles in the last window",
        labels=[*labels, "quantile"],
    )
    late_max = GaugeMetricFamily(
        "spikestream_window_tick_lateness_max_seconds",
        "Largest tick lateness in the last window",
        labels=labels,
    )
    share = GaugeMetricFamily(
        "spikestream_window_late_ticks_ratio",
        "Share of the last window's ticks later than the threshold (seconds)",
        labels=[*labels, "threshold"],
    )
    work_quantiles = GaugeMetricFamily(
        "spikestream_window_tick_work_seconds",
        "Percentiles of each tick's work (inputs and kernels) in the last window",
        labels=[*labels, "quantile"],
    )
    work_max = GaugeMetricFamily(
        "spikestream_window_tick_work_max_seconds",
        "Longest work of a tick in the last window",
        labels=labels,
    )
    cpu_busy = GaugeMetricFamily(
        "spikestream_window_cpu_busy_ratio",
        "Share (0..1) of all the host's CPU time spent running anything in the last window",
        labels=labels,
    )
    cpu_steal = GaugeMetricFamily(
        "spikestream_window_cpu_steal_ratio",
        "Share (0..1) of all the host's CPU time the hypervisor stole in the last window",
        labels=labels,
    )
    for w, busy, cpu in zip(recent, work, host, strict=True):
        window = f"{w.seconds:g}s"
        cpu_busy.add_metric([net, window], math.nan if cpu is None else cpu.busy)
        cpu_steal.add_metric([net, window], math.nan if cpu is None else cpu.steal)
        for q, value in (("0.5", busy.lateness.p50), ("0.99", busy.lateness.p99)):
            work_quantiles.add_metric([net, window, q], value)
        work_max.add_metric([net, window], busy.lateness.max)
        lat = w.lateness
        rf.add_metric([net, window], w.realtime_factor_actual)
        ticks.add_metric([net, window], float(w.ticks))
        for q, value in (("0.5", lat.p50), ("0.99", lat.p99), ("0.999", lat.p999)):
            quantiles.add_metric([net, window, q], value)
        late_max.add_metric([net, window], lat.max)
        for threshold in lat.thresholds:
            share.add_metric([net, window, repr(threshold)], w.late_share(threshold))
    yield from (rf, ticks, quantiles, late_max, share, work_quantiles, work_max)
    yield from (cpu_busy, cpu_steal)


def _gauge(name: str, doc: str, net: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=["net"])
    g.add_metric([net], value)
    return g


def _counter(name: str, doc: str, net: str, value: float) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=["net"])
    c.add_metric([net], value)
    return c


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint."""

    def __init__(self, server: Any, thread: Any, port: int) -> None:
        self._server = server
        self._thread = thread
        self.port = port

    def shutdown(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def start_metrics(
    snapshots: list[Callable[[], ServiceStatistics]], host: str, port: int
) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one) for the services whose
    ``statistics`` methods are ``snapshots``.

    Raises:
        ConfigError: ``host:port`` cannot be bound (not an address of this machine, a name
            that does not resolve, a port in use or reserved), naming both and the reason.
    """
    registry = CollectorRegistry()
    registry.register(MultiCollector([ServiceCollector(s) for s in snapshots]))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:  # socket.gaierror too: a host that does not resolve
        reason = err.strerror or str(err)
        raise ConfigError(
            f"--metrics-host {host!r} --metrics-port {port}: cannot serve metrics there: "
            f"{reason}; expected an address of this machine and a free port"
        ) from None
    return MetricsServer(server, thread, server.server_address[1])
