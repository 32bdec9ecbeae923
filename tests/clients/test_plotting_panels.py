"""``spikestream_client.plotting``: what each panel draws (gap shading, the raster's neuron
subset and spike thinning, tick-by-tick traces up to MAX_POINTS rows), seen through the
matplotlib calls it makes."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path
from typing import Any

import matplotlib.axes
import matplotlib.figure
import numpy as np
import pytest

from spikestream_client import plotting
from spikestream_client.errors import ConfigError
from spikestream_client.npz import header_arrays, layout_meta, save_npz, time_of
from spikestream_client.plotting import MAX_POINTS, MAX_RASTER_NEURONS, plot_run, plot_run_file

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


def _sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Record the size in inches of every figure saved."""
    sizes: list[tuple[float, float]] = []
    real = matplotlib.figure.Figure.savefig

    def savefig(self: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(tuple(self.get_size_inches()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return sizes


def test_panels_past_max_panels_are_left_out_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raster and 10 value probes with MAX_PANELS 3: the raster and the first two
    probes are drawn, the figure is as tall as 3 panels (plus the note's line), and the
    figure and the log say that 8 were left out. 1000 probes of 1 tick each took 1.1 GB
    and 219 s, the figure growing 1.4 inches per panel."""
    monkeypatch.setattr(plotting, "MAX_PANELS", 3)
    labels = _spy(monkeypatch, "set_ylabel")
    sizes = _sizes(monkeypatch)
    notes: list[str] = []
    real_text = matplotlib.figure.Figure.text

    def text(self: Any, x: float, y: float, s: str, *args: Any, **kwargs: Any) -> Any:
        notes.append(s)
        return real_text(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "text", text)
    values = {f"v{i}": np.zeros((5, 1)) for i in range(10)}
    spikes = np.ones((5, 2), dtype=np.uint8)
    arrays = _run(5, dict.fromkeys(values, "values"), ["p"], **values, **{"p.spikes": spikes})
    with caplog.at_level(logging.WARNING, logger="spikestream_client"):
        png = plot_run(arrays, tmp_path / "many.png")
    assert png.stat().st_size > 0
    assert labels == [("p\nneuron",), ("v0\n(values)",), ("v1\n(values)",)]
    assert notes[0] == "8 more panel(s) left out: at most 3 are drawn (the first 3 of 11)"
    assert not any("left out" in note for note in notes[1:])
    assert sizes == [(10.0, 2.0 + 1.4 + 1.4 + 0.8 + 0.3)]
    assert [r.getMessage() for r in caplog.records] == [
        f"plot {str(png)!r}: drawing the first 3 of 11 panels; 8 left out (at most 3 per figure)"
    ]


def test_panels_up_to_max_panels_are_all_drawn_without_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plotting, "MAX_PANELS", 3)
    labels = _spy(monkeypatch, "set_ylabel")
    sizes = _sizes(monkeypatch)
    values = {f"v{i}": np.zeros((5, 1)) for i in range(3)}
    with caplog.at_level(logging.WARNING, logger="spikestream_client"):
        plot_run(_run(5, dict.fromkeys(values, "values"), [], **values), tmp_path / "3.png")
    assert len(labels) == 3
    assert sizes == [(10.0, 3 * 1.4 + 0.8)]
    assert caplog.records == []


@pytest.mark.slow
def test_a_file_of_a_thousand_probes_takes_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1000 value probes of 1 tick (a 190 KB file): MAX_PANELS (64) are drawn, in a
    figure at most 64 rasters tall, under 96 MiB traced (the drawing of 1000 panels
    took 464 MiB traced, 1.1 GB of RSS)."""
    sizes = _sizes(monkeypatch)
    values = {f"v{i}": np.zeros((1, 1)) for i in range(1000)}
    arrays = _run(1, dict.fromkeys(values, "values"), [], **values)
    npz = save_npz(tmp_path / "many.npz", arrays, compress=True)
    tracemalloc.start()
    try:
        plot_run_file(npz, tmp_path / "many.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert getattr(plotting, "MAX_PANELS", None) == 64
    ((_, height),) = sizes
    assert height <= 64 * 2.0 + 0.8 + 0.3
    assert peak < 96 * 2**20, f"plotting peaked at {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("t", "got"),
    [
        (None, "no 't' array"),
        (np.zeros(0), r"'t' of shape \(0,\)"),
        (np.zeros((5, 1)), r"'t' of shape \(5, 1\)"),
    ],
    ids=["no t", "0 ticks", "2-d t"],
)
def test_a_run_without_ticks_is_nothing_to_plot(tmp_path: Path, t: Any, got: str) -> None:
    """No ``t``, a ``t`` of 0 rows (a recording that kept no tick) or of rows that are not
    scalars: one line saying what was expected, before matplotlib loads (0 rows was a
    numpy ValueError from deep in the drawing)."""
    arrays = _run(5, {"v": "values"}, [], v=np.zeros((5, 2)))
    if t is None:
        del arrays["t"]
    else:
        arrays["t"] = t
    with pytest.raises(
        ConfigError, match=rf"^nothing to plot: expected at least one tick \(row\), got {got}$"
    ):
        plot_run(arrays, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize(
    ("key", "arr", "want"),
    [
        ("gaps", np.zeros((5, 2), dtype=bool), r"its shape is \(5, 2\); expected 1-d, 5 rows"),
        (
            "p.spikes",
            np.zeros((5, 2, 3), np.uint8),
            r"its shape is \(5, 2, 3\); expected 2-d, 5 rows",
        ),
        ("v", np.float64(1.0), r"its shape is \(\); expected 5 rows"),
    ],
    ids=["2-d gaps", "3-d spikes", "0-d values"],
)
def test_an_array_of_the_wrong_dimensions_is_refused(
    tmp_path: Path, key: str, arr: Any, want: str
) -> None:
    """``gaps`` is one flag per row and a raster one row of neurons per tick: more
    dimensions are refused, as is a value probe without rows (a 0-d array was an
    IndexError), each in one line naming the array."""
    arrays = _run(
        5, {"v": "values"}, ["p"], v=np.zeros((5, 2)), **{"p.spikes": np.eye(5, 3, dtype=np.uint8)}
    )
    arrays[key] = arr
    with pytest.raises(ConfigError, match=rf"^cannot plot {key!r}: {want} \(one per row of 't'\)$"):
        plot_run(arrays, tmp_path / "dims.png")


def test_inputs_are_drawn_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The arrays ``meta`` lists as ``inputs`` are panels of their own, above the rasters
    and value probes, labelled as inputs; one the file lacks is left out."""
    labels = _spy(monkeypatch, "set_ylabel")
    arrays = _run(5, {"v": "values"}, ["p"], v=np.zeros((5, 1)), u=np.ones((5, 2)))
    arrays["p.spikes"] = np.eye(5, 3, dtype=np.uint8)
    meta = json.loads(str(arrays["meta"]))
    meta["inputs"] = ["u", "missing"]
    arrays["meta"] = np.array(json.dumps(meta))
    plot_run(arrays, tmp_path / "inputs.png")
    assert labels == [("u\n(input)",), ("p\nneuron",), ("v\n(values)",)]


def test_a_gap_at_the_start_of_a_bucket_read_in_two_chunks_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buckets of 10 rows read in chunks of 7: row 30 is a gap, in the chunk of rows
    28-34, and rows 35-39 of its bucket come in the next chunk, which must not clear it."""
    monkeypatch.setattr(plotting, "MAX_POINTS", 20)
    monkeypatch.setattr(plotting, "CHUNK_ROWS", 7)
    gaps = np.zeros(100, dtype=bool)
    gaps[30] = True
    arrays = _run(100, {"v": "values"}, [], v=np.zeros((100, 1)), gaps=gaps)
    src = plotting._InMemory(arrays)
    axis = plotting._read_axis(src, 100, src.keys())
    assert axis.step == 10
    t = arrays["t"]
    assert axis.spans() == [(t[30], t[40])]


def test_a_run_without_meta_draws_its_rasters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``meta`` (a file written by hand) the ``<pop>.spikes`` arrays name the
    populations: each is drawn as a raster, in name order."""
    labels = _spy(monkeypatch, "set_ylabel")
    arrays = {
        "t": time_of(np.arange(5), DT),
        "q.spikes": np.eye(5, 2, dtype=np.uint8),
        "p.spikes": np.eye(5, 3, dtype=np.uint8),
    }
    plot_run(arrays, tmp_path / "bare.png")
    assert labels == [("p\nneuron",), ("q\nneuron",)]
