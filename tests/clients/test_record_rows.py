"""``spikestream record``: the recorder's rows, gaps, segments and meta at their
boundaries (pure: hand-made frames, no broker)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spikestream_client.errors import ConfigError
from spikestream_client.recorder import Recorder
from tests.clients.frames import header, value_frame

OVERLAP = "its ticks were already recorded in the probe's current segment: a conflicting copy"
COPY = "a frame with its seq was already recorded: a copy or a replay"
LATE = (
    "its seq went back but it is no restart (its ticks did not go back before the probe's "
    "last frame, or its wall is not later): a late frame or a replay"
)


def test_a_frame_overlapping_the_last_by_one_tick_is_refused_not_written_twice() -> None:
    """Rows are never written twice: a frame out of sequence whose first tick is the last
    tick already recorded (one tick of overlap, the smallest there is) is refused like
    any overlap, and the first frame keeps its row."""
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("v", 0, 0), np.full((10, 1), 1.0)))  # ticks 0..9
    rec.on_frame(value_frame(header("v", 7, 9), np.full((10, 1), 2.0)))  # ticks 9..18
    assert rec.skip_reasons == {("v", OVERLAP): 1}
    assert rec.frames == 1
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(10))
    np.testing.assert_array_equal(out["v"][:, 0], np.ones(10))


def test_a_jump_of_exactly_max_jump_ticks_is_gap_rows_and_one_more_is_a_segment() -> None:
    """The module doc: a forward jump of *more than* ``max_jump`` ticks opens a segment;
    a jump of ``max_jump`` ticks is rows marked in ``gaps``."""
    rec = Recorder("fake", max_jump=100)
    rec.on_frame(value_frame(header("v", 0, 0), np.full((10, 1), 1.0)))
    rec.on_frame(value_frame(header("v", 1, 110), np.full((10, 1), 2.0)))  # jump of 100
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(120))
    np.testing.assert_array_equal(out["segment"], np.zeros(120))
    np.testing.assert_array_equal(out["gaps"], (out["tick"] >= 10) & (out["tick"] < 110))
    rec.on_frame(value_frame(header("v", 2, 221), np.full((10, 1), 3.0)))  # jump of 101
    out = rec.arrays()
    np.testing.assert_array_equal(out["segment"], [0] * 120 + [1] * 10)
    np.testing.assert_array_equal(out["tick"], [*range(120), *range(221, 231)])
    assert json.loads(str(out["meta"]))["segments"] == 2


def test_a_seq_that_went_back_with_the_same_wall_is_a_copy_not_a_restart() -> None:
    """A restart is a frame whose wall is *later* than every recorded frame of its probe:
    a copy of the last frame's wall is not, however its ticks went back."""
    rec = Recorder("fake")
    for seq in range(5):
        rec.on_frame(value_frame(header("v", seq, 10 * seq), np.full((10, 1), 1.0)))
    last_wall = header("v", 4, 40).wall
    copy = dataclasses.replace(header("v", 0, 0), wall=last_wall)
    rec.on_frame(value_frame(copy, np.full((10, 1), 9.0)))
    assert rec.skip_reasons == {("v", COPY): 1}
    assert rec.tracker.restarts == 0
    out = rec.arrays()
    np.testing.assert_array_equal(out["v"][:, 0], np.ones(50))


def test_a_restart_must_be_later_than_every_frame_not_only_the_last() -> None:
    """Walls of one probe's frames need not increase (the service's clock stepped back):
    a seq that went back is a restart only if its wall is later than *every* recorded
    frame's, not merely the last one's."""
    rec = Recorder("fake")
    walls = [100.0, 200.0, 150.0]
    for seq, wall in enumerate(walls):
        h = dataclasses.replace(header("v", seq, 10 * seq), wall=wall)
        rec.on_frame(value_frame(h, np.full((10, 1), 1.0)))
    between = dataclasses.replace(header("v", 0, 0), wall=175.0)  # after the last, not all
    rec.on_frame(value_frame(between, np.full((10, 1), 9.0)))
    assert rec.skip_reasons == {("v", COPY): 1}
    out = rec.arrays()
    np.testing.assert_array_equal(out["v"][:, 0], np.ones(30))
    np.testing.assert_array_equal(out["segment"], np.zeros(30))


def test_gaps_is_true_where_any_probe_lost_its_frame() -> None:
    """``gaps`` is the union of the probes' masks: a frame lost by the first probe (in
    name order) only is still marked, not just the last probe's losses."""
    rec = Recorder("fake")
    for seq in range(6):
        if seq != 2:  # "a" loses frame 2
            rec.on_frame(value_frame(header("a", seq, 10 * seq), np.zeros((10, 1))))
        if seq != 4:  # "b" loses frame 4
            rec.on_frame(value_frame(header("b", seq, 10 * seq), np.zeros((10, 1))))
    out = rec.arrays()
    tick = out["tick"]
    np.testing.assert_array_equal(out["a.gaps"], (tick >= 20) & (tick < 30))
    np.testing.assert_array_equal(out["b.gaps"], (tick >= 40) & (tick < 50))
    np.testing.assert_array_equal(out["gaps"], out["a.gaps"] | out["b.gaps"])


def test_meta_counts_every_lost_frame_restart_and_frame_of_every_segment() -> None:
    """``lost_frames`` counts the frames missing (seq 3 -> 7 is four lost, not one gap),
    ``restarts`` the restarts seen, and ``frames`` every frame recorded in every
    segment, not just the last."""
    rec = Recorder("fake")
    for seq in (0, 1, 2, 7, 8):  # 3..6 lost
        rec.on_frame(value_frame(header("v", seq, 10 * seq), np.zeros((10, 1))))
    for seq in range(2):  # a new process: seq and ticks from 0, wall later
        h = dataclasses.replace(header("v", seq, 10 * seq), wall=1.8e9 + seq)
        rec.on_frame(value_frame(h, np.zeros((10, 1))))
    meta = json.loads(str(rec.arrays()["meta"]))
    assert meta["lost_frames"] == {"v": 4}
    assert meta["restarts"] == 1
    assert meta["segments"] == 2
    assert meta["frames"] == {"v": 7}
    assert [g["kind"] for g in meta["gaps"]] == ["lost", "restart"]


def test_a_probe_with_exactly_half_the_busiest_frames_is_not_left_out() -> None:
    """Only probes that delivered *fewer* than half as many frames as the busiest are left
    out of the common-span rule: one with exactly half is of like weight, so spans that
    never meet keep every tick of both, and no probe is named."""
    rec = Recorder("fake")
    for seq in range(4):  # ticks 0..39
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
    for seq in range(2):  # ticks 1000..1019: half as many frames, far away
        rec.on_frame(value_frame(header("b", seq, 1000 + 10 * seq), np.ones((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(1020))
    (narrow,) = rec.narrow
    assert (narrow.left_out, narrow.kept) == ({}, (0, 1020))
    assert int((~out["b.gaps"]).sum()) == 20


def test_only_the_probes_asked_for_are_recorded_and_the_rest_are_not_skips() -> None:
    """``Recorder(net, probes)`` (``--probe``) keeps only those probes' frames; the others
    are neither stored nor counted as skipped (nothing is wrong with them)."""
    rec = Recorder("fake", {"a"})
    for seq in range(3):
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
        rec.on_frame(value_frame(header("b", seq, 10 * seq), np.ones((10, 2))))
    assert rec.frames == 3
    assert rec.skip_reasons == {}
    out = rec.arrays()
    assert "b" not in out
    assert "b.gaps" not in out
    assert json.loads(str(out["meta"]))["probes"] == {"a": "values"}


def test_a_frame_changing_dt_mid_recording_is_skipped_and_dt_kept() -> None:
    """Without a describe document the first frame sets ``dt``: a later frame claiming
    another would have rescaled ``t`` of every row already recorded."""
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("v", 0, 0), np.ones((10, 1))))
    rec.on_frame(value_frame(header("v", 1, 10, dt=0.002), np.full((10, 1), 2.0)))
    assert rec.skip_reasons == {("v", "it changed kind or dt mid-recording"): 1}
    out = rec.arrays()
    assert float(out["dt"]) == 0.001
    np.testing.assert_allclose(out["t"], (np.arange(10) + 1) * 0.001)


def test_a_recording_the_budget_refused_entirely_says_why_not_that_nothing_came() -> None:
    """Frames came, but the first was already past ``max_bytes``: the error says the
    budget ended the recording, not "no frames were received" (which sends the user to
    check the service and broker instead)."""
    rec = Recorder("fake", max_bytes=1000)
    rec.on_frame(value_frame(header("v", 0, 0), np.ones((10, 100))))
    assert (rec.frames, rec.over_budget) == (0, 1)
    with pytest.raises(ConfigError, match=r"no frames could be recorded .*recording ended early"):
        rec.arrays()


def test_major_probes_that_never_meet_beside_a_stray_keep_all_their_ticks() -> None:
    """A stray probe is left out, and the two probes of equal weight left do not meet
    either: the rows cover both (rather than none), and the stray is still named."""
    rec = Recorder("fake")
    for seq in range(10):
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
        rec.on_frame(value_frame(header("b", seq, 100 + 10 * seq), np.ones((10, 1))))
    rec.on_frame(value_frame(header("zz", 0, 5000, ticks=1), np.zeros((1, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(200))
    (narrow,) = rec.narrow
    assert (narrow.kept, narrow.left_out) == ((0, 200), {"zz": (5000, 5001)})


@pytest.mark.parametrize(("strays", "listed"), [(5, "; rows kept"), (8, ", 3 more; rows kept")])
def test_narrow_text_names_five_left_out_probes_and_counts_the_rest(
    strays: int, listed: str
) -> None:
    """Invented probes can be many: the line names the first five and counts the others
    (none when there are five), so a flood of names cannot flood the terminal."""
    rec = Recorder("fake")
    for seq in range(20):
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
        rec.on_frame(value_frame(header("b", seq, 10 * seq), np.ones((10, 1))))
    for i in range(strays):
        rec.on_frame(value_frame(header(f"z{i}", 0, 10_000 + i, ticks=1), np.zeros((1, 1))))
    rec.arrays()
    text = rec.narrow_text()
    assert "probe 'z4'" in text
    assert "probe 'z5'" not in text
    assert f"probe 'z4' (ticks 10004 to 10005){listed}" in text


def test_the_input_names_are_those_of_the_latest_stats_message() -> None:
    """A value probe is ``input`` if the latest stats list it: names of earlier messages
    are not accumulated (a stream of invented stats would grow them without bound)."""
    rec = Recorder("fake")
    rec.on_stats({"event": "stats", "inputs": {"x": {"accepted": 0}}})
    rec.on_stats({"event": "stats", "inputs": {"u": {"accepted": 0}}})
    assert rec.inputs == {"u"}
    for probe in ("u", "x"):
        rec.on_frame(value_frame(header(probe, 0, 0), np.ones((10, 1))))
    meta = json.loads(str(rec.arrays()["meta"]))
    assert meta["probes"] == {"u": "input", "x": "values"}


def test_meta_names_the_first_and_last_tick_of_the_rows() -> None:
    """``meta.first_tick`` and ``last_tick`` are the rows' ticks (after the common-span
    cut), as ``run`` writes them: a reader aligns two files with them."""
    rec = Recorder("fake")
    for seq in range(2, 8):
        rec.on_frame(value_frame(header("a", seq, 10 * seq), np.ones((10, 1))))
    for seq in range(3, 9):
        rec.on_frame(value_frame(header("b", seq, 10 * seq), np.ones((10, 1))))
    meta = json.loads(str(rec.arrays()["meta"]))
    assert (meta["first_tick"], meta["last_tick"], meta["ticks"]) == (30, 79, 50)


def test_stats_whose_inputs_are_not_a_mapping_change_nothing() -> None:
    """Stats come from the bus: ``inputs`` as a number raised inside the client's
    callback, and as a list its items became input names."""
    rec = Recorder("fake")
    rec.on_stats({"event": "stats", "inputs": {"u": {"accepted": 0}}})
    for inputs in (5, ["x"], None):
        rec.on_stats({"event": "stats", "inputs": inputs})
        assert rec.inputs == {"u"}
    assert rec.stats == {"event": "stats", "inputs": None}
