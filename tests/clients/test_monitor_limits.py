"""``spikestream monitor`` against a flood of invented probes and frames that flip ``dt``:
the rings of all probes share one memory budget, the probes left out are counted and
said (terminal, web summary, the bridge's batches), and a ring is set up once per fold,
not once per frame.

Before: one 1-tick frame at dt = 1 µs on each of 256 invented probes made the monitor
hold 4.2 GB of rings (17 MB each), and frames alternating dt reallocated the ring per
frame (4x the CPU of steady frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
import tracemalloc
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
from rich.console import Console

from spikestream_client.codec import Frame
from spikestream_client.monitor.aggregate import (
    MAX_IGNORED_NAMES,
    MAX_PROBES,
    MAX_RING_BYTES,
    MonitorModel,
    Snapshot,
)
from spikestream_client.monitor.rings import RingBudget, SpikeView, ValueView
from spikestream_client.monitor.terminal import render
from spikestream_client.monitor.web import WebBridge, snapshot_json
from tests.brokers import Mosquitto
from tests.clients.conftest import cli, cli_env
from tests.clients.frames import (
    header,
    regular_spikes,
    spike_frame,
    spike_payload,
    value_frame,
    value_payload,
)

MIN_DT = 1e-6


def _flood_frame(name: str, k: int, seq: int = 0) -> Frame:
    """The fuzzing review's frame: one tick at dt = 1 µs (128 spikes or 128 values)."""
    h = header(name, seq, seq, ticks=1, dt=MIN_DT, net="fake")
    if k % 2:
        return spike_frame(h, np.ones((1, 128), np.bool_))
    return value_frame(h, np.ones((1, 128)))


def _ring_bytes(view: SpikeView | ValueView) -> int:
    """Bytes of the arrays a view's ring really holds (not the budget's own count)."""
    data = view.counts if isinstance(view, SpikeView) else view.trace
    return view.covered.nbytes + data.nbytes


def _text(snap: Snapshot) -> str:
    out = io.StringIO()
    Console(width=250, file=out, color_system=None).print(render(snap, "mqtt://broker:1883"))
    return out.getvalue()


# ------------------------------------------------------------------ the ring budget


def test_rings_of_all_probes_stay_within_the_memory_budget() -> None:
    """The review's flood: 256 invented probes, one 1-tick frame each at dt = 1 µs. Each
    asks for a 1 s window (10**6 ticks, 17 MB); together they hold MAX_RING_BYTES at
    most (4.2 GB before), every probe still shows its data, and the view says how many
    windows were shortened."""
    frames = [_flood_frame(f"p{k}", k) for k in range(MAX_PROBES)]
    model = MonitorModel("fake", window=1.0, bins=30)
    tracemalloc.start()
    try:
        for frame in frames:
            model.on_frame(frame)
        snap = model.snapshot()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = sum(_ring_bytes(v) for v in model.views.values())
    assert held <= MAX_RING_BYTES, f"rings hold {held / 2**20:.0f} MiB"
    assert model.budget.held == held  # the budget counts what is really allocated
    # The summaries' temporary copies come on top of the rings, one probe at a time.
    assert peak < MAX_RING_BYTES + 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert len(snap.probes) == MAX_PROBES
    assert all(p.covered > 0 for p in snap.probes)  # each probe's tick is in its ring
    shortened = [v for v in model.views.values() if v.shortened]
    assert snap.shortened == len(shortened) > MAX_PROBES // 2
    assert all(v.width % 30 == 0 and v.width >= 30 for v in shortened)  # whole bins
    assert "probes show less than the last 1 s (ring memory bound, 128 MiB in all)" in (_text(snap))


def test_a_described_probe_keeps_its_window_whatever_a_flood_took() -> None:
    """Half of the budget is split evenly, so probes invented first cannot starve a
    real one: a described probe whose window fits its share (1 s at 1 ms, 17 kB) gets
    all of it after 255 invented probes took the rest."""
    model = MonitorModel("fake", window=1.0, bins=20)
    model.expect({"real": "spikes"})
    for k in range(MAX_PROBES - 1):
        model.on_frame(_flood_frame(f"p{k}", k))
    model.snapshot()
    # The flood borrowed all the pool (but what whole bins leave over).
    assert 0 <= model.budget.pool - model.budget.lent < 2**10
    for seq in range(120):  # 1.2 s of 100 Hz neurons
        tick = 10 * seq
        model.on_frame(spike_frame(header("real", seq, tick), regular_spikes(tick, 10, 8, 10)))
    snap = model.snapshot()
    (real,) = [p for p in snap.probes if p.name == "real"]
    view = model.views["real"]
    assert (view.width, view.shortened) == (1000, False)
    assert real.covered == 1.0
    assert real.rate == pytest.approx(100.0)
    assert model.budget.held <= MAX_RING_BYTES


def test_a_dropped_view_gives_its_ring_back() -> None:
    """A probe that changes kind gets a new view; the old one's bytes return to the
    budget (else a publisher flipping kinds would leak the budget away)."""
    model = MonitorModel("fake", window=1.0, bins=10)
    for seq in range(6):
        kind = seq % 2
        model.on_frame(_flood_frame("p", kind, seq))
        model.snapshot()
        assert model.budget.held == _ring_bytes(model.views["p"]) > 0
    model.on_frame(_flood_frame("q", 0))
    model.snapshot()
    assert model.budget.held == sum(_ring_bytes(v) for v in model.views.values())


@pytest.mark.parametrize(("probes", "total"), [(1, 1000), (3, 2**20), (256, MAX_RING_BYTES)])
def test_the_budget_never_grants_more_than_its_total(probes: int, total: int) -> None:
    """Views asking for random sizes in random order, some letting go: whatever each
    asks, the grants never sum past ``total``, and each view may always hold its share."""
    budget = RingBudget(probes, total)
    rng = np.random.default_rng(probes)
    held = [0] * probes
    for _ in range(2000):
        v = int(rng.integers(probes))
        most = budget.most(held[v])
        assert most >= budget.share
        after = min(most, int(rng.integers(0, total + 1)))
        budget.move(held[v], after)
        held[v] = after
        assert sum(held) == budget.held <= total
        assert 0 <= budget.lent <= budget.pool


def test_a_lone_probe_borrows_past_its_share() -> None:
    """Only half the budget is split into shares; the other half is lent. A single probe
    whose window needs 1.7 MB (1 s at 10 µs, far more than its 256 KiB share) gets all
    of it while no other probe needs the pool, and is not marked shortened."""
    model = MonitorModel("fake", window=1.0, bins=10)
    model.on_frame(spike_frame(header("s", 0, 0, dt=1e-5), np.ones((10, 8), np.bool_)))
    snap = model.snapshot()
    view = model.views["s"]
    assert view.ring_bytes > model.budget.share
    assert (view.width, view.shortened, snap.shortened) == (100_000, False, 0)


def test_a_probe_keeps_what_it_borrowed_when_its_window_restarts() -> None:
    """A probe that borrowed most of the pool and then restarts (its ticks go back) may
    hold again what it held: what it borrowed counts as its own, else every reset of
    the service would shorten the window of the probes that needed the pool."""
    budget = RingBudget(2, 4000)  # share 1000 B, pool 2000 B
    view = SpikeView("s", 1.0, 10, rows=1, budget=budget)  # 5 B per tick
    for seq, tick in enumerate([0, 500, 0]):  # 500 ticks of 2 ms: 2500 B; then a reset
        view.add(spike_frame(header("s", seq, tick, dt=0.002), np.ones((10, 1), np.bool_)), 0.0)
        view.fold()
        assert (view.width, view.shortened) == (500, False)
    assert budget.held == view.ring_bytes == 2500


@pytest.mark.parametrize(("probes", "total"), [(0, 1000), (-1, 1000), (4, 7)])
def test_a_budget_that_cannot_give_each_probe_a_byte_is_refused(probes: int, total: int) -> None:
    """No probes, or less than two bytes per probe, would leave shares of zero bytes (or
    divide by zero): refused when the budget is made, not when a ring is set up."""
    with pytest.raises(ValueError, match="cannot serve"):
        RingBudget(probes, total)


# ------------------------------------------------------------- dt and layout flips


def _flipping(kind: str, what: str, count: int) -> list[Frame]:
    """``count`` 10-tick frames of probe ``s`` whose dt (1 or 2 ms) or n/shape flips every
    frame; neurons spike every 5 ticks."""
    frames: list[Frame] = []
    for seq in range(count):
        tick, odd = 10 * seq, seq % 2
        h = header("s", seq, tick, dt=0.002 if what == "dt" and odd else 0.001)
        wide = 1 if what == "layout" and odd else 0
        if kind == "spikes":
            frames.append(spike_frame(h, regular_spikes(tick, 10, 8 + wide, 5)))
        else:
            frames.append(value_frame(h, np.ones((10, 2 + wide))))
    return frames


@pytest.mark.parametrize("kind", ["spikes", "values"])
@pytest.mark.parametrize("what", ["dt", "layout"])
def test_frames_flipping_dt_or_layout_do_not_reallocate_the_ring_per_frame(
    kind: str, what: str
) -> None:
    """1000 frames, each with another dt (or n, or shape) than the one before, redrawn
    every 100: the ring is set up once per redraw, and allocated only when its size
    changes (once here: every redraw ends on the same dt and layout), not 1000 times.
    What shows is the last frame, at its own dt."""
    model = MonitorModel("fake", window=1.0, bins=10)
    for i, frame in enumerate(_flipping(kind, what, 1000)):
        model.on_frame(frame)
        if i % 100 == 99:
            model.snapshot()
    (probe,) = model.snapshot().probes
    view = model.views["s"]
    assert view.allocations == 1, f"{view.allocations} ring allocations"
    dt = 0.002 if what == "dt" else 0.001
    assert view.dt == dt
    assert probe.covered == pytest.approx(10 / view.width)
    if kind == "spikes":
        assert probe.size == (9 if what == "layout" else 8)
        assert probe.rate == pytest.approx(1 / (5 * dt))
    else:
        assert probe.size == ((3,) if what == "layout" else (2,))
        assert probe.high == 1.0


def test_folding_at_once_shows_what_folding_frame_by_frame_shows() -> None:
    """Frames of random dt, n and resets: a model redrawn after every frame and one
    redrawn once (which skips the frames before the last restart) show the same."""
    rng = np.random.default_rng(7)
    frames: list[Frame] = []
    tick = 0
    for seq in range(300):
        tick = 0 if rng.random() < 0.03 else tick  # a reset now and then
        dt = (0.001, 0.002)[int(rng.random() < 0.05)]
        n = (6, 7)[int(rng.random() < 0.05)]
        ticks = int(rng.integers(1, 20))
        spikes = rng.random((ticks, n)) < 0.2
        frames.append(spike_frame(header("s", seq, tick, ticks, dt=dt), spikes))
        tick += ticks + int(rng.random() < 0.1) * 5  # and a gap now and then
    each = MonitorModel("fake", window=0.2, bins=10)
    once = MonitorModel("fake", window=0.2, bins=10)
    for frame in frames:
        each.on_frame(frame)
        each.snapshot()
        once.on_frame(frame)
    a, b = each.snapshot().probes[0], once.snapshot().probes[0]
    assert (a.size, a.covered, a.tick) == (b.size, b.covered, b.tick)
    np.testing.assert_array_equal(a.rates, b.rates)
    np.testing.assert_array_equal(a.raster, b.raster)
    assert once.views["s"].allocations <= each.views["s"].allocations


# ------------------------------------------------------------ probes not shown


def test_probes_past_the_limit_are_counted_and_shown() -> None:
    """Frames of probes past MAX_PROBES (invented names, or described ones) are counted
    by probe and by frame, and both views say so; past MAX_IGNORED_NAMES names the count
    stays there and reads "at least"."""
    model = MonitorModel("fake", window=0.1, bins=4)
    spikes = regular_spikes(0, 10, 2, 5)
    for k in range(MAX_PROBES + 40):
        for seq in range(2 if k >= MAX_PROBES else 1):
            model.on_frame(spike_frame(header(f"p{k}", seq, 10 * seq), spikes))
    model.expect({f"d{k}": "values" for k in range(10)})
    snap = model.snapshot()
    assert (snap.ignored_probes, snap.ignored_frames) == (50, 80)
    assert len(snap.probes) == MAX_PROBES
    note = "50 more probes not shown (80 frames; at most 256 probes are shown)"
    assert note in _text(snap)
    summary = snapshot_json(snap)
    assert (summary["ignored_probes"], summary["ignored_frames"]) == (50, 80)
    assert note in summary["limits"]
    for k in range(MAX_IGNORED_NAMES):
        model.on_frame(spike_frame(header(f"x{k}", 0, 0), spikes))
    snap = model.snapshot()
    assert snap.ignored_probes == MAX_IGNORED_NAMES
    assert f"at least {MAX_IGNORED_NAMES} more probes not shown" in _text(snap)
    quiet = MonitorModel("fake")
    quiet.on_frame(spike_frame(header("s", 0, 0), spikes))
    assert "limits" not in _text(quiet.snapshot())
    assert snapshot_json(quiet.snapshot())["limits"] == ""


def test_the_page_gets_only_the_probes_the_model_shows() -> None:
    """The page makes a panel per probe it is sent: the bridge forwards only the probes
    the model shows, so invented names cannot add panels without end (each batch used to
    carry up to 256 new ones)."""
    model = MonitorModel("fake", window=0.1, bins=4)
    bridge = WebBridge("fake", shows=model.shows)
    spikes = regular_spikes(0, 10, 2, 5)
    seen: set[str] = set()
    for batch in range(3):
        for k in range(200):
            frame = spike_frame(header(f"b{batch}p{k}", 0, 0), spikes)
            model.on_frame(frame)  # as subscribed: the model first, then the bridge
            bridge.on_frame(frame)
        message = bridge.batch()
        if batch == 2:  # only names past the limit: nothing for the page
            assert message is None
        else:
            assert message is not None
            seen |= set(message["probes"])
    assert seen == set(model.views)
    assert len(seen) == MAX_PROBES
    assert model.snapshot().ignored_probes == 3 * 200 - MAX_PROBES


# ------------------------------------------------------- the real monitor, flooded


def _rss(pid: int) -> int:
    """Resident bytes of process ``pid`` (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


#: Resident memory allowed to the flooded monitor: the ring budget plus the interpreter,
#: numpy, rich, the MQTT client and the frames in flight (about 120 MB together). The
#: monitor held 4.3 GB before the budget.
RSS_BOUND = MAX_RING_BYTES + 256 * 2**20


@pytest.mark.broker
async def test_the_monitor_flooded_with_invented_probes_stays_bounded(
    mosquitto: Mosquitto,
) -> None:
    """End to end through a real broker: ``spikestream monitor`` while 300 invented
    probes send 1-tick frames at dt = 1 µs. Its resident memory stays within the ring
    budget plus its own, and its view says that 44 probes were not shown."""
    names = [f"p{k:03d}" for k in range(MAX_PROBES + 44)]
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pub:
        await pub.publish("spikestream/flood/status", b"online", qos=1, retain=True)
        proc = await asyncio.create_subprocess_exec(
            *cli("monitor", "--broker", mosquitto.url(), "--net", "flood", "--duration", "6"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        rss = 0
        try:
            started = time.monotonic()
            seq = 0
            while time.monotonic() - started < 5.0 and proc.returncode is None:
                for k, name in enumerate(names):
                    payload = (
                        spike_payload(
                            header(name, seq, seq, 1, net="flood", dt=MIN_DT),
                            np.ones((1, 128), np.bool_),
                        )
                        if k % 2
                        else value_payload(
                            header(name, seq, seq, 1, net="flood", dt=MIN_DT), np.ones((1, 128))
                        )
                    )
                    await pub.publish(f"spikestream/flood/out/{name}", payload, qos=0)
                seq += 1
                await asyncio.sleep(0.2)
                rss = max(rss, _rss(proc.pid))
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = out.decode()
    print(f"flooded monitor: {rss / 2**20:.0f} MiB resident at most")
    assert proc.returncode == 0, err.decode()
    assert 0 < rss < RSS_BOUND, f"{rss / 2**20:.0f} MiB resident"
    assert re.search(r"limits\s+44 more probes not shown \(\d+ frames; at most 256", text), text


def test_arrival_times_kept_for_the_frame_rate_are_bounded() -> None:
    """Arrival times are dropped only when a redraw asks for the frame rate; until then
    (a burst, a view not drawn) at most 2**17 are kept, so a flood of tiny frames cannot
    grow them without end. The rate then reads as that bound."""
    view = SpikeView("s", 1.0, 10, rows=4, max_pending=2**20)
    frame = spike_frame(header("s", 0, 0), np.ones((10, 2), np.bool_))
    for _ in range(2**17 + 1000):
        view.add(frame, 0.0)
    assert view.frames == 2**17 + 1000
    assert view.fps(0.5) == 2**17 / 0.5
