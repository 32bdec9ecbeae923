"""``spikestream record``: the recorder's rows, gaps, segments and meta at their
boundaries (pure: hand-made frames, no broker)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

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
