"""README.md's example figures are the output of ``bench/readme_figures.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).parents[2]


def load_script() -> ModuleType:
    path = ROOT / "bench" / "readme_figures.py"
    spec = importlib.util.spec_from_file_location("readme_figures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_figures_match_a_fresh_measurement() -> None:
    script = load_script()
    figs = script.figures()
    assert set(figs) == {"square_rmse", "channel_rmse"}
    assert 0.0 < figs["square_rmse"] < 0.08  # the bound of tests/cli/test_examples.py
    assert script.stale((ROOT / "README.md").read_text(), figs) == []


def test_the_check_catches_stale_figures_and_edited_text() -> None:
    script = load_script()
    figs = {"square_rmse": 0.0197, "channel_rmse": 0.0304}
    fresh = f"intro\n{script.render(figs)}\noutro\n"
    assert script.stale(fresh, figs) == []
    assert script.stale(fresh, {"square_rmse": 0.0199, "channel_rmse": 0.03}) == []
    # The figure a newcomer found stale: 0.016 in the README, 0.0197 measured.
    old = fresh.replace("0.0197", "0.016")
    (problem,) = script.stale(old, figs)
    assert "README says 0.016, measured 0.0197" in problem
    edited = fresh.replace("tracks", "follows")
    assert "text differs" in script.stale(edited, figs)[0]
