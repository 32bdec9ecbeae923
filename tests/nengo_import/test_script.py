"""Running a model script (:mod:`spikestream.nengo_import.script`): which arguments are
scripts, what running one leaves of the process's state, and how a script without the
network asked for is refused."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from spikestream.errors import ModelImportError
from spikestream.nengo_import import is_model_script, load_script_network, split_source

NET = """
import nengo
model = nengo.Network()
with model:
    nengo.Ensemble(5, 1)
"""


def write(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_only_python_files_are_scripts() -> None:
    """``:NAME`` is split off a ``.py`` path only, and only when it is a Python name: a
    network file with a colon in its name stays the file it names."""
    assert is_model_script("m.py")
    assert is_model_script("dir/m.py:net")
    assert not is_model_script("net.toml")
    assert not is_model_script("net.json")
    assert split_source("m.py:not-a-name") == (Path("m.py:not-a-name"), "model")
    assert split_source("net.toml:model") == (Path("net.toml:model"), "model")


def test_a_script_imports_its_neighbours_and_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    """The script's folder is on ``sys.path`` while it runs (it may import a helper next to
    it), and taken off again afterwards."""
    write(tmp_path, "SIZE = 7\n", name="spikestream_test_helper_mod.py")
    script = write(
        tmp_path,
        NET.replace(
            "nengo.Ensemble(5, 1)", "nengo.Ensemble(spikestream_test_helper_mod.SIZE, 1)"
        ).replace("import nengo", "import nengo\nimport spikestream_test_helper_mod"),
    )
    before = list(sys.path)
    try:
        net, _ = load_script_network(script)
    finally:
        sys.modules.pop("spikestream_test_helper_mod", None)
    assert [e.n_neurons for e in net.all_ensembles] == [7]
    assert sys.path == before


def test_a_variable_that_is_no_network_is_named_with_its_type(tmp_path: Path) -> None:
    """``model = 5`` is not "not defined": the refusal says what it is, and that the script
    holds no network to pick instead."""
    script = write(tmp_path, "model = 5\n")
    with pytest.raises(ModelImportError) as info:
        load_script_network(script)
    assert str(info.value) == (
        f"{script}: variable 'model' is a int; expected a nengo.Network (networks in the "
        "script: none; pick one with model.py:NAME)"
    )


def test_a_callers_own_sigint_handler_is_left_in_place(tmp_path: Path) -> None:
    """Only Python's default SIGINT handler is swapped while the script runs: a handler the
    caller installed is neither replaced nor reset to the default afterwards."""
    seen: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        load_script_network(write(tmp_path, NET))
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_scripts_deprecation_warnings_do_not_stop_it(tmp_path: Path) -> None:
    """Nengo 4.1 and older scripts warn ``DeprecationWarning`` on numpy 2: the import is
    silenced for them, even where warnings are errors (as under this test suite)."""
    script = write(tmp_path, "import warnings\nwarnings.warn('old', DeprecationWarning)\n" + NET)
    net, _ = load_script_network(script)
    assert len(net.all_ensembles) == 1


def test_a_scripts_main_block_is_skipped(tmp_path: Path) -> None:
    """A script's ``if __name__ == "__main__":`` block (running Nengo's own simulator, or
    plotting) is not run by the import: the script runs under another ``__name__``."""
    script = write(tmp_path, NET + "if __name__ == '__main__':\n    raise SystemExit('ran')\n")
    net, namespace = load_script_network(script)
    assert namespace["__name__"] != "__main__"
    assert len(net.all_ensembles) == 1
