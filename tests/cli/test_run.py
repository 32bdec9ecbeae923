"""``spikestream run`` end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikestream.cli import main
from spikestream_client.cli import top_words
from tests.clients.conftest import run_cli_unread

ROOT = Path(__file__).parents[2]
SEED = ROOT / "examples" / "seed.toml"


def test_run_writes_npz_layout_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "seed.npz", tmp_path / "seed.png"
    code = main(["run", str(SEED), "--duration", "1", "--out", str(out), "--plot", str(png)])
    assert code == 0
    d = np.load(out)
    for pop, n in (("a", 50), ("b", 40)):
        for key in ("gain", "bias", "max_rates", "intercepts"):
            assert d[f"{pop}.{key}"].shape == (n,)
        assert d[f"{pop}.encoders"].shape == (n, 1)
        spikes = d[f"{pop}.spikes"]
        assert spikes.shape == (1000, n)
        assert spikes.dtype == np.uint8
        assert set(np.unique(spikes)) <= {0, 1}
        assert spikes.sum() > 0
    assert d["a->b.weights"].shape == (50, 40)
    assert d["u"].shape == (1000, 1)
    np.testing.assert_allclose(d["u"][:, 0], np.sin(np.arange(1000) * 0.001))
    np.testing.assert_allclose(d["t"], (np.arange(1000) + 1) * 0.001)
    assert d["a_filtered"].shape == (1000, 50)
    np.testing.assert_array_equal(d["a_spikes"], d["a.spikes"])
    assert json.loads(str(d["meta"]))["probes"]["b_filtered"] == "filtered"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_console_script_reports_bad_file_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[populations.a]\nn = 0\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spikestream.cli",
            "run",
            str(bad),
            "--duration",
            "1",
            "--out",
            str(tmp_path / "x.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "populations.a.n: Input should be greater than 0 (got 0)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_help_explains_each_flag() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spikestream.cli", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for flag in ("--duration", "--out", "--plot", "--dtype", "--seed", "--no-progress"):
        assert flag in proc.stdout


GOLDEN = Path(__file__).parent / "golden_run_seed.npz"


def test_run_file_matches_golden_from_before_block_recording(tmp_path: Path) -> None:
    """The seed run's file matches one written before runs were recorded in compiled
    blocks (commit 1c48c3b: per-tick Python recording, np.savez_compressed): identical
    spikes, identical filtered probe values (a sample of rows, float64)."""
    out = tmp_path / "seed.npz"
    assert main(["run", str(SEED), "--duration", "1", "--out", str(out), "--no-progress"]) == 0
    d, golden = np.load(out), np.load(GOLDEN)
    np.testing.assert_array_equal(np.packbits(d["a.spikes"]), golden["a_spikes_packed"])
    np.testing.assert_array_equal(np.packbits(d["b.spikes"]), golden["b_spikes_packed"])
    rows = golden["rows"]
    for pop in ("a", "b"):
        values = d[f"{pop}_filtered"]
        assert values.dtype == np.float64
        np.testing.assert_allclose(values[rows], golden[f"{pop}_filtered_rows"], rtol=1e-12)
        np.testing.assert_allclose(values[-1], golden[f"{pop}_filtered_last"], rtol=1e-12)


def test_run_dtype_and_seed_flags_reach_the_build(tmp_path: Path) -> None:
    """``--dtype float32`` runs the state in float32 (the probes' values say so), and
    ``--seed`` overrides the file's: a flag accepted and then not passed on would change
    nothing the user could see but the numbers."""
    out, other = tmp_path / "f32.npz", tmp_path / "seeded.npz"
    base = ["run", str(SEED), "--duration", "0.2", "--no-progress"]
    assert main([*base, "--out", str(out), "--dtype", "float32"]) == 0
    assert np.load(out)["a_filtered"].dtype == np.float32
    assert main([*base, "--out", str(other), "--seed", "12345"]) == 0
    plain = tmp_path / "plain.npz"
    assert main([*base, "--out", str(plain)]) == 0
    assert not np.array_equal(np.load(other)["a.spikes"], np.load(plain)["a.spikes"])


def test_run_writes_uncompressed_by_default_and_deflates_with_compress(tmp_path: Path) -> None:
    plain, small = tmp_path / "plain.npz", tmp_path / "small.npz"
    args = ["run", str(SEED), "--duration", "2", "--no-progress", "--out"]
    assert main([*args, str(plain)]) == 0
    assert main([*args, str(small), "--compress"]) == 0
    with zipfile.ZipFile(plain) as zp, zipfile.ZipFile(small) as zs:
        assert {i.compress_type for i in zp.infolist()} == {zipfile.ZIP_STORED}
        assert {i.compress_type for i in zs.infolist()} == {zipfile.ZIP_DEFLATED}
    assert small.stat().st_size < plain.stat().st_size / 1.3
    a, b = np.load(plain), np.load(small)
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_run_imports_only_what_it_needs(tmp_path: Path) -> None:
    """``run`` (and its parser) never imports the live service's libraries, the plotting
    library, tqdm without a progress bar, threadpoolctl on a compiled run, numba when
    the C extension runs the whole tick (numba's start-up is half a second), or the Nengo
    importer for a network file."""
    code = (
        "import sys\n"
        "from spikestream.cli import main\n"
        f"main(['run', {str(SEED)!r}, '--duration', '1', '--no-progress', '--out', "
        f"{str(tmp_path / 'x.npz')!r}])\n"
        "print('spikestream.sim._native' in sys.modules)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('spikestream.nengo'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    *_, ran_in_c, names, importer = proc.stdout.splitlines()
    loaded = set(names.split())
    # A network file needs only the check that it is not a Nengo script: the importer's
    # own modules (13 ms of a 0.27 s start) stay unloaded.
    assert set(importer.split()) == {
        "spikestream.nengo_import",
        "spikestream.nengo_import.script",
        "spikestream.nengo_import.sources",
    }
    assert ran_in_c == "True"  # the probe works: the run really ran, in C
    assert "numpy" in loaded
    heavy = {
        "numba",
        "llvmlite",
        "matplotlib",
        "pydantic_settings",
        "amqtt",
        "aiomqtt",
        "websockets",
        "prometheus_client",
        "rich",
        "tqdm",
        "threadpoolctl",
        "msgpack",
    }
    assert loaded & heavy == set()


def test_run_profile_reports_the_split(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spikestream",
            "run",
            str(SEED),
            "--duration",
            "1",
            "--out",
            str(tmp_path / "x.npz"),
            "--profile",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("profile (s):"))
    for part in ("start-up to first tick", "stepping and recording", "writing"):
        assert part in line


def test_progress_bar_appears_only_after_its_delay() -> None:
    from spikestream.cli.run import _LazyBar

    quiet = _LazyBar(1000, "seed", delay=3600.0)
    quiet.update(500)
    assert quiet.bar is None
    quiet.close()
    shown = _LazyBar(1000, "seed", delay=0.0)
    shown.update(400)
    shown.update(1000)
    assert shown.bar is not None
    assert shown.bar.n == 1000
    shown.close()
    assert shown.bar.disable  # closed: its line is erased, not left under the report


def test_run_closes_its_progress_bar_before_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the bar is fed every block and closed once the run ends, so its line
    is erased before the closing report, not left above it with a stale count."""
    from spikestream.cli import run

    bars: list[run._LazyBar] = []

    class Shown(run._LazyBar):
        def __init__(self, total: int, desc: str, delay: float = 1.0) -> None:
            super().__init__(total, desc, delay=0.0)
            bars.append(self)

    monkeypatch.setattr(run, "_LazyBar", Shown)
    monkeypatch.setattr(run, "show_progress", lambda args: True)
    out = tmp_path / "o.npz"
    assert main(["run", str(SEED), "--duration", "0.2", "--out", str(out)]) == 0
    (bar,) = bars
    assert bar.total == 200
    assert bar.done == 200
    assert bar.bar is not None
    assert bar.bar.disable  # closed
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--duration", "nan"], "run: error: --duration must be a number of seconds > 0; got nan"),
        (["--duration", "inf"], "run: error: --duration must be a number of seconds > 0; got inf"),
        (["--duration", "-1"], "run: error: --duration must be a number of seconds > 0; got -1"),
        (["--duration", "0"], "run: error: --duration must be a number of seconds > 0; got 0"),
        (["--duration", "1", "--seed", "-1"], "--seed: -1 is not allowed; expected an integer"),
        # The seed is an unsigned 63-bit value: the first one past it is refused too.
        (["--duration", "1", "--seed", str(2**63)], f"--seed: {2**63} is not allowed"),
        # Neither a length nor a log to take it from.
        ([], "run: error: --duration S is required (or --replay FILE)"),
        (["--duration", "1", "--memory-limit", "lots"], "--memory-limit: 'lots' is not allowed"),
        # Given but empty: it was taken for the default.
        (["--duration", "1", "--memory-limit", ""], "--memory-limit: '' is not allowed"),
    ],
)
def test_bad_run_flags_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:

    code = main(["run", str(SEED), "--out", str(tmp_path / "o.npz"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert message in err


def test_the_memory_limit_from_the_environment_is_named_and_empty_means_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad SPIKESTREAM_MEMORY_LIMIT is blamed on the variable, not on a flag the user
    never gave; an empty one (``VAR= spikestream run``) is unset, the default."""
    out = tmp_path / "o.npz"
    argv = ["run", str(SEED), "--duration", "0.01", "--no-progress", "--out", str(out)]
    monkeypatch.setenv("SPIKESTREAM_MEMORY_LIMIT", "lots")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "SPIKESTREAM_MEMORY_LIMIT: 'lots' is not allowed" in err
    assert "--memory-limit" not in err
    assert not out.exists()
    monkeypatch.setenv("SPIKESTREAM_MEMORY_LIMIT", "")
    assert main(argv) == 0, capsys.readouterr().err
    assert out.exists()


@pytest.mark.parametrize("command", ["run", "serve"])
def test_help_mentions_the_memory_limit(command: str, capsys: pytest.CaptureFixture[str]) -> None:

    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "--memory-limit SIZE" in capsys.readouterr().out


NET = """
[network]
seed = 1
[populations.a]
n = 20
[populations.b]
n = 10
[[connections]]
pre = "a"
post = "b"
"""


def _run(
    tmp_path: Path, network: str, *flags: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``spikestream run`` on ``network`` as a user runs it; the timeout turns a hang into a
    failure instead of a stuck suite."""
    path = tmp_path / "net.toml"
    path.write_text(network)
    argv = [sys.executable, "-m", "spikestream.cli", "run", str(path), "--duration", "0.05"]
    argv += ["--out", str(tmp_path / "out.npz"), "--no-progress", *flags]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (
            'function = "x * 9**9**9**9"',
            "connections[0].function: the part '9 ** 9 ** 9 ** 9' of 'x * 9**9**9**9' "
            "evaluates to inf, which is not allowed",
        ),
        (
            'function = "' + "-" * 100_000 + 'x"',
            "connections[0].function: an expression of 100001 characters is not allowed",
        ),
        (
            'weights = { dist = "uniform", low = -inf, high = inf }',
            "invalid network (2 errors)",
        ),
        (
            'weights = { dist = "normal", std = inf }',
            "connections[0].weights.std: Input should be a finite number (got inf)",
        ),
        (
            'function = "x"\ntransform = nan',
            "connections[0].transform: Input should be a finite number (got nan)",
        ),
        (
            'function = "numpy:square"',
            "connections[0].function: 'numpy:square' names a Python callable, which is not "
            "allowed by default",
        ),
        (
            'function = "log(x)"',
            "connections[0].function: 'log(x)' is not finite at ",
        ),
        (
            'function = "x + ([1, 2] + [1, 2, 3])"',
            "connections[0].function: in 'x + ([1, 2] + [1, 2, 3])', the values of shapes "
            "(1, 2), (1, 3)",
        ),
        (
            'function = "x * [x]"\neval_points = 30000',
            "connections[0].function: in 'x * [x]', the values of shapes (30000,), (30000, 1) "
            "in 'x * [x]' give shape (30000, 30000), which is not allowed",
        ),
    ],
)
def test_hostile_network_file_exits_2_with_one_error_and_no_traceback(
    tmp_path: Path, connection: str, expected: str
) -> None:
    started = time.perf_counter()
    proc = _run(tmp_path, NET + connection + "\n")
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    first, *rest = proc.stderr.splitlines()
    assert first.startswith(f"spikestream run: error: {tmp_path / 'net.toml'}: "), first
    assert expected in first, first
    # One line per error: the two infinite bounds are two lines, anything else is one.
    assert len(rest) == (2 if "2 errors" in expected else 0), proc.stderr
    assert not (tmp_path / "out.npz").exists()
    print(f"{connection[:40]!r}: refused in {elapsed:.2f} s")


def test_a_reader_gone_from_the_output_loses_neither_file_nor_plot(tmp_path: Path) -> None:
    """``run ... --plot P | true``: the "wrote" line met the closed pipe, and the command
    exited 0 before it drew the plot. Help piped into ``head`` is quiet as well."""
    out, plot = tmp_path / "x.npz", tmp_path / "x.png"
    args = ("run", str(SEED), "--duration", "1", "--out", str(out), "--plot", str(plot))
    assert run_cli_unread(*args) == 0
    assert np.load(out)["t"].size == 1000
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert run_cli_unread("--help") == 0
    assert run_cli_unread("serve", "--help") == 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["serve", str(SEED), "--realtime-factr", "2"],
            "spikestream serve: error: unrecognized arguments: --realtime-factr 2; did you "
            "mean --realtime-factor? (see spikestream serve --help)",
        ),
        (
            ["feed", "--brokr", "mqtt://h", "--net", "seed", "--input", "u", "sin"],
            "spikestream feed: error: unrecognized arguments: --brokr sin; did you mean "
            "--broker? (see spikestream feed --help)",
        ),
        (
            ["run", str(SEED), "--duraton=2", "--seeed", "3", "--out", "x.npz"],
            "spikestream run: error: unrecognized arguments: --duraton=2 --seeed 3; did you "
            "mean --duration for --duraton, --seed for --seeed? (see spikestream run --help)",
        ),
        (
            ["run", str(SEED), "--duration", "abc", "--out", "x.npz"],
            "spikestream run: error: argument --duration: invalid float value: 'abc' (see "
            "spikestream run --help)",
        ),
    ],
)
def test_a_misspelt_flag_is_refused_by_its_command_naming_the_closest(
    argv: list[str], expected: str
) -> None:
    """The top-level parser refused a subcommand's unknown flag, with the top-level usage
    and no hint (``feed --brokr URL`` even took the URL for the signal); README promises
    the closest valid flag, as for a misspelt environment variable."""
    assert _refused(argv).stderr == expected + "\n"


def _refused(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``spikestream ARGV`` in a fresh interpreter, checked to exit 2 (a usage error)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spikestream", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    return proc


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (
            ["--log-format", "json", "serve", str(SEED), "--realtime-factr", "2"],
            "serve",
            "unrecognized arguments: --realtime-factr 2; did you mean --realtime-factor? (see "
            "spikestream serve --help)",
        ),
        (
            ["--log-format=json", "run", str(SEED), "--duration", "abc"],
            "run",
            "argument --duration: invalid float value: 'abc' (see spikestream run --help)",
        ),
        (
            ["--log-l", "error", "--log-f", "json", "nosuch"],
            None,
            "argument COMMAND: invalid choice: 'nosuch' (choose from 'run', 'serve', 'feed', "
            "'monitor', 'record', 'import', 'ls') (see spikestream --help)",
        ),
    ],
)
def test_a_usage_error_under_log_format_json_is_one_json_object(
    argv: list[str], command: str | None, message: str
) -> None:
    """FAULTS.md: "user errors of every command are one JSON object there". A misspelt or
    bad flag printed argparse's plain line (and the top level its usage) to the log
    collector that reads stderr."""
    (line,) = _refused(argv).stderr.splitlines()
    said = json.loads(line)
    assert (said["level"], said["msg"]) == ("error", message)
    assert (said["command"], said["error"]) == (command, "ArgumentError")


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["--log-format", "json", "run"], "json"),
        (["--log-format=text", "--log-f", "json", "ls"], "json"),
        (["--log-level", "debug", "run", "--log-format", "json"], None),  # the command's own
        (["--log-format"], None),
        (["-v", "--log-formats", "json"], None),  # no such flag: argparse refuses it
    ],
)
def test_top_flag_reads_a_top_level_value_as_argparse_does(
    argv: list[str], value: str | None
) -> None:
    assert top_words(argv)[1].get("--log-format") == value


def test_a_top_level_flag_may_be_abbreviated_before_the_command(tmp_path: Path) -> None:
    """argparse takes ``--log-l`` for ``--log-level``; the dispatcher took its value for
    the command and refused every argument of the real one."""
    out = tmp_path / "x.npz"
    code = main(["--log-l", "warning", "run", str(SEED), "--duration", "0.01", "--out", str(out)])
    assert code == 0
    assert out.exists()


def test_python_function_runs_with_the_opt_in_flag(tmp_path: Path) -> None:
    proc = _run(tmp_path, NET + 'function = "numpy:square"\n', "--allow-python-functions")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.npz").exists()


def test_python_function_is_refused_without_the_opt_in_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flag is the only consent to importing (running) a module named in the file:
    without it ``run`` refuses in one line and writes nothing."""
    net = tmp_path / "net.toml"
    net.write_text(NET + 'function = "numpy:square"\n')
    out = tmp_path / "out.npz"
    assert main(["run", str(net), "--duration", "0.05", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "names a Python callable, which is not allowed by default" in err
    assert not out.exists()


def _loaded_by(argv: list[str]) -> tuple[str, set[str]]:
    """What ``spikestream ARGV`` prints, and every module loaded by then, in a fresh
    interpreter."""
    code = (
        "import sys\n"
        "from spikestream_client.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    *out, loaded = proc.stdout.splitlines()
    return "\n".join(out), set(loaded.split())


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run", "--memory-limit SIZE"),
        ("serve", "--memory-limit SIZE"),
        ("import", "MODEL.py[:NAME]"),
        ("ls", "--json"),
        ("feed", "--input"),
    ],
)
def test_each_command_has_its_help_with_only_its_module_loaded(command: str, expected: str) -> None:
    """The parser imports only the named command's module (``import`` lives in
    ``importer``), and each command's --help describes it."""
    out, loaded = _loaded_by([command, "--help"])
    assert expected in out
    where = {
        "run": "spikestream.cli.run",
        "serve": "spikestream.cli.serve",
        "import": "spikestream.cli.importer",
        **{c: f"spikestream_client.cli.{c}" for c in ("feed", "monitor", "record", "ls")},
    }
    assert where[command] in loaded
    assert not (set(where.values()) - {where[command]}) & loaded


def test_serve_help_loads_its_settings_not_the_service() -> None:
    """``serve --help`` needs only the settings its flags derive from: the service and
    the snapshot files stay unloaded (``spikestream.serving`` re-exports the snapshot
    names lazily)."""
    out, loaded = _loaded_by(["serve", "--help"])
    assert "--max-catchup" in out  # the probe works: the flags were described
    assert "spikestream.serving.settings" in loaded
    heavy = {
        "spikestream.serving.serve",
        "spikestream.serving.service",
        "spikestream.serving.snapshots",
    }
    assert not heavy & loaded


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        # The list of commands imported every command's parser, serve's settings with
        # pydantic-settings and numpy among them: 0.4 s where ls --help takes 0.07 s.
        (
            ["--help"],
            {
                "numpy",
                "pydantic",
                "pydantic_settings",
                "aiomqtt",
                "rich",
                "spikestream.serving.settings",
                "spikestream.nengo_import",
            },
        ),
        # run --help imported numpy for one help text (spikestream.flaghelp has it now).
        (["run", "--help"], {"numpy", "pydantic", "spikestream.functions"}),
        # serve --help needs its settings, not the pacer and the simulator.
        (["serve", "--help"], {"spikestream.runtime", "spikestream.sim"}),
        # A built-in command needs no scan of the installed distributions.
        (["ls", "--help"], {"importlib.metadata", "numpy", "pydantic"}),
    ],
)
def test_help_loads_only_what_it_shows(argv: list[str], absent: set[str]) -> None:
    out, loaded = _loaded_by(argv)
    assert "usage: spikestream" in out  # the probe works: the help was printed
    assert not absent & loaded


def test_the_list_of_commands_shows_each_summary() -> None:
    from spikestream.cli import importer, run, serve
    from spikestream_client.cli import feed, ls, monitor, record

    out, _ = _loaded_by(["--help"])
    flat = " ".join(out.split())  # argparse wraps the summaries
    for module in (run, serve, feed, monitor, record, importer, ls):
        assert module.SUMMARY in flat


def test_the_client_tools_load_neither_pydantic_nor_rich_unless_they_draw() -> None:
    """The client held a broker password in pydantic's SecretStr: ~70 ms of imports in
    every tool, for one masking class. ls and feed print lines, so rich stays out too."""
    code = (
        "import sys\n"
        "import spikestream_client.ls, spikestream_client.feed\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(proc.stdout.split())
    assert "spikestream_client.transport.urls" in loaded  # the probe works
    assert not {"pydantic", "pydantic_core", "rich"} & loaded


def test_listing_and_controlling_networks_loads_no_numpy() -> None:
    """numpy took ~60 ms of ``ls``'s start for decoders it never calls: the frame and
    input decoders load on first use, and the client library, the describe, control and
    event codecs work without them."""
    code = (
        "import sys\n"
        "import spikestream_client.ls, spikestream_client.client\n"
        "from spikestream_client.codec import decode_control, encode_control, encode_event\n"
        "decode_control(encode_control('set', 'realtime_factor', 0.5))\n"
        "encode_event('control', ok=True)\n"
        "print('numpy' in sys.modules)\n"
        "from spikestream_client.codec import FrameHeader, decode_frame, encode_values\n"
        "from spikestream_client.client import Frame\n"
        "header = FrameHeader('n', 'p', 0, 0, 1, 1e-3, 1e-3, 0.0, 0.0, 0)\n"
        "frame = decode_frame(encode_values(header, [[0.5, 1.0]]))\n"
        "print('numpy' in sys.modules, type(frame).__name__, Frame is not None)\n"
        "try:\n"
        "    from spikestream_client.codec import nothing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before, after, refused = proc.stdout.splitlines()
    assert before == "False"
    assert after == "True ValueFrame True"
    assert "cannot import name 'nothing' from 'spikestream_client.codec'" in refused


def test_the_serving_package_still_offers_the_snapshot_names() -> None:
    import spikestream.serving as serving
    from spikestream.serving import snapshots

    assert serving.SnapshotFolder is snapshots.SnapshotFolder
    assert serving.read_snapshot is snapshots.read_snapshot
    assert set(serving.__all__) <= set(dir(snapshots))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        serving.nothing  # noqa: B018


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ("missing/p.png", "--plot: cannot write '{d}/missing/p.png': folder '{d}/missing' does "),
        ("p.txt", "--plot: '{d}/p.txt' has suffix '.txt'; expected one of .avif, .eps, .gif"),
        ("p", "--plot: '{d}/p' has no suffix; expected one of .avif, .eps, .gif, .jpeg, .jpg"),
        ("", "--plot: '{d}' is a folder; expected a file name"),
    ],
)
def test_a_bad_plot_path_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plot: str, message: str
) -> None:
    # It was a FileNotFoundError or ValueError traceback from matplotlib after the run.
    out = tmp_path / "o.npz"
    plot_path = str(tmp_path / plot) if plot else str(tmp_path)
    code = main(["run", str(SEED), "--duration", "0.01", "--out", str(out), "--plot", plot_path])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("spikestream run: error: " + message.format(d=tmp_path)), err
    assert len(err.splitlines()) == 1
    assert not out.exists()  # refused before the run, not after it


def test_a_plot_may_be_any_format_matplotlib_writes(tmp_path: Path) -> None:
    for name in ("p.pdf", "p.SVG", "p.jpg"):
        argv = ["run", str(SEED), "--duration", "0.05", "--out", str(tmp_path / "o.npz")]
        assert main([*argv, "--plot", str(tmp_path / name), "--no-progress"]) == 0
        assert (tmp_path / name).stat().st_size > 0


def test_the_closing_line_shows_the_first_rates_and_counts_the_rest(tmp_path: Path) -> None:
    """A network of many populations gets one closing line, not one rate per population."""
    network = "".join(f"[populations.p{i}]\nn = 5\n" for i in range(12))
    proc = _run(tmp_path, network)
    assert proc.returncode == 0, proc.stderr
    (line,) = [s for s in proc.stdout.splitlines() if "mean rates" in s]
    assert "'p7'" in line
    assert "'p8'" not in line
    assert line.endswith("} and 4 more")


def test_an_error_echoes_a_hostile_file_cut_and_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 100,000-character key was echoed whole into one error line (the network file's
    message shows 80 characters of it now; the command cuts any line past 1000); a file
    name with an escape sequence reached the terminal raw."""
    long_key = tmp_path / "long.toml"
    long_key.write_text("[populations.a]\nn = 10\n" + "k" * 100_000 + " = 1\n")
    assert main(["run", str(long_key), "--duration", "0.01", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1200
    assert "unknown key 'kkkkk" in err
    assert "k ...; allowed keys" in err
    escape = tmp_path / "escape.toml"
    escape.write_text(
        '[populations.a]\nn = 10\n[populations.b]\nn = 10\n[[connections]]\npre = "a"\n'
        'post = "b"\nweights = { file = "\\u001b[2Jw.npy\\u202e" }\n'
    )
    assert main(["run", str(escape), "--duration", "0.01", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\u202e" not in err
    assert "\\x1b[2Jw.npy" in err


def test_runs_report_lines_are_json_records_under_log_format_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under ``--log-format json``, ``run``'s summary and its ``wrote`` lines are JSON
    records on stderr like every other line, and nothing is printed on stdout (they were
    plain text on stdout, which a log collector reading the process's output cannot
    parse)."""
    out = tmp_path / "seed.npz"
    argv = ["--log-format", "json", "run", str(SEED), "--duration", "0.05", "--out", str(out)]
    assert main([*argv, "--profile"]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    records = [json.loads(line) for line in stderr.strip().splitlines()]
    said = [r["msg"] for r in records if r["logger"] == "spikestream.run"]
    assert said[0].startswith("seed: 50 ticks (0.05 s simulated)")
    assert said[1:] == [f"wrote {out}", said[2]]
    assert said[2].startswith("profile (s): start-up to first tick")
