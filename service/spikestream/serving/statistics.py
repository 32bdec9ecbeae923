"""One frozen snapshot of a service's statistics, and the ``stats`` topic payload built
from it.

:meth:`Service.statistics() <spikestream.serving.service.Service.statistics>` builds one
:class:`ServiceStatistics` from the engine, the link and the service's own counters; the
``stats`` topic (:func:`stats_payload`) and the Prometheus metrics
(:mod:`spikestream.serving.metrics`) both read that snapshot and nothing else, so a figure
is counted in one place and shown alike by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spikestream.runtime.engine import EngineStatistics
from spikestream.runtime.hostcpu import CpuShares
from spikestream.runtime.stats import LatenessHistogram, WindowStatistics
from spikestream_client.transport import LinkStatistics


@dataclass(frozen=True, slots=True)
class Freshness:
    """How fresh one input is at the snapshot.

    Attributes:
        age: Seconds since the input's last accepted value; None before the first.
        stale: True while the input runs on its default.
    """

    age: float | None
    stale: bool


@dataclass(frozen=True, slots=True)
class ServiceStatistics:
    """Everything one service counts, taken at one moment (read-only once built).

    Attributes:
        net: The network's name.
        engine: The engine's counters (ticks, lateness, frames, inputs, commands).
        link: The MQTT link's counters: connections, publish failures and refusals,
            failovers, resent frames.
        lateness: The since-start histogram of tick lateness (seconds), for Prometheus.
        scheduling: How the tick thread is scheduled, in words.
        tick_slice: The tick thread's scheduling slice, in words (``0.1 ms``, or
            ``kernel default (<why>)``).
        tick_path: ``compiled`` (wait, inputs and step in one call without the GIL) or
            ``python (<why>)``.
        frame_encoder: ``compiled`` (frames written by the C extension) or
            ``python (<why>)`` (by the client codec).
        tick_threads: Threads that step each tick: 2 when the tick is cut in two stages
            (``--tick-threads``), else 1.
        fifo_priority: The tick thread's ``SCHED_FIFO`` priority (0: ordinary scheduling).
        spin_contended: Whether the tick thread is now kept waiting for a CPU, and so
            spins ``--busy-spin`` before each deadline instead of ``--spin``.
        contended_ticks: Ticks that waited with ``--busy-spin``, since start.
        contended_spells: Spells of CPU contention begun, since start.
        takeovers: With two tick threads, stages one thread ran because the other had not
            begun it in time (a tick's second stage, its first), since start.
        early_ticks: Ticks started before their deadlines because a new input had arrived
            (not with ``--tick-at-deadline``), since start.
        cpu_latency: The CPU wake-up latency request, in words (``not requested``).
        cpu_latency_held_us: The limit this process holds, microseconds; None if none.
        freshness: Each input's age and staleness, by input name.
        rejected: Refusals by reason (``control`` counts every refused control message).
        retained_control: Retained control messages ignored.
        status_reasserted: Live ``offline`` statuses of this service, received while it
            was connected, answered by publishing ``online`` again.
        events_pending: Events waiting for the link.
        events_lost: Events lost in the tick thread's queue or beyond the pending queue.
        replies_failed: MQTT 5 replies that could not be handed to the link.
        snapshots_failed: Snapshots acknowledged whose file could not be written.
        snapshots_skipped: Periodic snapshots skipped: the one before was still written.
        bridges: The text and discovery bridges' counters (zeros when disabled).
        host_cpu: Per recent window (``engine.pacer.recent``), the host's busy and stolen
            CPU shares over it, or None where unknown (:mod:`spikestream.runtime.hostcpu`).
    """

    net: str
    engine: EngineStatistics
    link: LinkStatistics
    lateness: LatenessHistogram
    scheduling: str
    tick_slice: str
    tick_path: str
    frame_encoder: str
    tick_threads: int
    fifo_priority: int
    spin_contended: bool
    contended_ticks: int
    contended_spells: int
    takeovers: int
    early_ticks: int
    cpu_latency: str
    cpu_latency_held_us: int | None
    freshness: dict[str, Freshness]
    rejected: dict[str, int]
    retained_control: int
    status_reasserted: int
    events_pending: int
    events_lost: int
    replies_failed: int
    snapshots_failed: int
    snapshots_skipped: int
    bridges: dict[str, int]
    host_cpu: tuple[CpuShares | None, ...]


def stats_payload(s: ServiceStatistics) -> dict[str, Any]:
    """The flat, JSON-friendly ``stats`` topic payload of a snapshot (``docs/PROTOCOL.md``
    section 6.2; its keys are pinned there)."""
    es, ls = s.engine, s.link
    lat = es.pacer.lateness
    return {
        "tick": es.tick,
        "t": round(es.t, 6),
        "paused": es.paused,
        "realtime_factor": es.pacer.realtime_factor,
        "realtime_factor_actual": _round(es.pacer.realtime_factor_actual, 6),
        "elapsed_s": round(es.pacer.elapsed, 6),
        "simulated_s": round(es.pacer.simulated, 6),
        "late_p50_ms": _round(lat.p50 * 1e3, 4),
        "late_p99_ms": _round(lat.p99 * 1e3, 4),
        "late_p999_ms": _round(lat.p999 * 1e3, 4),
        "late_max_ms": _round(lat.max * 1e3, 4),
        "late_over_1ms": lat.over_threshold(0.001),
        **{
            window_key(w.seconds): _window(w, work, host)
            for w, work, host in zip(es.pacer.recent, es.work, s.host_cpu, strict=True)
        },
        "overruns": es.pacer.overruns,
        "realigns": es.pacer.realigns,
        "slips": es.pacer.slips,
        "behind_ms": round(es.pacer.behind * 1e3, 3),
        "scheduling": s.scheduling,
        "tick_slice": s.tick_slice,
        "tick_path": s.tick_path,
        "frame_encoder": s.frame_encoder,
        "tick_threads": s.tick_threads,
        "spin_contended": s.spin_contended,
        "contended_ticks": s.contended_ticks,
        "contended_spells": s.contended_spells,
        "takeovers": s.takeovers,
        "early_ticks": s.early_ticks,
        "cpu_latency": s.cpu_latency,
        "skipped_ticks": es.skipped_ticks,
        "dropped": sum(st.dropped for st in es.streams.values()),
        "frames": {n: st.frames for n, st in es.streams.items()},
        "dropped_by_probe": {n: st.dropped for n, st in es.streams.items()},
        "queued": {n: st.queued for n, st in es.streams.items()},
        "inputs": _inputs(s),
        "rejected": dict(s.rejected),
        "retained_control": s.retained_control,
        "status_reasserted": s.status_reasserted,
        "events_pending": s.events_pending,
        "connects": ls.connects,
        "reconnects": ls.reconnects,
        "publish_failed": ls.publish_failed,
        "replies_failed": s.replies_failed,
        "snapshots_failed": s.snapshots_failed,
        "snapshots_skipped": s.snapshots_skipped,
        "publish_refused": ls.publish_refused,
        "events_lost": s.events_lost,
        "link_connected": ls.connected,
        "link_last_error": ls.last_error,
        "broker": ls.broker,
        "failovers": ls.failovers,
        "resent": ls.resent,
        "lost_unsent": ls.lost_unsent,
        "dropped_unread": ls.dropped_unread,
        "publish_too_large": ls.publish_too_large,
        **s.bridges,
    }


def _inputs(s: ServiceStatistics) -> dict[str, dict[str, Any]]:
    # Each input's counters, its age (ms since its last value; null before the first)
    # and whether it runs on its default now.
    out: dict[str, dict[str, Any]] = {}
    for name, counts in s.engine.inputs.items():
        fresh = s.freshness[name]
        age_ms = None if fresh.age is None else round(fresh.age * 1e3, 1)
        out[name] = {**counts, "age_ms": age_ms, "stale_now": fresh.stale}
    return out


def window_key(seconds: float) -> str:
    """``window_1s``, ``window_10s``: the stats key of a recent window."""
    return f"window_{seconds:g}s"


def _window(w: WindowStatistics, work: WindowStatistics, host: CpuShares | None) -> dict[str, Any]:
    """One recent window for the stats topic (docs/PROTOCOL.md, "Recent windows"), with
    the ticks' work over a window of the same length (``work``: :attr:`EngineStatistics.work`)
    and the host's CPU shares over about the same span (``host``; None: unknown)."""
    lat, busy = w.lateness, work.lateness

    def pct(threshold: float) -> float | None:
        return _round(w.late_share(threshold) * 100.0, 4)

    return {
        "ticks": w.ticks,
        "realtime_factor_actual": _round(w.realtime_factor_actual, 6),
        "late_p50_ms": _round(lat.p50 * 1e3, 4),
        "late_p99_ms": _round(lat.p99 * 1e3, 4),
        "late_p999_ms": _round(lat.p999 * 1e3, 4),
        "late_max_ms": _round(lat.max * 1e3, 4),
        "late_over_250us": lat.over_threshold(0.00025),
        "late_over_1ms": lat.over_threshold(0.001),
        "late_over_250us_pct": pct(0.00025),
        "late_over_1ms_pct": pct(0.001),
        "work_p50_ms": _round(busy.p50 * 1e3, 4),
        "work_p99_ms": _round(busy.p99 * 1e3, 4),
        "work_max_ms": _round(busy.max * 1e3, 4),
        "cpu_busy_pct": None if host is None else _round(host.busy * 100.0, 2),
        "cpu_steal_pct": None if host is None else _round(host.steal * 100.0, 2),
    }


def _round(x: float, digits: int) -> float | None:
    return None if x != x else round(x, digits)  # NaN (no ticks yet) -> null
