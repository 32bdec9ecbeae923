"""Builder: a built network's parameters are what its file says, at the edges too.

Found by mutation testing: each behaviour here could change with every other test of the
builder passing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build, gain_bias
from spikestream.errors import BuildError
from spikestream.spec import parse_network


def test_a_rate_of_exactly_one_over_tau_ref_is_unreachable() -> None:
    """A LIF neuron fires strictly below ``1/tau_ref``: 500 Hz at 2 ms is refused too."""
    with pytest.raises(BuildError, match=r"max rate 500\.0 Hz is not reachable"):
        gain_bias(np.array([200.0, 500.0]), np.array([0.0, 0.0]), 0.02, 0.002)


def test_a_max_rates_file_holding_zero_is_refused_naming_the_neuron(tmp_path: Path) -> None:
    """0 Hz is outside ``(0, 1/tau_ref)``: refused by the range check, with the neuron and
    the range, not later as a non-finite gain."""
    np.save(tmp_path / "r.npy", np.array([200.0, 0.0, 300.0]))
    spec = parse_network({"populations": {"a": {"n": 3, "max_rates": "r.npy"}}}, source="net.toml")
    spec._base_dir = tmp_path
    with pytest.raises(BuildError) as info:
        build(spec)
    assert str(info.value) == (
        "net.toml: populations.a.max_rates: 'r.npy' holds 1 value(s) outside the allowed "
        "range (neuron 1: 0.0); expected rates in (0, 500) Hz (below 1/tau_ref)"
    )


def test_an_inline_initial_voltage_is_where_every_neuron_starts() -> None:
    """``initial_voltage = 0.5`` gives every neuron 0.5; the default 0 gives no array."""
    model = build(
        parse_network({"populations": {"a": {"n": 4, "initial_voltage": 0.5}, "b": {"n": 2}}})
    )
    v0 = model.populations["a"].initial_voltage
    assert v0 is not None
    assert v0.tolist() == [0.5] * 4
    assert model.populations["b"].initial_voltage is None


def test_an_all_zero_encoder_row_is_refused_naming_the_row() -> None:
    """A zero row cannot be normalised (0/0): refused rather than built as NaN."""
    spec = parse_network(
        {"populations": {"a": {"n": 3, "dim": 2, "encoders": [[1, 0], [0, 0], [0, 1]]}}},
        source="net.toml",
    )
    with pytest.raises(BuildError) as info:
        build(spec)
    assert str(info.value) == (
        "net.toml: populations.a.encoders: row 1 is all zeros; encoders must be non-zero vectors"
    )


def _weights(dist: dict[str, object], *, name: str = "w", seed: int = 1) -> np.ndarray:
    spec = parse_network(
        {
            "network": {"seed": seed},
            "populations": {"a": {"n": 40}, "b": {"n": 50}},
            "connections": [{"pre": "a", "post": "b", "name": name, "weights": dist}],
        }
    )
    w = build(spec).connections[0].weights
    assert w is not None
    return w


def test_uniform_weights_fill_their_range() -> None:
    """2,000 draws from ``U[-3, 5]`` stay inside it and reach near both ends."""
    w = _weights({"dist": "uniform", "low": -3.0, "high": 5.0})
    assert w.shape == (40, 50)
    assert w.min() >= -3.0
    assert w.max() <= 5.0
    assert w.min() < -2.9
    assert w.max() > 4.9


def test_a_weight_seed_fixes_the_draws_whatever_the_network_seed_and_name() -> None:
    """``weights.seed`` overrides the network seed and the connection's name: the same
    matrix in any network; without it another network seed gives another matrix."""
    dist = {"dist": "normal", "seed": 11}
    w = _weights(dist)
    np.testing.assert_array_equal(w, _weights(dist, seed=2, name="other"))
    assert not np.array_equal(_weights({"dist": "normal"}), _weights({"dist": "normal"}, seed=2))


def test_a_population_seed_fixes_its_draws_whatever_its_name() -> None:
    """``populations.NAME.seed`` overrides the draw seed: renaming the population, or
    changing the network seed, leaves its tuning and encoders as they were."""

    def tuning(name: str, seed: int) -> list[np.ndarray]:
        spec = parse_network(
            {"network": {"seed": seed}, "populations": {name: {"n": 6, "seed": 4}}}
        )
        p = build(spec).populations[name]
        return [p.max_rates, p.intercepts, p.encoders]

    for x, y in zip(tuning("a", 1), tuning("renamed", 2), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_disabled_learning_rule_is_built_disabled() -> None:
    """``enabled = false`` keeps the rule (rate, error input) but turns it off."""
    spec = parse_network(
        {
            "populations": {"a": {"n": 5}, "b": {"n": 5}},
            "inputs": {"e": {}},
            "connections": [
                {
                    "pre": "a",
                    "post": "b",
                    "function": "x",
                    "learning": {"error": "e", "rate": 0.5, "enabled": False},
                }
            ],
        }
    )
    c = build(spec).connections[0]
    assert (c.learning_enabled, c.learning_rate, c.error_input) == (False, 0.5, "e")


def test_tuning_ranges_are_drawn_over_their_whole_width() -> None:
    """``max_rates = [lo, hi]`` and ``intercepts = [lo, hi]`` are uniform over the whole
    range: 2,000 neurons come near both ends, not only inside it."""
    spec = parse_network(
        {"populations": {"a": {"n": 2000, "max_rates": [100, 300], "intercepts": [-0.5, 0.5]}}}
    )
    p = build(spec).populations["a"]
    for values, lo, hi in ((p.max_rates, 100.0, 300.0), (p.intercepts, -0.5, 0.5)):
        assert lo <= values.min() < lo + 0.01 * (hi - lo)
        assert hi - 0.01 * (hi - lo) < values.max() <= hi


def test_decoders_are_solved_over_the_ball_of_the_radius() -> None:
    """With ``radius = 2`` the decoders of ``x**2`` are fit over ``[-2, 2]``: the decoded
    estimate at 1.8 is near 3.24 (fit over ``[-1, 1]`` only, it is far off there)."""
    spec = parse_network(
        {
            "network": {"seed": 3},
            "populations": {"a": {"n": 200, "radius": 2.0}, "b": {"n": 10}},
            "connections": [{"pre": "a", "post": "b", "function": "x**2"}],
        }
    )
    model = build(spec)
    d = model.connections[0].decoders
    assert d is not None
    x = np.array([[-1.8], [0.0], [1.8]])
    estimate = (model.populations["a"].rates(x) @ d)[:, 0]
    np.testing.assert_allclose(estimate, x[:, 0] ** 2, atol=0.15)


def test_a_decoded_probe_solves_with_the_connection_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe has no ``reg`` or ``eval_points`` keys: its decoders are solved as a
    connection's are by default (``reg = 0.1`` over 750 points), as Nengo's probes are."""
    import spikestream.build as builder

    seen: list[tuple[int, float]] = []
    real = builder.solve_decoders

    def solve(activities: np.ndarray, targets: np.ndarray, reg: float) -> np.ndarray:
        seen.append((activities.shape[0], reg))
        return real(activities, targets, reg)

    monkeypatch.setenv("SPIKESTREAM_DECODER_CACHE", "0")
    monkeypatch.setattr(builder, "solve_decoders", solve)
    spec = parse_network(
        {"populations": {"a": {"n": 20}}, "probes": {"p": {"target": "a", "kind": "decoded"}}}
    )
    assert build(spec).probes["p"].decoders is not None
    assert seen == [(750, 0.1)]
