"""The simulator against references written out longhand, in the seed's order."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import SimulationError
from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator, decay
from spikestream.sim.simulator import state_limit
from spikestream.spec import load_network, parse_network
from tests.nengo_oracle import LIF
from tests.sim import assert_two_inputs_add, two_input_model

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"
GOLDEN = Path(__file__).parent / "golden_seed.npz"


def run_seed(ticks: int, **kw: object) -> tuple[Simulator, dict[str, np.ndarray]]:
    model = build(load_network(SEED), **kw)  # type: ignore[arg-type]
    sim = Simulator(model)
    spikes = {p: np.zeros((ticks, model.populations[p].n), bool) for p in ("a", "b")}
    sim.run(ticks, inputs=input_signals(model, ticks), record_spikes=spikes)
    return sim, spikes


def test_seed_network_matches_nengo_lif_driven_in_seed_order() -> None:
    """Reference: Nengo's LIF.step for each population, the synapse filtering a's spikes
    *before* the weights (as the tutorial does), b seeing this tick's filtered value."""
    ticks = 3000
    sim, spikes = run_seed(ticks)
    model = sim.model
    a, b = model.populations["a"], model.populations["b"]
    w = model.connections[0].weights
    assert w is not None
    u = input_signals(model, ticks)["u"]
    lif = LIF(tau_rc=0.02, tau_ref=0.002)
    dt, syn = model.dt, decay(0.1, model.dt)
    va, ra, oa = np.zeros(a.n), np.zeros(a.n), np.zeros(a.n)
    vb, rb, ob = np.zeros(b.n), np.zeros(b.n), np.zeros(b.n)
    ya = np.zeros(a.n)
    for k in range(ticks):
        ja = a.bias + a.gain * (a.encoders @ u[k])
        lif.step(dt, ja, oa, va, ra)
        ya = syn * ya + (1 - syn) * oa
        jb = b.bias + w.T @ ya
        lif.step(dt, jb, ob, vb, rb)
        np.testing.assert_array_equal(spikes["a"][k], oa > 0, err_msg=f"a, tick {k}")
        np.testing.assert_array_equal(spikes["b"][k], ob > 0, err_msg=f"b, tick {k}")
    assert spikes["a"].sum() > 1000
    assert spikes["b"].sum() > 1000


def test_filtering_before_and_after_the_weights_agree() -> None:
    """lowpass(W.T @ s) (what the simulator does) equals W.T @ lowpass(s) (the seed)."""
    for event_driven in (False, True):
        model = build(load_network(SEED))
        sim = Simulator(model, event_driven=event_driven)
        w = model.connections[0].weights
        assert w is not None
        u = input_signals(model, 2000)["u"]
        a_syn = decay(0.1, model.dt)
        y = np.zeros(50)
        for k in range(2000):
            sim.set_input("u", u[k])
            sim.step()
            y = a_syn * y + (1 - a_syn) * sim.spiked("a") / model.dt
            current = sim.state()["conn.0.current"]
            np.testing.assert_allclose(current, w.T @ y, rtol=1e-9, atol=1e-9)


def test_event_driven_and_dense_propagation_give_the_same_spikes() -> None:
    data = {
        "network": {"seed": 4},
        "populations": {"a": {"n": 300}, "b": {"n": 300}},
        "inputs": {"u": {"target": "a", "signal": "sin"}},
        "connections": [{"pre": "a", "post": "b", "weights": {"std": 0.002}}],
    }
    model = build(parse_network(data))
    runs = []
    for event_driven in (False, True):
        sim = Simulator(model, event_driven=event_driven)
        rec = {"b": np.zeros((1500, 300), bool)}
        sim.run(1500, inputs=input_signals(model, 1500), record_spikes=rec)
        runs.append(rec["b"])
    assert runs[0].sum() > 1000
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("dim", [1, 3])
def test_input_current_is_bias_plus_gain_times_encoded_input(dim: int) -> None:
    """J = bias + gain * (E @ x). The seed's np.sum(bias + x * E * gain[:, None], axis=1)
    adds the bias dim times for dim > 1 and broadcasts a per-neuron vector to n x n."""
    data = {
        "network": {"seed": 2},
        "populations": {"p": {"n": 8, "dim": dim}},
        "inputs": {"x": {"target": "p", "dim": dim}},
    }
    model = build(parse_network(data))
    pop = model.populations["p"]
    sim = Simulator(model)
    x = np.array([0.5, -0.2, 0.3][:dim])
    sim.set_input("x", x)
    sim.step()
    current = sim._pops["p"].J  # the current the neurons saw this tick
    expected = pop.bias + pop.gain * (pop.encoders @ x)
    np.testing.assert_allclose(current, expected, rtol=1e-12)
    seed_formula = np.sum(pop.bias[:, None] + x * pop.encoders * pop.gain[:, None], axis=1)
    if dim > 1:
        # The test has teeth: the seed's line gives a different current.
        assert not np.allclose(seed_formula, expected)
    else:
        np.testing.assert_allclose(seed_formula, expected, rtol=1e-12)


@pytest.mark.parametrize("timing", ["spikestream", "nengo"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_filtered_input_connection_drives_the_current_with_the_synapse_step_response(
    backend: str, timing: str
) -> None:
    """An input connection filters its input before encoding it: after ``k`` ticks of a
    held step ``x`` the post current is ``bias + gain * E @ T @ (1 - a**k) x`` (the
    zero-order-hold lowpass); under Nengo's timing the population reads the filter of the
    tick before, ``1 - a**(k-1)``. Encoding the raw input instead would give the whole
    step at once, on either backend."""
    data = {
        "network": {"seed": 5, "timing": timing},
        "populations": {"a": {"n": 16, "dim": 2}},
        "inputs": {"u": {"dim": 2}},
        "connections": [
            {"pre": "u", "post": "a", "synapse": 0.02, "transform": [[1.0, 0.5], [0.0, -2.0]]}
        ],
    }
    model = build(parse_network(data))
    pop = model.populations["a"]
    sim = Simulator(model, backend=backend)  # type: ignore[arg-type]
    x = np.array([0.6, -0.3])
    sim.set_input("u", x)
    a = decay(0.02, model.dt)
    transform = np.array([[1.0, 0.5], [0.0, -2.0]])
    lag = 1 if timing == "nengo" else 0
    for k in range(1, 40):
        sim.step()
        y = (1.0 - a ** (k - lag)) * x
        expected = pop.bias + pop.gain * (pop.encoders @ (transform @ y))
        np.testing.assert_allclose(sim._pops["a"].J, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_filtered_probe_is_the_lowpassed_spike_train_in_hertz(backend: str) -> None:
    """A filtered probe shows the spikes (``spiked / dt``, in Hz) through its lowpass:
    ``y = a*y + (1-a)/dt`` on a spike. Over a long run its mean is the firing rate, as the
    spike count gives it; a height of ``1-a`` would show rates a thousand times too low."""
    data = {
        "network": {"seed": 3},
        "populations": {"p": {"n": 12, "dim": 1}},
        "inputs": {"x": {"dim": 1, "target": "p", "default": [0.7]}},
        "probes": {
            "rate": {"target": "p", "kind": "filtered", "synapse": 0.02},
            "spikes": {"target": "p", "kind": "spikes"},
        },
    }
    sim = Simulator(build(parse_network(data)), backend=backend)  # type: ignore[arg-type]
    dt, a = sim.dt, decay(0.02, sim.dt)
    y = np.zeros(12)
    total = np.zeros(12)
    counts = np.zeros(12)
    ticks = 3000
    for _ in range(ticks):
        sim.step()
        spiked = sim.probe("spikes")
        y = a * y + (1.0 - a) / dt * spiked
        np.testing.assert_allclose(sim.probe("rate"), y, rtol=1e-12, atol=1e-9)
        total += sim.probe("rate")
        counts += spiked
    assert counts.sum() > 1000
    # The mean of the filter is the rate up to its start-up and final transient (< 2 Hz).
    np.testing.assert_allclose(total / ticks, counts / (ticks * dt), atol=2.0)


@pytest.mark.parametrize("timing", ["spikestream", "nengo"])
def test_a_filtered_connection_is_read_this_tick_or_under_nengo_timing_the_tick_before(
    timing: str,
) -> None:
    """Seed timing: b steps on the value its decoded connection filtered this tick.
    Nengo's timing: every filtered connection updates after all populations stepped, so b
    steps on the value of the tick before (docs/MODEL.md)."""
    data = {
        "network": {"seed": 8, "timing": timing},
        "populations": {"a": {"n": 50, "dim": 1}, "b": {"n": 20, "dim": 1}},
        "inputs": {"u": {"dim": 1, "target": "a", "default": [0.6]}},
        "connections": [{"pre": "a", "post": "b", "function": "x", "synapse": 0.01}],
    }
    model = build(parse_network(data))
    sim = Simulator(model)
    bias = model.populations["b"].bias
    previous = sim.state()["conn.0.current"]
    changed = 0
    for _ in range(300):
        sim.step()
        now = sim.state()["conn.0.current"]
        seen = now if timing == "spikestream" else previous
        np.testing.assert_allclose(sim._pops["b"].J, bias + seen, rtol=1e-12, atol=1e-12)
        changed += int(not np.array_equal(now, previous))
        previous = now
    assert changed > 200  # the two timings differ wherever the current moved


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_two_inputs_encoded_into_one_population_add_their_currents(backend: str) -> None:
    """J = bias + gain * E @ (x1 + x2): each encoded input adds to the current, the second
    one too (it must not overwrite what the first and the bias put there)."""
    model = two_input_model()
    assert_two_inputs_add(model, Simulator(model, backend=backend))  # type: ignore[arg-type]


def test_same_seed_same_spikes_other_seed_differs() -> None:
    _, s1 = run_seed(1000)
    _, s2 = run_seed(1000)
    _, s3 = run_seed(1000, seed=99)
    np.testing.assert_array_equal(s1["a"], s2["a"])
    np.testing.assert_array_equal(s1["b"], s2["b"])
    assert not np.array_equal(s1["a"], s3["a"])


def test_golden_trajectory() -> None:
    """The seed network's first 1000 ticks, pinned. Regenerate deliberately with
    ``python -m tests.sim.test_simulator`` only when the model's maths change on purpose."""
    sim, spikes = run_seed(1000)
    golden = np.load(GOLDEN)
    np.testing.assert_array_equal(np.packbits(spikes["a"]), golden["a"])
    np.testing.assert_array_equal(np.packbits(spikes["b"]), golden["b"])
    np.testing.assert_allclose(sim.voltage("b"), golden["v_b"], rtol=1e-12, atol=1e-12)


def test_cycle_reads_previous_tick() -> None:
    """a -> b -> a: b sees a's value of this tick, a sees b's value of the previous tick."""
    data = {
        "network": {"seed": 8},
        "populations": {"a": {"n": 20}, "b": {"n": 20}},
        "inputs": {"u": {"target": "a", "signal": {"kind": "constant", "value": 0.5}}},
        "connections": [
            {"pre": "a", "post": "b", "synapse": 0.01, "weights": {"std": 0.01}},
            {"pre": "b", "post": "a", "synapse": 0.01, "weights": {"std": 0.01}},
        ],
    }
    model = build(parse_network(data))
    assert model.order == ["a", "b"]
    sim = Simulator(model)
    a, b = model.populations["a"], model.populations["b"]
    wab, wba = model.connections[0].weights, model.connections[1].weights
    assert wab is not None
    assert wba is not None
    lif = LIF(tau_rc=0.02, tau_ref=0.002)
    dt, syn = model.dt, decay(0.01, model.dt)
    va, ra, oa, vb, rb, ob = (np.zeros(20) for _ in range(6))
    ya, yb = np.zeros(20), np.zeros(20)
    sim.set_input("u", 0.5)
    for _ in range(1000):
        lif.step(dt, a.bias + a.gain * (a.encoders @ [0.5]) + wba.T @ yb, oa, va, ra)
        ya = syn * ya + (1 - syn) * oa
        lif.step(dt, b.bias + wab.T @ ya, ob, vb, rb)
        yb = syn * yb + (1 - syn) * ob
        sim.step()
        np.testing.assert_array_equal(sim.spiked("a"), oa > 0)
        np.testing.assert_array_equal(sim.spiked("b"), ob > 0)
    assert sim.tick == 1000
    assert ob.any()


def test_state_round_trip_continues_exactly() -> None:
    model = build(load_network(SEED))
    u = input_signals(model, 1000)["u"]
    sim = Simulator(model)
    sim.run(500, inputs={"u": u})
    snapshot = sim.state()
    rest = {"b": np.zeros((500, 40), bool)}
    sim.run(500, inputs={"u": u[500:]}, record_spikes=rest)
    other = Simulator(model)
    other.set_state(snapshot)
    assert other.tick == 500
    again = {"b": np.zeros((500, 40), bool)}
    other.run(500, inputs={"u": u[500:]}, record_spikes=again)
    np.testing.assert_array_equal(rest["b"], again["b"])
    assert rest["b"].any()


def test_set_state_rejects_foreign_state() -> None:
    sim = Simulator(build(load_network(SEED)))
    other = Simulator(build(parse_network({"populations": {"a": {"n": 3}}})))
    with pytest.raises(SimulationError, match="state does not match this network"):
        sim.set_state(other.state())


def test_reset_returns_to_tick_zero() -> None:
    model = build(load_network(SEED))
    sim = Simulator(model)
    u = input_signals(model, 300)["u"]
    first = {"a": np.zeros((300, 50), bool)}
    sim.run(300, inputs={"u": u}, record_spikes=first)
    sim.reset()
    assert sim.tick == 0
    second = {"a": np.zeros((300, 50), bool)}
    sim.run(300, inputs={"u": u}, record_spikes=second)
    np.testing.assert_array_equal(first["a"], second["a"])


def test_float32_tracks_float64() -> None:
    _, s64 = run_seed(3000)
    sim32, s32 = run_seed(3000, dtype="float32")
    assert sim32.voltage("a").dtype == np.float32
    r64, r32 = s64["a"].mean(axis=0), s32["a"].mean(axis=0)
    np.testing.assert_allclose(r32, r64, atol=0.01)


def test_set_input_checks_shape_and_name() -> None:
    sim = Simulator(build(load_network(SEED)))
    with pytest.raises(SimulationError, match=r"input 'u' expects shape \(1,\); got \(2,\)"):
        sim.set_input("u", [1.0, 2.0])
    with pytest.raises(SimulationError, match="no input named 'v'"):
        sim.set_input("v", 1.0)
    sim.set_input("u", 0.25)
    assert sim.inputs["u"][0] == 0.25


def _write_golden() -> None:  # pragma: no cover - run by hand
    sim, spikes = run_seed(1000)
    np.savez_compressed(
        GOLDEN, a=np.packbits(spikes["a"]), b=np.packbits(spikes["b"]), v_b=sim.voltage("b")
    )


if __name__ == "__main__":  # pragma: no cover
    _write_golden()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_set_state_accepts_every_state_a_run_leaves(dtype: str) -> None:
    """States a driven run passes through (spiking, refractory) are within the bounds."""
    sim, _ = run_seed(1000, dtype=dtype)
    for _ in range(20):
        sim.run(7, inputs={"u": np.full((7, 1), 0.9)})
        sim.set_state(sim.state())


def test_a_voltage_above_the_current_leaves_nan_which_set_state_refuses() -> None:
    """The hazard the bounds close: a finite voltage of 5 makes the spike time's log1p
    NaN for neurons driven between 1 and 5, and the NaN stays in their state."""
    unchecked, _ = run_seed(10)
    unchecked.voltage("a")[:] = 5.0
    unchecked.run(50, inputs={"u": np.full((50, 1), 0.9)})
    assert not np.isfinite(unchecked.state()["pop.a.ref"]).all()

    sim, _ = run_seed(10)
    before = sim.state()
    for key, value, match in [
        ("pop.a.v", 5.0, r"'pop.a.v' holds 50 value\(s\) outside \[-1e-06, 1\] \(a LIF voltage"),
        ("pop.a.v", -0.5, r"'pop.a.v' holds 50 value\(s\) outside"),
        ("pop.a.ref", 1e3, r"'pop.a.ref' holds 50 value\(s\) outside \[-inf, 0.003"),
        ("input.u", 2e9, r"'input.u' holds 1 value\(s\) outside \[-1e\+09, 1e\+09\]"),
    ]:
        bad = dict(before)
        bad[key] = np.full_like(before[key], value)
        with pytest.raises(SimulationError, match=match):
            sim.set_state(bad)
        for k, arr in sim.state().items():  # nothing was copied
            np.testing.assert_array_equal(arr, before[k])


@pytest.mark.parametrize(
    ("start", "drive", "ticks"), [(-0.5, 0.0, 0), (1.0, 0.895, 1), (1.0, 0.95, 1)]
)
def test_set_state_accepts_what_a_network_started_at_its_bounds_leaves(
    start: float, drive: float, ticks: int
) -> None:
    """A start voltage below min_voltage (tick 0), or at the threshold 1 with a current
    just below 1 (intercept 0.9, input 0.895: no spike) or above it (input 0.95: a spike
    at once, its refractory time near tau_ref + dt), is the network's own state and is
    restored."""
    pop = {"n": 1, "initial_voltage": start, "max_rates": [200, 200], "intercepts": [0.9, 0.9]}
    spec = {
        "network": {"name": "s", "dt": 0.001, "seed": 1},
        "populations": {"a": {**pop, "encoders": [[1.0]]}},
        "inputs": {"u": {"dim": 1, "target": "a", "default": drive}},
    }
    sim = Simulator(build(parse_network(spec)))
    sim.run(ticks)
    assert bool(sim.spiked("a")[0]) is (drive > 0.9)
    state = {k: np.array(v, copy=True) for k, v in sim.state().items()}
    Simulator(build(parse_network(spec))).set_state(state)


def test_a_model_started_above_the_threshold_is_refused() -> None:
    """A model built without the spec (whose cap is 1) is held to the same bound."""
    model = build(parse_network({"populations": {"a": {"n": 3}}}))
    model.populations["a"].initial_voltage = np.array([0.5, 1.5, 0.0])
    with pytest.raises(SimulationError, match=r"population 'a': start voltages must be <= 1"):
        Simulator(model)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_state_at_the_restore_limit_stays_finite_and_one_beyond_it_is_refused(
    dtype: str,
) -> None:
    """Filtered values, currents and learned decoders at +-state_limit run 100 ticks
    without NaN; twice the limit is refused (a decoder near the type's maximum had
    overflowed within a tick and left NaN in the refractory times)."""
    model = build(load_network(SEED.parent / "learn.toml"), dtype=dtype)
    sim = Simulator(model)
    sim.run(5)
    state = sim.state()
    limit = state_limit(dtype)
    keys = [k for k in state if k.startswith(("conn.", "probe."))]
    assert "conn.0.decoders" in keys
    for key in keys:
        for value in (limit, -limit):
            edited = {k: np.array(v, copy=True) for k, v in state.items()}
            edited[key][...] = value
            again = Simulator(model)
            again.set_state(edited)
            with np.errstate(over="ignore", invalid="ignore"):
                again.run(100)
            for k, v in again.state().items():
                assert np.all(np.isfinite(v)), (key, value, k)
        edited = {k: np.array(v, copy=True) for k, v in state.items()}
        edited[key][...] = 2 * limit
        with pytest.raises(SimulationError, match=rf"state '{key}' holds values beyond"):
            Simulator(model).set_state(edited)


def test_record_arrays_the_program_cannot_store_into_take_the_checked_path() -> None:
    """The compiled run stores through a record array's address: a read-only one (here
    over ``bytes``, which it silently changed; over a read-only mapping it crashed the
    process) is refused before any tick, naming the probe, and a misaligned one is
    recorded as an aligned one is."""
    model = build(load_network(SEED))
    n = model.populations["a"].n
    inputs = input_signals(model, 10)
    frozen = bytes(10 * n)
    sim = Simulator(model)
    assert sim.compiled
    with pytest.raises(SimulationError, match=r"record 'a': a read-only array of shape"):
        sim.run(
            10, inputs=inputs, record_spikes={"a": np.frombuffer(frozen, np.bool_).reshape(10, n)}
        )
    assert not any(frozen)
    assert sim.tick == 0  # refused before any tick
    width = sim.probe("a_filtered").shape
    aligned = np.zeros((10, *width), np.float64)
    odd = np.zeros(aligned.nbytes + 1, np.uint8)[1:].view(np.float64).reshape(aligned.shape)
    assert not odd.flags.aligned
    for dest in (aligned, odd):
        Simulator(build(load_network(SEED))).run(10, inputs=inputs, record={"a_filtered": dest})
    assert np.any(aligned)
    np.testing.assert_array_equal(odd, aligned)


def test_a_record_array_of_the_wrong_shape_is_refused_before_any_tick() -> None:
    sim = Simulator(build(load_network(SEED)))
    with pytest.raises(
        SimulationError, match=r"record 'a_filtered': .* expected a writable array of shape"
    ):
        sim.run(10, record={"a_filtered": np.zeros((9, 1))})
    assert sim.tick == 0


def _learning_spec() -> dict[str, object]:
    """Two learning connections out of one population (so a setting can land on the wrong
    one), a filtered error, a start voltage, an input default and every probe kind: each
    piece of state that ``reset`` must put back."""
    learn = {"rule": "pes", "error": "e", "rate": 1e-3, "synapse": 0.01}
    return {
        "network": {"seed": 7},
        "populations": {
            "a": {"n": 40, "dim": 1, "initial_voltage": 0.5},
            "b": {"n": 20, "dim": 1},
            "c": {"n": 20, "dim": 1},
        },
        "inputs": {
            "u": {"dim": 1, "target": "a", "default": [0.6]},
            "e": {"dim": 1, "default": [0.2]},
        },
        "connections": [
            {"pre": "a", "post": "b", "function": "x", "synapse": 0.005, "learning": learn},
            {"pre": "a", "post": "c", "function": "x", "synapse": 0.005, "learning": learn},
        ],
        "probes": {
            "ya": {"target": "a", "kind": "decoded", "synapse": 0.01},
            "ra": {"target": "a", "kind": "filtered", "synapse": 0.01},
            "sa": {"target": "a", "kind": "spikes"},
        },
    }


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_reset_is_a_fresh_simulator(backend: str) -> None:
    """After a run that changed every part of the state (voltages, refractory times,
    synapses, the filtered error, learned decoders, probes, inputs), ``reset`` leaves what
    a new simulator of the same model starts from, key by key, shows no spikes, and the
    next ticks repeat the first ones exactly: nothing of the old run leaks through."""
    model = build(parse_network(_learning_spec()))
    fresh = Simulator(model, backend=backend)  # type: ignore[arg-type]
    start = fresh.state()
    first = {p: np.zeros((200, model.populations[p].n), bool) for p in ("a", "b", "c")}
    fresh.run(200, record_spikes=first)
    sim = Simulator(model, backend=backend)  # type: ignore[arg-type]
    sim.set_input("u", 0.9)
    sim.set_input("e", -0.4)
    sim.run(300)
    moved = sim.state()
    for key in start:
        if key.startswith(("conn.", "probe.", "input.", "pop.a.")):
            assert not np.array_equal(moved[key], start[key]), key  # the run changed it
    sim.reset()
    assert sim.tick == 0
    assert sim.t == 0.0
    for key, value in sim.state().items():
        np.testing.assert_array_equal(value, start[key], err_msg=key)
    for pop in ("a", "b", "c"):
        assert not sim.spiked(pop).any(), pop
    assert not sim.probe("sa").any()
    again = {p: np.zeros((200, model.populations[p].n), bool) for p in ("a", "b", "c")}
    sim.run(200, record_spikes=again)
    for pop in first:
        np.testing.assert_array_equal(again[pop], first[pop], err_msg=pop)
    assert first["b"].any()
    assert first["c"].any()


def test_a_state_is_a_copy_the_run_does_not_change() -> None:
    """``state()`` is a snapshot: running on (which rewrites every live array in place,
    learned decoders and probes included) and writing into the snapshot leave each other
    alone, so a snapshot restores the tick it was taken at."""
    model = build(parse_network(_learning_spec()))
    sim = Simulator(model)
    sim.run(50)
    snap = sim.state()
    kept = {k: np.array(v, copy=True) for k, v in snap.items()}
    sim.set_input("u", -0.3)
    sim.run(50)
    for key, value in kept.items():
        np.testing.assert_array_equal(snap[key], value, err_msg=key)
    live = sim.state()
    for value in snap.values():
        value[...] = 0
    for key, value in sim.state().items():
        np.testing.assert_array_equal(value, live[key], err_msg=key)


def test_set_learning_changes_only_the_named_connection() -> None:
    """A rate or an on/off switch lands on the connection it names, and only on a
    learning connection: the other learner keeps its own, and a bad rate or name is
    refused without changing anything."""
    sim = Simulator(build(parse_network(_learning_spec())))
    names = sim.learning_connections()
    assert len(names) == 2
    first, second = names
    assert sim.learning_settings() == {first: (1e-3, True), second: (1e-3, True)}
    for name, other in ((first, second), (second, first)):
        sim.set_learning(name, rate=0.25)
        assert sim.learning_settings() == {name: (0.25, True), other: (1e-3, True)}
        sim.set_learning(name, enabled=False)
        assert sim.learning_settings() == {name: (0.25, False), other: (1e-3, True)}
        sim.set_learning(name, rate=1e-3, enabled=True)
    for rate in (-1e-3, math.nan, math.inf):
        with pytest.raises(SimulationError, match="learning rate must be a finite number >= 0"):
            sim.set_learning(first, rate=rate)
    with pytest.raises(SimulationError, match=r"no learning connection named 'z'; .*" + first):
        sim.set_learning("z", rate=0.1)
    assert sim.learning_settings() == {first: (1e-3, True), second: (1e-3, True)}


def test_a_non_learning_connection_cannot_be_given_a_rate() -> None:
    """The seed's connection does not learn: naming it is an error, not a silent no-op."""
    sim = Simulator(build(load_network(SEED)))
    conn = sim.model.connections[0].name
    with pytest.raises(SimulationError, match=rf"no learning connection named '{conn}'"):
        sim.set_learning(conn, rate=0.1)
    assert sim.learning_settings() == {}


def test_a_disabled_connection_holds_its_decoders_while_the_other_learns() -> None:
    """Switching one learner off (or its rate to 0) freezes that connection's decoders
    only; the other keeps moving them."""
    sim = Simulator(build(parse_network(_learning_spec())))
    first, second = sim.learning_connections()
    sim.set_learning(first, enabled=False)
    sim.set_learning(second, rate=0.0)
    before = sim.state()
    sim.run(100)
    after = sim.state()
    keys = [f"conn.{i}.decoders" for i in range(2)]
    for key in keys:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    sim.set_learning(second, rate=1e-3)
    sim.run(100)
    moved = sim.state()
    np.testing.assert_array_equal(moved[keys[0]], before[keys[0]])
    assert not np.array_equal(moved[keys[1]], before[keys[1]])


def test_unknown_probe_and_scalar_input_to_a_vector_are_refused() -> None:
    """Reading a probe that does not exist raises (it used to be easy to get back None),
    and a scalar fed to a 2-D input is refused rather than broadcast to both dims."""
    spec = {
        "populations": {"a": {"n": 10, "dim": 2}},
        "inputs": {"u": {"dim": 2, "target": "a"}},
        "probes": {"ya": {"target": "a", "kind": "decoded"}},
    }
    sim = Simulator(build(parse_network(spec)))
    with pytest.raises(SimulationError, match=r"no probe named 'yb'; expected one of: ya"):
        sim.probe("yb")
    with pytest.raises(SimulationError, match=r"input 'u' expects shape \(2,\); got \(\)"):
        sim.set_input("u", 0.5)
    np.testing.assert_array_equal(sim.inputs["u"], [0.0, 0.0])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_progress_is_reported_at_each_multiple_of_progress_every(backend: str) -> None:
    """Compiled blocks and Python ticks report the same progress: at every multiple of
    ``progress_every`` and not for the last partial block; ``t`` is ``tick * dt``."""
    model = build(load_network(SEED))
    sim = Simulator(model, backend=backend)  # type: ignore[arg-type]
    seen: list[int] = []
    sim.run(250, inputs=input_signals(model, 250), progress=seen.append, progress_every=100)
    assert seen == [100, 200]
    assert sim.tick == 250
    assert sim.t == pytest.approx(250 * sim.dt)
    each: list[int] = []  # progress_every=1: after every tick, not every other one
    sim.run(3, progress=each.append, progress_every=1)
    assert each == [1, 2, 3]


def test_the_footprint_counts_matrices_and_vectors_apart() -> None:
    """Every population's voltage and refractory time are vectors a compiled tick reads,
    the decoders a matrix: each lands in its own total."""
    model = build(load_network(SEED))
    sim = Simulator(model)
    assert sim.compiled
    fp = sim.footprint()
    item = np.dtype(sim.dtype).itemsize
    per_pop = sum(2 * p.n * item for p in model.populations.values())
    assert fp.vector_bytes >= per_pop
    assert fp.matrix_bytes > 0  # the seed's connection: its decoders and encoders
    assert fp.total == fp.matrix_bytes + fp.vector_bytes
    # A numpy-backend tick has no compiled op: nothing counted.
    assert Simulator(model, backend="numpy").footprint().total == 0


def _refusals(state: dict[str, np.ndarray]) -> list[tuple[dict[str, object], str]]:
    """Edited copies of a seed state, each with the message ``set_state`` must give."""
    v = state["pop.a.v"]
    return [
        ({k: x for k, x in state.items() if k != "tick"}, r"missing \['tick'\]"),
        ({**state, "tick": np.array(3.0)}, r"'tick' must be an integer scalar .* = 3\.0"),
        ({**state, "tick": np.array(2**53, np.int64)}, r"'tick' must be an integer .* = 9007"),
        ({**state, "tick": np.array(-1, np.int64)}, r"'tick' must be an integer .* = -1"),
        ({**state, "pop.a.v": np.zeros(v.shape, np.int64)}, r"'pop.a.v' has dtype int64"),
        ({**state, "pop.a.v": np.zeros(v.size + 1)}, r"'pop.a.v' has shape \(51,\)"),
        ({**state, "pop.a.v": np.where(np.arange(v.size) == 3, np.nan, v)}, r"NaN or infinite"),
        ({**state, "pop.a.v": np.full(v.shape, -0.01)}, r"'pop.a.v' holds 50 value\(s\) outside"),
        ({**state, "pop.a.ref": np.full(v.shape, 0.0035)}, r"'pop.a.ref' holds 50 value"),
    ]


def test_set_state_refuses_each_bad_part_and_copies_nothing() -> None:
    """Each check of ``set_state`` on its own: a missing or non-integer or out-of-range
    tick, an integer, misshapen or NaN array, a voltage below the floor (0 here: the seed
    starts at 0) or a refractory time past ``tau_ref + dt`` (2 ms + 1 ms) is refused with
    its own message, and the simulator keeps its state and tick."""
    sim, _ = run_seed(20)
    before = sim.state()
    for bad, match in _refusals(before):
        with pytest.raises(SimulationError, match=match):
            sim.set_state(bad)  # type: ignore[arg-type]
        assert sim.tick == 20
        for key, value in sim.state().items():
            np.testing.assert_array_equal(value, before[key], err_msg=key)
    # The edges themselves are accepted: the top tick, floor voltage, longest refractory.
    edge = {**before, "tick": np.array(2**53 - 1, np.int64)}
    edge["pop.a.v"] = np.zeros_like(before["pop.a.v"])
    edge["pop.a.ref"] = np.full_like(before["pop.a.ref"], 0.003)
    sim.set_state(edge)
    assert sim.tick == 2**53 - 1


def test_set_state_refuses_other_values_for_decoders_that_do_not_learn() -> None:
    """Half-precision decoders are read as rounded copies: a state that carries other
    values could not change what the tick reads, so it is refused; the built ones pass."""
    spec = {
        "network": {"seed": 2, "weights_dtype": "float16"},
        "populations": {"a": {"n": 30, "dim": 1}, "b": {"n": 20, "dim": 1}},
        "connections": [{"pre": "a", "post": "b", "function": "x"}],
    }
    sim = Simulator(build(parse_network(spec)))
    state = sim.state()
    assert "conn.0.decoders" in state
    sim.set_state(state)
    edited = {**state, "conn.0.decoders": np.asarray(state["conn.0.decoders"], float) + 0.5}
    with pytest.raises(SimulationError, match=r"'conn.0.decoders' differs from this network"):
        sim.set_state(edited)


def test_record_arrays_of_another_dtype_or_layout_record_the_same_values() -> None:
    """The compiled run stores through a record array's address with the probe's own
    dtype and a C-contiguous layout: a float32 array or a strided view must take the
    checked path and hold what a plain float64 array holds (cast, or in place)."""
    model = build(load_network(SEED))
    inputs = input_signals(model, 40)
    width = Simulator(model).probe("a_filtered").shape
    plain = np.zeros((40, *width))
    Simulator(model).run(40, inputs=inputs, record={"a_filtered": plain})
    assert np.any(plain)
    single = np.zeros((40, *width), np.float32)
    Simulator(model).run(40, inputs=inputs, record={"a_filtered": single})
    np.testing.assert_array_equal(single, plain.astype(np.float32))
    wide = np.zeros((40, 2 * width[0]))
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    Simulator(model).run(40, inputs=inputs, record={"a_filtered": strided})
    np.testing.assert_array_equal(strided, plain)
    assert not wide[:, 1::2].any()  # nothing written between the recorded columns


def test_inputs_and_record_arrays_one_row_short_or_too_wide_are_refused() -> None:
    """``run`` feeds row k at tick k and records row k after it: an input or a record
    array without a row for every tick, or an input of the wrong width, is refused
    before any tick (the compiled run would read or write past its end)."""
    model = build(load_network(SEED))
    sim = Simulator(model)
    width = sim.probe("a_filtered").shape
    for values in (np.zeros((9, 1)), np.zeros((10, 2))):
        with pytest.raises(SimulationError, match=r"input 'u': values of shape"):
            sim.run(10, inputs={"u": values})
    with pytest.raises(SimulationError, match=r"record 'a_filtered': .* expected a writable"):
        sim.run(10, record={"a_filtered": np.zeros((9, *width))})
    assert sim.tick == 0
    sim.run(10, inputs={"u": np.zeros((12, 1))}, record={"a_filtered": np.zeros((11, *width))})
    sim.run(5)
    assert sim.tick == 15  # a second run goes on from where the first stopped
