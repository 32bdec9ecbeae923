"""The simulator: steps a built :class:`~spikestream.build.Model` one tick at a time.

Order within a tick (the seed's):

1. read the inputs (``set_input`` before ``step``);
2. each population steps, in topological order: its current is
   ``J = bias + gain * (E @ x) + I_syn``;
3. its outgoing synapses filter this tick's spikes;
4. downstream populations see those filtered values in the same tick.

A connection that closes a cycle (or connects a population to itself) is read by its post
population before its pre population has stepped, so it delivers the previous tick's
value: a one-tick delay on back edges only. Nengo delays every filtered connection by one
tick; spikestream does not (see docs/MODEL.md), unless the network sets
``timing = "nengo"``: then every filtered connection updates at the end of the tick, after
all populations have stepped, so its post population reads the previous tick's value.

At construction the simulator allocates every array and compiles the tick into a list of
closures (``self._ops``), so ``step()`` is a loop of calls into in-place numpy kernels with
no allocation and no attribute lookups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spikestream.build import Connection, Model, Population
from spikestream.errors import SimulationError
from spikestream.sim.jit import (
    ADDRESS,
    COLS,
    OP_ADD,
    OP_COPY,
    OP_DECODED,
    OP_ENCODE,
    OP_EVENTS,
    OP_FEED,
    OP_FILTERED,
    OP_LIF,
    OP_LOWPASS_DECODED,
    OP_RECORD,
    OP_RECORD_BOOL,
    PROGRAM_COLUMNS,
    ROWS,
    accumulate_rows_jit,
    decode_lowpass_jit,
    decoded_step_jit,
    encode_rows_jit,
    lif_bias_current_step_jit,
    lif_constants,
    lif_step_jit,
    run_program,
    warm_up,
)
from spikestream.sim.kernels import (
    LIFParams,
    accumulate_rows,
    lif_step,
    lowpass_spikes,
    lowpass_step,
    spike_indices,
)

Array = npt.NDArray[np.floating]
Op = Callable[[], None]
Backend = Literal["numba", "numpy"]

#: Dense connections with at least this many post neurons propagate spikes event-driven
#: (adding the weight rows of the neurons that spiked); smaller ones use one BLAS call.
EVENT_DRIVEN_MIN_POST = 256


def decay(tau: float, dt: float) -> float:
    """Zero-order-hold lowpass coefficient ``a = exp(-dt/tau)``; 0 for ``tau == 0``."""
    return math.exp(-dt / tau) if tau > 0 else 0.0


@dataclass(eq=False)
class _PopState:
    pop: Population
    J: Array
    v: Array
    ref: Array
    spiked: npt.NDArray[np.bool_]
    s01: Array  # 1.0 where spiked this tick, else 0.0
    tmp: Array
    tmp2: Array
    idx: npt.NDArray[np.intp]
    idx2: npt.NDArray[np.intp]
    arange: npt.NDArray[np.intp]
    count: int = 0


@dataclass(eq=False)
class _ConnState:
    conn: Connection
    current: Array  # (post.n,): the post current this connection contributes
    filtered: Array  # dense: same array as current; decoded: (d_out,) decoded value
    decoders: Array | None  # decoded: (pre.n, d_out) in the simulator dtype (learned in place)
    learning_rate: float
    learning_enabled: bool
    pre_activity: Array | None  # PES: lowpass of pre spikes, (pre.n,)
    error_filtered: Array | None = None  # PES with an error synapse: the filtered error


class _Program:
    """A :func:`~spikestream.sim.jit.run_program` program being built: its rows, the
    address table of the arrays they touch, constants and spike-count slots.

    Every array is one of the simulator's own (C-contiguous, allocated at build time and
    never rebound: ``set_state`` and ``reset`` write into them), and the program keeps a
    reference to each, so the addresses in its table stay valid for its whole life.
    """

    def __init__(self, dtype: np.dtype[np.floating]) -> None:
        self.dtype = dtype
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
            if not arr.flags.c_contiguous or arr.ndim not in (1, 2):
                raise SimulationError(
                    f"a compiled program needs C-contiguous 1-d or 2-d arrays; got shape "
                    f"{arr.shape} (C-contiguous: {arr.flags.c_contiguous})"
                )
            if arr.dtype not in (self.dtype, np.dtype(np.bool_), np.dtype(np.intp)):
                raise SimulationError(
                    f"a compiled program needs {self.dtype}, bool or intp arrays; got {arr.dtype}"
                )
            self._slots[key] = len(self.arrays)
            self.arrays.append(arr)
        return self._slots[key]

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
        """Append one op (``OP_*``) with its operand columns."""
        self.rows.append([code, *operands] + [0] * (PROGRAM_COLUMNS - 1 - len(operands)))

    def table(self) -> npt.NDArray[np.int64]:
        """``(arrays, 3)``: address, rows and columns of every array, in slot order."""
        table = np.zeros((len(self.arrays), 3), np.int64)
        for k, arr in enumerate(self.arrays):
            table[k, ADDRESS] = arr.__array_interface__["data"][0]
            table[k, ROWS] = arr.shape[0]
            table[k, COLS] = arr.shape[1] if arr.ndim == 2 else 0
        return table


#: Appends the program rows of one fusable op.
Emit = Callable[[_Program], None]


class _Compiled:
    """A built program, ready to run: ``run(start, stop)`` steps ticks ``start .. stop-1``
    in one compiled call (``k`` indexes the rows of fed and recorded blocks)."""

    def __init__(self, prog: _Program, count_readers: set[int]) -> None:
        """``count_readers``: ``id(_PopState)`` of the populations whose spike count an
        unfused op reads, so the counts stepped here are written back for it."""
        self.program = np.array(prog.rows, np.int64).reshape(-1, PROGRAM_COLUMNS)
        self.table = prog.table()
        self.arrays = prog.arrays  # keeps every address in the table valid
        self.scalars = np.array(prog.scalars, prog.dtype).reshape(-1, 8)
        self.counts = np.zeros(len(prog.pops), np.int64)
        self._flags = np.zeros(0, np.bool_)
        self._indices = np.zeros(0, np.intp)
        slot = prog.count
        # Populations stepped before the program: their spike counts are read in.
        self.inbound = [(slot(ps), ps) for ps in prog.pops if id(ps) not in prog.stepped]
        # Populations stepped here whose count an unfused op reads: written back (decided
        # here, not per tick).
        self.outbound = [
            (slot(ps), ps) for ps in prog.pops if id(ps) in prog.stepped and id(ps) in count_readers
        ]

    def run(self, start: int, stop: int) -> None:
        """Step ticks ``start .. stop-1``."""
        counts = self.counts
        for k, ps in self.inbound:
            counts[k] = ps.count
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
    """Consecutive fusable ops compiled into one :func:`run_program` program."""

    def __init__(
        self, emitters: list[Emit], dtype: np.dtype[np.floating], count_readers: set[int]
    ) -> None:
        self._emitters = emitters
        self._dtype = dtype
        self._count_readers = count_readers
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
        prog = _Program(self._dtype)
        for x, values in feeds:
            prog.op(OP_FEED, prog.array(x), prog.array(values))
        for emit in self._emitters:
            emit(prog)
        for view, dest in records:
            code = OP_RECORD_BOOL if view.dtype == np.bool_ else OP_RECORD
            prog.op(code, prog.array(dest), prog.array(view))
        return _Compiled(prog, self._count_readers)

    def __call__(self) -> None:
        self._tick.run(0, 1)


class Simulator:
    """Steps a model in place. Not thread-safe: one thread drives it.

    Args:
        model: the built network.
        event_driven: force event-driven (True) or dense BLAS (False) spike propagation for
            every dense connection; default picks per connection by size.
        backend: ``"numba"`` (compiled kernels, the default) or ``"numpy"`` (the pure numpy
            reference kernels). They agree to rounding, spike for spike.
        fuse: with the numba backend, run each stretch of ops that have a compiled form
            (every population step, event-driven and factored connection, filtered and
            decoded probe: all but learning and forced-dense connections) as one
            compiled program (:func:`~spikestream.sim.jit.run_program`); a network made
            only of these runs whole blocks of ticks, fed and recorded, in one call
            (:meth:`run`). The same kernels run in the same order either way, so results
            are identical; ``False`` only exists to measure what fusing saves.
    """

    def __init__(
        self,
        model: Model,
        *,
        event_driven: bool | None = None,
        backend: Backend = "numba",
        fuse: bool = True,
    ) -> None:
        if backend not in ("numba", "numpy"):
            raise SimulationError(f"backend {backend!r} is not allowed; expected numba or numpy")
        self.backend = backend
        self.model = model
        self.dt = model.dt
        self.dtype = model.dtype
        self.tick = 0
        dtype = self.dtype
        self._pops: dict[str, _PopState] = {}
        for name, p in model.populations.items():
            n = p.n
            self._pops[name] = _PopState(
                pop=p,
                J=np.zeros(n, dtype),
                v=np.zeros(n, dtype)
                if p.initial_voltage is None
                else p.initial_voltage.astype(dtype),
                ref=np.zeros(n, dtype),
                spiked=np.zeros(n, np.bool_),
                s01=np.zeros(n, dtype),
                tmp=np.zeros(n, dtype),
                tmp2=np.zeros(n, dtype),
                idx=np.zeros(n, np.intp),
                idx2=np.zeros(n, np.intp),
                arange=np.arange(n, dtype=np.intp),
            )
        self.inputs: dict[str, Array] = {
            name: inp.default.astype(dtype) for name, inp in model.inputs.items()
        }
        self._conns = [self._conn_state(c) for c in model.connections]
        self._probe_values: dict[str, npt.NDArray[np.generic]] = {}
        self._probe_state: list[Array] = []
        self._ops: list[Op] = []
        # Ops that run_program can run, with what appends their rows (numba backend).
        self._fusable: dict[Op, Emit] = {}
        # Ops that read a population's ``count`` from Python (id(op) -> id(_PopState)).
        self._count_readers: dict[int, int] = {}
        self._compile(event_driven)
        if backend == "numba" and fuse:
            self._ops = self._fuse(self._ops)
        if backend == "numba":
            # Load only what the ops call: each kernel costs a few ms even from the cache.
            warm_up(self.dtype, kernels=not all(isinstance(op, _Segment) for op in self._ops))

    # ------------------------------------------------------------------ construction

    def _conn_state(self, c: Connection) -> _ConnState:
        post = self.model.populations[c.post]
        current = np.zeros(post.n, self.dtype)
        if c.from_input:
            return _ConnState(
                conn=c,
                current=current,
                filtered=np.zeros(self.model.inputs[c.pre].dim, self.dtype),
                decoders=None,
                learning_rate=0.0,
                learning_enabled=False,
                pre_activity=None,
            )
        if c.decoded:
            assert c.decoders is not None
            d_out = c.decoders.shape[1]
            pre_n = self.model.populations[c.pre].n
            return _ConnState(
                conn=c,
                current=current,
                filtered=np.zeros(d_out, self.dtype),
                decoders=np.array(c.decoders, dtype=self.dtype, order="C"),
                learning_rate=c.learning_rate,
                learning_enabled=c.learning_enabled,
                pre_activity=np.zeros(pre_n, self.dtype) if c.error_input else None,
                error_filtered=(
                    np.zeros(d_out, self.dtype) if c.error_input and c.error_synapse > 0 else None
                ),
            )
        return _ConnState(
            conn=c,
            current=current,
            filtered=current,
            decoders=None,
            learning_rate=0.0,
            learning_enabled=False,
            pre_activity=None,
        )

    def _compile(self, event_driven: bool | None) -> None:
        model = self.model
        incoming: dict[str, list[_ConnState]] = {p: [] for p in model.populations}
        outgoing: dict[str, list[_ConnState]] = {p: [] for p in model.populations}
        from_inputs: list[_ConnState] = []
        for cs in self._conns:
            incoming[cs.conn.post].append(cs)
            if cs.conn.from_input:
                from_inputs.append(cs)
            else:
                outgoing[cs.conn.pre].append(cs)
        # Nengo's timing: a filtered connection updates after every population has stepped
        # (Nengo's "update" phase), so its post population reads the previous tick's value.
        nengo = model.spec.network.timing == "nengo"
        tail: list[Op] = []
        for cs in from_inputs:
            in_op = self._input_connection_op(cs)
            (tail if nengo and cs.conn.synapse > 0 else self._ops).append(in_op)
        encoded: dict[str, list[tuple[Array, Array]]] = {p: [] for p in model.populations}
        for name, inp in model.inputs.items():
            if inp.target is not None:
                pop = model.populations[inp.target]
                ge = np.ascontiguousarray(pop.scaled_encoders, dtype=self.dtype)
                encoded[inp.target].append((ge, self.inputs[name]))
        probes_of: dict[str, list[Op]] = {p: [] for p in model.populations}
        for probe in model.probes.values():
            op = self._probe_op(probe.name)
            if op is not None:
                probes_of[probe.target].append(op)
        for name in model.order:
            ps = self._pops[name]
            self._ops.append(
                self._population_op(ps, encoded[name], [c.current for c in incoming[name]])
            )
            for cs in outgoing[name]:
                conn_op = self._connection_op(ps, cs, event_driven)
                (tail if nengo and cs.conn.synapse > 0 else self._ops).append(conn_op)
            self._ops.extend(probes_of[name])
        self._ops.extend(tail)

    def _fuse(self, ops: list[Op]) -> list[Op]:
        """Replace each run of fusable ops by one compiled segment.

        A segment writes back the spike count of each population it steps whose count an
        op outside it reads: an unfused op, or an op of another segment (under Nengo's
        timing a population's filtered connections run in a later segment than its step,
        past the Python ops of input connections).
        """
        groups: list[list[Op] | Op] = []
        run: list[Op] = []
        for op in ops:
            if op in self._fusable:
                run.append(op)
                continue
            if run:
                groups.append(run)
                run = []
            groups.append(op)
        if run:
            groups.append(run)
        out: list[Op] = []
        for group in groups:
            if not isinstance(group, list):
                out.append(group)
                continue
            inside = {id(op) for op in group}
            readers = {ps for op, ps in self._count_readers.items() if op not in inside}
            out.append(_Segment([self._fusable[op] for op in group], self.dtype, readers))
        return out

    def _population_op(
        self, ps: _PopState, encoded: list[tuple[Array, Array]], currents: list[Array]
    ) -> Op:
        J, v, ref, spiked, s01, tmp, tmp2 = ps.J, ps.v, ps.ref, ps.spiked, ps.s01, ps.tmp, ps.tmp2
        idx, idx2 = ps.idx, ps.idx2
        bias = ps.pop.bias.astype(self.dtype)
        pop = ps.pop
        params = LIFParams.make(self.dt, pop.tau_rc, pop.tau_ref, pop.min_voltage, self.dtype)
        jit = self.backend == "numba"
        consts = lif_constants(self.dt, pop.tau_rc, pop.tau_ref, pop.min_voltage, self.dtype)
        # Closures must not use ``x += y`` on captured arrays (it would rebind the name).
        dot, copyto, add = np.dot, np.copyto, np.add
        first = encoded[0] if encoded else None
        rest = encoded[1:]

        def emit(prog: _Program) -> None:
            # The same sums in the same order as ``step`` below.
            if first is not None:
                prog.op(OP_ENCODE, prog.array(J), prog.array(first[0]), prog.array(first[1]), 0)
                prog.op(OP_ADD, prog.array(J), prog.array(bias))
            else:
                prog.op(OP_COPY, prog.array(J), prog.array(bias))
            for ge, x in rest:
                prog.op(OP_ENCODE, prog.array(J), prog.array(ge), prog.array(x), 1)
            for cur in currents:
                prog.op(OP_ADD, prog.array(J), prog.array(cur))
            prog.stepped.add(id(ps))
            prog.op(
                OP_LIF,
                *(prog.array(a) for a in (J, v, ref, spiked, s01, idx, idx2)),
                prog.scalar(*consts),
                prog.count(ps),
            )

        if jit and not encoded and len(currents) == 1:
            current = currents[0]

            def step_chain() -> None:
                ps.count = lif_bias_current_step_jit(
                    bias, current, J, v, ref, spiked, s01, consts, idx, idx2
                )

            self._fusable[step_chain] = emit
            return step_chain

        def step() -> None:
            # J = bias + gain * (E @ x) + I_syn, with gain folded into the encoders.
            if first is not None:
                if jit:
                    encode_rows_jit(first[0], first[1], J, False)
                else:
                    dot(first[0], first[1], out=J)
                add(J, bias, out=J)
            else:
                copyto(J, bias)
            for ge, x in rest:
                if jit:
                    encode_rows_jit(ge, x, J, True)
                else:
                    dot(ge, x, out=tmp)
                    add(J, tmp, out=J)
            for cur in currents:
                add(J, cur, out=J)
            if jit:
                ps.count = lif_step_jit(J, v, ref, spiked, s01, consts, idx, idx2)
            else:
                ps.count = lif_step(J, v, ref, spiked, s01, tmp, tmp2, params)

        if jit:
            self._fusable[step] = emit
        return step

    def _connection_op(self, pre: _PopState, cs: _ConnState, event_driven: bool | None) -> Op:
        c = cs.conn
        dt = self.dt
        a = decay(c.synapse, dt)
        post = self.model.populations[c.post]
        if c.decoded:
            return self._decoded_op(pre, cs, a, post)
        assert c.weights is not None
        z = cs.current
        spiked, s01, idx, arange = pre.spiked, pre.s01, pre.idx, pre.arange
        if event_driven is not None:
            use_events = event_driven
        else:
            # Compiled row adds win at every size (no per-row interpreter cost); the numpy
            # backend's Python loop over rows only pays off for wide post populations.
            use_events = self.backend == "numba" or post.n >= EVENT_DRIVEN_MIN_POST
        if use_events:
            # z = a*z + (1-a) * W.T @ (spiked/dt): fold (1-a)/dt into the rows once.
            w_rows = np.ascontiguousarray(c.weights * ((1.0 - a) / dt), dtype=self.dtype)

            a_ev = np.array(a, self.dtype)
            if self.backend == "numba":
                spikers = pre.idx2  # written by lif_step_jit for this tick

                def step_events_jit() -> None:
                    np.multiply(z, a_ev, out=z)
                    if pre.count:
                        accumulate_rows_jit(w_rows, spikers, pre.count, z)

                def emit(prog: _Program) -> None:
                    prog.op(
                        OP_EVENTS,
                        prog.array(z),
                        prog.array(w_rows),
                        prog.array(spikers),
                        prog.count(pre),
                        prog.scalar(a),
                    )

                self._fusable[step_events_jit] = emit
                self._count_readers[id(step_events_jit)] = id(pre)
                return step_events_jit

            def step_events() -> None:
                np.multiply(z, a_ev, out=z)
                k = pre.count
                if k:
                    accumulate_rows(w_rows, spike_indices(spiked, k, arange, idx), z)

            self._count_readers[id(step_events)] = id(pre)
            return step_events
        # z = a*z + (1-a) * W.T @ (s01/dt): fold (1-a)/dt into the weights once.
        w = np.ascontiguousarray(c.weights * ((1.0 - a) / dt), dtype=self.dtype)
        u = np.zeros(post.n, self.dtype)
        a0 = np.array(a, self.dtype)
        dot, multiply, add = np.dot, np.multiply, np.add

        def step_dense() -> None:
            dot(s01, w, out=u)
            multiply(z, a0, out=z)
            add(z, u, out=z)

        return step_dense

    def _input_connection_op(self, cs: _ConnState) -> Op:
        """``y = lowpass(x)``, then the post current ``gain * E @ (T @ y)``."""
        c = cs.conn
        assert c.transform is not None
        post = self.model.populations[c.post]
        m = np.ascontiguousarray(post.scaled_encoders @ c.transform, dtype=self.dtype)
        x, y, current = self.inputs[c.pre], cs.filtered, cs.current
        a = decay(c.synapse, self.dt)
        tmp = np.zeros_like(y)
        dot = np.dot

        if self.backend == "numba":
            # The compiled encoding's sums (as a population's inputs), in or out of a
            # program, so fused and unfused runs agree bit for bit.
            def step_input_jit() -> None:
                lowpass_step(y, x, a, tmp)
                encode_rows_jit(m, y, current, False)

            def emit(prog: _Program) -> None:
                # lowpass_step's y *= a; y += (1-a)*x, element by element, rounded alike.
                prog.op(OP_FILTERED, prog.array(y), prog.array(x), prog.scalar(a, 1.0 - a))
                prog.op(OP_ENCODE, prog.array(current), prog.array(m), prog.array(y), 0)

            self._fusable[step_input_jit] = emit
            return step_input_jit

        def step_input() -> None:
            lowpass_step(y, x, a, tmp)
            dot(m, y, out=current)

        return step_input

    def _decoded_op(self, pre: _PopState, cs: _ConnState, a: float, post: Population) -> Op:
        c = cs.conn
        assert cs.decoders is not None
        assert c.transform is not None
        decoders, y, current, s01 = cs.decoders, cs.filtered, cs.current, pre.s01
        inv_dt = 1.0 / self.dt
        # Post current = gain * E @ (T @ y): fold gain, encoders and transform once.
        m = np.ascontiguousarray(post.scaled_encoders @ c.transform, dtype=self.dtype)
        u = np.zeros_like(y)
        tmp = np.zeros_like(y)
        dot = np.dot
        if cs.pre_activity is None and self.backend == "numba":
            # In the state dtype, as the numpy reference's lowpass computes (a float32
            # model filters in float32).
            scalar = self.dtype.type
            gain, a_s = scalar((1.0 - a) * inv_dt), scalar(a)
            spikers = pre.idx2  # written by lif_step_jit for this tick
            m_t = np.ascontiguousarray(m.T)
            acc = np.zeros_like(y)

            def step_jit() -> None:
                decoded_step_jit(spikers, pre.count, decoders, y, a_s, gain, m_t, current, acc)

            def emit(prog: _Program) -> None:
                prog.op(
                    OP_DECODED,
                    prog.array(spikers),
                    prog.count(pre),
                    prog.array(decoders),
                    prog.array(y),
                    prog.array(m_t),
                    prog.array(current),
                    prog.scalar(a_s, gain),
                    prog.array(acc),
                )

            self._fusable[step_jit] = emit
            self._count_readers[id(step_jit)] = id(pre)
            return step_jit
        if cs.pre_activity is None:
            # Decoders are learned in place below, so 1/dt is folded into the filter gain.
            def step() -> None:
                dot(s01, decoders, out=u)
                lowpass_step(y, u, a, tmp, inv_dt)
                dot(m, y, out=current)

            return step

        # PES (Nengo's rule): D -= (rate * dt / n) * outer(lowpass(pre spikes), error).
        assert c.error_input is not None
        error = self.inputs[c.error_input]
        if error.shape != y.shape:
            raise SimulationError(
                f"connection {c.name!r}: error input {c.error_input!r} has dim "
                f"{error.shape[0]}; expected the decoded dimension {y.shape[0]}"
            )
        activity = cs.pre_activity
        assert activity is not None
        a_pre = decay(0.005, self.dt)
        height = (1.0 - a_pre) / self.dt
        spiked = pre.spiked
        scaled_err = np.zeros_like(y)
        delta = np.zeros_like(decoders)
        n_pre = pre.pop.n
        outer = np.multiply.outer
        # An error synapse filters the error input; under Nengo's timing PES reads the filter
        # before this tick's update (Nengo's error connection filter is an "update" op).
        filtered = cs.error_filtered is not None
        err_f = cs.error_filtered if cs.error_filtered is not None else np.zeros_like(y)
        used = err_f if filtered else error
        a_err = decay(c.error_synapse, self.dt)
        err_tmp = np.zeros_like(y)
        lag = self.model.spec.network.timing == "nengo"
        early, late = filtered and not lag, filtered and lag

        def step_learning() -> None:
            dot(s01, decoders, out=u)
            lowpass_step(y, u, a, tmp, inv_dt)
            dot(m, y, out=current)
            lowpass_spikes(activity, spiked, a_pre, height)
            if early:
                lowpass_step(err_f, error, a_err, err_tmp)
            if cs.learning_enabled and cs.learning_rate:
                np.multiply(used, -cs.learning_rate * self.dt / n_pre, out=scaled_err)
                outer(activity, scaled_err, out=delta)
                np.add(decoders, delta, out=decoders)
            if late:
                lowpass_step(err_f, error, a_err, err_tmp)

        return step_learning

    def _probe_op(self, name: str) -> Op | None:
        probe = self.model.probes[name]
        if probe.kind == "input":
            self._probe_values[name] = self.inputs[probe.target]
            return None
        ps = self._pops[probe.target]
        if probe.kind == "spikes":
            self._probe_values[name] = ps.spiked
            return None
        if probe.kind == "voltage":
            self._probe_values[name] = ps.v
            return None
        a = decay(probe.synapse, self.dt)
        if probe.kind == "filtered":
            y = np.zeros(ps.pop.n, self.dtype)
            height = (1.0 - a) / self.dt
            spiked, s01 = ps.spiked, ps.s01

            def step_filtered() -> None:
                lowpass_spikes(y, spiked, a, height)

            if self.backend == "numba":

                def emit_filtered(prog: _Program) -> None:
                    prog.op(OP_FILTERED, prog.array(y), prog.array(s01), prog.scalar(a, height))

                self._fusable[step_filtered] = emit_filtered
            return self._filtered_probe(name, y, step_filtered)
        assert probe.kind == "decoded"
        assert probe.decoders is not None
        d = np.ascontiguousarray(probe.decoders, dtype=self.dtype)
        yd = np.zeros(d.shape[1], self.dtype)
        u = np.zeros_like(yd)
        tmp = np.zeros_like(yd)
        s01 = ps.s01
        inv_dt = 1.0 / self.dt
        if self.backend == "numba":
            # Event-driven, like a factored connection: the decoders of the neurons that
            # spiked (ps.idx2, written by the compiled LIF step), in the state dtype.
            scalar = self.dtype.type
            a_s, gain = scalar(a), scalar((1.0 - a) * inv_dt)
            spikers = ps.idx2

            def step_decoded_jit() -> None:
                decode_lowpass_jit(spikers, ps.count, d, yd, a_s, gain, u)

            def emit_decoded(prog: _Program) -> None:
                prog.op(
                    OP_LOWPASS_DECODED,
                    prog.array(spikers),
                    prog.count(ps),
                    prog.array(d),
                    prog.array(yd),
                    prog.array(u),
                    prog.scalar(a_s, gain),
                )

            self._fusable[step_decoded_jit] = emit_decoded
            self._count_readers[id(step_decoded_jit)] = id(ps)
            return self._filtered_probe(name, yd, step_decoded_jit)

        def step_decoded() -> None:
            np.dot(s01, d, out=u)
            lowpass_step(yd, u, a, tmp, inv_dt)

        return self._filtered_probe(name, yd, step_decoded)

    def _filtered_probe(self, name: str, y: Array, update: Op) -> Op:
        """Register probe ``name`` whose filter state ``y`` ``update`` advances each tick.

        Under Nengo's timing a filtered probe shows its filter before this tick's update
        (Nengo's filter is an "update" op, read by the probe before it runs), so the probe
        shows a copy taken before ``update``; an unfiltered one shows ``y`` itself.
        """
        self._probe_state.append(y)
        probe = self.model.probes[name]
        if not (self.model.spec.network.timing == "nengo" and probe.synapse > 0):
            self._probe_values[name] = y
            return update
        shown = np.zeros_like(y)
        self._probe_values[name] = shown
        self._probe_state.append(shown)
        copyto = np.copyto

        def step_lagged() -> None:
            copyto(shown, y)
            update()

        emit = self._fusable.get(update)
        if emit is not None:
            # The same copy, then the same update, inside the compiled program.
            def emit_lagged(prog: _Program) -> None:
                prog.op(OP_COPY, prog.array(shown), prog.array(y))
                emit(prog)

            self._fusable[step_lagged] = emit_lagged
        # ``update`` now runs only inside ``step_lagged``: the count reader is the wrapper.
        reads = self._count_readers.pop(id(update), None)
        if reads is not None:
            self._count_readers[id(step_lagged)] = reads
        return step_lagged

    # ------------------------------------------------------------------ stepping

    @property
    def compiled(self) -> bool:
        """True when the whole tick is one compiled program (no op runs in Python)."""
        return len(self._ops) == 1 and isinstance(self._ops[0], _Segment)

    @property
    def t(self) -> float:
        """Simulated time (s) at the end of the last tick: ``tick * dt``."""
        return self.tick * self.dt

    def set_input(self, name: str, x: npt.ArrayLike) -> None:
        """Set input ``name`` to ``x`` (shape ``(dim,)``, or a scalar when ``dim == 1``).

        The value is held until set again.
        """
        try:
            target = self.inputs[name]
        except KeyError:
            raise SimulationError(
                f"no input named {name!r}; expected one of: {', '.join(self.inputs) or '-'}"
            ) from None
        arr = np.asarray(x)
        if arr.shape not in (target.shape, ()) or (arr.shape == () and target.shape != (1,)):
            raise SimulationError(f"input {name!r} expects shape {target.shape}; got {arr.shape}")
        np.copyto(target, arr, casting="unsafe")

    def step(self) -> None:
        """Advance the network by one tick."""
        for op in self._ops:
            op()
        self.tick += 1

    def run(
        self,
        ticks: int,
        *,
        inputs: Mapping[str, npt.NDArray[np.floating]] | None = None,
        record: Mapping[str, npt.NDArray[np.generic]] | None = None,
        record_spikes: Mapping[str, npt.NDArray[np.bool_]] | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ) -> None:
        """Run ``ticks`` ticks as fast as possible.

        Args:
            ticks: number of ticks.
            inputs: per input name, values of shape ``(ticks, dim)``; row ``k`` is fed at
                tick ``k``.
            record: per probe name, a preallocated array of shape ``(ticks, ...)`` that
                receives the probe's value after each tick.
            record_spikes: per population name, a bool array ``(ticks, n)``.
            progress: called with the number of ticks done every ``progress_every`` ticks.
        """
        feeds = [(self.inputs[k], v) for k, v in (inputs or {}).items()]
        for name, values in (inputs or {}).items():
            if values.shape[0] < ticks or values.shape[1:] != self.inputs[name].shape:
                raise SimulationError(
                    f"input {name!r}: values of shape {values.shape}; expected "
                    f"({ticks}, {self.inputs[name].shape[0]})"
                )
        sinks = [(self.probe(k), v) for k, v in (record or {}).items()]
        sinks += [(self._pops[k].spiked, v) for k, v in (record_spikes or {}).items()]
        block = self._block_runner(ticks, feeds, sinks)
        if block is not None:
            # Every op is compiled: blocks of ticks, fed and recorded, in one call each.
            every = max(1, progress_every)
            for start in range(0, ticks, every):
                stop = min(ticks, start + every)
                block(start, stop)
                self.tick += stop - start
                if progress is not None and stop % every == 0:
                    progress(stop)
            return
        copyto = np.copyto
        for k in range(ticks):
            for x, values in feeds:
                copyto(x, values[k])
            self.step()
            for view, dest in sinks:
                copyto(dest[k], view)
            if progress is not None and (k + 1) % progress_every == 0:
                progress(k + 1)

    def _block_runner(
        self,
        ticks: int,
        feeds: list[tuple[Array, npt.NDArray[np.floating]]],
        sinks: list[tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]],
    ) -> Callable[[int, int], None] | None:
        """``run(start, stop)`` stepping, feeding and recording ticks ``start .. stop-1``
        in one compiled call, or None when some op runs in Python (the numpy backend,
        learning, forced-dense connections, ``fuse=False``) or a record array is not a
        C-contiguous array of the probe's own dtype."""
        if not self.compiled:
            return None
        segment = self._ops[0]
        assert isinstance(segment, _Segment)
        for view, dest in sinks:
            if (
                dest.dtype != view.dtype
                or not dest.flags.c_contiguous
                or dest.shape[0] < ticks
                or dest.shape[1:] != view.shape
            ):
                return None
        # Fed values in the state dtype (the conversion copyto would do per tick).
        fed = [(x, np.ascontiguousarray(v[:ticks], dtype=self.dtype)) for x, v in feeds]
        return segment.compile(fed, sinks).run

    # ------------------------------------------------------------------ reading

    def probe(self, name: str) -> npt.NDArray[np.generic]:
        """The current value of probe ``name`` (a live view: copy it to keep it)."""
        try:
            return self._probe_values[name]
        except KeyError:
            raise SimulationError(
                f"no probe named {name!r}; expected one of: {', '.join(self._probe_values)}"
            ) from None

    def spiked(self, population: str) -> npt.NDArray[np.bool_]:
        """This tick's spikes of ``population``, shape ``(n,)`` bool (a live view)."""
        return self._pops[population].spiked

    def voltage(self, population: str) -> Array:
        """Membrane voltages of ``population`` (a live view)."""
        return self._pops[population].v

    def set_learning(
        self, connection: str, *, rate: float | None = None, enabled: bool | None = None
    ) -> None:
        """Change a learning connection's PES rate or switch learning on or off."""
        for cs in self._conns:
            if cs.conn.name == connection and cs.pre_activity is not None:
                if rate is not None:
                    if not math.isfinite(rate) or rate < 0:
                        raise SimulationError(
                            f"learning rate must be a finite number >= 0; got {rate}"
                        )
                    cs.learning_rate = rate
                if enabled is not None:
                    cs.learning_enabled = enabled
                return
        learners = [cs.conn.name for cs in self._conns if cs.pre_activity is not None]
        raise SimulationError(
            f"no learning connection named {connection!r}; expected one of: "
            f"{', '.join(learners) or '(none)'}"
        )

    def learning_settings(self) -> dict[str, tuple[float, bool]]:
        """``{connection: (PES rate, enabled)}`` of every learning connection."""
        return {
            cs.conn.name: (float(cs.learning_rate), bool(cs.learning_enabled))
            for cs in self._conns
            if cs.pre_activity is not None
        }

    def learning_connections(self) -> list[str]:
        """Names of connections with a learning rule."""
        return [cs.conn.name for cs in self._conns if cs.pre_activity is not None]

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """A copy of the whole dynamic state: voltages, refractory times, synapse states,
        probe filters, inputs, learned decoders and the tick counter."""
        out: dict[str, npt.NDArray[np.generic]] = {"tick": np.array(self.tick, np.int64)}
        for name, ps in self._pops.items():
            out[f"pop.{name}.v"] = ps.v.copy()
            out[f"pop.{name}.ref"] = ps.ref.copy()
        for i, cs in enumerate(self._conns):
            out[f"conn.{i}.filtered"] = cs.filtered.copy()
            out[f"conn.{i}.current"] = cs.current.copy()
            if cs.decoders is not None:
                out[f"conn.{i}.decoders"] = cs.decoders.copy()
            if cs.pre_activity is not None:
                out[f"conn.{i}.pre_activity"] = cs.pre_activity.copy()
            if cs.error_filtered is not None:
                out[f"conn.{i}.error"] = cs.error_filtered.copy()
        for i, y in enumerate(self._probe_state):
            out[f"probe.{i}"] = y.copy()
        for name, x in self.inputs.items():
            out[f"input.{name}"] = x.copy()
        return out

    def _state_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        live: dict[str, npt.NDArray[np.generic]] = {}
        for name, ps in self._pops.items():
            live[f"pop.{name}.v"] = ps.v
            live[f"pop.{name}.ref"] = ps.ref
        for i, cs in enumerate(self._conns):
            live[f"conn.{i}.filtered"] = cs.filtered
            live[f"conn.{i}.current"] = cs.current
            if cs.decoders is not None:
                live[f"conn.{i}.decoders"] = cs.decoders
            if cs.pre_activity is not None:
                live[f"conn.{i}.pre_activity"] = cs.pre_activity
            if cs.error_filtered is not None:
                live[f"conn.{i}.error"] = cs.error_filtered
        for i, y in enumerate(self._probe_state):
            live[f"probe.{i}"] = y
        for name, x in self.inputs.items():
            live[f"input.{name}"] = x
        return live

    def state_layout(self) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """The shape and dtype of every array :meth:`state` returns, ``tick`` included.

        Fixed at construction: what a snapshot of this network must hold.
        """
        layout: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {
            "tick": ((), np.dtype(np.int64))
        }
        for key, arr in self._state_arrays().items():
            layout[key] = (arr.shape, arr.dtype)
        return layout

    def set_state(self, state: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Restore a state taken with :meth:`state` (from the same network file).

        Everything is checked before anything is copied, so a refused state leaves the
        simulator as it was.

        Raises:
            SimulationError: a key is missing, an array has the wrong shape or is not of
                real, finite floats, or ``tick`` is not an integer in ``[0, 2**53)``.
        """
        live = self._state_arrays()
        missing = sorted(set(live) - set(state))
        if missing or "tick" not in state:
            raise SimulationError(
                f"state does not match this network: missing {missing or ['tick']}"
            )
        tick = np.asarray(state["tick"])
        if tick.shape != () or tick.dtype.kind not in "iu" or not 0 <= int(tick) < 2**53:
            raise SimulationError(
                f"state 'tick' must be an integer scalar in [0, 2**53); got "
                f"{tick.dtype} of shape {tick.shape}"
                + (f" = {tick.item()!r}" if tick.size == 1 and tick.dtype.kind in "iuf" else "")
            )
        for key, arr in live.items():
            src = np.asarray(state[key])
            if src.shape != arr.shape:
                raise SimulationError(f"state {key!r} has shape {src.shape}; expected {arr.shape}")
            if src.dtype.kind != "f":
                raise SimulationError(f"state {key!r} has dtype {src.dtype}; expected real floats")
            if not np.isfinite(src).all():
                raise SimulationError(
                    f"state {key!r} holds NaN or infinite values; expected finite floats"
                )
            limit = float(np.finfo(arr.dtype.str).max)  # the state arrays are floats
            if float(np.abs(src).max(initial=0.0)) > limit:  # compared in float64
                raise SimulationError(
                    f"state {key!r} holds values beyond +-{limit:.4g}; expected values a "
                    f"{arr.dtype} network can hold"
                )
        for key, arr in live.items():
            np.copyto(arr, state[key], casting="unsafe")
        self.tick = int(tick)

    def reset(self) -> None:
        """Zero voltages, refractory times, synapses and filters, and restart at tick 0.

        Learned decoders go back to their built values and inputs to their defaults.
        """
        for arr in self._state_arrays().values():
            arr[...] = 0
        for cs in self._conns:
            if cs.decoders is not None:
                assert cs.conn.decoders is not None
                np.copyto(cs.decoders, cs.conn.decoders, casting="unsafe")
        for ps in self._pops.values():
            ps.spiked[...] = False
            ps.s01[...] = 0
            ps.count = 0
            if ps.pop.initial_voltage is not None:
                np.copyto(ps.v, ps.pop.initial_voltage, casting="unsafe")
        for name, inp in self.model.inputs.items():
            np.copyto(self.inputs[name], inp.default, casting="unsafe")
        self.tick = 0
