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
path, which computes the same ticks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.runtime.clock import Clock, SystemClock
from spikestream.runtime.slots import InputSlot
from spikestream.sim import Simulator
from spikestream.sim.native import extension

#: Columns of a row of the input table and of the state array (see ``_native.c``).
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

    def post(self, x: npt.NDArray[np.float64], received: float, expires: float | None) -> None:
        """Write a value (I/O thread; one writer). ``x``: float64 ``(dim,)``."""
        value = np.ascontiguousarray(x, np.float64)
        if value.shape != (self.dim,):
            raise ValueError(f"input value of shape {value.shape}; expected ({self.dim},)")
        self._post(
            self._row,
            self._box,
            int(value.ctypes.data),
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
        """What the last tick did with this input: 0, NEW_VALUE or WENT_STALE."""
        return int(self._state[self._index, FLAG])

    def applied_number(self) -> int:
        """The number of the message last applied (the slot's ``accepted`` count when it
        was offered: every offer posts once, two sequence steps each), or -1."""
        applied = int(self._state[self._index, APPLIED])
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

    def __call__(self, deadline: float) -> float:
        """Wait for ``deadline`` (clock seconds; -inf: do not wait), apply the inputs and
        run one tick, all without the GIL. Returns the time the tick started."""
        start: float = self._tick(*self._args, deadline, self.spin)
        return start
