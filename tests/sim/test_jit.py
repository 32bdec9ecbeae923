"""The compiled backend computes exactly what the numpy reference kernels compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from spikestream.build import build
from spikestream.errors import SimulationError
from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator
from spikestream.spec import load_network, parse_network
from tests.sim import assert_two_inputs_add, record_blocks, two_input_model

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def run(
    model_spec: object, backend: str, ticks: int, dtype: str = "float64"
) -> dict[str, np.ndarray]:
    model = build(model_spec, dtype=dtype)  # type: ignore[arg-type]
    sim = Simulator(model, backend=backend)  # type: ignore[arg-type]
    rec = {p: np.zeros((ticks, model.populations[p].n), bool) for p in model.populations}
    sim.run(ticks, inputs=input_signals(model, ticks), record_spikes=rec)
    state = sim.state()
    return {**{f"spikes.{k}": v for k, v in rec.items()}, **state}


def chain_spec(pops: int, dtype: str = "float64") -> object:
    """A chain of decoded connections: every link is fusable into one compiled segment."""
    return parse_network(
        {
            "network": {"seed": 4, "dtype": dtype},
            "populations": {f"p{i}": {"n": 200, "dim": 3} for i in range(pops)},
            "inputs": {"u": {"dim": 3, "target": "p0", "signal": "sin"}},
            "connections": [
                {"pre": f"p{i}", "post": f"p{i + 1}", "function": "x", "synapse": 0.005}
                for i in range(pops - 1)
            ],
            "probes": {"y": {"target": f"p{pops - 1}", "kind": "decoded", "synapse": 0.01}},
        }
    )


@pytest.mark.parametrize(
    ("spec", "rtol", "active"),
    [
        (load_network(SEED), 1e-11, "b"),
        (
            parse_network(
                {
                    "network": {"seed": 9},
                    "populations": {
                        "a": {"n": 300, "dim": 2},
                        "b": {"n": 400, "min_voltage": -0.3},
                    },
                    "inputs": {"u": {"dim": 2, "target": "a", "signal": "sin"}},
                    "connections": [
                        {"pre": "a", "post": "b", "weights": {"std": 0.003}, "synapse": 0.02},
                        {"pre": "b", "post": "b", "weights": {"std": 0.001}, "synapse": 0.05},
                    ],
                    "probes": {"y": {"target": "b", "kind": "decoded"}},
                }
            ),
            1e-11,
            "b",
        ),
        # Fused into one segment; the compiled encode sums in pairs where BLAS sums in its
        # own order, hence the looser tolerance.
        (chain_spec(4), 1e-9, "p3"),
    ],
    ids=["seed", "event-driven-recurrent", "decoded-chain"],
)
def test_numba_matches_numpy(spec: object, rtol: float, active: str) -> None:
    """Same spikes; state equal to rounding. numpy may evaluate expm1/log1p with SIMD code
    (SVML on AVX-512) where the compiled kernel calls libm: the last bits can differ."""
    ref = run(spec, "numpy", 2000)
    jit = run(spec, "numba", 2000)
    assert ref.keys() == jit.keys()
    for key in ref:
        if key.startswith("spikes."):
            np.testing.assert_array_equal(jit[key], ref[key], err_msg=key)
        else:
            np.testing.assert_allclose(jit[key], ref[key], rtol=rtol, atol=1e-12, err_msg=key)
    assert ref[f"spikes.{active}"].sum() > 1000


def test_float32_backends_agree_closely() -> None:
    spec = load_network(SEED)
    ref = run(spec, "numpy", 1000, "float32")
    jit = run(spec, "numba", 1000, "float32")
    # Both compute in float32, but numpy may use SIMD expm1/log1p (SVML) where the compiled
    # kernel calls libm, and the dense weights sum in another order: the last bits differ
    # and, rarely, a spike time.
    assert np.mean(ref["spikes.a"] != jit["spikes.a"]) < 0.01


def test_unknown_backend() -> None:
    with pytest.raises(SimulationError, match="backend 'gpu' is not allowed"):
        Simulator(build(load_network(SEED)), backend="gpu")  # type: ignore[arg-type]


def test_chain_is_fused_into_one_segment() -> None:
    sim = Simulator(build(chain_spec(6)))  # type: ignore[arg-type]
    kinds = [type(op).__name__ for op in sim._ops]
    # p0 with its encoded input, 5 connections, 5 chain steps and the decoded probe: one
    # compiled program for the whole tick.
    assert kinds == ["_Segment"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_segment_matches_unfused_ops_exactly(dtype: str) -> None:
    model = build(chain_spec(6, dtype))  # type: ignore[arg-type]
    runs = []
    for fuse in (True, False):
        sim = Simulator(model, fuse=fuse)
        spikes = np.zeros((1500, 200), bool)
        sim.run(1500, inputs=input_signals(model, 1500), record_spikes={"p5": spikes})
        runs.append((spikes, sim.state()))
    (fused_spikes, fused), (plain_spikes, plain) = runs
    assert fused_spikes.sum() > 10_000  # the end of the chain is active
    np.testing.assert_array_equal(fused_spikes, plain_spikes)
    for key in plain:
        np.testing.assert_array_equal(fused[key], plain[key], err_msg=key)


def test_fusion_with_side_branches_matches_unfused() -> None:
    """Fused pops whose spike counts are read by unfused ops later in the tick (a dense
    event-driven branch, a learning connection), a probe between segments, and a reset."""
    spec = parse_network(
        {
            "network": {"seed": 5},
            "populations": {
                "a": {"n": 150, "dim": 2},
                "b": {"n": 150, "dim": 2},
                "c": {"n": 150, "dim": 2},
                "d": {"n": 120},
                "e": {"n": 100, "dim": 2},
            },
            "inputs": {
                "u": {"dim": 2, "target": "a", "signal": "sin"},
                "err": {"dim": 2},
            },
            "connections": [
                {"pre": "a", "post": "b", "function": "x", "synapse": 0.005},
                {"pre": "b", "post": "c", "function": "x * 0.5", "synapse": 0.005},
                {"pre": "b", "post": "d", "weights": {"std": 0.002}, "synapse": 0.01},
                {
                    "pre": "c",
                    "post": "e",
                    "function": "x",
                    "synapse": 0.01,
                    "learning": {"rule": "pes", "error": "err", "rate": 1e-4},
                },
            ],
            "probes": {
                "sb": {"target": "b", "kind": "filtered", "synapse": 0.02},
                "y": {"target": "e", "kind": "decoded", "synapse": 0.01},
            },
        }
    )
    model = build(spec)
    results = []
    for fuse in (True, False):
        sim = Simulator(model, fuse=fuse)
        if fuse:
            assert any(type(op).__name__ == "_Segment" for op in sim._ops)
        rec = {p: np.zeros((900, model.populations[p].n), bool) for p in model.populations}
        sim.set_input("err", [0.3, -0.2])
        sim.run(
            600,
            inputs=input_signals(model, 600),
            record_spikes={k: v[:600] for k, v in rec.items()},
        )
        sim.reset()
        sim.run(
            300,
            inputs=input_signals(model, 300),
            record_spikes={k: v[600:] for k, v in rec.items()},
        )
        results.append((rec, sim.state()))
    (rec_f, state_f), (rec_p, state_p) = results
    for name in rec_p:
        np.testing.assert_array_equal(rec_f[name], rec_p[name], err_msg=name)
    assert rec_p["d"].sum() > 1000  # the dense branch reads b's count after the segment
    for key in state_p:
        np.testing.assert_array_equal(state_f[key], state_p[key], err_msg=key)


Steps = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]


def _lif_steps_agree(
    J: NDArray[np.float64],
    v0: NDArray[np.float64],
    ref0: NDArray[np.float64],
    params: tuple[float, float, float],
) -> Steps:
    """One LIF step of ``(v0, ref0)`` under ``J`` (``params``: dt, tau_rc, tau_ref, in s)
    by the compiled kernel and by the numpy reference, checked to agree: the same spike
    count and spikes, each spiker listed once and nothing written past the first ``n``
    slots of a list twice as long (numba does not check bounds), and the same voltages
    and refractory times. Returns the compiled step's ``(v, ref, spiked)``."""
    from spikestream.sim.jit import lif_constants, lif_step_jit
    from spikestream.sim.kernels import LIFParams, lif_step

    n = J.size
    spikers = np.full(2 * n, -1, np.intp)
    jit = (v0.copy(), ref0.copy(), np.zeros(n, bool))
    constants = lif_constants(*params, 0.0, np.float64)
    zeros = np.zeros(n)
    count = lif_step_jit(J, *jit, zeros, constants, np.zeros(n, np.intp), spikers[:n])
    ref = (v0.copy(), ref0.copy(), np.zeros(n, bool))
    lif = LIFParams.make(*params, 0.0, np.float64)
    expected = lif_step(J, *ref, zeros, np.zeros(n), np.zeros(n), lif)
    assert int(count) == int(expected)
    np.testing.assert_array_equal(jit[2], ref[2])
    assert sorted(spikers[:count]) == list(np.flatnonzero(ref[2]))
    assert (spikers[n:] == -1).all()
    np.testing.assert_allclose(jit[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(jit[1], ref[1], rtol=1e-12)
    return jit


def test_lif_step_counts_a_leaving_neuron_above_threshold_once() -> None:
    """A restored state can hold v > 1 on a neuron leaving its refractory period: the
    compiled step must spike it once, as the numpy reference does, and never write past
    the end of its spiker list (numba does not check bounds)."""
    J = np.array([10.0, 10.0, 0.5, 10.0, 10.0, 0.2])
    v0 = np.array([1.5, 1.5, 1.2, 0.3, 1.5, 0.0])
    ref0 = np.array(
        [1.5e-3, 1.2e-3, 1.5e-3, 0.0, 3e-3, 0.0]
    )  # leaving, leaving, ..., still refractory
    _lif_steps_agree(J, v0, ref0, (1e-3, 0.02, 0.002))


@pytest.mark.parametrize(
    ("dtype", "timing"),
    [("float64", "spikestream"), ("float32", "spikestream"), ("float64", "nengo")],
)
def test_compiled_blocks_record_what_python_steps_record(dtype: str, timing: str) -> None:
    """A whole tick compiled into one program, run in blocks that feed inputs and record
    every probe kind, gives exactly what per-tick Python ops (``fuse=False``) record; under
    Nengo's timing too (filtered connections after every population, probes showing the
    filter before its update), with a connection fed by an input and initial voltages."""
    spec = parse_network(
        {
            "network": {"seed": 11, "dtype": dtype, "timing": timing},
            "populations": {
                "a": {"n": 80, "dim": 2, "initial_voltage": 0.5},
                "b": {"n": 300, "dim": 2, "min_voltage": -0.5},
                "c": {"n": 50, "radius": 2.0},
            },
            "inputs": {
                "u": {"dim": 2, "target": "a", "signal": "sin"},
                "w": {"dim": 2, "target": "b", "signal": {"kind": "constant", "value": 0.3}},
                "v": {"dim": 1, "signal": "sin"},
            },
            "connections": [
                {"pre": "a", "post": "b", "function": "x", "synapse": 0.005},
                {"pre": "b", "post": "c", "weights": {"std": 0.003}, "synapse": 0.01},
                {"pre": "c", "post": "a", "weights": {"std": 0.002}, "synapse": 0.02},
                {"pre": "v", "post": "c", "synapse": 0.005, "transform": [[1.5]]},
            ],
            "probes": {
                "sb": {"target": "b", "kind": "spikes"},
                "fa": {"target": "a", "kind": "filtered", "synapse": 0.02},
                "vc": {"target": "c", "kind": "voltage"},
                "yb": {"target": "b", "kind": "decoded", "synapse": 0.01},
                "pu": {"target": "u", "kind": "input"},
            },
        }
    )
    model = build(spec)
    ticks = 1200
    runs = []
    for fuse in (True, False):
        sim = Simulator(model, fuse=fuse)
        assert sim.compiled is fuse
        runs.append((record_blocks(sim, ticks, progress_every=500), sim.state()))
        assert sim.tick == ticks
    (compiled, state_c), (python, state_p) = runs
    assert python["c.spikes"].sum() > 500
    assert np.abs(python["yb"][-1]).max() > 0.05
    for key in python:
        np.testing.assert_array_equal(compiled[key], python[key], err_msg=key)
    for key in state_p:
        np.testing.assert_array_equal(state_c[key], state_p[key], err_msg=key)


def test_segments_split_by_python_ops_pass_spike_counts_on() -> None:
    """Under Nengo's timing a population's filtered connections run after every population
    has stepped; with a Python op (PES learning through an error filter) in between, they
    land in another compiled segment than the step whose spike count they read. Fused
    runs give exactly what unfused ones give, and the numpy reference's spikes."""
    spec = parse_network(
        {
            "network": {"seed": 5, "timing": "nengo"},
            "populations": {"a": {"n": 100}, "b": {"n": 60}, "c": {"n": 40}},
            "inputs": {
                "u": {"target": "a", "signal": "sin"},
                "err": {"signal": {"kind": "constant", "value": 0.2}},
            },
            "connections": [
                {
                    "pre": "a",
                    "post": "b",
                    "function": "x",
                    "learning": {"error": "err", "rate": 1e-3, "synapse": 0.01},
                },
                {"pre": "a", "post": "c", "function": "x", "synapse": 0.005},
                {"pre": "b", "post": "c", "weights": {"std": 0.002}, "synapse": 0.005},
            ],
            "probes": {"yc": {"target": "c", "kind": "decoded", "synapse": 0.01}},
        }
    )
    model = build(spec)
    ticks = 600
    runs = []
    for kw in ({"fuse": True}, {"fuse": False}, {"backend": "numpy"}):
        sim = Simulator(model, **kw)  # type: ignore[arg-type]
        assert not sim.compiled
        rec = {"yc": np.zeros((ticks, 1))}
        spikes = {p: np.zeros((ticks, model.populations[p].n), bool) for p in model.populations}
        sim.run(ticks, inputs=input_signals(model, ticks), record=rec, record_spikes=spikes)
        runs.append({**rec, **{f"{k}.spikes": v for k, v in spikes.items()}, **sim.state()})
    fused, python, reference = runs
    assert python["c.spikes"].sum() > 200
    for key in python:
        np.testing.assert_array_equal(fused[key], python[key], err_msg=key)
    for pop in model.populations:
        np.testing.assert_array_equal(fused[f"{pop}.spikes"], reference[f"{pop}.spikes"])


def test_lif_step_at_the_exact_edges_of_the_refractory_period() -> None:
    """Refractory times that land exactly on a tick (a restored ``ref = dt`` ends at the
    tick's start; ``ref = 2 dt`` covers the whole tick) and a neuron held at the threshold
    by a current of exactly 1: the compiled step treats each as the numpy reference and
    the LIF solution do. ``ref = dt`` integrates a full tick like a neuron that was never
    refractory, ``2 dt`` keeps its voltage, and ``v = J = 1`` is a fixed point that never
    spikes (spiking it would give the spike time log1p(0/0) = NaN)."""
    dt, tau_rc, tau_ref = 1e-3, 0.02, 0.002
    J = np.array([0.8, 0.8, 0.8, 1.0, 10.0, 0.8])
    v0 = np.array([0.3, 0.3, 0.3, 1.0, 1.0 + 5e-7, 0.0])
    ref0 = np.array([dt, 0.0, 2 * dt, 0.0, 2 * dt, -dt])
    jit = _lif_steps_agree(J, v0, ref0, (dt, tau_rc, tau_ref))
    # The LIF solution over one tick, for the neurons that integrate all of it.
    full = J + (v0 - J) * np.exp(-dt / tau_rc)
    np.testing.assert_allclose(jit[0][[0, 1, 5]], full[[0, 1, 5]], rtol=1e-12)
    assert jit[0][2] == v0[2]  # refractory the whole tick
    assert jit[0][3] == 1.0
    assert not jit[2][3]
    assert np.isfinite(jit[1]).all()


@pytest.mark.parametrize("mode", ["python-ops", "numba-program"])
def test_a_second_encoded_input_adds_in_every_compiled_form(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """J = bias + gain * E @ (x1 + x2) also where numba does the encoding: per-tick Python
    ops (``fuse=False``) and numba's program interpreter (``SPIKESTREAM_PROGRAMS=numba``).
    The C extension runs the default path, so these are the only runs of the numba
    ``add`` form: a second input that overwrote the first would show only here."""
    from spikestream.sim import native

    monkeypatch.setenv(native.ENV, "numba")
    model = two_input_model()
    sim = Simulator(model, fuse=mode == "numba-program")
    assert sim.compiled is (mode == "numba-program")
    assert_two_inputs_add(model, sim)
