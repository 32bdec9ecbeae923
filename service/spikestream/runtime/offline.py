"""Offline runs: the network as fast as possible, recorded into the ``.npz`` layout.

Layout (DESIGN.md §3, README):

* per population: ``<pop>.gain``, ``<pop>.bias``, ``<pop>.encoders``, ``<pop>.max_rates``,
  ``<pop>.intercepts`` and ``<pop>.spikes`` (``(ticks, n)`` uint8, 0/1);
* per connection: ``<pre>-><post>.weights`` (or ``.decoders`` and ``.transform``);
* per probe: ``<probe>`` of shape ``(ticks, ...)``; spike probes are 0/1 uint8;
* per input: ``<input>`` of shape ``(ticks, dim)``, the value fed at each tick;
* ``t``: ``(ticks,)`` simulated time at the end of each tick (s), as Nengo's ``trange``;
* ``dt``, ``seed``, ``network``, ``dtype``: 0-d arrays describing the run;
* ``meta``: a 0-d JSON string naming the populations, inputs and probe kinds (plots use it).

A run steps in blocks of ticks (:func:`run_blocks`): the simulator feeds and records a
whole block in one compiled call, and :func:`run_to_file` hands each block to an
:class:`NpzWriter`, so a long run holds one block in memory, not every tick. The file is
uncompressed by default (zlib costs several times the run itself); ``compress=True``
deflates it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import secrets
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npy_format

from spikestream.build import Model
from spikestream.errors import ConfigError
from spikestream.signals import signal_values
from spikestream.sim import Simulator

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
#: Bytes copied at a time from a spool file into the ``.npz``.
COPY_BYTES = 4 * 2**20


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
    u8 = np.dtype(np.uint8)
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
    out["t"] = ((), np.dtype(np.float64))
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


def run_blocks(
    model: Model,
    ticks: int,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
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
        yield from _blocks(sim, model, ticks, inputs, resets, block_ticks, progress, t)


def _blocks(
    sim: Simulator,
    model: Model,
    ticks: int,
    inputs: Feeds | None,
    resets: Sequence[int],
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
    # Resets split the run into segments (a replayed live run may have been reset).
    bounds = sorted({0, ticks, *(int(r) for r in resets if 0 < r < ticks)})
    # The first tick runs alone, so the time it is done is measured, not estimated.
    cuts = sorted({*bounds, *range(0, ticks, size), min(1, ticks)})
    for start, stop in itertools.pairwise(cuts):
        if start in bounds and start > 0:
            sim.reset()
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
        arrays["t"] = (np.arange(start, stop, dtype=np.float64) + 1.0) * model.dt
        yield Block(start, stop, arrays)


def run_offline(
    model: Model,
    ticks: int,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
    progress: Callable[[int], None] | None = None,
    timings: Timings | None = None,
) -> dict[str, AnyArray]:
    """Run ``model`` for ``ticks`` ticks and return every array of the ``.npz`` layout, in
    memory (:func:`run_to_file` streams long runs to disk instead). Arguments as
    :func:`run_blocks`."""
    layout = per_tick_layout(model)
    out: dict[str, AnyArray] = dict(static_arrays(model))
    full = {k: np.empty((ticks, *shape), dtype) for k, (shape, dtype) in layout.items()}
    for block in run_blocks(
        model,
        ticks,
        inputs=inputs,
        resets=resets,
        block_ticks=ticks,
        progress=progress,
        timings=timings,
    ):
        for k, values in block.arrays.items():
            full[k][block.start : block.stop] = values
    out.update(full)
    return out


def static_arrays(model: Model) -> dict[str, AnyArray]:
    """The arrays of the layout that do not grow with the run: built parameters, ``dt``,
    ``seed``, ``network``, ``dtype`` and ``meta``."""
    out: dict[str, AnyArray] = dict(model.arrays())
    out["dt"] = np.array(model.dt)
    out["seed"] = np.array(model.seed, dtype=np.int64)
    out["network"] = np.array(model.name)
    out["dtype"] = np.array(model.dtype.name)
    out["meta"] = np.array(json.dumps(run_meta(model)))
    return out


def run_meta(model: Model) -> dict[str, object]:
    """What a reader needs to interpret the arrays: names and probe kinds."""
    return {
        "network": model.name,
        "dt": model.dt,
        "populations": list(model.populations),
        "inputs": list(model.inputs),
        "probes": {name: p.kind for name, p in model.probes.items()},
        "order": model.order,
    }


def run_to_file(
    model: Model,
    ticks: int,
    path: str | Path,
    *,
    inputs: Feeds | None = None,
    resets: Sequence[int] = (),
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
        for name, arr in static_arrays(model).items():
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


class _Stream:
    """One per-tick array of a :class:`NpzWriter`, written block by block."""

    def __init__(
        self, writer: NpzWriter, name: str, shape: tuple[int, ...], dtype: np.dtype[np.generic]
    ) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype
        self._writer = writer
        self._rows = 0
        self._spool: IO[bytes] | None = None
        self._blocks: list[AnyArray] = []

    def write(self, block: AnyArray) -> None:
        """Append rows (shape ``(rows, *shape[1:])``, this array's dtype)."""
        if block.dtype != self.dtype or block.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"{self.name}: rows of {block.dtype} {block.shape[1:]}; expected "
                f"{self.dtype} {self.shape[1:]}"
            )
        if self._rows + block.shape[0] > self.shape[0]:
            raise ValueError(f"{self.name}: more than the {self.shape[0]} rows announced")
        self._rows += block.shape[0]
        if self._spool is not None:
            self._spool.write(np.ascontiguousarray(block).data)
        elif self._rows == self.shape[0]:
            # The last block: written now, while its buffer still holds it.
            self._writer._member(self.name, self.shape, self.dtype, [*self._blocks, block])
            self._blocks = []
        else:
            self._blocks.append(block.copy())  # its buffer is reused by the next block

    def finish(self) -> None:
        """Copy a spooled array into the archive."""
        if self._rows != self.shape[0]:
            raise ValueError(f"{self.name}: {self._rows} rows written of {self.shape[0]}")
        if self._spool is None:
            return
        self._spool.seek(0)
        spool = self._spool
        chunks = iter(lambda: spool.read(COPY_BYTES), b"")
        self._writer._member(self.name, self.shape, self.dtype, chunks)
        spool.close()


class NpzWriter:
    """Writes an ``.npz`` file (the format ``np.load`` reads), array by array or block by
    block, to a temporary name renamed into place on success: a failed run never leaves
    half a file behind, nor replaces an existing one.

    Members are stored uncompressed unless ``compress``; no pickled objects.
    """

    def __init__(self, path: str | Path, *, compress: bool = False) -> None:
        self.path = Path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise ConfigError(
                f"cannot write {str(self.path)!r}: folder {str(folder)!r} does not exist"
            )
        # Not mkstemp: its 0600 mode would survive the rename; open() honours the umask.
        self._tmp = folder / f".{self.path.name}.{secrets.token_hex(4)}.part"
        try:
            self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed in __exit__
        except OSError as err:
            raise ConfigError(f"cannot write {str(self.path)!r}: {err.strerror}") from None
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._zip = zipfile.ZipFile(self._file, "w", compression=method, allowZip64=True)
        self._streams: list[_Stream] = []
        self._spool_dir: tempfile.TemporaryDirectory[str] | None = None

    def add(self, name: str, arr: AnyArray) -> None:
        """Write a whole array as member ``name`` (the way ``np.savez`` does)."""
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            npy_format.write_array(fh, np.asanyarray(arr), allow_pickle=False)

    def add_bytes(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: Iterator[bytes]
    ) -> None:
        """Write member ``name`` of ``shape`` and ``dtype`` from its raw C-order bytes,
        given in chunks (e.g. read from a spool file), without holding the array."""
        self._member(name, shape, dtype, chunks)

    def stream(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype[np.generic], *, spool: bool
    ) -> _Stream:
        """A member of the given final shape, written in blocks of rows with
        :meth:`_Stream.write`. Without ``spool`` the blocks are kept (not copied) until the
        last arrives, then written: for runs of one block. With it, they go to a spool file
        as they come, and into the archive when the writer closes."""
        s = _Stream(self, name, shape, dtype)
        if spool:
            if self._spool_dir is None:
                self._spool_dir = tempfile.TemporaryDirectory(
                    prefix=f".{self.path.name}.", dir=self.path.parent
                )
            s._spool = open(Path(self._spool_dir.name) / f"{len(self._streams)}.bin", "w+b")  # noqa: SIM115
        self._streams.append(s)
        return s

    def _member(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        chunks: Iterator[bytes] | list[AnyArray],
    ) -> None:
        header = io.BytesIO()
        npy_format.write_array_header_1_0(
            header,
            {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape},
        )
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            for chunk in chunks:
                fh.write(chunk if isinstance(chunk, bytes) else np.ascontiguousarray(chunk).data)

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        done = False
        try:
            if exc_type is None:
                for s in self._streams:
                    s.finish()
                self._zip.close()
                self._file.close()
                os.replace(self._tmp, self.path)
                done = True
        finally:
            if not done:
                # The partial file is deleted below; closing it must not hide the error.
                with contextlib.suppress(Exception):
                    self._zip.close()
                self._file.close()
            for s in self._streams:
                if s._spool is not None:
                    s._spool.close()
            if self._spool_dir is not None:
                self._spool_dir.cleanup()
            self._tmp.unlink(missing_ok=True)


def save_npz(path: str | Path, arrays: Mapping[str, AnyArray], *, compress: bool = False) -> Path:
    """Write ``arrays`` to ``path`` as an ``.npz`` (uncompressed unless ``compress``; no
    pickled objects), atomically: see :class:`NpzWriter`."""
    with NpzWriter(path, compress=compress) as npz:
        for name, arr in arrays.items():
            npz.add(name, arr)
    return npz.path


__all__ = [
    "BLOCK_BYTES",
    "Block",
    "NpzWriter",
    "Timings",
    "block_ticks_for",
    "input_signals",
    "per_tick_layout",
    "run_blocks",
    "run_meta",
    "run_offline",
    "run_to_file",
    "save_npz",
    "static_arrays",
    "ticks_for",
]
