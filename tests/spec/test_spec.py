"""Network files: validation errors name the file, the key path, the value and what is
allowed."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import BuildError, NetworkFileError
from spikestream.spec import ConnectionSpec, check_name, load_network, parse_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"

BASE = """
[network]
name = "t"
seed = 3
[populations.a]
n = 5
[populations.b]
n = 4
[inputs.u]
target = "a"
[[connections]]
pre = "a"
post = "b"
weights = { dist = "normal" }
"""


def write(tmp_path: Path, text: str, name: str = "net.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_seed_example_is_the_tutorial_network() -> None:
    spec = load_network(SEED)
    assert spec.name == "seed"
    assert spec.network.dt == 0.001
    a, b = spec.populations["a"], spec.populations["b"]
    assert (a.n, b.n) == (50, 40)
    for p in (a, b):
        assert (p.tau_rc, p.tau_ref) == (0.02, 0.002)
        assert p.max_rates == (200.0, 400.0)
        assert p.intercepts == (-1.0, 1.0)
    (conn,) = spec.connections
    assert (conn.pre, conn.post, conn.synapse) == ("a", "b", 0.1)
    assert conn.weights is not None
    assert conn.weights.model_dump()["dist"] == "normal"
    u = spec.inputs["u"]
    assert u.target == "a"
    assert u.signal.kind == "sin"


def test_unknown_key_names_file_path_and_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("n = 5", "n = 5\nneurons = 7"))
    with pytest.raises(NetworkFileError, match=r"net\.toml") as info:
        load_network(path)
    msg = str(info.value)
    assert "populations.a" in msg
    assert "unknown key 'neurons'" in msg
    assert "allowed keys:" in msg
    assert "tau_rc" in msg


@pytest.mark.parametrize("n", [0, -3])
def test_n_must_be_positive(tmp_path: Path, n: int) -> None:
    path = write(tmp_path, BASE.replace("n = 5", f"n = {n}"))
    with pytest.raises(NetworkFileError, match=rf"populations\.a\.n: .*greater than 0 \(got {n}\)"):
        load_network(path)


def test_max_rate_above_one_over_tau_ref(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("n = 5", "n = 5\nmax_rates = [200, 600]"))
    with pytest.raises(NetworkFileError, match=r"populations\.a: max_rates: 600\.0 Hz .* < 500 Hz"):
        load_network(path)


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        # A LIF neuron never reaches 1/tau_ref (500 Hz here): the bound itself is refused.
        ("max_rates = [200, 500]", r"max_rates: 500\.0 Hz is not allowed; .* < 500 Hz"),
        ("max_rates = [0, 400]", r"max_rates: 0\.0 Hz is not allowed; max rates must be > 0 Hz"),
        ("max_rates = [-5, 400]", r"max_rates: -5\.0 Hz is not allowed"),
        ("intercepts = [1, 1]", r"intercepts: \[1\.0, 1\.0\] is not allowed; .* low < 1"),
        ("intercepts = [-2, 0]", r"intercepts: \[-2\.0, 0\.0\] is not allowed; .* \[-1, 1\]"),
        ("intercepts = [0, 1.5]", r"intercepts: \[0\.0, 1\.5\] is not allowed"),
    ],
)
def test_tuning_at_or_past_its_bounds_is_refused(
    tmp_path: Path, tuning: str, expected: str
) -> None:
    path = write(tmp_path, BASE.replace("n = 5", f"n = 5\n{tuning}"))
    with pytest.raises(NetworkFileError, match=rf"populations\.a: {expected}"):
        load_network(path)


@pytest.mark.parametrize("tuning", ["max_rates = [1, 499.9]", "intercepts = [-1, 1]"])
def test_tuning_just_inside_its_bounds_loads(tmp_path: Path, tuning: str) -> None:
    spec = load_network(write(tmp_path, BASE.replace("n = 5", f"n = 5\n{tuning}")))
    assert spec.populations["a"].n == 5


def test_weight_file_of_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.ones((4, 5)))
    path = write(
        tmp_path, BASE.replace('weights = { dist = "normal" }', 'weights = { file = "w.npy" }')
    )
    spec = load_network(path)
    with pytest.raises(
        BuildError,
        match=r"connections\[0\]\.weights\.file: .*w\.npy' has shape \(4, 5\); expected \(5, 4\)",
    ):
        build(spec)


@pytest.mark.parametrize("key", ["weights", "decoders"])
def test_a_large_array_file_of_the_wrong_shape_is_refused_before_it_is_read(
    tmp_path: Path, key: str
) -> None:
    """A side file's header is compared with the shape the network needs before its data
    is read: a 16 MB file for a 5 x 4 weight matrix (or 5-row decoders) allocates nothing
    like its size (numpy reports its allocations to tracemalloc)."""
    import tracemalloc

    np.save(tmp_path / "w.npy", np.zeros((2_000_000, 1)))
    entry = 'weights = { file = "w.npy" }' if key == "weights" else 'decoders = "w.npy"'
    path = write(tmp_path, BASE.replace('weights = { dist = "normal" }', entry))
    spec = load_network(path)
    tracemalloc.start()
    try:
        with pytest.raises(BuildError, match=r"w\.npy' has shape \(2000000, 1\); expected"):
            build(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak


def test_weight_file_of_right_shape_is_used(tmp_path: Path) -> None:
    w = np.arange(20, dtype=float).reshape(5, 4)
    np.save(tmp_path / "w.npy", w)
    path = write(
        tmp_path, BASE.replace('weights = { dist = "normal" }', 'weights = { file = "w.npy" }')
    )
    model = build(load_network(path))
    assert model.connections[0].weights is not None
    np.testing.assert_array_equal(model.connections[0].weights, w)


def test_connection_to_missing_population(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('post = "b"', 'post = "c"'))
    with pytest.raises(
        NetworkFileError,
        match=r"connections\[0\]\.post: 'c' is not a population; expected one of: a, b",
    ):
        load_network(path)


def test_duplicate_table_in_toml(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "\n[populations.a]\nn = 3\n")
    with pytest.raises(NetworkFileError, match=r"net\.toml: not valid TOML: .*"):
        load_network(path)


def test_population_and_input_share_a_name(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '\n[inputs.b]\ntarget = "a"\n')
    with pytest.raises(
        NetworkFileError, match=r"duplicate name 'b': used by a population and an input"
    ):
        load_network(path)


def test_duplicate_connection_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, BASE + '\n[[connections]]\npre = "a"\npost = "b"\nweights = { dist = "normal" }\n'
    )
    with pytest.raises(
        NetworkFileError, match=r"connections\[1\]: duplicate connection name 'a->b'"
    ):
        load_network(path)


@pytest.mark.parametrize("bad", ["a/b", "a+", "#", "has space", "", "a.b"])
def test_names_that_would_break_topics_are_refused(bad: str) -> None:
    data = {"populations": {bad: {"n": 3}}}
    with pytest.raises(NetworkFileError, match="should match pattern"):
        parse_network(data, source="inline")


@pytest.mark.parametrize("bad", ["a\x1b[2Jb", "x" * 65, "a->b->c", "a/b", "", "a->", "a b"])
def test_connection_names_follow_the_naming_rule(bad: str) -> None:
    # They reach events, logs and the keys of a run's .npz: escape sequences or megabytes
    # of text were accepted.
    data = {
        "populations": {"a": {"n": 3}},
        "connections": [{"pre": "a", "post": "a", "function": "x", "name": bad}],
    }
    with pytest.raises(NetworkFileError, match=r"^inline: connections\[0\]\.name: .*pattern"):
        parse_network(data, source="inline")
    for good in ("a->a", "rec_1", "fb-2"):
        data["connections"] = [{"pre": "a", "post": "a", "function": "x", "name": good}]
        assert parse_network(data).connections[0].label == good


def test_a_network_may_not_be_named_like_the_sync_topics() -> None:
    """``<prefix>/_sync/`` holds the clients' sync topics, which the shipped ACL lets every
    client user write: a network named ``_sync`` would take its inputs and control from
    there. Other names with a leading ``_`` stay allowed."""
    with pytest.raises(NetworkFileError, match=r"^inline: network\.name: '_sync' is reserved"):
        parse_network(
            {"network": {"name": "_sync"}, "populations": {"a": {"n": 3}}}, source="inline"
        )
    for name in ("_syncs", "sync", "_private"):
        data = {"network": {"name": name}, "populations": {"a": {"n": 3}}}
        assert parse_network(data).network.name == name


def test_check_name_refuses_a_trailing_newline() -> None:
    assert check_name("probe", "ab") == "ab"
    with pytest.raises(
        ValueError, match=re.escape("probe name 'ab\\n' is not allowed; expected 1-64")
    ):
        check_name("probe", "ab\n")


def test_input_dimension_must_match_target() -> None:
    data = {"populations": {"a": {"n": 3, "dim": 2}}, "inputs": {"u": {"target": "a", "dim": 3}}}
    with pytest.raises(
        NetworkFileError, match=r"inputs\.u\.dim: 3 does not match population 'a' dim = 2"
    ):
        parse_network(data)


def test_probe_kind_lists_allowed_values() -> None:
    data = {"populations": {"a": {"n": 3}}, "probes": {"p": {"target": "a", "kind": "rates"}}}
    with pytest.raises(
        NetworkFileError,
        match=r"probes\.p\.kind: Input should be 'spikes', 'filtered', 'voltage', 'input' "
        r"or 'decoded' \(got 'rates'\)",
    ):
        parse_network(data)


def test_signal_shorthand_and_unknown_signal() -> None:
    ok = parse_network(
        {"populations": {"a": {"n": 3}}, "inputs": {"u": {"target": "a", "signal": "sin"}}}
    )
    assert ok.inputs["u"].signal.kind == "sin"  # type: ignore[union-attr]
    with pytest.raises(
        NetworkFileError, match=r"signal 'saw' is not allowed; expected one of sin, constant, step"
    ):
        parse_network({"populations": {"a": {"n": 3}}, "inputs": {"u": {"signal": "saw"}}})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match=r"nope\.toml: cannot read network file"):
        load_network(tmp_path / "nope.toml")
    with pytest.raises(NetworkFileError, match="not valid TOML"):
        load_network(write(tmp_path, "[network\nname="))


def test_errors_are_value_errors_too() -> None:
    with pytest.raises(ValueError, match="populations"):
        parse_network({})


def test_connection_needs_weights_or_function() -> None:
    with pytest.raises(ValueError, match="give at most one of weights"):
        ConnectionSpec(pre="a", post="b", function="x", decoders="d.npy")
    # Neither: only an input may be the pre of such a connection.
    with pytest.raises(NetworkFileError, match=r"connections\[0\]\.pre: 'a' is not an input"):
        parse_network({"populations": {"a": {"n": 2}}, "connections": [{"pre": "a", "post": "a"}]})


def test_spec_is_frozen() -> None:
    spec = load_network(SEED)
    with pytest.raises(ValueError, match="frozen"):
        spec.network.dt = 0.002  # type: ignore[misc]


# --------------------------------------------------------------------------- NaN, inf, ranges

NAN, INF = float("nan"), float("inf")


def _net(**parts: object) -> dict[str, object]:
    """A small valid network with ``parts`` merged in at the top level."""
    data: dict[str, object] = {
        "populations": {"a": {"n": 3}, "b": {"n": 2, "dim": 2}},
        "inputs": {"u": {"target": "a"}},
    }
    data.update(parts)
    return data


def _pop(**keys: object) -> dict[str, object]:
    return _net(populations={"a": {"n": 3, **keys}})


def _conn(**keys: object) -> dict[str, object]:
    return _net(connections=[{"pre": "a", "post": "a", **keys}])


def _input(**keys: object) -> dict[str, object]:
    return _net(inputs={"u": {"target": "a", **keys}})


def _signal(**keys: object) -> dict[str, object]:
    return _input(signal=keys)


# (network, key path, value shown, what is allowed): every float a file can hold.
NON_FINITE = [
    (_net(network={"dt": NAN}), "network.dt", "nan", "finite"),
    (_pop(tau_rc=NAN), "populations.a.tau_rc", "nan", "finite"),
    (_pop(tau_rc=INF), "populations.a.tau_rc", "inf", "finite"),
    (_pop(tau_ref=INF), "populations.a.tau_ref", "inf", "finite"),
    (_pop(min_voltage=-INF), "populations.a.min_voltage", "-inf", "finite"),
    (_pop(max_rates=[200, INF]), "populations.a.max_rates[1]", "inf", "finite"),
    (_pop(intercepts=[NAN, 1]), "populations.a.intercepts[0]", "nan", "finite"),
    (_pop(encoders=[[1.0], [NAN], [1.0]]), "populations.a.encoders[1][0]", "nan", "finite"),
    (_input(default=NAN), "inputs.u.default", "nan", "finite"),
    (_input(ttl=INF), "inputs.u.ttl", "inf", "finite"),
    (_signal(kind="sin", amp=INF), "inputs.u.signal.amp", "inf", "finite"),
    (_signal(kind="sin", omega=NAN), "inputs.u.signal.omega", "nan", "finite"),
    (_signal(kind="sin", freq=INF), "inputs.u.signal.freq", "inf", "finite"),
    (_signal(kind="sin", phase=NAN), "inputs.u.signal.phase", "nan", "finite"),
    (_signal(kind="sin", offset=-INF), "inputs.u.signal.offset", "-inf", "finite"),
    (_signal(kind="constant", value=NAN), "inputs.u.signal.value", "nan", "finite"),
    (_signal(kind="step", t=INF), "inputs.u.signal.t", "inf", "finite"),
    (_signal(kind="step", before=INF), "inputs.u.signal.before", "inf", "finite"),
    (_signal(kind="step", after=NAN), "inputs.u.signal.after", "nan", "finite"),
    (_signal(kind="file", path="u.npy", dt=NAN), "inputs.u.signal.dt", "nan", "finite"),
    (_conn(function="x", synapse=INF), "connections[0].synapse", "inf", "finite"),
    (_conn(function="x", transform=INF), "connections[0].transform", "inf", "finite"),
    (_conn(function="x", transform=[[NAN]]), "connections[0].transform[0][0]", "nan", "finite"),
    (_conn(function="x", reg=NAN), "connections[0].reg", "nan", "finite"),
    (
        _conn(function="x", learning={"error": "u", "rate": INF}),
        "connections[0].learning.rate",
        "inf",
        "finite",
    ),
    (_conn(weights={"dist": "normal", "std": INF}), "connections[0].weights.std", "inf", "finite"),
    (
        _conn(weights={"dist": "normal", "mean": NAN}),
        "connections[0].weights.mean",
        "nan",
        "finite",
    ),
    (
        _conn(weights={"dist": "uniform", "low": -INF}),
        "connections[0].weights.low",
        "-inf",
        "finite",
    ),
    (
        _conn(weights={"dist": "uniform", "high": NAN}),
        "connections[0].weights.high",
        "nan",
        "finite",
    ),
    (
        _net(probes={"p": {"target": "a", "kind": "filtered", "synapse": NAN}}),
        "probes.p.synapse",
        "nan",
        "finite",
    ),
    # Finite, but no finite run follows: out of range.
    (_pop(tau_rc=0.0), "populations.a.tau_rc", "0.0", "greater than or equal to 0.000001"),
    # Allowed once, each with an overflow warning and a population that never fired.
    (_pop(tau_rc=5e-324), "populations.a.tau_rc", "5e-324", "greater than or equal to 0.000001"),
    (_pop(radius=1e-300), "populations.a.radius", "1e-300", "greater than or equal to 0.000001"),
    (_net(network={"dt": 1e-300}), "network.dt", "1e-300", "greater than or equal to 0.000001"),
    (_pop(tau_rc=1e7), "populations.a.tau_rc", "10000000.0", "less than or equal to 1000000"),
    (_input(default=[1e300]), "inputs.u.default[0]", "1e+300", "less than or equal to 1000000000"),
    (_conn(function="x", reg=1e200), "connections[0].reg", "1e+200", "less than or equal to 1000"),
    (
        _conn(weights={"dist": "normal", "std": 1e308}),
        "connections[0].weights.std",
        "1e+308",
        "less than or equal to 1000000000",
    ),
]


@pytest.mark.parametrize(("data", "key", "shown", "allowed"), NON_FINITE)
def test_non_finite_and_out_of_range_values_are_refused(
    data: dict[str, object], key: str, shown: str, allowed: str
) -> None:
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    msg = str(info.value)
    # One error, one line: the file, the key path, what is allowed and the value.
    assert "\n" not in msg, msg
    assert msg.startswith(f"net.toml: {key}: "), msg
    assert allowed in msg, msg
    assert msg.endswith(f"(got {shown})"), msg


@pytest.mark.parametrize(
    ("transform", "shown"), [([[1.0], [1.0, 2.0]], "[1, 2]"), ([], "[]"), ([[]], "[0]")]
)
def test_a_ragged_or_empty_transform_matrix_is_refused(transform: object, shown: str) -> None:
    with pytest.raises(NetworkFileError) as info:
        parse_network(_conn(function="x", transform=transform), source="net.toml")
    msg = str(info.value)
    assert msg.startswith("net.toml: connections[0].transform: "), msg
    assert f"of length(s) {shown}; expected a number or rows of one length, at least 1" in msg


def test_nan_and_inf_literals_in_a_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("n = 5", "n = 5\ntau_rc = nan\nmax_rates = [200, inf]"))
    with pytest.raises(NetworkFileError) as info:
        load_network(path)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}: invalid network (2 errors)",
        "  populations.a.tau_rc: Input should be a finite number (got nan)",
        "  populations.a.max_rates[1]: Input should be a finite number (got inf)",
    ]


def test_uniform_weights_with_infinite_or_overflowing_bounds_are_refused() -> None:
    # uniform(-inf, inf) raised an OverflowError traceback at build, and so did bounds
    # whose difference overflows (1e308 - -1e308).
    for low, high in ((-INF, INF), (-1e308, 1e308)):
        data = _conn(weights={"dist": "uniform", "low": low, "high": high})
        with pytest.raises(NetworkFileError) as info:
            parse_network(data, source="net.toml")
        lines = str(info.value).splitlines()
        assert len(lines) == 3, lines
        assert lines[1].startswith("  connections[0].weights.low: ")
        assert lines[2].startswith("  connections[0].weights.high: ")


def test_uniform_weights_need_low_at_most_high() -> None:
    data = _conn(weights={"dist": "uniform", "low": 1.0, "high": -1.0})
    with pytest.raises(
        NetworkFileError,
        match=r"^net\.toml: connections\[0\]\.weights: low = 1\.0 > high = -1\.0 is not allowed",
    ):
        parse_network(data, source="net.toml")


def test_a_union_reports_the_member_the_value_was_meant_for() -> None:
    # transform is a number or a matrix, weights a distribution or a file: the error
    # speaks of the member that fits the value's shape, not of every member.
    cases = [
        (_conn(function="x", transform=[[1.0, NAN]]), "connections[0].transform[0][1]"),
        (_conn(function="x", transform=1e10), "connections[0].transform"),
        (_conn(weights={"file": 3}), "connections[0].weights.file"),
        (_conn(weights={"dist": "normal", "std": -1}), "connections[0].weights.std"),
        (_signal(kind="constant", value=[NAN]), "inputs.u.signal.value[0]"),
    ]
    for data, key in cases:
        with pytest.raises(NetworkFileError) as info:
            parse_network(data, source="f")
        assert str(info.value).startswith(f"f: {key}: "), str(info.value)
        assert "\n" not in str(info.value)


def test_finite_values_at_the_limits_are_accepted() -> None:
    spec = parse_network(
        _conn(weights={"dist": "uniform", "low": -1e9, "high": 1e9}, synapse=1e6),
    )
    assert spec.connections[0].synapse == 1e6
    model = build(spec)
    w = model.connections[0].weights
    assert w is not None
    assert np.all(np.isfinite(w))
    assert w.min() >= -1e9
    assert w.max() <= 1e9


@pytest.mark.parametrize("nested", ["[" * 50_000 + "]" * 50_000, "{a = " * 5000 + "1" + "}" * 5000])
def test_toml_nested_past_the_parser_recursion_is_one_line(tmp_path: Path, nested: str) -> None:
    # tomllib recurses per level: this was a RecursionError traceback.
    path = tmp_path / "deep.toml"
    path.write_text(f"[populations.a]\nn = 2\nx = {nested}\n")
    with pytest.raises(NetworkFileError) as info:
        load_network(path)
    assert str(info.value) == (
        f"{path}: not valid TOML: arrays or inline tables nest too deeply (a network file "
        "nests a few levels)"
    )


def test_integers_past_int64_or_python_limits_are_one_line(tmp_path: Path) -> None:
    # A 40-digit seed crashed `run` writing it as int64; 5000 digits was a ValueError
    # traceback from tomllib.
    path = tmp_path / "seed.toml"
    path.write_text(f"[network]\nseed = {'9' * 40}\n[populations.a]\nn = 2\n")
    with pytest.raises(NetworkFileError) as info:
        load_network(path)
    assert str(info.value) == (
        f"{path}: network.seed: Input should be less than or equal to 9223372036854775807 "
        f"(got {'9' * 40})"
    )
    path.write_text(f"[network]\nseed = {'9' * 5000}\n[populations.a]\nn = 2\n")
    with pytest.raises(
        NetworkFileError, match=r": not valid TOML: Exceeds the limit \(4300 digits\)"
    ):
        load_network(path)
