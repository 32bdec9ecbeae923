"""GapTracker: seq continuity per probe (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spikestream_client import Gap, GapTracker
from tests.clients.frames import header


def test_contiguous_frames_have_no_gaps() -> None:
    tracker = GapTracker()
    assert all(tracker.check(header("p", seq, 10 * seq)) is None for seq in range(5, 50))
    assert (tracker.gaps, tracker.missing, tracker.restarts) == (0, 0, 0)
    assert tracker.expected("fake", "p") == 50


def test_forward_jump_is_a_gap_with_expected_and_got() -> None:
    tracker = GapTracker()
    tracker.check(header("p", 3, 30))
    gap = tracker.check(header("p", 7, 70), local=1)
    assert gap == Gap(
        net="fake", probe="p", expected=4, got=7, kind="lost", tick=70, wall=gap.wall, local=1
    )
    assert gap.missing == 3
    assert (tracker.gaps, tracker.missing) == (1, 3)


def test_backward_jump_is_a_restart_not_a_loss() -> None:
    tracker = GapTracker()
    tracker.check(header("p", 100, 1000))
    gap = tracker.check(header("p", 0, 0))
    assert gap is not None
    assert (gap.kind, gap.missing) == ("restart", 0)
    assert (tracker.gaps, tracker.missing, tracker.restarts) == (0, 0, 1)
    assert tracker.check(header("p", 1, 10)) is None


def test_probes_and_networks_are_tracked_separately() -> None:
    tracker = GapTracker()
    tracker.check(header("p", 0, 0))
    tracker.check(header("q", 40, 0))
    tracker.check(header("p", 0, 0, net="other"))
    assert tracker.check(header("p", 1, 10)) is None
    assert tracker.check(header("q", 41, 10)) is None
    assert tracker.check(header("p", 1, 10, net="other")) is None


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=200))
def test_missing_counts_exactly_the_skipped_seqs(steps: list[int]) -> None:
    """Whatever subset of a sequence arrives, missing = (last - first + 1) - received."""
    tracker = GapTracker()
    seq = 0
    for step in steps:
        seq += step + 1  # step frames lost before this one
        tracker.check(header("p", seq, 0))
    received = len(steps)
    first = steps[0] + 1
    assert tracker.missing == (seq - first + 1) - received
    assert tracker.gaps == sum(1 for s in steps[1:] if s)


def test_local_drops_are_bounded_by_the_frames_missing() -> None:
    """``Gap.local`` says how many of the missing frames this client dropped: never more
    than are missing, and 0 on a restart (no frame is missing across one)."""
    tracker = GapTracker()
    tracker.check(header("p", 3, 30))
    gap = tracker.check(header("p", 6, 60), local=5)  # 2 missing, 5 claimed
    assert gap is not None
    assert (gap.missing, gap.local) == (2, 2)
    gap = tracker.check(header("p", 0, 0), local=4)  # the service restarted
    assert gap is not None
    assert (gap.kind, gap.missing, gap.local) == ("restart", 0, 0)


def test_reset_forgets_every_probe_and_zeroes_the_totals() -> None:
    tracker = GapTracker()
    tracker.check(header("p", 0, 0))
    tracker.check(header("p", 5, 50))  # 4 missing
    tracker.check(header("p", 1, 10))  # a restart
    assert (tracker.gaps, tracker.missing, tracker.restarts) == (1, 4, 1)
    tracker.reset()
    assert (tracker.gaps, tracker.missing, tracker.restarts) == (0, 0, 0)
    assert tracker.expected("fake", "p") is None
    assert tracker.check(header("p", 40, 400)) is None  # a fresh start, not a gap


def test_a_gap_carries_the_tick_and_wall_of_the_frame_that_revealed_it() -> None:
    """``Gap.tick`` and ``Gap.wall`` say when the loss showed (the first frame after it),
    not anything of the frames before: a reader places the gap in time with them."""
    tracker = GapTracker()
    tracker.check(header("p", 3, 30))
    after = header("p", 7, 70)
    gap = tracker.check(after)
    assert gap is not None
    assert (gap.tick, gap.wall) == (70, after.wall)
    assert gap.wall != header("p", 3, 30).wall
