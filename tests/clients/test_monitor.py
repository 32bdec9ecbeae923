"""``spikestream monitor``: the aggregation model (pure), its speed, and the live tool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import math
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt
import numpy as np
import pytest
from rich.console import Console

from spikestream_client import SpikestreamClient
from spikestream_client.codec import decode_event, decode_frame
from spikestream_client.errors import ConfigError
from spikestream_client.monitor import aggregate
from spikestream_client.monitor.aggregate import (
    MAX_EVENT_KINDS,
    MAX_INPUTS,
    MAX_PROBES,
    InputSnapshot,
    MonitorModel,
)
from spikestream_client.monitor.rings import SpikeView
from spikestream_client.monitor.session import (
    MonitorOptions,
    check_options,
    open_session,
    refresh_model,
)
from spikestream_client.monitor.terminal import auto_bins, render, sparkline
from spikestream_client.monitor.web import snapshot_json
from tests.brokers import Mosquitto, free_port
from tests.clients.conftest import SeedService, run_cli, wait_online
from tests.clients.frames import (
    INPUT_STATS,
    header,
    hostile_model,
    regular_spikes,
    spike_frame,
    spike_payload,
    value_frame,
    value_payload,
)
from tests.serving import SEED, ServeProcess


def feed_spikes(
    model: MonitorModel, seqs: range | list[int], n: int = 10, period: int = 10
) -> None:
    """Frames of 10 ticks; neuron i spikes every ``period`` ticks (rate 1/(period dt))."""
    for seq in seqs:
        tick = 10 * seq
        model.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, n, period)))


def test_spike_rates_raster_and_coverage() -> None:
    model = MonitorModel("fake", window=1.0, bins=20, raster_rows=4)
    feed_spikes(model, range(200))  # 2 s of 100 Hz neurons; the window keeps the last 1 s
    snap = model.snapshot()
    (probe,) = snap.probes
    assert (probe.name, probe.kind, probe.size) == ("s", "spikes", 10)
    assert probe.rate == pytest.approx(100.0)
    assert probe.rates.shape == (20,)  # 50-tick bins: 5 spikes per neuron in each
    np.testing.assert_allclose(probe.rates, 100.0)
    assert probe.raster.shape == (4, 20)
    np.testing.assert_allclose(probe.raster, 100.0)
    assert probe.covered == 1.0
    assert (probe.gaps, probe.missing, snap.service.gaps) == (0, 0, 0)
    assert probe.tick == 2000
    assert probe.t == pytest.approx(2.0)


def test_lost_frames_are_gaps_and_do_not_bias_the_rate() -> None:
    model = MonitorModel("fake", window=1.0, bins=20)
    feed_spikes(model, [s for s in range(100) if s not in (50, 51, 52, 53, 54)])
    (probe,) = model.snapshot().probes
    assert (probe.gaps, probe.missing) == (1, 5)
    assert probe.covered == pytest.approx(0.95)
    assert probe.rate == pytest.approx(100.0)  # normalised by the ticks that have data
    assert np.isnan(probe.rates[10])  # ticks 500..549 form bin 10: no data at all
    assert np.isnan(probe.raster[:, 10]).all()
    assert sparkline(probe.rates)[10] == "·"
    gap = model.recent_gaps[-1]
    assert (gap.expected, gap.got) == (50, 55)


def test_values_latest_range_and_trace() -> None:
    model = MonitorModel("fake", window=1.0, bins=10)
    for seq in range(100):
        ticks = np.arange(10 * seq, 10 * seq + 10)
        values = np.stack([np.sin(ticks / 100.0), np.full(10, 2.0), np.zeros(10)], axis=1)
        model.on_frame(value_frame(header("v", seq, 10 * seq), values))
    (probe,) = model.snapshot().probes
    assert (probe.kind, probe.size) == ("values", (3,))
    np.testing.assert_allclose(probe.latest, [np.sin(9.99), 2.0, 0.0], atol=1e-6)
    assert probe.low == pytest.approx(np.sin(np.arange(1000) / 100.0).min(), abs=1e-6)
    assert probe.high == pytest.approx(2.0)
    expected = np.sin(np.arange(1000) / 100.0).reshape(10, 100).mean(axis=1)
    np.testing.assert_allclose(probe.trace, expected, atol=1e-5)


def test_a_reset_starts_the_window_afresh() -> None:
    model = MonitorModel("fake", window=1.0, bins=10)
    feed_spikes(model, range(300), period=10)  # ticks up to 3000
    model.snapshot()
    for seq in range(300, 320):  # the service was reset: ticks restart at 0, seq goes on
        tick = 10 * (seq - 300)
        model.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 10, 5)))
    (probe,) = model.snapshot().probes
    assert probe.tick == 200
    assert probe.covered == pytest.approx(0.2)
    assert probe.rate == pytest.approx(200.0)  # only the new ticks count
    assert probe.gaps == 0


def test_stats_status_events_render() -> None:
    model = MonitorModel("fake")
    feed_spikes(model, range(20))
    model.on_status("online")
    model.connected = True
    stats = {"tick": 1234, "t": 1.234, "realtime_factor_actual": 0.998, "late_p99_ms": 0.5}
    model.on_stats(stats | {"late_max_ms": 2.0, "overruns": 1, "dropped": 3})
    model.on_event({"event": "input_rejected", "input": "u", "error": "bad value"})
    console = Console(width=180, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    text = console.export_text()
    assert "● online" in text
    assert "RTF 0.998" in text
    assert "late p99 0.50 ms" in text
    assert "input_rejected×1" in text
    assert re.search(r"│ s\s+│\s+10 │\s+100\.0 │", text), text
    assert "1s: RTF -  late p99 - ms" in text  # no windows in these stats: shown as unknown
    assert "CONTENDED" not in text


@pytest.mark.parametrize(("flag", "shown"), [(True, True), (False, False), ("yes", False)])
def test_cpu_contention_is_flagged_only_when_the_service_says_so(flag: object, shown: bool) -> None:
    """``spin_contended`` true (and only the JSON true) shows beside the service line."""
    model = MonitorModel("fake")
    model.on_stats({"tick": 5, "late_p99_ms": 2.5, "spin_contended": flag})
    console = Console(width=180, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    assert ("CPU CONTENDED" in console.export_text()) is shown


@pytest.mark.parametrize(
    ("behind", "shown"),
    [
        (12.5, "BEHIND 12.500 ms"),
        (0.0005, "BEHIND 0.001 ms"),
        (0.0004, None),
        (0.0, None),
        (-3.0, None),
        (True, None),
        (math.nan, None),
        (math.inf, None),
        ("12", None),
        ([1], None),
    ],
)
def test_schedule_lost_is_shown_only_when_the_service_reports_some(
    behind: object, shown: str | None
) -> None:
    """``behind_ms`` above 0 (a number: it comes from the bus) shows beside the service
    line: simulated time the catch-up policy gave up on."""
    model = MonitorModel("fake")
    model.on_stats({"tick": 5, "realtime_factor_actual": 0.9998, "behind_ms": behind})
    console = Console(width=180, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    text = console.export_text()
    if shown is None:
        assert "BEHIND" not in text
    else:
        assert shown in text


def test_recent_windows_render_beside_the_since_start_figures() -> None:
    model = MonitorModel("fake")
    recent = {"realtime_factor_actual": 0.5, "late_p99_ms": 4.25, "late_max_ms": 9.0}
    recent |= {"work_p99_ms": 0.825, "cpu_steal_pct": 7.25}
    model.on_stats(
        {"realtime_factor_actual": 0.999, "late_p99_ms": 0.05}
        | {"window_1s": recent | {"late_over_1ms_pct": 12.5}, "window_10s": [1, 2]}
    )
    console = Console(width=220, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    text = console.export_text()
    assert "RTF 0.999  late p99 0.05 ms" in text  # since start
    assert (
        "1s: RTF 0.500  late p99 4.25 ms  max 9.00 ms  > 1 ms 12.500 %  work p99 0.825 ms  "
        "steal 7.2 %"
    ) in text
    assert "10s: RTF -  late p99 - ms  max - ms  > 1 ms - %  work p99 - ms  steal - %" in text


def _input_rows(text: str) -> dict[str, list[str]]:
    """The rows of the inputs table: name -> [age ms, state]."""
    _, _, table = text.partition("inputs (latest stats)")
    assert table, text
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 5 and cells[1] != "input":
            rows[cells[1]] = cells[2:4]
    return rows


def test_inputs_show_age_and_stale_state() -> None:
    model = MonitorModel("fake")
    feed_spikes(model, range(5))
    model.on_stats(decode_event(INPUT_STATS))
    assert model.snapshot().inputs[-1] == InputSnapshot("u", 12.5, False)
    plain = Console(width=120, file=io.StringIO(), color_system=None, force_terminal=False)
    plain.print(render(model.snapshot(), "mqtt://broker:1883"))
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    assert _input_rows(out) == {
        "p[bold red]boom[/]": ["-", "-"],  # escapes stripped, markup shown as typed
        "bare": ["-", "-"],
        "late": ["2500.0", "STALE"],
        "odd": ["-", "-"],
        "quiet": ["-", "STALE"],
        "u": ["12.5", "fresh"],
    }
    assert "pwned" not in out
    assert "\x1b" not in out
    assert "\x07" not in out
    # Below the probe tables, so a probe row is still found first by its name.
    assert out.index("spike probes") < out.index("inputs (latest stats)")
    colour = Console(width=120, file=io.StringIO(), color_system="standard", force_terminal=True)
    colour.print(render(model.snapshot()))
    styled = colour.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[1;31mSTALE" in styled  # the marker is bold red
    assert "\x1b" not in re.sub(r"\x1b\[[0-9;]*m", "", styled)


@pytest.mark.parametrize("inputs", ["[1, 2]", '"u"', "null", "1" + "0" * 400, '{"u": [1]}'])
def test_inputs_of_the_wrong_shape_never_break_the_view(inputs: str) -> None:
    model = MonitorModel("fake")
    model.on_stats(
        decode_event(b'{"v": 1, "event": "stats", "wall": 1, "inputs": %s}' % inputs.encode())
    )
    plain = Console(width=120, file=io.StringIO(), color_system=None)
    plain.print(render(model.snapshot()))
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    if inputs.startswith("{"):
        assert _input_rows(out) == {"u": ["-", "-"]}
    else:
        assert "inputs (latest stats)" not in out
        assert model.snapshot().inputs == ()


def test_inputs_shown_are_bounded() -> None:
    """The stats' inputs map comes from the bus: the view lists MAX_INPUTS of them, the
    first by name, and says how many more there are."""
    model = MonitorModel("fake")
    names = [f"in{k:05d}" for k in range(MAX_INPUTS + 1000)]
    model.on_stats({"inputs": {n: {"age_ms": 1.0, "stale_now": False} for n in reversed(names)}})
    snap = model.snapshot()
    assert [i.name for i in snap.inputs] == names[:MAX_INPUTS]
    assert snap.inputs_hidden == 1000
    plain = Console(width=120, file=io.StringIO(), color_system=None)
    plain.print(render(snap))
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    assert len(_input_rows(out)) == MAX_INPUTS
    assert "1000 more inputs not shown" in out


@pytest.mark.parametrize("width", [100, 120, 140, 180])
def test_the_seed_view_fits_its_terminal_without_cutting_numbers(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's five probes at 100-180 columns: every column keeps its heading and no
    number is wrapped or cut in the middle of its digits (at 120 columns the ``n`` column
    used to vanish and the latest values wrapped mid-digit).

    The frames arrive as a live seed's would (one per probe every 10 ms of both clocks,
    the view drawn 50 ms after the last), so the rates and the lag shown are the live
    ones: read off the real clocks, they depended on how fast this test ran (a 4-digit
    frame rate on a fast machine) and on today's date (a lag of 10**11 ms)."""
    clock = [0.0]
    monkeypatch.setattr(aggregate, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    rng = np.random.default_rng(3)
    model = MonitorModel("seed", bins=auto_bins(width), clock=lambda: 1.7e9 + clock[0])
    latest: dict[str, np.ndarray] = {}
    for seq in range(100):
        clock[0] = (seq + 1) * 0.010  # the frame's wall time in tests.clients.frames.header
        for probe, n in (("a_spikes", 50), ("b_spikes", 40)):
            spikes = rng.random((10, n)) < 0.2
            model.on_frame(spike_frame(header(probe, seq, 10 * seq, net="seed"), spikes))
        for probe, n in (("a_filtered", 50), ("b_filtered", 40), ("u", 1)):
            values = rng.random((10, n)) * 400 - 100
            latest[probe] = values[-1]
            model.on_frame(value_frame(header(probe, seq, 10 * seq, net="seed"), values))
    clock[0] += 0.050
    console = Console(width=width, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://127.0.0.1:1883"))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    if width >= 120:
        for heading in ("┃ probe", "┃  n ┃", "rate Hz", "fps", "gaps/miss", "dropped", "lag ms"):
            assert heading in text, f"{heading!r} cut at {width} columns:\n{text}"
        for probe in ("a_spikes", "b_spikes"):
            assert re.search(rf"│ {probe}\s+│\s+(50|40) │", text), text
        for probe, values in latest.items():
            for v in values[:4]:
                assert re.search(rf"(?<![\d.]){re.escape(f'{v:+.3f}')}(?![\d])", text), (
                    f"{probe}: {v:+.3f} not shown whole at {width} columns:\n{text}"
                )


def test_described_probes_are_listed_before_their_first_frame() -> None:
    """Probes from the describe document show (with no data yet) before any frame; a
    ``--probe`` filter still applies."""
    model = MonitorModel("fake", probes={"quiet", "s"})
    model.expect({"quiet": "values", "s": "spikes", "other": "spikes"})
    feed_spikes(model, range(5))
    console = Console(width=180, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    text = console.export_text()
    assert re.search(r"│ quiet\s+│", text), text
    assert re.search(r"│ s\s+│\s+10 │", text), text
    assert "other" not in text


def test_ingest_counts_every_frame_of_five_probes() -> None:
    """Five probes at one tick per frame, interleaved as the bus delivers them, with
    redraws in between: every frame is counted and every tick covered. (How fast this
    ingest runs is a benchmark figure: ``bench/monitor.py``.)"""
    rng = np.random.default_rng(0)
    payloads = []
    for k in range(1000):
        for probe in ("a", "b"):
            spikes = rng.random((1, 200)) < 0.05
            payloads.append(spike_payload(header(probe, k, k, ticks=1, net="x"), spikes))
        for probe, width in (("fa", 200), ("fb", 100), ("u", 1)):
            values = rng.random((1, width))
            payloads.append(value_payload(header(probe, k, k, ticks=1, net="x"), values))
    model = MonitorModel("x")
    console = Console(width=180, file=io.StringIO(), color_system=None)
    for i, payload in enumerate(payloads):
        model.on_frame(decode_frame(payload))
        if i % 500 == 499:
            console.print(render(model.snapshot()))
    snap = model.snapshot()
    assert [p.frames for p in snap.probes] == [1000] * 5
    assert all(p.covered == 1.0 for p in snap.probes)
    assert all(p.gaps == 0 and p.missing == 0 for p in snap.probes)


# ----------------------------------------------------------------------------- the tool


def _row(text: str, probe: str) -> list[str]:
    """The cells of ``probe``'s first table row."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == probe:
            return cells[1:-1]
    raise AssertionError(f"no row for {probe!r} in:\n{text}")


@pytest.mark.broker
async def test_monitor_shows_probes_rates_and_status(seed_service: SeedService) -> None:
    done = await asyncio.to_thread(
        run_cli, "monitor", "--broker", seed_service.url, "--net", "seed", "--duration", "3"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "● online" in out
    assert "link connected" in out
    # The figures' forms, not their values: a loaded machine (a suite beside other work)
    # runs the service below real time, and speed is the benchmarks' business.
    assert re.search(r"service\s+tick \d+ .*RTF [01]\.\d{3} .*late p99 [\d.]+ ms", out), out
    assert re.search(r"recent\s+1s: RTF [01]\.\d{3}  late p99 [\d.]+ ms", out), out
    assert re.search(r"recent\s+1s: .* work p99 \d+\.\d{3} ms", out), out
    assert re.search(r"frames\s+RTF [01]\.\d{3} .*gaps 0 \(0 frames missing\)", out), out
    for probe in ("a_spikes", "b_spikes"):
        cells = _row(out, probe)
        assert cells[1] in ("50", "40")
        assert float(cells[2]) > 10.0, cells  # mean rate, Hz
        # 100 frames/s at real time (10 ticks per frame); a tenfold slip is a bug.
        assert 50 <= float(cells[5]) <= 120, cells
        assert cells[6] == "0/0"
    for probe in ("a_filtered", "b_filtered", "u"):
        cells = _row(out, probe)
        assert 50 <= float(cells[5]) <= 120, cells


@pytest.mark.broker
async def test_monitor_once_prints_a_single_view(seed_service: SeedService) -> None:
    done = await asyncio.to_thread(
        run_cli, "monitor", "--broker", seed_service.url, "--net", "seed", "--once",
        "--probe", "u", "--probe", "b_spikes", "--window", "0.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("● online") == 1
    # Piped, the view is 180 columns wide (COLUMNS says 200): the recent line wraps there.
    assert max(len(line) for line in done.stdout.splitlines()) == 180, done.stdout
    assert float(_row(done.stdout, "b_spikes")[2]) > 10.0
    assert "a_spikes" not in done.stdout
    assert _row(done.stdout, "u")[1] == "(1,)"


@pytest.mark.broker
async def test_monitor_once_shows_each_inputs_age(seed_service: SeedService) -> None:
    """End to end: while ``u`` is fed every 50 ms, ``monitor --once`` waits for a stats
    message and lists ``u`` as fresh with an age in milliseconds. (0.0 is ``u``'s
    default, so the shared service's network behaves as before.)"""
    async with SpikestreamClient(seed_service.url) as client:

        async def feed() -> None:
            while True:
                await client.publish_input("seed", "u", 0.0)
                await asyncio.sleep(0.05)

        task = asyncio.create_task(feed())
        try:
            await asyncio.sleep(0.2)
            done = await asyncio.to_thread(
                run_cli, "monitor", "--broker", seed_service.url, "--net", "seed", "--once",
                "--probe", "u", "--window", "0.5",
            )  # fmt: skip
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert done.returncode == 0, done.stderr
    rows = _input_rows(done.stdout)
    assert list(rows) == ["u"], done.stdout
    age, state = rows["u"]
    print(f"monitor --once: input u age {age} ms, {state}")
    # Sent every 50 ms; the age is read when the service assembles the stats. The bound
    # is loose for a loaded machine, yet far below a value from an earlier test.
    assert 0.0 <= float(age) < 1000.0, done.stdout
    assert state == "fresh", done.stdout


@pytest.mark.broker
@pytest.mark.slow
async def test_monitor_counts_every_frame_at_1000_frames_per_second_per_probe(
    mosquitto: Mosquitto, tmp_path: Path, seed_service: SeedService
) -> None:
    """One tick per frame: 5 probes x 1000 frames/s. The display coalesces, so every
    frame is counted (fps ~1000 per probe, no gaps) and the view stays current (lag).

    The service, mosquitto and the monitor need most of this 2-core machine, so the
    shared seed service (which spins its tick thread) is paused meanwhile."""
    serve = ServeProcess(SEED, mosquitto.url(), "--ticks-per-frame", "1", workdir=tmp_path)
    serve.start()
    shared = SpikestreamClient(seed_service.url)
    await shared.start()
    await shared.pause("seed")
    try:
        await wait_online(mosquitto.url(), "seed", serve)
        started = time.monotonic()
        done = await asyncio.to_thread(
            run_cli, "monitor", "--broker", mosquitto.url(), "--net", "seed", "--duration", "3"
        )
        took = time.monotonic() - started
    finally:
        serve.stop()
        await shared.resume("seed")
        await shared.close()
    assert done.returncode == 0, done.stderr
    print(f"monitor ran {took:.1f} s for a 3 s window")
    for probe in ("a_spikes", "b_spikes", "a_filtered", "b_filtered", "u"):
        cells = _row(done.stdout, probe)
        fps, gaps, lag_ms = float(cells[-5]), cells[-4], float(cells[-1])
        # Frame rate and lag are timing figures of this machine (bench/monitor.py measures
        # them); what must hold everywhere is that frames arrive and none is lost.
        print(f"{probe}: {fps} frames/s, lag {lag_ms} ms")
        assert fps > 0, f"{probe}: no frames\n{done.stdout}"
        assert gaps == "0/0", f"{probe}: gaps {gaps}\n{done.stdout}"
    assert not math.isnan(float(_row(done.stdout, "a_spikes")[2]))


# ----------------------------------------------------------------- hostile strings


def test_terminal_view_strips_escapes_and_shows_markup_literally() -> None:
    model = hostile_model()
    plain = Console(width=250, file=io.StringIO(), color_system=None, force_terminal=False)
    plain.print(render(model.snapshot(), "mqtt://b\x1b[2J"))
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out, (raw, out)
    # rich did not interpret the brackets: they are shown as typed.
    for literal in (
        "p[bold red]boom[/]",  # the probe name, minus its escape sequences
        "│ [u] ",  # 8-bit CSI (0x9b 2 J) removed whole
        "[blink]up[/blink]",
        "[bold]kind[/bold]",
        "[red]why[/red]",
        "tick [i]7[/i]",
    ):
        assert literal in out, (literal, out)
    assert "status-title" not in out  # an OSC string is removed with its payload
    # Stats of the wrong type or out of range show as "-", never a TypeError.
    assert "t - s  RTF -  late p99 - ms" in out

    # With colours on, the only escape sequences are rich's own SGR styles: no title
    # change (OSC), no screen clear or cursor move (other CSI), no bell.
    colour = Console(width=250, file=io.StringIO(), color_system="standard", force_terminal=True)
    colour.print(render(model.snapshot(), "broker"))
    styled = colour.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in styled  # the console really is emitting colour
    residue = re.sub(r"\x1b\[[0-9;]*m", "", styled)
    assert "\x1b" not in residue
    assert "\x07" not in residue


def test_invented_probe_names_and_event_kinds_are_bounded() -> None:
    """Anyone who may publish on out/+ or events could invent names forever; the model
    keeps MAX_PROBES views and MAX_EVENT_KINDS counters and counts the rest."""
    model = MonitorModel("fake", window=0.1, bins=4)
    spikes = regular_spikes(0, 10, 2, 5)
    for k in range(MAX_PROBES + 50):
        model.on_frame(spike_frame(header(f"p{k}", 0, 0), spikes))
    assert len(model.views) == MAX_PROBES
    assert model.frames == MAX_PROBES
    assert model.ignored_frames == 50
    model.on_frame(spike_frame(header("p0", 1, 10), spikes))  # known probes go on
    assert model.frames == MAX_PROBES + 1
    for k in range(MAX_EVENT_KINDS + 30):
        model.on_event({"event": f"kind{k}"})
    assert len(model.events) == MAX_EVENT_KINDS + 1
    assert model.events["other"] == 30
    assert sum(model.events.values()) == MAX_EVENT_KINDS + 30


def test_event_kinds_longer_than_shown_are_counted_as_other_not_merged() -> None:
    """Two kinds that share their first 200 characters are not counted as one kind."""
    model = MonitorModel("fake")
    for tail in ("a", "b", "b"):
        model.on_event({"event": "k" * 200 + tail})
    model.on_event({"event": "k" * 200})
    assert model.events == {"other": 3, "k" * 200: 1}


# A JSON integer of 400 digits: no float holds it, so float() and math.isfinite() raise
# OverflowError on it.
HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, 2.5),
        (7, 7.0),
        (10**400, None),
        (-(10**400), None),
        (math.inf, None),
        (math.nan, None),
        (True, None),
        ("3", None),
        (None, None),
    ],
)
def test_finite_float_never_raises(value: object, expected: float | None) -> None:
    assert aggregate.finite_float(value) == expected


def test_stats_numbers_no_float_holds_show_as_dashes_not_a_traceback() -> None:
    """One stats message with 400-digit integers used to end the terminal monitor with
    an OverflowError in render(); every number from the stats now goes through one
    conversion that cannot raise, in the model, the terminal view and the web summary."""
    stats = (
        '{"v": 1, "event": "stats", "wall": 1, "tick": 5, "t": H, '
        '"realtime_factor_actual": H, "late_p99_ms": H, "late_max_ms": H, "behind_ms": H, '
        '"window_1s": {"late_p99_ms": H, "realtime_factor_actual": H}, '
        '"inputs": {"u": {"age_ms": H, "stale_now": false}, "v": {"age_ms": -H}}}'
    ).replace("H", HUGE)
    model = MonitorModel("fake")
    model.on_stats(decode_event(stats.encode()))
    assert model.inputs == (InputSnapshot("u", None, False), InputSnapshot("v", None, None))
    console = Console(width=250, file=io.StringIO(), color_system=None, force_terminal=False)
    console.print(render(model.snapshot(), "broker"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "tick 5  t - s  RTF -  late p99 - ms  max - ms" in out
    assert "1s: RTF -  late p99 - ms" in out
    assert "BEHIND" not in out
    assert re.search(r"│ u\s+│\s+- │ fresh", out), out
    summary = snapshot_json(model.snapshot())
    json.dumps(summary, allow_nan=False)  # what the bridge sends: no Infinity
    shown = summary["service"]["stats"]
    assert (shown["t"], shown["behind_ms"], shown["window_1s_late_p99_ms"]) == (None,) * 3
    assert shown["tick"] == 5
    assert summary["inputs"][0] == {"name": "u", "age_ms": None, "stale": False}


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("width", 0, "--width must be in 40..1000 columns, got 0"),
        ("width", -5, "--width must be in 40..1000 columns, got -5"),
        ("width", 39, "--width must be in 40..1000 columns, got 39"),
        ("width", 1001, "--width must be in 40..1000 columns, got 1001"),
        ("refresh", 1e9, "--refresh must be in 0.1..60 redraws per second, got 1000000000.0"),
        ("refresh", 1e-9, "--refresh must be in 0.1..60 redraws per second, got 1e-09"),
        ("refresh", math.nan, "--refresh must be in 0.1..60 redraws per second, got nan"),
        ("window", 0.0, "--window must be a number > 0, got 0.0"),
        ("window", math.inf, "--window must be a number > 0, got inf"),
        ("bins", 3, "--bins must be in 4..400, got 3"),
        ("bins", 401, "--bins must be in 4..400, got 401"),
        ("raster_rows", 0, "--raster-rows must be in 1..64, got 0"),
        ("raster_rows", 65, "--raster-rows must be in 1..64, got 65"),
        ("duration", -1.0, "--duration must be > 0 seconds, got -1.0"),
        ("duration", 0.0, "--duration must be > 0 seconds, got 0.0"),
        ("duration", math.nan, "--duration must be > 0 seconds, got nan"),
    ],
)
def test_options_no_view_can_use_are_refused_naming_the_flag(
    option: str, value: float, expected: str
) -> None:
    """``--width 0`` drew nothing and exited 0; ``--refresh 1e9`` kept a core busy."""
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        check_options(MonitorOptions("seed", **{option: value}))


@pytest.mark.parametrize(
    ("option", "value"), [("width", 40), ("width", 1000), ("refresh", 0.1), ("refresh", 60.0)]
)
def test_options_at_their_bounds_are_taken(option: str, value: float) -> None:
    check_options(MonitorOptions("seed", **{option: value}))


def test_restarts_late_max_and_recent_lists_are_kept_per_their_bounds() -> None:
    """A probe's restarts are shown per probe; the service's worst ``late_max`` is the
    worst over every probe (not the last one drawn); the recent gaps (20) and events
    (5) are the newest ones; an input whose value is 0 ms old has an age."""
    model = MonitorModel("fake", window=1.0, bins=10)
    ones = np.ones((10, 2), bool)
    model.on_frame(spike_frame(header("a", 0, 0, late_max=0.5), ones))
    model.on_frame(spike_frame(header("b", 0, 0), ones))
    for i in range(1, 23):  # 22 forward jumps of probe b
        model.on_frame(spike_frame(header("b", 2 * i, 10 * i), ones))
    model.on_frame(spike_frame(header("b", 0, 0), ones))  # b's service restarted
    for i in range(7):
        model.on_event({"event": f"e{i}"})
    model.on_stats({"inputs": {"u": {"age_ms": 0, "stale_now": False}}})
    snap = model.snapshot()
    probes = {p.name: p for p in snap.probes}
    assert (probes["a"].restarts, probes["b"].restarts) == (0, 1)
    assert snap.service.late_max_frames == 0.5
    assert len(snap.recent_gaps) == 20
    assert snap.recent_gaps[-1].kind == "restart"
    assert [e["event"] for e in snap.service.last_events] == [f"e{i}" for i in range(2, 7)]
    assert snap.inputs[0].age_ms == 0.0


def test_the_frame_rate_comes_from_the_probe_heard_from_last() -> None:
    """The real-time factor from frames is the newest probe's (by its last frame's wall
    time): a probe whose frames stopped coming must not speak for the service."""
    model = MonitorModel("fake", window=1.0, bins=10)
    for i in range(6):  # probe a: 0.5 s simulated in 0.5 s of wall time, then silent
        h = header("a", i, 100 * i, ticks=100)
        earlier = dataclasses.replace(h, wall=1.7e9 + 0.1 * i)
        model.on_frame(spike_frame(earlier, np.ones((100, 2), bool)))
    for i in range(6):  # probe b, later: 0.25 s simulated in 0.5 s of wall time
        h = header("b", i, 50 * i, ticks=50)
        later = dataclasses.replace(h, wall=1.7e9 + 10 + 0.1 * i)
        model.on_frame(spike_frame(later, np.ones((50, 2), bool)))
    assert model.snapshot().service.rtf_frames == pytest.approx(0.5)


def test_a_probe_whose_summary_fails_starts_afresh_and_the_rest_are_drawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe that cannot be summarised is counted, left out of that one redraw and its
    window started afresh (its view is the only state the failure can have spoiled); the
    other probes are drawn, and the next redraw draws it again."""
    model = MonitorModel("fake", window=1.0, bins=10)
    ones = np.ones((10, 2), bool)
    model.on_frame(spike_frame(header("a", 0, 0), ones))
    model.on_frame(spike_frame(header("b", 0, 0), ones))
    spoiled = model.views["a"]
    real = model._probe_snapshot

    def failing_once(name: str, now: float, mono: float) -> Any:
        if model.views[name] is spoiled:
            raise ValueError("a combination of frames nobody foresaw")
        return real(name, now, mono)

    monkeypatch.setattr(model, "_probe_snapshot", failing_once)
    first = model.snapshot()
    assert [p.name for p in first.probes] == ["b"]
    assert model.failed_snapshots == 1
    assert model.views["a"] is not spoiled  # rebuilt
    assert [p.name for p in model.snapshot().probes] == ["a", "b"]
    assert model.failed_snapshots == 1


def test_the_frame_rate_spans_about_two_seconds_drawn_frame_by_frame() -> None:
    """Redrawn after every frame (one frame per fold, the usual case at 10 Hz), the
    real-time factor is taken over about the last 2 s of wall time: 1.5 s at real time
    then 0.5 s at twice real time give 2.49 s simulated in 1.99 s, not the last burst's
    2.0, and not NaN from a history that holds only the newest frame."""
    model = MonitorModel("fake", window=1.0, bins=10)
    wall = 0.0
    ones = np.ones((10, 2), bool)
    for seq in range(250):
        wall += 0.01 if seq < 150 else 0.005
        h = header("s", seq, 10 * seq)
        model.on_frame(spike_frame(dataclasses.replace(h, wall=1.7e9 + wall), ones))
        model.snapshot()
    assert model.snapshot().service.rtf_frames == pytest.approx(2.49 / 1.99, rel=1e-3)


def test_a_frame_delivered_twice_does_not_start_the_window_afresh() -> None:
    """MQTT at QoS 1 may deliver a frame twice. Its ticks do not go back past the frame
    before it, so it is no reset: the window keeps the second of data it holds rather
    than starting over from the duplicate's 10 ticks."""
    model = MonitorModel("fake", window=1.0, bins=10)
    feed_spikes(model, range(100))
    model.snapshot()
    feed_spikes(model, [99])  # the last frame again
    (probe,) = model.snapshot().probes
    assert probe.covered == 1.0
    assert probe.tick == 1000
    assert model.views["s"].allocations == 1


def test_known_event_kinds_are_still_counted_by_name_once_the_kinds_are_full() -> None:
    """Only new kinds past MAX_EVENT_KINDS are lumped as ``other``: a kind counted
    before the table filled (``reset``, ``error``) keeps its own count afterwards."""
    model = MonitorModel("fake")
    for k in range(MAX_EVENT_KINDS):
        model.on_event({"event": f"kind{k}"})
    model.on_event({"event": "kind0"})
    model.on_event({"event": "new"})
    assert model.events["kind0"] == 2
    assert model.events["other"] == 1


def test_a_negative_input_age_is_not_shown() -> None:
    """An age below 0 ms is no age a service can report (the stats come from the bus):
    it shows as unknown, like any other non-age, not as a negative number."""
    inputs, hidden = aggregate.input_freshness(
        {"inputs": {"a": {"age_ms": -5.0, "stale_now": False}, "b": {"age_ms": 0}}}
    )
    assert inputs == (InputSnapshot("a", None, False), InputSnapshot("b", 0.0, None))
    assert hidden == 0


def test_redrawn_every_frame_across_the_wrap_the_ring_holds_each_tick_once() -> None:
    """Redrawn after every frame for 2 s of a 1 s window, the ring wraps: the slot of the
    tick where the new frame starts must be cleared before it is counted again (else the
    count of the tick one window earlier stays in it), and ticks lost in a gap past the
    wrap must not keep the covered flag of the tick they replace."""
    model = MonitorModel("fake", window=1.0, bins=20)
    for seq in range(200):
        if 150 <= seq < 155:
            continue  # ticks 1500..1549 lost
        feed_spikes(model, [seq])
        model.snapshot()
    (probe,) = model.snapshot().probes
    assert probe.covered == pytest.approx(0.95)
    assert probe.rate == pytest.approx(100.0)
    good = np.arange(20) != 10  # bin 10 holds ticks 1500..1549
    np.testing.assert_allclose(probe.rates[good], 100.0)
    assert np.isnan(probe.rates[10])


def test_a_new_population_size_gets_a_ring_of_its_own_rows() -> None:
    """n going from 2 to 8 neurons (another network behind the same probe name) changes
    the raster from 2 rows to 4: the ring is set up for 4 rows, its old bytes go back
    to the budget, and the new rates are right, not a failed summary."""
    model = MonitorModel("fake", window=1.0, bins=10, raster_rows=4)
    model.on_frame(spike_frame(header("s", 0, 0), regular_spikes(0, 10, 2, 10)))
    model.snapshot()
    for seq in range(1, 101):
        tick = 10 * seq
        model.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 8, 10)))
    (probe,) = model.snapshot().probes
    view = model.views["s"]
    assert isinstance(view, SpikeView)
    assert model.failed_snapshots == 0
    assert probe.size == 8
    assert probe.raster.shape == (4, 10)
    np.testing.assert_allclose(probe.raster, 100.0)
    assert model.budget.held == view.ring_bytes == view.covered.nbytes + view.counts.nbytes


def test_late_max_before_a_reset_is_forgotten() -> None:
    """The worst lateness shown is that of the frames in the window: after the service
    is reset (ticks start again at 0) the frames before it are no longer shown, and
    neither is their lateness."""
    model = MonitorModel("fake", window=1.0, bins=10)
    for seq in range(100):
        h = header("s", seq, 10 * seq, late_max=0.5)
        model.on_frame(spike_frame(h, regular_spikes(10 * seq, 10, 4, 10)))
    model.snapshot()
    for seq in range(100, 110):
        tick = 10 * (seq - 100)
        model.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 4, 10)))
    snap = model.snapshot()
    assert snap.probes[0].late_max == 0.0
    assert snap.service.late_max_frames == 0.0


def test_the_service_drop_counter_sums_every_probe() -> None:
    """The service's drops are counted per probe (each frame carries its probe's
    counter); the service line shows their sum over the probes."""
    model = MonitorModel("fake", window=1.0, bins=10)
    ones = np.ones((10, 2), bool)
    model.on_frame(spike_frame(header("a", 0, 0, dropped=3), ones))
    model.on_frame(value_frame(header("b", 0, 0, dropped=4), np.ones((10, 1))))
    snap = model.snapshot()
    assert {p.name: p.dropped for p in snap.probes} == {"a": 3, "b": 4}
    assert snap.service.dropped == 7


def test_input_names_are_cut_to_200_characters() -> None:
    """Input names come from the bus; a name of any length is kept to its first 200
    characters, so one name cannot make the view or the page any size."""
    inputs, _ = aggregate.input_freshness({"inputs": {"x" * 5000: {"age_ms": 1.0}}})
    assert [i.name for i in inputs] == ["x" * 200]


def test_a_frame_straddling_the_window_start_covers_only_its_rows_inside() -> None:
    """A 150-tick frame of which only the last 50 are in a 100-tick window, then a gap,
    then 20 ticks: the rows before the window must not be marked covered, where they
    would land (modulo the ring) on the ticks of the gap."""
    model = MonitorModel("fake", window=0.1, bins=10)
    model.on_frame(spike_frame(header("s", 0, 0, ticks=150), regular_spikes(0, 150, 4, 10)))
    model.on_frame(spike_frame(header("s", 1, 180, ticks=20), regular_spikes(180, 20, 4, 10)))
    (probe,) = model.snapshot().probes
    assert probe.covered == pytest.approx(0.7)  # ticks 100..149 and 180..199
    assert np.isnan(probe.rates[5:8]).all()  # ticks 150..179: lost
    assert probe.rate == pytest.approx(100.0)


def test_the_lateness_of_a_frame_just_out_of_the_window_is_not_shown() -> None:
    """A frame whose last tick is the one just before the window no longer counts: its
    late_max goes with it."""
    model = MonitorModel("fake", window=0.1, bins=10)
    ones = np.ones((10, 2), bool)
    model.on_frame(spike_frame(header("s", 0, 0, late_max=0.5), ones))
    assert model.snapshot().probes[0].late_max == 0.5
    for seq in range(1, 11):  # ticks 10..109: the window is 10..109
        model.on_frame(spike_frame(header("s", seq, 10 * seq), ones))
    assert model.snapshot().probes[0].late_max == 0.0


def test_the_frame_rate_per_probe_counts_the_last_second() -> None:
    """Frames per second are those of the last second: 8 per second for 10 s, read at
    the end, are 8 (with the frame at the edge), not the frames of a longer span."""
    view = SpikeView("s", 1.0, 10, rows=4)
    for k in range(81):  # one frame every 0.125 s (exact in binary) from 0 to 10 s
        view.add(spike_frame(header("s", k, 10 * k), np.ones((10, 2), bool)), k * 0.125)
    assert view.fps(10.0) == pytest.approx(9.0)
    # Two frames 10 ms apart are too short a span to give a rate.
    fresh = SpikeView("s", 1.0, 10, rows=4)
    for k in range(2):
        fresh.add(spike_frame(header("s", k, 10 * k), np.ones((10, 2), bool)), 0.01 * k)
    assert math.isnan(fresh.fps(0.01))


def test_only_the_probes_asked_for_are_shown() -> None:
    """``--probe`` narrows the model to those probes: frames of others are not shown,
    counted as frames, nor checked for gaps."""
    model = MonitorModel("fake", window=1.0, bins=10, probes={"a"})
    ones = np.ones((10, 2), bool)
    model.on_frame(spike_frame(header("a", 0, 0), ones))
    model.on_frame(spike_frame(header("b", 0, 0), ones))
    model.on_frame(spike_frame(header("b", 5, 10), ones))
    snap = model.snapshot()
    assert [p.name for p in snap.probes] == ["a"]
    assert (model.frames, snap.service.gaps, snap.ignored_frames) == (1, 0, 0)


def test_a_silent_described_probe_does_not_hide_the_frame_rate() -> None:
    """A probe listed from the describe document but never heard from has no wall time:
    it must not be taken as the newest probe, or the real-time factor of the probes that
    do send stays unknown."""
    model = MonitorModel("fake", window=1.0, bins=10)
    model.expect({"a_silent": "spikes"})
    feed_spikes(model, range(50))  # probe s: 0.5 s simulated in 0.5 s of wall time
    snap = model.snapshot()
    assert snap.service.rtf_frames == pytest.approx(1.0)
    silent = snap.probes[0]
    assert (silent.name, silent.frames, silent.late_max) == ("a_silent", 0, 0.0)
    assert silent.covered == 0.0  # no ring yet: nothing covered, not NaN
    assert snap.service.late_max_frames == 0.0


def test_the_frame_rate_needs_a_fifth_of_a_second_of_frames() -> None:
    """Simulated over wall time between frames 0.1 s apart says little (one late frame
    doubles it): the real-time factor stays unknown until the frames span 0.2 s."""
    model = MonitorModel("fake", window=1.0, bins=10)
    feed_spikes(model, range(10))  # 0.1 s of wall time
    assert math.isnan(model.snapshot().service.rtf_frames)
    feed_spikes(model, range(10, 30))
    assert model.snapshot().service.rtf_frames == pytest.approx(1.0)


def test_fewer_neurons_than_raster_rows_give_one_row_per_neuron() -> None:
    """Two neurons and four raster rows: a row per neuron, not two rows of no neurons
    whose rates would be 0/0."""
    model = MonitorModel("fake", window=1.0, bins=10, raster_rows=4)
    feed_spikes(model, range(100), n=2)
    (probe,) = model.snapshot().probes
    assert probe.raster.shape == (2, 10)
    np.testing.assert_allclose(probe.raster, 100.0)


def test_a_value_gap_after_the_ring_wraps_shows_no_data_not_old_values() -> None:
    """Values of 100 for a second, then values of 1 with 50 ticks lost: the ring slots
    of the lost ticks held the first second's values, which must be cleared, or the
    range and trace would show values a window old as if they were new."""
    model = MonitorModel("fake", window=1.0, bins=20)
    for seq in range(100):
        model.on_frame(value_frame(header("v", seq, 10 * seq), np.full((10, 1), 100.0)))
    model.snapshot()
    for seq in range(100, 200):
        if 150 <= seq < 155:
            continue
        model.on_frame(value_frame(header("v", seq, 10 * seq), np.ones((10, 1))))
    (probe,) = model.snapshot().probes
    assert (probe.low, probe.high) == (1.0, 1.0)
    assert np.isnan(probe.trace[10])
    assert probe.covered == pytest.approx(0.95)


# ------------------------------------------------------------------ mutation audit


@pytest.mark.parametrize(
    ("option", "value"),
    [("bins", 4), ("bins", 400), ("raster_rows", 1), ("raster_rows", 64), ("duration", 0.001)],
)
def test_bins_raster_rows_and_duration_at_their_bounds_are_taken(option: str, value: float) -> None:
    check_options(MonitorOptions("seed", **{option: value}))


async def test_bad_options_are_refused_before_the_broker_is_reached() -> None:
    """``open_session`` checks the flags first: a bad ``--width`` is said as such, not
    as a broker that cannot be reached (nothing listens on the port)."""
    options = MonitorOptions("seed", broker=f"mqtt://127.0.0.1:{free_port()}", width=0)
    expected = "--width must be in 40..1000 columns, got 0"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        async with asyncio.timeout(20), open_session(options, bins=8):
            pass


@pytest.mark.broker
async def test_a_session_feeds_the_model_the_probes_asked_for_and_the_events(
    seed_service: SeedService,
) -> None:
    """``open_session`` lists the probes asked for before their first frame (from the
    describe document; nothing was awaited since it subscribed, so no frame has come),
    and the model hears the network's events: an event published on its topic is
    counted by kind (published until heard: the subscription may still be on its way)."""
    options = MonitorOptions("seed", broker=seed_service.url, probes=["u", "a_spikes"])
    broker = seed_service.broker
    event = json.dumps({"v": 1, "event": "audit_probe", "wall": 1.7e9, "error": "checked"})
    async with open_session(options, bins=8) as (client, model):
        first = model.snapshot().probes
        assert sorted((p.name, p.frames) for p in first) == [("a_spikes", 0), ("u", 0)]
        async with aiomqtt.Client(broker.host, broker.port) as pub, asyncio.timeout(20):
            while "audit_probe" not in model.snapshot().service.events:
                await pub.publish("spikestream/seed/events", event, qos=1)
                await asyncio.sleep(0.2)
        refresh_model(client, model, "seed")
        snap = model.snapshot()
        assert snap.service.connected
        assert sorted(p.name for p in snap.probes) == ["a_spikes", "u"]


def test_sparkline_clamps_values_outside_its_range() -> None:
    """Values below ``low`` show as the lowest bar and above ``high`` as the highest (a
    negative level indexed the bars from their end)."""
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, math.nan])
    assert sparkline(values, low=0.0, high=1.0) == "▁▁▅██·"


def _console_text(model: MonitorModel, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render(model.snapshot(), "broker"))
    return console.export_text()


def test_raster_groups_that_did_not_spike_are_blank() -> None:
    """Only neurons 0 and 1 (the first of four groups) spike: the other groups' rows are
    blank, not the lightest shade (which reads as "a few spikes")."""
    model = MonitorModel("fake", window=1.0, bins=10, raster_rows=4)
    for seq in range(100):
        spikes = np.zeros((10, 8), dtype=bool)
        spikes[:, :2] = True
        model.on_frame(spike_frame(header("s", seq, 10 * seq), spikes))
    text = _console_text(model)
    assert "░" not in text, text
    assert "█" * 10 in text, text
    assert re.search(r"│ {11}│", text), text  # a blank row of 10 bins


def test_offline_status_is_drawn_in_red() -> None:
    console = Console(width=200, file=io.StringIO(), color_system="standard", force_terminal=True)
    model = MonitorModel("fake")
    model.on_status("offline")
    console.print(render(model.snapshot(), "broker"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[1;31m● offline" in out, repr(out)


@pytest.mark.parametrize(("components", "more"), [(4, False), (6, True)])
def test_latest_values_show_the_first_four_and_mark_the_rest(components: int, more: bool) -> None:
    """At most four latest values per probe, then ``…`` if it has more (not for four)."""
    model = MonitorModel("fake", window=1.0, bins=10)
    values = np.tile(np.arange(1.0, components + 1.0), (10, 1))
    model.on_frame(value_frame(header("v", 0, 0), values))
    text = _console_text(model)
    for k in range(1, 5):
        assert f"+{k}.000" in text, text
    assert "+5.000" not in text
    assert ("…" in text) is more, text


def test_bins_fit_the_columns_left_by_the_other_columns() -> None:
    """About 96 columns go to the other columns and borders; two per bin, 8..30 bins."""
    widths = (40, 113, 114, 116, 154, 155, 156, 1000)
    assert [auto_bins(w) for w in widths] == [8, 8, 9, 10, 29, 29, 30, 30]


def test_event_kinds_are_listed_by_name_and_the_last_one_says_its_error() -> None:
    """The counts are sorted by kind; the last event's detail is its error first, then
    its input, then its command."""
    model = MonitorModel("fake")
    model.on_event({"event": "paused", "cmd": "pause"})
    model.on_event({"event": "input_rejected", "input": "u", "error": "bad value"})
    text = _console_text(model)
    assert "input_rejected×1  paused×1  last: input_rejected bad value" in text, text


def test_drops_lateness_and_lag_land_in_their_own_columns() -> None:
    """The service's drop counter is shown as dropped (not the frames missing), and a
    probe's worst lateness and its lag in their own columns."""
    now = 1.7e9 + 100.0
    model = MonitorModel("fake", window=1.0, bins=10, clock=lambda: now)
    h = dataclasses.replace(header("s", 0, 0, dropped=7, late_max=0.003), wall=now - 0.25)
    model.on_frame(spike_frame(h, regular_spikes(0, 10, 4, 5)))
    h = dataclasses.replace(header("s", 3, 30, dropped=7, late_max=0.003), wall=now - 0.25)
    model.on_frame(spike_frame(h, regular_spikes(30, 10, 4, 5)))
    text = _console_text(model)
    assert "gaps 1 (2 frames missing)  dropped 7" in text, text
    cells = _row(text, "s")
    assert cells[6:] == ["1/2", "7", "3.0", "250.0"], cells


def test_a_value_probe_without_data_shows_one_no_data_mark() -> None:
    model = MonitorModel("fake", window=1.0, bins=10)
    model.expect({"v": "values"})
    cells = _row(_console_text(model), "v")
    assert cells[4] == "·", cells


def test_the_view_says_it_waits_until_a_probe_is_known() -> None:
    model = MonitorModel("fake", window=1.0, bins=10)
    assert "waiting for frames…" in _console_text(model)
    feed_spikes(model, range(2))
    assert "waiting for frames…" not in _console_text(model)
