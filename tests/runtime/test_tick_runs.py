"""Runs of compiled ticks: the tick thread stays in C across ticks and the I/O side turns
the ring's rows into frames (``TickLoop``, ``Engine(runs=True)``)."""

from __future__ import annotations

import contextlib
import math
import os
import select
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.build import build
from spikestream.runtime.clock import SystemClock
from spikestream.runtime.engine import Engine
from spikestream.runtime.native_pacing import (
    ADAPT_TICKS,
    CALM_SHARE,
    CALM_WINDOWS,
    CONTENDED_SHARE,
    HOT_WINDOWS,
    L_ADAPT_TICKS,
    L_ARMED,
    L_CALM_WINDOWS,
    L_CAPACITY,
    L_COPIES,
    L_DELAY_AT,
    L_DELAY_NS,
    L_EARLY,
    L_EARLY_TICKS,
    L_EVENTFD,
    L_FLOOR_NS1,
    L_FLOOR_NS2,
    L_HEAD,
    L_HELPER_HOLD_NS,
    L_HELPER_LAG_NS,
    L_IDLE_TICKS,
    L_INLINE,
    L_MAIN_LAG_EVERY,
    L_MAIN_LAG_NS,
    L_NEXT,
    L_PIN,
    L_PROCSTAT,
    L_RING,
    L_ROW_BYTES,
    L_SCHEDSTAT,
    L_TAIL,
    L_TAKE_NS,
    LOOP_COLUMNS,
    RUN_CONTROL,
    RUN_FULL,
    RUN_OVERRUN,
    T_BUSY_SPIN,
    TIME_COLUMNS,
    SpinAdapter,
    open_schedstat,
)
from spikestream.runtime.native_tick import (
    FLAG,
    RING_BYTES,
    RING_ROWS,
    ROW_HEADER_BYTES,
    TAKE_AFTER,
    NativeTick,
    Row,
    TickLoop,
)
from spikestream.runtime.slots import NEW_VALUE
from spikestream.sim import Simulator
from spikestream.sim.native import extension
from spikestream.spec import load_network, parse_network
from spikestream_client.codec.control import ControlCommand

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def _seed_loop(busy_spin: float | None = None) -> tuple[Simulator, NativeTick, TickLoop]:
    sim = Simulator(build(load_network(SEED)))
    native = NativeTick(sim, [(_slot(sim), sim.inputs["u"])], spin=0.0)
    views = [sim.probe(name) for name in sorted(sim.model.probes)]
    return sim, native, TickLoop(native, [sim.inputs["u"]], views, busy_spin)


def _slot(sim: Simulator):  # type: ignore[no-untyped-def]
    from spikestream.runtime.slots import InputSlot

    inp = sim.model.inputs["u"]
    return InputSlot("u", inp.dim, inp.default, inp.ttl)


def test_the_ring_holds_ring_rows_or_ring_bytes_and_never_fewer_than_two_rows() -> None:
    """The ring's size: RING_ROWS rows of a small tick; fewer when they would pass
    RING_BYTES; but never fewer than two, whatever a row's size, so that the tick
    thread can fill one row while the reader still holds the other (with one, every
    run would return full after a single tick)."""
    sim, native, loop = _seed_loop()
    assert loop.capacity == RING_ROWS
    row_bytes = int(loop.loop[L_ROW_BYTES])
    assert loop.nbytes == RING_ROWS * row_bytes
    mid = np.zeros(RING_BYTES // 8 // 10)  # a tenth of RING_BYTES: ten rows fit
    ten = TickLoop(native, [sim.inputs["u"]], [mid])
    assert ten.capacity == RING_BYTES // int(ten.loop[L_ROW_BYTES]) == 9
    huge = np.zeros(RING_BYTES // 8 + 1)  # one row alone passes RING_BYTES
    two = TickLoop(native, [sim.inputs["u"]], [huge])
    assert two.capacity == 2
    assert two.nbytes == 2 * int(two.loop[L_ROW_BYTES])
    for each in (loop, ten, two):
        each.close()


def test_the_c_and_python_loop_columns_agree() -> None:
    ext = extension()
    assert ext is not None, "spikestream.sim._native was not built"
    assert ext.LOOP_COLUMNS == LOOP_COLUMNS
    assert ext.TIME_COLUMNS == TIME_COLUMNS
    assert ext.ROW_HEADER_BYTES == ROW_HEADER_BYTES


def test_a_run_steps_as_single_ticks_do_bit_for_bit() -> None:
    """The rows of a run hold what the one-call tick computes, tick for tick, and each
    tick started at or after its deadline on the given grid."""
    sim, native, loop = _seed_loop()
    ref = Simulator(build(load_network(SEED)))
    ref_tick = NativeTick(ref, [(_slot(ref), ref.inputs["u"])], spin=0.0)
    names = sorted(sim.model.probes)
    for box in (native.mailboxes[0], ref_tick.mailboxes[0]):
        box.post(np.array([0.7]), time.perf_counter(), None)
    period = 0.0005
    # Run until the ring is full; a stall of the test process longer than a period is an
    # overrun that ends a run early: start the next run on a fresh grid.
    while True:
        k = int(loop.loop[L_NEXT])
        reason = loop.run(time.perf_counter() + 0.001, k, period, k, [(10**9, 10**9)])
        if reason == RUN_FULL:
            break
        assert reason == RUN_OVERRUN
    rows = loop.take()
    assert len(rows) == loop.capacity == int(loop.loop[L_NEXT])
    for k, row in enumerate(rows):
        ref_tick(-math.inf)
        assert int(row.index[0]) == k
        start, deadline = row.meta[0], row.meta[1]
        assert start >= deadline
        if k:
            assert deadline - rows[k - 1].meta[1] >= period - 1e-9
        assert row.meta[2] <= row.meta[3]  # wall clock at start <= at end
        # When the inputs and kernels were done: on the same clock as start, after it.
        assert start <= row.meta[4] < start + 1.0
        for name, value in zip(names, row.probes, strict=True):
            np.testing.assert_array_equal(value, ref.probe(name), err_msg=f"{name} tick {k}")
        np.testing.assert_array_equal(row.inputs[0], np.asarray([0.7], sim.inputs["u"].dtype))
        assert int(row.state[0, FLAG]) == (NEW_VALUE if k == 0 else 0)
    loop.done(len(rows))
    assert loop.take() == []


def _early_run(
    early: bool, period: float, stages: bool
) -> tuple[list[Row], list[float], int] | None:
    """Seven ticks of ``period`` s from a grid ``t0 + k * period`` (the seed, or with
    ``stages`` a chain in two stages on two threads), with u posted at 2.2 and 2.5 periods
    (between the deadlines of ticks 2 and 3). The rows, the posts' times and the ticks
    counted as started early, or None if this machine stalled the run past a deadline (an
    overrun)."""
    if stages:
        _, native, loop = _chain_loop(True, early=early)
        assert loop.stages is not None
    else:
        sim, native, _ = _seed_loop()
        views = [sim.probe(name) for name in sorted(sim.model.probes)]
        loop = TickLoop(native, [sim.inputs["u"]], views, early=early)
    assert int(loop.loop[L_EARLY]) == early
    loop.loop[L_CAPACITY] = 7
    t0 = time.perf_counter() + period
    posts: list[float] = []

    def poster() -> None:
        for at, value in ((2.2, 0.3), (2.5, -0.3)):
            time.sleep(max(0.0, t0 + at * period - time.perf_counter()))
            posts.append(time.perf_counter())
            native.mailboxes[0].post(np.full(native.mailboxes[0].dim, value), posts[-1], None)

    thread = threading.Thread(target=poster)
    thread.start()
    reason = loop.run(t0, 0, period, 0, [(10**9, 10**9)])
    thread.join()
    return (loop.take(), posts, int(loop.loop[L_EARLY_TICKS])) if reason == RUN_FULL else None


@pytest.mark.parametrize(("early", "stages"), [(True, False), (False, False), (True, True)])
def test_a_tick_starts_as_an_input_arrives_but_never_before_the_previous_deadline(
    early: bool, stages: bool
) -> None:
    """``early``: the tick after a new input starts as it is posted, not at its deadline;
    an input posted once that tick has begun starts the next tick at the previous deadline,
    not before (at most one tick ahead of the grid); ticks without a new input start at
    their deadlines. Without, every tick starts at or after its deadline and takes the
    latest value then. With two stages, whichever thread ran the tick before, alike."""
    period = 0.1
    for _ in range(3):  # a stall of this machine past a 100 ms deadline: run again
        if (run := _early_run(early, period, stages)) is not None:
            break
    else:
        pytest.fail("three runs of seven 100 ms ticks each overran")
    rows, posts, counted = run
    assert counted == (2 if early else 0)  # ticks 3 and 4
    starts = [float(row.meta[0]) for row in rows]
    deadlines = [float(row.meta[1]) for row in rows]
    values = [float(row.inputs[0][0]) for row in rows]
    for k in (0, 1, 2, 5, 6):
        assert starts[k] >= deadlines[k], k
    u = float(rows[0].inputs[0].dtype.type(0.3))  # as the simulator holds it
    if early:
        assert posts[0] <= starts[3] < deadlines[3] - period / 2
        assert deadlines[3] <= starts[4] < deadlines[4] - period / 2
        assert posts[1] <= starts[4]
        assert values[3:5] == [u, -u]
    else:
        assert starts[3] >= deadlines[3]
        assert starts[4] >= deadlines[4]
        assert values[3:5] == [-u, -u]


def _room_for_one_row(loop: TickLoop) -> None:
    """A ring of one row, so that each run returns after one tick: the loop's capacity
    (which the compiled loop writes rows by) and the reader's (which take() reads them
    by) alike; with the first alone, take() read the second run's row from a slot the
    loop never wrote."""
    loop.loop[L_CAPACITY] = loop.capacity = 1


def test_a_value_posted_between_runs_is_new_to_the_next_run_s_first_tick() -> None:
    """A value posted while no run is under way (before the first, or while the pacer
    handles an overrun) starts the next run's first tick at once with early starts; once
    a tick has applied it, the next run's first tick waits for its deadline."""
    sim, native, _ = _seed_loop()
    views = [sim.probe(name) for name in sorted(sim.model.probes)]
    loop = TickLoop(native, [sim.inputs["u"]], views, early=True)
    _room_for_one_row(loop)
    period = 0.1
    native.mailboxes[0].post(np.array([0.3]), time.perf_counter(), None)
    starts = []
    for _ in range(2):
        k = int(loop.loop[L_NEXT])
        assert loop.run(time.perf_counter() + period, k, period, k, []) == RUN_FULL
        (row,) = loop.take()
        assert int(row.index[0]) == k  # this run's row
        starts.append(float(row.meta[0]) - float(row.meta[1]))  # before the deadline: < 0
        loop.done(1)
    assert starts[0] < -period / 2
    assert 0.0 <= starts[1] < period / 2  # a real row's: at (or just after) its deadline


def test_a_value_being_written_starts_no_tick_until_it_is_whole() -> None:
    """A writer stopped between the two halves of its sequence lock (the number odd: the
    I/O thread preempted mid-post) does not start a tick early: that tick would find no
    new value, and the value, whole a moment later, would start the next tick early too,
    two early ticks for one message (seen once in a full run, 12 for 10 inputs). Once
    the write completes, the next run's first tick starts at once and applies it."""
    sim, native, _ = _seed_loop()
    views = [sim.probe(name) for name in sorted(sim.model.probes)]
    loop = TickLoop(native, [sim.inputs["u"]], views, early=True)
    _room_for_one_row(loop)
    period = 0.1
    box = native.mailboxes[0]
    lock = box._state[box._index]  # this input's state row; column 0 is the lock
    lock[0] += 1  # a write begun, and not finished
    starts, values = [], []
    for whole in (False, True):
        if whole:
            box.box[:] = [time.perf_counter(), math.inf, 0.3]
            lock[0] += 1
        k = int(loop.loop[L_NEXT])
        assert loop.run(time.perf_counter() + period, k, period, k, []) == RUN_FULL
        (row,) = loop.take()
        assert int(row.index[0]) == k  # this run's row
        starts.append(float(row.meta[0]) - float(row.meta[1]))  # before the deadline: < 0
        values.append(row.inputs[0][0])
        loop.done(1)
    assert starts[0] >= 0.0  # at its deadline: nothing new was whole
    assert starts[1] < -period / 2  # at once
    assert values == [0.0, values[1].dtype.type(0.3)]
    assert int(loop.loop[L_EARLY_TICKS]) == 1


def test_a_run_returns_at_once_when_interrupted_or_overrun() -> None:
    _, _, loop = _seed_loop()
    loop.interrupt()
    assert loop.run(time.perf_counter() + 10.0, 0, 0.001, 0, []) == RUN_CONTROL
    assert loop.ticks_run == 0
    loop.clear_interrupt()
    # The first deadline has passed: the pacer's policy decides, not the loop.
    assert loop.run(time.perf_counter() - 1.0, 0, 0.001, 0, []) == RUN_OVERRUN
    assert loop.ticks_run == 0


def test_late_ticks_run_at_once_until_the_burst_reaches_max_catchup() -> None:
    """Under catch-up, a run releases late ticks at once (flagged), as Pacer.due() does,
    and returns the one that would reach max_catchup to the pacer; other policies return
    at the first overrun."""
    _, _, loop = _seed_loop()
    period = 0.001
    t0 = time.perf_counter() - 0.05  # 50 ticks behind
    assert loop.run(t0, 0, period, 0, [], burst=0, max_catchup=4) == RUN_OVERRUN
    assert loop.ticks_run == 3  # the 4th late tick in a row is the pacer's
    rows = loop.take()
    assert [int(r.index[1]) for r in rows] == [1, 1, 1]
    assert all(r.meta[0] > r.meta[1] + 0.04 for r in rows)  # late, and not waited for
    loop.done(3)
    assert int(loop.loop[L_NEXT]) == 3
    # A burst already under way counts: two more make four.
    assert loop.run(t0, 0, period, 3, [], burst=2, max_catchup=4) == RUN_OVERRUN
    assert loop.ticks_run == 1
    loop.done(len(loop.take()))
    assert loop.run(t0, 0, period, 4, [], burst=0, max_catchup=0) == RUN_OVERRUN
    assert loop.ticks_run == 0


def test_the_pacer_counts_caught_up_ticks_as_due_does() -> None:
    """A late tick released by catch-up, recorded as a run records it (the compiled pace
    record) and then told to the pacer (Pacer.ran(caught_up=True)), leaves the statistics
    due() + release() leave; an on-time tick ends the burst."""
    from spikestream.runtime.clock import FakeClock
    from spikestream.runtime.pacer import Pacer

    ext = extension()
    assert ext is not None
    clocks = [FakeClock(), FakeClock()]
    pacers = [Pacer(0.001, c, policy="catch-up", max_catchup=5) for c in clocks]
    for p in pacers:
        p.start()
    for c in clocks:
        c.advance(0.0035)  # ticks 0-3 are late
    ref, under_test = pacers
    t0, k0 = under_test.anchor()
    for k in range(4):
        tick = ref.due()
        ref.release(clocks[0].now())
        start = clocks[1].now()
        deadline = t0 + (k - k0) * 0.001
        ext.record(2, under_test.pace_record.address, start, start - deadline, 0.0)
        ran = under_test.ran(k, deadline, start, caught_up=True)
        assert tick.index == ran.index == k
        assert ran.lateness == tick.lateness > 0.0
        for c in clocks:
            c.advance(0.0001)
    assert under_test.burst == ref.burst == 4
    for p, c in zip(pacers, clocks, strict=True):
        p.pause()  # puts the windows' filling bucket in its slot
        c.advance(0.2)  # which has ended, so the windows count it
    a, b = ref.statistics(), under_test.statistics()
    assert (a.overruns, a.ticks) == (b.overruns, b.ticks) == (4, 4)
    assert a.lateness == b.lateness
    assert a.recent == b.recent
    assert a.realtime_factor_actual == b.realtime_factor_actual
    assert a.recent[0].ticks == 4
    for p in pacers:
        p.resume()
    under_test.ran(4, t0 + 0.004, t0 + 0.004, caught_up=False)
    assert under_test.burst == 0
    assert under_test.next_index == 5


def _looked_from(rows: list[Row]) -> tuple[int, int, int, int, float, float]:
    """What TickLoop.look should find in these rows, read from their views one by one:
    caught-up rows, those ending the rows in a row, the first with an input changed, and
    the last's index, deadline and start."""
    flags = [int(r.index[1]) for r in rows]
    trailing = len(flags) - max((i + 1 for i, f in enumerate(flags) if not f), default=0)
    changed = next((i for i, r in enumerate(rows) if r.state[:, FLAG].any()), len(rows))
    last = rows[-1]
    return sum(flags), trailing, changed, int(last.index[0]), last.meta[1], last.meta[0]


@pytest.mark.parametrize("behind", [-0.001, 0.003, 10.0])
def test_look_reads_what_the_rows_hold_across_the_ring_s_end(behind: float) -> None:
    """``look`` (one compiled pass) finds in the rows ready what the reader would read
    from each row's views: caught-up ticks and the ones ending the rows, the first row in
    which the input changed, the last row's index, deadline and start. On time, a few
    ticks behind (caught up, then on time) and far behind (every tick caught up); with an
    input posted between runs, so the change falls inside the rows and past the ring's
    end."""
    _, native, loop = _seed_loop()
    cap = loop.capacity
    assert loop.look()[:2] == (0, 0)
    unread = 0
    for value, give_back in ((0.3, cap // 3), (-0.2, cap - 5), (0.8, cap)):
        native.mailboxes[0].post(np.array([value]), time.perf_counter(), None)
        while True:  # until the ring is full (an overrun on a stall starts a fresh grid)
            k = int(loop.loop[L_NEXT])
            reason = loop.run(
                time.perf_counter() - behind, k, 0.0005, k, [(1, 1)], 0, 10**9 if behind > 0 else 0
            )
            if reason == RUN_FULL:
                break
            assert reason == RUN_OVERRUN
        rows = loop.take()
        look = loop.look()
        tail, head = look[:2]
        assert (tail, head) == (int(loop.loop[L_TAIL]), int(loop.loop[L_HEAD]))
        assert [loop.row(r) for r in range(tail, head)] == rows
        caught, trailing, changed, last, deadline, start = _looked_from(rows)
        # The deadline and start are the rows' own doubles, compared exactly.
        assert look[2:] == (caught, trailing, changed, last, deadline, start)
        if behind == 10.0:
            assert caught == trailing == len(rows)
        # The value posted before this run changed the input in the run's first row,
        # which follows the rows still unread from the last one.
        assert changed == unread
        loop.done(give_back)
        unread = len(rows) - give_back
    tail, head = loop.look()[:2]
    loop.done(head - tail)
    tail, head, caught, trailing, changed, last, deadline, start = loop.look()
    assert (head - tail, caught, trailing, changed, last) == (0, 0, 0, 0, -1)
    assert math.isnan(deadline)
    assert math.isnan(start)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(2, 6),
    inputs=st.integers(0, 3),
    tail=st.integers(0, 20),
    data=st.data(),
)
def test_look_reads_any_rows_of_any_inputs_as_python_reads_them(
    capacity: int, inputs: int, tail: int, data: st.DataObject
) -> None:
    """``ring_look`` on a ring laid out as run_ticks lays it out (rows of a header, other
    bytes, then the input state of ``inputs`` inputs), with any catch-up flags and any
    input's flag set in any row, across the ring's end: what Python reads from the rows."""
    ext = extension()
    assert ext is not None
    state_at = ROW_HEADER_BYTES + 8 * data.draw(st.integers(0, 2))  # other copies first
    row_words = state_at // 8 + 5 * inputs + data.draw(st.integers(0, 2))
    ring = np.zeros(capacity * row_words, np.int64)
    loop = np.zeros(LOOP_COLUMNS, np.int64)
    loop[[L_CAPACITY, L_ROW_BYTES, L_RING, L_EVENTFD]] = (
        capacity,
        8 * row_words,
        ring.ctypes.data,
        -1,
    )
    ready = data.draw(st.integers(0, capacity))
    loop[L_TAIL], loop[L_HEAD] = tail, tail + ready
    expected = []
    for k in range(tail, tail + ready):
        row = ring[(k % capacity) * row_words : (k % capacity + 1) * row_words]
        late = data.draw(st.booleans())
        flags = data.draw(st.lists(st.sampled_from([0, 0, 1, 2]), min_size=inputs, max_size=inputs))
        row.view(np.float64)[:2] = (k + 0.25, k + 0.125)  # start, deadline
        row[5], row[6] = 1000 + k, int(late)  # index, flags
        state = row[state_at // 8 : state_at // 8 + 5 * inputs].reshape(inputs, 5)
        state[:, FLAG] = flags
        state[:, :FLAG] = 7  # the other columns never count as a change
        expected.append((late, any(flags), 1000 + k, k + 0.25, k + 0.125))
    got = ext.ring_look(int(loop.ctypes.data), state_at, inputs)
    late = [e[0] for e in expected]
    trailing = len(late) - max((i + 1 for i, x in enumerate(late) if not x), default=0)
    changed = next((i for i, e in enumerate(expected) if e[1]), ready)
    last = (expected[-1][2], expected[-1][4], expected[-1][3]) if expected else None
    assert got[:5] == (tail, tail + ready, sum(late), trailing, changed)
    if last is None:
        assert got[5] == -1
        assert math.isnan(got[6])
        assert math.isnan(got[7])
    else:
        assert got[5:] == last
    assert loop[L_ARMED] == 1  # armed for the next row's wake-up


def test_look_refuses_a_malformed_loop_or_input_state() -> None:
    ext = extension()
    assert ext is not None
    _, _, loop = _seed_loop()
    at, inputs = loop._state_at
    row_bytes = int(loop.loop[L_ROW_BYTES])
    for bad_at, bad_inputs in (
        (0, inputs),  # inside the row's header
        (at + 4, inputs),  # not aligned
        (row_bytes - 8, 1),  # past the row's end
        (at, -1),
        (at, row_bytes),
    ):
        with pytest.raises(ValueError, match="ring_look: the input state"):
            ext.ring_look(loop.address, bad_at, bad_inputs)
    loop.loop[L_HEAD] = loop.capacity + 1  # more rows than the ring holds
    with pytest.raises(ValueError, match="expected at most the ring's"):
        loop.look()
    loop.loop[L_HEAD] = 0
    saved = int(loop.loop[L_CAPACITY])
    loop.loop[L_CAPACITY] = 0
    with pytest.raises(ValueError, match="a malformed loop array: capacity 0, row bytes"):
        loop.look()
    loop.loop[L_CAPACITY] = saved
    for column, bad, says in (
        (L_RING, 0, "no ring"),
        (L_ROW_BYTES, ROW_HEADER_BYTES - 8, f"row bytes {ROW_HEADER_BYTES - 8};"),
        (L_ROW_BYTES, 8 * 20 + 4, "row bytes 164;"),
    ):
        saved = int(loop.loop[column])
        loop.loop[column] = bad
        with pytest.raises(ValueError, match=f"a malformed loop array: .*{says}"):
            loop.look()
        loop.loop[column] = saved
    assert loop.look()[:2] == (0, 0)


def _run_until_control(
    loop: TickLoop,
    period: float,
    frames: list[tuple[int, int]],
    drain: bool = False,
    max_catchup: int = 0,
) -> int:
    """Run (again after each overrun, on a fresh grid: this machine stalls now and then)
    until interrupted; the ticks run in all. ``drain``: a full ring is emptied (the rows
    dropped) and the run goes on, for a test that runs longer than the ring lasts."""
    ticks = 0
    while True:
        k = int(loop.loop[L_NEXT])
        reason = loop.run(time.perf_counter() + 0.001, k, period, k, frames, 0, max_catchup)
        ticks += loop.ticks_run
        if reason == RUN_CONTROL:
            return ticks
        if drain and reason == RUN_FULL:
            loop.done(len(loop.take()))
            continue
        assert reason == RUN_OVERRUN


def test_an_interrupt_from_another_thread_ends_a_run_within_a_tick() -> None:
    _, _, loop = _seed_loop()
    timer = threading.Timer(0.05, loop.interrupt)
    timer.start()
    began = time.perf_counter()
    ticks = _run_until_control(loop, 0.002, [])
    took = time.perf_counter() - began
    timer.join()
    assert 0.04 < took < 1.0
    assert 10 <= ticks <= loop.capacity


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_the_reader_is_woken_when_a_frame_completes_and_only_when_armed() -> None:
    _, _, loop = _seed_loop()
    assert not _readable(loop.fd, 0.0)
    # Frames of 3 ticks, 2 already filled: the first tick completes one.
    timer = threading.Timer(0.03, loop.interrupt)
    timer.start()
    n = _run_until_control(loop, 0.002, [(1, 3)])
    timer.join()
    assert n >= 1
    assert _readable(loop.fd, 0.0)
    rows = loop.take()  # re-arms and clears the wake-up
    assert len(rows) == n
    loop.done(n)
    assert not _readable(loop.fd, 0.0)
    # Armed again: the next completed frame wakes the reader once more.
    loop.clear_interrupt()
    timer = threading.Timer(0.03, loop.interrupt)
    timer.start()
    assert _run_until_control(loop, 0.002, [(3, 3)]) >= 3
    timer.join()
    assert _readable(loop.fd, 0.0)


def test_a_malformed_loop_is_refused() -> None:
    _, native, loop = _seed_loop()
    ext = extension()
    assert ext is not None
    args = (*native._args, int(loop.loop.ctypes.data), int(loop.times.ctypes.data))
    loop.times[:] = (time.perf_counter() + 0.01, 0.001, 0.0, 0.0, 0.05, 0.01, 0.35)
    bad_copies = loop.copies.copy()
    bad_copies[-1, 2] = loop.loop[L_ROW_BYTES]  # a probe copied past the row's end
    saved = int(loop.loop[L_COPIES])
    loop.loop[L_COPIES] = bad_copies.ctypes.data
    with pytest.raises(ValueError, match="within the row"):
        ext.run_ticks(*args)
    loop.loop[L_COPIES] = saved
    loop.loop[L_CAPACITY] = 0
    with pytest.raises(ValueError, match="run_ticks: capacity 0; expected >= 1"):
        ext.run_ticks(*args)
    loop.loop[L_CAPACITY] = loop.capacity
    loop.times[1] = 0.0  # free-running has no grid
    with pytest.raises(ValueError, match=r"run_ticks: period 0\.0 s; expected > 0"):
        ext.run_ticks(*args)
    loop.times[1] = 0.001
    loop.times[T_BUSY_SPIN] = 2.0
    with pytest.raises(ValueError, match=r"run_ticks: busy spin 2\.0 s; expected 0 to 1 s"):
        ext.run_ticks(*args)
    loop.times[T_BUSY_SPIN] = 0.0
    loop.times[2] = float("nan")  # the spin
    with pytest.raises(ValueError, match=r"run_ticks: spin nan s; expected 0 to 1 s"):
        ext.run_ticks(*args)
    loop.times[2] = 0.0
    saved = int(loop.loop[L_ROW_BYTES])
    loop.loop[L_ROW_BYTES] = saved + 4
    with pytest.raises(ValueError, match=f"run_ticks: row bytes {saved + 4}; expected a multiple"):
        ext.run_ticks(*args)
    loop.loop[L_ROW_BYTES] = saved
    loop.loop[L_SCHEDSTAT] = 0  # a descriptor, and no reading interval
    loop.loop[L_ADAPT_TICKS] = 0
    with pytest.raises(ValueError, match="with adapt ticks 0, calm windows"):
        ext.run_ticks(*args)
    loop.loop[L_SCHEDSTAT] = -1
    loop.loop[L_ADAPT_TICKS] = 5
    loop.times[0] = time.perf_counter() + 10 * 86400.0  # the first deadline ten days away
    with pytest.raises(ValueError, match="deadline; expected at most 86400 s ahead"):
        ext.run_ticks(*args)


# ------------------------------------------------------- the spin under CPU contention


def _adapting_loop(tmp_path: Path) -> tuple[TickLoop, Path, int]:
    """A seed loop whose adaptation reads ``tmp_path/schedstat`` (written by the test
    as the kernel writes a thread's) every 5 ticks, calm after 2 readings."""
    _, _, loop = _seed_loop()
    stat = tmp_path / "schedstat"
    stat.write_text("1000 0 10\n")
    fd = os.open(stat, os.O_RDONLY)
    loop._schedstat = fd  # as the tick thread would have opened its own
    loop._schedstat_closer = weakref.finalize(loop, os.close, fd)
    loop.loop[L_SCHEDSTAT] = fd
    loop.loop[L_ADAPT_TICKS] = 5
    loop.loop[L_CALM_WINDOWS] = 2
    return loop, stat, fd


def _run_ticks(loop: TickLoop, ticks: int, period: float = 0.001) -> None:
    """Run exactly ``ticks`` ticks: the ring, emptied first, is given room for that many
    rows only, so the run returns full after the last (overruns start a fresh grid)."""
    done = 0
    while done < ticks:
        loop.done(int(loop.loop[L_HEAD]) - int(loop.loop[L_TAIL]))
        loop.loop[L_CAPACITY] = ticks - done
        k = int(loop.loop[L_NEXT])
        loop.run(time.perf_counter() + period, k, period, k, [(10**9, 10**9)])
        done += loop.ticks_run
    loop.loop[L_CAPACITY] = loop.capacity


def test_a_thread_kept_waiting_for_a_cpu_spins_the_busy_spin_until_calm(tmp_path: Path) -> None:
    """The run delay read every ADAPT_TICKS ticks drives the spin: HOT_WINDOWS readings in
    a row above CONTENDED_SHARE of wall time begin a contended spell (one spell, however
    many readings it lasts), CALM_WINDOWS calm readings in a row end it, and the busy
    ticks are counted."""
    loop, stat, fd = _adapting_loop(tmp_path)
    assert HOT_WINDOWS == 2  # the sequence below

    def hot() -> None:
        # 10 s spent waiting for a CPU between two readings: above CONTENDED_SHARE however
        # long this busy machine takes to run the 5 ticks.
        stat.write_text(f"1000 {int(loop.loop[L_DELAY_NS]) + 10_000_000_000} 10\n")
        _run_ticks(loop, 5)

    try:
        _run_ticks(loop, 6)  # the first reading only sets the baseline
        assert not loop.contended
        assert loop.spells == 0
        assert int(loop.loop[L_DELAY_NS]) == 0
        hot()
        assert not loop.contended  # one reading alone: a transient
        _run_ticks(loop, 5)  # calm again: the count of hot readings starts over
        hot()
        assert not loop.contended
        for _ in range(3):
            hot()
            assert loop.contended
        assert loop.spells == 1
        busy = loop.busy_ticks
        assert busy >= 5
        _run_ticks(loop, 5)  # the delay stands still: one calm reading, not yet enough
        assert loop.contended
        assert loop.busy_ticks > busy
        _run_ticks(loop, 5)
        assert not loop.contended
        busy = loop.busy_ticks
        _run_ticks(loop, 10)
        assert loop.busy_ticks == busy  # calm again: the spin, not the busy spin
        hot()
        hot()
        assert loop.contended
        assert loop.spells == 2
    finally:
        loop.close()
    assert loop.loop[L_SCHEDSTAT] == -1
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # closed with the loop


def test_an_unreadable_schedstat_ends_the_spell_and_never_adapts(tmp_path: Path) -> None:
    """A file that is not a schedstat (or a failed read) counts as no reading, and ends
    a contended spell: the busy spin never outlives its signal."""
    loop, stat, _ = _adapting_loop(tmp_path)
    try:
        _run_ticks(loop, 6)
        assert int(loop.loop[L_DELAY_NS]) == 0  # read
        for delay in (10, 20):  # s: two hot readings
            stat.write_text(f"1000 {delay * 10**9} 10\n")
            _run_ticks(loop, 5)
        assert loop.contended
        stat.write_text("not numbers\n")
        _run_ticks(loop, 5)
        assert int(loop.loop[L_DELAY_NS]) == -1
        assert not loop.contended
        busy = loop.busy_ticks
        stat.write_text("1000 30000000000 10\n")  # a reading again: a baseline first
        _run_ticks(loop, 5)
        assert not loop.contended
        assert loop.busy_ticks == busy
    finally:
        loop.close()


def test_no_busy_spin_or_the_spin_itself_never_reads_the_run_delay() -> None:
    """A busy spin of None, or equal to the spin (0 here): nothing to adapt to, so the
    run delay is never read and every tick spins the spin."""
    for busy in (None, 0.0):
        _, _, loop = _seed_loop(busy)
        try:
            assert loop.busy_spin is None
            _run_ticks(loop, 3)
            assert loop.loop[L_SCHEDSTAT] == -1
            assert loop.spin_now == 0.0
        finally:
            loop.close()
    _, _, loop = _seed_loop(0.001)
    try:
        _run_ticks(loop, 3)
        assert loop.loop[L_SCHEDSTAT] >= 0
        assert loop.loop[L_PROCSTAT] >= 0  # and the host's idle time
    finally:
        loop.close()
    assert loop.loop[L_PROCSTAT] == -1


def _host_stat(path: Path, idle: int, busy: int, steal: int = 0) -> None:
    """Write ``path`` as /proc/stat's first line: ``busy`` user ticks, ``idle`` idle."""
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")


def test_a_thread_kept_waiting_beside_idle_cpus_keeps_its_spin(tmp_path: Path) -> None:
    """Run-delay readings above CONTENDED_SHARE begin no spell while the host's CPUs had
    IDLE_SHARE or more of their time idle since the last reading (/proc/stat): the wait
    was behind the service's own threads, and the spin covers the wake-up from an idle
    CPU. Once no CPU idles, the same readings begin one; idle readings then count as
    calm and end it. Time stolen by the hypervisor is not the machine's: it counts
    neither as busy nor as idle."""
    loop, stat, _ = _adapting_loop(tmp_path)
    host = tmp_path / "stat"
    idle, busy, steal = 1000, 1000, 0
    _host_stat(host, idle, busy)
    fd = os.open(host, os.O_RDONLY)
    loop.loop[L_PROCSTAT] = fd

    def reading(idle_ticks: int, busy_ticks: int, hot: bool = True, stolen: int = 0) -> None:
        nonlocal idle, busy, steal
        idle, busy, steal = idle + idle_ticks, busy + busy_ticks, steal + stolen
        _host_stat(host, idle, busy, steal)
        if hot:  # 10 s spent waiting for a CPU since the last reading
            stat.write_text(f"1000 {int(loop.loop[L_DELAY_NS]) + 10_000_000_000} 10\n")
        _run_ticks(loop, 5)

    try:
        _run_ticks(loop, 6)  # baselines
        assert int(loop.loop[L_IDLE_TICKS]) == 1000
        for _ in range(4):
            reading(40, 60)  # 40 % idle: at or above IDLE_SHARE
            assert not loop.contended
        assert loop.spells == 0
        reading(30, 70)  # below it: a hot reading
        assert not loop.contended
        reading(40, 60, stolen=200)  # 40 % of the machine's own time idle: calm again
        assert not loop.contended
        reading(0, 100)  # hot
        assert not loop.contended
        reading(0, 100)  # a second in a row: the spell begins
        assert loop.contended
        assert loop.spells == 1
        reading(0, 100)
        assert loop.contended
        reading(50, 50)  # idle again, still kept waiting: calm (CALM_WINDOWS is 2 here)
        assert loop.contended
        reading(50, 50)
        assert not loop.contended
        # An unreadable /proc/stat leaves the run delay alone to decide.
        host.write_text("garbage\n")
        stat.write_text(f"1000 {int(loop.loop[L_DELAY_NS]) + 10_000_000_000} 10\n")
        _run_ticks(loop, 5)
        assert int(loop.loop[L_IDLE_TICKS]) == -1
        stat.write_text(f"1000 {int(loop.loop[L_DELAY_NS]) + 10_000_000_000} 10\n")
        _run_ticks(loop, 5)
        assert loop.contended
        assert loop.spells == 2
    finally:
        loop.close()
        os.close(fd)


def test_a_tick_in_two_stages_never_adapts_its_spin() -> None:
    """With two stages the tick thread's run delay counts its wait behind its own helper,
    not neighbours: the busy spin is ignored, the run delay never read, and every tick
    spins the spin; the same chain on one stage adapts."""
    for stages, adapts in ((True, False), (False, True)):
        _, _, loop = _chain_loop(stages, spin=0.0002, busy_spin=0.0)
        try:
            assert (loop.busy_spin is not None) is adapts
            _run_ticks(loop, 3)
            assert bool(loop.loop[L_SCHEDSTAT] >= 0) is adapts
            assert loop.spin_now == 0.0002
        finally:
            loop.close()


def test_the_tick_thread_reads_its_own_run_delay() -> None:
    """The schedstat the loop opens is the calling thread's: its run delay (the second
    field) is what this thread's own file says, and it never decreases."""
    fd = open_schedstat()
    assert fd >= 0, "this kernel has no /proc/thread-self/schedstat"
    try:
        first = [int(x) for x in os.pread(fd, 128, 0).split()]
        time.sleep(0.01)
        again = [int(x) for x in os.pread(fd, 128, 0).split()]
        tid = threading.get_native_id()
        own = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        assert len(first) == 3
        assert again[1] >= first[1]
        assert int(own[2]) >= again[2]  # the same thread's timeslices, counted on
    finally:
        os.close(fd)
    _, _, loop = _seed_loop(0.00005)  # made on this thread, run on another
    ran: list[tuple[int, str]] = []

    def tick_thread() -> None:
        _run_ticks(loop, 3)
        fd = int(loop.loop[L_SCHEDSTAT])
        ran.append((threading.get_native_id(), os.readlink(f"/proc/self/fd/{fd}")))

    thread = threading.Thread(target=tick_thread)
    thread.start()
    thread.join()
    try:
        tid, target = ran[0]
        assert tid != threading.get_native_id()
        assert target.endswith(f"/task/{tid}/schedstat")  # the running thread's own
        assert loop.times[T_BUSY_SPIN] == 0.00005
    finally:
        loop.close()


# ---------------------------------------------------------------- the engine in runs


@contextmanager
def _io_side(engine: Engine) -> Iterator[list[int]]:
    """A thread that does what the service's publisher does: wait for the engine's
    wake-up descriptor, then collect. Yields the list of wake-ups (one entry each)."""
    fd = engine.wake_fd
    assert fd is not None
    stop = threading.Event()
    wakes: list[int] = []

    def serve() -> None:
        while not stop.is_set():
            if _readable(fd, 0.02):
                wakes.append(1)
            engine.collect()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield wakes
    finally:
        stop.set()
        thread.join(5)


def _frames(engine: Engine, probe: str) -> tuple[np.ndarray, list[int]]:
    out, ticks = [], []
    stream = engine.streams[probe]
    while (buf := stream.take()) is not None:
        out.append(buf.valid().copy())
        ticks.append(buf.tick)
        stream.release(buf)
    return np.concatenate(out), ticks


def _reference(ticks: int) -> dict[str, np.ndarray]:
    """The seed network free-running with u = 0.6 from tick 0 (the single-call path)."""
    engine = Engine(
        build(load_network(SEED)), clock=SystemClock(), realtime_factor=0.0, queue_capacity=4000
    )
    engine.inputs["u"].offer(np.array([0.6]), received=time.perf_counter())
    engine.start()
    deadline = time.monotonic() + 20
    while engine.sim.tick < ticks and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.stop()
    assert engine.failure is None
    return {p: _frames(engine, p)[0][:ticks] for p in ("b_spikes", "b_filtered", "u")}


@pytest.mark.parametrize(
    ("factor", "threads", "early"),
    [(1.0, 1, False), (4.0, 1, False), (1.0, 2, False), (1.0, 2, True)],
)
def test_an_engine_in_runs_computes_the_same_ticks(
    factor: float, threads: int, early: bool
) -> None:
    """Paced in runs (at 4x real time, a 250 us period, this busy machine overruns now
    and then, and the pacer's policy takes those ticks between runs), on one thread or
    with the tick cut in two stages on two, starting ticks early on input or not, the
    frames are those of the free-running one-thread engine, tick for tick, and the I/O
    side is woken for them."""
    ticks = 600
    engine = Engine(
        build(load_network(SEED)),
        realtime_factor=factor,
        queue_capacity=4000,
        runs=True,
        tick_threads=threads,
        early_ticks=early,
    )
    assert engine._runs is not None
    assert int(engine._runs.loop[L_EARLY]) == early
    assert engine.tick_threads == threads
    assert (engine.stages is not None) is (threads == 2)
    assert engine.wake_fd is not None
    engine.inputs["u"].offer(np.array([0.6]), received=time.perf_counter())
    with _io_side(engine) as wakes:
        engine.start()
        deadline = time.monotonic() + 20
        while engine.executed < ticks and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.stop()
    engine.close()
    assert engine.failure is None
    assert engine.ticks_in_runs > 0
    assert wakes
    ref = _reference(ticks)
    for probe, expected in ref.items():
        got, starts = _frames(engine, probe)
        np.testing.assert_array_equal(got[:ticks], expected, err_msg=probe)
        assert starts == list(range(0, 10 * len(starts), 10))  # whole frames, no gap
    stats = engine.statistics()
    assert stats.pacer.ticks == engine.executed == stats.tick


class _Log:
    """An input log that keeps what it is told (InputLog)."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, float]] = []

    def record(self, executed: int, name: str, value: np.ndarray) -> None:
        self.changes.append((executed, float(value[0])))

    def mark(self, kind: str, executed: int) -> None:
        raise AssertionError(f"no {kind} was asked for")


def test_a_run_s_input_changes_are_accounted_at_their_own_ticks() -> None:
    """In runs, the reader accounts for each input change at the tick that applied it:
    the input log's tick for each value is the first tick whose frame row holds it, the
    TTL's return to the default is reported once, and the pacer saw every tick, while
    the rows before a run's first change are never read one by one."""
    engine = Engine(build(load_network(SEED)), queue_capacity=4000, runs=True)
    log = _Log()
    engine.input_log = log
    engine.inputs["u"].ttl = 0.5
    runs = engine._runs
    assert runs is not None
    read: list[int] = []  # the rows read one by one
    row = runs.row

    def spy(number: int) -> Row:
        read.append(number)
        return row(number)

    runs.row = spy  # type: ignore[method-assign]
    values = [0.25, -0.5, 0.75]
    with _io_side(engine):
        engine.start()
        for value in values:
            time.sleep(0.06)
            engine.inputs["u"].offer(np.array([value]), received=time.perf_counter())
        time.sleep(0.8)  # the last value's TTL ends: the default comes back
        engine.stop()
    engine.close()
    assert engine.failure is None
    u, starts = _frames(engine, "u")
    assert starts[0] == 0
    assert len(u) == engine.executed
    dtype = u.dtype.type
    # Each value, then the default when the last one went stale.
    assert [v for _, v in log.changes] == [*values, 0.0]
    since = 0
    for executed, value in log.changes:
        first = since + int(np.argmax(u[since:, 0] == dtype(value)))
        assert executed == first, (value, executed, first)
        assert u[first - 1, 0] != dtype(value)
        since = first
    assert engine.inputs["u"].stale_events == 1
    assert [e["input"] for e in engine.events if e["event"] == "input_stale"] == ["u"]
    assert engine.statistics().pacer.ticks == engine.executed == engine.sim.tick
    assert engine.ticks_in_runs > 0
    # Four changes: a few rows read one by one (from each change to its run's end), not
    # the run's every row.
    assert 4 <= len(read) < engine.executed // 4


@pytest.mark.parametrize("runs", [True, False])
def test_work_is_the_compiled_ticks_own_time(runs: bool) -> None:
    """On both compiled paths (runs of ticks, and one call per tick) a tick's work is
    timed from after its wait to the end of its kernels: for the seed network, tens of
    microseconds, well under the 0.5 ms the tick spins before each deadline here."""
    engine = Engine(
        build(load_network(SEED)), clock=SystemClock(spin=0.0005), queue_capacity=4000, runs=runs
    )
    assert engine.tick_path == "compiled"
    engine.inputs["u"].offer(np.array([0.6]), received=time.perf_counter())
    with _io_side(engine) if runs else contextlib.nullcontext():
        engine.start()
        try:
            deadline = time.monotonic() + 20
            while engine.sim.tick < 1300 and time.monotonic() < deadline:
                time.sleep(0.01)
            one, ten = engine.statistics().work
        finally:
            engine.stop()
    assert engine.failure is None
    assert engine.ticks_in_runs > 0 if runs else engine.ticks_in_runs == 0
    assert 800 <= one.ticks <= ten.ticks
    assert 0.0 < one.lateness.p50 < 0.00015
    assert one.lateness.p50 <= one.lateness.p99 <= one.lateness.max


def test_commands_interrupt_a_run_and_stop_is_prompt() -> None:
    engine = Engine(build(load_network(SEED)), queue_capacity=64, runs=True)
    with _io_side(engine):
        engine.start()
        time.sleep(0.1)
        sent = time.perf_counter()
        assert engine.submit(ControlCommand(cmd="status", id="s1"))
        while not any(e.get("id") == "s1" for e in list(engine.events)):
            assert time.perf_counter() - sent < 1.0, "no reply to status"
            time.sleep(0.001)
        replied = time.perf_counter() - sent
        assert engine.submit(ControlCommand(cmd="set", key="ticks_per_frame", value=5, id="s2"))
        while not any(e.get("id") == "s2" for e in list(engine.events)):
            assert time.perf_counter() - sent < 2.0, "no reply to set"
            time.sleep(0.001)
        resized = engine.executed
        while engine.executed < resized + 30:  # frames of the new size
            assert time.perf_counter() - sent < 3.0, "no ticks after the resize"
            time.sleep(0.005)
        began = time.perf_counter()
        engine.stop()
        stopped = time.perf_counter() - began
    engine.close()
    assert engine.failure is None
    # A run ends within a tick of a command or stop (loose bounds: a busy 2-core VM).
    assert replied < 0.5, replied
    assert stopped < 0.5, stopped
    ok = [e for e in engine.events if e["event"] == "control_ok"]
    assert [e["id"] for e in ok] == ["s1", "s2"]
    sizes = []
    stream = engine.streams["u"]
    while (buf := stream.take()) is not None:
        sizes.append(buf.ticks)
        stream.release(buf)
    # Frames of the old size, then of the new.
    assert 10 in sizes
    assert 5 in sizes


def test_the_wake_descriptor_is_closed_with_the_engine() -> None:
    engine = Engine(build(load_network(SEED)), runs=True)
    fd = engine.wake_fd
    assert fd is not None
    os.fstat(fd)
    engine.close()
    assert engine.wake_fd is None
    assert engine.collect() is False  # nothing to read, and no read of a closed descriptor
    engine.close()  # idempotent
    assert Engine(build(load_network(SEED))).wake_fd is None  # runs are asked for


def test_collect_never_waits_for_the_tick_thread() -> None:
    """While the tick thread holds the engine (a command in progress), collect() returns
    at once and clears the wake-up, so the event loop neither blocks nor spins."""
    engine = Engine(build(load_network(SEED)), runs=True)
    fd = engine.wake_fd
    assert fd is not None
    os.eventfd_write(fd, 1)
    with engine._book:
        began = time.perf_counter()
        assert engine.collect() is False
        assert time.perf_counter() - began < 0.01
    assert not _readable(fd, 0.0)
    engine.close()


def test_pause_resume_rate_and_reset_in_runs() -> None:
    engine = Engine(build(load_network(SEED)), queue_capacity=4000, runs=True)
    commands = [
        ControlCommand(cmd="pause", id="p"),
        ControlCommand(cmd="resume", id="r"),
        ControlCommand(cmd="set", key="realtime_factor", value=2.0, id="f"),
        ControlCommand(cmd="reset", id="z"),
    ]
    with _io_side(engine):
        engine.start()
        for cmd in commands:
            time.sleep(0.08)
            assert engine.submit(cmd)
        time.sleep(0.1)
        engine.stop()
    engine.close()
    assert engine.failure is None
    ok = [e["id"] for e in engine.events if e["event"] == "control_ok"]
    assert ok == ["p", "r", "f", "z"]
    stats = engine.statistics()
    assert stats.pacer.ticks == engine.executed
    assert engine.ticks_in_runs > 0
    assert 0 < engine.sim.tick < engine.executed  # the reset restarted simulated time
    # The frames after the reset start again from tick 0, whole and in order.
    ticks = []
    stream = engine.streams["u"]
    while (buf := stream.take()) is not None:
        ticks.append(buf.tick)
        stream.release(buf)
    restart = ticks.index(0, 1)
    after = ticks[restart:]
    assert after == list(range(0, 10 * len(after), 10))


def _file_adapter(fd: int) -> SpinAdapter:
    """A SpinAdapter (spin 0.2 ms, busy spin 0) reading ``fd`` instead of its own file."""
    adapter = SpinAdapter(0.0002, 0.0)
    adapter.close()
    adapter.loop[L_SCHEDSTAT] = fd
    return adapter


def test_the_spin_adapter_follows_the_same_rule_for_a_loop_of_its_own(tmp_path: Path) -> None:
    """``SpinAdapter`` (the benchmark floor's) runs the C adaptation: it returns the spin
    until a reading shows the thread kept waiting, then the busy spin until calm."""
    adapter = SpinAdapter(0.0002, 0.0)
    assert adapter.loop[L_SCHEDSTAT] >= 0  # this thread's own schedstat
    adapter.close()
    assert adapter.loop[L_SCHEDSTAT] == -1
    stat = tmp_path / "schedstat"
    stat.write_text("5 100 1\n")
    fd = os.open(stat, os.O_RDONLY)
    try:
        adapter = _file_adapter(fd)
        spins = [adapter() for _ in range(2 * ADAPT_TICKS)]  # the first reading: a baseline
        assert set(spins) == {0.0002}
        assert not adapter.contended
        stat.write_text("5 100000100 1\n")  # 0.1 s of waiting, in far less wall time
        spins = [adapter() for _ in range(ADAPT_TICKS)]
        assert set(spins) == {0.0002}  # a transient, so far
        stat.write_text("5 200000100 1\n")  # again: a spell
        spins = [adapter() for _ in range(ADAPT_TICKS)]
        assert spins[-1] == 0.0
        assert set(spins[:-1]) == {0.0002}
        assert adapter.contended
        assert adapter.spells == 1
        spins = [adapter() for _ in range(CALM_WINDOWS * ADAPT_TICKS)]
        assert spins[-1] == 0.0002
        assert set(spins[:-1]) == {0.0}
    finally:
        os.close(fd)
    # A spell ends with its signal: closed, the adapter no longer reads and spins the spin.
    stat.write_text("5 1 1\n")
    fd = os.open(stat, os.O_RDONLY)
    try:
        adapter = _file_adapter(fd)
        [adapter() for _ in range(ADAPT_TICKS)]
        stat.write_text("5 100000001 1\n")
        [adapter() for _ in range(ADAPT_TICKS)]
        stat.write_text("5 200000001 1\n")
        assert [adapter() for _ in range(ADAPT_TICKS)][-1] == 0.0
        adapter.loop[L_SCHEDSTAT] = -1
        assert adapter() == 0.0002
        assert not adapter.contended
    finally:
        os.close(fd)
    assert SpinAdapter(0.0002, 0.0002).loop[L_SCHEDSTAT] == -1  # nothing to adapt to
    never = SpinAdapter(0.0002, None)
    assert never.loop[L_SCHEDSTAT] == -1
    assert {never() for _ in range(3 * ADAPT_TICKS)} == {0.0002}


def _reading(adapter: SpinAdapter, stat: Path, delay: int, share: float) -> tuple[int, float]:
    """Tick ``adapter`` up to its next reading, the file then saying the thread waited
    ``share`` of the wall time since the last one; returns the new delay and the spin."""
    for _ in range(ADAPT_TICKS - 1):
        adapter()
    time.sleep(0.02)  # a window long against the few microseconds to the reading
    delay += int(share * (time.perf_counter_ns() - int(adapter.loop[L_DELAY_AT])))
    stat.write_text(f"5 {delay} 1\n")
    return delay, adapter()


def test_a_run_delay_between_the_thresholds_neither_begins_nor_ends_a_spell(
    tmp_path: Path,
) -> None:
    """Readings above CALM_SHARE but below CONTENDED_SHARE are neither hot nor calm: from
    a quiet start they never begin a spell, and in a spell they never end it. The two
    thresholds are what keeps the spin from flapping between the two spins."""
    stat = tmp_path / "schedstat"
    stat.write_text("5 100 1\n")
    fd = os.open(stat, os.O_RDONLY)
    try:
        adapter = _file_adapter(fd)
        middle = (CALM_SHARE + CONTENDED_SHARE) / 2
        delay, _ = _reading(adapter, stat, 100, 0.0)  # the baseline
        for _ in range(2 * HOT_WINDOWS):
            delay, spin = _reading(adapter, stat, delay, middle)
            assert spin == 0.0002
        assert not adapter.contended
        for _ in range(HOT_WINDOWS):
            delay, _ = _reading(adapter, stat, delay, 1.0)  # a spell begins
        assert adapter.contended
        for _ in range(CALM_WINDOWS + 2):
            delay, spin = _reading(adapter, stat, delay, middle)
            assert spin == 0.0
        assert adapter.contended
        assert adapter.spells == 1
    finally:
        os.close(fd)


def test_the_first_reading_is_only_a_baseline(tmp_path: Path) -> None:
    """The run delay the kernel reports is the thread's total since it began, so the
    first reading has nothing to be compared with: however large, it is no hot reading,
    and a spell still takes HOT_WINDOWS hot readings after it."""
    stat = tmp_path / "schedstat"
    stat.write_text(f"5 {10**18} 1\n")  # far more waiting than the clock's whole time line
    fd = os.open(stat, os.O_RDONLY)
    try:
        adapter = _file_adapter(fd)
        assert adapter.loop[L_DELAY_NS] == -1  # no reading yet
        delay, _ = _reading(adapter, stat, 10**18, 0.0)
        for _ in range(HOT_WINDOWS - 1):
            delay, spin = _reading(adapter, stat, delay, 1.0)
            assert spin == 0.0002
        assert not adapter.contended
        _, spin = _reading(adapter, stat, delay, 1.0)
        assert adapter.contended
        assert spin == 0.0
    finally:
        os.close(fd)


def test_the_spin_adapter_reads_the_hosts_idle_time_as_the_tick_loop_does() -> None:
    """A run delay counts as contended only while the host's CPUs were busy
    (/proc/stat): the benchmark floor's adapter must read it too, or it would spin the
    busy spin on a machine with idle CPUs where the service's tick thread does not."""
    adapter = SpinAdapter(0.0002, 0.0)
    try:
        fd = int(adapter.loop[L_PROCSTAT])
        assert fd >= 0
        assert os.readlink(f"/proc/self/fd/{fd}") == "/proc/stat"
    finally:
        adapter.close()
    assert adapter.loop[L_PROCSTAT] == -1
    assert SpinAdapter(0.0002, None).loop[L_PROCSTAT] == -1  # nothing to adapt: not read


# ---------------------------------------------------------------- two stages


def _chain_loop(
    stages: bool,
    weights: str | None = None,
    spin: float = 0.0,
    busy_spin: float | None = None,
    take_after: float | None = TAKE_AFTER,
    early: bool = False,
) -> tuple[Simulator, NativeTick, TickLoop]:
    from tests.sim.test_stages import chain

    sim = Simulator(build(parse_network(chain(8, weights_dtype=weights))))
    native = NativeTick(sim, [(_slot(sim), sim.inputs["u"])], spin=spin)
    views = [sim.probe(name) for name in sorted(sim.model.probes)]
    plan = sim.two_stages([sim.inputs["u"]]) if stages else None
    assert plan is not None or not stages
    loop = TickLoop(
        native, [sim.inputs["u"]], views, busy_spin, stages=plan, take_after=take_after, early=early
    )
    return sim, native, loop


def _run_to_full(loop: TickLoop, inline: bool = False) -> list[Row]:
    """Run late ticks back to back (the grid 10 s behind, catch-up without limit) until
    the ring is full; the rows."""
    loop.loop[L_INLINE] = inline
    k = int(loop.loop[L_NEXT])
    assert loop.run(time.perf_counter() - 10.0, 0, 0.001, k, [(1, 1)], 0, 10**9) == RUN_FULL
    rows = loop.take()
    assert len(rows) == loop.capacity
    return rows


def _assert_same_rows(expected: list[Row], got: list[Row]) -> None:
    """Every ring row the same: tick index, input state, input values and probes."""
    for a, b in zip(expected, got, strict=True):
        assert int(a.index[0]) == int(b.index[0])
        np.testing.assert_array_equal(a.state, b.state)
        for x, y in zip([*a.inputs, *a.probes], [*b.inputs, *b.probes], strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("weights", "inline"), [(None, False), ("float16", False), (None, True)])
def test_two_stages_step_as_one_stage_bit_for_bit(weights: str | None, inline: bool) -> None:
    """A chain whose tick is cut in two, the second stage on a helper thread (or, inline,
    on the tick thread after the first): every ring row (probes, input values, input
    state) is the one-stage loop's, through a change of input between runs."""
    _, one_native, one = _chain_loop(False, weights)
    _, two_native, two = _chain_loop(True, weights)
    assert two.stages is not None
    for value in ([0.4, -0.1], [-0.6, 0.5], [0.0, 0.9]):
        for native in (one_native, two_native):
            native.mailboxes[0].post(np.array(value), time.perf_counter(), None)
        expected, got = _run_to_full(one), _run_to_full(two, inline)
        assert not one.threaded
        assert two.threaded is not inline
        _assert_same_rows(expected, got)
        # The second stage's end is the row's end: after the first stage's start.
        assert all(b.meta[0] <= b.meta[4] for b in got)
        one.done(len(expected))
        two.done(len(got))
    # The chain's end spiked: the comparison is not between silent populations.
    assert any(r.probes[1].any() for r in got)


@pytest.mark.parametrize("stages", [False, True])
@pytest.mark.parametrize("late", [False, True])
def test_a_run_records_each_tick_as_the_pacer_and_the_work_window_would(
    stages: bool, late: bool
) -> None:
    """With records given (TickLoop.record_into), each tick of a run is recorded in the
    pace record (start, lateness) and the work window (start, work) as the Python path
    records it from the tick's row: the same state, bit for bit, on time or late, in one
    stage or two (the helper thread records the ticks it finishes)."""
    from spikestream.runtime.stats import DEFAULT_THRESHOLDS, LatenessWindow, PaceRecord

    _, _, loop = _chain_loop(stages)
    pace, ref_pace = (PaceRecord(0.001, DEFAULT_THRESHOLDS, 10.0) for _ in range(2))
    work, ref_work = (LatenessWindow(0.001, (), span=10.0) for _ in range(2))
    loop.record_into(pace, work)
    if late:
        rows = _run_to_full(loop)
    else:
        while True:  # on a fresh grid after each overrun (a stall of the test process)
            k = int(loop.loop[L_NEXT])
            reason = loop.run(time.perf_counter() + 0.001, k, 0.0005, k, [(1, 1)])
            if reason == RUN_FULL:
                break
            assert reason == RUN_OVERRUN
        rows = loop.take()
    assert loop.threaded is stages
    for row in rows:
        start, deadline, _, _, end = row.meta.tolist()
        ref_pace.record_python(start, start - deadline if start > deadline else 0.0)
        ref_work.record_python(start, end - start, -1.0)
    assert pace.ticks == len(rows) == loop.capacity
    for a, b in ((pace, ref_pace), (pace.lateness, ref_pace.lateness), (work, ref_work)):
        np.testing.assert_array_equal(a._ints, b._ints)
        np.testing.assert_array_equal(a._floats.view(np.int64), b._floats.view(np.int64))
    snapshot = pace.lateness.snapshot()
    assert (snapshot.p50 > 1.0) if late else (snapshot.p50 < 0.0005)
    loop.done(len(rows))
    loop.record_into(None, None)  # no longer recorded
    _run_to_full(loop)
    assert pace.ticks == loop.capacity


@pytest.mark.parametrize("stages", [False, True])
def test_a_floor_busy_waits_instead_of_stepping_until_restored(stages: bool) -> None:
    """``as_floor``: each stage busy-waits its time instead of running its ops, so every
    row spans at least their sum (first stage's start to the last one's end) while its
    probes stay what the last stepped tick left; inputs are still applied. ``as_floor(0)``
    steps again."""
    sim, native, loop = _chain_loop(stages)
    first, second = 0.0004, 0.0003
    span = first + (second if stages else 0.0)

    def run(value: list[float]) -> list[Row]:
        native.mailboxes[0].post(np.array(value), time.perf_counter(), None)
        rows = _run_to_full(loop)
        loop.done(len(rows))
        return rows

    stepped = run([0.6, -0.4])
    assert len({r.probes[0].tobytes() for r in stepped}) > 1  # the chain moves
    loop.as_floor(first, second)
    floor = run([-0.5, 0.9])
    assert loop.threaded is stages
    for row in floor:
        assert row.meta[4] - row.meta[0] >= span
        np.testing.assert_array_equal(row.inputs[0], np.float32([-0.5, 0.9]))
        for got, last in zip(row.probes, stepped[-1].probes, strict=True):
            np.testing.assert_array_equal(got, last)
    # A tick stepped outside the runs (the pacer's, after an overrun) waits the sum.
    live = [sim.probe(name) for name in sorted(sim.model.probes)]
    before = [p.copy() for p in live]
    began = time.perf_counter()
    start = native(-math.inf)
    assert native.ended - start >= span
    assert time.perf_counter() - began >= span
    for got, was in zip(live, before, strict=True):
        np.testing.assert_array_equal(got, was)  # no op ran
    loop.as_floor(0.0)
    assert native.floor == 0.0
    again = run([0.6, -0.4])
    assert len({r.probes[0].tobytes() for r in again}) > 1
    assert min(r.meta[4] - r.meta[0] for r in again) < first  # the 8-population chain's tick
    with pytest.raises(ValueError, match="floor stage times"):
        loop.as_floor(-0.001)


def test_a_floor_s_stage_times_are_checked_and_one_stage_has_no_second() -> None:
    """``as_floor`` takes each stage's time in [0, 1) s, the second's too (a second stage
    of a second or more would hold every tick past any deadline); without two stages
    there is no second stage, so its time is not waited, in the runs or by a tick
    stepped outside them, whose wait is the stages' sum."""
    _, one, single = _chain_loop(False)
    single.as_floor(0.0004, 0.0003)
    assert (single.loop[L_FLOOR_NS1], single.loop[L_FLOOR_NS2]) == (400_000, 0)
    assert one.floor == 0.0004
    _, two, staged = _chain_loop(True)
    staged.as_floor(0.0004, 0.0003)
    assert (staged.loop[L_FLOOR_NS1], staged.loop[L_FLOOR_NS2]) == (400_000, 300_000)
    assert two.floor == pytest.approx(0.0007)
    for first, second in ((0.0, 1.0), (0.0, -0.001), (1.0, 0.0), (0.0, math.nan)):
        with pytest.raises(ValueError, match="floor stage times"):
            staged.as_floor(first, second)
    assert staged.loop[L_FLOOR_NS2] == 300_000  # a refused call changes nothing
    for loop in (single, staged):
        loop.close()


def test_a_tick_the_second_stage_holds_past_its_deadline_is_late() -> None:
    """With two stages a tick waits for the helper to latch the tick before it. A tick the
    helper holds past its deadline, here behind second stages longer than the period, is
    flagged late and counts toward max_catchup, as any late tick does: a second stage
    that cannot keep pace ends the run for the pacer to realign."""
    _, _, loop = _chain_loop(True)
    loop.as_floor(0.00005, 0.0025)
    period = 0.001
    # Ticks 0 and 1 are released on time; tick 2 waits for the helper to latch tick 1,
    # which it does once tick 0's 2.5 ms second stage is over.
    assert loop.run(time.perf_counter() + 0.002, 0, period, 0, [], burst=0, max_catchup=4) == (
        RUN_OVERRUN
    )
    assert loop.threaded
    rows = loop.take()
    assert 3 <= len(rows) < 10
    for row in rows[2:]:
        assert int(row.index[1]) == 1
        assert row.meta[0] > row.meta[1] + 0.0003  # held well past its deadline


@pytest.mark.parametrize("take_after", [None, 0.0, TAKE_AFTER])
def test_a_late_helper_s_second_stages_are_taken_over_bit_for_bit(
    take_after: float | None,
) -> None:
    """A helper that begins each second stage 3 ms after the hand-over (L_HELPER_LAG_NS,
    as a helper whose CPU is held): with ``take_after`` the tick thread runs those stages
    itself, in order with any the helper runs; every ring row is still the one-stage
    loop's, through changes of input. With None it waits for the helper every time."""
    _, one_native, one = _chain_loop(False)
    _, two_native, two = _chain_loop(True, take_after=take_after)
    two.loop[L_HELPER_LAG_NS] = 3_000_000
    for value in ([0.4, -0.1], [-0.6, 0.5]):
        for native in (one_native, two_native):
            native.mailboxes[0].post(np.array(value), time.perf_counter(), None)
        expected, got = _run_to_full(one), _run_to_full(two)
        assert two.threaded
        _assert_same_rows(expected, got)
        one.done(len(expected))
        two.done(len(got))
    assert any(r.probes[1].any() for r in got)
    ticks = 2 * two.capacity
    if take_after is None:
        assert two.takeovers == 0
    else:
        # The tick thread takes every tick (the last of a run too: it is taken before the
        # full ring ends the run), unless this process stalls for the whole 3 ms lag.
        assert 0.8 * ticks <= two.takeovers <= ticks


def test_a_stage_the_helper_is_running_is_never_overtaken() -> None:
    """A helper held 2 ms inside each second stage it runs (after its latch, as if
    preempted there), with the tick thread ready to take over 0.5 ms after each hand-over
    (long enough for the helper to claim the stage first, short of the hold; with 0 the
    tick thread took nearly every stage before the helper woke, and a missing order check
    failed one run in twelve): the tick thread never runs the next tick's second stage
    before the helper's ends. The rows are the one-stage loop's, in the same order."""
    _, one_native, one = _chain_loop(False)
    _, two_native, two = _chain_loop(True, take_after=0.0005)
    two.loop[L_HELPER_HOLD_NS] = 2_000_000
    for native in (one_native, two_native):
        native.mailboxes[0].post(np.array([0.7, -0.3]), time.perf_counter(), None)
    expected, got = _run_to_full(one), _run_to_full(two)
    _assert_same_rows(expected, got)
    assert any(r.probes[1].any() for r in got)


def test_a_late_helper_holds_the_pace_only_without_takeovers() -> None:
    """Paced at 1 ms with a helper that begins each second stage 3 ms late: taken over
    after TAKE_AFTER, the ticks keep their deadlines (median lateness well under a tick);
    left to the helper, each waits for it and falls behind (the pacer's catch-up)."""
    lateness = {}
    for take_after in (TAKE_AFTER, None):
        _, _, loop = _chain_loop(True, take_after=take_after)
        loop.loop[L_HELPER_LAG_NS] = 3_000_000
        late: list[float] = []
        while len(late) < 40:  # on a fresh grid after each overrun
            k = int(loop.loop[L_NEXT])
            loop.run(time.perf_counter() + 0.001, k, 0.001, k, [(1, 1)], 0, 4)
            rows = loop.take()
            late += [float(r.meta[0] - r.meta[1]) for r in rows]
            loop.done(len(rows))
        lateness[take_after] = float(np.median(late))
    assert lateness[TAKE_AFTER] < 0.0005
    assert lateness[None] > 0.001


def _paced_to_full(loop: TickLoop, period: float = 0.001) -> list[Row]:
    """Run paced ticks under catch-up (each run on a fresh grid after an overrun) until
    the ring is full; the rows."""
    while True:
        k = int(loop.loop[L_NEXT])
        reason = loop.run(time.perf_counter() + period, k, period, k, [(1, 1)], 0, 1000)
        if reason == RUN_FULL:
            break
        assert reason == RUN_OVERRUN
    rows = loop.take()
    assert len(rows) == loop.capacity
    return rows


@pytest.mark.parametrize("take_after", [None, TAKE_AFTER])
def test_a_late_tick_thread_s_first_stages_are_taken_by_the_helper_bit_for_bit(
    take_after: float | None,
) -> None:
    """A tick thread that begins every fourth tick 1.7 ms after its deadline
    (L_MAIN_LAG_NS, as a tick thread whose CPU is held), paced at 1 ms: with
    ``take_after`` the helper runs those ticks' first stages (and the next one's, while
    the tick thread is still held) as catch-up ticks, in order with the tick thread's, so
    the held ticks start well within a tick of their deadlines, and the tick after those
    two, due once the tick thread is back, runs on time; every ring row is still the
    one-stage loop's, through changes of input. With None each waits for the tick
    thread."""
    _, one_native, one = _chain_loop(False)
    _, two_native, two = _chain_loop(True, take_after=take_after)
    two.loop[L_MAIN_LAG_NS] = 1_700_000
    two.loop[L_MAIN_LAG_EVERY] = 4
    held: list[float] = []
    after: list[int] = []  # the flags of the ticks two after a held one
    for value in ([0.4, -0.1], [-0.6, 0.5]):
        for native in (one_native, two_native):
            native.mailboxes[0].post(np.array(value), time.perf_counter(), None)
        expected, got = _run_to_full(one), _paced_to_full(two)
        assert two.threaded
        _assert_same_rows(expected, got)
        held += [float(r.meta[0] - r.meta[1]) for r in got if int(r.index[0]) % 4 == 0]
        after += [int(r.index[1]) for r in got if int(r.index[0]) % 4 == 2]
        one.done(len(expected))
        two.done(len(got))
    assert any(r.probes[1].any() for r in got)
    if take_after is None:
        assert two.starts_taken == 0
        assert float(np.median(held)) > 0.0015
    else:
        # About two ticks per held one: the held tick at 0.25 ms, the next at its own 0.25.
        assert two.starts_taken >= len(held) // 2
        # Started by the helper before the tick thread is back from its 1.7 ms hold (at
        # about 0.25 ms on an idle machine); the margin is for a busy one, where the
        # helper's own wake-up can take a millisecond (a suite run beside other work).
        assert float(np.median(held)) < 0.00125
        # Not flagged as caught up: the tick thread, back from its hold, reckons the tick's
        # deadline from its own place in the call, not from the grid the helper moved on.
        assert sum(after) < len(after) / 2


def test_take_after_is_checked() -> None:
    for bad in (-0.001, 1.0, math.nan):
        with pytest.raises(ValueError, match="take_after"):
            _chain_loop(True, take_after=bad)


def test_take_after_reaches_the_runs_in_nanoseconds() -> None:
    """The compiled stages compare ``take_after`` with CLOCK_MONOTONIC nanoseconds: 0.25 ms
    must arrive as 250,000 ns (a thousand times less would take over every stage at
    once, a thousand times more never), and None as -1, each waiting for the other."""
    _, _, default = _chain_loop(True)
    assert default.loop[L_TAKE_NS] == round(TAKE_AFTER * 1e9) == 250_000
    _, _, never = _chain_loop(True, take_after=None)
    assert never.loop[L_TAKE_NS] == -1
    _, _, zero = _chain_loop(True, take_after=0.0)
    assert zero.loop[L_TAKE_NS] == 0
    for loop in (default, never, zero):
        loop.close()


@pytest.mark.parametrize("held", [False, True])
def test_a_run_in_two_stages_finishes_every_tick_before_it_returns(held: bool) -> None:
    """Whatever ends a run (an interrupt from another thread here), the rows it ran are
    all published: Python may then read or change any array. So too when the helper runs
    some ticks' first stages (held: the tick thread begins every other tick 1.5 ms late),
    whichever thread the interrupt finds where."""
    _, native, loop = _chain_loop(True)
    if held:
        loop.loop[L_MAIN_LAG_NS] = 1_500_000
        loop.loop[L_MAIN_LAG_EVERY] = 2
    native.mailboxes[0].post(np.array([0.5, 0.5]), time.perf_counter(), None)
    timer = threading.Timer(0.05, loop.interrupt)
    timer.start()
    ticks = _run_until_control(loop, 0.001, [(1, 1)], max_catchup=1000)
    timer.join()
    assert loop.threaded
    assert ticks > 10
    if held:  # (without, the helper may still start a tick this machine held up)
        assert loop.starts_taken > 0
    rows = loop.take()
    assert len(rows) == int(loop.loop[L_HEAD]) == ticks
    assert [int(r.index[0]) for r in rows] == list(range(ticks))


def test_auto_tick_threads_cut_only_a_big_tick(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``tick_threads="auto"``: two stages from TWO_STAGE_BYTES of arrays per tick (the
    seed's 0.1 MB is far below it), one thread on a single CPU; 1 never cuts."""
    from spikestream.runtime import tickthreads as engine_module

    model = build(load_network(SEED))
    assert Engine(model, runs=True, tick_threads="auto").tick_threads == 1
    monkeypatch.setattr(engine_module, "TWO_STAGE_BYTES", 1000)
    auto = Engine(model, runs=True, tick_threads="auto")
    assert auto.tick_threads == 2
    assert auto.stages is not None
    assert Engine(model, runs=True, tick_threads=1).stages is None
    monkeypatch.setattr(engine_module.os, "sched_getaffinity", lambda pid: {0})
    assert Engine(model, runs=True, tick_threads="auto").tick_threads == 1
    with caplog.at_level("WARNING", logger="spikestream.engine"):
        assert Engine(model, runs=True, tick_threads=2).tick_threads == 1
    assert "--tick-threads 2 needs 2 CPUs; this process may use 1" in caplog.text
    with pytest.raises(ValueError, match=r"tick_threads is 3; expected 1, 2 or 'auto'"):
        Engine(model, runs=True, tick_threads=3)  # type: ignore[arg-type]


def _helper_tid() -> int | None:
    """The thread id of the second stage's helper (named spikestream-s2), if running."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().strip() == "spikestream-s2":
                return int(task.name)
    return None


@pytest.mark.parametrize("pin", [True, False])
def test_a_pinned_run_puts_the_two_threads_on_different_cpus_and_restores_the_mask(
    pin: bool,
) -> None:
    """Pinned (--pin-tick-threads), the tick thread keeps to one CPU for a run and the
    helper to the others; the tick thread's mask is restored when the run returns.
    Unpinned, both keep the process's mask in every sample. Sampled from /proc while
    ticks run: a run pins just after starting its helper, and a run that ends on an
    overrun restores the mask before the next one pins again, so pinned, the split must
    show up in at least one sample (not in all)."""
    allowed = os.sched_getaffinity(0)
    _, native, loop = _chain_loop(True)
    assert loop.stages is not None
    loop.loop[L_PIN] = pin
    native.mailboxes[0].post(np.array([0.5, 0.5]), time.perf_counter(), None)
    ticker: dict[str, Any] = {}

    def tick() -> None:
        ticker["tid"] = threading.get_native_id()
        # Sampling /proc on a busy machine can outlast the ring: rows are dropped then.
        _run_until_control(loop, 0.002, [(1, 1)], drain=True)
        ticker["after"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=tick)
    thread.start()
    samples: list[tuple[set[int], set[int]]] = []
    deadline = time.monotonic() + 10
    while len(samples) < 50 and time.monotonic() < deadline:
        helper = _helper_tid()
        if helper is not None and "tid" in ticker and int(loop.loop[L_HEAD]) > 0:
            with contextlib.suppress(OSError):
                samples.append((os.sched_getaffinity(ticker["tid"]), os.sched_getaffinity(helper)))
        time.sleep(0.002)
    loop.interrupt()
    thread.join(10)
    assert samples, "the helper thread was never seen"
    assert loop.threaded
    pinned = pin and len(allowed) >= 2
    assert loop.pinned is pinned
    split = [(m, t) for m, t in samples if len(m) == 1 and not m & t and m | t == allowed]
    if pinned:
        assert split
    else:
        assert all(m == t == allowed for m, t in samples)
    assert ticker["after"] == allowed  # restored when the run returned


def test_the_pin_asked_of_the_loop_is_the_pin_its_runs_use() -> None:
    """``TickLoop(pin=True)`` (--pin-tick-threads) reaches the compiled runs: a run in two
    stages then pins its threads where the process may use two CPUs; the default never
    pins."""
    from tests.sim.test_stages import chain

    sim = Simulator(build(parse_network(chain(8))))
    native = NativeTick(sim, [(_slot(sim), sim.inputs["u"])], spin=0.0)
    views = [sim.probe(name) for name in sorted(sim.model.probes)]
    plan = sim.two_stages([sim.inputs["u"]])
    assert plan is not None
    pinned = TickLoop(native, [sim.inputs["u"]], views, stages=plan, pin=True)
    assert pinned.loop[L_PIN] == 1
    _run_to_full(pinned)
    assert pinned.threaded
    assert pinned.pinned is (len(os.sched_getaffinity(0)) >= 2)
    pinned.close()
    _, _, unpinned = _chain_loop(True)
    assert unpinned.loop[L_PIN] == 0
    _run_to_full(unpinned)
    assert not unpinned.pinned
    unpinned.close()


def test_a_run_s_deadlines_count_from_the_grid_s_anchor_not_from_its_first_tick() -> None:
    """``run(t0, k0, period, next_index)``: tick k is due at ``t0 + (k - k0) * period``.
    After a pause or a realignment the engine resumes at a ``next_index`` past ``k0``;
    each row's deadline (what its lateness is measured against) must still be on the
    anchored grid, not ``next_index - k0`` periods early."""
    _, _, loop = _seed_loop()
    t0 = time.perf_counter() - 10.0  # every tick late: run back to back until full
    period = 0.001
    assert loop.run(t0, 3, period, 7, [(1, 1)], 0, 10**9) == RUN_FULL
    rows = loop.take()
    assert len(rows) == loop.capacity
    for j, row in enumerate(rows):
        assert int(row.index[0]) == 7 + j
        assert row.meta[1] == pytest.approx(t0 + (4 + j) * period, abs=1e-9)
    loop.done(len(rows))
    loop.close()


def test_a_closed_loop_looks_empty_and_signals_no_descriptor() -> None:
    """Once closed, ``look`` finds no row (last -1, as an empty ring) and the runs no
    longer write the wake-up descriptor: its number is free again, and a descriptor the
    process opens next may get it, which a run must not wake."""
    _, _, loop = _seed_loop()
    fd = loop.fd
    loop.close()
    tail, head, caught_up, trailing, changed, last, deadline, start = loop.look()
    assert (tail, head, caught_up, trailing, changed, last) == (0, 0, 0, 0, 0, -1)
    assert math.isnan(deadline)
    assert math.isnan(start)
    other = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        assert other == fd  # the lowest free number: the loop's old one
        assert loop.run(time.perf_counter() - 10.0, 0, 0.001, 0, [(1, 1)], 0, 10**9) == RUN_FULL
        with pytest.raises(BlockingIOError):
            os.eventfd_read(other)  # never woken
        assert loop.take() == []  # the rows it wrote are no one's to read
    finally:
        os.close(other)


def test_a_mailbox_takes_a_value_of_its_shape_or_one_that_becomes_it() -> None:
    """post() copies each value into the mailbox under the sequence lock: a (dim,) array,
    a 0-d array or a list of dim numbers; any other shape is refused, and a refused value
    leaves the mailbox as it was."""
    _, native, _ = _seed_loop()
    box = native.mailboxes[0]
    assert box.dim == 1
    box.post(np.array([0.25]), 1.0, None)
    np.testing.assert_array_equal(box.box, [1.0, math.inf, 0.25])
    box.post(np.array(0.5), 2.0, 9.0)
    np.testing.assert_array_equal(box.box, [2.0, 9.0, 0.5])
    box.post([0.75], 3.0, None)  # type: ignore[arg-type]
    np.testing.assert_array_equal(box.box, [3.0, math.inf, 0.75])
    with pytest.raises(ValueError, match=r"shape \(2,\); expected \(1,\)"):
        box.post(np.array([1.0, 2.0]), 4.0, None)
    np.testing.assert_array_equal(box.box, [3.0, math.inf, 0.75])
