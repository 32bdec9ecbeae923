"""A live run's changes of learning are replayed, and its restores are said.

The input log held input changes and resets only: a run whose learning was switched off
(``learn off``) or re-rated (``set learning_rate``) replayed with learning as the network
file set it, and its decoded output differed from the live run's by up to 0.445 where
the README promised the same spike trains. The log now records each change of learning
at its tick, and ``run --replay`` applies it there. A ``restore`` replaced the state with
a snapshot's, which the log cannot hold: its tick is recorded, and the replay says the
run follows the live one only up to it.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.build import Model, build
from spikestream.errors import ConfigError
from spikestream.runtime.clock import FakeClock
from spikestream.runtime.engine import Command, Engine
from spikestream.runtime.offline import LearningChange, run_offline
from spikestream.runtime.replay import (
    EVENT_BYTES,
    LEARNING_RATE_LIMIT,
    InputRecorder,
    load_replay,
    replay_inputs,
)
from spikestream.spec import NetworkSpec, load_network
from spikestream_client.codec.control import SETTINGS
from tests.runtime.test_streams import drain

LEARN = Path(__file__).parents[2] / "examples" / "learn.toml"


@pytest.fixture(scope="module")
def spec() -> NetworkSpec:
    return load_network(LEARN)


@pytest.fixture(scope="module")
def model(spec: NetworkSpec) -> Model:
    return build(spec)


def _live(model: Model, log: Path, commands: dict[int, Command], ticks: int) -> np.ndarray:
    """Run the engine (fake clock) with a steady input and error, submitting each of
    ``commands`` once the tick thread has passed its tick; the decoded ``y`` of the run."""
    engine = Engine(model, clock=FakeClock(), queue_capacity=100_000)
    engine.input_log = recorder = InputRecorder(model, log)
    engine.inputs["err"].ttl = None
    engine.inputs["u"].offer(np.array([0.8]), received=0.0)
    engine.inputs["err"].offer(np.array([-0.5]), received=0.0)
    engine.start()
    try:
        for at, command in sorted(commands.items()):
            while engine.sim.tick < at:
                time.sleep(0.001)
            engine.submit(command)
        while engine.sim.tick < ticks:
            time.sleep(0.001)
    finally:
        engine.stop()
    assert engine.failure is None, engine.failure
    recorder.save(ticks=engine.executed)
    return np.concatenate([frame[3] for frame in drain(engine.streams["y"])])


def _replayed(model: Model, spec: NetworkSpec, log: Path, *, learning: bool) -> np.ndarray:
    replay = load_replay(log, spec, limit=1 << 30)
    n, inputs, resets = replay_inputs(model, replay)
    kept = replay.learning_changes() if learning else ()
    return run_offline(model, n, inputs=inputs, resets=resets.tolist(), learning=kept)["y"]


def test_learning_switched_and_re_rated_live_is_replayed_exactly(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    log = tmp_path / "inputs.npz"
    commands = {
        200: Command("set", key="learning_rate", value=1e-3, id="rate"),
        450: Command("learn", value=False, id="off"),
        700: Command("learn", value=True, id="on"),
    }
    live = _live(model, log, commands, ticks=900)
    replay = load_replay(log, spec, limit=1 << 30)
    changes = replay.learning_changes()
    assert [(c.rate, c.enabled) for c in changes] == [
        (1e-3, None),
        (None, False),
        (None, True),
    ]
    # Each at the tick the live run applied it, after the tick the test waited for.
    ticks = [c.tick for c in changes]
    assert ticks == sorted(ticks)
    assert all(t >= at for t, at in zip(ticks, commands, strict=True))
    replayed = _replayed(model, spec, log, learning=True)
    k = min(len(live), len(replayed))
    assert k >= 900
    # The live frames carry float32 (the wire's type), the offline run float64.
    np.testing.assert_allclose(replayed[:k], live[:k], rtol=0, atol=1e-6)
    # Without the changes the replay is another run: the test can tell them apart.
    without = _replayed(model, spec, log, learning=False)
    assert float(np.max(np.abs(without[:k] - live[:k]))) > 0.01
    # And as users run it: spikestream run NETWORK --replay FILE.
    from spikestream.cli import main

    out = tmp_path / "replayed.npz"
    assert main(["run", str(LEARN), "--replay", str(log), "--out", str(out)]) == 0
    with np.load(out) as data:
        np.testing.assert_allclose(data["y"][:k], live[:k], rtol=0, atol=1e-6)


def test_a_restore_is_recorded_and_the_replay_says_where_it_stops_being_exact(
    model: Model, spec: NetworkSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spikestream.cli import main

    log = tmp_path / "inputs.npz"
    recorder = InputRecorder(model, log)
    recorder.record(0, "u", np.array([0.5]))
    recorder.mark("restore", 40)
    recorder.mark("restore", 70)
    recorder.save(ticks=100)
    replay = load_replay(log, spec, limit=1 << 30)
    assert replay.restores.tolist() == [40, 70]
    code = main(["run", str(LEARN), "--replay", str(log), "--out", str(tmp_path / "o.npz")])
    assert code == 0
    err = capsys.readouterr().err
    assert "restored a snapshot before tick 40 (2 restore(s) in the ticks replayed)" in err
    assert "exactly only up to that tick (and again after a reset)" in err
    # Replayed only as far as tick 30, before the first restore: nothing to say.
    out = str(tmp_path / "short.npz")
    assert main(["run", str(LEARN), "--replay", str(log), "--duration", "0.03", "--out", out]) == 0
    assert "restored" not in capsys.readouterr().err


def test_a_log_written_before_learning_was_recorded_reads_as_none(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """Logs of earlier versions lack the learning and restore members: they load, holding
    no change of learning and no restore (their replay is what it was)."""
    log = tmp_path / "old.npz"
    InputRecorder(model, log).save(ticks=5)
    old = tmp_path / "older.npz"
    with zipfile.ZipFile(log) as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            if not name.startswith(("learning.", "restores")):
                dst.writestr(name, src.read(name))
    replay = load_replay(old, spec, limit=1 << 30)
    assert replay.learning_changes() == ()
    assert replay.restores.tolist() == []
    assert replay.ticks == 5


def _with_learning(model: Model, path: Path, ticks: Any, values: Any) -> Path:
    """A log of ``model`` whose learning members are the arrays given."""
    InputRecorder(model, path).save(ticks=100)
    arrays = dict(np.load(path))
    arrays["learning.ticks"], arrays["learning.values"] = ticks, values
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


@pytest.mark.parametrize(
    ("ticks", "values", "expected"),
    [
        (
            [5],
            [[LEARNING_RATE_LIMIT * 2, np.nan]],
            r"row 0 is \[2\.0, nan\]; expected a rate in \[0, 1\]",
        ),
        (
            [5, 6],
            [[np.nan, 1.0], [np.nan, 0.5]],
            r"row 1 is \[nan, 0\.5\]; expected .* then 1, 0 or NaN",
        ),
        ([5], [[-1e-9, 1.0]], r"row 0 is \[-1e-09, 1\.0\]"),
        ([5], [[np.inf, np.nan]], r"row 0 is \[inf, nan\]"),
        ([5, 6], [[np.nan, 1.0]], r"'learning\.values' has 1 rows; 'learning\.ticks' has 2"),
        ([6, 5], [[np.nan, 1.0], [np.nan, 0.0]], r"'learning\.ticks' is out of order"),
        ([101], [[np.nan, 1.0]], r"'learning\.ticks' holds ticks from 101 to 101"),
    ],
    ids=[
        "rate too high",
        "half a switch",
        "negative rate",
        "infinite rate",
        "rows",
        "order",
        "past the run",
    ],
)
def test_a_hostile_learning_record_is_refused_in_one_line(
    model: Model, spec: NetworkSpec, tmp_path: Path, ticks: Any, values: Any, expected: str
) -> None:
    path = _with_learning(
        model, tmp_path / "log.npz", np.array(ticks, np.int64), np.array(values, np.float64)
    )
    with pytest.raises(ConfigError, match=expected) as caught:
        load_replay(path, spec, limit=1 << 30)
    assert "\n" not in str(caught.value)


def test_a_learning_record_at_its_bounds_is_taken(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    values = np.array([[0.0, 0.0], [LEARNING_RATE_LIMIT, np.nan], [np.nan, 1.0]])
    path = _with_learning(model, tmp_path / "log.npz", np.array([0, 0, 100]), values)
    assert load_replay(path, spec, limit=1 << 30).learning_changes() == (
        LearningChange(0, 0.0, False),
        LearningChange(0, LEARNING_RATE_LIMIT, None),
        LearningChange(100, None, True),
    )


def test_the_logs_rate_limit_is_the_control_commands() -> None:
    """A live run's rate comes from ``set learning_rate``: the log takes what it takes."""
    assert SETTINGS["learning_rate"].high == LEARNING_RATE_LIMIT


def test_the_engine_logs_a_restore_at_the_tick_it_applies_it(model: Model) -> None:
    """``restore`` (a snapshot's state, attached by the I/O side) is marked in the input
    log with the ticks executed before it, as ``reset`` is."""
    marks: list[tuple[str, int]] = []

    class Log:
        def record(self, executed: int, name: str, value: np.ndarray) -> None:
            pass

        def mark(self, kind: str, executed: int) -> None:
            marks.append((kind, executed))

        def learning(
            self, executed: int, *, rate: float | None = None, enabled: bool | None = None
        ) -> None:
            marks.append(("learning", executed))

    engine = Engine(model, clock=FakeClock(), queue_capacity=64)
    engine.input_log = Log()
    engine.pacer.start()
    for _ in range(7):
        engine._one_tick()
    state = engine.sim.state()
    engine.submit(Command("restore", value="snap.npz", id="r", attachment=state))
    engine.submit(Command("reset", id="z"))
    engine._apply_commands()
    assert marks == [("restore", 7), ("reset", 7)]


def test_a_snapshot_served_from_at_start_is_marked_as_a_restore(
    model: Model, spec: NetworkSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --restore SNAP --log-inputs LOG`` (or ``--resume``) starts the live run from
    a snapshot's state with the log attached: the log marks it at tick 0, so the replay
    says it differs (it started from the network's initial state and said nothing)."""
    import asyncio
    from types import SimpleNamespace

    from spikestream.serving import service as service_module

    engine = Engine(model, clock=FakeClock(), queue_capacity=64)
    log = tmp_path / "inputs.npz"
    engine.input_log = recorder = InputRecorder(model, log)  # as serve does before run()
    state = engine.sim.state()
    state["tick"] = np.array(500, np.int64)
    found = (tmp_path / "snap.npz", state)
    monkeypatch.setattr(service_module, "start_state", lambda *args: found)
    service = SimpleNamespace(
        engine=engine,
        snapshot_folder=None,
        settings=SimpleNamespace(restore=found[0], resume=False),
        latest_snapshot=lambda: None,
    )
    asyncio.run(service_module.Service._start_from_snapshot(service))  # type: ignore[arg-type]
    assert engine.sim.tick == 500
    recorder.save(ticks=engine.executed)
    assert load_replay(log, spec, limit=1 << 30).restores.tolist() == [0]


def test_a_log_of_millions_of_changes_is_refused_before_they_are_made(
    model: Model, spec: NetworkSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1 MiB file can hold 700,000 changes of learning: the reader keeps them as arrays
    (their members' bytes, within the limit), and the replay's budget counts what each
    costs as an object, so ``run`` refuses in one line instead of making them (the
    reader made them first: 109 MiB at its peak for a 16 MiB limit)."""
    import tracemalloc

    limit = 16 * 2**20
    n = (limit - 4096) // 24  # the learning members alone fill the limit
    path = tmp_path / "hostile.npz"
    InputRecorder(model, path).save(ticks=n)
    arrays = dict(np.load(path))
    values = np.full((n, 2), np.nan)
    values[:, 1] = np.arange(n) % 2
    arrays["learning.ticks"], arrays["learning.values"] = np.arange(n, dtype=np.int64), values
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        replay = load_replay(path, spec, limit=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 2 * limit, f"peak {peak / 2**20:.0f} MiB for a limit of 16 MiB"
    assert replay.nbytes >= n * (24 + EVENT_BYTES) > limit  # what the budget then refuses
    env = {"SPIKESTREAM_MEMORY_LIMIT": str(limit)}
    from spikestream.cli import main

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        code = main(["run", str(LEARN), "--replay", str(path), "--out", str(tmp_path / "o.npz")])
    assert code == 2
    err = capsys.readouterr().err
    assert "over the memory limit" in err, err
    assert "replay log" in err, err
    assert not (tmp_path / "o.npz").exists()
