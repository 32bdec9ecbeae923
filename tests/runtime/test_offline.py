"""Offline runs in blocks: streamed files equal in-memory runs, and failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.runtime.offline import (
    block_ticks_for,
    per_tick_layout,
    run_offline,
    run_to_file,
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
