"""Fused programs: consecutive compiled ops as one program, run in one call.

:class:`_Program` collects a program's rows and the address table of the arrays they
touch; :class:`_Compiled` is a built program ready to run blocks of ticks, by the C
extension or numba (:mod:`spikestream.sim.native` chooses);
:class:`_Segment` is one stretch of fusable ops of a tick, compiled once and called as an
op, and recompiled with input feeds and record sinks for :meth:`Simulator.run
<spikestream.sim.simulator.Simulator.run>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.errors import SimulationError
from spikestream.sim.arrays import Array, _PopState
from spikestream.sim.native import Runner, extension, program_args
from spikestream.sim.opcodes import (
    ADDRESS,
    COLS,
    HALF_COLUMNS,
    OP_FEED,
    OP_RECORD,
    OP_RECORD_BOOL,
    PLAIN_OP,
    PROGRAM_COLUMNS,
    ROWS,
    SLOT_COLUMNS,
)
from spikestream.sim.weights import Half

#: id(matrix) -> (the matrix, its float16 copy, scale): the half-precision weights a
#: program may read.
Halves = Mapping[int, tuple[Array, Half, float]]


class _Program:
    """A program being built: its rows, the
    address table of the arrays they touch, constants and spike-count slots.

    Every array is one of the simulator's own (C-contiguous, allocated at build time and
    never rebound: ``set_state`` and ``reset`` write into them), and the program keeps a
    reference to each, so the addresses in its table stay valid for its whole life.
    """

    def __init__(self, dtype: np.dtype[np.floating], halves: Halves | None = None) -> None:
        """``halves``: the float16 copies of matrices this program may read instead
        (given only where the C extension runs it; :meth:`half`)."""
        self.dtype = dtype
        self._halves: Halves = halves or {}
        self._half_ids = {id(h) for _, h, _ in self._halves.values()}
        self._half_slots: set[int] = set()
        self.rows: list[list[int]] = []
        self.arrays: list[npt.NDArray[np.generic]] = []
        self._slots: dict[int, int] = {}  # id(array) -> table row
        self.scalars: list[Array] = []
        self.pops: list[_PopState] = []  # spike-count slots
        self._pop_slots: dict[int, int] = {}
        self.stepped: set[int] = set()  # id(_PopState) of the populations stepped here

    def array(self, arr: npt.NDArray[np.generic]) -> int:
        """The table row of ``arr`` (added on first use)."""
        key = id(arr)
        if key not in self._slots:
            if not arr.flags.c_contiguous or not arr.flags.aligned or arr.ndim not in (1, 2):
                raise SimulationError(
                    f"a compiled program needs aligned, C-contiguous 1-d or 2-d arrays; got "
                    f"shape {arr.shape} (C-contiguous: {arr.flags.c_contiguous}, aligned: "
                    f"{arr.flags.aligned})"
                )
            allowed = (self.dtype, np.dtype(np.bool_), np.dtype(np.intp))
            if arr.dtype not in allowed and key not in self._half_ids:
                raise SimulationError(
                    f"a compiled program needs {self.dtype}, bool or intp arrays; got {arr.dtype}"
                )
            self._slots[key] = len(self.arrays)
            self.arrays.append(arr)
        return self._slots[key]

    def half(self, matrix: Array) -> tuple[int, float] | None:
        """The table row of ``matrix``'s float16 copy and its scale, or None when this
        program reads ``matrix`` itself (no half-precision weights, or numba runs it)."""
        twin = self._halves.get(id(matrix))
        if twin is None:
            return None
        slot = self.array(twin[1])
        self._half_slots.add(slot)
        return slot, twin[2]

    def scalar(self, *values: float | np.floating[Any]) -> int:
        """The row of ``scalars`` holding ``values`` (at most 8) in the state dtype."""
        row = np.zeros(8, self.dtype)
        row[: len(values)] = values
        self.scalars.append(row)
        return len(self.scalars) - 1

    def count(self, ps: _PopState) -> int:
        """The spike-count slot of population ``ps``."""
        if id(ps) not in self._pop_slots:
            self._pop_slots[id(ps)] = len(self.pops)
            self.pops.append(ps)
        return self._pop_slots[id(ps)]

    def op(self, code: int, *operands: int) -> None:
        """Append one op (``OP_*``) with its operand columns.

        Raises:
            SimulationError: a float16 copy in any column but the weight columns of a
                half-precision op, or such a column holding something else (the C
                extension checks shapes, not element types).
        """
        row = [code, *operands] + [0] * (PROGRAM_COLUMNS - 1 - len(operands))
        weights = HALF_COLUMNS.get(code, ())
        for col in range(1, PROGRAM_COLUMNS):
            if col in SLOT_COLUMNS.get(PLAIN_OP.get(code, code), ()) and (
                (row[col] in self._half_slots) != (col in weights)
            ):
                raise SimulationError(
                    f"program row {len(self.rows)}: column {col} of opcode {code} "
                    f"{'needs' if col in weights else 'cannot take'} a float16 copy"
                )
        self.rows.append(row)

    def table(self) -> npt.NDArray[np.int64]:
        """``(arrays, 3)``: address, rows and columns of every array, in slot order."""
        return address_table(self.arrays)


def address_table(arrays: Sequence[npt.NDArray[np.generic]]) -> npt.NDArray[np.int64]:
    """The address table of ``arrays`` (1-d or 2-d, C-contiguous), shape ``(arrays, 3)``:
    data address, rows and columns (0 for a 1-d array) of each, in order."""
    table = np.zeros((len(arrays), 3), np.int64)
    for k, arr in enumerate(arrays):
        table[k, ADDRESS] = arr.__array_interface__["data"][0]
        table[k, ROWS] = arr.shape[0]
        table[k, COLS] = arr.shape[1] if arr.ndim == 2 else 0
    return table


#: Appends the program rows of one fusable op.
Emit = Callable[[_Program], None]


class _Compiled:
    """A built program, ready to run: ``run(start, stop)`` steps ticks ``start .. stop-1``
    in one compiled call (``k`` indexes the rows of fed and recorded blocks)."""

    def __init__(
        self, prog: _Program, count_readers: set[int], runner: Runner, rows: int | None
    ) -> None:
        """``count_readers``: ``id(_PopState)`` of the populations whose spike count an
        unfused op reads, so the counts stepped here are written back for it. ``runner``:
        the interpreter (:func:`spikestream.sim.native.runner`). ``rows``: the rows of the
        fed and recorded blocks (the most ticks one call may run), None without blocks."""
        self.program = np.array(prog.rows, np.int64).reshape(-1, PROGRAM_COLUMNS)
        self.table = prog.table()
        self.arrays = prog.arrays  # keeps every address in the table valid
        self.scalars = np.array(prog.scalars, prog.dtype).reshape(-1, 8)
        self.counts = np.zeros(len(prog.pops), np.int64)
        self._flags = np.zeros(0, np.bool_)
        self._indices = np.zeros(0, np.intp)
        self.runner = runner
        self.rows = rows
        native = extension() if runner == "c" else None
        self._native = None if native is None else native.run_program
        if native is None and np.isin(self.program[:, 0], list(PLAIN_OP)).any():
            raise SimulationError(
                "a program reading half-precision weights needs the C extension; numba "
                "runs the plain ops on the rounded matrices"
            )
        # The C call takes addresses and lengths, computed once: these arrays live as
        # long as this object and are never reallocated. The program is checked against
        # its table here, once, not at every call.
        self._native_args = program_args(self.program, self.table, self.scalars, self.counts)
        if native is not None:
            native.check_program(*self._native_args, 0, 1 if rows is None else rows)
        slot = prog.count
        # Populations stepped before the program: their spike counts are read in.
        self.inbound = [(slot(ps), ps) for ps in prog.pops if id(ps) not in prog.stepped]
        # Populations stepped here whose count an unfused op reads: written back (decided
        # here, not per tick).
        self.outbound = [
            (slot(ps), ps) for ps in prog.pops if id(ps) in prog.stepped and id(ps) in count_readers
        ]

    def run(self, start: int, stop: int) -> None:
        """Step ticks ``start .. stop-1`` (``stop`` at most :attr:`rows` with blocks)."""
        if self.rows is not None and stop > self.rows:
            raise SimulationError(
                f"ticks up to {stop}; the fed and recorded blocks hold {self.rows}"
            )
        counts = self.counts
        for k, ps in self.inbound:
            counts[k] = ps.count
        if self._native is not None:
            self._native(*self._native_args, start, stop)
        else:
            from spikestream.sim.jit import run_program  # numba: imported only when used

            run_program(
                self.program,
                self.table,
                self.scalars,
                counts,
                self._flags,
                self._indices,
                start,
                stop,
            )
        for k, ps in self.outbound:
            ps.count = int(counts[k])


class _Segment:
    """Consecutive fusable ops compiled into one program."""

    def __init__(
        self,
        emitters: list[Emit],
        dtype: np.dtype[np.floating],
        count_readers: set[int],
        runner: Runner,
        halves: Halves | None = None,
    ) -> None:
        """``halves``: float16 copies of matrices, read instead of them where ``runner``
        is the C extension (numba reads the rounded matrices themselves)."""
        self._emitters = emitters
        self._dtype = dtype
        self._halves = halves if runner == "c" else None
        self._count_readers = count_readers
        self.runner = runner
        self._tick = self.compile()

    def compile(
        self,
        feeds: Sequence[tuple[Array, Array]] = (),
        records: Sequence[tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]] = (),
    ) -> _Compiled:
        """The segment's ops as a program; with ``feeds`` and ``records``, one that also
        sets ``x = values[k]`` before tick ``k`` for each ``(x, values)`` and writes
        ``dest[k] = view`` after it for each ``(view, dest)``: whole blocks of ticks,
        fed and recorded inside one compiled call."""
        prog = _Program(self._dtype, self._halves)
        for x, values in feeds:
            prog.op(OP_FEED, prog.array(x), prog.array(values))
        for emit in self._emitters:
            emit(prog)
        for view, dest in records:
            code = OP_RECORD_BOOL if view.dtype == np.bool_ else OP_RECORD
            prog.op(code, prog.array(dest), prog.array(view))
        blocks = [values for _, values in feeds] + [dest for _, dest in records]
        rows = min((b.shape[0] for b in blocks), default=None)
        return _Compiled(prog, self._count_readers, self.runner, rows)

    def __call__(self) -> None:
        self._tick.run(0, 1)

    def native_args(self) -> tuple[int, ...] | None:
        """The C extension's first nine ``run_program`` arguments for one tick of this
        segment, or None when numba runs it. Valid only while no count crosses the
        segment's edge (a whole tick in one segment)."""
        t = self._tick
        if t._native is None or t.inbound or t.outbound:
            return None
        return t._native_args

    @property
    def arrays(self) -> list[npt.NDArray[np.generic]]:
        """Every array the segment's program references (each once)."""
        return list(self._tick.arrays)
