"""LatencyTrace: fixed rings that keep the newest rows, saved oldest first."""

from __future__ import annotations

import os
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


def test_capacity_has_an_upper_bound_too() -> None:
    """Each ring is allocated whole up front: a capacity past 2**24 rows is refused
    before gigabytes are asked for, naming the bound and the value."""
    with pytest.raises(ConfigError, match=r"2\*\*24.*got 16777217"):
        LatencyTrace(["u"], capacity=(1 << 24) + 1)


def test_applied_rows_hold_the_value_and_its_wall_time(tmp_path: Path) -> None:
    """``applied`` has two columns, the value and when it was applied, which
    bench/floor.py subtracts from the received wall time."""
    trace = LatencyTrace(["u"], capacity=4)
    trace.applied(0.25, 123.5)
    trace.applied(0.5, 124.0)
    trace.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as saved:
        assert saved["applied"].tolist() == [[0.25, 123.5], [0.5, 124.0]]


def test_the_probe_names_are_those_given_at_the_start(tmp_path: Path) -> None:
    """The saved names match the indices in ``frames``, even if the caller's list
    changes afterwards."""
    names = ["a", "u"]
    trace = LatencyTrace(names, capacity=2)
    names.reverse()
    trace.published("u", 0, 1.0, 2.0)
    trace.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as saved:
        assert saved["probes"].tolist() == ["a", "u"]
        assert saved["frames"][0, 0] == 1.0


def test_the_trace_is_written_to_the_path_given(tmp_path: Path) -> None:
    """``--trace-latency trace.out`` writes ``trace.out``: numpy's ``savez`` given a name
    without ``.npz`` adds it, so the file asked for never appeared."""
    trace = LatencyTrace(["u"], capacity=2)
    trace.received(0.5, 1.0)
    target = tmp_path / "trace.out"
    trace.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.out"]
    with np.load(target) as saved:
        assert saved["received"][0, :2].tolist() == [0.5, 1.0]


def test_a_target_the_trace_cannot_be_saved_to_is_refused_naming_it(tmp_path: Path) -> None:
    """A folder, a FIFO (opening it at exit would wait for a reader forever) or a file in
    a missing folder is refused when serving starts, in one line naming the path; a new
    file or an existing regular one (replaced) is fine."""
    from spikestream.runtime.trace import check_trace_target

    with pytest.raises(ConfigError) as info:
        check_trace_target(tmp_path)
    assert str(info.value) == (
        f"--trace-latency: {str(tmp_path)!r} is a folder; expected a file name, e.g. "
        f"{str(tmp_path / 'trace.npz')!r}"
    )
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"is not a regular file \(a FIFO or device\)"):
        check_trace_target(fifo)
    missing = tmp_path / "nope" / "t.npz"
    with pytest.raises(ConfigError, match=r"the folder of .*nope/t\.npz' does not exist"):
        check_trace_target(missing)
    check_trace_target(tmp_path / "new.npz")
    old = tmp_path / "old.npz"
    old.write_bytes(b"an old trace")
    check_trace_target(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.npz", "old.npz"]
