"""``spikestream run`` when the world misbehaves: a signal, a full disk, a read-only plot
folder, outputs that name its own inputs, a progress bar with nowhere to go."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.cli import main
from tests.clients.conftest import cli, cli_env, run_cli
from tests.clients.test_npz import FullDisk

ROOT = Path(__file__).parents[2]
SEED = ROOT / "examples" / "seed.toml"

#: Two populations of 1500 with dense weights (18 MB of float64): a short run's per-tick
#: arrays are a few MB, its built parameters many more. (With 3000 a tick takes ~1 ms.)
DENSE = """
[network]
name = "dense"
[populations.a]
n = 1500
[populations.b]
n = 1500
[inputs.u]
target = "a"
signal = { kind = "sin", amp = 1.0, omega = 1.0 }
[[connections]]
pre = "a"
post = "b"
weights = { dist = "normal", mean = 0.0, std = 0.01 }
"""


def _left(folder: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ------------------------------------------------------------------------------ signals


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_run_exits_cleanly_and_leaves_nothing(tmp_path: Path, signum: int) -> None:
    """SIGTERM (a service manager, ``timeout``) or SIGHUP (a closed terminal) while a long
    run spools: the partial file and the spool folder are deleted, as on Ctrl-C; the
    default action left both (959 MB seen)."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        cli("run", str(SEED), "--duration", "2000", "--out", str(out / "x.npz"), "--no-progress"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        # As from a terminal: a test run under nohup would pass its ignored SIGHUP on,
        # which the run rightly keeps ignoring.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        # The spool folder (.x.npz.<random>/) exists once the run streams.
        while not any(p.is_dir() for p in out.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started spooling"
            time.sleep(0.02)
        time.sleep(0.2)  # some blocks in the spool files
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert _left(out) == []


def test_run_restores_the_signal_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert main(["run", str(SEED), "--duration", "0.01", "--out", str(tmp_path / "x.npz")]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_a_second_signal_does_not_cut_the_cleanup_short() -> None:
    """The first SIGTERM ends the run (exit 143, as a shell reports a death by it); a
    second one while ``finally`` blocks delete the ``.part`` file and spool folder is
    ignored, or it would raise inside that cleanup and leave them behind."""
    from spikestream.cli.run import signals_exit

    with signals_exit():
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(SystemExit) as first:
            handler(signal.SIGTERM, None)
        assert first.value.code == 128 + signal.SIGTERM
        assert handler(signal.SIGTERM, None) is None  # the second: no SystemExit


def test_signals_exit_outside_the_main_thread_changes_nothing() -> None:
    """Only the main thread may set handlers (Python raises ValueError elsewhere): a
    ``main`` called from a thread runs, with the handlers left as they are."""
    import threading

    from spikestream.cli.run import signals_exit

    before = signal.getsignal(signal.SIGTERM)
    errors: list[BaseException] = []

    def body() -> None:
        try:
            with signals_exit():
                pass
        except BaseException as err:  # reported to the main thread
            errors.append(err)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert errors == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_hangup_run_was_started_ignoring_stays_ignored() -> None:
    """``nohup spikestream run`` must outlive its terminal: the run's own SIGHUP handler
    replaced the ignore nohup set."""
    from spikestream.cli.run import signals_exit

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals_exit():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# ------------------------------------------------------------------------------ full disk


@pytest.mark.parametrize("room", [100, 30_000])
def test_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], room: int
) -> None:
    """The disk fills during the write: one line naming the file and the reason, exit 2,
    no ``.part`` file (closing it flushed to the full disk and raised over the error)."""
    import spikestream_client.npz as npz_module

    monkeypatch.setattr(npz_module, "open", FullDisk(room).open, raising=False)
    out = tmp_path / "x.npz"
    assert main(["run", str(SEED), "--duration", "0.5", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert _left(tmp_path) == []
    assert err.count("\n") == 1, err
    assert f"spikestream run: error: cannot write {str(out)!r}: No space left on device" in err


def test_the_disk_check_counts_the_built_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """18 MB of weights do not fit in 10 MB free: refused before the run, although the
    per-tick arrays (about 3 MB) would."""
    net = tmp_path / "dense.toml"
    net.write_text(DENSE)
    real = shutil.disk_usage

    def small_disk(path: Any) -> Any:
        return real(path)._replace(free=10 * 2**20)

    monkeypatch.setattr(shutil, "disk_usage", small_disk)
    out = tmp_path / "x.npz"
    assert main(["run", str(net), "--duration", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "MiB of it built parameters" in err, err
    assert "more than the 10 MiB free" in err, err
    assert not out.exists()


def test_a_run_too_large_for_the_disk_is_refused_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The per-tick arrays alone do not fit: refused before the network is built (a
    large dense network takes long to build and the memory of its weights)."""
    import spikestream.build

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1000))

    def build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("built before the disk check")

    monkeypatch.setattr(spikestream.build, "build", build)
    out = tmp_path / "x.npz"
    assert main(["run", str(SEED), "--duration", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "more than the 1000 B free" in err, err
    assert not out.exists()


@pytest.mark.parametrize(("free", "refused"), [(1999, True), (2000, False)])
def test_the_disk_check_counts_the_spool_copy_of_the_per_tick_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free: int, refused: bool
) -> None:
    """A run streaming past one block holds its per-tick arrays twice (spool files and
    the ``.npz``) plus the built parameters once: 2 * 900 + 200 bytes need 2000 free. A
    check on the file's size alone let it start and fail with the disk full after hours."""
    from spikestream.cli.run import check_disk
    from spikestream.errors import ConfigError

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free))
    out = tmp_path / "x.npz"
    if refused:
        with pytest.raises(ConfigError, match=r"would write about 1\.07 KiB, 200 B of it built"):
            check_disk("running it", out, 900, static=200)
    else:
        check_disk("running it", out, 900, static=200)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG])
def test_each_disk_errno_is_a_config_error_naming_the_flag(code: int) -> None:
    """A full disk, a quota, a read-only file system or a file too large: the disk
    refused, so one line naming the flag and the file (exit 2), not a traceback."""
    from spikestream.cli.run import disk_errors
    from spikestream.errors import ConfigError

    said = re.escape(f"--out: cannot write 'x.npz': {os.strerror(code)}")
    with pytest.raises(ConfigError, match=said), disk_errors("--out", Path("x.npz")):
        raise OSError(code, os.strerror(code))


def test_an_error_that_is_not_the_disks_passes_through() -> None:
    """A program error (here EACCES) is not dressed up as a full disk."""
    from spikestream.cli.run import disk_errors

    with pytest.raises(PermissionError), disk_errors("--out", Path("x.npz")):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_a_full_spool_folder_mid_run_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills under the run's own spool files (not the ``.npz`` writer, which
    says so itself): ``run`` still ends with one line naming ``--out`` and exit 2."""
    import spikestream.runtime.offline as offline

    def full(*args: Any, **kwargs: Any) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(offline, "run_to_file", full)
    out = tmp_path / "x.npz"
    assert main(["run", str(SEED), "--duration", "0.1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"--out: cannot write {str(out)!r}: No space left on device" in err


def test_an_out_in_a_missing_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk check cannot measure a folder that does not exist: it leaves the refusal
    to the writer (one line naming the folder), not a FileNotFoundError traceback."""
    out = tmp_path / "missing" / "x.npz"
    assert main(["run", str(SEED), "--duration", "0.1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"folder {str(out.parent)!r} does not exist" in err
    assert not out.parent.exists()


# ------------------------------------------------------------------- progress and JSON logs


@pytest.mark.timeout(120)
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path, log_format: str) -> None:
    """A run long enough for the bar (over its 1 s delay), stderr piped: no ``\\r``
    frames in it; with JSON logs every line is a JSON object."""
    net = tmp_path / "dense.toml"
    net.write_text(DENSE.replace("n = 1500", "n = 3000"))  # ~1 ms a tick: 4 s
    done = run_cli(
        "--log-format",
        log_format,
        "--log-level",
        "debug",
        "run",
        str(net),
        "--duration",
        "4",
        "--out",
        str(tmp_path / "x.npz"),
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr, done.stderr[-500:]
    assert "tick/s" not in done.stderr, done.stderr[-500:]
    if log_format == "json":
        lines = done.stderr.splitlines()
        assert lines  # the debug timings line at least
        for line in lines:
            json.loads(line)


class _Stderr:
    """A stand-in for ``sys.stderr``: a terminal, not one, or closed (``isatty`` raises)."""

    def __init__(self, tty: bool, closed: bool = False) -> None:
        self.tty, self.closed = tty, closed

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return self.tty


@pytest.mark.parametrize(
    ("no_progress", "log_format", "stderr", "shown"),
    [
        (False, "text", _Stderr(tty=True), True),
        # On a terminal too: --no-progress wins, and JSON logs get no \r frames between
        # their objects (the subprocess test above cannot have a terminal for stderr).
        (True, "text", _Stderr(tty=True), False),
        (False, "json", _Stderr(tty=True), False),
        (False, "text", _Stderr(tty=False), False),
        # A closed stderr is no terminal, not a traceback after the run.
        (False, "text", _Stderr(tty=True, closed=True), False),
    ],
)
def test_the_progress_bar_needs_a_terminal_text_logs_and_no_opt_out(
    monkeypatch: pytest.MonkeyPatch, no_progress: bool, log_format: str, stderr: Any, shown: bool
) -> None:
    from spikestream.cli.run import show_progress

    monkeypatch.setattr("sys.stderr", stderr)
    args = argparse.Namespace(no_progress=no_progress, log_format=log_format)
    assert show_progress(args) is shown


def test_a_user_error_in_json_mode_is_one_json_object(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[populations.a]\nn = 0\n")
    done = run_cli(
        "--log-format", "json", "run", str(bad), "--duration", "1", "--out", str(tmp_path / "x.npz")
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error", entry
    assert entry["command"] == "run", entry
    assert "populations.a.n: Input should be greater than 0 (got 0)" in entry["msg"]
    # Text mode is unchanged.
    done = run_cli("run", str(bad), "--duration", "1", "--out", str(tmp_path / "x.npz"))
    assert done.stderr.startswith("spikestream run: error: "), done.stderr


# ----------------------------------------------------------------------------- --plot


def test_a_plot_to_a_full_disk_is_one_line_after_the_run(tmp_path: Path) -> None:
    """The image written through a link to /dev/full (every write: ENOSPC; Linux has it,
    as every machine the service runs on)."""
    png = tmp_path / "p.png"
    png.symlink_to("/dev/full")
    out = tmp_path / "x.npz"
    done = run_cli("run", str(SEED), "--duration", "0.1", "--out", str(out), "--plot", str(png))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot write plot {str(png)!r}: No space left on device" in done.stderr
    assert out.exists()  # the run's file is kept
    assert png.is_symlink()  # and the link too


def test_a_plot_folder_that_refuses_files_is_refused_before_the_run(tmp_path: Path) -> None:
    """sysfs refuses new files, even to root (who passes every permission check); the
    service reads /proc and /sys on Linux anyway."""
    out = tmp_path / "x.npz"
    done = run_cli("run", str(SEED), "--duration", "0.1", "--out", str(out), "--plot", "/sys/p.png")
    assert done.returncode == 2, done.stderr
    assert "--plot: cannot write '/sys/p.png': folder '/sys' refuses new files" in done.stderr
    assert not out.exists()  # refused before the run


def test_a_plot_path_that_is_a_fifo_is_refused_before_the_run(tmp_path: Path) -> None:
    """A ``--plot`` path that exists and is not a regular file (a FIFO here) is refused
    before the run, in one line saying so, as ``--out`` refuses one. Before, the whole
    run was done first and then refused with "File or stream is not seekable; expected a
    writable folder with room for the file", which names neither the cause nor the fix."""
    out = tmp_path / "x.npz"
    png = tmp_path / "p.png"
    os.mkfifo(png)
    done = run_cli("run", str(SEED), "--duration", "0.1", "--out", str(out), "--plot", str(png))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"--plot: cannot write {str(png)!r}: it exists and is not a regular file" in (
        done.stderr
    )
    assert not out.exists()  # refused before the run


def test_a_savefig_error_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from matplotlib.figure import Figure

    from spikestream_client.errors import ConfigError
    from spikestream_client.plotting import plot_run_file

    out = tmp_path / "x.npz"
    assert main(["run", str(SEED), "--duration", "0.05", "--out", str(out)]) == 0

    def read_only(self: Figure, path: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"\x89PNG")  # a truncated image, then the failure
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Figure, "savefig", read_only)
    png = tmp_path / "p.png"
    with pytest.raises(ConfigError, match=r"cannot write plot .*p\.png.: Read-only file system"):
        plot_run_file(out, png)
    assert not png.exists()


# --------------------------------------------------------------- outputs that are inputs


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_an_output_naming_the_network_file_is_refused(tmp_path: Path, flag: str) -> None:
    net = tmp_path / "net.png"  # a network file any name: --plot could match it too
    shutil.copy(SEED, net)
    before = net.read_bytes()
    args = ["--out", str(net)] if flag == "--out" else ["--out", str(tmp_path / "x.npz")]
    if flag == "--plot":
        args += ["--plot", str(tmp_path / "." / "net.png")]
    done = run_cli("run", str(net), "--duration", "0.05", *args)
    assert done.returncode == 2, done.stderr
    assert f"is the network file {str(net)!r}, which the run reads" in done.stderr
    assert net.read_bytes() == before
    assert _left(tmp_path, "net.png") == []


def test_an_output_naming_the_replay_log_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` over the ``--replay`` log it reads destroyed the one recording of a live
    run; refused before the log is even opened, the log untouched."""
    log = tmp_path / "live.npz"
    log.write_bytes(b"the only copy")
    assert main(["run", str(SEED), "--replay", str(log), "--out", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"--out {str(log)!r} is the --replay log {str(log)!r}, which the run reads" in err
    assert log.read_bytes() == b"the only copy"


def test_out_and_plot_naming_one_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plot overwrote the ``.npz`` it was drawn from: refused before the run."""
    same = tmp_path / "x.png"
    argv = ["run", str(SEED), "--duration", "0.1", "--out", str(same), "--plot", str(same)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"--out and --plot both name {str(same)!r}; expected two files" in err
    assert not same.exists()


def test_an_output_naming_an_array_file_of_the_network_is_refused(tmp_path: Path) -> None:
    weights = np.random.default_rng(0).normal(size=(50, 40))
    np.save(tmp_path / "w.npy", weights)
    text = SEED.read_text().replace(
        'weights = { dist = "normal", mean = 0.0, std = 1.0 }', 'weights = { file = "w.npy" }'
    )
    assert 'file = "w.npy"' in text
    (tmp_path / "net.toml").write_text(text)
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "w.npy")
    for out in (tmp_path / "w.npy", link):
        done = run_cli("run", str(tmp_path / "net.toml"), "--duration", "0.05", "--out", str(out))
        assert done.returncode == 2, done.stderr
        assert f"--out {str(out)!r} is {str(tmp_path / 'w.npy')!r}" in done.stderr
        assert "which the network reads" in done.stderr
        assert "connections" in done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), weights)


def test_an_output_inside_the_arrays_folder_is_refused(tmp_path: Path) -> None:
    shutil.copy(SEED, tmp_path / "net.toml")
    (tmp_path / "net.arrays").mkdir()
    out = tmp_path / "net.arrays" / "x.npz"
    done = run_cli("run", str(tmp_path / "net.toml"), "--duration", "0.05", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert f"is inside {str(tmp_path / 'net.arrays')!r}, the arrays folder" in done.stderr
    assert not out.exists()


def test_an_output_reaching_the_arrays_folder_by_a_link_or_dots_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The arrays folder named another way (a symlink to it, ``..`` through a sibling)
    is still the network's: compared after resolving, not by the text of the path."""
    shutil.copy(SEED, tmp_path / "net.toml")
    (tmp_path / "net.arrays").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "net.arrays")
    for out in (tmp_path / "link" / "x.npz", tmp_path / "other" / ".." / "net.arrays" / "x.npz"):
        argv = ["run", str(tmp_path / "net.toml"), "--duration", "0.05", "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"is inside {str(tmp_path / 'net.arrays')!r}, the arrays folder" in err, err
    assert list((tmp_path / "net.arrays").iterdir()) == []


def test_an_output_naming_the_model_script_is_refused_before_it_runs(tmp_path: Path) -> None:
    script = tmp_path / "model.py"
    script.write_text("raise SystemExit('the script ran')\n")
    before = script.read_bytes()
    done = run_cli("run", f"{script}:model", "--duration", "0.05", "--out", str(script))
    assert done.returncode == 2, done.stderr
    assert f"--out {str(script)!r} is the Nengo script {str(script)!r}" in done.stderr
    assert script.read_bytes() == before
