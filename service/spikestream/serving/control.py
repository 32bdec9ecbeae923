"""Control messages of one network: checked at the edge, handed to the tick thread in the
order they arrived, and snapshot files read and written off the event loop.

What a flood of control messages may cost is bounded here (docs/PROTOCOL.md, section 5.1):

* at most :data:`FILE_JOBS` snapshots or restores asked for by control messages are under
  way at a time (from ``control_ok``'s promise to the file written, or from the command to
  the file read); more are refused at once, with a reply. The periodic snapshot has a slot
  of its own. Each job holds one copy of the network's state, so their memory is bounded,
  and a flood cannot hold the tick thread copying states;
* a snapshot is refused when writing it could leave less than
  :data:`~spikestream.serving.snapshots.DISK_RESERVE` of its file system free, so a
  control client cannot fill the disk;
* commands that arrive while a restore's file is being read wait behind it (at most
  :data:`HELD_COMMANDS`), so the tick thread applies every command in arrival order.

Every acknowledged snapshot ends in ``snapshot_written`` or ``snapshot_failed``, sent to
the requester's response topic too, and failures are counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikestream.errors import CodecError, SnapshotError
from spikestream.runtime.engine import Engine
from spikestream.serving.snapshots import SnapshotFolder
from spikestream_client.codec import (
    DEFAULT_MAX_CONTROL_BYTES,
    CommandRejected,
    ControlCommand,
    Reply,
    decode_control,
    dropped_unread,
)
from spikestream_client.transport import MessageMeta

__all__ = ["FILE_JOBS", "HELD_COMMANDS", "ControlDesk"]

log = logging.getLogger("spikestream.serve")

#: Snapshots and restores asked for by control messages that may be under way at once.
#: Two let a client take a snapshot while another is written; each holds a copy of the
#: state until its file is done.
FILE_JOBS = 2
#: Commands that may wait behind restores whose files are being read (as many as the
#: tick thread's own queue holds); more are refused.
HELD_COMMANDS = 1024
STOPPING = "the service is stopping; command not applied"

#: ``event(kind, *, reply=None, **fields)``: the service's event publisher.
EventSink = Callable[..., None]


@dataclass
class _Restore:
    """A restore whose file is being read; the commands after it wait for it."""

    command: ControlCommand | None = None  # read: the restore, with the state attached
    error: str | None = None  # refused: why
    request: str | None = None
    reply: Reply | None = None

    @property
    def done(self) -> bool:
        return self.command is not None or self.error is not None


class ControlDesk:
    """Decodes, checks and orders one network's control messages.

    Args:
        engine: the network's engine (its command queue and the snapshots it took).
        folder: the snapshot folder.
        check_reply: returns a requester's response topic if the service may publish
            there, else raises :class:`CodecError` saying why.
        event: publishes an event (``reply``: also to that response topic).
        rejected: the service's refusals by reason; refused control messages count in
            ``control``.
    """

    def __init__(
        self,
        engine: Engine,
        folder: SnapshotFolder,
        check_reply: Callable[[str], str],
        event: EventSink,
        rejected: dict[str, int],
    ) -> None:
        self.engine = engine
        self.folder = folder
        self._check_reply = check_reply
        self._event = event
        self.rejected = rejected
        self._held: deque[ControlCommand | _Restore] = deque()
        self._jobs = 0  # control messages' snapshots and restores under way
        self._periodic: ControlCommand | None = None  # the periodic snapshot under way
        # Background reads and writes, held so that none is collected before it reports.
        self._tasks: set[asyncio.Task[None]] = set()
        self.snapshots_failed = 0
        self.periodic_skipped = 0
        self.stopping = False

    # ------------------------------------------------------------------ incoming

    def on_message(self, payload: bytes, meta: MessageMeta) -> None:
        """A live message on the control topic (refused once the service is stopping)."""
        if not payload and meta.oversize is None:
            # The documented way to clear a retained command (an empty retained message)
            # reaches live subscribers too: nothing was asked.
            log.debug("empty control message (a retained command cleared)")
            return
        reply: Reply | None = None
        topic_error: str | None = None
        if meta.response_topic is not None:
            # MQTT 5 request/response: the reply also goes to the requester's topic, with
            # its correlation data. The topic is the requester's choice, so it is checked.
            try:
                reply = (self._check_reply(meta.response_topic), meta.correlation_data)
            except CodecError as err:
                topic_error = str(err)
        try:
            if meta.oversize is not None:  # the link dropped it unread
                raise dropped_unread("control", meta.oversize, DEFAULT_MAX_CONTROL_BYTES)
            cmd = decode_control(payload)
        except CommandRejected as err:
            # Refused after the name and id were read: the reply names both, so a client
            # waiting on its id hears of the refusal.
            self.refuse(err.cmd, err.id, topic_error or str(err), reply=reply)
            return
        except CodecError as err:
            self.refuse(None, None, topic_error or str(err), reply=reply)
            return
        if topic_error is not None:  # decoded first, so the refusal names cmd and id
            self.refuse(cmd.cmd, cmd.id, topic_error)
            return
        if cmd.cmd in ("snapshot", "restore"):
            self._file_command(cmd.cmd, cmd.value, cmd.id, reply)
            return
        self.submit(dataclasses.replace(cmd, reply=reply))

    def refuse(
        self,
        cmd: str | None,
        request: str | None,
        error: str,
        *,
        kind: str = "control_rejected",
        reply: Reply | None = None,
        **fields: Any,
    ) -> None:
        """A refused control message: an event (``control_rejected`` unless ``kind`` says
        otherwise) naming the command and request id when known, counted in stats
        ``rejected.control``; also sent to ``reply`` (an MQTT 5 response topic)."""
        self.rejected["control"] = self.rejected.get("control", 0) + 1
        known = {k: v for k, v in (("cmd", cmd), ("id", request)) if v is not None}
        self._event(kind, **known, error=error, reply=reply, **fields)

    def submit(self, cmd: ControlCommand) -> bool:
        """Queue ``cmd`` for the tick thread, behind any restore still being read.
        Returns False when it was refused (a full queue, or stopping: reported)."""
        if self.stopping or not self._held:
            return self._deliver(cmd)
        if len(self._held) >= HELD_COMMANDS:
            self.refuse(
                cmd.cmd,
                cmd.id,
                f"{HELD_COMMANDS} commands wait behind a restore; command refused",
                reply=cmd.reply,
            )
            self._ended(cmd)
            return False
        self._held.append(cmd)
        return True

    def periodic(self, path: Path) -> None:
        """Ask for the periodic snapshot (``--snapshot-every``) unless the last one is
        still under way (then it is skipped and counted: the next one comes soon)."""
        if self.stopping:
            return
        if self._periodic is not None:
            self.periodic_skipped += 1
            log.warning("periodic snapshot skipped: the last one is still being written")
            return
        try:
            self.folder.check_room(copies=self._jobs + 1)
        except SnapshotError as err:
            self.refuse("snapshot", "periodic", str(err))
            return
        self._periodic = ControlCommand("snapshot", value=str(path), id="periodic")
        self.submit(self._periodic)

    # ------------------------------------------------------------------ files

    def _file_command(
        self, cmd: str, value: object, request: str | None, reply: Reply | None
    ) -> None:
        # Names stay inside the snapshot folder: a control message must not be able to
        # read or overwrite arbitrary files of the service user. The file itself is read
        # (restore) or replaced (snapshot) off the event loop, in a task that reports.
        if self.stopping:
            self.refuse(cmd, request, STOPPING, reply=reply)
            return
        if self._jobs >= FILE_JOBS:
            self.refuse(
                cmd,
                request,
                f"{self._jobs} snapshots or restores are under way (at most {FILE_JOBS}); "
                "try again when one has ended",
                reply=reply,
            )
            return
        folder = self.folder
        try:
            name = folder.name_for(value)
            if cmd == "snapshot":  # refuse now, not after control_ok
                folder.check_replaceable(name)
                folder.check_room(copies=self._jobs + 1 + (self._periodic is not None))
        except SnapshotError as err:
            self.refuse(cmd, request, str(err), reply=reply)
            return
        except OSError as err:  # e.g. the folder is not readable
            self.refuse(cmd, request, f"cannot check {value!r}: {err}", reply=reply)
            return
        self._jobs += 1
        if cmd == "restore":
            pending = _Restore(request=request, reply=reply)
            self._held.append(pending)  # what comes after it waits for it
            self._spawn(self._read(name, pending), "restore")
        else:
            self.submit(
                ControlCommand("snapshot", value=str(folder.path / name), id=request, reply=reply)
            )

    async def _read(self, name: str, pending: _Restore) -> None:
        try:
            state = await asyncio.to_thread(self.folder.read, name)
        except SnapshotError as err:
            pending.error = str(err)
        except Exception as err:  # a hostile file never takes the service down
            pending.error = f"cannot restore {name!r}: {type(err).__name__}: {err}"
        else:
            # The job goes on until the tick thread has applied or refused the restore
            # (:meth:`taken`): until then the state is held.
            pending.command = ControlCommand(
                "restore", value=name, id=pending.request, reply=pending.reply, attachment=state
            )
        if pending.command is None:
            self._jobs -= 1
        self._release()

    def _release(self) -> None:
        """Hand the tick thread what waited, in order, up to a restore still being read."""
        held = self._held
        while held:
            head = held[0]
            if isinstance(head, _Restore):
                if not head.done:
                    return
                held.popleft()
                if head.error is not None:  # its job has ended
                    self.refuse("restore", head.request, head.error, reply=head.reply)
                    continue
                assert head.command is not None
                head = head.command
            else:
                held.popleft()
            self._deliver(head)

    def _deliver(self, cmd: ControlCommand) -> bool:
        """Hand ``cmd`` to the tick thread; refused (reported, its job ended) when the
        service is stopping or the engine's queue is full. True if handed over."""
        if self.stopping:  # the tick thread has stopped: nothing more is applied
            self.refuse(cmd.cmd, cmd.id, STOPPING, reply=cmd.reply)
        elif self.engine.submit(cmd):  # else refused and reported by the engine
            return True
        self._ended(cmd)
        return False

    def taken(self, cmd: ControlCommand, state: dict[str, Any] | None) -> None:
        """The tick thread took the snapshot ``cmd`` asked for (``state``): write it.
        Or (None) it refused a snapshot, or applied or refused a restore (each reported
        by the engine): the job ends."""
        if state is None:
            self._ended(cmd)
        else:
            self._spawn(self._write(cmd, state), "snapshot")

    async def _write(self, cmd: ControlCommand, state: dict[str, Any]) -> None:
        name = Path(str(cmd.value)).name
        try:
            path = await asyncio.to_thread(self.folder.write, name, state)
        except Exception as err:  # the target refused again, disk full: never fatal
            # Acknowledged with control_ok already: the end is snapshot_failed.
            self.snapshots_failed += 1
            where = str(self.folder.path / name)
            error = str(err) if isinstance(err, SnapshotError) else f"cannot write {where!r}: {err}"
            self._event("snapshot_failed", id=cmd.id, error=error, reply=cmd.reply)
        else:
            tick = int(state["tick"])
            self._event("snapshot_written", id=cmd.id, path=str(path), tick=tick, reply=cmd.reply)
        finally:
            self._ended(cmd)

    def _ended(self, cmd: ControlCommand) -> None:
        """A snapshot or restore job is over (written, applied, failed or refused)."""
        if cmd.cmd not in ("snapshot", "restore"):
            return
        if cmd is self._periodic:
            self._periodic = None
        else:
            self._jobs -= 1

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, seconds: float) -> None:
        """At shutdown (:attr:`stopping` set before the tick thread stopped): wait up to
        ``seconds`` for the files under way, so each says how it ended, and refuse what
        still waits (behind a restore whose file is still being read too)."""
        self.stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
        self._release()
        while self._held:  # a read that has not ended: it and what waits are refused
            head = self._held.popleft()
            if isinstance(head, _Restore):
                self.refuse("restore", head.request, STOPPING, reply=head.reply)
            else:
                self._deliver(head)  # refused: stopping
