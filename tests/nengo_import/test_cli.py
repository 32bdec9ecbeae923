"""``spikestream import`` and ``run``/``serve`` of a model script: what they write, and
how they refuse what they cannot import (one line naming the object, exit status 2)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikestream.cli import main
from spikestream.errors import ConfigError, ModelImportError
from spikestream.nengo_import import (
    INSTALL_HINT,
    build_nengo_model,
    import_model,
    import_network,
    load_network_or_model,
    load_script_network,
    objects,
    split_source,
)
from spikestream.spec import FileSignal, load_network
from tests.nengo_import.runs import ROOT, script


def write(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text("import nengo\nimport numpy as np\n" + textwrap.dedent(body))
    return path


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr; return it."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_import_writes_a_network_file_with_side_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "integrator.toml"
    assert main(["import", str(script("integrator")), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    spec = load_network(out)
    assert spec.network.timing == "nengo"
    assert spec.network.seed == 13
    assert list(spec.populations) == ["memory"]
    assert list(spec.inputs) == ["stim"]
    # The passthrough node `relay` is folded: stim -> memory carries its transform.
    (inp, rec) = spec.connections
    assert (inp.pre, inp.post, inp.kind, inp.transform, inp.synapse) == (
        "stim",
        "memory",
        "input",
        [[0.1]],
        0.1,
    )
    assert (rec.pre, rec.post, rec.kind) == ("memory", "memory", "decoded")
    assert spec.probes["memory_value"].kind == "decoded"
    assert spec.probes["memory_spikes"].kind == "spikes"
    assert spec.probes["stim_value"].kind == "input"
    samples = np.load(tmp_path / "integrator.arrays" / "stim.signal.npy")
    assert samples.shape == (10_000, 1)  # 10 s sampled at t = dt, 2 dt, ...
    # Sample k is f((k + 1) dt): the pulse starts after t = 0.2 s, so at sample 200.
    assert (samples[199, 0], samples[200, 0]) == (0.0, 1.0)


def test_import_passes_the_timing_flag_and_counts_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--timing spikestream`` reaches the file (it was silently Nengo's otherwise), and
    the closing line counts each kind of object from the spec, not another kind."""
    model = write(
        tmp_path,
        """
        model = nengo.Network()
        with model:
            a = nengo.Ensemble(5, 1)
            b = nengo.Ensemble(5, 1)
            c = nengo.Ensemble(5, 1)
            nengo.Connection(a, b)
        """,
    )
    out = tmp_path / "three.toml"
    argv = ["import", str(model), "--out", str(out), "--timing", "spikestream"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    spec = load_network(out)
    assert spec.network.timing == "spikestream"
    counts = (len(spec.populations), len(spec.inputs), len(spec.connections), len(spec.probes))
    assert counts == (3, 0, 1, 0)
    assert line.endswith(
        ": 3 population(s), 0 input(s), 1 connection(s), 0 probe(s); timing = 'spikestream')"
    ), line


def test_import_sample_times_follow_nengo(tmp_path: Path) -> None:
    """Sample k is the node's output at t = (k + 1) dt, the time Nengo calls it with."""
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            clock = nengo.Node(lambda t: t, label="clock")
            a = nengo.Ensemble(10, 1, label="a")
            nengo.Connection(clock, a)
        """,
    )
    out = tmp_path / "net.toml"
    assert main(["import", str(model), "--out", str(out), "--sample-duration", "0.005"]) == 0
    samples = np.load(tmp_path / "net.arrays" / "clock.signal.npy")[:, 0]
    np.testing.assert_allclose(samples, [0.001, 0.002, 0.003, 0.004, 0.005])
    # `run` samples the whole run; at most MAX_SAMPLES values are taken.
    spec = load_network_or_model(model, sample_duration=12.5)
    assert isinstance(spec.inputs["clock"].signal, FileSignal)
    assert np.load(spec.resolve(spec.inputs["clock"].signal.path)).shape == (12_500, 1)
    with pytest.raises(ModelImportError, match=r"Node 'clock': sampling 100000 s of it at"):
        import_model(model, out, sample_duration=1e5)
    # Past any integer a tick count can hold: refused the same way, not an OverflowError.
    with pytest.raises(ModelImportError, match=r"takes inf values.*or --duration for run"):
        import_model(model, out, sample_duration=1e308)


def test_sampling_counts_ticks_and_values_of_every_dimension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample duration is rounded to the nearest tick (0.7 s / 1 ms is 699.9999999999999
    in floats: 700 samples, not 699), and the MAX_SAMPLES bound counts values, so a
    2-dimensional node reaches it in half the ticks."""
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            clock = nengo.Node(lambda t: [t, -t], label="clock")
            a = nengo.Ensemble(10, 2, label="a")
            nengo.Connection(clock, a)
        """,
    )
    out = tmp_path / "net.toml"
    import_model(model, out, sample_duration=0.7)
    samples = np.load(tmp_path / "net.arrays" / "clock.signal.npy")
    assert samples.shape == (700, 2)
    np.testing.assert_allclose(samples[-1], [0.7, -0.7])
    monkeypatch.setattr(objects, "MAX_SAMPLES", 1000)
    refused = r"Node 'clock': sampling 0.6 s .* takes 1,200 values"
    with pytest.raises(ModelImportError, match=refused):
        import_model(model, out, sample_duration=0.6)
    import_model(model, out, sample_duration=0.5)  # 1,000 values: at the bound, taken


def test_lif_parameters_are_kept(tmp_path: Path) -> None:
    """An ensemble's LIF parameters reach the network file as the script set them: time
    constants, min_voltage, radius, and initial voltages up to the threshold (1 itself is
    allowed: a neuron at the threshold spikes as in Nengo)."""
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            lif = nengo.LIF(
                tau_rc=0.03,
                tau_ref=0.004,
                min_voltage=-0.5,
                initial_state={"voltage": nengo.dists.Choice([1.0])},
            )
            rates = nengo.dists.Uniform(100, 200)
            nengo.Ensemble(10, 1, label="edge", radius=2.0, neuron_type=lif, max_rates=rates)
        """,
    )
    spec = import_model(model, tmp_path / "net.toml")
    pop = spec.populations["edge"]
    assert (pop.tau_rc, pop.tau_ref, pop.min_voltage, pop.radius) == (0.03, 0.004, -0.5, 2.0)
    np.testing.assert_array_equal(
        np.load(tmp_path / "net.arrays" / "edge.initial_voltage.npy"), np.ones(10)
    )


def test_a_zero_sample_duration_or_a_build_of_another_dt_is_refused(tmp_path: Path) -> None:
    """``sample_duration`` must be positive (0 s of a function would still be sampled once),
    and a Nengo build handed in must be of the ``dt`` asked for: its arrays (decoders,
    filters) were computed for its own time step."""
    model = write(
        tmp_path,
        """
        model = nengo.Network(seed=1)
        with model:
            a = nengo.Ensemble(10, 1, label="a")
        """,
    )
    with pytest.raises(ConfigError, match=r"--sample-duration must be > 0 seconds; got 0"):
        import_model(model, tmp_path / "net.toml", sample_duration=0.0)
    net, _ = load_script_network(model)
    built = build_nengo_model(net, 0.002)
    with pytest.raises(ConfigError, match=r"the given Nengo build has dt = 0.002; expected 0.001"):
        import_network(net, tmp_path / "net.toml", dt=0.001, built=built)
    assert not (tmp_path / "net.toml").exists()


def test_names_labels_variables_and_generated(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        """
        model = nengo.Network(label="my net!", seed=2)
        with model:
            source = nengo.Node([0.25, 0.5])
            first = nengo.Ensemble(10, 2)
            both = [nengo.Ensemble(10, 1), nengo.Ensemble(10, 1, label="x y")]
            same = nengo.Ensemble(10, 1, label="x_y")
            nengo.Connection(source, first)
            nengo.Connection(first[0], both[0])
            nengo.Connection(first[0], both[0], synapse=0.02)
            nengo.Probe(first, label="first")
            nengo.Probe(both[1].neurons, synapse=0.01)
        """,
    )
    out = tmp_path / "net.toml"
    assert main(["import", f"{model}:model", "--out", str(out)]) == 0
    spec = load_network(out)
    assert spec.name == "my_net_"
    assert list(spec.populations) == ["first", "ensemble_1", "x_y", "x_y_2"]
    assert list(spec.inputs) == ["source"]
    assert spec.inputs["source"].signal.kind == "constant"
    assert spec.inputs["source"].default == [0.25, 0.5]
    assert list(spec.probes) == ["first", "probe_1"]
    assert spec.probes["probe_1"].kind == "filtered"
    assert [c.label for c in spec.connections] == [
        "source->first",
        "first->ensemble_1",
        "first->ensemble_1-2",
    ]
    # Importing twice gives the same names and the same file; the side-file folder loses
    # only its old arrays.
    text = out.read_text()
    (tmp_path / "net.arrays" / "notes.txt").write_text("mine")
    (tmp_path / "net.arrays" / "stale.npy").write_bytes(b"")
    assert main(["import", str(model), "--out", str(out)]) == 0
    assert out.read_text() == text
    assert (tmp_path / "net.arrays" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "net.arrays" / "stale.npy").exists()


def test_split_source() -> None:
    assert split_source("m.py") == (Path("m.py"), "model")
    assert split_source("dir/m.py:net") == (Path("dir/m.py"), "net")
    assert split_source("C:/x/m.toml") == (Path("C:/x/m.toml"), "model")


UNSUPPORTED = {
    "neuron type": (
        "e = nengo.Ensemble(10, 1, label='rate', neuron_type=nengo.LIFRate())",
        "Ensemble 'rate': neuron type LIFRate is not supported; supported: nengo.LIF",
    ),
    "synapse": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(a, a, synapse=nengo.Alpha(0.01), label="loop")
        """,
        "Connection 'loop': synapse Alpha is not supported; supported: nengo.Lowpass(tau) or None",
    ),
    "learning rule": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        w = np.zeros((10, 10))
        bcm = nengo.BCM()
        nengo.Connection(a.neurons, b.neurons, transform=w, label="ab", learning_rule_type=bcm)
        """,
        "Connection 'ab': learning rule BCM is not supported; supported: a single nengo.PES",
    ),
    "function node": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        f = nengo.Node(lambda t, x: x * 2, size_in=1, label="double")
        nengo.Connection(a, f)
        """,
        "Node 'double': a node that computes a Python function of its input is not supported",
    ),
    "process node": (
        """
        n = nengo.Node(nengo.processes.WhiteSignal(1.0, high=5), label="noise")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(n, a)
        """,
        "Node 'noise': output WhiteSignal is a nengo.Process, which needs the simulator's "
        "time step",
    ),
    "two synapses": (
        """
        u = nengo.Node(0.5, label="u")
        p = nengo.Node(size_in=1, label="relay")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, p, synapse=0.01)
        nengo.Connection(p, a, synapse=0.01)
        """,
        "Node 'relay': two synapses in series through this passthrough node are not supported",
    ),
    "probe": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        c = nengo.Connection(a, a)
        nengo.Probe(c, "weights", label="w")
        """,
        "Probe 'w': a probe of",
    ),
    "encoders not normalised": (
        "nengo.Ensemble(4, 2, label='raw', encoders=np.ones((4, 2)), normalize_encoders=False)",
        "Ensemble 'raw': encoders that are not of unit length (normalize_encoders=False) are "
        "not supported",
    ),
    "start voltage above 1": (
        """
        lif = nengo.LIF(initial_state={"voltage": nengo.dists.Uniform(0.5, 1.5)})
        nengo.Ensemble(10, 1, label="hot", neuron_type=lif)
        """,
        "Ensemble 'hot': initial voltages above 1 (the highest 1.",
    ),
    "noise": (
        "nengo.Ensemble(10, 1, label='noisy', noise=nengo.processes.WhiteNoise())",
        "Ensemble 'noisy': neuron noise is not supported; supported: noise = None",
    ),
    "amplitude": (
        "nengo.Ensemble(10, 1, label='loud', neuron_type=nengo.LIF(amplitude=2))",
        "Ensemble 'loud': LIF amplitude 2 is not supported; supported: amplitude 1",
    ),
    "start refractory time": (
        """
        lif = nengo.LIF(initial_state={"refractory_time": nengo.dists.Uniform(0.001, 0.002)})
        nengo.Ensemble(10, 1, label="tired", neuron_type=lif)
        """,
        "Ensemble 'tired': a non-zero initial refractory_time is not supported; supported: "
        "refractory_time 0",
    ),
    "weight solver": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        nengo.Connection(a, b, solver=nengo.solvers.LstsqL2(weights=True), label="full")
        """,
        "Connection 'full': a solver with weights=True is not supported; supported: decoder "
        "solvers (LstsqL2)",
    ),
    "probe sample_every": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Probe(a, sample_every=0.01, label="sparse")
        """,
        "Probe 'sparse': sample_every is not supported; supported: sample_every = None",
    ),
    "pes pre_synapse": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        e = nengo.Node([0.0], label="err")
        pes = nengo.PES(pre_synapse=nengo.Lowpass(0.02))
        c = nengo.Connection(a, b, learning_rule_type=pes, label="ab")
        nengo.Connection(e, c.learning_rule)
        """,
        "Connection 'ab': PES with a pre_synapse other than Lowpass(0.005); supported: "
        "PES(pre_synapse=Lowpass(0.005))",
    ),
    "pes without an error": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        nengo.Connection(a, b, learning_rule_type=nengo.PES(), label="ab")
        """,
        "Connection 'ab': 0 error connections into its PES rule; supported: exactly one",
    ),
    "filtered voltage probe": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Probe(a.neurons, "voltage", synapse=0.01, label="smooth")
        """,
        "Probe 'smooth': a probe of Ensemble 'a'.neurons.voltage (synapse Lowpass(tau=0.01)) is "
        "not supported",
    ),
    "non-finite function node": (
        """
        u = nengo.Node(lambda t: float("nan") if t > 0.002 else 0.0, label="broken")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(u, a)
        """,
        "Node 'broken': its output is NaN or infinite; supported: finite outputs",
    ),
    "pes error from an ensemble": (
        """
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        e = nengo.Ensemble(10, 1, label="error")
        c = nengo.Connection(a, b, learning_rule_type=nengo.PES())
        nengo.Connection(e, c.learning_rule, label="err")
        """,
        "Connection 'err': this PES error connection is not supported; supported: an error "
        "from an input node",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_models_are_refused_naming_the_object(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, expected = UNSUPPORTED[case]
    model = write(
        tmp_path,
        "model = nengo.Network(seed=1)\nwith model:\n"
        + textwrap.indent(textwrap.dedent(body), "    "),
    )
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "net.toml"))
    assert line.startswith("spikestream import: error: ")
    assert expected in line
    assert not (tmp_path / "net.toml").exists()  # nothing half-written


def test_script_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "net.toml")
    missing = refusal(capsys, "import", str(tmp_path / "nope.py"), "--out", out)
    assert "nope.py: no such model script" in missing
    raises = write(tmp_path, "raise RuntimeError('boom\\nsecond line')\n", "raises.py")
    assert "the script raised RuntimeError: boom" in refusal(
        capsys, "import", str(raises), "--out", out
    )
    other = write(tmp_path, "net = nengo.Network()\nwith net:\n    nengo.Ensemble(5, 1)\n", "o.py")
    line = refusal(capsys, "import", str(other), "--out", out)
    assert "variable 'model' is not defined; expected a nengo.Network" in line
    assert "networks in the script: net" in line
    assert main(["import", f"{other}:net", "--out", out]) == 0


def test_an_out_path_that_cannot_be_written_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(tmp_path, "model = nengo.Network()\nwith model:\n    nengo.Ensemble(5, 1)\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "clash.arrays").write_text("a file")
    (tmp_path / "plain").write_text("a file")
    # A FIFO (or /dev/null, or any device) was replaced by a regular file: os.replace
    # renames over whatever is there, and as root /dev/null itself became a text file.
    os.mkfifo(tmp_path / "pipe.toml")
    for out, says in (
        (tmp_path / "folder", "is a folder; expected a network file path"),
        (tmp_path / "pipe.toml", "exists and is not a regular file"),
        (tmp_path / "clash.toml", "which is not a folder"),
        (tmp_path / "plain" / "deeper" / "x.toml", "plain' is not a folder"),
        # A mistyped folder was made, with the file in it; run and record refuse theirs.
        (tmp_path / "typo" / "x.toml", "folder '{d}/typo' does not exist; expected a path"),
    ):
        says = says.format(d=tmp_path)
        assert says in refusal(capsys, "import", str(model), "--out", str(out))
    assert not (tmp_path / "folder.arrays").exists()  # nothing written
    assert not (tmp_path / "typo").exists()
    assert (tmp_path / "clash.arrays").read_text() == "a file"
    assert stat.S_ISFIFO((tmp_path / "pipe.toml").lstat().st_mode)  # still the FIFO
    assert not (tmp_path / "pipe.arrays").exists()
    line = refusal(capsys, "import", str(model), "--out", str(tmp_path / "n.toml"), "--dt", "1e-7")
    assert "--dt must be in [1e-06, 1] seconds; got 1e-07" in line
    assert not (tmp_path / "n.toml").exists()


def test_without_nengo_the_commands_say_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['nengo'] = None\n"
        "from spikestream.cli import main\n"
        f"sys.exit(main(['import', {str(script('channel'))!r}, '--out', 'x.toml']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"spikestream import: error: {INSTALL_HINT}"
    assert "pip install 'nengo>=4,<5'" in run.stderr
    code = code.replace("'import',", "'run',").replace(
        "'--out', 'x.toml'", "'--duration', '1', '--out', 'x.npz'"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"spikestream run: error: {INSTALL_HINT}"


def test_run_accepts_a_model_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "channel.npz"
    argv = ["run", str(script("channel")), "--duration", "0.5", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    with np.load(out) as arrays:
        assert arrays["b_value"].shape == (500, 2)
        assert arrays["a.spikes"].shape == (500, 200)
        assert str(arrays["network"]) == "nengo-channel"
        # b follows the input (after the first 100 ms).
        err = np.abs(arrays["b_value"][100:] - arrays["stim_value"][100:]).mean()
        assert err < 0.15


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--duration", "0.1", "--seed", "-1"], "--seed: -1 is not allowed"),
        (["--duration", "0.1", "--memory-limit", "lots"], "--memory-limit: 'lots' is not allowed"),
        ([], "--duration S is required (or --replay FILE)"),
    ],
)
def test_run_checks_its_flags_before_it_runs_a_model_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    """Loading a model script runs it: a mistyped flag is refused first, so the script's
    side effects (and its minutes of building) are not paid for a refusal."""
    ran = tmp_path / "ran"
    model = write(
        tmp_path,
        f"""
        open({str(ran)!r}, "w").close()
        model = nengo.Network()
        with model:
            nengo.Ensemble(5, 1)
        """,
    )
    out = str(tmp_path / "o.npz")
    line = refusal(capsys, "run", str(model), "--out", out, *flags)
    assert expected in line
    assert not ran.exists()


def test_run_samples_a_model_scripts_input_over_a_run_longer_than_ten_seconds(
    tmp_path: Path,
) -> None:
    """A script's input function is sampled over the whole run: past the import's 10 s
    default it held its last sample, a step at 10.5 s never came."""
    model = write(
        tmp_path,
        """
        model = nengo.Network(label="late")
        with model:
            stim = nengo.Node(lambda t: 1.0 if t > 10.5 else 0.0, label="stim")
            a = nengo.Ensemble(5, 1, label="a")
            nengo.Connection(stim, a)
            nengo.Probe(stim, label="stim_value")
        """,
    )
    out = tmp_path / "o.npz"
    argv = ["run", str(model), "--duration", "11", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    with np.load(out) as arrays:
        stim = arrays["stim_value"][:, 0]
    assert stim.shape == (11_000,)
    assert (stim[:10_400] == 0).all()
    assert (stim[10_600:] == 1).all()


def test_help_says_import_runs_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Importing RUNS the script" in text
    assert "pip install 'nengo>=4,<5'" in text
    assert ROOT.exists()


def test_imports_line_is_a_json_record_under_log_format_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``import``'s ``wrote`` line is a JSON record on stderr under ``--log-format json``,
    as every other line there; stdout stays empty."""
    out = tmp_path / "integrator.toml"
    argv = ["--log-format", "json", "import", str(script("integrator")), "--out", str(out)]
    assert main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    records = [json.loads(line) for line in stderr.strip().splitlines()]
    (wrote,) = [r for r in records if r["msg"].startswith("wrote ")]
    assert wrote["logger"] == "spikestream.import"
    assert wrote["msg"].startswith(f"wrote {out} (nengo-integrator: 1 population(s)")
