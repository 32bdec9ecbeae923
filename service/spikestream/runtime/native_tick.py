"""The live tick in one compiled call that holds no GIL: wait, inputs, every kernel.

The Python tick path takes the GIL several times per tick: to wake from the pacer's sleep,
to spin to the deadline, to copy each input's latest value into the simulator, to call
the compiled program. Whenever the I/O thread holds the GIL at those moments (decoding a
burst of inputs, encoding frames), the tick waits for it, and a preempted thread that holds
the GIL stalls the tick for as long as it is off the CPU.

:class:`NativeTick` makes those steps one call into the C extension
(``spikestream.sim._native.tick``) that releases the GIL on entry: it sleeps and spins to
the deadline, applies every input's latest value (:class:`~spikestream.runtime.slots.
InputSlot`'s rules: a new message, or the default once the TTL or the message's expiry
has passed), and runs the tick's compiled program. Only then does the tick thread take
the GIL again, to copy probe rows into frames and hand them over; a GIL held elsewhere can
delay that hand-over, no longer the tick.

The I/O thread gives inputs to the C code through one mailbox per input: ``offer`` writes
the value, its receive time and expiry under a sequence lock (``post_input``), so the tick
never waits for a writer and never reads a half-written value.

Used when the whole tick is one compiled program run by the C extension and the engine
paces on the real :class:`~spikestream.runtime.clock.SystemClock` (whose ``perf_counter``
time line is the extension's ``CLOCK_MONOTONIC``); otherwise the engine keeps the Python
path, which computes the same ticks. The arrays of a run of such ticks, and the spin's
adaptation, are named in :mod:`spikestream.runtime.native_pacing`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.runtime.clock import Clock, SystemClock
from spikestream.runtime.native_pacing import (
    L_ARMED,
    L_BURST,
    L_BUSY_TICKS,
    L_CAPACITY,
    L_CATCHUP,
    L_CONTENDED,
    L_COPIES,
    L_EARLY,
    L_EVENTFD,
    L_FILL,
    L_FLOOR_NS1,
    L_FLOOR_NS2,
    L_K0,
    L_LATCHES,
    L_MAIN_COPIES,
    L_N_COPIES,
    L_N_LATCHES,
    L_N_OPS2,
    L_N_STREAMS,
    L_NEXT,
    L_PACE,
    L_PIN,
    L_PINNED,
    L_PROCSTAT,
    L_PROGRAM2,
    L_RING,
    L_ROW_BYTES,
    L_SCHEDSTAT,
    L_SPELLS,
    L_STARTS_TAKEN,
    L_STOP,
    L_TAKE_NS,
    L_TAKEOVERS,
    L_THREADED,
    L_TICKS,
    L_WORK,
    LOOP_COLUMNS,
    PROC_STAT,
    SCHEDSTAT,
    T_PERIOD,
    T_T0,
    TIME_COLUMNS,
    close_fd,
    fill_adaptation,
    open_proc,
    open_schedstat,
)
from spikestream.runtime.slots import InputSlot
from spikestream.runtime.stats import LatenessWindow, PaceRecord
from spikestream.sim import Simulator
from spikestream.sim.native import extension, program_args
from spikestream.sim.stages import TwoStages

log = logging.getLogger(__name__)

#: Columns of a row of the input table and of the state array (see ``_native_inputs.h``).
IN_COLUMNS = 5
SEQ, APPLIED, STALE, FLAG, CLEARED = range(5)


def unavailable(sim: Simulator, clock: Clock) -> str | None:
    """Why the compiled tick cannot run this simulator on this clock, or None if it can."""
    if extension() is None:
        return "the C extension is not built"
    if sim.native_program() is None:
        return f"the tick is not one program run by the C extension (runner {sim.runner})"
    if type(clock) is not SystemClock:
        return f"the clock is a {type(clock).__name__}, not the system clock"
    return None


class Mailbox:
    """One input's mailbox: what :class:`InputSlot` writes for the compiled tick.

    Args:
        post: the extension's ``post_input``.
        state: the engine's state array, ``(inputs, 5)`` int64; row ``index`` is this input's.
        ttl: the engine's TTL array, ``(inputs,)`` float64 seconds (+inf: none).
        index: this input's row.
        dim: the input's dimensions.
    """

    def __init__(
        self,
        post: Any,
        state: npt.NDArray[np.int64],
        ttl: npt.NDArray[np.float64],
        index: int,
        dim: int,
    ) -> None:
        self._post = post
        self._state = state
        self._ttl = ttl
        self._index = index
        self.dim = dim
        #: ``[received, expires, value...]``, float64 ``(2 + dim,)``; written by post only.
        self.box = np.zeros(2 + dim)
        #: The tick's consistent copy of ``box`` (written by the tick only).
        self.scratch = np.zeros(2 + dim)
        self._row = int(state.ctypes.data) + index * IN_COLUMNS * state.itemsize
        self._box = int(self.box.ctypes.data)
        # Each value is copied here first, its address known once (``ctypes`` costs more).
        self._value = np.zeros(dim)
        self._value_at = int(self._value.ctypes.data)

    def post(self, x: npt.NDArray[np.float64], received: float, expires: float | None) -> None:
        """Write a value (I/O thread; one writer). ``x``: float64 ``(dim,)``."""
        if getattr(x, "shape", None) != (self.dim,):  # a scalar or a list: as an array
            x = np.ascontiguousarray(x, np.float64)
            if x.shape != (self.dim,):
                raise ValueError(f"input value of shape {x.shape}; expected ({self.dim},)")
        self._value[:] = x
        self._post(
            self._row,
            self._box,
            self._value_at,
            self.dim,
            received,
            math.inf if expires is None else expires,
        )

    def set_ttl(self, ttl: float | None) -> None:
        """The TTL in seconds, None for none (tick thread, between ticks)."""
        self._ttl[self._index] = math.inf if ttl is None else ttl

    def clear(self) -> None:
        """Forget every value posted so far (tick thread, between ticks: a reset)."""
        row = self._state[self._index]
        seq = int(row[SEQ])
        row[CLEARED] = seq + (seq & 1)  # a value being written now is forgotten too
        row[APPLIED] = -1
        row[STALE] = 1

    def flag(self) -> int:
        """What the last tick did with this input: 0, NEW_VALUE or WENT_STALE, either
        with EXPIRED set (runtime/slots.py)."""
        return int(self._state[self._index, FLAG])

    def applied_number(self) -> int:
        """The number of the message last applied, or -1 (see :func:`applied_number`)."""
        return applied_number(self._state, self._index)


def applied_number(state: npt.NDArray[np.int64], index: int) -> int:
    """The number of the message input ``index`` last applied, read from a state array
    (the engine's, or a ring row's copy): the slot's ``accepted`` count when it was
    offered (every offer posts once, two sequence steps each), or -1."""
    applied = int(state[index, APPLIED])
    return applied // 2 if applied > 0 else -1


class NativeTick:
    """The compiled live tick of ``sim`` with the mailboxes of ``slots``.

    Args:
        sim: a simulator whose tick is one program run by the C extension.
        slots: each input's slot and the simulator's input array it drives, in order.
        spin: seconds before each deadline to stop sleeping and spin (the clock's spin).

    Binds a :class:`Mailbox` to each slot; from then on ``offer`` also posts into it.
    """

    def __init__(
        self,
        sim: Simulator,
        slots: Sequence[tuple[InputSlot, npt.NDArray[np.floating]]],
        spin: float,
    ) -> None:
        ext = extension()
        program = sim.native_program()
        if ext is None or program is None:
            raise ValueError("the compiled tick needs a simulator run by the C extension")
        ext.check_program(*program, 0, 1)  # once: the program and its table never change
        self._tick = ext.tick
        self._sim = sim  # keeps the program's arrays, whose addresses the call takes, alive
        self.spin = float(spin)
        self.ended = math.nan  # when the last call's work ended (clock seconds)
        n = len(slots)
        self.state = np.zeros((n, IN_COLUMNS), np.int64)
        self.state[:, APPLIED] = -1
        self.state[:, STALE] = 1
        self.ttl = np.full(n, math.inf)
        self.table = np.zeros((n, IN_COLUMNS), np.int64)
        self.mailboxes: list[Mailbox] = []
        self._targets = [target for _, target in slots]  # keeps the addresses valid
        self._defaults: list[npt.NDArray[np.float64]] = []
        for i, (slot, target) in enumerate(slots):
            if (
                target.dtype != sim.dtype
                or not target.flags.c_contiguous
                or target.shape != (slot.dim,)
            ):
                raise ValueError(
                    f"input {slot.name!r}: the target is a {target.dtype} array of shape "
                    f"{target.shape}; expected a contiguous {sim.dtype} array ({slot.dim},)"
                )
            default = np.ascontiguousarray(slot.default, np.float64)
            if default.shape != (slot.dim,):
                raise ValueError(
                    f"input {slot.name!r}: default of shape {default.shape}; expected ({slot.dim},)"
                )
            box = Mailbox(ext.post_input, self.state, self.ttl, i, slot.dim)
            self._defaults.append(default)
            self.table[i] = (
                box.box.ctypes.data,
                default.ctypes.data,
                target.ctypes.data,
                slot.dim,
                box.scratch.ctypes.data,
            )
            self.mailboxes.append(box)
            slot.bind(box)
        self._args = (
            *program,
            int(self.table.ctypes.data),
            n,
            int(self.state.ctypes.data),
            int(self.ttl.ctypes.data),
        )
        #: Benchmarks only (:meth:`TickLoop.as_floor` sets it): > 0, a tick stepped here
        #: applies its inputs, runs no op and busy-waits this long (s) instead.
        self.floor = 0.0
        self._no_ops = (self._args[0], 0, *self._args[2:])
        self._busy_until = ext.sleep_until

    def __call__(self, deadline: float, spin: float | None = None) -> float:
        """Wait for ``deadline`` (clock seconds; -inf: do not wait), spinning ``spin`` s
        before it (None: :attr:`spin`), apply the inputs and run one tick, all without the
        GIL. Returns the time the tick started; :attr:`ended` is when its work (inputs and
        kernels) ended, before the GIL was taken back."""
        start: float
        spin = self.spin if spin is None else spin
        if self.floor > 0.0:  # the machine's floor: a busy wait as long as the tick's work
            start, _ = self._tick(*self._no_ops, deadline, spin)
            self.ended = self._busy_until(start + self.floor, self.floor)  # spins, no GIL
            return start
        start, self.ended = self._tick(*self._args, deadline, spin)
        return start


#: A ring row's header: ROW_META_FLOATS float64 (start, deadline, wall_start, wall_end,
#: end), then int64 index and flags.
ROW_META_FLOATS = 5
ROW_HEADER_BYTES = 8 * (ROW_META_FLOATS + 2)
#: With two stages, how long (s) the tick thread leaves a handed-over tick's second stage
#: to the helper, and the helper a due tick's first stage to the tick thread, before it
#: runs the stage itself (``_native_stages.h``, await_or_take, await_post_or_take). A thread woken
#: on time begins within tens of microseconds; one whose CPU a kernel thread holds
#: (``kdamond``, 1-3 ms every 0.5 s on this VM) would hold the next tick for as long.
TAKE_AFTER = 0.00025
#: The ring holds at most this many rows, and at most RING_BYTES unless a row is larger.
RING_ROWS = 64
RING_BYTES = 8 * 2**20


class Row:
    """One ring row's views: what a tick of :class:`TickLoop` left for the reader.

    Attributes:
        meta: float64 ``(5,)``: start and deadline (clock seconds), ``time.time()`` at
            the tick's start and at its end, and when its inputs and kernels were done
            (clock seconds, before the copies into the row; with two stages, when the
            second stage was done, on the helper thread).
        index: int64 ``(2,)``: the tick's index on the pacer's grid, and 1 if it was a
            catch-up tick (due before the previous one ended, run at once), else 0.
        state: int64 ``(inputs, 5)``: the input state after the tick (``FLAG`` says what
            the tick did with each input, ``APPLIED`` the message it applied).
        inputs: each input's value during the tick (the simulator's dtype, ``(dim,)``).
        probes: each probe's value after the tick (its dtype and shape).
    """

    __slots__ = ("index", "inputs", "meta", "probes", "state")

    def __init__(
        self,
        meta: npt.NDArray[np.float64],
        index: npt.NDArray[np.int64],
        state: npt.NDArray[np.int64],
        inputs: list[npt.NDArray[Any]],
        probes: list[npt.NDArray[Any]],
    ) -> None:
        self.meta = meta
        self.index = index
        self.state = state
        self.inputs = inputs
        self.probes = probes


#: What :meth:`TickLoop.look` finds in the ring: ``(tail, head, caught_up, trailing,
#: changed, last, deadline, start)``. Rows ``tail`` .. ``head - 1`` are ready (counted from
#: the loop's first run); ``caught_up`` of them were catch-up ticks (due before the
#: previous one ended), the last ``trailing`` of them in a row; ``changed`` is the first
#: row (0-based from ``tail``) in which the tick changed an input (a new value, or gone
#: stale), or ``head - tail`` when none did; ``last``, ``deadline`` and ``start`` are the
#: last row's tick index on the pacer's grid and its deadline and start (clock seconds;
#: -1, nan and nan when no row is ready). A plain tuple: the reader unpacks it each tick.
RunLook = tuple[int, int, int, int, int, int, float, float]


class TickLoop:
    """Runs of live ticks in one compiled call each (``_native.run_ticks``), without the GIL.

    Between two returns to Python, the tick thread waits for each deadline, applies the
    inputs, steps and copies the tick's input state, input values and probe values into
    the next row of a ring; the reader (the I/O thread, woken through :attr:`fd` when a
    frame completes) turns rows into frames with :meth:`look`. The call returns when
    :meth:`interrupt` is called (a command, stop), when a tick is due before the previous
    one ended (the pacer's overrun policy then runs in Python), or when the ring is full.

    Args:
        native: the compiled tick (its program, mailboxes and input state).
        inputs: the simulator's input arrays, in the order of ``native``'s mailboxes.
        probes: the simulator's probe views, each C-contiguous.
        busy_spin: the spin (s) before each deadline while the tick thread waits for a CPU
            (see :data:`ADAPT_TICKS`); None, or ``native.spin`` itself: always
            ``native.spin``, and the run delay is never read.
        stages: the tick's program cut in two (:meth:`Simulator.two_stages
            <spikestream.sim.Simulator.two_stages>`, with ``inputs`` written before): each
            run then steps the second stage of every tick on a helper thread while the
            tick thread goes on to the next tick (``_native_stages.h``). None: one
            thread.
        pin: with ``stages``, pin the tick thread to the CPU it runs on and the helper to
            the others for each run (restored when the run returns); False (the default)
            lets both move between CPUs.
        take_after: with ``stages``, the tick thread runs a tick's second stage when the
            helper has not begun it ``take_after`` s after the hand-over
            (:data:`TAKE_AFTER`), and under catch-up the helper a tick's first stage
            ``take_after`` s after its deadline (a catch-up tick); None: each waits for
            the other. Either way the results are the same bits.
        early: start a tick as soon as an input is posted rather than at its deadline,
            though never before the previous tick's deadline (``_native_stages.h``,
            ``wait_for_tick``); ticks with no new input wait for their deadlines.

    The ring holds ``RING_ROWS`` rows, fewer if they would pass ``RING_BYTES`` (at least
    two); :attr:`nbytes` is what it allocates, once.
    """

    def __init__(
        self,
        native: NativeTick,
        inputs: Sequence[npt.NDArray[Any]],
        probes: Sequence[npt.NDArray[Any]],
        busy_spin: float | None = None,
        stages: TwoStages | None = None,
        pin: bool = False,
        take_after: float | None = TAKE_AFTER,
        early: bool = False,
    ) -> None:
        ext = extension()
        assert ext is not None  # NativeTick exists
        self._run = ext.run_ticks
        self._take = ext.ring_take
        self._look: Callable[[int, int, int], RunLook] = ext.ring_look
        self._done = ext.ring_done
        self._native = native
        sources: list[npt.NDArray[Any]] = [native.state, *inputs, *probes]
        for array in sources:
            if not array.flags.c_contiguous:
                raise ValueError("the tick loop copies C-contiguous arrays only")
        offsets = []
        offset = ROW_HEADER_BYTES
        for array in sources:
            offsets.append(offset)
            offset += -(-array.nbytes // 8) * 8
        row_bytes = offset
        capacity = max(2, min(RING_ROWS, RING_BYTES // row_bytes))
        self.capacity = capacity
        self.ring = np.zeros(capacity * row_bytes // 8, np.int64)  # 8-byte aligned rows
        raw = self.ring.view(np.uint8)
        self.rows: list[Row] = []
        for r in range(capacity):
            base = r * row_bytes
            views = [
                raw[base + off : base + off + a.nbytes].view(a.dtype).reshape(a.shape)
                for a, off in zip(sources, offsets, strict=True)
            ]
            split = base + 8 * ROW_META_FLOATS
            meta = raw[base:split].view(np.float64)
            index = raw[split : base + ROW_HEADER_BYTES].view(np.int64)
            n_in = len(inputs)
            self.rows.append(Row(meta, index, views[0], views[1 : 1 + n_in], views[1 + n_in :]))
        self._sources = sources  # keeps the copied addresses alive
        # Where the input state lies in a row, and its inputs (ring_look reads their flags).
        self._state_at = (offsets[0], len(inputs))
        #: Each probe's value's byte offset in a row.
        self.probe_offsets = offsets[1 + len(inputs) :]
        copies = [
            (int(a.ctypes.data), a.nbytes, off) for a, off in zip(sources, offsets, strict=True)
        ]
        # With two stages, what the second writes is copied by its thread, after it: the
        # tick thread's copies come first in the table.
        second = [stages is not None and stages.writes_second(c[0], c[1]) for c in copies]
        copies = [c for c, s in zip(copies, second, strict=True) if not s] + [
            c for c, s in zip(copies, second, strict=True) if s
        ]
        self.copies = np.array(copies, np.int64).reshape(-1, 3)
        self.fill = np.zeros((0, 2), np.int64)
        self.loop = np.zeros(LOOP_COLUMNS, np.int64)
        self.times = np.zeros(TIME_COLUMNS)
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._closer = weakref.finalize(self, os.close, self.fd)
        lp = self.loop
        lp[L_CAPACITY] = capacity
        lp[L_ROW_BYTES] = row_bytes
        lp[L_RING] = self.ring.ctypes.data
        lp[L_COPIES] = self.copies.ctypes.data
        lp[L_N_COPIES] = len(sources)
        lp[L_ARMED] = 1
        lp[L_EVENTFD] = self.fd
        self.stages = stages
        self._args = native._args
        if stages is not None:
            first = program_args(stages.first, stages.table, stages.scalars, stages.counts)
            later = program_args(stages.second, stages.table, stages.scalars, stages.counts)
            ext.check_program(*first, 0, 1)
            ext.check_program(*later, 0, 1)
            self._args = (*first, *native._args[len(first) :])
            lp[L_PROGRAM2] = later[0]
            lp[L_N_OPS2] = later[1]
            lp[L_LATCHES] = stages.latches.ctypes.data
            lp[L_N_LATCHES] = len(stages.latches)
            lp[L_MAIN_COPIES] = len(copies) - sum(second)
            lp[L_PIN] = pin
        if take_after is not None and not 0.0 <= take_after < 1.0:
            raise ValueError(f"take_after must be in [0, 1) s or None, got {take_after!r}")
        lp[L_TAKE_NS] = -1 if take_after is None else round(take_after * 1e9)
        lp[L_EARLY] = early
        # The schedstat is opened by the tick thread, at its first run. A tick in two stages
        # never adapts its spin: the tick thread's run delay then counts the time it waits
        # behind its own helper, which the scheduler often puts on the same CPU, and that
        # wait falls inside the spin before the deadline. Read as CPU-bound neighbours, it
        # began a spell at start-up that never ended (three 60 s runs of an 80k chain on a
        # 2-vCPU VM, 2026-12-02), and with no spin before each deadline the chain was late
        # on 3.40 and 1.81 % of ticks (floors 0.66, 0.13 %; RTF 0.9975, 0.9994) against
        # 1.14 and 0.94 % (0.06, 0.07 %; RTF 0.99993, 0.99992) with the spin fixed.
        self.busy_spin = fill_adaptation(
            lp, self.times, native.spin, None if stages is not None else busy_spin
        )
        self._schedstat: int | None = None
        self._schedstat_closer: Any = None  # closes it (weakref.finalize), once opened
        self._procstat_closer: Any = None  # and /proc/stat's
        self.nbytes = int(self.ring.nbytes)
        self._address = int(lp.ctypes.data)
        self._records: tuple[PaceRecord | None, LatenessWindow | None] = (None, None)
        self.closed = False

    def run(
        self,
        t0: float,
        k0: int,
        period: float,
        next_index: int,
        frames: Sequence[tuple[int, int]],
        burst: int = 0,
        max_catchup: int = 0,
    ) -> int:
        """Run ticks from ``next_index`` on the grid ``t0 + (k - k0) * period`` until
        interrupted, an overrun or a full ring; returns ``RUN_CONTROL``, ``RUN_OVERRUN``
        or ``RUN_FULL``. ``frames``: per probe stream, (ticks left in the frame being
        filled, ticks per frame), so the reader is woken when a frame completes.

        ``max_catchup`` > 0 (the catch-up policy's): a late tick runs at once, as
        :meth:`Pacer.due` releases it, while the run of late ticks (from ``burst``) stays
        below ``max_catchup``; the overrun that would reach it, and every overrun when
        ``max_catchup`` is 0, returns ``RUN_OVERRUN`` for the pacer to decide."""
        fill = np.array(frames, np.int64).reshape(-1, 2)
        self.fill = fill  # alive while the loop runs
        lp = self.loop
        lp[L_FILL] = fill.ctypes.data
        lp[L_N_STREAMS] = len(fill)
        lp[L_NEXT] = next_index
        lp[L_K0] = k0
        lp[L_BURST] = burst
        lp[L_CATCHUP] = max_catchup
        if self._schedstat is None:
            # The calling thread's own file: run() is called by the tick thread.
            self._schedstat = -1 if self.busy_spin is None else open_schedstat()
            if self.busy_spin is not None and self._schedstat < 0:
                log.warning(
                    "the spin does not adapt: %s cannot be read, so every tick spins %g s",
                    SCHEDSTAT,
                    self._native.spin,
                )
            lp[L_SCHEDSTAT] = self._schedstat
            self._schedstat_closer = weakref.finalize(self, close_fd, self._schedstat)
            procstat = -1 if self.busy_spin is None else open_proc(PROC_STAT)
            lp[L_PROCSTAT] = procstat
            self._procstat_closer = weakref.finalize(self, close_fd, procstat)
        self.times[[T_T0, T_PERIOD]] = (t0, period)
        reason: int = self._run(*self._args, self._address, int(self.times.ctypes.data))
        return reason

    def record_into(self, pace: PaceRecord | None, work: LatenessWindow | None) -> None:
        """Record each tick of the runs as it is handed on, in compiled code without the
        GIL: in ``pace`` (the pacer's record, as :meth:`Pacer.release
        <spikestream.runtime.pacer.Pacer.release>` records a tick: its start and lateness)
        and in ``work`` (the tick's start and its work, from the start to the end of its
        kernels). None: not recorded. Call it between runs; the records are kept alive
        while the loop uses them."""
        self._records = (pace, work)
        self.loop[L_PACE] = 0 if pace is None else pace.address
        self.loop[L_WORK] = 0 if work is None else work.address

    def as_floor(self, first: float, second: float = 0.0) -> None:
        """Make this loop the machine's floor for a tick of this much work (benchmarks):
        each stage busy-waits ``first`` and ``second`` seconds (without :attr:`stages`,
        the one stage ``first``) instead of running its ops, and reads no weights; pacing,
        inputs, latches, copies, the hand-over and the reader's wake-ups stay as they
        are. A tick the pacer steps itself (:class:`NativeTick`) busy-waits their sum.
        0 restores a stage's ops. Call it between runs."""
        if not (0.0 <= first < 1.0 and 0.0 <= second < 1.0):
            raise ValueError(f"floor stage times must be in [0, 1) s, got {first}, {second}")
        self.loop[L_FLOOR_NS1] = round(first * 1e9)
        self.loop[L_FLOOR_NS2] = round(second * 1e9) if self.stages is not None else 0
        # A tick the pacer steps outside the runs (an overrun past max_catchup) runs both
        # stages on the tick thread, one after the other, as the network's would.
        self._native.floor = first + (second if self.stages is not None else 0.0)

    @property
    def address(self) -> int:
        """Address of the loop array (``_native.streams_record`` reads the ring's rows
        through it)."""
        return self._address

    @property
    def threaded(self) -> bool:
        """Whether the last :meth:`run` stepped the second stage on a helper thread (with
        :attr:`stages`; False without, or when the thread could not be started and the
        tick thread ran both)."""
        return bool(self.loop[L_THREADED])

    @property
    def pinned(self) -> bool:
        """Whether the last :meth:`run` pinned its two threads to different CPUs."""
        return bool(self.loop[L_PINNED])

    @property
    def ticks_run(self) -> int:
        """Ticks the last :meth:`run` ran."""
        return int(self.loop[L_TICKS])

    @property
    def contended(self) -> bool:
        """Whether the tick thread is in a contended spell (ticks spin the busy spin)."""
        return bool(self.loop[L_CONTENDED])

    @property
    def spin_now(self) -> float:
        """The spin (s) a tick waits with now: the busy spin in a contended spell."""
        busy = self.busy_spin
        return busy if busy is not None and self.contended else self._native.spin

    @property
    def takeovers(self) -> int:
        """Ticks whose second stage the tick thread ran because the helper had not begun
        it in time (``take_after``), since the loop was made (any thread)."""
        return int(self.loop[L_TAKEOVERS])

    @property
    def starts_taken(self) -> int:
        """Ticks whose first stage the helper ran because the tick thread had not begun
        it ``take_after`` after its deadline, since the loop was made (any thread)."""
        return int(self.loop[L_STARTS_TAKEN])

    @property
    def busy_ticks(self) -> int:
        """Ticks that waited with the busy spin, since the loop was made."""
        return int(self.loop[L_BUSY_TICKS])

    @property
    def spells(self) -> int:
        """Contended spells begun since the loop was made."""
        return int(self.loop[L_SPELLS])

    def interrupt(self) -> None:
        """Make the running (or next) :meth:`run` return before its next tick (any thread)."""
        self.loop[L_STOP] = 1

    def clear_interrupt(self) -> None:
        """Let :meth:`run` run again (tick thread, before it looks for commands)."""
        self.loop[L_STOP] = 0

    def take(self) -> list[Row]:
        """The rows written since the last :meth:`take` and :meth:`done`, oldest first.

        Resets and re-arms the wake-up first, so a row written after this look wakes the
        reader again. Call :meth:`done` with the count once they are read."""
        if self.closed:
            return []
        # Resets the descriptor, arms, then reads the head (fenced): one call.
        tail, head = self._take(self._address)
        cap = self.capacity
        return [self.rows[k % cap] for k in range(tail, head)]

    def look(self) -> RunLook:
        """:meth:`take`'s reset and re-arming of the wake-up, then what a reader's
        bookkeeping needs of the rows ready, read in one compiled pass instead of one
        :class:`Row` each (``_native.ring_look``; :data:`RunLook`). Call :meth:`done`
        with ``head - tail`` once they are read; :meth:`row` gives one's views."""
        if self.closed:
            return (0, 0, 0, 0, 0, -1, math.nan, math.nan)
        return self._look(self._address, *self._state_at)

    def row(self, number: int) -> Row:
        """The views of row ``number`` (counted from the first run, as :meth:`look`'s
        ``tail``; valid until :meth:`done` gives it back)."""
        return self.rows[number % self.capacity]

    def clear_wakeup(self) -> None:
        """Reset the wake-up descriptor's counter (it stays readable until read)."""
        if not self.closed:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.fd)

    def done(self, count: int) -> None:
        """Give ``count`` rows back to the loop (after :meth:`look` or :meth:`take`)."""
        self._done(self._address, count)

    def close(self) -> None:
        """Close the wake-up descriptor now (idempotent; after the last :meth:`run` and
        :meth:`look`); otherwise it closes when the loop is collected."""
        self.loop[L_EVENTFD] = -1
        self.closed = True
        self._closer()
        self.loop[L_SCHEDSTAT] = self.loop[L_PROCSTAT] = -1
        if self._schedstat_closer is not None:
            self._schedstat_closer()
        if self._procstat_closer is not None:
            self._procstat_closer()
