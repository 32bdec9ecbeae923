"""The real-time engine: a tick thread that paces the simulator and fills frame buffers.

The tick thread never awaits network I/O. It talks to the I/O side (asyncio, in another
thread) through three lock-light structures:

* an :class:`~spikestream.runtime.slots.InputSlot` per input: the I/O side stores the
  latest decoded value (an atomic reference assignment); the tick thread copies it into the
  simulator each tick, falling back to the default after ``ttl`` seconds without a message.
* a :class:`~spikestream.runtime.streams.ProbeStream` per probe: a fixed pool of
  preallocated frame buffers and a bounded queue. The tick thread copies each tick's probe
  value into the frame being filled; a full frame is queued. When the queue is full the
  oldest frame is dropped (``drop-oldest``) or the new ticks are merged into the newest
  queued frame (``coalesce``). Every drop is counted, and the count travels in the frames.
  Memory is bounded by construction.
* a command deque (control topic -> tick thread) and an event deque (tick thread -> I/O).

``notify`` (given by the I/O side) is called at most once per wake-up of the publisher, so a
1 kHz frame rate does not mean 1000 cross-thread calls per probe.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from spikestream.budget import frame_tick_bound
from spikestream.build import Model
from spikestream.errors import ConfigError, SimulationError, SpikestreamError
from spikestream.runtime.clock import Clock, SystemClock
from spikestream.runtime.native_pacing import L_EARLY_TICKS, RUN_OVERRUN
from spikestream.runtime.native_tick import FLAG, NativeTick, TickLoop, applied_number, unavailable
from spikestream.runtime.pacer import STOP_POLL, WINDOWS, Pacer, PacerPolicy, PacerStatistics
from spikestream.runtime.priority import (
    fifo_priority,
    raise_priority,
    request_slice,
    request_timer_slack,
)
from spikestream.runtime.slots import NEW_VALUE, WENT_STALE, InputLog, InputSlot
from spikestream.runtime.stats import LatenessWindow, WindowStatistics
from spikestream.runtime.streams import ProbeStream, QueuePolicy, RowRecorder, StreamStats
from spikestream.runtime.tickthreads import want_two_stages
from spikestream.runtime.trace import LatencyTrace
from spikestream.sim import Simulator
from spikestream.sim.stages import TwoStages
from spikestream_client.codec.control import COMMANDS, SETTINGS
from spikestream_client.codec.control import ControlCommand as Command  # the one command type

log = logging.getLogger("spikestream.engine")

#: Commands applied between two ticks: a flood (each may reallocate frame pools) is
#: applied in slices with a tick between them, so the pace holds.
COMMANDS_PER_TICK = 4
#: Snapshots waiting for the I/O side to write them, each a copy of the state: more
#: are refused (the service lets at most three be under way: serving/control.py).
SNAPSHOTS_WAITING = 8


@dataclass(frozen=True)
class EngineStatistics:
    """A snapshot of everything the engine counts."""

    tick: int
    t: float
    running: bool
    paused: bool
    pacer: PacerStatistics
    streams: dict[str, StreamStats]
    inputs: dict[str, dict[str, int]]
    skipped_ticks: int
    commands: int
    commands_rejected: int = 0
    events_dropped: int = 0
    errors: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    #: Each tick's own work (its inputs and kernels; not its wait, nor its frames) over the
    #: last :data:`~spikestream.runtime.pacer.WINDOWS` seconds, windows as ``pacer.recent``
    #: (their ``lateness`` holds work durations; no real-time factor).
    work: tuple[WindowStatistics, ...] = ()


class Engine:
    """Runs a model in real time on its own thread.

    Args:
        model: the built network.
        clock: time source (a fake clock in tests).
        realtime_factor: 1.0 = real time, 2.0 = twice as fast, 0 = as fast as possible.
        policy: overrun policy of the pacer (``catch-up``, ``skip`` or ``slip``).
        queue_capacity: frames each probe may queue before dropping.
        queue_policy: ``drop-oldest`` or ``coalesce``.
        ticks_per_frame: overrides every probe's ``ticks_per_frame`` when given.
        notify: called (from the tick thread) when frames or events are ready; the I/O side
            passes something like ``lambda: loop.call_soon_threadsafe(wake.set)``.
        rt_priority: if > 0, ask the OS to run the tick thread under ``SCHED_FIFO`` at this
            priority (Linux; needs CAP_SYS_NICE or root, else the thread stays as it is and
            ``realtime_priority`` says why).
        tick_slice: if > 0, ask the kernel for a scheduling slice of this many seconds for
            the tick thread (Linux 6.12+ EEVDF, no privilege; :func:`~spikestream.runtime.
            priority.request_slice`): woken at a deadline, it then preempts a thread with a
            longer slice. ``tick_slice_granted`` says what the kernel granted.
        memory_limit: bytes this engine may use (see :mod:`spikestream.budget`); bounds
            ``set ticks_per_frame``. None: no bound beyond what allocation survives.
        network_bytes: the estimated bytes of everything but the frame pools.
        compiled_tick: wait for each deadline, apply the inputs and step in one compiled
            call without the GIL (:mod:`spikestream.runtime.native_tick`) where the
            network and clock allow it; False keeps the Python tick path. Both compute
            the same ticks; :attr:`tick_path` says which runs and why.
        busy_spin: in runs of compiled ticks, the spin (s) before each deadline while the
            tick thread is kept waiting for a CPU instead of the clock's (see
            :data:`~spikestream.runtime.native_pacing.ADAPT_TICKS`); None: the clock's always.
        runs: on the compiled path, keep the tick thread in compiled code across ticks
            (:class:`~spikestream.runtime.native_tick.TickLoop`): the finished ticks wait
            in a ring until the I/O side calls :meth:`collect`, woken through
            :attr:`wake_fd` when a frame completes. For a caller that watches
            :attr:`wake_fd`; without one, frames would wait for the ring to fill.
        tick_threads: 2: in runs, cut the tick's program in two stages and step the
            second on a helper thread while the tick thread starts the next tick
            (:mod:`spikestream.sim.stages`; same results), where a cut is even enough and
            safe; :attr:`stages` says what was cut, :attr:`tick_threads` what runs. 1: one
            thread. ``"auto"``: 2 when the tick's program references at least
            :data:`~spikestream.runtime.tickthreads.TWO_STAGE_BYTES`. Either way one
            thread where the process may run on one CPU only. The helper thread inherits
            the tick thread's scheduling (``rt_priority``, slice, CPU affinity): the
            second stage is the tick's work.
        pin_tick_threads: with two tick threads, pin each to a CPU of its own for each run
            of ticks (:class:`~spikestream.runtime.native_tick.TickLoop`'s ``pin``).
        early_ticks: in runs, start a tick as soon as a new input is posted, never before
            the previous deadline (:class:`~spikestream.runtime.native_tick.TickLoop`).
    """

    def __init__(
        self,
        model: Model,
        *,
        clock: Clock | None = None,
        realtime_factor: float = 1.0,
        policy: PacerPolicy = "catch-up",
        max_catchup: int = 20,
        queue_capacity: int = 64,
        queue_policy: QueuePolicy = "drop-oldest",
        ticks_per_frame: int | None = None,
        notify: Callable[[], None] | None = None,
        rt_priority: int = 0,
        tick_slice: float = 0.0,
        memory_limit: int | None = None,
        network_bytes: int = 0,
        compiled_tick: bool = True,
        runs: bool = False,
        busy_spin: float | None = None,
        tick_threads: int | Literal["auto"] = 1,
        pin_tick_threads: bool = False,
        early_ticks: bool = False,
    ) -> None:
        self.model = model
        self.sim = Simulator(model)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.pacer = Pacer(
            model.dt,
            self.clock,
            realtime_factor=realtime_factor,
            policy=policy,
            max_catchup=max_catchup,
        )
        # Each tick's inputs and kernels (headroom: work p99 against the period).
        self.work = LatenessWindow(model.dt, (), span=max(WINDOWS))
        self.inputs = {
            name: InputSlot(name, inp.dim, inp.default, inp.ttl)
            for name, inp in model.inputs.items()
        }
        self.streams: dict[str, ProbeStream] = {}
        for name, probe in model.probes.items():
            view = self.sim.probe(name)
            kind: Literal["spikes", "values"] = "spikes" if view.dtype == np.bool_ else "values"
            self.streams[name] = ProbeStream(
                name,
                kind,
                view.shape,
                ticks_per_frame or probe.ticks_per_frame,
                capacity=queue_capacity,
                policy=queue_policy,
            )
        self._views = [(self.streams[n], self.sim.probe(n)) for n in self.streams]
        self._live = [view for _, view in self._views]  # each probe's live value, in order
        self._feeds = [(slot, self.sim.inputs[name]) for name, slot in self.inputs.items()]
        self._targets = [target for _, target in self._feeds]  # each input's array, in order
        why_not = "turned off" if not compiled_tick else unavailable(self.sim, self.clock)
        self._native: NativeTick | None = None
        self._real_clock = isinstance(self.clock, SystemClock)  # a fake one never sleeps
        if why_not is None:
            assert isinstance(self.clock, SystemClock)
            self._native = NativeTick(self.sim, self._feeds, self.clock.spin)
        #: ``"compiled"`` (one call without the GIL per tick) or ``"python (<why>)"``.
        self.tick_path = "compiled" if why_not is None else f"python ({why_not})"
        if tick_threads not in (1, 2, "auto"):
            raise ValueError(f"tick_threads is {tick_threads!r}; expected 1, 2 or 'auto'")
        self._runs: TickLoop | None = None
        #: The tick's two stages when two threads step each tick, else None.
        self.stages: TwoStages | None = None
        if self._native is not None and runs:
            if want_two_stages(self.sim, tick_threads):
                self.stages = self.sim.two_stages(self._targets)
            self._runs = TickLoop(
                self._native,
                self._targets,
                self._live,
                busy_spin,
                stages=self.stages,
                pin=pin_tick_threads,
                early=early_ticks,
            )
            # The compiled loop records each tick's pace and work, so the collect does not.
            self._runs.record_into(self.pacer.pace_record, self.work)
            offsets = self._runs.probe_offsets
            self._rows = RowRecorder(list(self.streams.values()), offsets, self._live)
        #: Threads that step each tick: 2 with :attr:`stages`, else 1.
        self.tick_threads = 1 if self.stages is None else 2
        # Held by whichever thread turns ring rows into frames or changes what they feed
        # (pacer schedule, streams, counters): the tick thread between runs, the I/O thread
        # in collect(). The pace and work records are written by one thread at a time.
        self._book = threading.Lock()
        self._notify = notify
        self._notified = False
        self._commands: deque[Command] = deque(maxlen=1024)
        self.events: deque[dict[str, Any]] = deque(maxlen=1024)
        #: Snapshots taken (their state) for the I/O side to write, and snapshots refused and
        #: restores done or refused (None): the I/O side ends their jobs.
        self.snapshots: deque[tuple[Command, dict[str, npt.NDArray[Any]] | None]] = deque()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = False
        self.skipped_ticks = 0
        self.executed = 0  # ticks stepped since start (sim.tick restarts on reset)
        self.ticks_in_runs = 0  # of which in runs of compiled ticks (runs=True)
        self.input_log: InputLog | None = None
        # Debug-only input-to-output timestamps (serve --trace-latency); None: off.
        self.trace: LatencyTrace | None = None
        self.commands_applied = 0
        self.commands_rejected = 0  # refused by the tick thread
        self.commands_overflow = 0  # refused by submit: the queue was full
        self.events_dropped = 0
        self.memory_limit = memory_limit
        self.network_bytes = network_bytes
        # One handler per command of the codec's table; set keys dispatch on SETTINGS.
        self._handlers: dict[str, Callable[[Command], dict[str, Any]]] = {
            "pause": self._pause,
            "resume": self._resume,
            "reset": self._reset,
            "status": self._status,
            "snapshot": self._snapshot,
            "restore": self._restore,
            "learn": lambda cmd: self._set("learning", cmd.value),
            "set": lambda cmd: self._set(cmd.key, cmd.value),
            # Published by the I/O side as this reply comes back: after the commands before.
            "describe": lambda cmd: {"tick": self.sim.tick},
        }
        self._setters: dict[str, Callable[[Any], dict[str, Any]]] = {
            "realtime_factor": self._set_realtime_factor,
            "ttl": self._set_ttl,
            "ticks_per_frame": self._set_ticks_per_frame,
            "learning_rate": lambda rate: self._learn({"learning_rate": rate}, rate=rate),
            "learning": lambda on: self._learn({"learning": on}, enabled=on),
        }
        assert set(self._handlers) == set(COMMANDS), "a command without a handler"
        assert set(self._setters) == set(SETTINGS), "a setting without a setter"
        self.failure: BaseException | None = None
        self.rt_priority = rt_priority
        self.realtime_priority: str = "not started"
        self.tick_slice = tick_slice
        self.tick_slice_granted: str = "not started"
        #: The tick thread's timer slack once it runs (1 ns, set as it starts), or None.
        self.timer_slack_ns: int | None = None
        self.fifo_priority = 0  # the SCHED_FIFO priority the tick thread got (0: none)

    def loop_counts(self) -> tuple[bool, int, int, int, int]:
        """``(contended, busy ticks, spells, takeovers, early)`` of the runs (any thread):
        whether the tick thread is kept waiting for a CPU and spins the busy spin, the ticks
        that waited so, the contended spells begun, the stages either tick thread ran for
        the other, late to begin it, and the ticks started before their deadlines on a new
        input (since start; all zero outside runs of compiled ticks)."""
        if (runs := self._runs) is None:
            return False, 0, 0, 0, 0
        takeovers, early = runs.takeovers + runs.starts_taken, int(runs.loop[L_EARLY_TICKS])
        return runs.contended, runs.busy_ticks, runs.spells, takeovers, early

    # ------------------------------------------------------------------ I/O side

    def submit(self, command: Command) -> bool:
        """Queue a command for the tick thread (any one thread besides it).

        Returns False, with a ``control_rejected`` event and a count, when the queue is
        full: a flood of commands is refused, never silently pushed out of the queue.
        """
        if len(self._commands) == self._commands.maxlen:
            self.commands_overflow += 1
            self._event(
                "control_rejected",
                cmd=command.cmd,
                id=command.id,
                error=f"the command queue is full ({self._commands.maxlen} waiting); "
                "command refused",
                **_reply(command),
            )
            return False
        self._commands.append(command)
        self._wake.set()
        if self._runs is not None:
            self._runs.interrupt()
        return True

    def clear_notified(self) -> None:
        """The publisher calls this before draining, re-arming ``notify``."""
        self._notified = False

    def start(self) -> None:
        """Start the tick thread."""
        if self._thread is not None:
            raise SimulationError("engine already started")
        # The thread runs in a copy of the starter's context, so that what it logs carries
        # the same log context (serving: which network).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="spikestream-tick", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the tick thread and flush partial frames."""
        self._stop.set()
        self._wake.set()
        if self._runs is not None:
            self._runs.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def tick_loop(self) -> TickLoop | None:
        """The runs of compiled ticks (``runs=True`` on the compiled path), else None.
        Benchmarks turn it into the machine's floor with :meth:`TickLoop.as_floor`."""
        return self._runs

    @property
    def wake_fd(self) -> int | None:
        """An eventfd that becomes readable when a run of ticks completes a frame (then
        call :meth:`collect`), or None when ticks do not run in runs."""
        return None if self._runs is None or self._runs.closed else self._runs.fd

    def collect(self) -> bool:
        """Turn the ticks a run has finished into frames (the I/O thread, when
        :attr:`wake_fd` is readable). Returns True if a frame completed."""
        runs = self._runs
        if runs is None:
            return False
        # Never wait for the tick thread: it holds the lock while it applies a command
        # (a snapshot copies every array), and it collects the rows itself right after.
        if not self._book.acquire(blocking=False):
            runs.clear_wakeup()  # else the event loop sees the descriptor ready again
            return False
        try:
            return self._collect()
        finally:
            self._book.release()

    def close(self) -> None:
        """Release the wake-up descriptor (after :meth:`stop`, once nothing watches it)."""
        if self._runs is not None and not self.running:
            self._runs.close()

    @property
    def running(self) -> bool:
        """True while the tick thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def statistics(self) -> EngineStatistics:
        """A snapshot of the counters (any thread)."""
        return EngineStatistics(
            tick=self.sim.tick,
            t=self.sim.t,
            running=self.running,
            paused=self._paused,
            pacer=self.pacer.statistics(),
            streams={n: s.statistics() for n, s in self.streams.items()},
            inputs={n: s.counts() for n, s in self.inputs.items()},
            skipped_ticks=self.skipped_ticks,
            commands=self.commands_applied,
            commands_rejected=self.commands_rejected + self.commands_overflow,
            events_dropped=self.events_dropped,
            work=self.recent_work(),
        )

    def recent_work(self) -> tuple[WindowStatistics, ...]:
        """Each tick's work over the last :data:`~spikestream.runtime.pacer.WINDOWS`
        seconds (any thread); see :attr:`EngineStatistics.work`."""
        now = self.clock.now()
        return tuple(self.work.statistics(w, now) for w in WINDOWS)

    def resume_counters(self, state: dict[str, npt.NDArray[Any]], now: float) -> None:
        """Continue each probe's ``seq`` after a restart from a snapshot (before start).

        Frames published between the snapshot and the restart are gone; ``seq`` jumps past
        every number the previous process could have used in that time (at most one frame
        per frame period, plus a catch-up burst; at most 2**39, half the room a snapshot's
        counters leave), so clients see a gap, never a repeat (unless more than 2**39
        frames could have been sent since the snapshot).
        """
        saved = float(state.get("engine.wall", now))
        elapsed = max(0.0, now - saved)
        rf = self.pacer.realtime_factor
        for name, stream in self.streams.items():
            key = f"engine.seq.{name}"
            if key not in state:
                continue
            period = stream.ticks_per_frame * self.model.dt / rf if rf > 0 else 0.0
            # At most half the 2**40 a snapshot's counters leave below a frame's limit.
            possible = min(math.ceil(elapsed / period) if period > 0 else 10**9, 2**39)
            stream.seq = int(state[key]) + possible + self.pacer.max_catchup + 1
            stream.dropped = int(state.get(f"engine.dropped.{name}", 0))

    # ------------------------------------------------------------------ tick thread

    def _signal(self) -> None:
        if not self._notified and self._notify is not None:
            self._notified = True
            self._notify()

    def _event(self, kind: str, **fields: Any) -> None:
        if len(self.events) == self.events.maxlen:
            self.events_dropped += 1  # the I/O side is not draining: count what falls off
        self.events.append({"event": kind, **fields})
        self._signal()

    def _run(self) -> None:
        try:
            self.realtime_priority = raise_priority(self.rt_priority)
            self.fifo_priority = fifo_priority()
            self.tick_slice_granted = request_slice(self.tick_slice)
            # Sleeps that end when asked: the spin before each deadline then only covers
            # the wake-up (SystemClock, and the compiled tick's sleep_until).
            self.timer_slack_ns = request_timer_slack(1)
            # One BLAS thread: two stall for milliseconds when the other core is busy.
            with threadpool_limits(limits=1, user_api="blas"):
                self._loop()
        except BaseException as err:  # the thread must report, not die silently
            self.failure = err
            log.exception("tick thread failed")
            self._event("engine_failed", error=f"{type(err).__name__}: {err}")

    def _loop(self) -> None:
        pacer, runs = self.pacer, self._runs
        stages = self.stages
        log.info(
            "tick path: %s%s",
            self.tick_path,
            "" if runs is None else " (runs of ticks)",
            extra={
                "timer_slack_ns": self.timer_slack_ns,
                "tick_threads": self.tick_threads,
                **(
                    {} if stages is None else {"stage_shares": [round(x, 3) for x in stages.shares]}
                ),
            },
        )
        pacer.start()
        while not self._stop.is_set():
            if runs is not None:
                runs.clear_interrupt()  # a command submitted from now on interrupts the run
            with self._book:
                if runs is not None and self._collect():
                    self._signal()
                more = bool(self._commands) and self._apply_commands()
            if self._stop.is_set():
                break
            if self._paused:
                if not more:
                    self._wake.wait(0.05)
                    self._wake.clear()
                continue
            if more:  # a flood of commands: a due tick between slices keeps the pace
                if not (self._real_clock and pacer.ahead(STOP_POLL) > 0.0):
                    self._one_tick()
                continue
            if runs is not None and pacer.period > 0.0:
                with self._book:
                    t0, k0 = pacer.anchor()
                    frames = [
                        (s.ticks_per_frame - s.partial_ticks(), s.ticks_per_frame)
                        for s, _ in self._views
                    ]
                    first, burst = pacer.next_index, pacer.burst
                    catchup = pacer.max_catchup if pacer.policy == "catch-up" else 0
                # Waits, inputs, kernels and probe copies, tick after tick, without the GIL
                # (late ticks too, under catch-up, until a burst reaches max_catchup).
                reason = runs.run(t0, k0, pacer.period, first, frames, burst, catchup)
                self.ticks_in_runs += runs.ticks_run
                if reason != RUN_OVERRUN:
                    continue
                with self._book:  # the pacer decides on the late tick below
                    if self._collect():
                        self._signal()
            elif self._real_clock and (ahead := pacer.ahead(STOP_POLL)) > 0.0:
                self._wake.wait(ahead)  # a command or stop at a slow factor: within 50 ms
                self._wake.clear()
                continue
            self._one_tick()
        with self._book:
            while self._commands:  # at stop: each request still queued hears
                self._refuse(self._commands.popleft(), "the service is stopping; not applied")
            if runs is not None:
                self._collect()
            for stream, _ in self._views:
                stream.flush()
        self._signal()

    def _one_tick(self) -> None:
        """One tick by the pacer, on the compiled or the Python path."""
        pacer, sim, native = self.pacer, self.sim, self._native
        with self._book:
            # The compiled tick waits for the deadline itself; the Python path waits here.
            tick = pacer.due() if native is not None else pacer.wait()
            if tick.skipped:
                self._skip(tick.skipped)
        if native is not None:
            # Wait, inputs and kernels in one call without the GIL (with the runs' spin:
            # a tick released here is most often an overrun, in a contended spell).
            runs = self._runs
            start = native(tick.deadline, None if runs is None else runs.spin_now)
            with self._book:
                tick = pacer.release(start)
                self.work.record(start, native.ended - start, -1.0)
                self._applied(native.state, self._targets, tick.start)
                sim.tick += 1
                self._record(self._live, tick.lateness, time.time())
        else:
            now = self.clock.now()
            with self._book:
                for slot, target in self._feeds:
                    change = slot.apply(target, now)
                    if change & (NEW_VALUE | WENT_STALE):  # an EXPIRED message alone: counted
                        self._input_changed(slot, target, change, now)
                sim.step()
                self.work.record(now, self.clock.now() - now, -1.0)
                self._record(self._live, tick.lateness, time.time())

    def _record(self, values: list[npt.NDArray[Any]], late: float, wall: float) -> None:
        """Count the tick just stepped and copy ``values`` (per probe) into its frames."""
        self.executed += 1
        sim = self.sim
        index, t = sim.tick - 1, sim.tick * self.model.dt
        completed = False
        for (stream, _), value in zip(self._views, values, strict=True):
            completed |= stream.record(value, index, t, late, wall)
        if completed:
            self._signal()

    def _collect(self) -> bool:
        """Account for the rows a run left in the ring, oldest first (``_book`` held).
        Returns True if a frame completed."""
        runs = self._runs
        assert runs is not None
        # The run's pacing and its first change of input, read from its rows in one pass.
        tail, head, caught_up, trailing, changed, last, deadline, start = runs.look()
        if (n := head - tail) == 0:
            return False
        sim, first, executed = self.sim, self.sim.tick, self.executed
        # Recorded by the run already (TickLoop.record_into): the pacer only learns of it.
        self.pacer.ran_run(n, last, deadline, start, caught_up, trailing)
        # Only rows from the first in which an input changed are read here, each at its tick
        # (what raises here is a bug, fatal to the service: the rows are not given back).
        for r in range(changed, n):
            row = runs.row(tail + r)
            sim.tick, self.executed = first + r, executed + r
            start, _, wall_start, _, _ = row.meta.tolist()
            self._applied(row.state, row.inputs, start, wall_start)
        sim.tick, self.executed = first + n, executed + n
        # Every row into every probe's frames at once, as ProbeStream.record would fill them.
        completed = self._rows(runs.address, n, first, self.model.dt)
        runs.done(n)
        return completed

    def _applied(
        self,
        state: npt.NDArray[np.int64],
        values: list[npt.NDArray[Any]],
        at: float,
        wall: float | None = None,
    ) -> None:
        """Account for what the compiled tick did with each input: ``state`` is its input
        state after the tick (``(inputs, 5)``, live or a ring row's copy), ``values`` each
        input's value during it, ``at`` its start (clock seconds; ``wall``: time.time())."""
        for i, (slot, _) in enumerate(self._feeds):
            change = int(state[i, FLAG])
            if change:
                slot.applied(change, applied_number(state, i))
                if change & (NEW_VALUE | WENT_STALE):  # an EXPIRED message alone: counted
                    self._input_changed(slot, values[i], change, at, wall)

    def _input_changed(
        self,
        slot: InputSlot,
        target: npt.NDArray[np.floating],
        change: int,
        at: float,
        wall: float | None = None,
    ) -> None:
        """Log, trace and report an input change applied to this tick at clock time ``at``
        (``time.time()`` ``wall``, if known)."""
        if self.input_log is not None:
            self.input_log.record(self.executed, slot.name, target)
        if self.trace is not None and change & NEW_VALUE:
            if wall is None:
                wall = time.time() - (self.clock.now() - at)
            self.trace.applied(float(target.flat[0]), wall)
        if change & WENT_STALE:
            self._event("input_stale", input=slot.name, ttl=slot.ttl)

    def _skip(self, skipped: int) -> None:
        # Simulated time jumps with the wall clock; partial frames are sent short so the
        # next frame's ``tick`` shows the jump.
        self.skipped_ticks += skipped
        self.sim.tick += skipped
        for stream, _ in self._views:
            stream.flush()

    def _apply_commands(self) -> bool:
        """Apply up to :data:`COMMANDS_PER_TICK` queued commands; True if more wait."""
        for _ in range(min(COMMANDS_PER_TICK, len(self._commands))):
            cmd = self._commands.popleft()
            self.commands_applied += 1
            try:
                result = self._apply(cmd)
            except Exception as err:
                # Whatever a command raises (a refused value, a MemoryError from a
                # reallocation, a bug) is a refusal: the tick thread reports it and goes on.
                # Handlers validate and allocate before they change anything, so the state
                # is what it was before the command.
                self._refuse(cmd, str(err) if isinstance(err, SpikestreamError) else _describe(err))
            else:
                self._event("control_ok", cmd=cmd.cmd, id=cmd.id, **result, **_reply(cmd))
                if cmd.cmd == "restore":  # its job, and the state it held, end here
                    self.snapshots.append((cmd, None))
        return bool(self._commands)

    def _refuse(self, cmd: Command, error: str) -> None:
        self.commands_rejected += 1
        self._event("control_rejected", cmd=cmd.cmd, id=cmd.id, error=error, **_reply(cmd))
        if cmd.cmd in ("snapshot", "restore"):  # its job ends: no state comes
            self.snapshots.append((cmd, None))

    def _apply(self, cmd: Command) -> dict[str, Any]:
        handler = self._handlers.get(cmd.cmd)
        if handler is None:
            raise ConfigError(f"unknown command {cmd.cmd!r}; expected one of {', '.join(COMMANDS)}")
        return handler(cmd)

    def _pause(self, cmd: Command) -> dict[str, Any]:
        if not self._paused:
            self._paused = True
            self.pacer.pause()
            self.work.flush()  # the last ticks' work counts while none runs, as their lateness
            for stream, _ in self._views:
                stream.flush()
        return {"paused": True}

    def _resume(self, cmd: Command) -> dict[str, Any]:
        if self._paused:
            self._paused = False
            self.pacer.resume()
        return {"paused": False}

    def _reset(self, cmd: Command) -> dict[str, Any]:
        for stream, _ in self._views:
            stream.flush()
        self.sim.reset()
        for slot in self.inputs.values():
            slot.clear()
        if self.input_log is not None:
            self.input_log.mark("reset", self.executed)
        return {"tick": 0}

    def _status(self, cmd: Command) -> dict[str, Any]:
        return {"tick": self.sim.tick, "paused": self._paused, "settings": self.settings()}

    def settings(self) -> dict[str, Any]:
        """The value in force of every key of :data:`SETTINGS` (any thread: plain reads).

        ``realtime_factor`` is a number; the others may differ per input, probe or
        learning connection, so they are maps: ``ttl`` by input (seconds, 0 when a value
        holds until replaced), ``ticks_per_frame`` by probe, and ``learning_rate`` and
        ``learning`` by learning connection (empty without one).
        """
        learning = self.sim.learning_settings()
        out: dict[str, Any] = {
            "realtime_factor": self.pacer.realtime_factor,
            "ttl": {n: slot.ttl or 0.0 for n, slot in self.inputs.items()},
            "ticks_per_frame": {s.name: s.ticks_per_frame for s, _ in self._views},
            "learning_rate": {n: rate for n, (rate, _) in learning.items()},
            "learning": {n: on for n, (_, on) in learning.items()},
        }
        assert set(out) == set(SETTINGS), "a setting without its value in force"
        return out

    def _snapshot(self, cmd: Command) -> dict[str, Any]:
        if len(self.snapshots) >= SNAPSHOTS_WAITING:  # each holds a copy of the state
            raise ConfigError(f"{SNAPSHOTS_WAITING} snapshots wait to be written; try again")
        state = self.sim.state()
        # Frame counters travel with the state so a resumed process continues seq.
        for name, stream in self.streams.items():
            state[f"engine.seq.{name}"] = np.array(stream.seq, np.int64)
            state[f"engine.dropped.{name}"] = np.array(stream.dropped, np.int64)
        state["engine.wall"] = np.array(time.time())
        self.snapshots.append((cmd, state))
        return {"tick": self.sim.tick, "path": cmd.value}

    def _restore(self, cmd: Command) -> dict[str, Any]:
        state = cmd.attachment
        if not isinstance(state, dict):
            raise ConfigError("restore needs a loaded state")
        self.sim.set_state(state)
        for stream, _ in self._views:
            stream.flush()
        if self.input_log is not None:  # a replay cannot follow: the log says where
            self.input_log.mark("restore", self.executed)
        return {"tick": self.sim.tick}

    def _set(self, key: str | None, value: Any) -> dict[str, Any]:
        setting = SETTINGS.get(key) if key is not None else None
        if key is None or setting is None:
            raise ConfigError(f"cannot set {key!r}; settable keys: {', '.join(SETTINGS)}")
        high = self.max_ticks_per_frame() if key == "ticks_per_frame" else None
        return self._setters[key](setting.check(value, high=high))

    def max_ticks_per_frame(self) -> int | None:
        """The largest ``ticks_per_frame`` allowed now: every probe's frames within what a
        client decodes (16 MiB), and the memory budget (the new frame pools are allocated
        while the old ones, and those older frames still queued hold, exist)."""
        streams = [s for s, _ in self._views]
        bounds = [frame_tick_bound(s.kind, int(np.prod(s.shape)), s.policy) for s in streams]
        if self.memory_limit is not None:
            per_tick = sum(s.bytes_per_tick() for s in streams)
            if per_tick:
                current = sum(
                    s.bytes_per_tick() * s.ticks_per_frame + s.legacy_bytes() for s in streams
                )
                room = self.memory_limit - self.network_bytes - current
                bounds.append(max(0, room // per_tick))
        return min(bounds, default=None)

    def _set_realtime_factor(self, factor: float) -> dict[str, Any]:
        self.pacer.set_realtime_factor(factor)
        return {"realtime_factor": factor}

    def _set_ttl(self, ttl: float) -> dict[str, Any]:
        for slot in self.inputs.values():
            slot.ttl = ttl if ttl > 0 else None
        return {"ttl": ttl}

    def _set_ticks_per_frame(self, tpf: int) -> dict[str, Any]:
        # Allocate every new pool before changing any stream: a MemoryError on the third
        # probe must not leave the first two resized.
        pools = [stream.allocate(tpf) for stream, _ in self._views]
        for (stream, _), pool in zip(self._views, pools, strict=True):
            stream.resize(tpf, pool)
        return {"ticks_per_frame": tpf}

    def _learn(
        self, reply: dict[str, Any], *, rate: float | None = None, enabled: bool | None = None
    ) -> dict[str, Any]:
        """``set learning_rate`` (``rate``) and ``learn`` (``enabled``) on every learning
        connection, and in the input log (a replay applies it before the same tick)."""
        names = self.sim.learning_connections()
        if not names:
            raise ConfigError("this network has no learning connection")
        for name in names:
            self.sim.set_learning(name, rate=rate, enabled=enabled)
        if self.input_log is not None:
            self.input_log.learning(self.executed, rate=rate, enabled=enabled)
        return reply


def _reply(cmd: Command) -> dict[str, Any]:
    return {} if cmd.reply is None else {"reply": cmd.reply}


def _describe(err: BaseException) -> str:
    """An unexpected error as an event's ``error``: its type and message, never a trace."""
    if isinstance(err, MemoryError):
        return f"MemoryError: the command needs more memory than is free ({err or 'no detail'})"
    return f"{type(err).__name__}: {err}"
