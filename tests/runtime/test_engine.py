"""The real-time engine: frame buffers, input slots, commands, and the tick thread."""

from __future__ import annotations

import logging
import math
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.runtime.clock import FakeClock
from spikestream.runtime.engine import COMMANDS_PER_TICK, Command, Engine
from spikestream.runtime.offline import run_offline
from spikestream.runtime.priority import (
    lower_priority,
    raise_priority,
    request_slice,
    request_timer_slack,
    thread_slice,
)
from spikestream.runtime.slots import EXPIRED, NEW_VALUE, WENT_STALE, InputSlot
from spikestream.runtime.streams import ProbeStream
from spikestream.spec import load_network
from tests.runtime.test_streams import drain

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def test_input_slot_holds_latest_and_falls_back_after_ttl() -> None:
    slot = InputSlot("u", 2, np.array([0.1, 0.2]), ttl=0.5)
    target = np.zeros(2)
    assert not slot.apply(target, now=0.0)
    np.testing.assert_array_equal(target, [0, 0])  # nothing received yet: untouched
    slot.offer(np.array([1.0, 2.0]), received=10.0)
    slot.apply(target, now=10.1)
    np.testing.assert_array_equal(target, [1, 2])
    target[:] = 0
    slot.apply(target, now=10.2)  # same message: not copied again
    np.testing.assert_array_equal(target, [0, 0])
    assert slot.apply(target, now=10.7)  # stale: default, reported once
    np.testing.assert_array_equal(target, [0.1, 0.2])
    assert not slot.apply(target, now=10.8)
    slot.offer(np.array([3.0, 4.0]), received=11.0)
    slot.apply(target, now=11.0)
    np.testing.assert_array_equal(target, [3, 4])
    assert slot.stale_events == 1
    assert slot.accepted == 2


def test_input_slot_drops_a_value_past_its_own_expiry() -> None:
    """A value offered with an expiry falls back to the default at that time, even with no
    TTL (which would hold it forever); a later value without one holds again."""
    slot = InputSlot("u", 1, np.array([0.25]), ttl=None)
    target = np.zeros(1)
    slot.offer(np.array([1.0]), received=10.0, expires=11.5)
    assert slot.apply(target, now=10.0)
    np.testing.assert_array_equal(target, [1.0])
    assert not slot.apply(target, now=11.5)  # not yet: expired only after the deadline
    assert slot.apply(target, now=11.6)
    np.testing.assert_array_equal(target, [0.25])
    assert slot.stale_events == 1
    slot.offer(np.array([2.0]), received=20.0)
    assert slot.apply(target, now=1e6)  # no expiry, no TTL: held
    np.testing.assert_array_equal(target, [2.0])


def test_a_value_that_expires_before_any_tick_applies_it_is_counted() -> None:
    """With a TTL shorter than the gap to the next tick, or a message that arrived with
    little of its expiry left, a value vanished: accepted, never applied, not stale and no
    event (0 of 100 values drove the network under ``set ttl 1e-9``)."""
    slot = InputSlot("u", 1, np.array([0.0]), ttl=1e-3)
    target = np.zeros(1)
    slot.offer(np.array([0.7]), received=10.0)
    assert slot.apply(target, now=10.01) == EXPIRED  # stale from the start: EXPIRED alone
    np.testing.assert_array_equal(target, [0.0])
    assert slot.apply(target, now=10.02) == 0  # counted once
    slot.offer(np.array([0.8]), received=10.03)
    assert slot.apply(target, now=10.03) == NEW_VALUE
    slot.offer(np.array([0.9]), received=10.04)
    assert slot.apply(target, now=10.05) == EXPIRED | WENT_STALE  # 0.8 drove it; 0.9 never
    np.testing.assert_array_equal(target, [0.0])
    assert (slot.accepted, slot.expired, slot.stale_events) == (3, 2, 1)
    assert slot.superseded == 0
    # Each count under its own key in the stats (distinct here: a key reading another fails).
    assert slot.counts() == {
        "accepted": 3,
        "rejected": 0,
        "stale": 1,
        "expired": 2,
        "superseded": 0,
    }


def test_a_value_drives_the_network_for_exactly_its_ttl_and_no_longer() -> None:
    """The TTL is how long a value drives the network: at exactly ``ttl`` seconds after it
    was received it is still applied and fresh, and only past that it falls back to the
    default. The tick and the freshness the stats show agree at the boundary (times chosen
    so ``now - received`` is exact in binary)."""
    slot = InputSlot("u", 1, np.array([0.25]), ttl=0.5)
    target = np.zeros(1)
    slot.offer(np.array([1.0]), received=10.0)
    assert slot.freshness(10.5) == (0.5, False)
    assert slot.apply(target, now=10.5) == NEW_VALUE  # received exactly ttl ago: applied
    np.testing.assert_array_equal(target, [1.0])
    after = float(np.nextafter(10.5, np.inf))
    assert slot.freshness(after)[1] is True
    assert slot.apply(target, now=after) == WENT_STALE
    np.testing.assert_array_equal(target, [0.25])
    assert (slot.expired, slot.stale_events) == (0, 1)


def test_after_a_reset_a_value_that_expires_unapplied_is_not_a_stale_event() -> None:
    """A reset puts the input back on its default: a value that then expires before any
    tick applies it is counted in ``expired`` only. It is no WENT_STALE change (which the
    replay log would record, and which would report an ``input_stale`` event for an input
    that never left its default), and the counters say so."""
    slot = InputSlot("u", 1, np.array([0.25]), ttl=1e-3)
    target = np.zeros(1)
    slot.offer(np.array([0.7]), received=10.0)
    assert slot.apply(target, now=10.0) == NEW_VALUE  # fresh: not stale
    slot.clear()
    target[:] = 0.25  # the simulator's reset puts the default back
    slot.offer(np.array([0.8]), received=11.0)
    assert slot.apply(target, now=12.0) == EXPIRED  # never applied, and nothing went stale
    np.testing.assert_array_equal(target, [0.25])
    assert slot.counts() == {
        "accepted": 2,
        "rejected": 0,
        "stale": 0,
        "expired": 1,
        "superseded": 0,
    }


def test_a_value_replaced_before_any_tick_applies_it_is_counted() -> None:
    """The slot holds the latest value: one replaced by a newer before a tick took it never
    drove the network, and is counted in ``superseded`` (not lost silently); so are the
    values a reset forgets before any tick took them (a reset after 20 values sent while
    paused left all 20 uncounted)."""
    slot = InputSlot("u", 1, np.array([0.0]), ttl=1e-3)
    target = np.zeros(1)
    for x in (0.1, 0.2, 0.3):
        slot.offer(np.array([x]), received=10.0)
    assert slot.apply(target, now=10.0) == NEW_VALUE
    np.testing.assert_array_equal(target, [0.3])
    assert (slot.accepted, slot.superseded) == (3, 2)
    slot.offer(np.array([0.4]), received=10.0)
    slot.offer(np.array([0.5]), received=10.0)
    assert slot.apply(target, now=10.5) == EXPIRED | WENT_STALE  # 0.5 expired, 0.4 replaced
    assert (slot.superseded, slot.expired) == (3, 1)
    slot.offer(np.array([0.6]), received=11.0)
    slot.offer(np.array([0.65]), received=11.0)
    slot.clear()
    assert slot.superseded == 5  # both forgotten by the reset
    slot.clear()
    assert slot.superseded == 5  # nothing more to forget
    slot.offer(np.array([0.7]), received=11.0)
    assert slot.apply(target, now=11.0) == NEW_VALUE
    assert slot.superseded == 5
    assert slot.counts()["superseded"] == 5
    assert slot.accepted == slot.superseded + slot.expired + 2  # + 0.3 and 0.7 applied


def test_a_value_offered_while_a_reset_clears_the_slot_is_never_a_negative_count() -> None:
    """``offer`` counts a value, then stores it; a reset (``clear``, on the tick thread) can
    run between the two, forgetting what was counted before it, this value included. If
    the store then lands, a tick applies that value: applied, and counted once as the
    reset's too (the one interleaving that counts a value twice), never minus one. (The
    interleaving is played step by step: the store after the clear.)"""
    slot = InputSlot("u", 1, np.array([0.0]), ttl=None)
    target = np.zeros(1)
    slot.offer(np.array([0.5]), received=10.0)  # counted and stored...
    landed = slot._latest
    slot.clear()  # ...the reset runs between the count and the store...
    slot._latest = landed  # ...and the store lands after it
    assert slot.apply(target, now=10.0) == NEW_VALUE
    np.testing.assert_array_equal(target, [0.5])
    assert slot.superseded == 1
    slot.offer(np.array([0.6]), received=10.0)
    slot.offer(np.array([0.7]), received=10.0)
    assert slot.apply(target, now=10.0) == NEW_VALUE
    assert slot.superseded == 2  # counting resumes from the value applied


def wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_engine_frames_reproduce_the_offline_run() -> None:
    """With a fake clock the tick thread runs flat out; its spike frames must equal an
    offline run fed the same (constant) input."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=10_000)
    engine.inputs["u"].offer(np.array([0.7]), received=0.0)
    engine.start()
    wait_for(lambda: engine.sim.tick >= 2000)
    engine.stop()
    assert engine.failure is None
    frames = drain(engine.streams["b_spikes"])
    got = np.concatenate([f[3] for f in frames])
    assert [f[0] for f in frames] == list(range(len(frames)))
    ticks = got.shape[0]
    offline = run_offline(model, ticks, inputs={"u": np.full((ticks, 1), 0.7)})
    np.testing.assert_array_equal(got, offline["b.spikes"].astype(bool))
    values = np.concatenate([f[3] for f in drain(engine.streams["b_filtered"])])
    np.testing.assert_allclose(values, offline["b_filtered"][: values.shape[0]], rtol=1e-6)


def test_work_windows_time_each_ticks_work_not_its_wait() -> None:
    """On the Python path the engine's clock times the inputs and kernels: a step that
    takes 0.25 ms (of fake time) is 0.25 ms of work, while the tick is on time."""
    clock = FakeClock()
    engine = Engine(build(load_network(SEED)), clock=clock, queue_capacity=4)
    assert engine.tick_path.startswith("python")
    step = engine.sim.step

    def slow_step() -> None:
        step()
        clock.advance(0.00025)

    engine.sim.step = slow_step  # type: ignore[method-assign]
    engine.start()
    wait_for(lambda: engine.sim.tick >= 3000)
    engine.stop()
    assert engine.failure is None
    stats = engine.statistics()
    one, ten = stats.work
    assert 900 <= one.ticks <= 1000 < ten.ticks  # 1 ms ticks, each a 0.25 ms step
    for w in (one, ten):
        assert w.lateness.p50 == pytest.approx(0.00025, rel=0.03)  # the histogram's error
        assert w.lateness.max == pytest.approx(0.00025, rel=1e-9)  # exact
    assert stats.pacer.recent[0].lateness.max == 0.0  # and no tick started late


def test_engine_commands_pause_reset_and_set() -> None:
    model = build(load_network(SEED))
    woken: list[int] = []
    engine = Engine(model, clock=FakeClock(), queue_capacity=4, notify=lambda: woken.append(1))
    engine.start()
    wait_for(lambda: engine.sim.tick > 100)
    engine.submit(Command("pause", id="1"))
    wait_for(lambda: engine.statistics().paused)
    held = engine.sim.tick
    time.sleep(0.05)
    assert engine.sim.tick == held
    engine.submit(Command("set", key="realtime_factor", value=2.5, id="2"))
    engine.submit(Command("set", key="volume", value=1, id="3"))
    engine.submit(Command("reset", id="4"))
    wait_for(lambda: len(engine.events) >= 4)
    assert engine.sim.tick == 0
    engine.submit(Command("resume"))
    wait_for(lambda: engine.sim.tick > 10)
    engine.stop()
    events = list(engine.events)
    by_id = {e.get("id"): e for e in events}
    assert by_id["1"]["event"] == "control_ok"
    assert by_id["1"]["paused"] is True
    assert by_id["2"]["realtime_factor"] == 2.5
    assert by_id["3"]["event"] == "control_rejected"
    assert "cannot set 'volume'; settable keys" in by_id["3"]["error"]
    assert by_id["4"]["tick"] == 0
    assert engine.pacer.realtime_factor == 2.5
    assert woken, "the publisher was never notified"


def test_raise_priority_reports_what_the_os_granted(caplog: pytest.LogCaptureFixture) -> None:
    """SCHED_FIFO when this process may have it (root, CAP_SYS_NICE or an rtprio limit),
    otherwise ordinary scheduling with the reason; the calling thread only."""
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 10
    outcome: list[tuple[str, int]] = []

    def probe() -> None:
        result = raise_priority(10, thread="I/O thread")
        outcome.append((result, os.sched_getscheduler(0)))

    worker = threading.Thread(target=probe)
    with caplog.at_level(logging.INFO, logger="spikestream.engine"):
        worker.start()
        worker.join()
    ((result, policy),) = outcome
    # The line names the thread it is about: the I/O thread's said "tick thread".
    (said,) = [
        r.getMessage()
        for r in caplog.records
        if "SCHED_FIFO" in r.getMessage() or "real-time priority" in r.getMessage()
    ]
    if allowed:
        assert (result, policy) == ("SCHED_FIFO 10", os.SCHED_FIFO)
        assert said == "I/O thread runs under SCHED_FIFO"
    else:
        assert result.startswith("normal (")
        assert policy == os.SCHED_OTHER
        assert said == "could not give the I/O thread real-time priority"
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread is untouched
    assert raise_priority(0) == "normal (not requested)"


def test_raise_priority_caps_the_priority_at_99(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--tick-priority`` above the OS's range is capped at 99, not handed on to be
    refused as invalid; a refusal by the OS is reported, never raised."""
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 99
    outcome: list[tuple[str, int, int]] = []

    def probe() -> None:
        result = raise_priority(150)
        outcome.append((result, os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    ((result, policy, level),) = outcome
    if allowed:
        assert (result, policy, level) == ("SCHED_FIFO 99", os.SCHED_FIFO, 99)
    else:
        assert result == "normal (Operation not permitted)"

    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert raise_priority(10) == "normal (Operation not permitted)"


def slices_by_thread() -> dict[int, int]:
    """Every thread of this process: its scheduling slice in ns (/proc, Linux 6.13+)."""
    return {
        int(task.name): ns
        for task in Path("/proc/self/task").iterdir()
        if (ns := thread_slice(task / "sched")) is not None
    }


def test_request_slice_shortens_the_calling_threads_slice_only() -> None:
    """``--tick-slice``: the calling thread's EEVDF slice becomes the request (the kernel
    here reports it), its nice value is kept, and no other thread's slice changes. The
    project's machines run Linux 6.18; a kernel without slices fails this test rather
    than skipping it."""
    before = thread_slice()
    assert before is not None
    assert before > 200_000, before  # the kernel's default
    outcome: dict[str, object] = {}

    def worker() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + 3)
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        outcome["result"] = request_slice(0.0002)
        outcome["slice"] = thread_slice()
        outcome["nice kept"] = os.getpriority(os.PRIO_PROCESS, tid) == nice
        outcome["zero"] = request_slice(0.0)
        outcome["nan"] = request_slice(float("nan"))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert outcome == {
        "result": "0.2 ms",
        "slice": 200_000,
        "nice kept": True,
        "zero": "kernel default (not requested)",
        "nan": "kernel default (not requested)",
    }
    assert thread_slice() == before


def test_an_infinite_slice_is_not_requested() -> None:
    """``--tick-slice inf`` is no slice: the thread keeps the kernel's default rather
    than asking for the longest slice there is (a tick thread that preempts nothing)."""
    outcome: dict[str, object] = {}

    def probe() -> None:
        before = thread_slice()
        outcome["result"] = request_slice(math.inf)
        outcome["kept"] = thread_slice() == before

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    assert outcome == {"result": "kernel default (not requested)", "kept": True}


def test_the_engine_gives_its_tick_thread_the_slice() -> None:
    engine = Engine(build(load_network(SEED)), tick_slice=0.0003)
    mine = slices_by_thread()
    engine.start()
    try:
        wait_for(lambda: engine.sim.tick > 10)
        now = slices_by_thread()
    finally:
        engine.stop()
    assert engine.failure is None
    assert engine.tick_slice_granted == "0.3 ms"
    changed = {tid: ns for tid, ns in now.items() if mine.get(tid) != ns}
    assert list(changed.values()) == [300_000]  # the tick thread alone


def test_request_timer_slack_sets_the_calling_threads_slack_only() -> None:
    mine = request_timer_slack(0)  # 0: only read it
    assert mine is not None
    assert mine > 1  # the default 50 us, or what this process has
    outcome: dict[str, int | None] = {}

    def worker() -> None:
        outcome["set"] = request_timer_slack(1)
        outcome["again"] = request_timer_slack(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert outcome == {"set": 1, "again": 1}
    assert request_timer_slack(0) == mine  # this thread's is untouched


def test_the_engine_gives_its_tick_thread_a_1_ns_timer_slack() -> None:
    before = request_timer_slack(0)
    engine = Engine(build(load_network(SEED)))
    assert engine.timer_slack_ns is None  # not started
    engine.start()
    try:
        wait_for(lambda: engine.sim.tick > 10)
    finally:
        engine.stop()
    assert engine.failure is None
    assert engine.timer_slack_ns == 1
    assert request_timer_slack(0) == before


def test_lower_priority_lowers_the_calling_thread_only() -> None:
    """The I/O thread's ``--io-nice``: a thread started before keeps its nice value, the
    calling thread's goes up by the step (capped at 19), threads it starts later inherit
    it, and no other thread (this one) changes."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = nice()
    seen: dict[str, int] = {}
    release = threading.Event()

    def before() -> None:
        release.wait(5)
        seen["before"] = nice()

    def io() -> None:
        early = threading.Thread(target=before)
        early.start()
        seen["result"] = lower_priority(5)  # type: ignore[assignment]
        seen["io"] = nice()
        later = threading.Thread(target=lambda: seen.__setitem__("after", nice()))
        later.start()
        later.join()
        release.set()
        early.join()
        seen["again"] = lower_priority(30)  # type: ignore[assignment]
        seen["capped"] = nice()

    worker = threading.Thread(target=io)
    worker.start()
    worker.join()
    assert seen["io"] == min(19, base + 5)
    assert seen["result"] == f"nice {seen['io']}"
    assert seen["before"] == base
    assert seen["after"] == seen["io"]
    assert seen["capped"] == 19
    assert nice() == base
    assert lower_priority(0) == "unchanged (not requested)"


def test_lower_priority_reports_the_nice_value_the_kernel_keeps() -> None:
    """A step past 19 is capped there (the kernel would clamp it anyway): the outcome
    reported for logs and statistics is the nice value in force, not the sum asked."""
    seen: dict[str, object] = {}

    def io() -> None:
        seen["result"] = lower_priority(40)
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    worker = threading.Thread(target=io)
    worker.start()
    worker.join()
    assert seen == {"result": "nice 19", "nice": 19}


def test_engine_reports_a_real_time_policy_it_inherited() -> None:
    """Started from a SCHED_FIFO thread (as under ``chrt``) without ``rt_priority``, the
    tick thread inherits the policy, and the engine says so instead of "not requested"."""
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 5
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock())

    def start_under_fifo() -> None:
        if allowed:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
        engine.start()  # the tick thread is created here, from this thread

    starter = threading.Thread(target=start_under_fifo)
    starter.start()
    starter.join()
    wait_for(lambda: engine.sim.tick > 10)
    engine.stop()
    assert engine.failure is None
    if allowed:
        assert (engine.fifo_priority, engine.realtime_priority) == (
            5,
            "SCHED_FIFO 5 (inherited)",
        )
    else:
        assert (engine.fifo_priority, engine.realtime_priority) == (0, "normal (not requested)")


# ---------------------------------------------------------------------- hostile commands


def events_by_id(engine: Engine) -> dict[str | None, dict[str, object]]:
    return {e.get("id"): e for e in engine.events}


def submit_and_wait(engine: Engine, *commands: Command) -> dict[str | None, dict[str, object]]:
    before = len(engine.events)
    for cmd in commands:
        engine.submit(cmd)
    wait_for(lambda: len(engine.events) >= before + len(commands))
    return events_by_id(engine)


def test_ticks_per_frame_is_bounded_by_the_memory_budget() -> None:
    model = build(load_network(SEED))
    limit = 8 * 2**20
    engine = Engine(model, clock=FakeClock(), queue_capacity=4, memory_limit=limit)
    bound = engine.max_ticks_per_frame()
    assert bound is not None
    engine.start()
    try:
        got = submit_and_wait(
            engine,
            Command("set", key="ticks_per_frame", value=10**9, id="huge"),
            Command("set", key="ticks_per_frame", value=bound + 1, id="over"),
            Command("set", key="ticks_per_frame", value=bound, id="at"),
        )
        assert got["huge"]["event"] == "control_rejected"
        assert (
            f"set ticks_per_frame: 1000000000 is not allowed; expected an integer in [1, {bound}], "
            "the largest the memory budget and a frame's 16 MiB allow" in str(got["huge"]["error"])
        )
        assert got["over"]["event"] == "control_rejected"
        assert got["at"]["event"] == "control_ok"
        assert all(s.ticks_per_frame == bound for s in engine.streams.values())
        # The pools allocated fit the limit with the network beside them.
        pools = sum(s.bytes_per_tick() * s.ticks_per_frame for s in engine.streams.values())
        assert pools <= limit
        assert engine.statistics().commands_rejected == 2
        wait_for(lambda: engine.sim.tick > 50)
        assert engine.running
    finally:
        engine.stop()


@pytest.mark.parametrize("policy", ["drop-oldest", "coalesce"])
def test_ticks_per_frame_is_bounded_by_what_a_client_decodes(policy: str) -> None:
    """Without a memory limit ``set ticks_per_frame`` had no bound: frames past 16 MiB
    were published, which every client dropped unread and a broker with a packet limit
    answered by closing the connection. The widest probe of the seed network, 50 float32
    values a tick, holds (16 MiB - 2 KiB) / 200 bytes = 83,875 ticks; coalesced frames
    may grow 8-fold."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4, queue_policy=policy)
    bound = (16 * 2**20 - 2048) // 200 // (8 if policy == "coalesce" else 1)
    assert engine.max_ticks_per_frame() == bound
    engine.start()
    try:
        got = submit_and_wait(
            engine,
            Command("set", key="ticks_per_frame", value=bound + 1, id="over"),
            Command("set", key="ticks_per_frame", value=bound, id="at"),
        )
        assert got["over"]["event"] == "control_rejected"
        assert f"expected an integer in [1, {bound}], the largest" in str(got["over"]["error"])
        assert got["at"]["event"] == "control_ok"
    finally:
        engine.stop()


def test_memory_error_from_a_command_is_a_refusal_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A MemoryError while reallocating the third probe's pool: no probe is resized, the
    tick thread goes on, seq stays contiguous."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)
    calls = []
    real = ProbeStream.allocate

    def failing(self: ProbeStream, ticks_per_frame: int) -> list[object]:
        calls.append(self.name)
        if len(calls) == 3:
            raise MemoryError
        return real(self, ticks_per_frame)  # type: ignore[return-value]

    monkeypatch.setattr(ProbeStream, "allocate", failing)
    before = {n: s.ticks_per_frame for n, s in engine.streams.items()}
    assert len(before) >= 3
    engine.start()
    try:
        wait_for(lambda: engine.sim.tick > 20)
        got = submit_and_wait(engine, Command("set", key="ticks_per_frame", value=50, id="m"))
        assert got["m"]["event"] == "control_rejected"
        assert str(got["m"]["error"]).startswith("MemoryError: the command needs more memory")
        assert {n: s.ticks_per_frame for n, s in engine.streams.items()} == before
        ticked = engine.sim.tick
        wait_for(lambda: engine.sim.tick > ticked + 50)
        assert engine.running
        assert engine.failure is None
    finally:
        engine.stop()


@pytest.mark.parametrize("error", [RuntimeError("boom"), ZeroDivisionError(), KeyError("k")])
def test_any_exception_from_a_command_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)

    def broken() -> None:
        raise error

    monkeypatch.setattr(engine.sim, "reset", broken)
    engine.start()
    try:
        wait_for(lambda: engine.sim.tick > 20)
        got = submit_and_wait(
            engine, Command("reset", id="r"), Command("bogus", id="b"), Command("set", id="k")
        )
        assert got["r"]["event"] == "control_rejected"
        assert str(got["r"]["error"]).startswith(type(error).__name__)
        assert "unknown command 'bogus'; expected one of pause, resume" in str(got["b"]["error"])
        assert "cannot set None; settable keys: realtime_factor" in str(got["k"]["error"])
        ticked = engine.sim.tick
        wait_for(lambda: engine.sim.tick > ticked + 20)
        assert engine.running
        assert engine.statistics().commands_rejected == 3
    finally:
        engine.stop()


def test_unvalidated_values_reaching_the_engine_are_checked_again() -> None:
    """The engine checks every value against the schema too (a command from code, not from
    the wire): nothing is changed by a refused one."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)
    engine.start()
    try:
        got = submit_and_wait(
            engine,
            Command("set", key="realtime_factor", value=float("inf"), id="inf"),
            Command("set", key="realtime_factor", value="2", id="str"),
            Command("set", key="ttl", value=-1.0, id="neg"),
            Command("learn", value=True, id="learn"),
        )
        assert (
            "set realtime_factor: inf is not allowed; expected a finite number in [0, 1e+06]"
            in (str(got["inf"]["error"]))
        )
        assert "set realtime_factor: '2' is not allowed" in str(got["str"]["error"])
        assert "set ttl: -1.0 is not allowed" in str(got["neg"]["error"])
        assert "no learning connection" in str(got["learn"]["error"])
        assert engine.pacer.realtime_factor == 1.0
        assert all(slot.ttl is None for slot in engine.inputs.values())
    finally:
        engine.stop()


def test_a_command_flood_is_refused_and_undrained_events_are_counted() -> None:
    """Commands beyond the queue are refused (not pushed out); events the I/O side does
    not drain fall off the oldest end and are counted."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)
    accepted = [engine.submit(Command("status", id=str(i))) for i in range(1100)]
    assert accepted.count(True) == 1024
    assert engine.events[0]["event"] == "control_rejected"
    assert engine.events[0]["id"] == "1024"
    assert "the command queue is full" in engine.events[0]["error"]
    engine.start()
    try:
        wait_for(lambda: engine.commands_applied == 1024)
    finally:
        engine.stop()
    stats = engine.statistics()
    assert stats.commands_rejected == 1100 - 1024
    # 76 refusals and 1024 replies: the oldest 76 fell off the event queue, counted.
    assert len(engine.events) == 1024
    assert stats.events_dropped == 1100 - 1024
    assert engine.events[-1]["id"] == "1023"


def test_status_reply_gives_the_settings_in_force() -> None:
    """``status`` reports every settable key as it is now, after changes."""
    model = build(load_network(Path(__file__).parents[2] / "examples" / "learn.toml"))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)
    engine.start()
    try:
        replies = submit_and_wait(
            engine,
            Command("set", key="ttl", value=0.25, id="1"),
            Command("set", key="ticks_per_frame", value=3, id="2"),
            Command("set", key="learning_rate", value=0.5, id="3"),
            Command("learn", value=False, id="4"),
            Command("set", key="realtime_factor", value=0.0, id="5"),
            Command("status", id="6", reply=("lab/replies", b"c")),
        )
    finally:
        engine.stop()
    status = replies["6"]
    assert status["event"] == "control_ok"
    assert status["reply"] == ("lab/replies", b"c")  # the route comes back untouched
    settings = status["settings"]
    assert isinstance(settings, dict)
    assert settings["realtime_factor"] == 0.0
    assert settings["ttl"] == dict.fromkeys(model.inputs, 0.25)
    assert settings["ticks_per_frame"] == dict.fromkeys(model.probes, 3)
    learners = engine.sim.learning_connections()
    assert learners
    assert settings["learning_rate"] == dict.fromkeys(learners, 0.5)
    assert settings["learning"] == dict.fromkeys(learners, False)


def test_a_command_flood_is_applied_in_slices_with_ticks_between() -> None:
    """At most COMMANDS_PER_TICK commands apply between two ticks: 400 queued at once
    (each may reallocate frame pools) no longer hold the tick thread until all are done."""
    model = build(load_network(SEED))
    engine = Engine(model, clock=FakeClock(), queue_capacity=4)
    for i in range(400):
        assert engine.submit(Command("status", id=str(i)))
    engine.start()
    try:
        wait_for(lambda: engine.commands_applied == 400)
    finally:
        engine.stop()
    ticks = [e["tick"] for e in engine.events if e["event"] == "control_ok"]
    assert len(ticks) == 400
    assert ticks == sorted(ticks)  # in order
    assert COMMANDS_PER_TICK <= 8  # a slice stays small next to a 1 ms tick
    assert max(ticks.count(t) for t in set(ticks)) <= COMMANDS_PER_TICK
    assert len(set(ticks)) >= 400 // 8  # all in one tick before


def test_at_a_slow_factor_a_flood_applies_at_once_and_stop_comes_promptly() -> None:
    """Slices of commands wait for a tick only when one is due: with a 3 s tick, five
    commands (two slices) used to wait for the next tick, and so did ``stop``."""
    model = build(load_network(SEED))
    engine = Engine(model, realtime_factor=model.dt / 3.0)  # a 3 s tick
    engine.start()
    try:
        wait_for(lambda: engine.pacer.statistics().ticks >= 1)
        for i in range(2 * COMMANDS_PER_TICK + 1):
            engine.submit(Command("status", id=str(i)))
        wait_for(lambda: engine.commands_applied == 2 * COMMANDS_PER_TICK + 1, timeout=0.5)
    finally:
        started = time.monotonic()
        engine.stop()
        stopped = time.monotonic() - started
    assert stopped < 0.5, f"stop took {stopped:.2f} s"


def test_commands_still_queued_at_stop_are_each_refused() -> None:
    """The tick thread applies a slice and stops: the rest of the queue is refused, each
    with its id (184 of 200 went unanswered)."""
    model = build(load_network(SEED))
    engine = Engine(model)
    for i in range(200):
        engine.submit(Command("status", id=str(i)))
    engine._stop.set()  # stop before the first pass: one slice at most is applied
    engine.start()
    engine.stop()
    answered = {e["id"]: e for e in engine.events if e.get("id") is not None}
    assert sorted(answered, key=int) == [str(i) for i in range(200)]
    refused = [e for e in answered.values() if e["event"] == "control_rejected"]
    assert refused
    assert all("the service is stopping" in e["error"] for e in refused)


def test_a_resumed_seq_jumps_at_most_half_the_room_a_snapshot_leaves() -> None:
    """After a restart, seq jumps past every frame the previous process could have sent
    since its snapshot: with the fastest factor and a snapshot from 1970 that was 10**21
    frames, far past the 2**53-1 a frame may carry. The jump is capped at 2**39, half
    the room a snapshot's counters must leave."""
    engine = Engine(build(load_network(SEED)), clock=FakeClock(), realtime_factor=1e6)
    limit = 2**53 - 1 - 2**40
    engine.resume_counters(
        {"engine.wall": np.float64(0.0), "engine.seq.a_spikes": np.int64(limit)}, now=1.8e9
    )
    seq = engine.streams["a_spikes"].seq
    assert limit + 2**39 <= seq <= 2**53 - 1
