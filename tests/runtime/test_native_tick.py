"""The compiled live tick: the deadline wait, the input mailboxes and the engine's path."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.runtime.clock import FakeClock, SystemClock
from spikestream.runtime.engine import Engine
from spikestream.runtime.native_tick import NativeTick
from spikestream.runtime.slots import EXPIRED, NEW_VALUE, WENT_STALE, InputSlot
from spikestream.sim import Simulator
from spikestream.sim.native import extension
from spikestream.spec import load_network, parse_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def ext():  # type: ignore[no-untyped-def]
    module = extension()
    assert module is not None, "spikestream.sim._native was not built"
    return module


def test_the_extension_reads_the_system_clocks_time_line() -> None:
    for _ in range(100):
        before = time.perf_counter()
        now = ext().now()
        after = time.perf_counter()
        assert before - 1e-6 <= now <= after + 1e-6


@pytest.mark.parametrize("spin", [0.0, 0.0002])
def test_sleep_until_never_returns_before_the_deadline(spin: float) -> None:
    for _ in range(20):
        deadline = time.perf_counter() + 0.002
        end = ext().sleep_until(deadline, spin)
        assert end >= deadline
        assert time.perf_counter() >= deadline
    with pytest.raises(ValueError, match="spin"):
        ext().sleep_until(0.0, -1.0)


def _one_input_sim(dim: int, dtype: str = "float64") -> Simulator:
    return Simulator(
        build(
            parse_network(
                {
                    "network": {"seed": 3, "dtype": dtype},
                    "populations": {"a": {"n": 50, "dim": dim}},
                    "inputs": {"u": {"dim": dim, "target": "a", "default": [0.25] * dim}},
                    "probes": {"pu": {"target": "u", "kind": "input"}},
                }
            )
        )
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_mailbox_applies_exactly_what_the_slot_applies(dtype: str) -> None:
    """The C rules (new value, TTL, the message's own expiry, reset) against
    InputSlot.apply, step by step on the same offers at the same times."""
    sim = _one_input_sim(3, dtype)
    target = sim.inputs["u"]
    slot = InputSlot("u", 3, np.full(3, 0.25), ttl=None)
    tick = NativeTick(sim, [(slot, target)], spin=0.0)
    box = tick.mailboxes[0]
    reference = InputSlot("u", 3, np.full(3, 0.25), ttl=None)
    mirror = target.copy()
    flags: list[int] = []

    def replaced(value: list[float]) -> None:
        """Offer ``value`` to both, for the next step's offer to replace before a tick."""
        now = time.perf_counter()
        slot.offer(np.array(value), now, None)
        reference.offer(np.array(value), now, None)

    def step(offer: tuple[list[float], float, float | None] | None = None) -> None:
        if offer is not None:
            value, age, expires_in = offer
            now = time.perf_counter()
            exp = None if expires_in is None else now + expires_in
            slot.offer(np.array(value), now - age, exp)
            reference.offer(np.array(value), now - age, exp)
        start = tick(-math.inf)
        flag = box.flag()
        slot.applied(flag, box.applied_number())
        assert flag == reference.apply(mirror, start)
        assert slot._applied == reference._applied
        # Every value accounted for alike, tick by tick (totals alone can agree by chance).
        assert slot.counts() == reference.counts()
        np.testing.assert_array_equal(target, mirror)
        flags.append(flag)

    step()  # nothing received: untouched
    step(([1.0, 2.0, 3.0], 0.0, None))  # applied
    step()  # the same message: nothing
    slot.ttl = reference.ttl = 0.05
    step(([4.0, 5.0, 6.0], 1.0, None))  # received a second ago: stale at once -> default
    step(([7.0, 8.0, 9.0], 0.0, None))  # fresh again
    step(([1.5, 2.5, 3.5], 0.0, -0.001))  # past its own expiry -> default
    # Expired before any tick applied it, on an input already on its default: it never
    # drove the network, and is counted (it vanished without a trace); so is the value it
    # replaced before that tick.
    replaced([6.5, 6.5, 6.5])
    step(([5.5, 5.5, 5.5], 0.0, -0.001))
    step()  # counted once
    slot.ttl = reference.ttl = None
    replaced([3.0, 3.0, 3.0])
    replaced([3.5, 3.5, 3.5])
    step(([2.0, 0.5, 1.0], 0.0, 30.0))  # the last of three offers
    replaced([4.0, 4.0, 4.0])
    slot.clear()
    reference.clear()  # what came before a reset and was not taken: counted as superseded
    step()  # forgotten after a reset: nothing applied
    step(([9.0, 9.0, 9.0], 0.0, None))
    gone = WENT_STALE | EXPIRED
    assert flags == [0, NEW_VALUE, 0, gone, NEW_VALUE, gone, EXPIRED, 0, NEW_VALUE, 0, NEW_VALUE]
    assert slot.stale_events == reference.stale_events == 2
    assert slot.expired == reference.expired == 3
    assert slot.superseded == reference.superseded == 4  # 4.0 forgotten by the reset


def test_a_ttl_given_before_the_slot_is_bound_applies_in_the_compiled_tick() -> None:
    """An input whose TTL comes from the network file has it before the compiled tick binds
    its slot: the mailbox takes it then, so a value received longer than the TTL ago
    expires unapplied there too, as :meth:`InputSlot.apply` says."""
    sim = _one_input_sim(2)
    target = sim.inputs["u"]
    slot = InputSlot("u", 2, np.full(2, 0.25), ttl=0.05)
    tick = NativeTick(sim, [(slot, target)], spin=0.0)
    box = tick.mailboxes[0]
    slot.offer(np.array([1.0, 2.0]), time.perf_counter() - 1.0, None)  # a second old
    tick(-math.inf)
    flag = box.flag()
    slot.applied(flag, box.applied_number())
    assert flag == EXPIRED
    np.testing.assert_array_equal(target, [0.25, 0.25])
    assert slot.expired == 1


def test_a_value_is_never_read_half_written() -> None:
    """A writer posts vectors whose 16 components are equal while ticks read them: each
    applied vector is whole, and values only move forward. Each tick spins 20 µs without
    the GIL first, so the writer posts while the tick reads; for a second of wall time, so
    a busy machine gives the writer fewer turns but the same length of test."""
    sim = _one_input_sim(16)
    target = sim.inputs["u"]
    slot = InputSlot("u", 16, np.zeros(16), ttl=None)
    tick = NativeTick(sim, [(slot, target)], spin=1.0)
    stop = threading.Event()
    posted = [0]

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            slot.offer(np.full(16, float(k)), time.perf_counter())
        posted[0] = k

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[float] = []
    try:
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            tick(time.perf_counter() + 20e-6)
            if tick.mailboxes[0].flag() == NEW_VALUE:
                assert (target == target[0]).all(), target
                seen.append(float(target[0]))
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 20, len(seen)
    assert seen == sorted(seen)
    assert posted[0] > len(seen)


def test_the_c_source_uses_the_mailbox_columns() -> None:
    """``_native_inputs.h``'s input-table and state columns are this module's."""
    from spikestream.runtime import native_tick

    source = (Path(__file__).parents[2] / "service/spikestream/sim/_native_inputs.h").read_text()
    assert "enum { IN_MAILBOX, IN_DEFAULT, IN_TARGET, IN_DIM, IN_SCRATCH, IN_COLUMNS };" in source
    assert "enum { ST_SEQ, ST_APPLIED, ST_STALE, ST_FLAG, ST_CLEARED, ST_COLUMNS };" in source
    names = ("SEQ", "APPLIED", "STALE", "FLAG", "CLEARED")
    assert [getattr(native_tick, n) for n in names] == list(range(5))
    assert native_tick.IN_COLUMNS == 5


def test_a_deadline_beyond_a_day_is_refused_not_waited_for() -> None:
    """A realtime factor of 1e-300 gives a deadline no clock holds: refused, so the tick
    thread fails visibly instead of spinning for ever without the GIL."""
    with pytest.raises(ValueError, match="at most 86400 s ahead"):
        ext().sleep_until(time.perf_counter() + 1e300, 0.0)
    sim = _one_input_sim(1)
    tick = NativeTick(sim, [], spin=0.0)
    with pytest.raises(ValueError, match="at most 86400 s ahead"):
        tick(time.perf_counter() + 2e5)
    with pytest.raises(ValueError, match="at most 86400 s ahead"):
        tick(math.nan)


def test_the_engine_takes_the_compiled_path_where_it_can() -> None:
    model = build(load_network(SEED))
    assert Engine(model).tick_path == "compiled"
    assert Engine(model, compiled_tick=False).tick_path == "python (turned off)"
    fake = Engine(model, clock=FakeClock()).tick_path
    assert fake == "python (the clock is a FakeClock, not the system clock)"


def _frames(engine: Engine, probe: str) -> np.ndarray:
    out = []
    stream = engine.streams[probe]
    while (buf := stream.take()) is not None:
        out.append(buf.valid().copy())
        stream.release(buf)
    return np.concatenate(out)


def test_compiled_and_python_engines_tick_alike() -> None:
    """Free-running on the system clock, the same input from tick 0: both tick paths give
    the same spikes and values, tick for tick."""
    model = build(load_network(SEED))
    runs = []
    for compiled in (True, False):
        engine = Engine(
            model,
            clock=SystemClock(),
            realtime_factor=0.0,
            queue_capacity=4_000,
            compiled_tick=compiled,
        )
        assert (engine.tick_path == "compiled") is compiled
        engine.inputs["u"].offer(np.array([0.6]), received=time.perf_counter())
        engine.start()
        deadline = time.monotonic() + 20
        while engine.sim.tick < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.stop()
        assert engine.failure is None
        runs.append({p: _frames(engine, p)[:3000] for p in ("b_spikes", "b_filtered", "u")})
    compiled_run, python_run = runs
    assert compiled_run["b_spikes"].shape[0] == 3000
    assert compiled_run["b_spikes"].sum() > 1000
    np.testing.assert_array_equal(compiled_run["u"], np.float32(0.6))  # the seed is float32
    for key in compiled_run:
        np.testing.assert_array_equal(compiled_run[key], python_run[key], err_msg=key)


def test_the_compiled_engine_paces_and_takes_inputs_live() -> None:
    """In real time: ticks keep to the wall clock, a value offered mid-run reaches the
    frames, and its TTL brings the default back."""
    model = build(load_network(SEED))
    engine = Engine(model, queue_capacity=10_000)
    assert engine.tick_path == "compiled"
    engine.inputs["u"].ttl = 0.1
    engine.start()
    try:
        time.sleep(0.2)
        engine.inputs["u"].offer(np.array([0.9]), received=time.perf_counter())
        time.sleep(0.05)
        applied_at = engine.sim.tick
        time.sleep(0.25)
    finally:
        engine.stop()
    assert engine.failure is None
    stats = engine.statistics()
    ticks = stats.pacer.ticks
    assert 400 <= ticks <= 560, ticks  # 0.5 s of 1 ms ticks, give or take start and stop
    u = _frames(engine, "u")[:, 0]
    value = u.dtype.type(0.9)
    assert value in u
    first = int(np.argmax(u == value))
    assert first < applied_at
    assert (u[first : first + 90] == value).all()  # held for its TTL ...
    assert u[-1] == u.dtype.type(model.inputs["u"].default[0])  # ... then the default
    assert engine.inputs["u"].stale_events == 1
    assert any(e["event"] == "input_stale" for e in engine.events)


def test_a_reset_forgets_a_value_whose_write_is_under_way() -> None:
    """A reset (``Mailbox.clear``) may land while the I/O thread is half-way through
    posting (the sequence lock odd): that value was offered before the reset, so the tick
    after it must not apply it once the write completes."""
    from spikestream.runtime.native_tick import CLEARED, SEQ

    sim = _one_input_sim(2)
    target = sim.inputs["u"]
    slot = InputSlot("u", 2, np.full(2, 0.25), ttl=None)
    tick = NativeTick(sim, [(slot, target)], spin=0.0)
    box = tick.mailboxes[0]
    box.post(np.array([1.0, 2.0]), time.perf_counter(), None)  # one whole message
    tick(-math.inf)
    np.testing.assert_array_equal(target, [1.0, 2.0])
    tick.state[0, SEQ] += 1  # a second post begins (what post_input does first) ...
    box.box[:] = (time.perf_counter(), math.inf, 7.0, 8.0)
    box.clear()  # ... the reset lands now ...
    assert tick.state[0, CLEARED] == tick.state[0, SEQ] + 1
    tick.state[0, SEQ] += 1  # ... and the post completes after it
    tick(-math.inf)
    assert box.flag() == 0
    assert box.applied_number() == -1
    np.testing.assert_array_equal(target, [1.0, 2.0])  # 7, 8 was forgotten


def test_a_target_of_the_wrong_shape_is_refused() -> None:
    """The compiled tick writes ``dim`` values at the target's address: a target of
    another shape (here one element short) would be written past its end, so it is
    refused before any address is taken."""
    sim = _one_input_sim(3)
    slot = InputSlot("u", 3, np.full(3, 0.25), ttl=None)
    short = np.zeros(2, sim.dtype)
    with pytest.raises(ValueError, match=r"input 'u': the target .* shape \(2,\)"):
        NativeTick(sim, [(slot, short)], spin=0.0)


def test_a_spin_given_for_one_tick_is_the_one_the_compiled_call_waits_with() -> None:
    """The engine steps a tick outside the runs with the loop's adapted spin (the busy
    spin in a contended spell): that spin, not the tick's own, goes to the C call; with
    none given, the tick's own."""
    sim = _one_input_sim(2)
    slot = InputSlot("u", 2, np.full(2, 0.25), ttl=None)
    tick = NativeTick(sim, [(slot, sim.inputs["u"])], spin=0.0005)
    calls: list[tuple[float, float]] = []
    real = tick._tick

    def recording(*args: object) -> tuple[float, float]:
        deadline, spin = args[-2], args[-1]
        assert isinstance(deadline, float)
        assert isinstance(spin, float)
        calls.append((deadline, spin))
        return real(*args[:-2], -math.inf, 0.0)  # type: ignore[no-any-return]

    tick._tick = recording
    tick(-1.0, 0.0)
    tick(-2.0)
    assert calls == [(-1.0, 0.0), (-2.0, 0.0005)]


def test_a_target_the_compiled_tick_cannot_write_is_refused() -> None:
    """The C code writes the simulator's dtype, ``dim`` elements in a row, from the
    target's address, and copies ``dim`` default values from the default's: a target of
    another dtype, a strided view, or a default of another shape would be misread or
    overrun, so each is refused when the tick is made."""
    sim = _one_input_sim(3)  # float64
    slot = InputSlot("u", 3, np.full(3, 0.25), ttl=None)
    with pytest.raises(ValueError, match=r"input 'u': the target is a float32 array"):
        NativeTick(sim, [(slot, np.zeros(3, np.float32))], spin=0.0)
    strided = np.zeros(6)[::2]
    assert strided.shape == (3,)
    with pytest.raises(ValueError, match=r"expected a contiguous float64 array \(3,\)"):
        NativeTick(sim, [(slot, strided)], spin=0.0)
    short_default = InputSlot("u", 3, np.full(3, 0.25), ttl=None)
    short_default.default = np.full(2, 0.25)
    with pytest.raises(ValueError, match=r"input 'u': default of shape \(2,\); expected \(3,\)"):
        NativeTick(sim, [(short_default, sim.inputs["u"])], spin=0.0)


def test_each_mailbox_posts_into_its_own_inputs_row() -> None:
    """With several inputs, a value posted to one input reaches that input's target and
    state row only: the other input's target, sequence and applied number stay as
    they were."""
    sim = Simulator(
        build(
            parse_network(
                {
                    "network": {"seed": 3},
                    "populations": {"a": {"n": 20, "dim": 2}, "b": {"n": 20, "dim": 2}},
                    "inputs": {
                        "u": {"dim": 2, "target": "a", "default": [0.1, 0.1]},
                        "v": {"dim": 2, "target": "b", "default": [0.2, 0.2]},
                    },
                }
            )
        )
    )
    slots = [
        (InputSlot(name, 2, np.full(2, d), ttl=None), sim.inputs[name])
        for name, d in (("u", 0.1), ("v", 0.2))
    ]
    tick = NativeTick(sim, slots, spin=0.0)
    u_before = sim.inputs["u"].copy()
    tick.mailboxes[1].post(np.array([3.0, 4.0]), time.perf_counter(), None)
    tick(-math.inf)
    np.testing.assert_array_equal(sim.inputs["v"], [3.0, 4.0])
    assert tick.mailboxes[1].flag() == NEW_VALUE
    assert tick.mailboxes[1].applied_number() == 1
    np.testing.assert_array_equal(sim.inputs["u"], u_before)
    assert tick.mailboxes[0].flag() == 0
    assert tick.mailboxes[0].applied_number() == -1
    assert tick.state[0].tolist() == [0, -1, 1, 0, 0]
