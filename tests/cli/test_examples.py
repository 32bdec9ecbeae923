"""The shipped examples compute what they claim."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikestream.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"


def run(tmp_path: Path, name: str, seconds: float) -> dict[str, np.ndarray]:
    out = tmp_path / f"{name}.npz"
    assert (
        main(
            [
                "run",
                str(EXAMPLES / f"{name}.toml"),
                "--duration",
                str(seconds),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return dict(np.load(out))


def test_square_tracks_u_squared(tmp_path: Path) -> None:
    d = run(tmp_path, "square", 6)
    assert d["u"].shape == (6000, 1)
    assert d["y"].shape == (6000, 1)
    after = d["t"] > 0.5
    rmse = float(np.sqrt(np.mean((d["y"][after, 0] - d["u"][after, 0] ** 2) ** 2)))
    assert rmse <= 0.08
    # Not trivially small: u**2 swings between 0 and 1 over the run.
    assert np.ptp(d["u"][:, 0] ** 2) > 0.9


def test_channel_passes_a_2d_value(tmp_path: Path) -> None:
    d = run(tmp_path, "channel", 4)
    after = d["t"] > 0.5
    rmse = float(np.sqrt(np.mean((d["b_value"][after] - d["u"][after]) ** 2)))
    assert rmse < 0.06
    assert d["b_value"].shape == (4000, 2)


def test_integrator_integrates_and_holds(tmp_path: Path) -> None:
    d = run(tmp_path, "integrator", 3)
    x = d["x"][:, 0]
    # u = 0.5 for 1 s integrates to ~0.5, then u = 0 and the value is held.
    assert abs(x[999] - 0.5) < 0.1
    assert abs(x[2999] - x[1199]) < 0.1
    assert x[499] < x[999]  # it ramped
