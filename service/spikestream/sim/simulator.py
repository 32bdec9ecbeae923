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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spikestream.build import Connection, Model, Population
from spikestream.errors import SimulationError
from spikestream.sim.jit import (
    OP_DECODED,
    OP_LIF,
    PROGRAM_COLUMNS,
    accumulate_rows_jit,
    decoded_step_jit,
    lif_bias_current_step_jit,
    lif_constants,
    lif_step_jit,
    segment_jit,
    typed_lists,
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


@dataclass(eq=False)
class _LifUnit:
    """A population step ``segment_jit`` can run: ``J = bias + current``, then LIF."""

    ps: _PopState
    bias: Array
    current: Array
    consts: Array


@dataclass(eq=False)
class _DecodedUnit:
    """A factored (decoded, non-learning) connection ``segment_jit`` can run."""

    pre: _PopState
    decoders: Array
    y: Array
    encoders_t: Array
    current: Array
    a: np.floating[Any]
    gain: np.floating[Any]
    acc: Array


class _Segment:
    """Consecutive fusable ops compiled into one :func:`segment_jit` program."""

    def __init__(
        self,
        units: list[_LifUnit | _DecodedUnit],
        dtype: np.dtype[np.floating],
        fanout: Mapping[int, int],
    ) -> None:
        """``fanout``: ``id(_PopState)`` -> number of outgoing connections, to tell which
        spike counts ops outside this segment read."""
        self.vec, self.flags, self.index, self.mat = typed_lists(dtype)
        slots: dict[int, int] = {}  # id(_PopState) -> slot in counts
        pops: list[_PopState] = []

        def slot(ps: _PopState) -> int:
            if id(ps) not in slots:
                slots[id(ps)] = len(pops)
                pops.append(ps)
            return slots[id(ps)]

        def put(lst: list[Any], arr: Any) -> int:
            lst.append(arr)
            return len(lst) - 1

        rows: list[list[int]] = []
        consts: list[Array] = []
        params: list[tuple[np.floating[Any], np.floating[Any]]] = []
        stepped: set[int] = set()
        fused_out: dict[int, int] = {}  # id(_PopState) -> its connections fused here
        for u in units:
            if isinstance(u, _LifUnit):
                ps = u.ps
                stepped.add(id(ps))
                rows.append(
                    [
                        OP_LIF,
                        put(self.vec, u.bias),
                        put(self.vec, u.current),
                        put(self.vec, ps.J),
                        put(self.vec, ps.v),
                        put(self.vec, ps.ref),
                        put(self.vec, ps.s01),
                        put(self.flags, ps.spiked),
                        put(self.index, ps.idx),
                        put(self.index, ps.idx2),
                        slot(ps),
                        len(consts),
                    ]
                )
                consts.append(u.consts)
            else:
                fused_out[id(u.pre)] = fused_out.get(id(u.pre), 0) + 1
                row = [
                    OP_DECODED,
                    put(self.index, u.pre.idx2),
                    slot(u.pre),
                    put(self.mat, u.decoders),
                    put(self.vec, u.y),
                    put(self.mat, u.encoders_t),
                    put(self.vec, u.current),
                    len(params),
                    put(self.vec, u.acc),
                ]
                rows.append(row + [0] * (PROGRAM_COLUMNS - len(row)))
                params.append((u.a, u.gain))
        self.program = np.array(rows, np.int64).reshape(-1, PROGRAM_COLUMNS)
        self.consts = np.array(consts, dtype).reshape(-1, 8)
        self.params = np.array(params, dtype).reshape(-1, 2)
        self.counts = np.zeros(len(pops), np.int64)
        # Populations stepped before the segment: their spike counts are read in.
        self.inbound = [(slots[id(ps)], ps) for ps in pops if id(ps) not in stepped]
        # Populations stepped here with a connection outside it: their counts are
        # written back for those ops (decided here, not per tick).
        self.outbound = [
            (slots[id(ps)], ps)
            for ps in pops
            if id(ps) in stepped and fanout.get(id(ps), 0) > fused_out.get(id(ps), 0)
        ]

    def __call__(self) -> None:
        counts = self.counts
        for k, ps in self.inbound:
            counts[k] = ps.count
        segment_jit(
            self.program,
            counts,
            self.consts,
            self.params,
            self.vec,
            self.flags,
            self.index,
            self.mat,
        )
        for k, ps in self.outbound:
            ps.count = int(counts[k])


class Simulator:
    """Steps a model in place. Not thread-safe: one thread drives it.

    Args:
        model: the built network.
        event_driven: force event-driven (True) or dense BLAS (False) spike propagation for
            every dense connection; default picks per connection by size.
        backend: ``"numba"`` (compiled kernels, the default) or ``"numpy"`` (the pure numpy
            reference kernels). They agree to rounding, spike for spike.
        fuse: with the numba backend, run each stretch of chain-like population steps
            and factored connections as one compiled call (:func:`segment_jit`). The
            same kernels run in the same order either way, so results are identical;
            ``False`` only exists to measure what fusing saves.
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
        # Ops that segment_jit can run, with what it needs to run them (numba backend).
        self._fusable: dict[Op, _LifUnit | _DecodedUnit] = {}
        self._compile(event_driven)
        if backend == "numba" and fuse:
            self._ops = self._fuse(self._ops)
        if backend == "numba":
            warm_up(self.dtype)

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
                decoders=c.decoders.astype(self.dtype),
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
        """Replace each run of two or more fusable ops by one compiled segment."""
        out: list[Op] = []
        run: list[Op] = []
        fanout: dict[int, int] = {}
        for cs in self._conns:
            if cs.conn.from_input:
                continue
            pre = id(self._pops[cs.conn.pre])
            fanout[pre] = fanout.get(pre, 0) + 1

        def close() -> None:
            if len(run) >= 2:
                out.append(_Segment([self._fusable[op] for op in run], self.dtype, fanout))
            else:
                out.extend(run)
            run.clear()

        for op in ops:
            if op in self._fusable:
                run.append(op)
            else:
                close()
                out.append(op)
        close()
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
        if jit and not encoded and len(currents) == 1:
            current = currents[0]

            def step_chain() -> None:
                ps.count = lif_bias_current_step_jit(
                    bias, current, J, v, ref, spiked, s01, consts, idx, idx2
                )

            self._fusable[step_chain] = _LifUnit(ps, bias, current, consts)
            return step_chain

        def step() -> None:
            # J = bias + gain * (E @ x) + I_syn, with gain folded into the encoders.
            if first is not None:
                dot(first[0], first[1], out=J)
                add(J, bias, out=J)
            else:
                copyto(J, bias)
            for ge, x in rest:
                dot(ge, x, out=tmp)
                add(J, tmp, out=J)
            for cur in currents:
                add(J, cur, out=J)
            if jit:
                ps.count = lif_step_jit(J, v, ref, spiked, s01, consts, idx, idx2)
            else:
                ps.count = lif_step(J, v, ref, spiked, s01, tmp, tmp2, params)

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

                return step_events_jit

            def step_events() -> None:
                np.multiply(z, a_ev, out=z)
                k = pre.count
                if k:
                    accumulate_rows(w_rows, spike_indices(spiked, k, arange, idx), z)

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

            self._fusable[step_jit] = _DecodedUnit(pre, decoders, y, m_t, current, a_s, gain, acc)
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
            spiked = ps.spiked

            def step_filtered() -> None:
                lowpass_spikes(y, spiked, a, height)

            return self._filtered_probe(name, y, step_filtered)
        assert probe.kind == "decoded"
        assert probe.decoders is not None
        d = probe.decoders.astype(self.dtype)
        yd = np.zeros(d.shape[1], self.dtype)
        u = np.zeros_like(yd)
        tmp = np.zeros_like(yd)
        s01 = ps.s01
        inv_dt = 1.0 / self.dt

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

        return step_lagged

    # ------------------------------------------------------------------ stepping

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
        copyto = np.copyto
        for k in range(ticks):
            for x, values in feeds:
                copyto(x, values[k])
            self.step()
            for view, dest in sinks:
                copyto(dest[k], view)
            if progress is not None and (k + 1) % progress_every == 0:
                progress(k + 1)

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
