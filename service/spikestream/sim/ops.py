"""Compiling a model's tick: allocating the simulator's arrays and building its ops.

:class:`_TickBuilder` allocates every array of a model (:mod:`spikestream.sim.arrays`)
and compiles one tick into a list of closures, in the order the
:mod:`~spikestream.sim.simulator` docstring gives: each population's step, then its
outgoing connections and probes; under ``timing = "nengo"`` the filtered connections
after all populations. With the numba backend, each op that has a compiled form records
how to append its rows to a fused program (:mod:`spikestream.sim.program`), and
:meth:`_TickBuilder.fuse` replaces each stretch of such ops by one compiled segment.
The :class:`~spikestream.sim.simulator.Simulator` keeps the arrays and the ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spikestream.build import Connection, Model, Population
from spikestream.errors import SimulationError
from spikestream.sim.arrays import Array, _ConnState, _PopState, aligned, aligned_zeros
from spikestream.sim.kernels import (
    LIFParams,
    accumulate_rows,
    lif_step,
    lowpass_spikes,
    lowpass_step,
    spike_indices,
)
from spikestream.sim.native import Runner
from spikestream.sim.opcodes import (
    OP_ADD,
    OP_COPY,
    OP_DECODED,
    OP_DECODED_H,
    OP_ENCODE,
    OP_ENCODE_H,
    OP_EVENTS,
    OP_EVENTS_H,
    OP_FILTERED,
    OP_LIF,
    OP_LOWPASS_DECODED,
    OP_LOWPASS_DECODED_H,
    lif_constants,
)
from spikestream.sim.program import Emit, _Program, _Segment
from spikestream.sim.weights import Half, narrow

Op = Callable[[], None]
Backend = Literal["numba", "numpy"]


class _NumbaKernels:
    """The numba kernels of :mod:`spikestream.sim.jit`, imported at the first use.

    Only an op left out of every fused program calls a kernel from Python; a network made
    only of fusable ops never does, and its process never pays numba's start-up (about
    half a second) when the C extension runs its programs. After the first access each
    kernel is a plain attribute of this object.
    """

    def __getattr__(self, name: str) -> Any:
        from spikestream.sim import jit

        kernel = getattr(jit, name)
        setattr(self, name, kernel)
        return kernel


_jit = _NumbaKernels()

#: Dense connections with at least this many post neurons propagate spikes event-driven
#: (adding the weight rows of the neurons that spiked); smaller ones use one BLAS call.
EVENT_DRIVEN_MIN_POST = 256


def _emit_encode(prog: _Program, dst: Array, enc: Array, x: Array, add: int) -> None:
    """Append ``dst = enc @ x`` (``add`` 0) or ``dst += enc @ x`` (1), reading ``enc``'s
    half-precision copy where the program has one."""
    half = prog.half(enc)
    if half is None:
        prog.op(OP_ENCODE, prog.array(dst), prog.array(enc), prog.array(x), add)
    else:
        prog.op(OP_ENCODE_H, prog.array(dst), half[0], prog.array(x), add, prog.scalar(half[1]))


def decay(tau: float, dt: float) -> float:
    """Zero-order-hold lowpass coefficient ``a = exp(-dt/tau)``; 0 for ``tau == 0``."""
    return math.exp(-dt / tau) if tau > 0 else 0.0


class _TickBuilder:
    """Allocates the arrays of ``model`` and compiles its tick into ops over them.

    Construction only: the simulator takes ``pops``, ``inputs``, ``conns``, ``ops``,
    ``probe_values`` and ``probe_state`` once :meth:`compile` (and :meth:`fuse`) ran.
    """

    def __init__(self, model: Model, backend: Backend) -> None:
        self.backend = backend
        self.model = model
        self.dt = model.dt
        self.dtype = model.dtype
        dtype = self.dtype
        self.pops: dict[str, _PopState] = {}
        for name, p in model.populations.items():
            n = p.n
            # On cache lines, as the matrices (arrays.aligned): a population's arrays are
            # read whole every tick.
            self.pops[name] = _PopState(
                pop=p,
                J=aligned_zeros(n, dtype),
                v=aligned_zeros(n, dtype)
                if p.initial_voltage is None
                else aligned(p.initial_voltage, dtype),
                ref=aligned_zeros(n, dtype),
                spiked=aligned_zeros(n, np.bool_),
                s01=aligned_zeros(n, dtype),
                tmp=aligned_zeros(n, dtype),
                tmp2=aligned_zeros(n, dtype),
                idx=aligned_zeros(n, np.intp),
                idx2=aligned_zeros(n, np.intp),
                arange=np.arange(n, dtype=np.intp),
            )
        self.inputs: dict[str, Array] = {
            name: inp.default.astype(dtype) for name, inp in model.inputs.items()
        }
        self.conns = [self._conn_state(c) for c in model.connections]
        self.probe_values: dict[str, npt.NDArray[np.generic]] = {}
        self.probe_state: list[Array] = []
        self.ops: list[Op] = []
        # Ops that run_program can run, with what appends their rows (numba backend).
        self.fusable: dict[Op, Emit] = {}
        # Ops that read a population's ``count`` from Python (id(op) -> id(_PopState)).
        self.count_readers: dict[int, int] = {}
        # Half-precision weights: id(matrix) -> (the matrix, its float16 copy, scale), for
        # the C extension's programs (spikestream.sim.weights); the matrix is kept so that
        # its id stays its own.
        self.halves: dict[int, tuple[Array, Half, float]] = {}
        # id(_ConnState) of the connections whose decoders the tick reads as rounded
        # copies: a state may not change them (Simulator.set_state).
        self.fixed_decoders: set[int] = set()

    def _weights(self, values: npt.ArrayLike) -> Array:
        """A matrix the tick reads, C-contiguous in the state dtype. With half-precision
        weights (``model.weights_dtype``) its values are rounded to what a scaled float16
        copy holds, and the copy is kept in :attr:`halves` for the compiled programs."""
        if self.model.weights_dtype is None:
            return aligned(values, self.dtype)
        rounded, half, scale = narrow(values, self.dtype)
        rounded, half = aligned(rounded, self.dtype), aligned(half, np.float16)
        self.halves[id(rounded)] = (rounded, half, scale)
        return rounded

    def _conn_state(self, c: Connection) -> _ConnState:
        post = self.model.populations[c.post]
        current = aligned_zeros(post.n, self.dtype)
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
                decoders=aligned(c.decoders, self.dtype),
                learning_rate=c.learning_rate,
                learning_enabled=c.learning_enabled,
                pre_activity=aligned_zeros(pre_n, self.dtype) if c.error_input else None,
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

    def compile(self, event_driven: bool | None) -> None:
        """Append the tick's ops to ``ops``, in order."""
        model = self.model
        incoming: dict[str, list[_ConnState]] = {p: [] for p in model.populations}
        outgoing: dict[str, list[_ConnState]] = {p: [] for p in model.populations}
        from_inputs: list[_ConnState] = []
        for cs in self.conns:
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
            (tail if nengo and cs.conn.synapse > 0 else self.ops).append(in_op)
        encoded: dict[str, list[tuple[Array, Array]]] = {p: [] for p in model.populations}
        for name, inp in model.inputs.items():
            if inp.target is not None:
                pop = model.populations[inp.target]
                ge = self._weights(pop.scaled_encoders)
                encoded[inp.target].append((ge, self.inputs[name]))
        probes_of: dict[str, list[Op]] = {p: [] for p in model.populations}
        for probe in model.probes.values():
            op = self._probe_op(probe.name)
            if op is not None:
                probes_of[probe.target].append(op)
        for name in model.order:
            ps = self.pops[name]
            self.ops.append(
                self._population_op(ps, encoded[name], [c.current for c in incoming[name]])
            )
            for cs in outgoing[name]:
                conn_op = self._connection_op(ps, cs, event_driven)
                (tail if nengo and cs.conn.synapse > 0 else self.ops).append(conn_op)
            self.ops.extend(probes_of[name])
        self.ops.extend(tail)

    def fuse(self, ops: list[Op], runner: Runner) -> list[Op]:
        """Replace each run of fusable ops by one compiled segment, run by ``runner``.

        A segment writes back the spike count of each population it steps whose count an
        op outside it reads: an unfused op, or an op of another segment (under Nengo's
        timing a population's filtered connections run in a later segment than its step,
        past the Python ops of input connections).
        """
        groups: list[list[Op] | Op] = []
        run: list[Op] = []
        for op in ops:
            if op in self.fusable:
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
            readers = {ps for op, ps in self.count_readers.items() if op not in inside}
            out.append(
                _Segment(
                    [self.fusable[op] for op in group], self.dtype, readers, runner, self.halves
                )
            )
        return out

    def _population_op(
        self, ps: _PopState, encoded: list[tuple[Array, Array]], currents: list[Array]
    ) -> Op:
        J, v, ref, spiked, s01, tmp, tmp2 = ps.J, ps.v, ps.ref, ps.spiked, ps.s01, ps.tmp, ps.tmp2
        idx, idx2 = ps.idx, ps.idx2
        bias = aligned(ps.pop.bias, self.dtype)
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
                _emit_encode(prog, J, first[0], first[1], 0)
                prog.op(OP_ADD, prog.array(J), prog.array(bias))
            else:
                prog.op(OP_COPY, prog.array(J), prog.array(bias))
            for ge, x in rest:
                _emit_encode(prog, J, ge, x, 1)
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
                ps.count = _jit.lif_bias_current_step_jit(
                    bias, current, J, v, ref, spiked, s01, consts, idx, idx2
                )

            self.fusable[step_chain] = emit
            return step_chain

        def step() -> None:
            # J = bias + gain * (E @ x) + I_syn, with gain folded into the encoders.
            if first is not None:
                if jit:
                    _jit.encode_rows_jit(first[0], first[1], J, False)
                else:
                    dot(first[0], first[1], out=J)
                add(J, bias, out=J)
            else:
                copyto(J, bias)
            for ge, x in rest:
                if jit:
                    _jit.encode_rows_jit(ge, x, J, True)
                else:
                    dot(ge, x, out=tmp)
                    add(J, tmp, out=J)
            for cur in currents:
                add(J, cur, out=J)
            if jit:
                ps.count = _jit.lif_step_jit(J, v, ref, spiked, s01, consts, idx, idx2)
            else:
                ps.count = lif_step(J, v, ref, spiked, s01, tmp, tmp2, params)

        if jit:
            self.fusable[step] = emit
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
            w_rows = self._weights(c.weights * ((1.0 - a) / dt))

            a_ev = np.array(a, self.dtype)
            if self.backend == "numba":
                spikers = pre.idx2  # written by lif_step_jit for this tick

                def step_events_jit() -> None:
                    np.multiply(z, a_ev, out=z)
                    if pre.count:
                        _jit.accumulate_rows_jit(w_rows, spikers, pre.count, z)

                def emit(prog: _Program) -> None:
                    half = prog.half(w_rows)
                    prog.op(
                        OP_EVENTS if half is None else OP_EVENTS_H,
                        prog.array(z),
                        prog.array(w_rows) if half is None else half[0],
                        prog.array(spikers),
                        prog.count(pre),
                        prog.scalar(a) if half is None else prog.scalar(a, 0.0, half[1]),
                    )

                self.fusable[step_events_jit] = emit
                self.count_readers[id(step_events_jit)] = id(pre)
                return step_events_jit

            def step_events() -> None:
                np.multiply(z, a_ev, out=z)
                k = pre.count
                if k:
                    accumulate_rows(w_rows, spike_indices(spiked, k, arange, idx), z)

            self.count_readers[id(step_events)] = id(pre)
            return step_events
        # z = a*z + (1-a) * W.T @ (s01/dt): fold (1-a)/dt into the weights once.
        w = self._weights(c.weights * ((1.0 - a) / dt))
        u = aligned_zeros(post.n, self.dtype)
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
        m = self._weights(post.scaled_encoders @ c.transform)
        x, y, current = self.inputs[c.pre], cs.filtered, cs.current
        a = decay(c.synapse, self.dt)
        tmp = np.zeros_like(y)
        dot = np.dot

        if self.backend == "numba":
            # The compiled encoding's sums (as a population's inputs), in or out of a
            # program, so fused and unfused runs agree bit for bit.
            def step_input_jit() -> None:
                lowpass_step(y, x, a, tmp)
                _jit.encode_rows_jit(m, y, current, False)

            def emit(prog: _Program) -> None:
                # lowpass_step's y *= a; y += (1-a)*x, element by element, rounded alike.
                prog.op(OP_FILTERED, prog.array(y), prog.array(x), prog.scalar(a, 1.0 - a))
                _emit_encode(prog, current, m, y, 0)

            self.fusable[step_input_jit] = emit
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
        folded = post.scaled_encoders @ c.transform
        if cs.pre_activity is None and self.model.weights_dtype is not None:
            # Decoders that never learn are read as the tick's other matrices are: rounded
            # (cs.decoders stays the state that snapshots save, and may not change).
            assert c.decoders is not None  # a decoded connection's, as cs.decoders
            decoders = self._weights(c.decoders)  # rounded once, from the built float64
            self.fixed_decoders.add(id(cs))
        u = np.zeros_like(y)
        tmp = np.zeros_like(y)
        dot = np.dot
        if cs.pre_activity is None and self.backend == "numba":
            # In the state dtype, as the numpy reference's lowpass computes (a float32
            # model filters in float32).
            scalar = self.dtype.type
            gain, a_s = scalar((1.0 - a) * inv_dt), scalar(a)
            spikers = pre.idx2  # written by lif_step_jit for this tick
            m_t = self._weights(folded.T)
            acc = np.zeros_like(y)

            def step_jit() -> None:
                _jit.decoded_step_jit(spikers, pre.count, decoders, y, a_s, gain, m_t, current, acc)

            def emit(prog: _Program) -> None:
                half_d, half_m = prog.half(decoders), prog.half(m_t)
                if half_d is None or half_m is None:
                    code, d_slot, m_slot = OP_DECODED, prog.array(decoders), prog.array(m_t)
                    constants = prog.scalar(a_s, gain)
                else:
                    code, d_slot, m_slot = OP_DECODED_H, half_d[0], half_m[0]
                    constants = prog.scalar(a_s, gain, half_d[1], half_m[1])
                prog.op(
                    code,
                    prog.array(spikers),
                    prog.count(pre),
                    d_slot,
                    prog.array(y),
                    m_slot,
                    prog.array(current),
                    constants,
                    prog.array(acc),
                )

            self.fusable[step_jit] = emit
            self.count_readers[id(step_jit)] = id(pre)
            return step_jit
        m = self._weights(folded)  # (n_post, d), for numpy's dot
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
        delta = aligned_zeros(decoders.shape, decoders.dtype)
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
            self.probe_values[name] = self.inputs[probe.target]
            return None
        ps = self.pops[probe.target]
        if probe.kind == "spikes":
            self.probe_values[name] = ps.spiked
            return None
        if probe.kind == "voltage":
            self.probe_values[name] = ps.v
            return None
        a = decay(probe.synapse, self.dt)
        if probe.kind == "filtered":
            y = aligned_zeros(ps.pop.n, self.dtype)
            height = (1.0 - a) / self.dt
            spiked, s01 = ps.spiked, ps.s01

            def step_filtered() -> None:
                lowpass_spikes(y, spiked, a, height)

            if self.backend == "numba":

                def emit_filtered(prog: _Program) -> None:
                    prog.op(OP_FILTERED, prog.array(y), prog.array(s01), prog.scalar(a, height))

                self.fusable[step_filtered] = emit_filtered
            return self._filtered_probe(name, y, step_filtered)
        assert probe.kind == "decoded"
        assert probe.decoders is not None
        d = self._weights(probe.decoders)
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
                _jit.decode_lowpass_jit(spikers, ps.count, d, yd, a_s, gain, u)

            def emit_decoded(prog: _Program) -> None:
                half = prog.half(d)
                prog.op(
                    OP_LOWPASS_DECODED if half is None else OP_LOWPASS_DECODED_H,
                    prog.array(spikers),
                    prog.count(ps),
                    prog.array(d) if half is None else half[0],
                    prog.array(yd),
                    prog.array(u),
                    prog.scalar(a_s, gain) if half is None else prog.scalar(a_s, gain, half[1]),
                )

            self.fusable[step_decoded_jit] = emit_decoded
            self.count_readers[id(step_decoded_jit)] = id(ps)
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
        self.probe_state.append(y)
        probe = self.model.probes[name]
        if not (self.model.spec.network.timing == "nengo" and probe.synapse > 0):
            self.probe_values[name] = y
            return update
        shown = np.zeros_like(y)
        self.probe_values[name] = shown
        self.probe_state.append(shown)
        copyto = np.copyto

        def step_lagged() -> None:
            copyto(shown, y)
            update()

        emit = self.fusable.get(update)
        if emit is not None:
            # The same copy, then the same update, inside the compiled program.
            def emit_lagged(prog: _Program) -> None:
                prog.op(OP_COPY, prog.array(shown), prog.array(y))
                emit(prog)

            self.fusable[step_lagged] = emit_lagged
        # ``update`` now runs only inside ``step_lagged``: the count reader is the wrapper.
        reads = self.count_readers.pop(id(update), None)
        if reads is not None:
            self.count_readers[id(step_lagged)] = reads
        return step_lagged
