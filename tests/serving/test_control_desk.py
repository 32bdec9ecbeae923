"""The control desk's bounds, on a real engine and a real snapshot folder: a restore's
job lasts until the tick thread has applied it (its state is held until then), control
arriving while the service stops is refused with a reply, a snapshot acknowledged and
then refused at write time ends in ``snapshot_failed``, and replies have a bucket of
their own."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spikestream.build import build
from spikestream.errors import CodecError, SnapshotError
from spikestream.runtime.engine import Engine
from spikestream.serving import control
from spikestream.serving.control import FILE_JOBS, STOPPING, ControlDesk
from spikestream.serving.events import REPLY_BURST, EventQueue
from spikestream.serving.snapshots import SnapshotFolder, snapshot_layout
from spikestream.spec import load_network
from spikestream_client.codec import ControlCommand
from spikestream_client.transport import MessageMeta
from tests.serving import SEED

Event = tuple[str, dict[str, Any]]


def desk_of(tmp_path: Path) -> tuple[ControlDesk, Engine, list[Event]]:
    engine = Engine(build(load_network(SEED)))
    folder = SnapshotFolder(tmp_path / "snaps", "seed", snapshot_layout(engine))
    said: list[Event] = []

    def event(kind: str, *, reply: object = None, **fields: Any) -> None:
        said.append((kind, fields))

    return ControlDesk(engine, folder, lambda topic: topic, event, {}), engine, said


def take_snapshot(desk: ControlDesk, engine: Engine, name: str) -> None:
    """A snapshot file of the engine's state, as the tick thread would take it."""
    engine._apply(ControlCommand("snapshot", value=name))
    _, state = engine.snapshots.popleft()
    assert state is not None
    desk.folder.write(name, state)


LIVE = MessageMeta(qos=1, retain=False)


async def settle_tasks(desk: ControlDesk) -> None:
    while desk._tasks:
        await asyncio.wait(set(desk._tasks))


async def test_a_restore_holds_its_job_until_the_tick_thread_applied_it(tmp_path: Path) -> None:
    """Each restore's loaded state waits for the tick thread; its job, which bounds how
    many states are held, used to end once the file was read (60 restores behind a slow
    tick held 60 states)."""
    desk, engine, said = desk_of(tmp_path)
    take_snapshot(desk, engine, "k.npz")
    for i in range(FILE_JOBS):
        desk.on_message(f'{{"cmd": "restore", "value": "k.npz", "id": "r{i}"}}'.encode(), LIVE)
    await settle_tasks(desk)
    # Read, and waiting in the engine's queue (its thread is not running): still jobs.
    assert len(engine._commands) == FILE_JOBS
    desk.on_message(b'{"cmd": "restore", "value": "k.npz", "id": "more"}', LIVE)
    await settle_tasks(desk)
    refused = [f for k, f in said if k == "control_rejected"]
    assert [f["id"] for f in refused] == ["more"]
    assert f"(at most {FILE_JOBS})" in refused[0]["error"]
    assert len(engine._commands) == FILE_JOBS
    # Applied by the tick thread, reported back: the jobs end.
    engine._apply_commands()
    while engine.snapshots:
        desk.taken(*engine.snapshots.popleft())
    desk.on_message(b'{"cmd": "restore", "value": "k.npz", "id": "again"}', LIVE)
    await settle_tasks(desk)
    assert [c.id for c in engine._commands] == ["again"]


async def test_control_while_stopping_is_refused_with_a_reply(tmp_path: Path) -> None:
    """Between the stop and the end of settle, control still arrives: it used to be handed
    to the stopped engine and never answered."""
    desk, engine, said = desk_of(tmp_path)
    desk.stopping = True
    desk.on_message(b'{"cmd": "status", "id": "s"}', LIVE)
    desk.on_message(b'{"cmd": "snapshot", "value": "x.npz", "id": "x"}', LIVE)
    assert not engine._commands
    assert [(k, f["id"], f["error"]) for k, f in said] == [
        ("control_rejected", "s", STOPPING),
        ("control_rejected", "x", STOPPING),
    ]
    assert desk._jobs == 0


async def test_a_snapshot_refused_at_write_time_ends_in_snapshot_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledged with control_ok, so its end is ``snapshot_failed`` (it was a
    ``control_rejected`` after the ``control_ok``), counted, and the job ends."""
    desk, engine, said = desk_of(tmp_path)

    def refuse(name: str, state: object) -> Path:
        raise SnapshotError(f"'{name}' exists and is a symbolic link")

    monkeypatch.setattr(desk.folder, "write", refuse)
    desk.on_message(b'{"cmd": "snapshot", "value": "w.npz", "id": "w"}', LIVE)
    engine._apply_commands()
    desk.taken(*engine.snapshots.popleft())
    await settle_tasks(desk)
    ends = [(k, f) for k, f in said if f.get("id") == "w"]
    assert [k for k, _ in ends] == ["snapshot_failed"]
    assert "symbolic link" in ends[0][1]["error"]
    assert desk.snapshots_failed == 1
    assert desk._jobs == 0
    assert desk.rejected == {}


def test_replies_have_a_large_bucket_of_their_own() -> None:
    """A flood of requests cannot queue replies without bound (they were exempt from any
    limit), and does not use up the bucket of other events of the same kind."""
    queue = EventQueue("seed", capacity=10**6)
    queued = sum(queue.add("control_ok", 0.0, {"id": str(i)}) for i in range(5 * REPLY_BURST))
    assert queued == REPLY_BURST
    assert queue.add("control_ok", 0.0, {"cmd": "status"})  # not a reply: its own bucket
    assert queue.add("control_ok", 1.0, {"id": "later"})  # the bucket refills


# -- gaps a mutation audit found ---------------------------------------------------------------


async def test_a_periodic_snapshot_still_under_way_skips_the_next_until_it_is_written(
    tmp_path: Path,
) -> None:
    """The periodic snapshot has one slot: asked again while the last is under way it is
    skipped and counted; once that one is written the next goes ahead."""
    desk, engine, said = desk_of(tmp_path)
    desk.periodic(desk.folder.path / "p.npz")
    desk.periodic(desk.folder.path / "p.npz")
    assert desk.periodic_skipped == 1
    assert [c.id for c in engine._commands] == ["periodic"]
    engine._apply_commands()
    desk.taken(*engine.snapshots.popleft())
    await settle_tasks(desk)
    assert [k for k, _ in said] == ["snapshot_written"]
    desk.periodic(desk.folder.path / "p.npz")
    assert desk.periodic_skipped == 1
    assert [c.id for c in engine._commands] == ["periodic"]


def test_a_snapshot_asked_while_the_periodic_one_is_written_needs_room_for_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periodic snapshot under way is a copy on disk too: a disk with room for one
    and a half snapshots takes the periodic one and refuses a control ``snapshot`` asked
    while it is being written (the room asked for it used to leave the periodic out)."""
    import spikestream.serving.snapshots as snapshots

    desk, engine, said = desk_of(tmp_path)
    one = desk.folder.max_bytes()
    free = one * 3 // 2
    usage = SimpleNamespace(total=100 * one, used=100 * one - free, free=free)
    monkeypatch.setattr(snapshots.shutil, "disk_usage", lambda _: usage)
    monkeypatch.setattr(snapshots, "DISK_RESERVE_BYTES", 0)
    desk.periodic(desk.folder.path / "p.npz")
    assert [c.id for c in engine._commands] == ["periodic"]
    desk.on_message(b'{"cmd": "snapshot", "value": "c.npz", "id": "c"}', LIVE)
    refused = [f for k, f in said if k == "control_rejected"]
    assert [f["id"] for f in refused] == ["c"]
    assert f"it may take {2 * one} bytes and {free} " in refused[0]["error"]
    assert [c.id for c in engine._commands] == ["periodic"]


def test_no_periodic_snapshot_is_asked_for_while_stopping(tmp_path: Path) -> None:
    """Once the service stops, the periodic snapshot is quietly not asked for: no command
    and no refusal event (nobody asked for it)."""
    desk, engine, said = desk_of(tmp_path)
    desk.stopping = True
    desk.periodic(desk.folder.path / "p.npz")
    assert not engine._commands
    assert said == []
    assert desk.rejected == {}


async def test_a_command_submitted_while_stopping_is_refused_even_behind_a_restore(
    tmp_path: Path,
) -> None:
    """While stopping, a command is refused at once, not held behind a restore whose file
    is still being read (nothing would hand it over)."""
    desk, engine, said = desk_of(tmp_path)
    take_snapshot(desk, engine, "k.npz")
    desk.on_message(b'{"cmd": "restore", "value": "k.npz", "id": "r"}', LIVE)  # read pending
    desk.stopping = True
    assert not desk.submit(ControlCommand("status", id="s"))
    assert [(k, f["id"], f["error"]) for k, f in said] == [("control_rejected", "s", STOPPING)]
    await settle_tasks(desk)


def held_reads(desk: ControlDesk, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Every snapshot read of ``desk`` waits (30 s at most) until the event is set."""
    release = threading.Event()
    read = desk.folder.read

    def slow_read(name: str) -> Any:
        release.wait(30)
        return read(name)

    monkeypatch.setattr(desk.folder, "read", slow_read)
    return release


async def test_settle_refuses_the_commands_held_behind_a_read_that_has_not_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At shutdown a restore whose file is still being read is refused, and so is every
    command waiting behind it: each gets its reply."""
    desk, engine, said = desk_of(tmp_path)
    take_snapshot(desk, engine, "k.npz")
    release = held_reads(desk, monkeypatch)
    desk.on_message(b'{"cmd": "restore", "value": "k.npz", "id": "r"}', LIVE)
    desk.on_message(b'{"cmd": "status", "id": "s"}', LIVE)
    await desk.settle(0.0)
    release.set()
    await settle_tasks(desk)
    assert [(k, f["id"], f["error"]) for k, f in said] == [
        ("control_rejected", "r", STOPPING),
        ("control_rejected", "s", STOPPING),
    ]
    assert not engine._commands


async def test_at_most_held_commands_wait_behind_a_restore_the_restore_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands behind a restore still being read wait in arrival order, at most
    HELD_COMMANDS entries with the restore itself; the next is refused with its reply,
    and the ones held are applied once the read ends."""
    monkeypatch.setattr(control, "HELD_COMMANDS", 3)
    desk, engine, said = desk_of(tmp_path)
    take_snapshot(desk, engine, "k.npz")
    release = held_reads(desk, monkeypatch)
    desk.on_message(b'{"cmd": "restore", "value": "k.npz", "id": "r"}', LIVE)
    for n in range(3):
        desk.on_message(f'{{"cmd": "status", "id": "s{n}"}}'.encode(), LIVE)
    assert [(k, f["id"]) for k, f in said] == [("control_rejected", "s2")]
    assert "3 commands wait behind a restore" in said[0][1]["error"]
    release.set()
    await settle_tasks(desk)
    assert [c.id for c in engine._commands] == ["r", "s0", "s1"]


def test_an_empty_message_dropped_as_oversize_is_refused_not_taken_for_a_clear(
    tmp_path: Path,
) -> None:
    """An empty payload clears a retained command, but one the link dropped unread for
    its size is a refused command, counted and reported."""
    desk, engine, said = desk_of(tmp_path)
    desk.on_message(b"", MessageMeta(qos=1, retain=False, oversize=10**9))
    assert [k for k, _ in said] == ["control_rejected"]
    assert desk.rejected == {"control": 1}
    desk.on_message(b"", LIVE)  # a plain clear: nothing asked
    assert len(said) == 1
    assert not engine._commands


def test_a_command_with_a_refused_response_topic_is_refused_and_not_applied(
    tmp_path: Path,
) -> None:
    """A well-formed command whose response topic the service may not publish to is
    refused, naming its cmd and id, and never reaches the tick thread."""
    _, engine, said = desk_of(tmp_path)

    def no_topic(topic: str) -> str:
        raise CodecError(f"response topic {topic!r} is not allowed")

    def event(kind: str, *, reply: object = None, **fields: Any) -> None:
        said.append((kind, fields))

    desk = ControlDesk(engine, SnapshotFolder(tmp_path / "s2", "seed", {}), no_topic, event, {})
    meta = MessageMeta(qos=1, retain=False, response_topic="elsewhere")
    desk.on_message(b'{"cmd": "status", "id": "s"}', meta)
    assert not engine._commands
    assert [(k, f["cmd"], f["id"]) for k, f in said] == [("control_rejected", "status", "s")]
    assert "not allowed" in said[0][1]["error"]
