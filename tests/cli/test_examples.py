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


def test_chain10_carries_its_input_down_ten_populations(tmp_path: Path) -> None:
    d = run(tmp_path, "chain10", 0.6)
    after = d["t"] > 0.3
    assert d["out"].shape == (600, 16)
    for key, tolerance in (("p0_value", 0.05), ("out", 0.08)):
        rmse = float(np.sqrt(np.mean((d[key][after] - 0.2) ** 2)))
        assert rmse < tolerance, key
    assert d["p9.spikes"].sum() > 10_000  # the end of the chain fires


def test_dense1000_decodes_its_input(tmp_path: Path) -> None:
    d = run(tmp_path, "dense1000", 1)
    after = d["t"] > 0.1
    rmse = float(np.sqrt(np.mean((d["p0_value"][after, 0] - np.sin(d["t"][after])) ** 2)))
    assert rmse < 0.05
    assert 0.02 < d["p1.spikes"].mean() < 0.3  # neither silent nor saturated per tick
