"""Translating a Nengo network's objects (:mod:`spikestream.nengo_import.objects`): what
falls outside the supported subset is refused in one line naming the object and what is
supported, never imported as something else, and what lies just inside it is taken."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ModelImportError
from spikestream.nengo_import import import_model
from spikestream.spec import NetworkSpec, load_network

PES_AB = """
a = nengo.Ensemble(10, 1, label="a")
b = nengo.Ensemble(10, 1, label="b")
ab = nengo.Connection(a, b, learning_rule_type=nengo.PES(), label="ab")
"""

ERROR_REFUSED = "Connection 'err': this PES error connection is not supported; supported: "


def model_file(tmp_path: Path, body: str, header: str = "model = nengo.Network(seed=1)") -> Path:
    """A script whose network ``model`` holds ``body`` (Python run inside ``with model:``)."""
    path = tmp_path / "model.py"
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    path.write_text(f"import nengo\nimport numpy as np\n{header}\nwith model:\n{indented}\n")
    return path


def imported(tmp_path: Path, body: str, sample_duration: float = 10.0) -> NetworkSpec:
    """``body`` imported (and loaded back as ``run`` would load it)."""
    import_model(model_file(tmp_path, body), tmp_path / "net.toml", sample_duration=sample_duration)
    return load_network(tmp_path / "net.toml")


REFUSED = {
    "a function on a connection from a node": (
        """
        u = nengo.Node(0.5, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a, function=lambda x: x * 2, label="f")
        """,
        "Connection 'f': a function on a connection from a node or neurons is not supported; "
        "supported: functions on connections from ensembles",
    ),
    "a sparse transform": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        sparse = nengo.transforms.Sparse((10, 10), indices=[[0, 0]], init=[1.0])
        nengo.Connection(a.neurons, b.neurons, transform=sparse, label="sp")
        """,
        "Connection 'sp': transform Sparse is not supported; supported: dense (scalar or "
        "matrix) transforms",
    ),
    "a cycle of passthrough nodes": (
        """
        p = nengo.Node(size_in=1, label="p")
        q = nengo.Node(size_in=1, label="q")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(p, q)
        nengo.Connection(q, p)
        nengo.Connection(q, a)
        """,
        "Node 'q': a cycle of passthrough nodes is not supported",
    ),
    "an input node into neurons": (
        """
        u = nengo.Node([0.5] * 10, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a.neurons, label="un")
        """,
        "Connection 'un': a connection from an input node into neurons is not supported",
    ),
    "learning into a passthrough node": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        p = nengo.Node(size_in=1, label="relay")
        e = nengo.Node([0.0], label="e")
        c = nengo.Connection(a, p, learning_rule_type=nengo.PES(), label="ap")
        nengo.Connection(e, c.learning_rule)
        nengo.Connection(p, b)
        """,
        "Connection 'ap': learning on a connection into a passthrough node; supported: PES on "
        "ensemble-to-ensemble connections",
    ),
    "learning on a connection from a passthrough node": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        p = nengo.Node(size_in=1, label="relay")
        nengo.Connection(a, p, synapse=None)
        nengo.Connection(p, b, learning_rule_type=nengo.Voja(), label="pb")
        """,
        "Connection 'pb': learning on a connection from a passthrough node; supported: PES on "
        "ensemble-to-ensemble connections",
    ),
    "PES on a connection from neurons": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        e = nengo.Node([0.0], label="e")
        w = np.zeros((1, 10))
        c = nengo.Connection(a.neurons, b, transform=w, learning_rule_type=nengo.PES(), label="nb")
        nengo.Connection(e, c.learning_rule)
        """,
        "Connection 'nb': this learning connection is not supported; supported: PES on "
        "ensemble-to-ensemble connections",
    ),
    "two learning rules": (
        PES_AB.replace("nengo.PES()", "[nengo.PES(), nengo.PES()]"),
        "Connection 'ab': learning rule list is not supported; supported: a single nengo.PES",
    ),
    "two error connections": (
        PES_AB + 'e = nengo.Node([0.0], label="e")\n'
        "nengo.Connection(e, ab.learning_rule)\nnengo.Connection(e, ab.learning_rule)\n",
        "Connection 'ab': 2 error connections into its PES rule; supported: exactly one",
    ),
    "a transformed error": (
        PES_AB + 'e = nengo.Node([0.0], label="e")\n'
        'nengo.Connection(e, ab.learning_rule, transform=-1, label="err")\n',
        ERROR_REFUSED,
    ),
    "an error through a function": (
        PES_AB + 'e = nengo.Node([0.0], label="e")\n'
        'nengo.Connection(e, ab.learning_rule, function=lambda x: x, label="err")\n',
        ERROR_REFUSED,
    ),
    "an error from a slice of a wider node": (
        PES_AB + 'e = nengo.Node([0.0, 0.0], label="e")\n'
        'nengo.Connection(e[0], ab.learning_rule, label="err")\n',
        ERROR_REFUSED,
    ),
    "an error through a passthrough node": (
        PES_AB + 'e = nengo.Node([0.0], label="e")\np = nengo.Node(size_in=1, label="relay")\n'
        'nengo.Connection(e, p)\nnengo.Connection(p, ab.learning_rule, label="err")\n',
        ERROR_REFUSED,
    ),
    "a filtered input probe": (
        """
        u = nengo.Node(0.5, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a)
        nengo.Probe(u, synapse=0.01, label="p")
        """,
        "Probe 'p': a probe of Node 'u'.output (synapse Lowpass(tau=0.01)) is not supported",
    ),
    "a probe of a slice of neurons": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Probe(a.neurons[:5], label="p")
        """,
        "Probe 'p': a probe of a slice, Ensemble 'a'.neurons[:5], is not supported; supported: "
        "probes of whole ensembles, neurons and input nodes",
    ),
    "a probe of a slice of an ensemble": (
        """
        a = nengo.Ensemble(10, 2)
        nengo.Probe(a[0], label="p")
        """,
        "Probe 'p': a probe of a slice, Ensemble a (unlabelled)[0:1], is not supported",
    ),
    "no ensemble": (
        'u = nengo.Node(0.5, label="u")',
        "Network model (unlabelled): the network has no ensembles; supported: networks with "
        "at least one ensemble",
    ),
    "encoders a little off unit length": (
        "nengo.Ensemble(4, 1, label='raw', encoders=np.full((4, 1), 1.0001), "
        "normalize_encoders=False)",
        "Ensemble 'raw': encoders that are not of unit length",
    ),
    "an amplitude below 1": (
        "nengo.Ensemble(10, 1, label='quiet', neuron_type=nengo.LIF(amplitude=0.5))",
        "Ensemble 'quiet': LIF amplitude 0.5 is not supported; supported: amplitude 1",
    ),
    "a short initial refractory time": (
        """
        lif = nengo.LIF(initial_state={"refractory_time": nengo.dists.Choice([0.0005])})
        nengo.Ensemble(10, 1, label="tired", neuron_type=lif)
        """,
        "Ensemble 'tired': a non-zero initial refractory_time is not supported",
    ),
    "a function that raises": (
        """
        def f(t):
            if t > 0.0025:
                raise ValueError("first\\nsecond")
            return 0.0
        u = nengo.Node(f, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a)
        """,
        "Node 'u': calling its output at t = 0.003 s raised ValueError: first; supported: "
        "functions of t returning size_out numbers",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_objects_are_refused_naming_them(case: str, tmp_path: Path) -> None:
    """Each refusal is one line that names the Nengo object, what it did and what is
    supported; a refused model must not be imported as a different model (a dropped
    function, transform or error connection would run silently wrong), nor crash."""
    body, expected = REFUSED[case]
    with pytest.raises(ModelImportError) as info:
        import_model(model_file(tmp_path, body), tmp_path / "net.toml", sample_duration=0.01)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message
    assert not (tmp_path / "net.toml").exists()


def test_what_lies_at_the_edge_of_the_subset_is_taken(tmp_path: Path) -> None:
    """An intercept of exactly -1, an input of exactly +-VALUE_LIMIT and a probe whose
    sample_every is the time step are inside the subset (docs/MODEL.md): taken as they are."""
    spec = imported(
        tmp_path,
        """
        a = nengo.Ensemble(10, 1, label="a", intercepts=nengo.dists.Choice([-1.0]))
        u = nengo.Node([1e9, -1e9], label="u")
        b = nengo.Ensemble(10, 2, label="b")
        nengo.Connection(u, b, transform=0.0)
        nengo.Probe(a, sample_every=0.001, label="p")
        """,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "net.arrays" / "a.intercepts.npy"), -1.0)
    assert spec.inputs["u"].default == [1e9, -1e9]
    assert spec.probes["p"].kind == "decoded"


def test_a_sample_duration_under_half_a_tick_still_samples_once(tmp_path: Path) -> None:
    """``--sample-duration`` shorter than half a time step rounds to no tick: one sample is
    taken all the same (an empty signal file is no input)."""
    spec = imported(
        tmp_path,
        """
        u = nengo.Node(lambda t: t, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a)
        """,
        sample_duration=0.0004,
    )
    samples = np.load(tmp_path / "net.arrays" / "u.signal.npy")
    np.testing.assert_array_equal(samples, [[0.001]])
    assert list(spec.inputs) == ["u"]


def test_names_of_inputs_probes_and_an_unlabelled_network(tmp_path: Path) -> None:
    """A probe labelled like an input gets a suffix (both are keys of a run's ``.npz``), as
    do probes named like a recording's own keys (``gaps``, ``segment``); a passthrough
    node, folded away, takes no name from an input; an unlabelled network is named
    ``nengo``."""
    path = model_file(
        tmp_path,
        """
        relay = nengo.Node(size_in=1, label="u")
        u = nengo.Node(0.5, label="u")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, relay, synapse=None)
        nengo.Connection(relay, a)
        nengo.Probe(a, label="u")
        nengo.Probe(a, label="gaps")
        nengo.Probe(a, label="segment")
        """,
        header="model = nengo.Network()",
    )
    spec = import_model(path, tmp_path / "net.toml")
    assert spec.name == "nengo"
    assert list(spec.inputs) == ["u"]
    assert list(spec.probes) == ["u_2", "gaps_2", "segment_2"]


def test_parallel_connections_between_long_names_get_valid_names(tmp_path: Path) -> None:
    """The second of two connections between 64-character populations (or of two with the
    same 64-character label) is numbered within the 64 characters a name part may have:
    ``pre->post-2`` with a full-length ``post`` was refused by ``run``, so a valid Nengo
    model failed to import over names the import itself chose."""
    long_a, long_b, label = "a" * 64, "b" * 64, "c" * 64
    spec = imported(
        tmp_path,
        f"""
        a = nengo.Ensemble(10, 1, label="{long_a}")
        b = nengo.Ensemble(10, 1, label="{long_b}")
        nengo.Connection(a, b)
        nengo.Connection(a, b)
        nengo.Connection(a, b, label="{label}")
        nengo.Connection(a, b, label="{label}")
        """,
    )
    assert [c.label for c in spec.connections] == [
        f"{long_a}->{long_b}",
        f"{long_a}->{'b' * 62}-2",
        label,
        f"{'c' * 62}-2",
    ]
