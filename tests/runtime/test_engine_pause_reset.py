"""What ``pause``, ``resume`` and ``reset`` do to the engine (docs/PROTOCOL.md §5), on the
Python tick path with a fake clock, one tick at a time: pause stops the pacer's schedule
and sends the partial frames short, resume restarts the schedule, reset sends the partial
frames short, sets the tick to 0 and forgets every input's value (its age and what the
next tick applies); and the input accounting of a tick (log, stale event)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import build
from spikestream.runtime.clock import FakeClock
from spikestream.runtime.engine import SNAPSHOTS_WAITING, Engine
from spikestream.spec import load_network
from spikestream_client.codec import ControlCommand

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def started() -> tuple[Engine, FakeClock]:
    """An engine on the seed network whose pacer runs, stepped by hand (no thread)."""
    clock = FakeClock()
    engine = Engine(build(load_network(SEED)), clock=clock, queue_capacity=64)
    assert engine.tick_path.startswith("python")
    engine.pacer.start()
    return engine, clock


def ticks(engine: Engine, n: int) -> None:
    for _ in range(n):
        engine._one_tick()


def queued(engine: Engine) -> dict[str, int]:
    return {name: s.queued for name, s in engine.statistics().streams.items()}


def test_pause_stops_the_schedule_and_sends_partial_frames_short() -> None:
    """Frames stop while paused, so the ticks already run (3 of a 10-tick frame) must go
    out at once, not wait for the resume; the pacer stops too, and the status and the
    stats say paused. Resume restarts the pacer."""
    engine, _ = started()
    ticks(engine, 3)
    assert set(queued(engine).values()) == {0}
    assert engine._apply(ControlCommand("pause")) == {"paused": True}
    assert (engine.pacer.paused, engine.statistics().paused) == (True, True)
    assert set(queued(engine).values()) == {1}
    assert {s.partial_ticks() for s, _ in engine._views} == {0}
    assert engine._apply(ControlCommand("status"))["paused"] is True
    assert engine._apply(ControlCommand("resume")) == {"paused": False}
    assert (engine.pacer.paused, engine.statistics().paused) == (False, False)
    assert engine._apply(ControlCommand("status"))["paused"] is False


def test_pause_lets_the_last_ticks_work_count_while_none_runs() -> None:
    """A window shows the 100 ms buckets that have ended, each put in its slot when the
    next tick starts the next bucket; while paused none does, so the ticks run just
    before a pause would stay out of the work figures for as long as the pause lasts.
    Pause puts them in, as it does their lateness."""
    engine, clock = started()
    ticks(engine, 5)  # 5 ms: all within the first, still filling bucket
    assert {w.ticks for w in engine.recent_work()} == {0}
    engine._apply(ControlCommand("pause"))
    clock.advance(0.5)  # paused: no tick runs, the bucket has ended
    assert {w.ticks for w in engine.recent_work()} == {5}
    assert {w.ticks for w in engine.statistics().pacer.recent} == {5}  # the lateness alike


def test_reset_sends_partial_frames_short_and_forgets_every_input() -> None:
    """After ``reset`` the tick is 0, the frames of the ticks before it are out (the next
    frame's tick jumps), and an input's value, applied or still waiting, is forgotten:
    its age is unknown again and the next tick runs on its default."""
    engine, clock = started()
    slot = engine.inputs["u"]
    slot.offer(np.array([0.7]), received=clock.now())
    ticks(engine, 3)
    slot.offer(np.array([0.9]), received=clock.now())  # waiting, not yet applied
    assert engine._apply(ControlCommand("reset")) == {"tick": 0}
    assert engine.sim.tick == 0
    assert set(queued(engine).values()) == {1}
    assert slot.freshness(clock.now()) == (None, True)
    engine._one_tick()
    assert float(engine.sim.inputs["u"][0]) == 0.0


class Log:
    """An input log: what the engine handed it."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str, list[float]]] = []

    def record(self, executed: int, name: str, value: npt.NDArray[np.floating]) -> None:
        self.records.append((executed, name, value.ravel().tolist()))

    def mark(self, kind: str, executed: int) -> None:
        self.records.append((executed, kind, []))


def test_an_input_change_is_logged_at_its_tick_and_a_fall_back_is_an_event() -> None:
    """The input log places each change at the tick that applied it (the count of ticks
    run before it), and a reset where it happened; a TTL passing is an ``input_stale``
    event naming the input and its TTL."""
    engine, clock = started()
    log = Log()
    engine.input_log = log
    slot = engine.inputs["u"]
    slot.ttl = 0.005
    ticks(engine, 2)
    slot.offer(np.array([0.25]), received=clock.now())
    ticks(engine, 1)
    assert not engine.events  # a new value is no event
    ticks(engine, 9)  # 10 ms in all: the TTL passes
    engine._apply(ControlCommand("reset"))
    stale: list[dict[str, Any]] = [e for e in engine.events if e["event"] == "input_stale"]
    assert stale == [{"event": "input_stale", "input": "u", "ttl": 0.005}]
    applied, fell_back = [(n, v) for n, name, v in log.records if name == "u"]
    assert applied == (2, [0.25])  # after the 2 ticks before it
    assert fell_back[1] == [0.0]
    assert 2 < fell_back[0] < 12
    assert log.records[-1] == (12, "reset", [])


def test_a_snapshot_the_tick_thread_refuses_ends_its_job_with_no_state() -> None:
    """A refused ``snapshot`` (too many waiting to be written) is a ``control_rejected``
    event, counted, and hands the I/O side its command with no state, so that the job it
    holds (at most three under way, serving/control.py) ends instead of leaking."""
    engine, _ = started()
    for i in range(SNAPSHOTS_WAITING):
        engine._commands.append(ControlCommand("snapshot", value=f"s{i}.npz"))
    engine._commands.append(ControlCommand("snapshot", value="more.npz", id="more"))
    while engine._apply_commands():
        pass
    assert len(engine.snapshots) == SNAPSHOTS_WAITING + 1
    cmd, state = engine.snapshots[-1]
    assert (cmd.id, state) == ("more", None)
    (refused,) = [e for e in engine.events if e["event"] == "control_rejected"]
    assert refused["id"] == "more"
    assert engine.commands_rejected == 1
