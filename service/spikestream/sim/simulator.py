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
closures (``self._ops``, built by :mod:`spikestream.sim.ops`; stretches of compiled ops
fused into programs of :mod:`spikestream.sim.program`), so ``step()`` is a loop of calls
into in-place kernels with no allocation and no attribute lookups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import Model
from spikestream.errors import SimulationError
from spikestream.sim.arrays import Array
from spikestream.sim.native import runner
from spikestream.sim.ops import Backend, _TickBuilder
from spikestream.sim.program import _Segment
from spikestream.sim.stages import TwoStages
from spikestream.sim.stages import plan as plan_stages
from spikestream.spec import VALUE_LIMIT


def state_limit(dtype: npt.DTypeLike) -> float:
    """The largest magnitude a restored state value may have in a network of ``dtype``:
    2**-64 of the type's largest finite number (about 9.7e288 in float64, 1.8e19 in
    float32). A tick multiplies state by rates up to 1/dt, sums over neurons and scales
    by gains, so a finite value near the type's maximum overflows to inf within a tick,
    and then NaN stays in the neurons' state (measured: a filtered value or a decoder at
    1e-3 of the maximum did; at 1e-10 none did in 100 ticks)."""
    return float(np.finfo(np.dtype(dtype)).max) * 2.0**-64


@dataclass(frozen=True)
class Footprint:
    """What one tick's compiled program references, in bytes.

    Attributes:
        matrix_bytes: 2-D arrays: folded encoders, decoders, weights (read every tick,
            decoders only in the rows of neurons that spiked when event-driven).
        vector_bytes: 1-D arrays: per-neuron state (voltage, refractory time, current,
            spikes) and filtered values.
    """

    matrix_bytes: int
    vector_bytes: int

    @property
    def total(self) -> int:
        """Both, in bytes."""
        return self.matrix_bytes + self.vector_bytes


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
            compiled program (run by the C extension, or numba where it was not built:
            :mod:`~spikestream.sim.native`); a network made
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
        for name, pop in model.populations.items():
            # The spec caps start voltages at 1; a model built another way is held to it
            # too: above the threshold a neuron can have no spike time (NaN for good).
            v0 = pop.initial_voltage
            if v0 is not None and not bool(np.all(v0 <= 1)):
                raise SimulationError(
                    f"population {name!r}: start voltages must be <= 1, the threshold; "
                    f"got {float(np.nanmax(v0))!r}"
                )
        self.backend = backend
        self.model = model
        self.dt = model.dt
        self.dtype = model.dtype
        self.tick = 0
        built = _TickBuilder(model, backend)
        built.compile(event_driven)
        #: The interpreter of fused programs (``"c"`` or ``"numba"``; see
        #: :mod:`spikestream.sim.native`).
        self.runner = runner() if backend == "numba" else None
        if backend == "numba" and fuse:
            assert self.runner is not None
            built.ops = built.fuse(built.ops, self.runner)
        self._pops = built.pops
        self.inputs = built.inputs
        self._conns = built.conns
        self._probe_values = built.probe_values
        self._probe_state = built.probe_state
        self._ops = built.ops
        # Decoders the tick reads as rounded copies (half-precision weights, no learning):
        # a state may carry them, but not change them.
        self._fixed_decoders = {
            f"conn.{i}.decoders"
            for i, cs in enumerate(self._conns)
            if id(cs) in built.fixed_decoders
        }
        if backend == "numba":
            # Load only what the ops call: each numba kernel costs a few ms even from the
            # cache, and numba itself half a second, which a tick made only of programs
            # run by the C extension never pays.
            unfused = not all(isinstance(op, _Segment) for op in self._ops)
            if unfused or self.runner == "numba":
                from spikestream.sim.jit import warm_up

                warm_up(self.dtype, kernels=unfused, program=self.runner == "numba")

    # ------------------------------------------------------------------ stepping

    @property
    def compiled(self) -> bool:
        """True when the whole tick is one compiled program (no op runs in Python)."""
        return len(self._ops) == 1 and isinstance(self._ops[0], _Segment)

    def native_program(self) -> tuple[int, ...] | None:
        """When the whole tick is one program run by the C extension: the extension's
        program arguments (addresses and sizes), for a caller that runs the tick itself
        (:mod:`spikestream.runtime.native_tick`) and then adds 1 to :attr:`tick`.
        Otherwise None."""
        if not self.compiled:
            return None
        op = self._ops[0]
        assert isinstance(op, _Segment)
        return op.native_args()

    def two_stages(self, written_before: Sequence[npt.NDArray[np.generic]]) -> TwoStages | None:
        """The tick's program cut in two stages for two threads
        (:func:`spikestream.sim.stages.plan`), or None when :meth:`native_program` is None
        or no cut is even enough and safe. ``written_before``: arrays the caller writes
        before each tick (the inputs' arrays)."""
        if self.native_program() is None:
            return None
        op = self._ops[0]
        assert isinstance(op, _Segment)
        return plan_stages(op._tick, written_before)

    def footprint(self) -> Footprint:
        """The bytes of the arrays one tick's compiled program references: what a tick
        reads at most from memory (matrices and per-neuron state), for the memory-traffic
        benchmark. Only compiled ops are counted (the numba backend's fused tick)."""
        matrices = vectors = 0
        for op in self._ops:
            if isinstance(op, _Segment):
                for arr in op.arrays:
                    if arr.ndim == 2:
                        matrices += arr.nbytes
                    else:
                        vectors += arr.nbytes
        return Footprint(matrix_bytes=matrices, vector_bytes=vectors)

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
        names = [*(record or {}), *(record_spikes or {})]
        for name, (view, dest) in zip(names, sinks, strict=True):
            # Checked before any tick, so a refusal leaves the simulator where it was.
            if not dest.flags.writeable or dest.shape[0] < ticks or dest.shape[1:] != view.shape:
                raise SimulationError(
                    f"record {name!r}: a {'writable' if dest.flags.writeable else 'read-only'} "
                    f"array of shape {dest.shape}; expected a writable array of shape "
                    f"({ticks}, {', '.join(map(str, view.shape))})"
                )
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
        learning, forced-dense connections, ``fuse=False``) or a record array is not an
        aligned, C-contiguous array of the probe's own dtype. ``run`` has refused record
        arrays that are read-only (the compiled program stores through their address: one
        backed by ``bytes`` was changed, one backed by a read-only mapping crashed the
        process) or of the wrong shape."""
        if not self.compiled:
            return None
        segment = self._ops[0]
        assert isinstance(segment, _Segment)
        for view, dest in sinks:
            if dest.dtype != view.dtype or not dest.flags.c_contiguous or not dest.flags.aligned:
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
            if key in self._fixed_decoders and not np.array_equal(
                np.asarray(src, dtype=arr.dtype), arr
            ):
                raise SimulationError(
                    f"state {key!r} differs from this network's decoders, which do not learn "
                    'and are read in half precision (network.weights_dtype = "float16"); '
                    "expected the built values"
                )
            limit = state_limit(arr.dtype)  # the state arrays are floats
            if float(np.abs(src).max(initial=0.0)) > limit:  # compared in float64
                raise SimulationError(
                    f"state {key!r} holds values beyond +-{limit:.4g}; expected values a "
                    f"{arr.dtype} network can hold through a tick"
                )
        for key, (low, high, what) in self._physical_bounds().items():
            src = np.asarray(state[key], dtype=np.float64)
            if bad := int(np.count_nonzero((src < low) | (src > high))):
                raise SimulationError(
                    f"state {key!r} holds {bad} value(s) outside [{low:.6g}, {high:.6g}] "
                    f"({what}), from {src.min():.6g} to {src.max():.6g}; restored, they "
                    "would leave NaN in the neurons' state"
                )
        for key, arr in live.items():
            np.copyto(arr, state[key], casting="unsafe")
        self.tick = int(tick)

    def _physical_bounds(self) -> dict[str, tuple[float, float, str]]:
        """Per state key, the range a tick leaves it in: ``(low, high, what)``. A LIF
        voltage ends a tick in ``[min_voltage, 1]`` (above 1 it spikes and resets; a network
        may start it lower, never higher: the spec caps ``initial_voltage`` at 1) and a
        refractory time at most ``tau_ref + dt``; an input within the input limit. Past
        them a finite value can still make a spike time's log1p NaN (a voltage above the
        current) or an input current inf. Bounds are widened by 1e-6 for rounding."""
        bounds: dict[str, tuple[float, float, str]] = {}
        for name, ps in self._pops.items():
            p, dt = ps.pop, self.dt
            # At tick 0 a voltage is the network's start, which may lie below min_voltage.
            start = np.zeros(1) if p.initial_voltage is None else np.asarray(p.initial_voltage)
            low = min(p.min_voltage, float(start.min()))
            low -= 1e-6 * max(1.0, abs(low))
            bounds[f"pop.{name}.v"] = (low, 1.0 + 1e-6, "a LIF voltage after a tick")
            high = (p.tau_ref + dt) * (1 + 1e-6)
            bounds[f"pop.{name}.ref"] = (-math.inf, high, "a refractory time, s")
        for name in self.inputs:
            bounds[f"input.{name}"] = (-VALUE_LIMIT, VALUE_LIMIT, "an input value")
        return bounds

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
