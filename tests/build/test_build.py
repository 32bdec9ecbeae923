"""Builder: tuning against the closed form, seeding, ordering, decoders, functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build, gain_bias, lif_rates, solve_decoders, topological_order
from spikestream.errors import BuildError, NetworkFileError
from spikestream.functions import compile_function
from spikestream.spec import load_network, parse_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def test_gain_bias_closed_form() -> None:
    rng = np.random.default_rng(0)
    max_rates = rng.uniform(200, 400, 100)
    intercepts = rng.uniform(-1, 1, 100)
    tau_rc, tau_ref = 0.02, 0.002
    gain, bias = gain_bias(max_rates, intercepts, tau_rc, tau_ref)
    x = 1.0 / (1.0 - np.exp((tau_ref - 1.0 / max_rates) / tau_rc))
    np.testing.assert_allclose(gain, (1 - x) / (intercepts - 1), rtol=1e-14)
    np.testing.assert_allclose(bias, 1 - gain * intercepts, rtol=1e-14)
    # What the closed form means: the rate at x = 1 is max_rate, and J = 1 (threshold) at
    # the intercept.
    np.testing.assert_allclose(lif_rates(gain + bias, tau_rc, tau_ref), max_rates, rtol=1e-9)
    np.testing.assert_allclose(gain * intercepts + bias, 1.0, rtol=1e-12)


def test_gain_bias_rejects_unreachable_rates() -> None:
    with pytest.raises(
        BuildError,
        match=r"max rate 600\.0 Hz is not reachable: LIF rates must be < 1/tau_ref = 500 Hz",
    ):
        gain_bias(np.array([300.0, 600.0]), np.array([0.0, 0.0]), 0.02, 0.002)


def test_tuning_draws_follow_the_spec() -> None:
    model = build(load_network(SEED))
    a = model.populations["a"]
    assert a.max_rates.shape == (50,)
    assert a.encoders.shape == (50, 1)
    assert np.all((a.max_rates >= 200) & (a.max_rates < 400))
    assert np.all((a.intercepts >= -1) & (a.intercepts < 1))
    np.testing.assert_allclose(np.linalg.norm(a.encoders, axis=1), 1.0)
    w = model.connections[0].weights
    assert w is not None
    assert w.shape == (50, 40)
    assert abs(float(w.mean())) < 0.1
    assert abs(float(w.std()) - 1.0) < 0.05


def test_same_seed_same_network_other_seed_differs() -> None:
    spec = load_network(SEED)
    m1, m2, m3 = build(spec), build(spec), build(spec, seed=2)
    for key, arr in m1.arrays().items():
        np.testing.assert_array_equal(arr, m2.arrays()[key])
    assert not np.array_equal(m1.populations["a"].gain, m3.populations["a"].gain)


def test_adding_a_population_keeps_the_others_draws() -> None:
    base = {"network": {"seed": 5}, "populations": {"a": {"n": 10}}}
    more = {"network": {"seed": 5}, "populations": {"z": {"n": 7}, "a": {"n": 10}}}
    a1 = build(parse_network(base)).populations["a"]
    a2 = build(parse_network(more)).populations["a"]
    np.testing.assert_array_equal(a1.gain, a2.gain)
    np.testing.assert_array_equal(a1.encoders, a2.encoders)


def test_no_seed_draws_one_and_records_it() -> None:
    spec = parse_network({"populations": {"a": {"n": 10}}})
    m = build(spec)
    again = build(spec, seed=m.seed)
    np.testing.assert_array_equal(m.populations["a"].bias, again.populations["a"].bias)


def test_topological_order_breaks_cycles_at_the_first_declared() -> None:
    assert topological_order(["b", "a"], [("a", "b")]) == ["a", "b"]
    assert topological_order(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")]) == [
        "a",
        "b",
        "c",
    ]
    assert topological_order(["a", "b"], [("a", "a"), ("b", "a")]) == ["b", "a"]


def test_float32_build() -> None:
    model = build(load_network(SEED), dtype="float32")
    assert model.dtype == np.float32


def test_identity_decoders_are_accurate() -> None:
    spec = parse_network(
        {
            "network": {"seed": 1},
            "populations": {"a": {"n": 200}},
            "probes": {"p": {"target": "a", "kind": "decoded"}},
        }
    )
    model = build(spec)
    pop, probe = model.populations["a"], model.probes["p"]
    assert probe.decoders is not None
    x = np.linspace(-1, 1, 201)[:, None]
    estimate = pop.rates(x) @ probe.decoders
    rmse = float(np.sqrt(np.mean((estimate - x) ** 2)))
    assert rmse < 0.02


def test_solve_decoders_recovers_exact_linear_map() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 100, (500, 20))
    d_true = rng.standard_normal((20, 2))
    d = solve_decoders(a, a @ d_true, reg=0.0)
    np.testing.assert_allclose(d, d_true, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x**2", lambda p: p[:, :1] ** 2),
        ("sin(pi * x)", lambda p: np.sin(np.pi * p[:, :1])),
        ("[x[0] * x[1], x[0]]", lambda p: np.stack([p[:, 0] * p[:, 1], p[:, 0]], axis=1)),
        ("-x + 1", lambda p: 1 - p[:, :1]),
        ("x > 0", lambda p: (p[:, :1] > 0).astype(float)),
    ],
)
def test_function_expressions(text: str, expected: object) -> None:
    pts = np.random.default_rng(0).uniform(-1, 1, (30, 2))
    fn = compile_function(text)
    one_d = pts[:, :1] if "x[1]" not in text else pts
    np.testing.assert_allclose(fn(one_d), expected(one_d))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("__import__('os').system('true')", "calling the result of an expression"),
        ("__import__('os')", "the name '__import__'"),
        ("x.__class__", "Attribute"),
        ("(lambda: 1)()", "calling the result of an expression"),
        ("open('f')", "the name 'open'"),
        ("'a' * 3", "the constant 'a'"),
    ],
)
def test_unsafe_expressions_are_refused(text: str, what: str) -> None:
    with pytest.raises(NetworkFileError, match=f"{what}.* is not allowed"):
        compile_function(text)


def test_function_by_import_path() -> None:
    fn = compile_function("numpy:square")
    np.testing.assert_allclose(fn(np.array([[2.0], [3.0]])), [[4.0], [9.0]])
    with pytest.raises(NetworkFileError, match="cannot import 'nosuchmodule:f'"):
        compile_function("nosuchmodule:f")


def test_decoders_come_from_the_disk_cache_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second build reads the solved decoders back (no solve), identical to the bit; a
    corrupt entry is solved again; with the cache off nothing is written."""
    import spikestream.build as builder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = parse_network(
        {
            "network": {"seed": 7},
            "populations": {"a": {"n": 120, "dim": 2}, "b": {"n": 80, "dim": 2}},
            "connections": [{"pre": "a", "post": "b", "function": "x * 0.5"}],
            "probes": {"y": {"target": "b", "kind": "decoded"}},
        }
    )
    first = build(spec)
    entries = sorted((tmp_path / "spikestream" / "decoders").glob("*.npy"))
    assert len(entries) == 2  # the connection's and the probe's

    def no_solve(*args: object) -> None:
        raise AssertionError("solved again")

    with monkeypatch.context() as m:
        m.setattr(builder, "solve_decoders", no_solve)
        second = build(spec)
    for c1, c2 in zip(first.connections, second.connections, strict=True):
        assert c1.decoders is not None
        assert c2.decoders is not None
        np.testing.assert_array_equal(c1.decoders, c2.decoders)
    np.testing.assert_array_equal(first.probes["y"].decoders, second.probes["y"].decoders)

    entries[0].write_bytes(b"not an npy file")
    third = build(spec)
    np.testing.assert_array_equal(first.probes["y"].decoders, third.probes["y"].decoders)
    c3 = third.connections[0].decoders
    assert c3 is not None
    assert first.connections[0].decoders is not None
    np.testing.assert_array_equal(first.connections[0].decoders, c3)

    monkeypatch.setenv("SPIKESTREAM_DECODER_CACHE", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "off"))
    build(spec)
    assert not (tmp_path / "off").exists()
