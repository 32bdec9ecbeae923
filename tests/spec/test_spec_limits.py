"""Network files: every documented bound and cross-key rule is enforced at its edge, and the
refusal names the file, the key path, the value and what was allowed.

Found by mutation testing: moving these bounds, or dropping these rules, left every other
test passing. A bound that slips lets a hostile file reach the build (a population of
10^8 neurons, a 0 s ttl, a sample every 1e-12 s); a dropped shape rule turns a clear
message into a numpy traceback at build or run time.
"""

from __future__ import annotations

import pytest

from spikestream.errors import NetworkFileError
from spikestream.spec import parse_network


def _net(**parts: object) -> dict[str, object]:
    """A small valid network (``a`` of dim 1, ``b`` of dim 2, input ``u`` into ``a``) with
    ``parts`` merged in at the top level."""
    data: dict[str, object] = {
        "populations": {"a": {"n": 3}, "b": {"n": 2, "dim": 2}},
        "inputs": {"u": {"target": "a"}},
    }
    data.update(parts)
    return data


def _pops(**a: object) -> dict[str, object]:
    return _net(populations={"a": {"n": 3, **a}})


def _in_b(**keys: object) -> dict[str, object]:
    """Input ``u`` of dim 2 into ``b``, with ``keys``."""
    return _net(inputs={"u": {"target": "b", "dim": 2, **keys}})


def _conn(**keys: object) -> dict[str, object]:
    return _net(connections=[{"pre": "a", "post": "a", **keys}])


def _probe(**keys: object) -> dict[str, object]:
    return _net(probes={"p": {"target": "a", **keys}})


# (network, the whole message after "net.toml: "): one step past each bound.
PAST_A_BOUND = [
    (_net(network={"dt": 1.5}), "network.dt: Input should be less than or equal to 1 (got 1.5)"),
    (
        _net(network={"seed": 2**63}),
        "network.seed: Input should be less than or equal to 9223372036854775807 "
        "(got 9223372036854775808)",
    ),
    (
        _pops(n=10_000_001),
        "populations.a.n: Input should be less than or equal to 10000000 (got 10000001)",
    ),
    (_pops(dim=4097), "populations.a.dim: Input should be less than or equal to 4096 (got 4097)"),
    (
        _net(inputs={"u": {"dim": 4097}}),
        "inputs.u.dim: Input should be less than or equal to 4096 (got 4097)",
    ),
    (
        _pops(min_voltage=0.5),
        "populations.a.min_voltage: Input should be less than or equal to 0 (got 0.5)",
    ),
    (
        _pops(intercepts=[-1.5, 0]),
        "populations.a: intercepts: [-1.5, 0.0] is not allowed; intercepts must lie in "
        "[-1, 1] with low < 1",
    ),
    (_net(inputs={"u": {"ttl": 0}}), "inputs.u.ttl: Input should be greater than 0 (got 0)"),
    (
        _net(inputs={"u": {"signal": {"kind": "file", "path": "u.npy", "dt": 1e-10}}}),
        "inputs.u.signal.dt: Input should be greater than or equal to 0.000000001 (got 1e-10)",
    ),
    (
        _conn(function="x", eval_points=1_000_001),
        "connections[0].eval_points: Input should be less than or equal to 1000000 (got 1000001)",
    ),
    (
        _conn(function="x", reg=1000.5),
        "connections[0].reg: Input should be less than or equal to 1000 (got 1000.5)",
    ),
    (
        _probe(ticks_per_frame=100_001),
        "probes.p.ticks_per_frame: Input should be less than or equal to 100000 (got 100001)",
    ),
]


@pytest.mark.parametrize(("data", "message"), PAST_A_BOUND)
def test_a_value_one_step_past_its_bound_is_refused(data: dict[str, object], message: str) -> None:
    """Each bound of the file format holds where it is documented, not a step further."""
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    assert str(info.value) == f"net.toml: {message}"


# (network, the whole message after "net.toml: "): rules between keys.
CROSS_KEY = [
    (
        _pops(encoders=[[1.0], [1.0]]),
        "populations.a: encoders: got 2 rows of shape (2, 1); expected n = 3 rows of "
        "dim = 1 numbers",
    ),
    (
        _in_b(signal={"kind": "constant", "value": [1, 2, 3]}),
        "inputs.u: signal.value: got 3 numbers; expected dim = 2 numbers",
    ),
    (
        _in_b(signal={"kind": "step", "before": [1, 2, 3]}),
        "inputs.u: signal.before: got 3 numbers; expected dim = 2 numbers",
    ),
    (
        _in_b(signal={"kind": "step", "after": [1, 2, 3]}),
        "inputs.u: signal.after: got 3 numbers; expected dim = 2 numbers",
    ),
    (
        _net(inputs={"u": {"signal": {"kind": "sin", "omega": 1, "freq": 2}}}),
        "inputs.u.signal: give either omega (rad/s) or freq (Hz), not both; got omega=1.0, "
        "freq=2.0",
    ),
    (
        _conn(weights={"dist": "normal"}, learning={"error": "u"}),
        "connections[0]: learning needs a decoded connection (function = '...' or "
        "decoders = '...')",
    ),
    (
        _probe(kind="decoded", function="x", decoders="d.npy"),
        "probes.p: decoders: 'd.npy' is only allowed on a decoded probe without a function; "
        "got kind = 'decoded', function = 'x'",
    ),
    (
        _probe(kind="spikes", function="x"),
        "probes.p: function: 'x' is only allowed on a decoded probe (it decodes a function "
        "of the value); got kind = 'spikes'",
    ),
    (
        _net(inputs={"a": {}}),
        "duplicate name 'a': used by a population and an input; names must be unique across "
        "populations and inputs",
    ),
    (_net(inputs={"u": {"target": "b"}}), "inputs.u.dim: 1 does not match population 'b' dim = 2"),
    (
        _net(
            connections=[
                {"pre": "a", "post": "a", "function": "x"},
                {"pre": "a", "post": "a", "function": "x**2"},
            ]
        ),
        "connections[1]: duplicate connection name 'a->a'; give each connection between the "
        "same populations a distinct name = '...'",
    ),
    (
        _conn(function="x", learning={"error": "v"}),
        "connections[0].learning.error: 'v' is not an input; expected one of: u",
    ),
    (
        _net(probes={"u": {"target": "a"}}),
        "probes.u: duplicate name 'u': an input has this name, and offline runs store inputs "
        "under their names; rename the probe",
    ),
    (
        _probe(target="u"),
        "probes.p.target: 'u' is not a population; expected one of: a, b",
    ),
    (
        _probe(target="a", kind="input"),
        "probes.p.target: 'a' is not an input; expected one of: u",
    ),
    (
        _conn(post="zz", function="x"),
        "connections[0].post: 'zz' is not a population; expected one of: a, b",
    ),
]


@pytest.mark.parametrize(("data", "message"), CROSS_KEY)
def test_a_rule_between_keys_is_refused_naming_the_key_and_the_choices(
    data: dict[str, object], message: str
) -> None:
    """Shapes that must agree (encoders and n, a signal's values and dim) and names that
    must refer to the right kind of thing are checked when the file is read, with a
    one-line message; otherwise numpy fails later, without the key."""
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    assert str(info.value) == f"net.toml: {message}"


@pytest.mark.parametrize(
    "data",
    [
        _pops(intercepts=[-1, 0.5], max_rates=[100, 100]),
        _conn(weights={"dist": "uniform", "low": 0.5, "high": 0.5}),
        # low and high mean nothing to a normal distribution: not compared.
        _conn(weights={"dist": "normal", "low": 1, "high": 0}),
        _net(inputs={"u": {"signal": {"kind": "file", "path": "u.npy", "dt": 1e-9}}}),
        _net(populations={"a": {"n": 10_000_000, "dim": 4096}}, inputs={}),
    ],
)
def test_a_value_at_its_bound_is_accepted(data: dict[str, object]) -> None:
    """The bounds are inclusive where documented (``low <= high``, ``dt >= 1e-9``)."""
    assert parse_network(data, source="net.toml").populations["a"].n >= 3


def test_defaults_are_the_documented_ones() -> None:
    """docs/NETWORK_FILES.md lists each default; a file that leaves a key out gets it
    (a changed default silently changes every network that relies on it)."""
    spec = parse_network(
        _net(
            inputs={"u": {"target": "a", "signal": "sin"}},
            connections=[{"pre": "a", "post": "a", "function": "x", "learning": {"error": "u"}}],
            probes={"p": {"target": "a"}},
        )
    )
    c = spec.connections[0]
    assert (c.synapse, c.reg, c.eval_points, c.transform) == (0.005, 0.1, 750, 1.0)
    assert c.learning is not None
    assert (c.learning.rate, c.learning.enabled, c.learning.synapse) == (1e-4, True, 0.0)
    p = spec.probes["p"]
    assert (p.kind, p.synapse, p.ticks_per_frame) == ("spikes", 0.01, 10)
    a = spec.populations["a"]
    assert (a.dim, a.tau_rc, a.tau_ref, a.min_voltage, a.radius) == (1, 0.02, 0.002, 0.0, 1.0)
    assert (a.max_rates, a.intercepts, a.initial_voltage) == ((200.0, 400.0), (-1.0, 1.0), 0.0)
    net = spec.network
    assert (net.name, net.dt, net.seed, net.dtype, net.timing) == (
        "net",
        0.001,
        None,
        "float64",
        "spikestream",
    )


def test_an_unknown_signal_kind_names_the_kinds_without_echoing_the_table() -> None:
    """The table a tag was looked up in is not repeated after the message: the tag and
    the allowed kinds are what a person needs."""
    data = _net(inputs={"u": {"signal": {"kind": "nope", "value": 3}}})
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    assert str(info.value) == (
        "net.toml: inputs.u.signal: Input tag 'nope' found using 'kind' does not match any "
        "of the expected tags: 'sin', 'constant', 'step', 'file'"
    )


def test_a_long_bad_value_is_shown_cut_short() -> None:
    """A hostile file's long value is shown in at most 80 characters, not whole."""
    with pytest.raises(NetworkFileError) as info:
        parse_network(_net(network={"name": "x" * 100_000}), source="net.toml")
    msg = str(info.value)
    prefix = "net.toml: network.name: String should match pattern "
    assert msg.startswith(prefix), msg
    got = msg[msg.index("(got ") + len("(got ") : -1]
    assert got == "'" + "x" * 75 + " ...", got


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("input", "inputs.u.target: 'zz' is not a population; expected one of: "),
        ("connection", "connections[0].post: 'zz' is not a population; expected one of: "),
        ("probe", "probes.p.target: 'zz' is not a population; expected one of: "),
    ],
)
def test_a_bad_reference_among_many_names_lists_twenty_of_them(where: str, expected: str) -> None:
    """The choices are listed up to 20, then counted: a network of 5000 populations and
    one bad reference gave a 315 KB message."""
    from spikestream.spec import NAMES_LISTED

    pops = {f"p{i:04d}": {"n": 1} for i in range(5000)}
    data: dict[str, object] = {"network": {"dt": 0.001}, "populations": pops}
    if where == "input":
        data["inputs"] = {"u": {"target": "zz"}}
    elif where == "connection":
        data["connections"] = [{"pre": "p0000", "post": "zz", "function": "x"}]
    else:
        data["probes"] = {"p": {"target": "zz"}}
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    shown = ", ".join(f"p{i:04d}" for i in range(NAMES_LISTED))
    assert str(info.value) == f"net.toml: {expected}{shown} and {5000 - NAMES_LISTED} more"


def test_twenty_names_are_listed_whole() -> None:
    from spikestream.spec import NAMES_LISTED

    pops = {f"p{i:02d}": {"n": 1} for i in range(NAMES_LISTED)}
    data = {"network": {"dt": 0.001}, "populations": pops, "probes": {"p": {"target": "zz"}}}
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    assert str(info.value).endswith(", ".join(pops))
