"""Spike frames in the monitors: counted and sampled in bounded memory, never expanded
whole (``spikestream_client.monitor.spikecounts``), and equal to the per-spike
definition (``SpikeFrame.indices``) they replace."""

from __future__ import annotations

import tracemalloc
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream_client.codec import SpikeFrame, decode_frame
from spikestream_client.codec.frames import DEFAULT_MAX_FRAME_BYTES
from spikestream_client.monitor import spikecounts
from spikestream_client.monitor.aggregate import MonitorModel
from spikestream_client.monitor.spikecounts import (
    CellTally,
    group_counts,
    group_starts,
    newest_spikes,
    spike_count,
    window_spikes,
)
from spikestream_client.monitor.web import WebBridge


def packed(
    spikes: npt.NDArray[np.bool_], *, enc: str, tick: int = 0, dt: float = 0.001, seq: int = 0
) -> bytes:
    """A spike frame packed by hand in the wire form ``enc`` (the encoder would pick)."""
    ticks, n = spikes.shape
    frame: dict[str, Any] = {
        "v": 1, "net": "fake", "probe": "s", "seq": seq, "tick": tick, "ticks": ticks,
        "dt": dt, "t": (tick + ticks) * dt, "wall": 1.7e9, "late_max": 0.0, "dropped": 0,
        "kind": "spikes", "n": n, "enc": enc,
    }  # fmt: skip
    if enc == "bits":
        frame["bits"] = np.packbits(spikes.ravel(), bitorder="little").tobytes()
    else:
        off, idx = np.nonzero(spikes)
        frame.update(dtype="u4", off=off.astype("<u4").tobytes(), idx=idx.astype("<u4").tobytes())
    return bytes(msgpack.packb(frame, use_bin_type=True))


def all_ones(n: int, ticks: int, *, tick: int = 0) -> bytes:
    """An all-ones bitmask frame of ``ticks × n`` slots, packed without building them."""
    frame: dict[str, Any] = {
        "v": 1, "net": "fake", "probe": "s", "seq": 0, "tick": tick, "ticks": ticks,
        "dt": 0.001, "t": (tick + ticks) * 0.001, "wall": 1.7e9, "late_max": 0.0,
        "dropped": 0, "kind": "spikes", "n": n, "enc": "bits",
        "bits": b"\xff" * (ticks * n // 8),
    }  # fmt: skip
    return bytes(msgpack.packb(frame, use_bin_type=True))


def peak_bytes(work: Any) -> int:
    """Peak bytes ``work()`` allocates (tracemalloc sees numpy's buffers too)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# (n, ticks) of an all-ones frame just under the 16 MiB frame limit: most rows outside a
# 1 s window of 1 ms ticks (cut before anything is expanded), or all of them inside it.
BIG_FRAMES = [
    pytest.param(4096, 32760, id="rows-mostly-outside-the-window"),
    pytest.param(2**20, 127, id="every-row-in-the-window"),
]


@pytest.mark.parametrize(("n", "ticks"), BIG_FRAMES)
def test_a_16_mib_all_ones_frame_folds_in_memory_bounded_by_its_payload(n: int, ticks: int) -> None:
    """Every byte of an all-ones bitmask is 8 spikes: ``indices()`` on every frame made
    the monitor allocate about 5 GiB for one 16 MiB frame (two int64 per spike, then
    the concatenated and masked copies). Counted per group straight from the packed rows
    in the window, the fold allocates less than the payload itself."""
    payload = all_ones(n, ticks)
    assert 15 * 2**20 < len(payload) <= DEFAULT_MAX_FRAME_BYTES
    frame = decode_frame(payload)
    model = MonitorModel("fake", window=1.0, bins=10, raster_rows=4)
    model.on_frame(frame)
    peak = peak_bytes(model.snapshot)
    assert peak < len(payload), f"fold allocated {peak / 2**20:.1f} MiB"
    (probe,) = model.snapshot().probes
    # Every neuron spikes every tick: 1000 Hz per neuron, in every group and bin with data.
    assert probe.rate == pytest.approx(1000.0)
    assert probe.covered == pytest.approx(min(ticks, 1000) / 1000)
    assert np.isfinite(probe.raster[:, -1]).all()
    np.testing.assert_allclose(probe.raster[np.isfinite(probe.raster)], 1000.0)


@pytest.mark.parametrize(("n", "ticks"), BIG_FRAMES)
def test_the_web_bridge_takes_the_newest_spikes_of_a_16_mib_frame_in_bounded_memory(
    n: int, ticks: int
) -> None:
    """The bridge expanded every frame and thinned afterwards (GiBs for one all-ones
    frame); it now reads newest-first and stops at max_spikes, counting the rest."""
    payload = all_ones(n, ticks)
    bridge = WebBridge("fake", max_spikes=20000)
    bridge.on_frame(decode_frame(payload))
    batches: list[dict[str, Any] | None] = []
    peak = peak_bytes(lambda: batches.append(bridge.batch()))
    assert peak < len(payload), f"batch allocated {peak / 2**20:.1f} MiB"
    (batch,) = batches
    assert batch is not None
    sent = batch["probes"]["s"]
    total = ticks * n
    slots = np.arange(total - 20000, total)  # the last 20,000 spikes, in row-major order
    assert sent["t"] == (slots // n).tolist()
    assert sent["i"] == (slots % n).tolist()
    assert sent["thinned"] == total - 20000
    assert bridge.spikes_sent == 20000


def _reference_counts(frame: SpikeFrame, first: int, starts: npt.NDArray[np.int64]) -> Any:
    off, idx = frame.indices()
    keep = off >= first
    group = np.searchsorted(starts, idx[keep], side="right") - 1
    rows, groups = frame.header.ticks - first, starts.size - 1
    flat = (off[keep] - first) * groups + group
    return np.bincount(flat, minlength=rows * groups).reshape(rows, groups)


@settings(max_examples=150, deadline=None)
@given(
    spikes=hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)),
    enc=st.sampled_from(["bits", "idx"]),
    first_frac=st.floats(0, 1),
    rows=st.integers(1, 9),
    limit=st.integers(0, 2000),
    chunk=st.sampled_from([1, 3, 2**15]),
)
def test_chunked_reads_match_the_per_spike_definition(
    spikes: npt.NDArray[np.bool_],
    enc: str,
    first_frac: float,
    rows: int,
    limit: int,
    chunk: int,
) -> None:
    """Whatever the chunk size (1 and 3 bytes make every frame span many chunks), the
    counts, window and newest spikes equal what ``indices()`` gives."""
    frame = decode_frame(packed(spikes, enc=enc))
    assert isinstance(frame, SpikeFrame)
    ticks, n = spikes.shape
    first = min(int(first_frac * ticks), ticks - 1)
    starts = group_starts(n, max(1, min(rows, n)))
    off, idx = frame.indices()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spikecounts, "CHUNK_BYTES", chunk)
        mp.setattr(spikecounts, "CHUNK_SPIKES", chunk)
        assert spike_count(frame) == off.size
        got = list(window_spikes(frame, first))
        keep = off >= first
        np.testing.assert_array_equal(np.concatenate([o for o, _ in got] or [off[:0]]), off[keep])
        np.testing.assert_array_equal(np.concatenate([i for _, i in got] or [idx[:0]]), idx[keep])
        newest = newest_spikes(frame, limit)
        np.testing.assert_array_equal(newest[0], off[off.size - min(limit, off.size) :])
        np.testing.assert_array_equal(newest[1], idx[idx.size - min(limit, idx.size) :])
        if enc == "bits":
            blocks = list(group_counts(frame, first, starts))
            counts = np.concatenate([b for _, b in blocks])
            assert blocks[0][0] == first
            np.testing.assert_array_equal(counts, _reference_counts(frame, first, starts))


@settings(deadline=None)  # a loaded CI machine is no reason to fail
@given(
    cells=st.lists(st.integers(0, 9999), max_size=3000),
    batch=st.sampled_from([1, 7, 2**18]),
)
def test_cell_tally_counts_like_add_at(cells: list[int], batch: int) -> None:
    """Narrow spans go through a bincount of the span, wide ones through add.at: both
    count exactly, into the caller's array in place."""
    counts = np.zeros((2500, 4), np.uint32)
    expected = np.zeros(10000, np.int64)
    np.add.at(expected, np.asarray(cells, np.int64), 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spikecounts, "CHUNK_SPIKES", batch)
        tally = CellTally(counts, lambda tick, neuron: tick * 4 + neuron)
        for k in range(0, len(cells), 5):
            some = np.asarray(cells[k : k + 5], np.int64)
            tally.add(some // 4, some % 4)
        tally.flush()
    np.testing.assert_array_equal(counts.reshape(-1), expected)


def test_cell_tally_refuses_a_strided_array() -> None:
    with pytest.raises(ValueError, match="expects a C-contiguous count array"):
        CellTally(np.zeros((10, 4), np.uint32)[:, :2], lambda tick, neuron: tick)


def test_the_monitor_counts_both_forms_as_before_across_the_window_edge() -> None:
    """Frames of both forms, some straddling the window's start, some far older: the
    fold counts only the window's rows, exactly as the per-spike definition does."""
    rng = np.random.default_rng(7)
    model = MonitorModel("fake", window=0.1, bins=5, raster_rows=3)
    reference = np.zeros((100, 3), np.int64)
    tick = 0
    frames = []
    for seq, (ticks, enc) in enumerate([(300, "bits"), (70, "idx"), (45, "bits"), (8, "idx")]):
        spikes = rng.random((ticks, 40)) < 0.3
        frames.append((tick, spikes))
        model.on_frame(decode_frame(packed(spikes, enc=enc, tick=tick, seq=seq)))
        tick += ticks
    oldest = tick - 100
    group = np.arange(40) * 3 // 40
    for start, spikes in frames:
        for k, row in enumerate(spikes):
            if start + k >= oldest:
                np.add.at(reference[start + k - oldest], group[row], 1)
    (probe,) = model.snapshot().probes
    sizes = np.bincount(group)
    per_bin = reference.reshape(5, 20, 3).sum(axis=1) / (sizes * 20 * 0.001)
    np.testing.assert_allclose(probe.raster, per_bin.T)


def test_group_counts_yields_blocks_of_bounded_size() -> None:
    """A frame of many short rows (2**17 ticks of 8 neurons) is counted in blocks of at
    most about 2**16 cells: one block for all rows would hold rows × (groups + 1) int64
    boundary counts at once, hundreds of MiB for a 16 MiB frame of tiny rows."""
    ticks, n = 2**17, 8
    frame = decode_frame(all_ones(n, ticks))
    assert isinstance(frame, SpikeFrame)
    starts = group_starts(n, 4)
    blocks = list(group_counts(frame, 0, starts))
    assert len(blocks) > 1
    for _, block in blocks:
        assert block.size <= 2**16
    assert [row for row, _ in blocks] == list(np.cumsum([0] + [b.shape[0] for _, b in blocks])[:-1])
    assert sum(int(b.sum()) for _, b in blocks) == ticks * n


def test_cell_tally_counts_a_full_batch_before_flush() -> None:
    """Spikes are batched only up to CHUNK_SPIKES: once a batch reaches it, it is counted
    at once, so the many chunks of one huge index frame are never all held together."""
    counts = np.zeros((4, 4), np.uint32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spikecounts, "CHUNK_SPIKES", 10)
        tally = CellTally(counts, lambda tick, neuron: tick * 4 + neuron)
        six = np.arange(6, dtype=np.int64)
        tally.add(six % 4, six % 4)
        assert counts.sum() == 0  # under the batch size: still waiting
        tally.add(six % 4, six % 4)
        assert counts.sum() == 12  # reached it: counted without a flush
        tally.add(six[:3] % 4, six[:3] % 4)
        assert counts.sum() == 12
        tally.flush()
    assert counts.sum() == 15


def test_cell_tally_scattered_cells_take_no_memory_for_the_span() -> None:
    """Two spikes at the two ends of a 16 MiB count array (a ring that wrapped): a
    bincount over the span between them would allocate 32 MiB for two counts."""
    counts = np.zeros(2**22, np.uint32)
    tally = CellTally(counts, lambda tick, neuron: tick)
    tally.add(np.array([0, 2**22 - 1], np.int64), np.zeros(2, np.int64))
    peak = peak_bytes(tally.flush)
    assert peak < 2**20, f"flush allocated {peak / 2**20:.1f} MiB"
    assert counts[0] == counts[-1] == 1
    assert counts.sum() == 2


def test_a_dense_bitmask_straddling_the_window_lands_each_row_on_its_tick() -> None:
    """A bitmask frame with enough slots in the window is counted per group from the
    packed bytes: each counted row must go to the ring slot of its own tick (the frame's
    tick plus the row), also when the frame starts before the window and its rows in
    the window start mid-frame. Per-tick densities differ, so a shifted row shows."""
    rng = np.random.default_rng(11)
    ticks, n = 250, 400  # 100 ticks × 400 slots in the window: past _COUNT_BITS
    spikes = rng.random((ticks, n)) < rng.random((ticks, 1))
    model = MonitorModel("fake", window=0.1, bins=5, raster_rows=3)
    model.on_frame(decode_frame(packed(spikes, enc="bits")))
    (probe,) = model.snapshot().probes
    group = np.arange(n) * 3 // n
    reference = np.stack([np.bincount(group[row], minlength=3) for row in spikes[150:]])
    per_bin = reference.reshape(5, 20, 3).sum(axis=1) / (np.bincount(group) * 20 * 0.001)
    np.testing.assert_allclose(probe.raster, per_bin.T)
