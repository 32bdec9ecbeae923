"""LatencyTrace: fixed rings that keep the newest rows, saved oldest first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream.runtime.trace import LatencyTrace


def test_rings_keep_the_newest_rows_oldest_first(tmp_path: Path) -> None:
    trace = LatencyTrace(["a", "u"], capacity=4)
    for k in range(6):
        trace.received(float(k), 100.0 + k, 99.5 + k)
        trace.applied(float(k), 200.0 + k)
        trace.published("u", k, 300.0 + k, 400.0 + k, 299.0 + k)
    trace.published("gone", 9, 1.0, 2.0)
    trace.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as saved:
        assert saved["received"].tolist() == [[k, 100.0 + k, 99.5 + k] for k in (2, 3, 4, 5)]
        assert saved["applied"][:, 0].tolist() == [2, 3, 4, 5]
        frames = saved["frames"]
        assert frames[:3].tolist() == [[1.0, k, 300.0 + k, 400.0 + k, 299.0 + k] for k in (3, 4, 5)]
        # An unknown probe: index -1; no pump start given: NaN.
        assert frames[-1, :4].tolist() == [-1.0, 9.0, 1.0, 2.0]
        assert np.isnan(frames[-1, 4])
        assert saved["probes"].tolist() == ["a", "u"]


def test_a_short_trace_saves_only_its_rows(tmp_path: Path) -> None:
    trace = LatencyTrace(["u"], capacity=8)
    trace.received(0.5, 1.0)
    trace.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as saved:
        assert saved["received"].shape == (1, 3)
        assert np.isnan(saved["received"][0, 2])  # no handler time given
        assert saved["frames"].shape == (0, 5)


def test_capacity_is_bounded() -> None:
    with pytest.raises(ConfigError, match="capacity"):
        LatencyTrace(["u"], capacity=0)
