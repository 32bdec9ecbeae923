"""Offline runs: the network as fast as possible, recorded into the ``.npz`` layout.

The layout is ``docs/NPZ.md``'s, shared with ``spikestream record`` through
:mod:`spikestream_client.npz` (the keys, dtypes, ``meta`` and the writer). A run writes:

* per population: ``<pop>.gain``, ``<pop>.bias``, ``<pop>.encoders``, ``<pop>.max_rates``,
  ``<pop>.intercepts`` and ``<pop>.spikes`` (``(ticks, n)`` uint8, 0/1);
* per connection: ``<pre>-><post>.weights`` (or ``.decoders`` and ``.transform``);
* per probe: ``<probe>`` of shape ``(ticks, ...)``; spike probes are 0/1 uint8, value
  probes the network's dtype;
* per input: ``<input>`` of shape ``(ticks, dim)`` float64, the value fed at each tick;
* ``t``: ``(ticks,)`` simulated time at the end of each tick (s), as Nengo's ``trange``;
  ``tick``: ``(ticks,)`` int64, the row's tick (0, 1, ...);
* ``dt``, ``seed``, ``network``, ``dtype``: 0-d arrays describing the run;
* ``meta``: a 0-d JSON string naming the populations, inputs and probe kinds (plots use it).

A run steps in blocks of ticks (:func:`run_blocks`): the simulator feeds and records a
whole block in one compiled call, and :func:`run_to_file` hands each block to an
:class:`~spikestream_client.npz.NpzWriter`, so a long run holds one block in memory, not
every tick. The file is uncompressed by default (zlib costs several times the run
itself); ``compress=True`` deflates it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spikestream.build import Model
from spikestream.errors import ConfigError
from spikestream.signals import signal_values
from spikestream.sim import Simulator
from spikestream_client.npz import (
    COMMON_KEYS,
    SPIKE_DTYPE,
    TICK_DTYPE,
    TIME_DTYPE,
    NpzWriter,
    header_arrays,
    layout_meta,
    time_of,
)

AnyArray = npt.NDArray[np.generic]
#: Inputs of a run: per input, values of shape ``(ticks, dim)``, or a function giving
#: them for ticks ``[start, stop)`` (e.g. a replay log expanded block by block).
Feeds = (
    Mapping[str, npt.NDArray[np.float64]]
    | Callable[[int, int], Mapping[str, npt.NDArray[np.float64]]]
)

#: Bytes of per-tick arrays (spikes, probes, inputs, ``t``) a run holds in memory at once.
#: A run whose recording fits is written straight from memory; a longer one is streamed
#: through a spool folder next to the output file, one block at a time.
BLOCK_BYTES = 64 * 2**20


def ticks_for(duration: float, dt: float) -> int:
    """Number of ticks in ``duration`` seconds (rounded to the nearest tick)."""
    if not np.isfinite(duration) or duration <= 0:
        raise ConfigError(f"duration must be a number of seconds > 0; got {duration}")
    ticks = duration / dt
    if not np.isfinite(ticks):  # e.g. 1e308 s: more ticks than a float can count
        raise ConfigError(f"duration {duration:g} s is not allowed: it is {ticks} ticks of {dt} s")
    return max(1, round(ticks))


def input_signals(model: Model, ticks: int, start: int = 0) -> dict[str, npt.NDArray[np.float64]]:
    """Each input's offline signal for ticks ``start .. start+ticks-1``, sampled at the
    start of every tick (``k * dt``), as in the seed. Shapes ``(ticks, dim)``."""
    t_start = (np.arange(ticks, dtype=np.float64) + start) * model.dt
    return {name: signal_values(model.spec, name, t_start) for name in model.inputs}


def per_tick_layout(model: Model) -> dict[str, tuple[tuple[int, ...], np.dtype[np.generic]]]:
    """Name -> (shape of one tick, dtype in the file) of every per-tick array of a run."""
    out: dict[str, tuple[tuple[int, ...], np.dtype[np.generic]]] = {}
    u8 = SPIKE_DTYPE
    for name, p in model.populations.items():
        out[f"{name}.spikes"] = ((p.n,), u8)
    for name, probe in model.probes.items():
        if probe.kind in ("spikes",):
            out[name] = ((model.populations[probe.target].n,), u8)
        elif probe.kind == "input":
            out[name] = ((model.inputs[probe.target].dim,), model.dtype)
        elif probe.kind in ("filtered", "voltage"):
            out[name] = ((model.populations[probe.target].n,), model.dtype)
        else:
            assert probe.decoders is not None
            out[name] = ((probe.decoders.shape[1],), model.dtype)
    for name, inp in model.inputs.items():
        out.setdefault(name, ((inp.dim,), np.dtype(np.float64)))
    out["t"] = ((), TIME_DTYPE)
    out["tick"] = ((), TICK_DTYPE)
    return out


def block_ticks_for(model: Model, ticks: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Ticks per block: all of them if the per-tick arrays fit in ``block_bytes``."""
    per_tick = sum(
        math.prod(shape) * dtype.itemsize for shape, dtype in per_tick_layout(model).values()
    )
    return max(1, min(ticks, block_bytes // max(1, per_tick)))


@dataclass
class Timings:
    """Where an offline run's time went (s, ``time.perf_counter`` differences)."""

    simulator: float = 0.0  # building the simulator and loading its compiled kernels
    first_tick: float = 0.0  # time.time() (Unix s) when the first tick had run
    first_tick_cpu: float = 0.0  # CPU time of the process by then (less hurt by a busy machine)
    stepping: float = 0.0  # stepping, feeding and recording (one compiled call per block)
    signals: float = 0.0  # computing the inputs' offline signals
    writing: float = 0.0  # writing the .npz
    counts: dict[str, int] = field(default_factory=dict)  # spikes per population


@dataclass(frozen=True)
class Block:
    """Ticks ``start .. stop-1`` of a run: ``arrays`` maps each per-tick array of
    :func:`per_tick_layout` to its rows for these ticks (views of reused buffers: copy
    them to keep them)."""

    start: int
    stop: int
    arrays: Mapping[str, AnyArray]


@dataclass(frozen=True)
class LearningChange:
    """A change of every learning connection before tick ``tick``: its PES ``rate``, its
    switch ``enabled``, or both (None: unchanged), as ``set learning_rate`` and ``learn``
    made it in a live run."""

    tick: int
    rate: float | None = None
    enabled: bool | None = None


def run_blocks(
    model: Model,
    ticks: int,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
    learning: Sequence[LearningChange] = (),
    block_ticks: int | None = None,
    progress: Callable[[int], None] | None = None,
    timings: Timings | None = None,
) -> Iterator[Block]:
    """Run ``model`` for ``ticks`` ticks, yielding the per-tick arrays block by block.

    Args:
        model: the built network.
        ticks: number of ticks to run.
        inputs: per input, values of shape ``(ticks, dim)``, or ``f(start, stop)`` giving
            them for ticks ``[start, stop)``; default: the inputs' offline signals,
            computed block by block.
        resets: ticks before which the simulator is reset (from a replayed live run).
        learning: changes of every learning connection's rate or switch, each before its
            tick, in the order given (from a replayed live run's ``learn`` and ``set
            learning_rate``).
        block_ticks: ticks per block (default :func:`block_ticks_for`); the buffers of one
            block are allocated once and reused.
        progress: called with the number of ticks done, every 1000 ticks and after
            every block.
        timings: filled in as the run goes.
    """
    t = timings if timings is not None else Timings()
    started = time.perf_counter()
    sim = Simulator(model)
    t.simulator = time.perf_counter() - started
    with contextlib.ExitStack() as stack:
        if not sim.compiled:
            # Ops in Python use BLAS: one thread, since a second one stalls for
            # milliseconds when the other core is busy. (A compiled tick calls no BLAS,
            # and threadpoolctl costs ~20 ms to import and scan the loaded libraries.)
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        yield from _blocks(sim, model, ticks, inputs, resets, learning, block_ticks, progress, t)


def _blocks(
    sim: Simulator,
    model: Model,
    ticks: int,
    inputs: Feeds | None,
    resets: Sequence[int],
    learning: Sequence[LearningChange],
    block_ticks: int | None,
    progress: Callable[[int], None] | None,
    t: Timings,
) -> Iterator[Block]:
    size = block_ticks if block_ticks is not None else block_ticks_for(model, ticks)
    spikes = {name: np.zeros((size, p.n), np.bool_) for name, p in model.populations.items()}
    probes: dict[str, AnyArray] = {}
    spike_probes: dict[str, str] = {}  # probe -> population: its spikes are recorded once
    for name, probe in model.probes.items():
        if probe.kind == "spikes":
            spike_probes[name] = probe.target
            continue
        view = sim.probe(name)
        probes[name] = np.zeros((size, *view.shape), view.dtype)
    t.counts = dict.fromkeys(model.populations, 0)
    # Resets split the run into segments (a replayed live run may have been reset), and so
    # do changes of learning (a reset leaves those settings as they are).
    bounds = sorted({0, ticks, *(int(r) for r in resets if 0 < r < ticks)})
    changes: dict[int, list[LearningChange]] = {}
    for change in learning:
        changes.setdefault(int(change.tick), []).append(change)
    # The first tick runs alone, so the time it is done is measured, not estimated.
    cuts = sorted(
        {*bounds, *range(0, ticks, size), min(1, ticks), *(k for k in changes if k < ticks)}
    )
    for start, stop in itertools.pairwise(cuts):
        if start in bounds and start > 0:
            sim.reset()
        for change in changes.get(start, ()):
            for name in sim.learning_connections():
                sim.set_learning(name, rate=change.rate, enabled=change.enabled)
        m = stop - start
        t0 = time.perf_counter()
        if callable(inputs):
            fed = dict(inputs(start, stop))
        elif inputs is not None:
            fed = {k: v[start:stop] for k, v in inputs.items()}
        else:
            fed = input_signals(model, m, start)
        t1 = time.perf_counter()

        def block_progress(k: int, start: int = start) -> None:
            if progress is not None:
                progress(start + k)

        sim.run(
            m,
            inputs=fed,
            record={k: v[:m] for k, v in probes.items()},
            record_spikes={k: v[:m] for k, v in spikes.items()},
            progress=block_progress,
        )
        t2 = time.perf_counter()
        if start == 0:
            t.first_tick, t.first_tick_cpu = time.time(), time.process_time()
        if progress is not None:
            progress(stop)  # blocks shorter than the progress interval report here
        t.signals += t1 - t0
        t.stepping += t2 - t1
        arrays: dict[str, AnyArray] = {}
        for name, s in spikes.items():
            arrays[f"{name}.spikes"] = s[:m].view(np.uint8)
            t.counts[name] += int(np.count_nonzero(s[:m]))
        for name, target in spike_probes.items():
            arrays[name] = arrays[f"{target}.spikes"]
        for name, values in probes.items():
            arrays[name] = values[:m]
        for name, values in fed.items():
            arrays.setdefault(name, np.asarray(values, np.float64))
        arrays["tick"] = tick = np.arange(start, stop, dtype=TICK_DTYPE)
        arrays["t"] = time_of(tick, model.dt)
        yield Block(start, stop, arrays)


def run_offline(
    model: Model,
    ticks: int,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
    learning: Sequence[LearningChange] = (),
    progress: Callable[[int], None] | None = None,
    timings: Timings | None = None,
) -> dict[str, AnyArray]:
    """Run ``model`` for ``ticks`` ticks and return every array of the ``.npz`` layout, in
    memory (:func:`run_to_file` streams long runs to disk instead). Arguments as
    :func:`run_blocks`."""
    layout = per_tick_layout(model)
    out: dict[str, AnyArray] = dict(static_arrays(model, ticks))
    full = {k: np.empty((ticks, *shape), dtype) for k, (shape, dtype) in layout.items()}
    for block in run_blocks(
        model,
        ticks,
        inputs=inputs,
        resets=resets,
        learning=learning,
        block_ticks=ticks,
        progress=progress,
        timings=timings,
    ):
        for k, values in block.arrays.items():
            full[k][block.start : block.stop] = values
    out.update(full)
    return out


def static_arrays(model: Model, ticks: int) -> dict[str, AnyArray]:
    """The arrays of the layout that do not grow with a run of ``ticks`` ticks: built
    parameters, ``dt``, ``seed``, ``network``, ``dtype`` and ``meta``.

    Raises:
        ConfigError: A probe or input is named like one of these keys, ``t`` or ``tick``.
    """
    clash = sorted((set(model.probes) | set(model.inputs)) & {*COMMON_KEYS, "seed"})
    if clash:
        # They would be written over (or over the arrays they name): refuse, not corrupt.
        raise ConfigError(
            f"the .npz layout cannot hold a probe or input named {', '.join(clash)}: "
            f"{', '.join(COMMON_KEYS)} and seed are the file's own keys (docs/NPZ.md); "
            "rename it in the network file"
        )
    out: dict[str, AnyArray] = dict(model.arrays())
    out.update(header_arrays(run_meta(model, ticks)))
    out["seed"] = np.array(model.seed, dtype=np.int64)
    return out


def run_meta(model: Model, ticks: int) -> dict[str, object]:
    """What a reader needs to interpret the arrays of a run of ``ticks`` ticks: names,
    probe kinds (``docs/NPZ.md``), plus ``order`` and ``seed``, which only a run has."""
    return layout_meta(
        network=model.name,
        dt=model.dt,
        dtype=model.dtype.name,
        populations=list(model.populations),
        inputs=list(model.inputs),
        probes={name: p.kind for name, p in model.probes.items()},
        source="run",
        ticks=ticks,
        first_tick=0 if ticks else None,
        last_tick=ticks - 1 if ticks else None,
        order=model.order,
        seed=model.seed,
    )


def run_to_file(
    model: Model,
    ticks: int,
    path: str | Path,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
    learning: Sequence[LearningChange] = (),
    compress: bool = False,
    block_bytes: int = BLOCK_BYTES,
    progress: Callable[[int], None] | None = None,
    timings: Timings | None = None,
) -> Path:
    """Run ``model`` for ``ticks`` ticks and write the ``.npz`` layout to ``path``.

    Memory: one block of per-tick arrays (at most ``block_bytes``, or one tick's worth if
    a tick is larger) plus the built model. A run longer than one block streams each
    per-tick array into a spool file next to ``path`` (so the disk needs about twice the
    file's size while it runs), then copies them into the ``.npz``.
    """
    t = timings if timings is not None else Timings()
    layout = per_tick_layout(model)
    size = block_ticks_for(model, ticks, block_bytes)
    with NpzWriter(path, compress=compress) as npz:
        for name, arr in static_arrays(model, ticks).items():
            npz.add(name, arr)
        streams = {
            k: npz.stream(k, (ticks, *shape), dtype, spool=size < ticks)
            for k, (shape, dtype) in layout.items()
        }
        for block in run_blocks(
            model,
            ticks,
            inputs=inputs,
            resets=resets,
            learning=learning,
            block_ticks=size,
            progress=progress,
            timings=t,
        ):
            started = time.perf_counter()
            for k, values in block.arrays.items():
                streams[k].write(values)
            t.writing += time.perf_counter() - started
        started = time.perf_counter()
    t.writing += time.perf_counter() - started
    return npz.path


__all__ = [
    "BLOCK_BYTES",
    "Block",
    "LearningChange",
    "Timings",
    "block_ticks_for",
    "input_signals",
    "per_tick_layout",
    "run_blocks",
    "run_meta",
    "run_offline",
    "run_to_file",
    "static_arrays",
    "ticks_for",
]
