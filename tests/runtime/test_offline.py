"""Offline runs in blocks: streamed files equal in-memory runs, and failures leave nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.runtime.offline import (
    Timings,
    block_ticks_for,
    per_tick_layout,
    run_offline,
    run_to_file,
    ticks_for,
)
from spikestream.spec import load_network, parse_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def every_probe_kind() -> object:
    return parse_network(
        {
            "network": {"seed": 3},
            "populations": {"a": {"n": 60, "dim": 2}, "b": {"n": 30, "dim": 2}},
            "inputs": {"u": {"dim": 2, "target": "a", "signal": "sin"}, "e": {"dim": 2}},
            "connections": [{"pre": "a", "post": "b", "function": "x", "synapse": 0.01}],
            "probes": {
                "sa": {"target": "a", "kind": "spikes"},
                "fa": {"target": "a", "kind": "filtered", "synapse": 0.02},
                "vb": {"target": "b", "kind": "voltage"},
                "yb": {"target": "b", "kind": "decoded", "synapse": 0.01},
                "pu": {"target": "u", "kind": "input"},
            },
        }
    )


@pytest.mark.parametrize("block_bytes", [1, 7_000, 10**9])
def test_streamed_file_equals_the_run_in_memory(tmp_path: Path, block_bytes: int) -> None:
    """One tick per block, several ticks per block (spooled), and one block for the whole
    run: the same arrays as :func:`run_offline`, with resets splitting the run."""
    model = build(every_probe_kind())  # type: ignore[arg-type]
    ticks, resets = 700, [250, 251, 600]
    expected = run_offline(model, ticks, resets=resets)
    out = run_to_file(model, ticks, tmp_path / "run.npz", resets=resets, block_bytes=block_bytes)
    got = np.load(out)
    assert sorted(got.files) == sorted(expected)
    for key, values in expected.items():
        assert got[key].dtype == values.dtype, key
        np.testing.assert_array_equal(got[key], values, err_msg=key)
    assert expected["a.spikes"].sum() > 1000
    np.testing.assert_array_equal(got["sa"], got["a.spikes"])
    assert list(tmp_path.iterdir()) == [out]  # spool files and the partial file are gone


def test_block_size_follows_the_memory_budget() -> None:
    model = build(load_network(SEED))
    layout = per_tick_layout(model)
    per_tick = sum(int(np.prod(s)) * d.itemsize for s, d in layout.values())
    assert block_ticks_for(model, 10**9, per_tick * 100) == 100
    assert block_ticks_for(model, 50, per_tick * 100) == 50
    assert block_ticks_for(model, 10**9, 1) == 1


def test_a_duration_is_rounded_to_the_nearest_tick_and_must_be_positive() -> None:
    """``--duration`` in ticks: 0.7 s / 1 ms is 699.9999999999999 in floats, and is 700
    ticks, not one short; less than half a tick still runs one. A duration of 0 (or less)
    is refused rather than run as one tick."""
    assert ticks_for(0.7, 0.001) == 700
    assert ticks_for(0.0049, 0.001) == 5
    assert ticks_for(0.0001, 0.001) == 1
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="duration must be a number of seconds > 0"):
            ticks_for(bad, 0.001)


def test_offline_inputs_are_sampled_at_the_start_of_each_tick() -> None:
    """The seed's input is sin(t); tick k is fed its value at ``k * dt`` (the start of the
    tick), in every block: the recorded ``u`` of a run is sin(0), sin(dt), ..."""
    model = build(load_network(SEED))
    ticks = 300
    out = run_offline(model, ticks)
    np.testing.assert_array_equal(out["u"][:, 0], np.sin(np.arange(ticks) * model.dt))


@pytest.mark.parametrize("block_bytes", [7_000, 10**9])
def test_a_reset_starts_the_simulator_afresh(tmp_path: Path, block_bytes: int) -> None:
    """A replayed live run's reset puts the simulator back to its start: with the same
    (constant) input, the ticks after a reset at tick 250 are the first ticks of a fresh
    run, in memory and streamed in blocks; without the reset they differ (the neurons are
    not where they started)."""
    model = build(every_probe_kind())  # type: ignore[arg-type]
    ticks, at = 400, 250
    inputs = {"u": np.full((ticks, 2), 0.6), "e": np.zeros((ticks, 2))}
    fresh = run_offline(model, ticks - at, inputs={k: v[at:] for k, v in inputs.items()})
    in_memory = run_offline(model, ticks, inputs=inputs, resets=[at])
    path = run_to_file(
        model, ticks, tmp_path / "run.npz", inputs=inputs, resets=[at], block_bytes=block_bytes
    )
    with np.load(path) as streamed:
        for got in (in_memory, streamed):
            for key in ("a.spikes", "b.spikes", "fa", "vb", "yb"):
                np.testing.assert_array_equal(got[key][at:], fresh[key], err_msg=key)
    assert not np.array_equal(run_offline(model, ticks, inputs=inputs)["vb"][at:], fresh["vb"])


def test_the_spike_counts_cover_every_block(tmp_path: Path) -> None:
    """The counts behind ``run``'s mean rates add up the spikes of every block of a long
    (streamed) run, not only the last block's: they equal the spikes in the file."""
    model = build(every_probe_kind())  # type: ignore[arg-type]
    timings = Timings()
    path = run_to_file(model, 500, tmp_path / "run.npz", block_bytes=7_000, timings=timings)
    assert block_ticks_for(model, 500, 7_000) < 500  # several blocks
    with np.load(path) as got:
        spikes = {pop: int(got[f"{pop}.spikes"].sum()) for pop in ("a", "b")}
    assert spikes["a"] > 0
    assert timings.counts == spikes


def test_the_meta_names_the_first_and_last_tick_rows(tmp_path: Path) -> None:
    """A reader finds the run's rows from ``meta``: ``first_tick`` and ``last_tick`` are
    the ``tick`` of the first and last rows (0 and ticks - 1), with ``ticks`` rows."""
    model = build(load_network(SEED))
    out = run_offline(model, 120)
    meta = json.loads(str(out["meta"]))
    assert (meta["first_tick"], meta["last_tick"]) == (0, 119)
    assert (int(out["tick"][0]), int(out["tick"][-1])) == (0, 119)


def test_failed_run_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    model = build(load_network(SEED))
    out = tmp_path / "seed.npz"
    out.write_bytes(b"previous")

    def fail(k: int) -> None:
        raise RuntimeError("stop at tick " + str(k))

    with pytest.raises(RuntimeError, match="stop at tick"):
        run_to_file(model, 5000, out, progress=fail, block_bytes=50_000)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["seed.npz"]


@pytest.mark.parametrize("name", ["t", "tick", "meta", "seed"])
def test_probes_named_like_the_files_own_keys_are_refused(tmp_path: Path, name: str) -> None:
    """docs/NPZ.md: they would be written over the file's own keys (or those over them)."""
    spec = parse_network(
        {
            "populations": {"a": {"n": 5}},
            "inputs": {"u": {"target": "a"}},
            "probes": {name: {"target": "a", "kind": "spikes"}},
        }
    )
    with pytest.raises(ConfigError, match=f"probe or input named {name}: .*docs/NPZ.md"):
        run_to_file(build(spec), 10, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []
