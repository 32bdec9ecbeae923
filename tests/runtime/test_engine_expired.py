"""What the Python tick path does with a change that carries ``EXPIRED``: a message that
expired before any tick applied it alone changes nothing (no input log entry, no trace,
no event); with the fall back to the default it is an ``input_stale`` like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from spikestream.build import build
from spikestream.runtime.clock import FakeClock
from spikestream.runtime.engine import Engine
from spikestream.spec import load_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


class Log:
    """An input log and a latency trace: what the engine handed each."""

    def __init__(self) -> None:
        self.records: list[tuple[str, list[float]]] = []
        self.applied: list[float] = []

    def record(self, executed: int, name: str, value: npt.NDArray[np.floating]) -> None:
        self.records.append((name, value.ravel().tolist()))

    def mark(self, kind: str, executed: int) -> None:
        pass


class Trace:
    def __init__(self, log: Log) -> None:
        self.log = log

    def applied(self, value: float, wall: float) -> None:
        self.log.applied.append(value)


def test_an_expired_message_changes_nothing_but_its_count_and_a_stale_one_is_an_event() -> None:
    clock = FakeClock()
    engine = Engine(build(load_network(SEED)), clock=clock, queue_capacity=64)
    assert engine.tick_path.startswith("python")
    log = Log()
    engine.input_log = log
    engine.trace = Trace(log)  # type: ignore[assignment]
    slot = engine.inputs["u"]
    slot.ttl = 0.5
    engine.pacer.start()
    engine._one_tick()
    # Expired before any tick: counted, and nothing else.
    slot.offer(np.array([0.7]), received=clock.now() - 1.0)
    engine._one_tick()
    assert slot.expired == 1
    assert (log.records, log.applied, list(engine.events)) == ([], [], [])
    # A fresh value drives the network: logged and traced.
    slot.offer(np.array([0.25]), received=clock.now())
    engine._one_tick()
    assert (log.records, log.applied) == ([("u", [0.25])], [0.25])
    # The next expires before a tick, and the input falls back: one input_stale event.
    slot.offer(np.array([0.5]), received=clock.now() - 1.0)
    engine._one_tick()
    assert slot.expired == 2
    assert [e["event"] for e in engine.events] == ["input_stale"]
    assert log.records == [("u", [0.25]), ("u", [0.0])]
    assert log.applied == [0.25]  # the fall back is no applied value
