"""``spikestream_client.plotting``: what each panel draws (gap shading, the raster's neuron
subset and spike thinning, tick-by-tick traces up to MAX_POINTS rows), seen through the
matplotlib calls it makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.axes
import numpy as np
import pytest

from spikestream_client import plotting
from spikestream_client.npz import header_arrays, layout_meta, time_of
from spikestream_client.plotting import MAX_POINTS, MAX_RASTER_NEURONS, plot_run

DT = 0.001


def _run(ticks: int, probes: dict[str, str], pops: list[str], **arrays: Any) -> dict[str, Any]:
    meta = layout_meta(
        network="panels",
        dt=DT,
        dtype="float64",
        populations=pops,
        inputs=[],
        probes=probes,
        source="record",
        ticks=ticks,
        first_tick=0,
        last_tick=ticks - 1,
    )
    return {"t": time_of(np.arange(ticks), DT), **arrays, **header_arrays(meta)}


def _spy(monkeypatch: pytest.MonkeyPatch, method: str) -> list[tuple[Any, ...]]:
    """Record the positional arguments of every call of ``Axes.<method>``."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(matplotlib.axes.Axes, method)

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, method, spy)
    return calls


def test_gaps_are_shaded_on_every_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows flagged in ``gaps`` are one shaded span, from the gap's first row to the first
    row after it, on the value panel and the raster alike."""
    spans = _spy(monkeypatch, "axvspan")
    gaps = np.zeros(300, dtype=bool)
    gaps[100:120] = True
    v = np.sin(np.arange(300.0))[:, None]
    v[100:120] = np.nan
    arrays = _run(
        300, {"v": "values"}, ["p"], v=v, gaps=gaps, **{"p.spikes": np.eye(300, 5, dtype=np.uint8)}
    )
    plot_run(arrays, tmp_path / "gaps.png")
    t = arrays["t"]
    assert spans == [(t[100], t[120])] * 2
    spans.clear()
    plot_run({**arrays, "gaps": np.zeros(300, dtype=bool)}, tmp_path / "none.png")
    assert spans == []


def test_a_raster_of_more_than_max_raster_neurons_draws_a_subset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 neurons, every one spiking: MAX_RASTER_NEURONS (200) of them are drawn, as rows
    0..199, and the label says how many of how many."""
    n = MAX_RASTER_NEURONS + 100
    scatters = _spy(monkeypatch, "scatter")
    labels = _spy(monkeypatch, "set_ylabel")
    arrays = _run(20, {}, ["p"], **{"p.spikes": np.ones((20, n), dtype=np.uint8)})
    plot_run(arrays, tmp_path / "subset.png")
    ((times, neurons),) = [call[:2] for call in scatters]
    assert len(times) == len(neurons) == 20 * MAX_RASTER_NEURONS
    assert set(np.asarray(neurons).tolist()) == set(range(MAX_RASTER_NEURONS))
    assert labels == [(f"p\nneuron ({MAX_RASTER_NEURONS} of {n})",)]


def test_a_raster_of_max_raster_neurons_is_drawn_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scatters = _spy(monkeypatch, "scatter")
    labels = _spy(monkeypatch, "set_ylabel")
    spikes = np.ones((20, MAX_RASTER_NEURONS), dtype=np.uint8)
    plot_run(_run(20, {}, ["p"], **{"p.spikes": spikes}), tmp_path / "whole.png")
    ((_, neurons),) = [call[:2] for call in scatters]
    assert len(neurons) == spikes.size
    assert labels == [("p\nneuron",)]


def test_one_chunk_far_past_max_spikes_is_halved_as_often_as_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5,000 spikes in a single chunk with MAX_SPIKES 100: halved six times (stride 64),
    79 kept, never more than MAX_SPIKES, evenly over the run."""
    monkeypatch.setattr(plotting, "MAX_SPIKES", 100)
    spikes = np.ones((500, 10), dtype=np.uint8)
    arrays = _run(500, {}, ["p"], **{"p.spikes": spikes})
    src = plotting._InMemory(arrays)
    header = plotting._header(src, "p.spikes", "u", 500, ndim=2)
    got = plotting._raster(src, "p.spikes", header, np.arange(10))
    assert (got.total, got.stride, got.kept) == (5000, 64, 79)
    times, neurons = got.joined()
    ticks, all_neurons = np.nonzero(spikes)
    np.testing.assert_array_equal(times, arrays["t"][ticks][::64])
    np.testing.assert_array_equal(neurons, all_neurons[::64])


@pytest.mark.parametrize(("rows", "step"), [(MAX_POINTS, 1), (MAX_POINTS + 1, 3)])
def test_a_run_of_at_most_max_points_ticks_is_drawn_tick_by_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int, step: int
) -> None:
    """Exactly MAX_POINTS ticks: every row is a point (x is t). One more and the run is
    cut into buckets of 3 rows (at most MAX_POINTS // 2 of them), each drawn as its
    minimum and maximum: a constant trace then shows each bucket's first time twice."""
    v = np.zeros((rows, 1))
    arrays = _run(rows, {"v": "values"}, [], v=v)
    src = plotting._InMemory(arrays)
    axis = plotting._read_axis(src, rows, src.keys())
    assert axis.step == step
    plots = _spy(monkeypatch, "plot")
    plot_run(arrays, tmp_path / "ticks.png")
    ((x, y),) = [call[:2] for call in plots]
    t = arrays["t"]
    if step == 1:
        np.testing.assert_array_equal(x, t)
        np.testing.assert_array_equal(y, v)
    else:
        assert len(x) == 2 * -(-rows // step) <= MAX_POINTS
        np.testing.assert_array_equal(np.ravel(x)[:4], [t[0], t[0], t[step], t[step]])
