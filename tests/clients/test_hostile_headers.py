"""The tools against frames, status and events at the edge of what the codec accepts.

The codec bounds every header (docs/PROTOCOL.md §3.4); these tests check that what it
lets through costs the monitor, the web bridge and the recorder bounded time and memory,
and that a probe the monitor cannot summarise is counted instead of ending the view.
"""

from __future__ import annotations

import json
import logging
import math
import time
import tracemalloc
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream_client.codec import Frame, decode_frame
from spikestream_client.codec.frames import MAX_FRAME_TICKS, MIN_DT
from spikestream_client.dispatch import STATUS_CHARS, _status_text
from spikestream_client.monitor.aggregate import (
    MAX_RING_CELLS,
    MonitorModel,
    SpikeView,
    ValueView,
    group_sizes,
)
from spikestream_client.monitor.rings import TRACE_COMPONENTS
from spikestream_client.monitor.web import WebBridge, snapshot_json
from spikestream_client.recorder import Recorder
from tests.clients.frames import header, regular_spikes, renamed, spike_frame, value_frame


def raw_frame(kind: str, **keys: Any) -> Frame:
    """A frame packed by hand (as any publisher could), decoded by the shared codec."""
    frame: dict[str, Any] = {
        "v": 1,
        "net": "fake",
        "probe": "p",
        "seq": 0,
        "tick": 0,
        "ticks": 1,
        "dt": 0.001,
        "t": 0.001,
        "wall": 1.7e9,
        "late_max": 0.0,
        "dropped": 0,
        "kind": kind,
    }
    frame.update(keys)
    return decode_frame(msgpack.packb(frame, use_bin_type=True))


# --------------------------------------------------------------------------- monitor


@given(n=st.integers(0, 5000), rows=st.integers(1, 64))
def test_group_sizes_match_the_per_neuron_definition(n: int, rows: int) -> None:
    per_neuron = np.bincount(np.arange(n) * rows // max(n, 1), minlength=rows)
    np.testing.assert_array_equal(group_sizes(n, rows), per_neuron)


def test_a_wide_population_costs_no_per_neuron_memory() -> None:
    """n comes from the bus: six frames alternating two widths of 2**24 neurons must not
    build a per-neuron array each time (it took 5 s of event loop at 2**27)."""
    wide = [
        raw_frame("spikes", n=2**24 - k % 2, seq=k, tick=k, enc="idx", dtype="u4", off=b"", idx=b"")
        for k in range(6)
    ]
    view = SpikeView("p", window=1.0, bins=10, rows=4)
    tracemalloc.start()
    try:
        for frame in wide:
            view.add(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"adding six frames allocated {peak} bytes"
    assert view.group_sizes.sum() == 2**24 - 1


@pytest.mark.parametrize("kind", ["spikes", "values"])
def test_the_ring_is_bounded_whatever_window_and_dt(kind: str) -> None:
    """window comes from the user and dt from the bus: 10 s of 1 µs ticks would be 10**7
    ticks of ring; it is shortened to MAX_RING_CELLS cells."""
    model = MonitorModel("fake", window=10.0, bins=10)
    if kind == "spikes":
        model.on_frame(spike_frame(header("p", 0, 0, dt=MIN_DT), regular_spikes(0, 10, 8, 3)))
    else:
        model.on_frame(value_frame(header("p", 0, 0, dt=MIN_DT), np.ones((10, 4))))
    snap = model.snapshot()
    view = model.views["p"]
    assert view.width * view.cells_per_tick <= MAX_RING_CELLS
    # The arrays really held, not only the view's own count of cells per tick.
    data = view.counts if isinstance(view, SpikeView) else view.trace
    assert data.size <= MAX_RING_CELLS
    assert view.width % 10 == 0
    assert snap.probes[0].covered > 0


def test_a_probe_that_cannot_be_summarised_is_counted_and_the_rest_drawn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = MonitorModel("fake", window=0.1, bins=4)
    model.on_frame(spike_frame(header("s", 0, 0), regular_spikes(0, 10, 4, 3)))
    model.on_frame(value_frame(header("u", 0, 0), np.ones((10, 1))))

    def broken(self: SpikeView) -> Any:
        raise ValueError("cannot reshape array of size 0")

    monkeypatch.setattr(SpikeView, "summary", broken)
    with caplog.at_level(logging.WARNING, "spikestream_client.monitor"):
        snap = model.snapshot()
        model.snapshot()
    assert [p.name for p in snap.probes] == ["u"]
    assert model.failed_snapshots == 2
    assert "cannot summarise probe 's' (1 failed so far): ValueError" in caplog.text
    monkeypatch.undo()
    model.on_frame(spike_frame(header("s", 1, 10), regular_spikes(10, 10, 4, 3)))
    assert [p.name for p in model.snapshot().probes] == ["s", "u"]  # afresh, and drawn


# --------------------------------------------------------------------------- strings


def test_status_text_is_cut_at_the_edge() -> None:
    text = _status_text(("\u00e9" * 10**6).encode())
    assert text is not None
    assert text == "\u00e9" * STATUS_CHARS


def test_summary_cuts_status_and_event_kinds() -> None:
    model = MonitorModel("fake", window=0.1, bins=4)
    model.on_status("s" * 10**6)  # as a client without the dispatcher's cut would pass it
    for k in range(3):
        model.on_event({"event": f"{k}" + "k" * 10**6, "error": "e" * 10**6})
    message = json.dumps(snapshot_json(model.snapshot()))
    assert len(message) < 10_000
    assert all(len(kind) <= 200 for kind in model.events)


# --------------------------------------------------------------------------- web


def test_web_value_rows_are_bounded_for_frames_without_data() -> None:
    """A frame of empty tick shape may claim max_bytes/4 ticks with no data at all; the
    bridge must not build a row per tick in Python on the event loop."""
    bridge = WebBridge("fake")
    ticks = 2**22 - 1
    bridge.on_frame(raw_frame("values", ticks=ticks, dt=3600, shape=[0], data=b""))
    started = time.monotonic()
    batch = bridge.batch()
    assert batch is not None
    rows = batch["probes"]["p"]["t"]
    assert 0 < len(rows) <= 8192 + 1
    assert rows[-1] == ticks - 1  # the frame's last row is still sent
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------- record


def test_the_recording_budget_counts_all_rows_and_keeps_what_was_recorded() -> None:
    """Frames 100,000 ticks apart each open a hole within max_jump; together they would
    make 20 million rows. The budget bounds the total, and the rows before it stay."""
    rec = Recorder("fake", max_bytes=10**7)
    for seq in range(200):
        rec.on_frame(value_frame(header("u", seq, seq * 100_000, ticks=2), np.ones((2, 2))))
    assert 0 < rec.frames < 200
    assert rec.over_budget == 200 - rec.frames
    arrays = rec.arrays()
    rows = arrays["t"].shape[0]
    assert rows * (21 + 2 * 8 + 1) <= 10**7
    assert rows == (rec.frames - 1) * 100_000 + 2
    np.testing.assert_array_equal(arrays["u"][:2], np.ones((2, 2)))
    assert "recording ended early: " in rec.skipped_text()
    assert f"{rec.over_budget} frames not recorded" in rec.skipped_text()


def test_the_recording_budget_bounds_wide_and_long_frames() -> None:
    rec = Recorder("fake", max_bytes=10**6)
    ok = spike_frame(header("s", 0, 0, ticks=10), regular_spikes(0, 10, 100, 3))
    rec.on_frame(ok)
    bits = bytes(MAX_FRAME_TICKS // 8)
    # Another probe: a frame of probe "s" with another n is skipped before the budget
    # is asked (test_record.py::test_a_frame_changing_n_or_shape_is_skipped_and_said).
    long = raw_frame(
        "spikes", probe="l", seq=1, tick=10, ticks=MAX_FRAME_TICKS, n=1, enc="bits", bits=bits
    )
    rec.on_frame(long)
    assert (rec.frames, rec.over_budget) == (1, 1)
    assert rec.arrays()["s"].shape == (10, 100)


def test_frames_past_the_budget_keep_nothing_of_their_invented_probes() -> None:
    """Once the budget ended the recording, every frame is refused; each new probe name
    still left an entry in the recorder's per-probe maps (its kind, its seqs), so a flood
    of invented names grew memory the budget was meant to bound."""
    rec = Recorder("fake", max_bytes=5000)
    rec.on_frame(value_frame(header("v", 0, 0), np.ones((10, 1))))
    wide = value_frame(header("p", 0, 0), np.ones((10, 100)))
    for i in range(1000):
        rec.on_frame(renamed(wide, probe=f"p{i}"))
    assert (rec.frames, rec.over_budget) == (1, 1000)
    assert rec.kinds == {"v": "values"}
    assert list(rec._seqs) == ["v"]
    assert rec.arrays()["v"].shape == (10, 1)  # what was recorded before it is kept


def test_values_of_no_components_are_traced_as_no_data() -> None:
    """A value probe of shape ``[0]`` has ticks but no component to trace: its frames
    mark their ticks as heard from, and the summary is NaN, not a failed redraw."""
    model = MonitorModel("fake", window=0.1, bins=4)
    model.on_frame(raw_frame("values", ticks=10, shape=[0], data=b""))
    (probe,) = model.snapshot().probes
    assert model.failed_snapshots == 0
    assert probe.covered == pytest.approx(0.1)
    assert math.isnan(probe.low)
    assert math.isnan(probe.high)
    assert np.isnan(probe.trace).all()


def test_infinite_values_do_not_set_the_shown_range() -> None:
    """A value probe may send inf (a diverging simulation): the range shown is that of
    the finite values, which the views can print and scale, and the trace skips them."""
    model = MonitorModel("fake", window=0.01, bins=2)
    values = np.array([[1.0, np.inf], [-np.inf, 2.0]] * 5, np.float32)
    model.on_frame(raw_frame("values", ticks=10, shape=[2], data=values.tobytes()))
    (probe,) = model.snapshot().probes
    assert (probe.low, probe.high) == (1.0, 2.0)
    np.testing.assert_allclose(probe.trace, [1.0, 1.0])


def test_a_wide_value_probe_traces_only_its_first_components() -> None:
    """A value probe of 8 components keeps the 8 latest values for display but traces
    only TRACE_COMPONENTS of them: the ring's cells per tick, which the MAX_RING_CELLS
    bound counts, are those traced."""
    model = MonitorModel("fake", window=0.1, bins=4)
    values = np.arange(80, dtype=np.float32).reshape(10, 8)
    model.on_frame(raw_frame("values", ticks=10, shape=[8], data=values.tobytes()))
    (probe,) = model.snapshot().probes
    view = model.views["p"]
    assert isinstance(view, ValueView)
    assert view.trace.shape[1] == view.cells_per_tick == TRACE_COMPONENTS
    np.testing.assert_array_equal(probe.latest, values[-1])
    assert (probe.low, probe.high) == (0.0, 75.0)  # components 0..3 only
