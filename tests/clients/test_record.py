"""``spikestream record``: the recorder (pure) and the tool against a live service."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import time
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client import SpikestreamClient
from spikestream_client.codec import Description, SpikeFrame, decode_frame
from spikestream_client.plotting import plot_run
from spikestream_client.recorder import Recorder, plot_arrays
from tests.clients.conftest import SeedService, cli, cli_env, run_cli, run_cli_unread
from tests.clients.frames import (
    MATHTEXT_NAME,
    header,
    regular_spikes,
    renamed,
    spike_frame,
    value_frame,
    value_payload,
)
from tests.serving import NODELAY

PNG = b"\x89PNG\r\n\x1a\n"


def test_arrays_follow_the_run_layout_and_mark_lost_frames() -> None:
    rec = Recorder("fake")
    rec.on_stats({"event": "stats", "inputs": {"u": {"accepted": 0}}, "tick": 5})
    for seq in range(10):
        if seq == 4:
            continue  # lost on the way
        tick = 10 * seq
        rec.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 6, 4)))
        rec.on_frame(value_frame(header("u", seq, tick), np.arange(tick, tick + 10)[:, None]))
        rec.on_frame(value_frame(header("f", seq, tick), np.ones((10, 2, 3))))
    out = rec.arrays()
    assert out["s"].shape == (100, 6)
    assert out["s"].dtype == np.uint8
    assert out["u"].shape == (100, 1)
    assert out["f"].shape == (100, 2, 3)
    np.testing.assert_array_equal(out["tick"], np.arange(100))
    np.testing.assert_allclose(out["t"], (np.arange(100) + 1) * 0.001)
    lost = np.zeros(100, bool)
    lost[40:50] = True
    np.testing.assert_array_equal(out["gaps"], lost)
    np.testing.assert_array_equal(out["s.gaps"], lost)
    expected = regular_spikes(0, 100, 6, 4).astype(np.uint8)
    expected[lost] = 0
    np.testing.assert_array_equal(out["s"], expected)
    assert np.isnan(out["u"][40:50]).all()
    np.testing.assert_array_equal(out["u"][~lost, 0], np.arange(100)[~lost])
    meta = json.loads(str(out["meta"]))
    assert meta["probes"] == {"f": "values", "s": "spikes", "u": "input"}
    assert meta["inputs"] == ["u"]
    assert meta["populations"] == []
    assert meta["lost_frames"] == {"s": 1, "u": 1, "f": 1}
    assert meta["gaps"][0] == {"probe": "s", "expected": 4, "got": 5, "kind": "lost", "tick": 50}
    assert float(out["dt"]) == 0.001
    assert str(out["network"]) == "fake"
    # No describe document: values stay float32, the dtype the frames carry.
    assert str(out["dtype"]) == "float32"
    assert out["u"].dtype == np.float32
    assert meta["dtype"] == "float32"


@pytest.mark.parametrize("named", ["float64", "float32", "int8", None])
def test_value_probes_take_the_dtype_the_describe_document_names(named: str | None) -> None:
    """As ``run`` stores them (docs/NPZ.md): float32 frames of a float64 network become
    float64 rows, exactly; anything but float32/float64 falls back to the wire's float32."""
    rec = Recorder("fake")
    document = {"probes": {"f": {"source": "filtered"}}, "dtype": named}
    rec.description = Description("fake", 0.001, 1, "0", {}, {}, document)
    values = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3) / 7
    rec.on_frame(value_frame(header("f", 0, 0), values))
    out = rec.arrays()
    want = np.dtype("float64" if named == "float64" else "float32")
    assert out["f"].dtype == want
    assert str(out["dtype"]) == want.name
    np.testing.assert_array_equal(out["f"], values.astype(want))
    assert json.loads(str(out["meta"]))["probes"] == {"f": "filtered"}


def test_rows_span_the_ticks_every_probe_covered() -> None:
    """Joining mid-stream: probes start and stop at different frames; only the common
    span is kept, so start-up and shutdown are not counted as loss."""
    rec = Recorder("fake")
    for seq in range(2, 10):
        rec.on_frame(spike_frame(header("a", seq, 10 * seq), regular_spikes(10 * seq, 10, 3, 2)))
    for seq in range(0, 8):
        rec.on_frame(value_frame(header("b", seq, 10 * seq), np.zeros((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(20, 80))
    assert not out["gaps"].any()


def test_a_reset_starts_a_new_segment() -> None:
    rec = Recorder("fake")
    for seq in range(5):
        rec.on_frame(value_frame(header("v", seq, 100 + 10 * seq), np.full((10, 1), 1.0)))
    for seq in range(5, 8):  # reset: ticks restart at 0, seq goes on
        tick = 10 * (seq - 5)
        rec.on_frame(value_frame(header("v", seq, tick), np.full((10, 1), 2.0)))
    out = rec.arrays()
    assert out["v"].shape == (80, 1)
    np.testing.assert_array_equal(out["segment"], [0] * 50 + [1] * 30)
    np.testing.assert_array_equal(out["tick"], [*range(100, 150), *range(0, 30)])
    np.testing.assert_array_equal(out["v"][:, 0], [1.0] * 50 + [2.0] * 30)
    assert json.loads(str(out["meta"]))["segments"] == 2
    # A restore of a much later snapshot: a new segment rather than a million empty rows.
    rec.on_frame(value_frame(header("v", 8, 5_000_000), np.full((10, 1), 3.0)))
    out = rec.arrays()
    assert out["v"].shape == (90, 1)
    assert out["segment"][-1] == 2
    assert out["tick"][-1] == 5_000_009


def _common_span(rec: Recorder, first: int = 100, last: int = 400) -> None:
    """Probes ``a`` (spikes) and ``b`` (values) with frames of 10 ticks, seq first..last-1."""
    for seq in range(first, last):
        tick = 10 * seq
        rec.on_frame(spike_frame(header("a", seq, tick), regular_spikes(tick, 10, 3, 2)))
        rec.on_frame(value_frame(header("b", seq, tick), np.full((10, 1), float(seq))))


def test_a_reset_or_restore_back_inside_the_last_frame_starts_a_new_segment() -> None:
    """A reset or restore flushes the partial frame from where it began, so the next
    frame's ticks may start inside it (a restore at tick 1900 of a snapshot of tick
    1500, frames of 1000 ticks): in sequence, that is a new segment, not a copy."""
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("v", 0, 0, 1000), np.full((1000, 1), 1.0)))
    rec.on_frame(value_frame(header("v", 1, 1000, 900), np.full((900, 1), 1.0)))  # flushed
    rec.on_frame(value_frame(header("v", 2, 1500, 1000), np.full((1000, 1), 2.0)))
    # A reset within the next frame: ticks back to the start of the last one.
    rec.on_frame(value_frame(header("v", 3, 2500, 4), np.full((4, 1), 2.0)))  # flushed
    rec.on_frame(value_frame(header("v", 4, 0, 10), np.full((10, 1), 3.0)))
    out = rec.arrays()
    assert rec.skip_reasons == {}
    assert (rec.tracker.missing, json.loads(str(out["meta"]))["segments"]) == (0, 3)
    np.testing.assert_array_equal(out["tick"], [*range(0, 1900), *range(1500, 2504), *range(0, 10)])
    np.testing.assert_array_equal(out["v"][:, 0], [1.0] * 1900 + [2.0] * 1004 + [3.0] * 10)


@pytest.mark.parametrize("stray_tick", [0, 2000, 10**6])
def test_one_stray_frame_on_a_new_probe_does_not_empty_the_recording(
    stray_tick: int, tmp_path: Path
) -> None:
    """Rows were the ticks every probe covered: one frame of an invented probe away from
    the others' ticks left none, and the file had 0 rows (and --plot a traceback). The
    stray probe is now left out of that rule, named, and its rows are gaps."""
    rec = Recorder("fake")
    _common_span(rec)
    rec.on_frame(value_frame(header("zz", 0, stray_tick, ticks=1), np.zeros((1, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(1000, 4000))
    np.testing.assert_array_equal(out["b"][:, 0], np.repeat(np.arange(100, 400), 10))
    assert not out["a.gaps"].any()
    assert not out["b.gaps"].any()
    inside = stray_tick == 2000  # within the span: its one row is kept
    np.testing.assert_array_equal(~out["zz.gaps"], out["tick"] == stray_tick)
    assert out["zz.gaps"].sum() == 3000 - inside
    (narrow,) = rec.narrow
    assert narrow.left_out == {"zz": (stray_tick, stray_tick + 1)}
    assert (narrow.common, narrow.longest, narrow.kept) == (int(inside), 3000, (1000, 4000))
    text = rec.narrow_text()
    assert f"left out of the common span: probe 'zz' (ticks {stray_tick} to " in text
    assert "rows kept: ticks 1000 to 4000" in text
    png = plot_run(plot_arrays(out), tmp_path / "stray.png")
    assert png.read_bytes()[:8] == PNG


def test_one_forged_frame_claiming_a_long_span_is_still_the_one_left_out() -> None:
    """A span cannot tell which probe strayed: one frame claiming 10,000 ticks far away
    would otherwise outweigh 300 real frames. Frames delivered decide."""
    rec = Recorder("fake")
    _common_span(rec)
    rec.on_frame(value_frame(header("zz", 0, 10**6, ticks=10_000), np.zeros((10_000, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(1000, 4000))
    assert not out["b.gaps"].any()
    assert out["zz.gaps"].all()
    (narrow,) = rec.narrow
    assert narrow.left_out == {"zz": (10**6, 10**6 + 10_000)}


def test_a_probe_of_big_frames_beside_small_ones_is_kept_when_their_spans_meet() -> None:
    """Probes of 10-tick frames and one of a single 1000-tick frame, in a recording
    shorter than that frame: their spans meet over half the longest, so the usual rule
    stands and nothing is said."""
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("slow", 0, 0, ticks=1000), np.ones((1000, 1))))
    for seq in range(50, 120):  # ticks 500..1200
        rec.on_frame(value_frame(header("fast", seq, 10 * seq), np.ones((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(500, 1000))
    assert rec.narrow == []


def test_spans_that_do_not_meet_keep_every_tick_and_are_said() -> None:
    """Two probes of equal weight whose frames never share a tick: no probe is left out,
    and the rows cover both rather than neither."""
    rec = Recorder("fake")
    for seq in range(10):
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
        rec.on_frame(value_frame(header("b", seq, 100 + 10 * seq), np.ones((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(200))
    assert out["a.gaps"].sum() == out["b.gaps"].sum() == 100
    (narrow,) = rec.narrow
    assert (narrow.common, narrow.kept, narrow.left_out) == (0, (0, 200), {})
    assert "left out" not in rec.narrow_text()
    assert "rows kept: ticks 0 to 200" in rec.narrow_text()


def test_spans_that_differ_by_a_frame_or_two_are_cut_to_the_common_ticks_silently() -> None:
    """The usual case, unchanged: a probe joining a frame late and leaving a frame early
    sets the rows, and nothing is said."""
    rec = Recorder("fake")
    _common_span(rec, 100, 400)
    for seq in range(101, 399):  # ticks 1010..3989
        rec.on_frame(value_frame(header("c", seq, 10 * seq), np.ones((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(1010, 3990))
    assert not out["gaps"].any()
    assert rec.narrow == []
    assert rec.narrow_text() == ""


def test_a_plot_of_no_ticks_is_refused_in_one_line(tmp_path: Path) -> None:
    """0 rows made plot_run raise a numpy ValueError from inside matplotlib's drawing."""
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("v", 0, 0), np.zeros((10, 2))))
    empty = {k: v[:0] if v.ndim and k not in ("meta",) else v for k, v in rec.arrays().items()}
    with pytest.raises(ConfigError, match=r"nothing to plot: expected at least one tick \(row\)"):
        plot_run(plot_arrays(empty), tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_repeated_frames_are_skipped_counted_and_hold_no_memory() -> None:
    """300 copies of one frame (same seq) were all kept: the budget counted rows only, and
    copies add none. Copies are now skipped and counted, and never seen as a restart."""
    rec = Recorder("fake", max_bytes=16 * 2**20)
    payload = value_payload(header("v", 0, 0, ticks=256), np.ones((256, 1024)))  # 1 MiB
    for _ in range(300):
        rec.on_frame(decode_frame(payload))
    assert rec.frames == 1
    assert sum(len(s.frames) for s in rec.segments["v"]) == 1
    assert rec.skipped == {"v": 299}
    assert rec.skip_reasons == {
        ("v", "a frame with its seq was already recorded: a copy or a replay"): 299
    }
    assert "299 frames of probe 'v' skipped (a frame with its seq was already recorded" in (
        rec.skipped_text()
    )
    assert (rec.tracker.restarts, rec.tracker.gaps, rec.over_budget) == (0, 0, 0)
    assert json.loads(str(rec.arrays()["meta"]))["skipped_frames"] == {"v": 299}


def test_overlapping_frames_are_refused_and_hold_no_memory() -> None:
    """Frames over the same ticks with new seqs added no rows but were all held until
    the end (then their payload counted against the budget: about 15 frames of 1 MiB in
    16 MiB), and the last one's rows won. Ticks already recorded in a segment are now
    kept from the first frame that brought them; the others, out of sequence, are
    refused and counted. (The next frame in sequence over them is a reset or restore:
    a new segment, as the test of a restore inside the last frame shows.)"""
    rec = Recorder("fake", max_bytes=16 * 2**20)
    for i in range(300):
        seq = 0 if i == 0 else 10**6 + i
        rec.on_frame(value_frame(header("v", seq, 0, ticks=256), np.full((256, 1024), i)))
    assert (rec.frames, rec.over_budget) == (1, 0)
    assert rec.skip_reasons == {
        (
            "v",
            "its ticks were already recorded in the probe's current segment: a conflicting copy",
        ): 299
    }
    out = rec.arrays()
    assert out["v"].shape == (256, 1024)
    assert not out["v"].any()  # the first frame's rows (seq 0: zeros)
    assert rec.tracker.missing == 0  # the refused frames' seqs are not counted as lost


@pytest.mark.parametrize(("room", "kept"), [(3_152_384, 1), (3_152_383, 0)])
def test_the_budget_is_the_rows_their_gaps_mask_and_the_frames_held(room: int, kept: int) -> None:
    """One frame of 256 ticks x 1024 values costs, as docs/CLIENTS.md says: rows x (21
    bytes of tick, t, gap and segment columns + 8 bytes a value, float64 at most + 1 byte
    of the probe's gaps mask) = 256 x 8214, plus the frame held until the arrays are
    built: its payload (float32 here, 1 MiB) + 1 KiB. A budget one byte short refuses it."""
    frame = value_frame(header("v", 0, 0, ticks=256), np.ones((256, 1024)))
    assert frame.data.nbytes == 256 * 1024 * 4
    assert 256 * (21 + 8 * 1024 + 1) + 256 * 1024 * 4 + 1024 == 3_152_384
    rec = Recorder("fake", max_bytes=room)
    rec.on_frame(frame)
    assert (rec.frames, rec.over_budget) == (kept, 1 - kept)


@pytest.mark.parametrize(("room", "kept"), [(1_186_304, 1), (1_186_303, 0)])
def test_the_budget_counts_a_spike_frames_payload_as_it_came(room: int, kept: int) -> None:
    """A spike frame is held as it arrived (a bitmask of ``ticks x n`` bits here): 256
    ticks x 4096 neurons cost rows x (21 + 1 byte a neuron + 1) = 256 x 4118, plus its
    128 KiB of bits + 1 KiB. Spike payloads were once counted as nothing held."""
    frame = spike_frame(header("s", 0, 0, ticks=256), regular_spikes(0, 256, 4096, 2))
    bits, _, _ = frame.wire()
    assert bits is not None
    assert bits.nbytes == 256 * 4096 // 8
    assert 256 * (21 + 4096 + 1) + 256 * 4096 // 8 + 1024 == 1_186_304
    rec = Recorder("fake", max_bytes=room)
    rec.on_frame(frame)
    assert (rec.frames, rec.over_budget) == (kept, 1 - kept)


def test_meta_lists_the_first_1000_gaps_and_counts_them_all() -> None:
    rec = Recorder("fake")
    for i in range(1_002):  # every other seq lost: 1,001 gaps
        rec.on_frame(value_frame(header("u", 2 * i, 2 * i, ticks=1), np.ones((1, 1))))
    assert len(rec.gaps) == 1_001
    meta = json.loads(str(rec.arrays()["meta"]))
    assert len(meta["gaps"]) == 1_000
    assert meta["gaps"][0] == {"probe": "u", "expected": 1, "got": 2, "kind": "lost", "tick": 2}
    assert meta["lost_frames"] == {"u": 1_001}


def test_a_restarted_service_counting_seq_from_0_again_is_recorded() -> None:
    """Seq repeats after a restart too, but later in time: those frames are kept."""
    rec = Recorder("fake")
    for seq in range(5):
        rec.on_frame(value_frame(header("v", seq, 10 * seq), np.full((10, 1), 1.0)))
    for seq in range(3):  # a new process: seq and tick from 0, wall later
        h = dataclasses.replace(header("v", seq, 10 * seq), wall=1.8e9 + seq)
        rec.on_frame(value_frame(h, np.full((10, 1), 2.0)))
    assert (rec.frames, rec.skipped) == (8, {})
    out = rec.arrays()
    np.testing.assert_array_equal(out["v"][:, 0], [1.0] * 50 + [2.0] * 30)
    assert rec.tracker.restarts == 1


def test_a_frame_changing_n_or_shape_is_skipped_and_said() -> None:
    """Such a frame was counted in frames, then dropped while the arrays were built, and
    never counted anywhere; its rows were gaps with no word why."""
    rec = Recorder("fake")
    rec.on_frame(spike_frame(header("s", 0, 0), regular_spikes(0, 10, 4, 2)))
    rec.on_frame(spike_frame(header("s", 1, 10), regular_spikes(10, 10, 5, 2)))  # n 4 -> 5
    rec.on_frame(spike_frame(header("s", 2, 20), regular_spikes(20, 10, 4, 2)))
    rec.on_frame(value_frame(header("v", 0, 0), np.zeros((10, 2))))
    rec.on_frame(value_frame(header("v", 1, 10), np.zeros((10, 3))))  # shape (2,) -> (3,)
    rec.on_frame(value_frame(header("v", 2, 20), np.zeros((10, 2))))
    assert rec.frames == 4
    assert rec.skipped == {"s": 1, "v": 1}
    why = "its n or shape differs from the probe's first frame"
    assert rec.skip_reasons == {("s", why): 1, ("v", why): 1}
    assert rec.skipped_text() == (
        f"1 frames of probe 's' skipped ({why}); 1 frames of probe 'v' skipped ({why})"
    )
    out = rec.arrays()
    np.testing.assert_array_equal(out["s.gaps"], np.arange(30) // 10 == 1)
    assert json.loads(str(out["meta"]))["skipped_frames"] == {"s": 1, "v": 1}


def test_nothing_recorded_is_an_error_and_plot_view_aliases_spikes() -> None:
    with pytest.raises(ConfigError, match="no frames were received"):
        Recorder("fake").arrays()
    rec = Recorder("fake")
    rec.on_frame(spike_frame(header("s", 0, 0), regular_spikes(0, 10, 3, 2)))
    rec.on_frame(value_frame(header("x", 0, 0), np.zeros((10, 2))))
    view = plot_arrays(rec.arrays())
    assert view["s.spikes"] is not None
    meta = json.loads(str(view["meta"]))
    assert meta["populations"] == ["s"]
    assert meta["probes"]["x"] == "values"  # plot_run draws value probes as traces


def test_probes_named_like_the_files_own_keys_are_skipped_and_counted() -> None:
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("t", 0, 0), np.full((10, 1), 5.0)))
    with pytest.raises(ConfigError, match=r"1 frames of probe 't' skipped .*file's own keys"):
        rec.arrays()
    rec.on_frame(value_frame(header("v", 0, 0), np.zeros((10, 1))))
    out = rec.arrays()
    np.testing.assert_allclose(out["t"], (np.arange(10) + 1) * 0.001)  # not the probe's 5.0
    assert json.loads(str(out["meta"]))["skipped_frames"] == {"t": 1}


def test_plot_draws_mathtext_hostile_names_literally(tmp_path: Path) -> None:
    """Names are drawn as plain text: ``a$\\frac{$`` used to make matplotlib raise."""
    rec = Recorder("n$\\x{")
    for seq in range(3):
        h = header("s", seq, 10 * seq)
        rec.on_frame(
            renamed(spike_frame(h, regular_spikes(10 * seq, 10, 3, 2)), probe=MATHTEXT_NAME)
        )
        rec.on_frame(renamed(value_frame(h, np.ones((10, 2))), probe="v$^{"))
    png = plot_run(plot_arrays(rec.arrays()), tmp_path / "odd.png", title="$\\x{$ (recorded)")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000


@pytest.mark.broker
async def test_record_matches_the_frames_and_plots(
    seed_service: SeedService, tmp_path: Path
) -> None:
    out, png = tmp_path / "live.npz", tmp_path / "live.png"
    async with SpikestreamClient(seed_service.url) as client:
        stream = client.frames("seed", "a_spikes", maxsize=10000)
        await client.sync()
        done = await asyncio.to_thread(
            run_cli, "record", "--broker", seed_service.url, "--net", "seed",
            "--duration", "3", "--out", str(out), "--plot", str(png),
        )  # fmt: skip
        await client.sync()
        stream.close()
        frames = [f async for f in stream]
    assert done.returncode == 0, done.stderr
    assert re.search(r"wrote .*live\.npz: \d+ ticks .* of 5 probes", done.stderr), done.stderr
    with np.load(out) as npz:
        data = {k: npz[k] for k in npz.files}
    ticks = data["tick"]
    assert 2500 <= ticks.size <= 3600, ticks.size
    np.testing.assert_array_equal(np.diff(ticks), 1)
    np.testing.assert_allclose(data["t"], (ticks + 1) * 0.001)
    assert not data["gaps"].any()
    assert data["a_spikes"].shape == (ticks.size, 50)
    assert data["a_spikes"].dtype == np.uint8
    assert data["b_spikes"].shape == (ticks.size, 40)
    assert data["u"].shape == (ticks.size, 1)
    assert data["a_filtered"].shape == (ticks.size, 50)
    meta = json.loads(str(data["meta"]))
    # The kinds of the network file, from the service's describe document.
    assert meta["probes"] == {
        "a_filtered": "filtered",
        "a_spikes": "spikes",
        "b_filtered": "filtered",
        "b_spikes": "spikes",
        "u": "input",
    }
    assert meta["describe"]["net"] == "seed"
    assert meta["status"] == "online"
    # Every frame the test saw inside the recorded span matches the file, row for row.
    compared = 0
    for f in frames:
        assert isinstance(f, SpikeFrame)
        start = f.header.tick - int(ticks[0])
        if start < 0 or start + f.header.ticks > ticks.size:
            continue
        rows = data["a_spikes"][start : start + f.header.ticks]
        np.testing.assert_array_equal(rows, f.spikes.astype(np.uint8))
        compared += f.header.ticks
    assert compared >= ticks.size - 20
    assert data["a_spikes"].sum() > 0
    assert png.read_bytes()[:8] == PNG
    assert png.stat().st_size > 20_000


@pytest.mark.broker
async def test_record_stops_cleanly_on_sigterm(seed_service: SeedService, tmp_path: Path) -> None:
    out = tmp_path / "stopped.npz"
    proc = await asyncio.create_subprocess_exec(
        *cli("record", "--broker", seed_service.url, "--net", "seed", "--out", str(out)),
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stderr is not None
    lines = []
    async with asyncio.timeout(20):
        while True:  # progress lines come once a second: wait until frames arrived
            line = (await proc.stderr.readline()).decode()
            lines.append(line)
            match = re.search(r"record: (\d+) frames", line)
            if match and int(match[1]) > 0:
                break
            assert line, "".join(lines)
    proc.send_signal(signal.SIGTERM)
    rest = (await proc.stderr.read()).decode()
    assert await proc.wait() == 0, rest
    assert f"wrote {out}" in rest
    with np.load(out) as npz:
        assert npz["tick"].size > 100
        assert npz["b_spikes"].sum() > 0


@pytest.mark.broker
async def test_a_recording_the_budget_cuts_short_is_kept_said_and_exits_3(
    seed_service: SeedService, tmp_path: Path
) -> None:
    out = tmp_path / "cut.npz"
    started = time.monotonic()
    done = await asyncio.to_thread(
        run_cli, "record", "--broker", seed_service.url, "--net", "seed",
        "--duration", "60", "--out", str(out), "--max-mib", "0.5", "--quiet",
    )  # fmt: skip
    took = time.monotonic() - started
    print(f"the budget ended the recording after {took:.1f} s")
    assert done.returncode == 3, done.stderr
    # The first frame past the budget ends the recording (within a second of the
    # check), not --duration: 0.5 MiB holds well under 5 s of the seed's frames.
    assert took < 30
    assert "recording ended early" in done.stderr  # said even with --quiet
    with np.load(out) as npz:
        ticks = npz["tick"].size
    assert 100 < ticks < 5000  # what fitted in 0.5 MiB, well short of 20 s
    refused = await asyncio.to_thread(
        run_cli, "record", "--broker", seed_service.url, "--net", "seed",
        "--out", str(out), "--max-mib", "nan",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--max-mib must be a finite number of MiB > 0" in refused.stderr


def test_a_plot_record_cannot_write_is_refused_before_recording(tmp_path: Path) -> None:
    """An unknown suffix was a traceback (exit 1) once the recording was written; it is
    refused first, in one line, as ``run`` refuses it (no broker is asked: port 9)."""
    out = tmp_path / "r.npz"
    for plot, expected in [
        ("r.nosuch", "has suffix '.nosuch'; expected one of .avif, .eps"),
        ("none/r.png", "folder '{d}/none' does not exist"),
    ]:
        done = run_cli(
            "record", "--broker", "mqtt://127.0.0.1:9", "--net", "seed", "--duration", "1",
            "--out", str(out), "--plot", str(tmp_path / plot),
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("spikestream record: error: --plot: "), done.stderr
        assert expected.format(d=tmp_path) in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1
    assert not out.exists()


@pytest.mark.broker
async def test_a_reader_gone_from_the_output_loses_no_recording(
    seed_service: SeedService, tmp_path: Path
) -> None:
    """``record ... 2>&1 | head -1``: the progress line after the reader left raised
    BrokenPipeError, and the command exited 0 without writing its file."""
    out, plot = tmp_path / "r.npz", tmp_path / "r.png"
    code = await asyncio.to_thread(
        run_cli_unread, "record", "--broker", seed_service.url, "--net", "seed",
        "--duration", "2.5", "--out", str(out), "--plot", str(plot),
    )  # fmt: skip
    assert code == 0
    with np.load(out) as npz:
        assert npz["tick"].size > 1000
    assert plot.read_bytes().startswith(PNG)


@pytest.mark.broker
async def test_a_forged_frame_far_from_the_others_is_said_and_exits_3(
    seed_service: SeedService, tmp_path: Path
) -> None:
    """Anyone who may publish on out/+ can invent a probe: one frame at tick 0, long
    before the running service's ticks, used to leave a file of 0 rows, exit 0 and make
    --plot raise. The recording is kept, the probe named, and the exit code is 3."""
    out, png = tmp_path / "stray.npz", tmp_path / "stray.png"
    proc = await asyncio.create_subprocess_exec(
        *cli("record", "--broker", seed_service.url, "--net", "seed", "--duration", "3",
             "--out", str(out), "--plot", str(png)),
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    async with asyncio.timeout(20):
        while not re.search(r"record: [1-9]\d* frames", lines[-1] if lines else ""):
            lines.append((await proc.stderr.readline()).decode())  # subscribed by now
            assert lines[-1], "".join(lines)
    forged = value_payload(header("zz", 0, 0, ticks=1, net="seed"), np.zeros((1, 1)))
    broker = seed_service.broker
    async with aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY) as pub:
        await pub.publish("spikestream/seed/out/zz", forged, qos=1)
    rest = (await proc.stderr.read()).decode()
    assert await proc.wait() == 3, rest
    assert re.search(r"record: incomplete: segment 0: .* probe 'zz' \(ticks 0 to 1\)", rest), rest
    with np.load(out) as npz:
        assert 1500 < npz["tick"].size < 3600
        assert npz["zz.gaps"].all()
        assert not npz["a_spikes.gaps"].any()
    assert png.read_bytes()[:8] == PNG
