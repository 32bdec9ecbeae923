"""Imported Nengo models against Nengo's own simulator: spike for spike under
``timing = "nengo"``, and decoded outputs at least as close to their targets with the
default timing."""

from __future__ import annotations

import statistics
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.nengo_import import import_nengo, import_network, load_script_network
from spikestream.nengo_import.objects import DELAY_ONLY_TAU
from spikestream.spec import load_network
from tests.nengo_import.runs import (
    SCRIPTS,
    Run,
    ideal,
    load,
    rmse,
    run_both,
    spike_match,
)

TICKS = 2000  # 2 s at dt = 1 ms


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_spike_trains_match_nengo(name: str, tmp_path: Path) -> None:
    net, _ = load(name)
    ref, got = run_both(net, TICKS, tmp_path, timing="nengo")
    assert set(got.spikes) == set(ref.spikes)
    for ens, spikes in ref.spikes.items():
        assert spikes.sum() > 10_000, ens  # the comparison is about a busy population
        assert spike_match(spikes, got.spikes[ens]) >= 0.999, ens
    # The probes agree too (Nengo records spikes as 1/dt, spikestream as 0/1).
    dt = 0.001
    for label, values in ref.probes.items():
        mine = got.probes[label].reshape(values.shape)
        if label.endswith("_spikes"):
            np.testing.assert_array_equal(mine, values * dt)
        else:
            np.testing.assert_allclose(mine, values, rtol=0, atol=1e-9, err_msg=label)


def test_imported_tuning_equals_nengos_build(tmp_path: Path) -> None:
    """Gains, biases, scaled encoders and initial voltages are Nengo's, bit for bit."""
    nengo = import_nengo()
    net, _ = load("oscillator")
    model = build(import_network(net, tmp_path / "net.toml"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipping some optimization steps", UserWarning)
        sim = nengo.Simulator(net, progress_bar=False)
    with sim:
        for ens in net.all_ensembles:
            pop = model.populations[ens.label]
            np.testing.assert_array_equal(pop.gain, sim.data[ens].gain)
            np.testing.assert_array_equal(pop.bias, sim.data[ens].bias)
            np.testing.assert_array_equal(pop.scaled_encoders, sim.data[ens].scaled_encoders)
            v0 = sim.model.sig[ens.neurons]["voltage"].initial_value
            assert pop.initial_voltage is not None
            np.testing.assert_array_equal(pop.initial_voltage, v0)


def test_default_timing_tracks_targets_as_well_as_nengo(tmp_path: Path) -> None:
    """RMSE against each example's ideal output, median over five seeds, at most 1.05 x
    Nengo's (the full 2 s version is bench/nengo_models.py; this one runs 1 s)."""
    ticks = 1000
    for name in SCRIPTS:
        ratios = []
        for seed in range(5):
            net, namespace = load(name, seed=100 + seed)
            ref, got = run_both(net, ticks, tmp_path / f"{name}-{seed}", timing="spikestream")
            label, target = ideal(namespace, ref.t)
            np.testing.assert_allclose(got.t, ref.t)
            ratios.append(rmse(got.probes[label], target) / rmse(ref.probes[label], target))
        assert statistics.median(ratios) <= 1.05, (name, ratios)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "model.py"
    path.write_text("import nengo\nimport numpy as np\n" + textwrap.dedent(body))
    return path


def compare(tmp_path: Path, body: str, ticks: int = 1000) -> tuple[dict[str, float], Run]:
    """Per ensemble, the spike match of the script's model against Nengo (nengo timing),
    and spikestream's run."""
    net, _ = load_script_network(write(tmp_path, body))
    ref, got = run_both(net, ticks, tmp_path, timing="nengo")
    for k, v in ref.spikes.items():
        assert v.sum() > 100, k  # each population is active: a match means something
    return {k: spike_match(v, got.spikes[k]) for k, v in ref.spikes.items()}, got


def test_neuron_connections_slices_and_passthrough_match_nengo(tmp_path: Path) -> None:
    matches, _ = compare(
        tmp_path,
        """
        model = nengo.Network(seed=3)
        with model:
            u = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t)], label="u")
            hub = nengo.Node(size_in=3, label="hub")
            a = nengo.Ensemble(60, 2, label="a", radius=1.5)
            b = nengo.Ensemble(50, 1, label="b", max_rates=nengo.dists.Uniform(100, 200))
            c = nengo.Ensemble(40, 3, label="c", intercepts=nengo.dists.Uniform(-0.5, 0.5))
            d = nengo.Ensemble(30, 1, label="d")
            nengo.Connection(u, a, synapse=0.01)
            nengo.Connection(u[1], hub[2], synapse=None)
            nengo.Connection(a, hub[:2], function=lambda x: [x[0] * x[1], x[0]], synapse=None)
            nengo.Connection(hub, c, transform=0.8, synapse=0.02)
            nengo.Connection(a[0], b, synapse=0.005)
            nengo.Connection(a.neurons, d.neurons, transform=np.ones((30, 60)) * 2e-3)
            nengo.Connection(b, d.neurons, transform=-np.ones((30, 1)), synapse=0.01)
            nengo.Connection(c.neurons, b, transform=np.full((1, 40), 1e-4), synapse=0.003)
            nengo.Connection(c, c, synapse=0.05, transform=0.5)
        """,
    )
    assert set(matches) == {"a", "b", "c", "d"}
    for ens, m in matches.items():
        assert m >= 0.999, (ens, m)


def test_nested_networks_and_ensemble_arrays_match_nengo(tmp_path: Path) -> None:
    """Subnetworks (an EnsembleArray, a plain nested Network) are imported through their
    objects, not refused as objects of their own."""
    matches, got = compare(
        tmp_path,
        """
        model = nengo.Network(seed=7)
        with model:
            u = nengo.Node(lambda t: [np.sin(4 * t), np.cos(3 * t)], label="u")
            ea = nengo.networks.EnsembleArray(40, 2, label="ea")
            with nengo.Network(label="inner"):
                c = nengo.Ensemble(50, 1, label="c")
            nengo.Connection(u, ea.input)
            nengo.Connection(ea.output[0], c, synapse=0.01)
            nengo.Probe(c, synapse=0.01, label="c_value")
        """,
    )
    assert set(matches) == {"ea_0", "ea_1", "c"}
    for ens, m in matches.items():
        assert m >= 0.999, (ens, m)
    assert "c_value" in got.probes


def test_synapse_zero_is_nengos_one_tick_delay(tmp_path: Path) -> None:
    """Nengo's synapse=0 (Lowpass(0)) passes its input unfiltered but one tick late, on
    connections from ensembles, from inputs, around a loop and on probes: the import
    writes a filter too short to filter (DELAY_ONLY_TAU) that timing = "nengo" delays."""
    body = """
        model = nengo.Network(seed=1)
        with model:
            u = nengo.Node(lambda t: np.sin(6 * t), label="u")
            a = nengo.Ensemble(50, 1, label="a")
            b = nengo.Ensemble(50, 1, label="b")
            nengo.Connection(u, a, synapse=0)
            nengo.Connection(a, b, synapse=0)
            nengo.Connection(b, b, synapse=0, transform=0.5)
            nengo.Probe(b, synapse=0, label="b_value")
            nengo.Probe(a.neurons, synapse=0, label="a_trace")
        """
    net, _ = load_script_network(write(tmp_path, body))
    ref, got = run_both(net, 1000, tmp_path, timing="nengo")
    for ens, spikes in ref.spikes.items():
        assert spikes.sum() > 1000, ens
        assert spike_match(spikes, got.spikes[ens]) >= 0.999, ens
    for label in ("b_value", "a_trace"):
        mine = got.probes[label].reshape(ref.probes[label].shape)
        np.testing.assert_allclose(mine, ref.probes[label], rtol=0, atol=1e-9, err_msg=label)
    spec = load_network(tmp_path / "net.toml")
    assert {c.synapse for c in spec.connections} == {DELAY_ONLY_TAU}
    assert spec.probes["b_value"].synapse == DELAY_ONLY_TAU
    assert spec.probes["a_trace"].kind == "filtered"


@pytest.mark.parametrize("error_synapse", ["None", "0", "0.01", "nengo.Default"])
def test_pes_learning_matches_nengo(tmp_path: Path, error_synapse: str) -> None:
    """PES with its error from an input node, unfiltered or through a lowpass (Nengo's
    default for an error connection is 5 ms); the learning visibly changes b's spikes."""
    body = """
        model = nengo.Network(seed=5)
        with model:
            u = nengo.Node(lambda t: np.sin(4 * t), label="u")
            err = nengo.Node(lambda t: 0.5 * np.cos(4 * t), label="err")
            a = nengo.Ensemble(80, 1, label="a")
            b = nengo.Ensemble(80, 1, label="b")
            nengo.Connection(u, a)
            learned = nengo.Connection(a, b, learning_rule_type=nengo.PES(learning_rate=RATE))
            nengo.Connection(err, learned.learning_rule, synapse=SYNAPSE)
        """.replace("SYNAPSE", error_synapse)
    matches, learned_run = compare(tmp_path, body.replace("RATE", "1e-3"))
    assert matches["a"] >= 0.999
    assert matches["b"] >= 0.999, matches
    spec = load_network(tmp_path / "net.toml")
    (learned,) = (c for c in spec.connections if c.learning is not None)
    assert learned.learning is not None
    assert (learned.pre, learned.post, learned.learning.error) == ("a", "b", "err")
    assert learned.learning.rate == 1e-3
    assert (
        learned.learning.synapse
        == {"None": 0.0, "0": DELAY_ONLY_TAU, "0.01": 0.01, "nengo.Default": 0.005}[error_synapse]
    )
    # Without learning b spikes differently: the match above is about the learned decoders.
    still = tmp_path / "still"
    still.mkdir()
    _, unlearned = compare(still, body.replace("RATE", "0.0"))
    assert spike_match(learned_run.spikes["b"], unlearned.spikes["b"]) < 0.99
