"""Pacer and clocks on a FakeClock: no test sleeps except the one SystemClock smoke test."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spikestream.runtime.pacer as pacer_module
from spikestream.errors import ConfigError, SimulationError
from spikestream.runtime import (
    POLICIES,
    FakeClock,
    Pacer,
    PacerPolicy,
    SystemClock,
    Tick,
)
from spikestream_client.codec import MAX_REALTIME_FACTOR

# A start time far from 0 with a messy fraction, like a real perf_counter reading, so that
# rounding behaves as it would in service.
T0 = 1000.123
DT = 0.001


def make(
    policy: PacerPolicy = "catch-up", *, rf: float = 1.0, max_catchup: int = 20
) -> tuple[FakeClock, Pacer]:
    clock = FakeClock(T0)
    pacer = Pacer(DT, clock, realtime_factor=rf, policy=policy, max_catchup=max_catchup)
    return clock, pacer


def started(
    policy: PacerPolicy = "catch-up", *, rf: float = 1.0, max_catchup: int = 20
) -> tuple[FakeClock, Pacer]:
    clock, pacer = make(policy, rf=rf, max_catchup=max_catchup)
    pacer.start()
    return clock, pacer


def copy(tick: Tick) -> tuple[int, float, float, float, int]:
    return (tick.index, tick.deadline, tick.start, tick.lateness, tick.skipped)


# -- the schedule -------------------------------------------------------------------------


def test_tick_zero_is_due_at_start_and_every_tick_lands_on_its_grid_deadline() -> None:
    clock, pacer = started()
    for k in range(2000):
        tick = pacer.wait()
        assert tick.index == k
        # Exact equality on purpose: the pacer must compute t0 + k*dt, not a running sum.
        assert tick.deadline == T0 + k * DT
        assert tick.start == tick.deadline
        assert tick.lateness == 0.0
        assert tick.skipped == 0
        clock.advance(0.3 * DT)  # work shorter than a period
    stats = pacer.statistics()
    assert stats.ticks == 2000
    assert stats.overruns == stats.skipped == stats.slips == stats.realigns == 0
    assert stats.lateness.max == 0.0
    assert stats.realtime_factor_actual == pytest.approx(1.0, rel=1e-9)


def test_no_drift_after_a_million_ticks() -> None:
    clock, pacer = started()
    for _ in range(1_000_000):
        tick = pacer.wait()
    assert tick.index == 999_999
    k = 1_000_000
    ulp = math.ulp(T0 + k * DT)
    exact = Fraction(T0) + k * Fraction(DT)  # the grid in exact rational arithmetic
    naive = T0
    for _ in range(k):
        naive += DT  # what adding up periods would give
    # The test can fail: accumulation is off by about 1e5 ulp at this magnitude.
    assert abs(Fraction(naive) - exact) > 1000 * ulp
    assert abs(Fraction(pacer.deadline(k)) - exact) <= ulp
    pacer.wait()
    assert clock.now() == pacer.deadline(k)
    # 10**7 ticks (about 2.8 hours of 1 ms ticks) are just as exact.
    big = 10_000_000
    exact_big = Fraction(T0) + big * Fraction(DT)
    assert abs(Fraction(pacer.deadline(big)) - exact_big) <= math.ulp(T0 + big * DT)


@pytest.mark.parametrize("rf", [2.0, 0.5, 3.0])
def test_realtime_factor_scales_the_wall_period(rf: float) -> None:
    clock, pacer = started(rf=rf)
    period = DT / rf
    for k in range(100):
        tick = pacer.wait()
        assert tick.deadline == T0 + k * period
        assert tick.lateness == 0.0
    assert pacer.period == period
    assert clock.now() == pytest.approx(T0 + 99 * period, abs=1e-12)
    # rf 2 means 100 ticks of 1 ms of simulated time in 99 half-periods of wall time.
    assert pacer.statistics().realtime_factor_actual == pytest.approx(rf, rel=1e-9)


def test_realtime_factor_zero_never_sleeps_and_is_never_late() -> None:
    clock, pacer = started(rf=0.0)
    for k in range(500):
        tick = pacer.wait()
        assert tick.index == k
        assert tick.lateness == 0.0
        clock.advance(0.1 * DT)  # ten times faster than real time
    assert clock.sleep_calls == 0
    stats = pacer.statistics()
    assert stats.overruns == 0
    assert stats.lateness.max == 0.0
    assert stats.realtime_factor_actual == pytest.approx(10.0, rel=1e-9)
    with pytest.raises(SimulationError, match="free-running"):
        pacer.deadline(0)


# -- overrun policies -----------------------------------------------------------------------


def test_catch_up_runs_missed_ticks_back_to_back_with_decreasing_lateness() -> None:
    clock, pacer = started("catch-up")
    pacer.wait()
    clock.advance(5.5 * DT)  # tick 0's work overruns ticks 1..5
    sleeps = clock.sleep_calls
    late = [copy(pacer.wait()) for _ in range(5)]
    assert clock.sleep_calls == sleeps, "late ticks must not sleep"
    assert [t[0] for t in late] == [1, 2, 3, 4, 5]
    assert [t[1] for t in late] == [T0 + k * DT for k in range(1, 6)]  # original grid
    assert [t[3] for t in late] == pytest.approx([x * DT for x in (4.5, 3.5, 2.5, 1.5, 0.5)])
    tick = pacer.wait()  # caught up: back to sleeping to the grid
    assert clock.sleep_calls == sleeps + 1
    assert (tick.index, tick.deadline, tick.lateness) == (6, T0 + 6 * DT, 0.0)
    stats = pacer.statistics()
    assert (stats.overruns, stats.realigns, stats.skipped, stats.slips) == (5, 0, 0, 0)


def test_catch_up_lateness_shrinks_by_the_slack_of_each_late_tick() -> None:
    clock, pacer = started("catch-up")
    pacer.wait()
    clock.advance(5.5 * DT)
    lateness = []
    while True:
        tick = pacer.wait()
        if tick.lateness == 0.0:
            break
        lateness.append(tick.lateness)
        clock.advance(0.2 * DT)  # each late tick still takes 0.2 dt of work
    # Each late tick wins back 0.8 dt: 4.5, 3.7, 2.9, 2.1, 1.3, 0.5 dt, then on time.
    expected = [x * DT for x in (4.5, 3.7, 2.9, 2.1, 1.3, 0.5)]
    assert lateness == pytest.approx(expected, abs=1e-9)
    assert tick.index == 7
    assert tick.deadline == T0 + 7 * DT
    assert pacer.statistics().realigns == 0


def test_catch_up_realigns_after_max_catchup_late_ticks() -> None:
    clock, pacer = started("catch-up", max_catchup=3)
    pacer.wait()
    clock.advance(5.5 * DT)
    sleeps = clock.sleep_calls
    late = [copy(pacer.wait()) for _ in range(3)]
    assert clock.sleep_calls == sleeps
    assert [t[3] for t in late] == pytest.approx([4.5 * DT, 3.5 * DT, 2.5 * DT])
    assert pacer.statistics().realigns == 1
    realign_start = late[-1][2]
    assert realign_start == pytest.approx(T0 + 5.5 * DT)
    # The backlog (ticks 4 and 5 were due) is dropped; tick 4 is due a period after tick 3.
    tick = pacer.wait()
    assert clock.sleep_calls == sleeps + 1
    assert tick.index == 4
    assert tick.skipped == 0
    assert tick.deadline == realign_start + DT
    assert tick.lateness == 0.0
    assert pacer.deadline(10) == realign_start + 7 * DT
    stats = pacer.statistics()
    assert (stats.overruns, stats.realigns) == (3, 1)
    # Tick 3 was due at T0 + 3 dt and realigned at T0 + 5.5 dt: 2.5 ticks of schedule lost.
    assert stats.behind == pytest.approx(2.5 * DT)


@pytest.mark.parametrize("rf", [0.5, 2.0])
def test_the_schedule_dropped_is_counted_in_simulated_seconds(rf: float) -> None:
    """At twice (half) real time a period is half (twice) a tick's dt of wall time: a
    realign 2.5 periods late drops 2.5 ticks of simulated time whatever the factor, and
    a slip as well."""
    period = DT / rf
    for policy in ("catch-up", "slip"):
        clock, pacer = started(policy, rf=rf, max_catchup=1)
        pacer.wait()
        clock.advance(3.5 * period)  # tick 1 was due 1 period in: 2.5 late
        pacer.wait()
        assert pacer.statistics().behind == pytest.approx(2.5 * DT), policy


def test_catch_up_under_sustained_overload_never_exceeds_the_cap() -> None:
    clock, pacer = started("catch-up", max_catchup=4)
    in_a_row = 0
    most_in_a_row = 0
    for _ in range(200):
        before = pacer.statistics()
        pacer.wait()
        after = pacer.statistics()
        if after.overruns > before.overruns:
            in_a_row += 1
        if after.realigns > before.realigns:
            assert in_a_row == 4, "the 4th late tick in a row realigns"
            in_a_row = 0
        most_in_a_row = max(most_in_a_row, in_a_row)
        clock.advance(1.5 * DT)  # every tick's work is longer than a period
    stats = pacer.statistics()
    assert most_in_a_row == 3  # never four late ticks without realigning at the fourth
    assert stats.overruns == 199  # every tick after tick 0
    assert stats.realigns == 199 // 4
    # Each realign drops the backlog its fourth late tick found: the backlog grows by
    # 0.5 dt a tick (0.5, 1, 1.5, then 2 dt at the fourth).
    assert stats.behind == pytest.approx(stats.realigns * 2.0 * DT)


def test_catch_up_with_max_catchup_one_behaves_like_slip() -> None:
    runs: dict[str, list[tuple[int, float, float, float, int]]] = {}
    cases: tuple[tuple[PacerPolicy, int], ...] = (("catch-up", 1), ("slip", 20))
    for policy, cap in cases:
        clock, pacer = started(policy, max_catchup=cap)
        starts = []
        for k in range(50):
            starts.append(copy(pacer.wait()))
            clock.advance((5.5 if k % 7 == 0 else 0.4) * DT)
        runs[policy] = starts
    assert runs["catch-up"] == runs["slip"]


def test_skip_drops_missed_ticks_and_returns_to_the_original_grid() -> None:
    clock, pacer = started("skip")
    pacer.wait()
    clock.advance(5.5 * DT)
    tick = pacer.wait()
    assert (tick.index, tick.skipped) == (6, 5)
    assert tick.deadline == T0 + 6 * DT  # on the original grid, not now + dt
    assert tick.start == tick.deadline
    assert tick.lateness == 0.0
    tick = pacer.wait()
    assert (tick.index, tick.skipped, tick.deadline) == (7, 0, T0 + 7 * DT)
    stats = pacer.statistics()
    assert (stats.skipped, stats.overruns, stats.slips, stats.realigns) == (5, 1, 0, 0)
    assert stats.ticks == 3  # ticks 0, 6, 7: skipped ticks are not run


def test_skip_onto_a_deadline_that_is_exactly_now_runs_it_without_sleeping() -> None:
    clock, pacer = started("skip")
    pacer.wait()
    clock.advance(5 * DT)  # now == deadline of tick 5 exactly (same float expression)
    sleeps = clock.sleep_calls
    tick = pacer.wait()
    assert (tick.index, tick.skipped, tick.lateness) == (5, 4, 0.0)
    assert clock.sleep_calls == sleeps


@pytest.mark.parametrize("m", range(2, 40))
def test_skip_onto_an_exact_deadline_whose_quotient_rounds_up_runs_that_tick(m: int) -> None:
    """Skip releases the first grid tick due at or after now, even where
    ``(now - t0) / period`` rounds up past the integer (m = 3, 4, 8, 9, ... at this T0):
    the tick due exactly now runs, not the one after it."""
    clock, pacer = started("skip")
    pacer.wait()
    clock.advance(m * DT)  # now == deadline of tick m exactly (same float expression)
    tick = pacer.wait()
    assert (tick.index, tick.skipped, tick.lateness) == (m, m - 1, 0.0)
    assert tick.deadline == T0 + m * DT


def test_slip_moves_the_schedule_by_the_overrun() -> None:
    clock, pacer = started("slip")
    pacer.wait()
    clock.advance(5.5 * DT)
    tick = pacer.wait()
    # The late tick runs at once and reports its lateness against the old deadline...
    assert (tick.index, tick.skipped, tick.deadline) == (1, 0, T0 + DT)
    assert tick.lateness == pytest.approx(4.5 * DT)
    slipped_start = tick.start
    # ...and the schedule restarts from it: the next tick is due one period later.
    for k in range(2, 10):
        tick = pacer.wait()
        assert tick.index == k
        assert tick.deadline == slipped_start + (k - 1) * DT
        assert tick.lateness == 0.0
    stats = pacer.statistics()
    assert (stats.slips, stats.overruns, stats.skipped, stats.realigns) == (1, 1, 0, 0)
    assert stats.behind == pytest.approx(4.5 * DT)
    pacer.reset_statistics()
    assert pacer.statistics().behind == 0.0


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    max_catchup=st.integers(1, 5),
    work=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=80),
)
def test_invariants_under_random_work(
    policy: PacerPolicy, max_catchup: int, work: list[float]
) -> None:
    clock, pacer = started(policy, max_catchup=max_catchup)
    prev_index = -1
    prev_start = -math.inf
    in_a_row = 0
    skipped = 0
    for w in work:
        before = pacer.statistics()
        tick = pacer.wait()
        after = pacer.statistics()
        overrun = after.overruns > before.overruns
        assert tick.index == prev_index + 1 + tick.skipped
        assert tick.start >= prev_start
        assert tick.start >= tick.deadline
        assert tick.lateness == tick.start - tick.deadline  # no oversleep: only overrun
        assert tick.lateness == 0.0 or overrun
        skipped += tick.skipped
        if policy == "skip":
            assert tick.deadline == T0 + tick.index * DT  # always the original grid
            assert tick.lateness == 0.0
        elif policy == "slip":
            assert after.slips - before.slips == int(overrun)
            if overrun:
                assert pacer.deadline(tick.index + 1) == tick.start + DT
        else:
            assert tick.skipped == 0
            in_a_row = in_a_row + 1 if overrun else 0
            realigned = after.realigns > before.realigns
            assert realigned == (in_a_row == max_catchup)
            if realigned:
                in_a_row = 0
        prev_index, prev_start = tick.index, tick.start
        clock.advance(w * DT)
    stats = pacer.statistics()
    assert stats.ticks == len(work)
    assert stats.skipped == skipped


# -- rate changes and pauses --------------------------------------------------------------------


def test_set_realtime_factor_mid_run_has_no_jump() -> None:
    _, pacer = started()
    for _ in range(10):
        tick = pacer.wait()
    assert tick.deadline == T0 + 9 * DT
    pacer.set_realtime_factor(2.0)  # the last released tick (9) keeps its time
    assert pacer.realtime_factor == 2.0
    assert [pacer.wait().deadline for _ in range(2)] == pytest.approx(
        [T0 + 9.5 * DT, T0 + 10 * DT], abs=1e-12
    )
    pacer.set_realtime_factor(0.5)
    tick = pacer.wait()
    assert (tick.index, tick.lateness) == (12, 0.0)
    assert tick.deadline == pytest.approx(T0 + 12 * DT, abs=1e-12)
    assert pacer.deadline(112) == pytest.approx(T0 + 212 * DT, abs=1e-12)
    assert pacer.statistics().overruns == 0


def test_a_faster_factor_after_an_early_tick_starts_from_now() -> None:
    """A tick started early (for a new input) at a slow factor is due up to a whole slow
    period ahead. Re-anchored on that deadline, switching back to real time held every
    tick for the rest of the slow period: 10 s at a factor of 1e-4, with pause and resume
    no help, and stats saying it ran at 1.0."""
    clock, pacer = started(rf=1e-4)  # a 10 s period
    pacer.wait()  # tick 0, on time
    tick = pacer.due()  # tick 1, due 10 s on: an input arrives 1 s on and starts it
    assert tick.deadline == pytest.approx(T0 + 10.0)
    clock.advance(1.0)
    pacer.release(clock.now())
    pacer.set_realtime_factor(1.0)
    switched_at = clock.now()
    tick = pacer.wait()
    assert tick.index == 2
    assert tick.deadline == pytest.approx(switched_at + DT, abs=1e-12)
    assert clock.now() == pytest.approx(switched_at + DT, abs=1e-12)  # not 9 s on
    # Paused and resumed in between, the same.
    clock, pacer = started(rf=1e-4)
    pacer.wait()
    pacer.due()
    clock.advance(1.0)
    pacer.release(clock.now())
    pacer.set_realtime_factor(1.0)
    pacer.pause()
    clock.advance(0.5)
    pacer.resume()
    assert pacer.wait().deadline == pytest.approx(clock.now(), abs=2 * DT)
    assert clock.now() < T0 + 1.6
    # Set while paused (the engine applies a set then): the pause counted once. It held
    # the ticks for as long again as the pause had lasted, 9 s here.
    clock, pacer = started(rf=1e-4)
    pacer.wait()
    pacer.due()
    clock.advance(1.0)
    pacer.release(clock.now())
    pacer.pause()
    clock.advance(20.0)
    pacer.set_realtime_factor(1.0)
    clock.advance(0.5)
    pacer.resume()
    resumed = clock.now()
    assert pacer.wait().deadline <= resumed + DT
    assert clock.now() <= resumed + DT


def test_switching_from_free_running_to_paced_starts_the_grid_now() -> None:
    clock, pacer = started(rf=0.0)
    for _ in range(5):
        pacer.wait()
        clock.advance(0.1 * DT)
    switched_at = clock.now()
    pacer.set_realtime_factor(1.0)
    tick = pacer.wait()
    assert (tick.index, tick.deadline, tick.lateness) == (5, switched_at, 0.0)
    tick = pacer.wait()
    assert tick.deadline == switched_at + DT
    assert pacer.statistics().overruns == 0


def test_pacing_a_paused_free_running_pacer_starts_the_grid_at_resume() -> None:
    clock, pacer = started(rf=0.0)
    for _ in range(3):
        pacer.wait()
    pacer.pause()
    clock.advance(5 * DT)
    pacer.set_realtime_factor(1.0)
    clock.advance(5 * DT)
    pacer.resume()
    resumed_at = clock.now()
    sleeps = clock.sleep_calls
    tick = pacer.wait()
    assert (tick.index, tick.deadline, tick.lateness) == (3, resumed_at, 0.0)
    assert clock.sleep_calls == sleeps
    assert pacer.wait().deadline == resumed_at + DT


def test_resume_shifts_the_schedule_by_the_pause() -> None:
    clock, pacer = started()
    for _ in range(5):
        pacer.wait()
    clock.advance(0.3 * DT)
    pacer.pause()
    assert pacer.paused
    with pytest.raises(SimulationError, match="unpaused"):
        pacer.wait()
    clock.advance(100 * DT)
    pacer.resume()
    tick = pacer.wait()
    assert (tick.index, tick.lateness) == (5, 0.0)
    assert tick.deadline == pytest.approx(T0 + 105 * DT, abs=1e-12)  # same phase, shifted
    stats = pacer.statistics()
    assert stats.overruns == 0
    # The pause is not counted as wall time: 5 tick intervals in 5 active periods.
    assert stats.realtime_factor_actual == pytest.approx(1.0, rel=1e-9)
    assert stats.elapsed == pytest.approx(5 * DT, rel=1e-9)
    assert stats.simulated / stats.elapsed == pytest.approx(stats.realtime_factor_actual)
    assert stats.behind == 0.0  # the next tick was still ahead: nothing dropped


def test_resume_forgives_a_backlog_so_no_catch_up_burst_follows() -> None:
    clock, pacer = started("catch-up")
    pacer.wait()
    clock.advance(3.5 * DT)  # ticks 1..3 are overdue
    pacer.pause()
    clock.advance(10 * DT)
    pacer.resume()
    resumed_at = clock.now()
    ticks = [copy(pacer.wait()) for _ in range(3)]
    assert [t[0] for t in ticks] == [1, 2, 3]
    assert [t[1] for t in ticks] == pytest.approx([resumed_at + k * DT for k in range(3)])
    assert all(t[3] == 0.0 for t in ticks)
    assert pacer.statistics().overruns == 0
    # Tick 1 was due 1 dt after start, 11 dt once shifted by the pause, and the resume
    # came at 13.5 dt: 2.5 ticks of schedule forgiven, counted as dropped.
    assert pacer.statistics().behind == pytest.approx(2.5 * DT)


def test_pause_and_resume_are_idempotent_and_need_a_started_pacer() -> None:
    clock, pacer = make()
    with pytest.raises(SimulationError, match="before start"):
        pacer.pause()
    pacer.start()
    pacer.resume()  # not paused: no-op
    pacer.wait()
    pacer.pause()
    paused_at = clock.now()
    clock.advance(DT)
    pacer.pause()  # already paused: must not move the pause start
    clock.advance(DT)
    pacer.resume()
    resumed_at = clock.now()  # read before wait(), which sleeps to the deadline
    # abs, not approx's default rel=1e-6: at T0 ~ 1000 s that is a whole 1 ms period.
    assert pacer.wait().deadline == pytest.approx(T0 + DT + (resumed_at - paused_at), abs=1e-12)


# -- statistics ------------------------------------------------------------------------------


def test_statistics_count_injected_lateness_exactly() -> None:
    pattern = [0.0, 1e-4, 3e-4, 2e-3]
    calls = 0

    def oversleep(deadline: float) -> float:
        nonlocal calls
        calls += 1
        return pattern[(calls - 1) % len(pattern)]

    clock = FakeClock(T0, oversleep=oversleep)
    # A 10 ms period so that 2 ms of oversleep never becomes an overrun.
    pacer = Pacer(DT, clock, realtime_factor=0.1)
    pacer.start()
    for _ in range(401):  # tick 0 is due at start (no sleep), then 100 of each pattern value
        pacer.wait()
    assert calls == 400
    stats = pacer.statistics()
    assert stats.ticks == 401
    assert stats.overruns == 0
    assert stats.late(0.00025) == 200
    assert stats.late(0.001) == 100
    assert stats.lateness.count == 401
    assert stats.lateness.max == pytest.approx(2e-3, rel=1e-9)
    assert stats.lateness.mean == pytest.approx(100 * sum(pattern) / 401, rel=1e-9)
    # 101 zeros, then 100 each of 0.1 ms, 0.3 ms, 2 ms: the 201st value is 0.1 ms.
    assert stats.lateness.p50 == pytest.approx(1e-4, rel=0.03)
    assert stats.lateness.p99 == pytest.approx(2e-3, rel=1e-9)
    with pytest.raises(ConfigError, match="one of"):
        stats.late(0.0005)


def test_reset_statistics_keeps_the_schedule() -> None:
    clock, pacer = started("skip")
    pacer.wait()
    clock.advance(3.5 * DT)
    pacer.wait()
    assert pacer.statistics().skipped == 3
    pacer.reset_statistics()
    stats = pacer.statistics()
    assert (stats.ticks, stats.skipped, stats.overruns, stats.lateness.count) == (0, 0, 0, 0)
    assert math.isnan(stats.realtime_factor_actual)
    tick = pacer.wait()
    assert (tick.index, tick.deadline) == (5, T0 + 5 * DT)


# -- configuration and misuse ------------------------------------------------------------------


@pytest.mark.parametrize("dt", [0.0, -0.001, math.nan, math.inf, True, "0.001"])
def test_bad_dt_is_a_config_error(dt: object) -> None:
    with pytest.raises(ConfigError, match="dt must be"):
        Pacer(dt, FakeClock())  # type: ignore[arg-type]


@pytest.mark.parametrize("rf", [-1.0, math.nan, math.inf, False, 1e308, 1e6 * (1 + 1e-15)])
def test_bad_realtime_factor_is_a_config_error(rf: float) -> None:
    """1e308 was allowed: the schedule it dropped in simulated seconds (``behind``,
    lateness times the factor) overflowed to inf, which no stats message can carry. The
    bound is the control schema's."""
    assert pacer_module.MAX_REALTIME_FACTOR == MAX_REALTIME_FACTOR == 1e6
    with pytest.raises(ConfigError, match="realtime_factor must be"):
        Pacer(DT, FakeClock(), realtime_factor=rf)
    _, pacer = started()
    with pytest.raises(ConfigError, match="realtime_factor must be"):
        pacer.set_realtime_factor(rf)
    assert pacer.realtime_factor == 1.0


def test_bad_policy_and_max_catchup_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="catch-up, skip, slip"):
        Pacer(DT, FakeClock(), policy="catchup")  # type: ignore[arg-type]
    for cap in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="max_catchup"):
            Pacer(DT, FakeClock(), max_catchup=cap)  # type: ignore[arg-type]


def test_wait_before_start_and_double_start_are_simulation_errors() -> None:
    _, pacer = make()
    with pytest.raises(SimulationError, match="started"):
        pacer.wait()
    with pytest.raises(SimulationError, match="not started"):
        pacer.deadline(0)
    pacer.start()
    with pytest.raises(SimulationError, match="already"):
        pacer.start()


def test_wait_reuses_one_tick_object() -> None:
    _, pacer = started()
    assert pacer.wait() is pacer.wait()


# -- clocks ---------------------------------------------------------------------------------


def test_fake_clock_moves_only_when_told() -> None:
    extra: list[float] = []

    def oversleep(deadline: float) -> float:
        extra.append(deadline)
        return 0.25

    clock = FakeClock(5.0, wall_offset=100.0, oversleep=oversleep)
    assert (clock.now(), clock.wall()) == (5.0, 105.0)
    clock.sleep_until(4.0)  # in the past: returns at once, no oversleep
    assert clock.now() == 5.0
    clock.sleep_until(6.0)
    assert clock.now() == 6.25
    assert extra == [6.0]
    assert clock.sleep_calls == 2
    clock.advance(0.5)
    clock.set(10.0)
    assert clock.now() == 10.0
    with pytest.raises(ConfigError, match="monotonic"):
        clock.advance(-0.1)
    with pytest.raises(ConfigError, match="monotonic"):
        clock.set(9.0)
    with pytest.raises(ConfigError, match="oversleep"):
        FakeClock(oversleep=lambda d: -1.0).sleep_until(1.0)


def test_fake_clock_waits_only_for_a_deadline_in_the_future() -> None:
    """A deadline equal to now is no wait: a pacer that is exactly on time must not be
    handed a simulated late wake-up it never slept for (the oversleep is called only
    for a real wait), and the call is still counted."""
    woken: list[float] = []

    def oversleep(deadline: float) -> float:
        woken.append(deadline)
        return 0.125

    clock = FakeClock(2.0, oversleep=oversleep)
    clock.sleep_until(2.0)
    assert clock.now() == 2.0
    assert woken == []
    assert clock.sleep_calls == 1


def test_fake_clock_refuses_nan_and_allows_setting_the_present() -> None:
    """NaN compares false both ways, so a check written as ``< 0`` would let it through
    and poison every later deadline; setting the time it already has is no step back."""
    clock = FakeClock(3.0)
    clock.set(3.0)
    assert clock.now() == 3.0
    with pytest.raises(ConfigError, match="monotonic"):
        clock.advance(math.nan)
    with pytest.raises(ConfigError, match="monotonic"):
        clock.set(math.nan)
    assert clock.now() == 3.0


def test_system_clock_rejects_a_bad_spin() -> None:
    for spin in (-1e-4, math.nan, math.inf):
        with pytest.raises(ConfigError, match="spin"):
            SystemClock(spin)


def test_system_clock_smoke_never_wakes_before_the_deadline() -> None:
    # The one real-sleep test. Coarse on purpose: it checks only the lower bound, because
    # an upper bound on a shared CI machine would flake.
    for clock in (SystemClock(), SystemClock(spin=0.0)):
        for delay in (0.0, 0.0001, 0.003):
            deadline = clock.now() + delay
            clock.sleep_until(deadline)
            assert clock.now() >= deadline
        assert clock.wall() == pytest.approx(time.time(), abs=60.0)  # Unix time, not uptime


# -- recent windows ---------------------------------------------------------------------


def run_for(clock: FakeClock, pacer: Pacer, seconds: float) -> None:
    for _ in range(round(seconds / DT)):
        pacer.wait()


def test_a_burst_of_late_ticks_is_in_the_1s_window_and_gone_from_it_a_second_later() -> None:
    clock, pacer = started()
    run_for(clock, pacer, 2.0)
    pacer.wait()
    clock.advance(0.005)  # one tick's work takes 5 ms: the next ticks run late, catching up
    run_for(clock, pacer, 0.2)
    during = pacer.statistics()
    one, ten = during.recent
    assert (one.seconds, ten.seconds) == (1.0, 10.0)
    assert one.lateness.over_threshold(0.001) == during.late(0.001) == 3  # 4, 3, 2 ms
    assert one.lateness.max == pytest.approx(0.004, rel=1e-6)
    assert one.late_share(0.001) > 0.0
    run_for(clock, pacer, 1.2)
    after = pacer.statistics()
    one, ten = after.recent
    assert one.lateness.over_threshold(0.001) == 0
    assert one.lateness.max == 0.0
    assert one.ticks == 1000
    assert one.realtime_factor_actual == pytest.approx(1.0)
    # The longer window and the since-start figures keep the burst.
    assert ten.lateness.over_threshold(0.001) == after.late(0.001) == during.late(0.001)
    assert after.lateness.max == pytest.approx(0.004, rel=1e-6)


def test_the_1s_window_real_time_factor_shows_a_slow_spell_the_total_dilutes() -> None:
    clock, pacer = started("slip")
    run_for(clock, pacer, 20.0)
    for _ in range(1500):  # 1.5 s of ticks taking 2 ms each: half real time
        pacer.wait()
        clock.advance(0.002)
    stats = pacer.statistics()
    assert stats.recent[0].realtime_factor_actual == pytest.approx(0.5, rel=1e-3)
    assert stats.realtime_factor_actual > 0.9


def test_the_last_ticks_before_a_pause_count_in_the_windows_while_paused() -> None:
    clock, pacer = started()
    run_for(clock, pacer, 2.05)
    pacer.pause()
    clock.advance(0.5)
    stats = pacer.statistics()
    assert stats.recent[1].ticks == stats.ticks == 2050
    clock.advance(1.0)
    assert pacer.statistics().recent[0].ticks == 0  # a second later the 1 s window is empty


@given(
    runs=st.lists(
        st.lists(st.tuples(st.booleans(), st.floats(0.0, 0.003)), min_size=1, max_size=12),
        min_size=1,
        max_size=8,
    ),
    burst=st.integers(0, 3),
)
def test_ran_run_leaves_what_ran_leaves_tick_by_tick(
    runs: list[list[tuple[bool, float]]], burst: int
) -> None:
    """``ran_run`` for a run of ticks (caught up or not, each starting some time after
    its deadline) leaves the overruns, the burst, the tick and the next index that
    ``ran`` called for each tick in turn leaves, from a burst already under way."""
    _, by_tick = started()
    _, by_run = started()
    for pacer in (by_tick, by_run):
        pacer._burst = burst
    k = 0
    for run in runs:
        for caught_up, late in run:
            deadline = T0 + k * DT
            expected = by_tick.ran(k, deadline, deadline + late, caught_up)
            k += 1
        flags = [c for c, _ in run]
        trailing = len(flags) - max((i + 1 for i, c in enumerate(flags) if not c), default=0)
        got = by_run.ran_run(len(run), k - 1, deadline, deadline + late, sum(flags), trailing)
        assert (got.index, got.deadline, got.start, got.lateness, got.skipped) == (
            expected.index,
            expected.deadline,
            expected.start,
            expected.lateness,
            expected.skipped,
        )
        assert by_run.burst == by_tick.burst
        assert by_run._overruns == by_tick._overruns
        assert by_run.next_index == by_tick.next_index == k


# -- gaps a mutation audit found ---------------------------------------------------------------


def test_catch_up_counts_only_late_ticks_in_a_row_towards_max_catchup() -> None:
    """An on-time tick ends a catch-up burst: two late ticks, an on-time one, then one
    late tick is not the third late tick in a row, so ``max_catchup=3`` does not realign."""
    clock, pacer = started("catch-up", max_catchup=3)
    pacer.wait()
    clock.advance(2.5 * DT)  # ticks 1 and 2 overdue
    pacer.wait()
    pacer.wait()
    assert pacer.burst == 2
    tick = pacer.wait()  # tick 3, due in 0.5 dt: on time
    assert tick.lateness == 0.0
    assert pacer.burst == 0
    clock.advance(1.5 * DT)  # tick 4 overdue by 0.5 dt
    tick = pacer.wait()
    assert tick.lateness == pytest.approx(0.5 * DT)
    stats = pacer.statistics()
    assert (stats.overruns, stats.realigns) == (3, 0)
    assert pacer.burst == 1


def test_resume_ends_a_catch_up_burst() -> None:
    """A pause forgives the backlog and the burst with it: a late tick after the resume
    is the first of a new burst, not the third of the one before the pause."""
    clock, pacer = started("catch-up", max_catchup=3)
    pacer.wait()
    clock.advance(3.5 * DT)  # ticks 1..3 overdue
    pacer.wait()
    pacer.wait()
    assert pacer.burst == 2
    pacer.pause()
    clock.advance(10 * DT)
    pacer.resume()
    assert pacer.burst == 0
    pacer.wait()  # on time at the resume
    clock.advance(1.5 * DT)
    pacer.wait()  # late again: burst 1
    assert pacer.burst == 1
    assert pacer.statistics().realigns == 0


def test_a_tick_released_before_its_deadline_is_not_late_by_a_negative_amount() -> None:
    """Lateness is never below 0: a tick started early (for an input) has lateness 0."""
    clock, pacer = started(rf=0.01)  # a 0.1 s period
    pacer.wait()
    tick = pacer.due()
    clock.advance(0.02)
    tick = pacer.release(clock.now())
    assert tick.start < tick.deadline
    assert tick.lateness == 0.0
    assert pacer.statistics().lateness.max == 0.0


def test_setting_the_same_factor_after_an_early_tick_keeps_the_schedule() -> None:
    """Setting the realtime factor it already has changes nothing, even after a tick
    started early (whose deadline is still ahead): the next deadline stays put."""
    clock, pacer = started(rf=0.01)  # a 0.1 s period
    pacer.wait()
    pacer.due()
    clock.advance(0.02)
    pacer.release(clock.now())  # tick 1 started 0.08 s early
    before = (pacer.anchor(), pacer.deadline(2))
    pacer.set_realtime_factor(0.01)
    assert (pacer.anchor(), pacer.deadline(2)) == before
    assert pacer.deadline(2) == pytest.approx(T0 + 0.2, abs=1e-12)


def test_ran_clears_the_skipped_count_a_skip_left_on_the_tick() -> None:
    """:meth:`Pacer.ran` reports a tick run on the grid: the reused tick's ``skipped`` is
    0, not what the last skip left on it."""
    clock, pacer = started("skip")
    pacer.wait()
    clock.advance(5.5 * DT)
    assert pacer.wait().skipped == 5
    deadline = pacer.deadline(7)
    tick = pacer.ran(7, deadline, deadline)
    assert (tick.index, tick.skipped, tick.lateness) == (7, 0, 0.0)
