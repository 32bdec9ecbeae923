"""Builder: tuning against the closed form, seeding, ordering, decoders, functions."""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.build import build, gain_bias, lif_rates, solve_decoders, topological_order
from spikestream.errors import BuildError, ConfigError, NetworkFileError
from spikestream.functions import (
    MAX_EXPRESSION_CHARS,
    MAX_EXPRESSION_DEPTH,
    compile_function,
)
from spikestream.signals import signal_values
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


def _declared_first(pops: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """The rule written plainly (quadratic): the first declared population whose inputs
    are all placed, or the first one left when none is (a cycle)."""
    incoming = {p: {a for a, b in edges if b == p and a != p} for p in pops}
    order: list[str] = []
    while len(order) < len(pops):
        left = [p for p in pops if p not in order]
        ready = [p for p in left if incoming[p] <= set(order)]
        order.append(ready[0] if ready else left[0])
    return order


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.permutations([f"p{i}" for i in range(n)]),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30),
        )
    )
)
def test_topological_order_follows_the_declared_first_rule(
    case: tuple[list[str], list[tuple[int, int]]],
) -> None:
    pops, pairs = case
    edges = [(pops[a], pops[b]) for a, b in pairs]
    assert topological_order(pops, edges) == _declared_first(pops, edges)


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


def test_fewer_points_than_neurons_solve_the_dual_form_to_the_same_decoders() -> None:
    """With fewer evaluation points than neurons the decoders are ``A.T (A A.T + m s^2
    I)^-1 Y``, equal to the normal equations' solution, and no ``n x n`` Gram matrix is
    made (a 6,000-neuron solve at 100 points formed one of 288 MB, taking 4 s)."""
    rng = np.random.default_rng(5)
    points, n, reg = 100, 6000, 0.1
    a = np.maximum(0.0, rng.normal(40.0, 60.0, (points, n)))
    y = rng.uniform(-1.0, 1.0, (points, 2))
    tracemalloc.start()
    try:
        d = solve_decoders(a, y, reg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.shape == (n, 2)
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB: an n x n Gram matrix was formed"
    # The normal equations, checked without forming them: D must satisfy
    # (A.T A + m s^2 I) D = A.T Y, i.e. A.T (A D - Y) + m s^2 D = 0.
    lam = points * (reg * a.max()) ** 2
    residual = a.T @ (a @ d - y) + lam * d
    assert np.abs(residual).max() <= 1e-9 * np.abs(a.T @ y).max()
    # And the same decoders as the n x n solve, on a size where that is cheap.
    small = a[:, :300][:50]
    primal = np.linalg.solve(
        small.T @ small + 50 * (reg * small.max()) ** 2 * np.eye(300), small.T @ y[:50]
    )
    np.testing.assert_allclose(solve_decoders(small, y[:50], reg), primal, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(("points", "n"), [(100, 200), (300, 200)])
def test_without_regularisation_the_fit_is_the_best_there_is(points: int, n: int) -> None:
    """``reg = 0`` with 30 active neurons of 200: both Gram matrices are singular, and a
    solve of the dual one fitted 100 times worse than least squares can. The residual must
    be the optimal one, computed here from an orthonormal basis of the active columns."""
    rng = np.random.default_rng(7)
    a = np.zeros((points, n))
    a[:, :30] = rng.uniform(0.0, 200.0, (points, 30))
    y = rng.uniform(-1.0, 1.0, (points, 2))
    d = solve_decoders(a, y, reg=0.0)
    q, _ = np.linalg.qr(a[:, :30])
    best = np.linalg.norm(y - q @ (q.T @ y))
    assert np.linalg.norm(a @ d - y) <= best * (1 + 1e-9)
    assert np.abs(d[30:]).max() <= 1e-12 * np.abs(d).max()  # minimum norm: silent get none


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
        # A function's name as a value was let through, then a KeyError ended the build.
        ("sin", r"the function 'sin' other than called, as sin\(\.\.\.\)"),
        ("x + clip", "the function 'clip' other than called"),
        ("sin(round)", "the function 'round' other than called"),
    ],
)
def test_unsafe_expressions_are_refused(text: str, what: str) -> None:
    with pytest.raises(NetworkFileError, match=f"{what}.* is not allowed"):
        compile_function(text)


def test_function_by_import_path_needs_the_opt_in() -> None:
    with pytest.raises(NetworkFileError) as info:
        compile_function("numpy:square", where="connections[0].function")
    msg = str(info.value)
    assert msg.startswith("connections[0].function: 'numpy:square' names a Python callable")
    assert "importing module 'numpy' runs its code" in msg
    assert "--allow-python-functions" in msg
    # Refused before anything is imported.
    with pytest.raises(NetworkFileError, match="names a Python callable"):
        compile_function("nosuchmodule:f")


def test_function_by_import_path_when_allowed() -> None:
    fn = compile_function("numpy:square", allow_python=True)
    np.testing.assert_allclose(fn(np.array([[2.0], [3.0]])), [[4.0], [9.0]])
    with pytest.raises(NetworkFileError, match="cannot import 'nosuchmodule:f'"):
        compile_function("nosuchmodule:f", allow_python=True)
    with pytest.raises(
        NetworkFileError,
        match=r"^w: 'math:pi' is a float, not callable; expected a function of one point",
    ):
        compile_function("math:pi", allow_python=True, where="w")
    failing = compile_function(f"{__name__}:_fails", allow_python=True, where="probes.p.function")
    with pytest.raises(
        BuildError,
        match=r"probes\.p\.function: '.*:_fails' raised ZeroDivisionError at x = \[0\.0\]",
    ):
        failing(np.array([[1.0], [0.0]]))


def _fails(point: np.ndarray) -> float:
    """A Python function for decoded connections that fails at 0."""
    return 1.0 / float(point[0])


def _slow(point: np.ndarray) -> float:
    """A Python function for decoded connections that takes 10 ms a point."""
    time.sleep(0.01)
    return float(point[0])


DECODED = {
    "network": {"seed": 1},
    "populations": {"a": {"n": 20}, "b": {"n": 10}},
    "connections": [{"pre": "a", "post": "b", "function": "x"}],
}


def _decoded(function: str) -> dict[str, object]:
    return {**DECODED, "connections": [{"pre": "a", "post": "b", "function": function}]}


def test_python_callable_in_a_network_is_refused_unless_allowed() -> None:
    spec = parse_network(_decoded("numpy:square"), source="loop.toml")
    with pytest.raises(NetworkFileError) as info:
        build(spec)
    msg = str(info.value)
    assert msg.startswith("loop.toml: connections[0].function: 'numpy:square' names a Python")
    assert "\n" not in msg
    model = build(spec, allow_python_functions=True)
    reference = build(parse_network(_decoded("x**2")))
    dec, ref = model.connections[0].decoders, reference.connections[0].decoders
    assert dec is not None
    assert ref is not None
    np.testing.assert_allclose(dec, ref, rtol=1e-9, atol=1e-12)


def test_huge_integer_power_is_refused_at_once() -> None:
    # Evaluated with Python integers this never finished; every number is now a float64,
    # and the constant part that overflows is named.
    started = time.perf_counter()
    with pytest.raises(NetworkFileError) as info:
        compile_function("x * 9**9**9**9", where="connections[0].function")
    assert time.perf_counter() - started < 1.0
    assert str(info.value) == (
        "connections[0].function: the part '9 ** 9 ** 9 ** 9' of 'x * 9**9**9**9' evaluates "
        "to inf, which is not allowed; every number in an expression must stay a finite "
        "float64 (at most about 1.8e308)"
    )


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (
            "-" * 100_000 + "x",
            f"an expression of 100001 characters .* at most {MAX_EXPRESSION_CHARS}",
        ),
        ("-" * 1_999 + "x", f"nests deeper than {MAX_EXPRESSION_DEPTH} levels"),
        ("sin(" * 110 + "x" + ")" * 110, f"nests deeper than {MAX_EXPRESSION_DEPTH} levels"),
        ("+".join(["x"] * 600), f"nests deeper than {MAX_EXPRESSION_DEPTH} levels"),
        ("[" + ",".join(["x[0]"] * 399) + "]", "has more than 1000 parts"),
        ("(" * 300 + "x" + ")" * 300, "not a valid expression"),
    ],
)
def test_oversized_expressions_are_refused_before_evaluation(text: str, what: str) -> None:
    started = time.perf_counter()
    with pytest.raises(NetworkFileError, match=rf"^connections\[0\]\.function: .*{what}"):
        compile_function(text, where="connections[0].function")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("sin(x, x)", r"calling sin with 2 argument\(s\) \(it takes 1\)"),
        ("clip(x, 0)", r"calling clip with 2 argument\(s\) \(it takes 3\)"),
        ("x[1 + 1]", r"the index '1 \+ 1'"),
        ("x[0][0]", "indexing anything but x"),
        ("round(x, 99)", "round's second argument"),
        ("1e999 * x", "the number inf"),
        ("1" * 400 + " * x", "the number 1111"),
        ("True * x", "the constant True"),
        ("1 / 0 + x", "the part '1 / 0' .* evaluates to inf"),
        ("sqrt(-1) * x", r"the part 'sqrt\(-1\)' .* evaluates to nan"),
    ],
)
def test_expressions_that_cannot_give_finite_values_are_refused(text: str, what: str) -> None:
    with pytest.raises(NetworkFileError, match=what):
        compile_function(text)


def test_allowed_forms_still_evaluate() -> None:
    pts = np.random.default_rng(1).uniform(-1, 1, (40, 3))
    cases = {
        "x[-1]": pts[:, 2:],
        "x[0:2]": pts[:, 0:2],
        "round(x[0], 1)": np.round(pts[:, :1], 1),
        "clip(x[0], -0.5, 0.5)": np.clip(pts[:, :1], -0.5, 0.5),
        "2 ** 10 * x[1]": 1024 * pts[:, 1:2],
        "x[0] ** 2 ** 3": pts[:, :1] ** 8,
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(compile_function(text)(pts), expected, err_msg=text)


def test_evaluation_past_the_deadline_is_refused() -> None:
    fn = compile_function("sin(x) + cos(x)", where="probes.p.function", timeout=0.0)
    with pytest.raises(
        BuildError, match=r"probes\.p\.function: 'sin\(x\) \+ cos\(x\)' did not finish within 0 s"
    ):
        fn(np.zeros((10, 1)))
    slow = compile_function(f"{__name__}:_slow", allow_python=True, timeout=0.05)
    started = time.perf_counter()
    with pytest.raises(BuildError, match=r"did not finish within 0\.05 s over 1000 evaluation"):
        slow(np.full((1000, 1), 0.01))
    assert time.perf_counter() - started < 1.0


def test_non_finite_function_values_are_refused_naming_key_and_point() -> None:
    spec = parse_network(_decoded("1 / (x - x)"), source="net.toml")
    with pytest.raises(BuildError) as info:
        build(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(
        "net.toml: connections[0].function: '1 / (x - x)' is not finite at 750 of 750 "
        "evaluation points (e.g. x = ["
    )
    assert "a decoded function must be finite over the unit ball" in msg
    spec = parse_network(
        {**DECODED, "probes": {"p": {"target": "a", "kind": "decoded", "function": "log(x)"}}}
    )
    with pytest.raises(BuildError, match=r"probes\.p\.function: 'log\(x\)' is not finite"):
        build(spec)


def test_gain_bias_refuses_non_finite_results() -> None:
    with pytest.raises(BuildError, match="give a non-finite gain or bias"):
        gain_bias(np.array([1e300]), np.array([0.0]), 1e10, 0.0)


def test_file_signal_index_stays_in_range_on_very_long_runs(tmp_path: Path) -> None:
    np.save(tmp_path / "u.npy", np.array([1.0, 2.0, 3.0]))
    t = np.array([0.0, 1e-9, 1e12])  # 1e12 / 1e-9 samples is far beyond int64
    for loop in (False, True):
        spec = parse_network(
            {
                "populations": {"a": {"n": 2}},
                "inputs": {
                    "u": {"signal": {"kind": "file", "path": "u.npy", "dt": 1e-9, "loop": loop}}
                },
            }
        )
        spec._base_dir = tmp_path
        values = signal_values(spec, "u", t)
        assert values[0, 0] == 1.0
        assert values[1, 0] == 2.0
        if loop:
            assert values[2, 0] in (1.0, 2.0, 3.0)
        else:
            assert values[2, 0] == 3.0


def test_function_running_out_of_memory_is_a_build_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def compile_greedy(text: str, **kwargs: object) -> object:
        def fn(points: np.ndarray) -> np.ndarray:
            raise MemoryError

        return fn

    monkeypatch.setattr("spikestream.build.compile_function", compile_greedy)
    with pytest.raises(
        BuildError,
        match=r"^n\.toml: connections\[0\]\.function: 'x' over 750 evaluation points needs more "
        "memory than is available",
    ):
        build(parse_network(DECODED, source="n.toml"))


def _npy_header_only(path: Path, shape: tuple[int, ...], descr: str = "<f8") -> None:
    """A ``.npy`` file whose header claims ``shape`` but that holds no data."""
    with path.open("wb") as fh:
        header = {"descr": descr, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(fh, header)


@pytest.mark.parametrize(
    ("shape", "descr", "what"),
    [
        ((10**6, 10**6), "<f8", r"header claims shape \(1000000, 1000000\) \(8000000000000 bytes"),
        ((20, 10), "|O", "it holds object values; expected real numbers"),
        ((20, 10), "<c16", "it holds complex128 values; expected real numbers"),
        ((20, 10), "version 3", r"it has \.npy format \(3, 0\); expected 1\.0 or 2\.0"),
    ],
)
def test_weight_file_headers_are_checked_before_allocating(
    tmp_path: Path, shape: tuple[int, ...], descr: str, what: str
) -> None:
    if descr == "version 3":
        np.save(tmp_path / "w.npy", np.zeros(shape))
        data = bytearray((tmp_path / "w.npy").read_bytes())
        data[6] = 3
        (tmp_path / "w.npy").write_bytes(bytes(data))
    else:
        _npy_header_only(tmp_path / "w.npy", shape, descr)
    spec = parse_network(
        {
            "populations": {"a": {"n": 20}, "b": {"n": 10}},
            "connections": [{"pre": "a", "post": "b", "weights": {"file": "w.npy"}}],
        },
        source="net.toml",
    )
    spec._base_dir = tmp_path
    with pytest.raises(NetworkFileError) as info:
        build(spec)
    msg = str(info.value)
    assert msg.startswith(
        f"net.toml: connections[0].weights.file: cannot load {str(tmp_path / 'w.npy')!r}: "
    ), msg
    assert re.search(what, msg), msg


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_signal_and_encoder_files_must_be_regular_files(tmp_path: Path, suffix: str) -> None:
    # A FIFO with no writer (or /dev/zero) blocked the build or fed it without end.
    fifo = tmp_path / f"u{suffix}"
    os.mkfifo(fifo)
    spec = parse_network(
        {
            "populations": {"a": {"n": 2, "encoders": fifo.name}},
            "inputs": {"u": {"signal": {"kind": "file", "path": fifo.name}}},
        },
        source="net.toml",
    )
    spec._base_dir = tmp_path
    with pytest.raises(
        NetworkFileError,
        match=rf"^net\.toml: inputs\.u\.signal: {re.escape(repr(str(fifo)))} "
        "is not a regular file; expected a .npy or CSV file$",
    ):
        signal_values(spec, "u", np.zeros(3))
    if suffix == ".npy":
        with pytest.raises(NetworkFileError, match=r"populations\.a\.encoders: .* not a regular"):
            build(spec)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        # (points,) against (points, 1) broadcast to (points, points): 8 TB at 10^6 points.
        ("x[0] * [x[0]]", r"'x\[0\] \* \[x\[0\]\]' give shape \(3000, 3000\)"),
        ("x[0] < [x[0]]", r"give shape \(3000, 3000\)"),
        ("where(x[0], [x[1]], 1)", r"give shape \(3000, 3000\)"),
        ("[x]", r"the list element 'x' has shape \(3000, 2\)"),
    ],
)
def test_broadcasting_cannot_square_the_evaluation_points(text: str, what: str) -> None:
    fn = compile_function(text, where="connections[0].function")
    with pytest.raises(BuildError, match=rf"^connections\[0\]\.function: in .*{what}"):
        fn(np.zeros((3000, 2)))


def test_constant_parts_of_mismatched_lengths_are_refused_at_compile() -> None:
    # numpy's ValueError escaped compile_function, which the build does not guard.
    with pytest.raises(
        BuildError,
        match=r"values of shapes \(1, 2\), \(1, 3\) in '\[1, 2\] \+ \[1, 2, 3\]' do not fit",
    ):
        compile_function("x + ([1, 2] + [1, 2, 3])")


def test_vector_expressions_of_allowed_widths_still_evaluate() -> None:
    pts = np.random.default_rng(2).uniform(-1, 1, (50, 2))
    cases = {
        "[x[0], x[1]] * x": pts * pts,
        "[1, 2] * x[0:1]": pts[:, :1] * np.array([1.0, 2.0]),
        "[x[0] * x[1], 1, x[0] < x[1]]": np.stack(
            [pts[:, 0] * pts[:, 1], np.ones(50), (pts[:, 0] < pts[:, 1]).astype(float)], axis=1
        ),
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(compile_function(text)(pts), expected, err_msg=text)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300])
def test_weight_and_signal_file_values_are_bounded_as_in_the_network_file(
    tmp_path: Path, value: float
) -> None:
    # A finite 1e300 weight overflowed to inf in the first tick; the file itself only
    # allows |value| <= 1e9.
    w = np.zeros((20, 10))
    w[3, 4] = value
    np.save(tmp_path / "w.npy", w)
    (tmp_path / "u.csv").write_text(f"0.5\n{value}\n")
    spec = parse_network(
        {
            "populations": {"a": {"n": 20}, "b": {"n": 10}},
            "inputs": {"u": {"signal": {"kind": "file", "path": "u.csv"}}},
            "connections": [{"pre": "a", "post": "b", "weights": {"file": "w.npy"}}],
        },
        source="net.toml",
    )
    spec._base_dir = tmp_path
    allowed = "that are NaN, infinite or beyond +-1e+09, which is not allowed; expected finite"
    with pytest.raises(NetworkFileError) as info:
        build(spec)
    assert str(info.value).startswith(
        f"net.toml: connections[0].weights.file: {str(tmp_path / 'w.npy')!r} holds 1 value(s) "
        + allowed
    ), info.value
    with pytest.raises(NetworkFileError, match=re.escape(f"holds 1 value(s) {allowed}")):
        signal_values(spec, "u", np.zeros(2))


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
    folder = tmp_path / "spikestream" / "decoders"
    entries = sorted(folder.glob("*.npy"))
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
    # Right shape and dtype, wrong values: the content digest in the name no longer fits.
    d = np.load(entries[1])
    np.save(entries[1], d + 1.0)
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


def test_decoder_cache_entries_are_read_as_hostile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO, a header claiming terabytes, a pickle and a header numpy cannot tokenize
    under an entry's name are all passed over (solved again, same decoders), without
    blocking or allocating."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = parse_network(DECODED)
    first = build(spec)
    folder = tmp_path / "spikestream" / "decoders"
    (entry,) = folder.glob("*.npy")
    key = entry.name.split(".")[0]
    entry.unlink()
    os.mkfifo(folder / f"{key}.{'0' * 32}.npy")
    _npy_header_only(folder / f"{key}.{'1' * 32}.npy", (10**6, 10**6))
    np.save(folder / f"{key}.{'2' * 32}.npy", np.array([{"x": 1}], dtype=object))
    # An unclosed "{": numpy's TokenError ended every build of the network (a traceback).
    (folder / f"{key}.{'3' * 32}.npy").write_bytes(b"\x93NUMPY\x01\x00\x06\x00{    \n")
    started = time.perf_counter()
    second = build(spec)
    assert time.perf_counter() - started < 30.0
    d1, d2 = first.connections[0].decoders, second.connections[0].decoders
    assert d1 is not None
    assert d2 is not None
    np.testing.assert_array_equal(d1, d2)


def test_a_large_decoder_cache_entry_of_the_wrong_shape_is_passed_over_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real 16 MB file under an entry's name, of a shape the solve cannot have made, is
    passed over from its header (numpy reports its allocations to tracemalloc)."""
    import tracemalloc

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = parse_network(DECODED)
    build(spec)
    folder = tmp_path / "spikestream" / "decoders"
    (entry,) = folder.glob("*.npy")
    key = entry.name.split(".")[0]
    entry.unlink()
    np.save(folder / f"{key}.{'0' * 32}.npy", np.zeros((2_000_000, 1)))
    tracemalloc.start()
    try:
        build(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak


def test_decoder_cache_keys_on_what_the_solve_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed function, radius or reg is solved again, never served from the cache;
    a Python callable giving the same values as an expression shares its entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "spikestream" / "decoders"

    def decoders(net: dict[str, object], **kw: bool) -> np.ndarray:
        d = build(parse_network(net), **kw).connections[0].decoders
        assert d is not None
        return d

    base = decoders(_decoded("x**2"))
    assert len(list(folder.glob("*.npy"))) == 1
    other = decoders(_decoded("x**3"))
    assert not np.array_equal(base, other)
    wide = {**_decoded("x**2"), "populations": {"a": {"n": 20, "radius": 2.0}, "b": {"n": 10}}}
    assert not np.array_equal(base, decoders(wide))
    reg = {**DECODED, "connections": [{"pre": "a", "post": "b", "function": "x**2", "reg": 0.5}]}
    assert not np.array_equal(base, decoders(reg))
    assert len(list(folder.glob("*.npy"))) == 4
    monkeypatch.setenv("SPIKESTREAM_DECODER_CACHE", "0")
    uncached = decoders(_decoded("x**2"))
    np.testing.assert_array_equal(base, uncached)


def test_decoder_cache_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    from spikestream.decodercache import decoder_cache_dir

    assert decoder_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/spikestream/decoders")
    home = Path.home() / ".cache" / "spikestream" / "decoders"
    assert decoder_cache_dir({"XDG_CACHE_HOME": "relative/c"}) == home
    assert decoder_cache_dir({}) == home
    assert decoder_cache_dir({"SPIKESTREAM_DECODER_CACHE": "0"}) is None
    # "off" left the cache on: only "0" was read.
    for off in ("off", "False", " no "):
        assert decoder_cache_dir({"SPIKESTREAM_DECODER_CACHE": off}) is None
    for on in ("1", "on", "YES", ""):
        assert decoder_cache_dir({"SPIKESTREAM_DECODER_CACHE": on}) == home
    with pytest.raises(ConfigError, match=r"SPIKESTREAM_DECODER_CACHE='maybe' is not allowed"):
        decoder_cache_dir({"SPIKESTREAM_DECODER_CACHE": "maybe"})


def test_large_populations_solve_their_decoders_on_one_blas_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numpy's OpenBLAS crashed (SIGSEGV) computing the Gram matrix of ~15,500 neurons on
    two threads; from BLAS_ONE_THREAD_FROM neurons the solve runs on one, below on all."""
    from threadpoolctl import threadpool_info

    import spikestream.build as build_module

    def blas_threads() -> int:
        return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")

    seen: list[int] = []
    real_solve = np.linalg.solve

    def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        seen.append(blas_threads())
        return real_solve(a, b)

    monkeypatch.setattr(np.linalg, "solve", solve)
    monkeypatch.setattr(build_module, "BLAS_ONE_THREAD_FROM", 8)
    rng = np.random.default_rng(0)
    for n in (4, 8):
        build_module.solve_decoders(rng.random((50, n)), rng.random((50, 1)), 0.1)
    assert seen[1] == 1
    assert seen[0] == blas_threads()
    assert seen[0] > 1  # this machine's BLAS runs on more than one thread by default
