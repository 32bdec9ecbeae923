"""Names and descriptions of imported objects (:mod:`spikestream.nengo_import.naming`) and
the TOML text they are written as (:mod:`spikestream.nengo_import.tomltext`): every name
written is one ``run`` accepts, every refusal names an unlabelled object by the script's
variables, and what TOML cannot hold is refused rather than written broken."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ModelImportError
from spikestream.nengo_import import import_nengo, import_network
from spikestream.nengo_import.naming import _Names, _sanitise, describe
from spikestream.nengo_import.tomltext import _value
from spikestream_client.names import is_name


def test_labels_are_made_valid_names() -> None:
    """A long label is cut to the 64 characters a name may have, and one starting with a
    digit gets a leading ``_``: both stay the label's name rather than being dropped for
    the variable's or a generated one."""
    assert _sanitise("a" * 70) == "a" * 64
    assert _sanitise("1st layer") == "_1st_layer"
    assert _sanitise("9" * 64) == "_" + "9" * 63


def test_a_clash_of_long_labels_gives_a_valid_name() -> None:
    """The second of two objects with the same 64-character label gets a suffix that keeps
    it within 64 characters (a longer name is refused by ``run``)."""

    class Labelled:
        label = "x" * 64

    names = _Names({})
    first, second = names.take(Labelled(), "ensemble", 0), names.take(Labelled(), "ensemble", 1)
    assert first == "x" * 64
    assert second == "x" * 60 + "_2"
    assert is_name(second)


def test_unlabelled_parts_are_described_by_the_script_variables() -> None:
    """A refusal of an unlabelled connection, its learning rule or a probe names the objects
    at its ends by the script's variables, never by a memory address."""
    nengo = import_nengo()
    with nengo.Network():
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        conn = nengo.Connection(a, b, learning_rule_type=nengo.PES())
        probe = nengo.Probe(b)
    variables = {id(a): "a", id(b): "b"}
    between = "Connection from Ensemble a (unlabelled) to Ensemble b (unlabelled)"
    assert describe(conn, variables) == between
    assert describe(conn.learning_rule, variables) == f"{between}.learning_rule"
    assert describe(probe, variables) == "Probe of Ensemble b (unlabelled)"
    assert describe(a.neurons, variables) == "Ensemble a (unlabelled).neurons"
    # Nengo's own text for it would say "Neurons of <Ensemble ...>": named the same way here.
    with nengo.Network():
        from_neurons = nengo.Connection(a.neurons, b, transform=[[0.0] * 5])
    assert describe(from_neurons, variables) == (
        "Connection from Ensemble a (unlabelled).neurons to Ensemble b (unlabelled)"
    )
    assert " at 0x" not in describe(conn)
    with nengo.Network():
        blank = nengo.Ensemble(5, 1, label="")
    assert describe(blank, {id(blank): "blank"}) == "Ensemble blank (unlabelled)"


@pytest.mark.parametrize("code", [0xD800, 0xDCFF, 0xDFFF])
def test_every_surrogate_is_refused(code: int) -> None:
    """TOML has no form for a lone surrogate (U+D800 to U+DFFF, both ends included)."""
    with pytest.raises(ModelImportError, match=f"surrogate U\\+{code:04X}"):
        _value(f"name{chr(code)}")
    assert tomllib.loads(f"k = {_value(chr(0xD7FF) + chr(0xE000))}")["k"] == "\ud7ff\ue000"


def test_values_are_written_as_toml_reads_them() -> None:
    """Booleans are TOML's ``true``/``false`` (Python's ``True`` is no TOML), and a
    non-finite number, which TOML's network file may not hold, is refused by name."""
    assert tomllib.loads(f"k = {_value([True, False, 1, 0.5])}")["k"] == [True, False, 1, 0.5]
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ModelImportError, match="cannot write the non-finite number"):
            _value(bad)


def test_numpy_floats_are_written_as_plain_numbers(tmp_path: Path) -> None:
    """A float subclass (numpy's ``float64``, say a ``dt`` computed with numpy) is written
    as the number: its repr is ``np.float64(0.001)`` under numpy 2, which is no TOML, and
    ``import_network(..., dt=np.float64(0.001))`` was refused as an invalid file."""
    assert _value(np.float64(0.25)) == "0.25"
    assert tomllib.loads(f"k = {_value([np.float64(1e-9)])}")["k"] == [1e-9]
    nengo = import_nengo()
    with nengo.Network(seed=1) as net:
        nengo.Ensemble(5, 1, label="a")
    spec = import_network(net, tmp_path / "net.toml", dt=np.float64(0.002))
    assert spec.network.dt == 0.002
