"""Network files: validation errors name the file, the key path, the value and what is
allowed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import BuildError, NetworkFileError
from spikestream.spec import ConnectionSpec, load_network, parse_network

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
