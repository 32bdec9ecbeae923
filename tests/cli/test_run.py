"""``spikestream run`` end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikestream.cli import main

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


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--duration", "nan"], "duration must be a number of seconds > 0; got nan"),
        (["--duration", "inf"], "duration must be a number of seconds > 0; got inf"),
        (["--duration", "-1"], "duration must be a number of seconds > 0; got -1"),
        (["--duration", "1", "--seed", "-1"], "--seed: -1 is not allowed; expected an integer"),
        (["--duration", "1", "--memory-limit", "lots"], "memory_limit: 'lots' is not allowed"),
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


@pytest.mark.parametrize("command", ["run", "serve"])
def test_help_mentions_the_memory_limit(command: str, capsys: pytest.CaptureFixture[str]) -> None:

    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "--memory-limit SIZE" in capsys.readouterr().out
