"""The network-file keys a Nengo import writes, checked without Nengo: per-neuron tuning
files, ``radius``, ``initial_voltage``, ``decoders`` files, connections from inputs and
``timing = "nengo"``."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.build import Model, build
from spikestream.errors import BuildError, NetworkFileError
from spikestream.sim import Simulator
from spikestream.spec import parse_network

TICKS = 400


def make(tmp_path: Path, doc: dict[str, Any]) -> Model:
    spec = parse_network(doc)
    spec._base_dir = tmp_path
    return build(spec, seed=1)


def spikes(model: Model, inputs: dict[str, np.ndarray], ticks: int = TICKS) -> dict[str, Any]:
    sim = Simulator(model)
    rec = {n: np.zeros((ticks, p.n), np.bool_) for n, p in model.populations.items()}
    sim.run(ticks, inputs=inputs, record_spikes=rec)
    return rec


def wave(ticks: int = TICKS, scale: float = 1.0) -> np.ndarray:
    return scale * np.sin(np.arange(ticks) * 0.02)[:, None]


def test_input_connection_equals_an_encoded_input(tmp_path: Path) -> None:
    """An unfiltered input connection with transform 2 drives the population exactly as
    an input encoded into it (``target``) with twice the value."""
    pop = {"n": 40, "seed": 3}
    direct = make(
        tmp_path,
        {"populations": {"a": pop}, "inputs": {"u": {"target": "a"}}},
    )
    via = make(
        tmp_path,
        {
            "populations": {"a": pop},
            "inputs": {"u": {}},
            "connections": [{"pre": "u", "post": "a", "synapse": 0.0, "transform": 2.0}],
        },
    )
    a = spikes(direct, {"u": wave(scale=2.0)})["a"]
    b = spikes(via, {"u": wave()})["a"]
    assert a.sum() > 500
    np.testing.assert_array_equal(a, b)
    assert via.arrays()["u->a.transform"].tolist() == [[2.0]]


def test_filtered_input_connection_lags_a_step(tmp_path: Path) -> None:
    """With a 50 ms synapse a step input reaches the population gradually: the first
    ticks after the step stay near the pre-step rate."""
    doc = {
        "populations": {"a": {"n": 60, "seed": 2, "intercepts": [0.0, 0.9]}},
        "inputs": {"u": {}},
        "connections": [{"pre": "u", "post": "a", "synapse": 0.05}],
    }
    model = make(tmp_path, doc)
    step = np.zeros((TICKS, 1))
    step[100:] = 1.0
    rec = spikes(model, {"u": step})["a"]
    assert rec[:100].sum() == 0  # positive intercepts: silent at 0
    early, late = rec[100:110].sum(), rec[300:310].sum()
    assert late > 5 * max(early, 1)


def test_radius_scales_the_encoded_value(tmp_path: Path) -> None:
    one = make(
        tmp_path, {"populations": {"a": {"n": 50, "seed": 4}}, "inputs": {"u": {"target": "a"}}}
    )
    two = make(
        tmp_path,
        {
            "populations": {"a": {"n": 50, "seed": 4, "radius": 2.0}},
            "inputs": {"u": {"target": "a"}},
        },
    )
    np.testing.assert_array_equal(
        two.populations["a"].scaled_encoders, one.populations["a"].scaled_encoders / 2.0
    )
    a = spikes(one, {"u": wave()})["a"]
    b = spikes(two, {"u": wave(scale=2.0)})["a"]
    assert np.sum(a & b) / a.sum() >= 0.999


def test_per_neuron_tuning_files_and_initial_voltage(tmp_path: Path) -> None:
    rates = np.linspace(150.0, 350.0, 8)
    icpt = np.linspace(-0.8, 0.8, 8)
    v0 = np.linspace(0.0, 0.9, 8)
    for name, arr in (("r", rates), ("i", icpt), ("v", v0)):
        np.save(tmp_path / f"{name}.npy", arr)
    pop = {"n": 8, "max_rates": "r.npy", "intercepts": "i.npy", "initial_voltage": "v.npy"}
    model = make(tmp_path, {"populations": {"a": pop}})
    p = model.populations["a"]
    np.testing.assert_array_equal(p.max_rates, rates)
    np.testing.assert_array_equal(p.intercepts, icpt)
    sim = Simulator(model)
    np.testing.assert_array_equal(sim.voltage("a"), v0)
    for _ in range(5):
        sim.step()
    assert not np.array_equal(sim.voltage("a"), v0)
    sim.reset()
    np.testing.assert_array_equal(sim.voltage("a"), v0)
    for file, bad, says in (
        ("r", np.full(8, -5.0), r"max_rates: 'r\.npy' holds 8 value\(s\) .* \(neuron 0: -5\.0\)"),
        ("r", np.r_[rates[:5], 500.0, 600.0, 200.0], r"max_rates: 'r\.npy' holds 2 value\(s\) .* "
         r"\(neuron 5: 500\.0\); "
         r"expected rates in \(0, 500\) Hz"),
        ("i", np.r_[icpt[:7], 1.0], r"intercepts: 'i\.npy' holds 1 value\(s\) .* \(neuron 7: "
         r"1\.0\); expected values in \[-1, 1\)"),
        ("i", np.r_[-1.5, icpt[1:]], r"intercepts: 'i\.npy' holds 1 value\(s\) .* "
         r"\(neuron 0: -1\.5\)"),
    ):  # fmt: skip
        np.save(tmp_path / f"{file}.npy", bad)
        with pytest.raises(BuildError, match=rf"populations\.a\.{says}"):
            make(tmp_path, {"populations": {"a": pop}})
        np.save(tmp_path / f"{file}.npy", rates if file == "r" else icpt)
    # Without a refractory period any positive rate is allowed (1/tau_ref divided by 0).
    np.save(tmp_path / "r.npy", np.full(8, 5000.0))
    model = make(tmp_path, {"populations": {"a": {**pop, "tau_ref": 0.0}}})
    np.testing.assert_array_equal(model.populations["a"].max_rates, np.full(8, 5000.0))
    np.save(tmp_path / "r.npy", rates)
    np.save(tmp_path / "r.npy", np.ones(7))
    with pytest.raises(BuildError, match=r"has shape \(7,\); expected \(8,\)"):
        make(tmp_path, {"populations": {"a": pop}})


def test_initial_voltage_above_threshold_is_refused(tmp_path: Path) -> None:
    """A start above 1 with a current between 1 and it has no spike time (log1p of less
    than -1): NaN that never leaves the state. Refused, inline and from a file, naming
    the key, the value and the bound; 1 itself is allowed."""
    np.save(tmp_path / "v.npy", np.array([0.5, 1.0, 1.25, 0.0]))
    with pytest.raises(BuildError) as err:
        make(tmp_path, {"populations": {"a": {"n": 4, "initial_voltage": "v.npy"}}})
    msg = str(err.value)
    assert "populations.a.initial_voltage" in msg
    assert "'v.npy'" in msg
    assert "1.25" in msg
    assert "<= 1" in msg
    with pytest.raises(NetworkFileError, match=r"populations\.a\.initial_voltage.*1 \(got 1\.5\)"):
        parse_network({"populations": {"a": {"n": 4, "initial_voltage": 1.5}}})
    np.save(tmp_path / "v.npy", np.array([0.5, 1.0, -2.0, 0.0]))
    sim = Simulator(make(tmp_path, {"populations": {"a": {"n": 4, "initial_voltage": "v.npy"}}}))
    sim.run(3)
    assert np.all(np.isfinite(sim.voltage("a")))


def test_decoders_files(tmp_path: Path) -> None:
    d = np.full((10, 1), 1e-3)
    np.save(tmp_path / "d.npy", d)
    doc: dict[str, Any] = {
        "populations": {"a": {"n": 10}, "b": {"n": 5, "dim": 2}},
        "connections": [
            {"pre": "a", "post": "b", "decoders": "d.npy", "transform": [[1.0], [0.5]]}
        ],
        "probes": {"v": {"target": "a", "kind": "decoded", "decoders": "d.npy"}},
    }
    model = make(tmp_path, doc)
    np.testing.assert_array_equal(model.connections[0].decoders, d)
    np.testing.assert_array_equal(model.probes["v"].decoders, d)
    doc["connections"][0]["transform"] = 1.0
    with pytest.raises(
        BuildError, match=r"has shape \(10, 1\); expected shape \(10, 2\) \(post population 'b'"
    ):
        make(tmp_path, doc)
    doc["connections"][0]["transform"] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(
        BuildError, match=r"has shape \(10, 1\); expected shape \(10, 3\) \(the transform's"
    ):
        make(tmp_path, doc)
    np.save(tmp_path / "d.npy", np.ones((9, 1)))
    with pytest.raises(BuildError, match=r"has shape \(9, 1\); expected shape \(10, 3\)"):
        make(tmp_path, doc)
    doc["connections"][0]["transform"] = [[1.0], [0.5]]
    # A wide file of the wrong width: refused from its header, never read (numpy reports
    # its allocations to tracemalloc; the file holds 16 MB).
    np.save(tmp_path / "d.npy", np.zeros((10, 200_000)))
    tracemalloc.start()
    try:
        with pytest.raises(BuildError, match=r"\(10, 200000\); expected shape \(10, 1\)"):
            make(tmp_path, doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak
    np.save(tmp_path / "d.npy", np.ones((9, 1)))
    with pytest.raises(BuildError, match=r"has shape \(9, 1\); expected shape \(10, 1\)"):
        make(tmp_path, doc)
    doc["connections"][0]["transform"] = 1.0
    np.savez(tmp_path / "d.npz", d=d)
    doc["connections"][0]["decoders"] = "d.npz"
    with pytest.raises(NetworkFileError, match=r"d\.npz': the magic string is not correct"):
        make(tmp_path, doc)
    # A FIFO blocked the header read (np.load opens it and waits for a writer).
    os.mkfifo(tmp_path / "fifo.npy")
    doc["connections"][0]["decoders"] = "fifo.npy"
    with pytest.raises(NetworkFileError, match=r"fifo\.npy' is not a regular file"):
        make(tmp_path, doc)
    with pytest.raises(NetworkFileError, match="only allowed on a decoded probe"):
        parse_network(
            {"populations": {"a": {"n": 2}}, "probes": {"s": {"target": "a", "decoders": "d.npy"}}}
        )
    # A function on a spikes or filtered probe was ignored without a word.
    for kind in ("spikes", "filtered"):
        with pytest.raises(
            NetworkFileError,
            match=rf"probes\.s: function: 'x\*\*2' is only allowed on a decoded probe "
            rf".* got kind = '{kind}'",
        ):
            parse_network(
                {
                    "populations": {"a": {"n": 2}},
                    "probes": {"s": {"target": "a", "kind": kind, "function": "x**2"}},
                }
            )


def test_learning_needs_a_decoded_connection() -> None:
    with pytest.raises(NetworkFileError, match="learning needs a decoded connection"):
        parse_network(
            {
                "populations": {"a": {"n": 2}},
                "inputs": {"u": {}, "e": {}},
                "connections": [{"pre": "u", "post": "a", "learning": {"error": "e"}}],
            }
        )


def test_nengo_timing_orders_by_unfiltered_connections_only(tmp_path: Path) -> None:
    conns = [
        {"pre": "a", "post": "b", "function": "x", "synapse": 0.01},
        {"pre": "b", "post": "c", "function": "x", "synapse": 0.0},
    ]
    pops = {"c": {"n": 10}, "b": {"n": 10}, "a": {"n": 10}}
    default = make(tmp_path, {"populations": pops, "connections": conns})
    nengo = make(
        tmp_path,
        {"network": {"timing": "nengo"}, "populations": pops, "connections": conns},
    )
    assert default.order == ["a", "b", "c"]
    assert nengo.order == ["b", "c", "a"]  # b -> c is unfiltered: c after b, in the tick


def test_nengo_timing_delays_a_filtered_connection_by_one_tick(tmp_path: Path) -> None:
    """b (silent without input) first spikes at the same tick in both timings when a -> b
    is unfiltered, and later under timing = "nengo" when it is filtered (b reads the
    previous tick's value of the connection)."""
    doc: dict[str, Any] = {
        "populations": {
            "a": {"n": 30, "seed": 1, "intercepts": [-0.5, 0.5]},
            "b": {"n": 30, "seed": 2, "intercepts": [0.3, 0.6]},
        },
        "inputs": {"u": {"target": "a", "signal": {"kind": "constant", "value": 1.0}}},
        "connections": [{"pre": "a", "post": "b", "function": "x", "synapse": 0.0}],
    }
    const = np.ones((TICKS, 1))
    first: dict[str, int] = {}
    for timing in ("spikestream", "nengo"):
        doc["network"] = {"timing": timing}
        for syn in (0.0, 0.002):
            doc["connections"][0]["synapse"] = syn
            rec = spikes(make(tmp_path, doc), {"u": const})
            first[f"{timing}-{syn}"] = int(np.argmax(rec["b"].any(axis=1)))
            assert rec["b"].any()
    # Unfiltered: the same in both timings. Filtered: nengo timing is later.
    assert first["spikestream-0.0"] == first["nengo-0.0"]
    assert first["nengo-0.002"] > first["spikestream-0.002"]


def test_pes_error_synapse_filters_the_error_and_is_part_of_the_state(tmp_path: Path) -> None:
    """With a 20 ms error synapse a step in the error moves the decoders gradually, and the
    filtered error is saved and restored with the state."""
    doc: dict[str, Any] = {
        "populations": {"a": {"n": 30, "seed": 1}, "b": {"n": 20, "seed": 2}},
        "inputs": {"u": {"target": "a"}, "e": {}},
        "connections": [
            {
                "pre": "a",
                "post": "b",
                "function": "x",
                "learning": {"error": "e", "rate": 1e-3, "synapse": 0.02},
            }
        ],
    }
    sim = Simulator(make(tmp_path, doc))
    sim.set_input("u", 0.5)
    sim.set_input("e", 1.0)
    sim.step()
    state = sim.state()
    np.testing.assert_allclose(state["conn.0.error"], [1.0 - np.exp(-0.001 / 0.02)])
    for _ in range(10):
        sim.step()
    assert state["conn.0.error"][0] < sim.state()["conn.0.error"][0] < 1.0
    sim.set_state(state)
    np.testing.assert_array_equal(sim.state()["conn.0.error"], state["conn.0.error"])
    doc["connections"][0]["learning"]["synapse"] = 0.0
    assert "conn.0.error" not in Simulator(make(tmp_path, doc)).state()
