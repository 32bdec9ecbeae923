"""``spikestream import`` leaves a file ``run`` takes or nothing: the script cannot move
--out or see spikestream's flags, a failed import keeps the previous one, what ``run``
would refuse is refused at import naming the Nengo object, the TOML written is valid
whatever the names, and the script's own failures are one line."""

from __future__ import annotations

import os
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.cli import main
from spikestream.errors import ModelImportError
from spikestream.nengo_import import load_script_network, network_file, objects
from spikestream.nengo_import.tomltext import _comment, _value
from spikestream.runtime.offline import run_to_file
from spikestream.spec import load_network
from tests.nengo_import.test_cli import refusal, write

NET = """
model = nengo.Network(seed=1)
with model:
    u = nengo.Node(0.5, label="u")
    a = nengo.Ensemble(10, 1, label="a")
    nengo.Connection(u, a)
"""


# ------------------------------------------------------------------ the script's process state


def test_a_script_cannot_move_out_or_read_spikestreams_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    seen = tmp_path / "argv.txt"
    model = write(
        tmp_path,
        textwrap.dedent(
            f"""
            import argparse, os, sys
            __import__("pathlib").Path({str(seen)!r}).write_text(repr(sys.argv))
            args = argparse.ArgumentParser().parse_args()  # no flags: spikestream's are not its
            os.chdir({str(elsewhere)!r})
            """
        )
        + NET,
    )
    monkeypatch.chdir(tmp_path)
    argv_before = list(sys.argv)
    assert main(["import", "model.py", "--out", "net.toml"]) == 0
    assert "wrote net.toml" in capsys.readouterr().out
    assert (tmp_path / "net.toml").is_file()  # where the user asked, not where the script went
    assert not (elsewhere / "net.toml").exists()
    assert Path.cwd() == tmp_path
    assert sys.argv == argv_before
    assert seen.read_text() == repr(["model.py"])
    assert model.exists()


def test_out_naming_the_script_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(tmp_path, NET)
    text = model.read_text()
    monkeypatch.chdir(tmp_path)
    for out in ("model.py", str(model), "./sub/../model.py"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        line = refusal(capsys, "import", "model.py", "--out", out)
        assert "is the model script itself; expected another path" in line
    assert model.read_text() == text


# ------------------------------------------------------------------ refused at import, not at run


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "u = nengo.Node(lambda t: 1e300)\na = nengo.Ensemble(10, 1)\nnengo.Connection(u, a)",
            "Node u (unlabelled): its output 1e+300 is beyond +-1e+09",
        ),
        (
            "u = nengo.Node(-2e9, label='big')\na = nengo.Ensemble(10, 1)\nnengo.Connection(u, a)",
            "Node 'big': its output -2000000000.0 is beyond +-1e+09",
        ),
        (
            "wide = nengo.Ensemble(10, 1, intercepts=nengo.dists.Uniform(-1.5, 0.5))",
            "Ensemble wide (unlabelled): an intercept of -1.",
        ),
    ],
)
def test_what_run_would_refuse_is_refused_naming_the_object(
    body: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(
        tmp_path, "model = nengo.Network(seed=1)\nwith model:\n" + textwrap.indent(body, "    ")
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert expected in line
    assert not (tmp_path / "net.toml").exists()


def test_the_written_network_is_checked_by_spikestream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever the import's own checks miss, loading and building the written file (as
    run does) catches, naming the Nengo object behind the refused key."""
    monkeypatch.setattr(objects, "VALUE_LIMIT", 1e12)  # the import's own check, loosened
    model = write(
        tmp_path,
        NET.replace("nengo.Node(0.5", "nengo.Node(lambda t: 5e9"),
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert line.startswith("spikestream import: error: Node 'u': spikestream refuses the ")
    assert "inputs.u.signal" in line
    assert "beyond +-1e+09" in line
    assert ".import-" not in line  # the final path, not the staging folder's
    assert not (tmp_path / "net.toml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no staging left


def test_reserved_npz_names_get_a_suffix(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            u = nengo.Node(0.5, label="tick")
            a = nengo.Ensemble(10, 1, label="t")
            nengo.Connection(u, a)
            for label in ("dt", "meta", "t", "network", "seed"):
                nengo.Probe(a, label=label)
        """,
    )
    out = tmp_path / "net.toml"
    assert main(["import", str(model), "--out", str(out)]) == 0
    spec = load_network(out)
    assert list(spec.populations) == ["t"]  # a population's arrays are t.spikes: no clash
    assert list(spec.inputs) == ["tick_2"]
    assert list(spec.probes) == ["dt_2", "meta_2", "t_2", "network_2", "seed_2"]
    run_to_file(build(spec), 3, tmp_path / "run.npz")  # run takes it
    with np.load(tmp_path / "run.npz") as arrays:
        assert arrays["t_2"].shape == (3, 1)


# ------------------------------------------------------------------ atomic


def test_a_failed_import_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(tmp_path, NET.replace("nengo.Node(0.5", "nengo.Node(lambda t: t"))
    out = tmp_path / "net.toml"
    assert main(["import", str(model), "--out", str(out), "--sample-duration", "0.01"]) == 0
    text = out.read_text()
    arrays = {p.name: p.read_bytes() for p in (tmp_path / "net.arrays").iterdir()}
    saves = 0
    real_save = np.save

    def failing_save(path: object, arr: object) -> None:  # the disk fills after one array
        nonlocal saves
        saves += 1
        if saves > 1:
            raise OSError(28, "No space left on device")
        real_save(path, arr)  # type: ignore[arg-type]

    monkeypatch.setattr(network_file.np, "save", failing_save)
    line = refusal(capsys, "import", str(model), "--out", str(out), "--sample-duration", "0.02")
    assert "cannot write it" in line
    assert "No space left on device" in line
    assert out.read_text() == text
    assert {p.name: p.read_bytes() for p in (tmp_path / "net.arrays").iterdir()} == arrays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "net.arrays", "net.toml"]
    build(load_network(out))  # still a valid network


# ------------------------------------------------------------------ valid TOML


def test_names_with_any_characters_give_valid_toml(tmp_path: Path) -> None:
    (tmp_path / "uni").mkdir()
    script = write(tmp_path, NET, name="odd\nname\x1b.py")
    out = tmp_path / "uni" / "😀\x7f.toml"
    assert main(["import", str(script), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "😀" in text  # as itself, not a surrogate pair TOML forbids
    assert text.splitlines()[0].startswith("# Imported from odd\\u000Aname\\u001B.py:model")
    spec = load_network(out)
    build(spec)
    for s in ('a"b\\c', "tab\there", "\x00\x1f\x7f\x80", "é😀"):
        assert tomllib.loads(f"k = {_value(s)}")["k"] == s
    assert "\n" not in _comment("a\nb")
    assert "\r" not in _comment("a\rb")
    with pytest.raises(ModelImportError, match="surrogate U\\+DCFF"):
        _value("bad\udcff")


# ------------------------------------------------------------------ naming in refusals


def test_refusals_name_unlabelled_objects_by_their_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            a = nengo.Ensemble(10, 1)
            double = nengo.Node(lambda t, x: 2 * x, size_in=1)
            nengo.Connection(a, double)
        """,
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert "Node double (unlabelled): a node that computes a Python function" in line
    assert " at 0x" not in line
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            given = nengo.Ensemble(10, 1, gain=np.linspace(1, 5, 10), bias=np.linspace(-3, 0, 10))
        """,
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert "Ensemble given (unlabelled): gains and biases given explicitly" in line
    # Nengo's own messages name objects by address: the variable replaces it.
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            hot = nengo.Ensemble(10, 1, intercepts=nengo.dists.Choice([1.0]))
        """,
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert "intercepts for Ensemble hot (unlabelled) lead to" in line
    assert " at 0x" not in line


# ------------------------------------------------------------------ the script's failures


@pytest.mark.parametrize(
    ("raise_line", "expected"),
    [
        ("class Stop(BaseException): pass\nraise Stop('halt')", "the script raised Stop: halt"),
        ("raise GeneratorExit", "the script raised GeneratorExit"),
        ("import sys\nsys.exit('bye\\nnow')", "the script called exit('bye\\nnow')"),
        ("raise KeyboardInterrupt", "the script raised KeyboardInterrupt"),
    ],
)
def test_script_failures_are_one_line(
    raise_line: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(tmp_path, raise_line + "\n")
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert line.endswith(expected), line


def test_a_real_ctrl_c_still_stops_the_import(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n",
    )
    with pytest.raises(KeyboardInterrupt):
        load_script_network(model)


def test_the_old_arrays_stay_until_the_new_network_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A previous import's arrays that the new one lacks go only after the new network
    file replaced the old one: an interruption before that left the old file naming
    deleted arrays."""

    from spikestream.nengo_import import network_file

    out, folder = tmp_path / "net.toml", tmp_path / "net.arrays"
    folder.mkdir()
    out.write_text("old")
    for name in ("a.npy", "b.npy"):
        (folder / name).write_bytes(b"old " + name.encode())
    staging = tmp_path / "staging"
    (staging / "arrays").mkdir(parents=True)
    (staging / "net.toml").write_text("new")
    (staging / "arrays" / "a.npy").write_bytes(b"new a")
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if Path(str(dst)) == out:
            raise OSError("interrupted")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(network_file.os, "replace", failing_replace)
    with pytest.raises(OSError, match="interrupted"):
        network_file._move_into_place(staging / "net.toml", staging / "arrays", out, folder)
    assert out.read_text() == "old"
    assert (folder / "b.npy").read_bytes() == b"old b.npy"  # what the old file reads
    monkeypatch.setattr(network_file.os, "replace", real_replace)
    (staging / "arrays" / "a.npy").write_bytes(b"new a")  # the import is made again
    network_file._move_into_place(staging / "net.toml", staging / "arrays", out, folder)
    assert out.read_text() == "new"
    assert sorted(p.name for p in folder.iterdir()) == ["a.npy"]
