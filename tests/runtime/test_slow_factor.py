"""Slow realtime factors: a period longer than a day is refused where it is set, and at a
period of seconds a command or a stop is taken within the poll, on every tick path."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.runtime.clock import FakeClock
from spikestream.runtime.engine import Command, Engine
from spikestream.runtime.pacer import MAX_PERIOD, STOP_POLL, Pacer
from spikestream.sim import _native as ext
from spikestream.spec import load_network
from tests.runtime.test_engine import submit_and_wait, wait_for

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"
DT = 0.001  # the seed network's


def test_the_pacer_refuses_a_period_the_compiled_tick_would_refuse() -> None:
    assert ext.MAX_WAIT == MAX_PERIOD  # one limit on both sides
    expected = r"at least dt / 86400 s = 1\.15741e-08 \(a tick period of at most a day\), got 1e-09"
    with pytest.raises(ConfigError, match=expected):
        Pacer(DT, FakeClock(), realtime_factor=1e-9)
    pacer = Pacer(DT, FakeClock())
    pacer.start()
    with pytest.raises(ConfigError, match=expected):
        pacer.set_realtime_factor(1e-9)
    assert (pacer.realtime_factor, pacer.period) == (1.0, DT)  # unchanged
    pacer.set_realtime_factor(DT / MAX_PERIOD)  # a day per tick exactly: allowed
    assert pacer.period == pytest.approx(MAX_PERIOD)
    assert isinstance(ConfigError("x"), ValueError)


def test_ahead_is_the_time_left_before_the_margin_ahead_of_the_next_deadline() -> None:
    clock = FakeClock(start=100.0)
    pacer = Pacer(DT, clock, realtime_factor=DT / 10.0)  # a 10 s period
    assert pacer.ahead(STOP_POLL) == 0.0  # not started: no deadline
    pacer.start()
    pacer.wait()  # tick 0, due at 100 s; tick 1 is due at 110 s
    clock.set(101.0)
    assert pacer.ahead(0.05) == pytest.approx(8.95)
    pacer.pause()
    assert pacer.ahead(0.05) == 0.0  # paused: no deadline to wait for
    pacer.resume()
    clock.set(clock.now() + 9.0)  # 0.05 s before the next deadline, and past it
    assert pacer.ahead(0.05) == pytest.approx(0.0, abs=1e-9)
    clock.advance(0.01)
    assert pacer.ahead(0.05) == 0.0
    pacer.resume()
    pacer.set_realtime_factor(0.0)
    assert pacer.ahead(0.05) == 0.0  # free-running


PATHS = {
    "runs, one thread": {"runs": True},
    "runs, two threads": {"runs": True, "tick_threads": 2},
    "compiled ticks": {"runs": False},
    "python ticks": {"runs": False, "compiled_tick": False},
}


@pytest.fixture(params=list(PATHS))
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The seed on the system clock, its frames taken by a thread, as the I/O side does."""
    engine = Engine(build(load_network(SEED)), queue_capacity=64, **PATHS[request.param])
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            engine.collect()
            time.sleep(0.005)

    taker = threading.Thread(target=collect, daemon=True)
    taker.start()
    engine.start()
    try:
        yield engine
    finally:
        done.set()
        engine.stop()
        taker.join()


def test_a_factor_beyond_a_day_per_tick_is_refused_and_the_engine_ticks_on(
    engine: Engine,
) -> None:
    got = submit_and_wait(engine, Command("set", key="realtime_factor", value=1e-9, id="slow"))
    assert got["slow"]["event"] == "control_rejected"
    assert "a tick period of at most a day" in str(got["slow"]["error"])
    ticks = engine.sim.tick
    wait_for(lambda: engine.sim.tick > ticks + 50)
    assert engine.failure is None
    assert engine.running


def test_at_a_ten_second_period_commands_and_stop_are_taken_within_the_poll(
    engine: Engine,
) -> None:
    """Before, both waited for the next deadline: about 10 s here."""
    got = submit_and_wait(engine, Command("set", key="realtime_factor", value=DT / 10.0, id="s"))
    assert got["s"]["event"] == "control_ok"
    time.sleep(0.3)  # the tick thread is in its wait for a deadline 10 s ahead
    begun = time.perf_counter()
    got = submit_and_wait(engine, Command("status", id="status"))
    replied = time.perf_counter() - begun
    assert got["status"]["event"] == "control_ok"
    time.sleep(0.3)
    begun = time.perf_counter()
    engine.stop(timeout=8.0)
    stopped = time.perf_counter() - begun
    assert not engine.running
    assert engine.failure is None
    # STOP_POLL (0.05 s) with room for a slow machine; a period is 10 s.
    assert replied < 2.0, replied
    assert stopped < 2.0, stopped
