"""One statistics snapshot feeds both the ``stats`` topic and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import subprocess
import sys

import pytest
from prometheus_client.core import Metric

from spikestream.build import build
from spikestream.runtime.native_pacing import (
    L_BUSY_TICKS,
    L_CONTENDED,
    L_EARLY_TICKS,
    L_SPELLS,
    L_STARTS_TAKEN,
    L_TAKEOVERS,
)
from spikestream.serving.metrics import ServiceCollector, snapshot_metrics
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statistics import ServiceStatistics, stats_payload
from spikestream.spec import load_network
from spikestream_client.codec import encode_input
from spikestream_client.transport import MessageMeta, parse_broker_url
from tests.serving import SEED

INPUT = "spikestream/seed/in/u"
META = MessageMeta(qos=0, retain=False)


def _samples(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "net"))): s.value
        for family in families
        for s in family.samples
    }


#: Keeps a CPU busy for 0.3 s.
BURN_0_3_S = "import time\nend = time.perf_counter() + 0.3\nwhile time.perf_counter() < end: pass"


@pytest.fixture
def service() -> Service:
    """A service whose engine ran for a while, with inputs accepted and refused (no
    broker: the link never connects, so its failures are counted too)."""
    svc = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )
    # The host's CPU times around the run, stamped 10 s apart: both windows span them.
    svc.host.cpu.sample(0.0)
    svc.engine.start()
    try:
        svc._on_message(INPUT, encode_input([0.5]), META)
        svc._on_message(INPUT, b"\xc1 not a value", META)
        svc._on_message("spikestream/seed/in/nope", b"1", META)
        svc._on_message("spikestream/seed/control", b"bogus", META)
        # A process busy for the 0.3 s: /proc/stat counts CPU time by the scheduler tick,
        # and the seed's ticks alone (a 0.2 ms spin each) were sometimes charged no busy
        # tick at all in 0.3 s, which read as a host 0 % busy. (Not this thread: holding
        # the GIL, it kept the engine from starting.)
        subprocess.run([sys.executable, "-c", BURN_0_3_S], check=True)
    finally:
        svc.engine.stop()
    svc.host.cpu.sample(10.0)
    svc._drain()  # frames meet a link that is not connected: they wait, or are dropped
    return svc


def test_prometheus_and_stats_agree_from_one_snapshot(service: Service) -> None:
    slot = service.engine.inputs["u"]
    slot.expired, slot.superseded = 2, 3  # distinct: a metric reading another count fails
    snap = service.statistics()
    payload = stats_payload(snap)
    got = _samples(list(snapshot_metrics(snap)))

    def metric(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert payload["tick"] > 0
    assert metric("spikestream_ticks_total") == snap.engine.pacer.ticks
    assert metric("spikestream_overruns_total") == payload["overruns"]
    assert metric("spikestream_skipped_ticks_total") == payload["skipped_ticks"]
    # The factor's spans: simulated over wall seconds is the factor, and the simulated
    # seconds are the intervals between the ticks (one run, no pause: one fewer than ticks).
    assert payload["elapsed_s"] > 0
    assert payload["simulated_s"] == pytest.approx((snap.engine.pacer.ticks - 1) * 0.001)
    assert payload["simulated_s"] / payload["elapsed_s"] == pytest.approx(
        payload["realtime_factor_actual"], rel=1e-5
    )
    # A pacer that gave up on backlogs: the counts and the schedule lost, in both.
    pacer = dataclasses.replace(snap.engine.pacer, realigns=3, slips=2, behind=0.0125)
    lost = dataclasses.replace(snap, engine=dataclasses.replace(snap.engine, pacer=pacer))
    lost_payload = stats_payload(lost)
    lost_got = _samples(list(snapshot_metrics(lost)))
    assert (lost_payload["realigns"], lost_payload["slips"]) == (3, 2)
    assert lost_payload["behind_ms"] == 12.5
    assert lost_got[("spikestream_realigns_total", ())] == 3
    assert lost_got[("spikestream_slips_total", ())] == 2
    assert lost_got[("spikestream_behind_seconds_total", ())] == 0.0125
    assert metric("spikestream_paused") == float(payload["paused"])
    assert metric("spikestream_realtime_factor") == payload["realtime_factor"]
    assert payload["frames"]
    assert sum(payload["frames"].values()) > 0
    for probe, frames in payload["frames"].items():
        assert metric("spikestream_frames_total", probe=probe) == frames
        assert (
            metric("spikestream_frames_dropped_total", probe=probe)
            == (payload["dropped_by_probe"][probe])
        )
        assert metric("spikestream_queue_depth", probe=probe) == payload["queued"][probe]
    for name, counts in payload["inputs"].items():
        assert metric("spikestream_inputs_accepted_total", input=name) == counts["accepted"]
        assert metric("spikestream_inputs_stale_total", input=name) == counts["stale"]
        assert metric("spikestream_inputs_expired_total", input=name) == counts["expired"]
        assert metric("spikestream_inputs_superseded_total", input=name) == counts["superseded"]
        age = metric("spikestream_input_age_seconds", input=name)
        assert (math.isinf(age) and counts["age_ms"] is None) or round(age * 1e3, 1) == (
            counts["age_ms"]
        )
        assert metric("spikestream_input_stale", input=name) == float(counts["stale_now"])
    assert payload["inputs"]["u"]["accepted"] == 1
    assert set(payload["rejected"]) >= {"unknown_input", "control"}
    for reason, count in payload["rejected"].items():
        assert metric("spikestream_inputs_rejected_total", reason=reason) == count
    assert metric("spikestream_reconnects_total") == payload["reconnects"]
    assert metric("spikestream_publish_refused_total") == payload["publish_refused"]
    assert metric("spikestream_events_lost_total") == payload["events_lost"]
    failed = dataclasses.replace(snap, snapshots_failed=2, snapshots_skipped=3)
    assert stats_payload(failed)["snapshots_failed"] == 2
    assert stats_payload(failed)["snapshots_skipped"] == 3
    failed_got = _samples(list(snapshot_metrics(failed)))
    assert failed_got[("spikestream_snapshots_failed_total", ())] == 2
    assert failed_got[("spikestream_snapshots_skipped_total", ())] == 3
    assert metric("spikestream_failovers_total") == payload["failovers"]
    assert metric("spikestream_frames_resent_total") == payload["resent"]
    assert metric("spikestream_messages_dropped_unread_total") == payload["dropped_unread"]
    assert metric("spikestream_connected") == float(payload["link_connected"])
    # The link's counters, each a different number: one reported under another's key
    # (lost_unsent as resent, say) is caught, which all-zero counters could not catch.
    counts = {
        f.name: 101 + i
        for i, f in enumerate(dataclasses.fields(snap.link))
        if f.type in ("int", int)
    }
    busy = dataclasses.replace(snap, link=dataclasses.replace(snap.link, **counts))
    busy_payload = stats_payload(busy)
    for key in (
        "connects",
        "reconnects",
        "publish_failed",
        "publish_refused",
        "failovers",
        "resent",
        "lost_unsent",
        "dropped_unread",
        "publish_too_large",
    ):
        assert busy_payload[key] == counts[key], key
    busy_got = _samples(list(snapshot_metrics(busy)))
    for name, key in (
        ("spikestream_reconnects_total", "reconnects"),
        ("spikestream_publish_refused_total", "publish_refused"),
        ("spikestream_failovers_total", "failovers"),
        ("spikestream_frames_resent_total", "resent"),
        ("spikestream_messages_dropped_unread_total", "dropped_unread"),
        ("spikestream_messages_too_large_total", "publish_too_large"),
    ):
        assert busy_got[(name, ())] == counts[key], name
    for key in ("window_1s", "window_10s"):
        window = key.removeprefix("window_")
        assert metric("spikestream_window_ticks", window=window) == payload[key]["ticks"]
        assert payload[key]["ticks"] > 0  # the engine ran within the last second
        for q, field in (("0.5", "work_p50_ms"), ("0.99", "work_p99_ms")):
            work = metric("spikestream_window_tick_work_seconds", window=window, quantile=q)
            assert payload[key][field] == round(work * 1e3, 4) > 0
        work_max = metric("spikestream_window_tick_work_max_seconds", window=window)
        longest = payload[key]["work_max_ms"]
        assert longest == round(work_max * 1e3, 4) >= payload[key]["work_p99_ms"]
        # The engine's 0.3 s of ticks ran between the two samples of the host's CPU time.
        for field, name in (("cpu_busy_pct", "busy"), ("cpu_steal_pct", "steal")):
            ratio = metric(f"spikestream_window_cpu_{name}_ratio", window=window)
            assert payload[key][field] == round(ratio * 100, 2)
            assert 0.0 <= ratio <= 1.0
        assert payload[key]["cpu_busy_pct"] > 0
    assert metric("spikestream_tick_lateness_seconds_count") == snap.lateness.count
    assert snap.lateness.count == snap.engine.pacer.ticks
    assert metric("spikestream_spin_contended") == float(payload["spin_contended"])
    # The seed's tick is far below --tick-threads auto's 12 MiB: one thread.
    assert metric("spikestream_tick_threads") == payload["tick_threads"] == 1
    assert metric("spikestream_contended_ticks_total") == payload["contended_ticks"]
    assert metric("spikestream_contended_spells_total") == payload["contended_spells"]
    assert metric("spikestream_takeovers_total") == payload["takeovers"] == 0  # one thread
    assert metric("spikestream_early_ticks_total") == payload["early_ticks"]


def test_the_spin_adaptation_is_reported_as_the_tick_loop_counts_it(service: Service) -> None:
    """``spin_contended`` and the counts come from the runs of ticks' own loop array."""
    runs = service.engine._runs
    assert runs is not None, "serve runs the compiled ticks in runs"
    assert runs.busy_spin == ServeSettings().busy_spin
    before = stats_payload(service.statistics())  # contention is the machine's to decide
    assert (before["spin_contended"], before["contended_ticks"], before["contended_spells"]) == (
        runs.contended,
        runs.busy_ticks,
        runs.spells,
    )
    runs.loop[L_CONTENDED] = 1
    runs.loop[L_BUSY_TICKS] = 1234
    runs.loop[L_SPELLS] = 3
    runs.loop[L_TAKEOVERS] = 56
    runs.loop[L_STARTS_TAKEN] = 7
    runs.loop[L_EARLY_TICKS] = 89
    payload = stats_payload(service.statistics())
    assert payload["spin_contended"] is True
    assert (payload["contended_ticks"], payload["contended_spells"]) == (1234, 3)
    # Either thread's: second stages the tick thread ran, first stages the helper ran.
    assert (runs.takeovers, runs.starts_taken) == (56, 7)
    assert payload["takeovers"] == 63
    assert payload["early_ticks"] == 89


def test_link_counters_come_from_the_link(service: Service) -> None:
    """Connections and publish failures are the link's own counts, not the service's."""
    snap = service.statistics()
    payload = stats_payload(snap)
    link = service.link.statistics()
    assert (payload["connects"], payload["reconnects"]) == (link.connects, link.reconnects)
    assert payload["publish_failed"] == link.publish_failed
    assert not hasattr(service, "connects")
    assert not hasattr(service, "publish_failed")


def test_events_waiting_offline_are_not_counted_as_failed_publishes(service: Service) -> None:
    """While offline, events wait without being tried: publish_failed counts what the
    link refused, not every wake-up of the publisher."""
    assert not service.link.connected
    assert service.events.pending  # the refusals above raised events; none went out
    pending = len(service.events.pending)
    before = service.link.statistics().publish_failed
    for _ in range(50):
        service._drain()
    assert service.link.statistics().publish_failed == before
    assert len(service.events.pending) == pending  # nothing lost either


def test_the_snapshot_is_frozen_and_read_once_per_scrape(service: Service) -> None:
    snap = service.statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.events_lost = 1  # type: ignore[misc]
    taken: list[ServiceStatistics] = []

    def source() -> ServiceStatistics:
        taken.append(service.statistics())
        return taken[-1]

    families = list(ServiceCollector(source).collect())
    assert len(taken) == 1
    assert _samples(families) == _samples(list(snapshot_metrics(taken[0])))


async def test_a_contended_spell_is_logged_as_it_begins_and_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stats task logs a warning when the tick thread's spell begins (the busy spin
    it now uses, with the counts) and an info line when it ends; nothing in between."""
    svc = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(stats_interval=0.01),
        memory_limit=1 << 30,
    )
    runs = svc.engine._runs
    assert runs is not None
    caplog.set_level(logging.INFO, logger="spikestream")
    task = asyncio.create_task(svc._stats())
    try:
        await asyncio.sleep(0.05)
        assert not [r for r in caplog.records if "CPU" in r.getMessage()]
        runs.loop[L_CONTENDED] = 1
        runs.loop[L_SPELLS] = 1
        await asyncio.sleep(0.05)
        runs.loop[L_CONTENDED] = 0
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    said = [r for r in caplog.records if "CPU" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.INFO]
    assert "spins 0 s before its deadline instead of 0.0002 s" in said[0].getMessage()
    assert said[0].contended_spells == 1  # type: ignore[attr-defined]
    assert "spins 0.0002 s again" in said[1].getMessage()
