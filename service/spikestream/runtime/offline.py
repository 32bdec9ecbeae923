"""Offline runs: the network as fast as possible, recorded into the ``.npz`` layout.

Layout (docs/NPZ.md):

* per population: ``<pop>.gain``, ``<pop>.bias``, ``<pop>.encoders``, ``<pop>.max_rates``,
  ``<pop>.intercepts`` and ``<pop>.spikes`` (``(ticks, n)`` uint8, 0/1);
* per connection: ``<pre>-><post>.weights`` (or ``.decoders`` and ``.transform``);
* per probe: ``<probe>`` of shape ``(ticks, ...)``; spike probes are 0/1 uint8;
* per input: ``<input>`` of shape ``(ticks, dim)``, the value fed at each tick;
* ``t``: ``(ticks,)`` simulated time at the end of each tick (s), as Nengo's ``trange``;
* ``dt``, ``seed``, ``network``, ``dtype``: 0-d arrays describing the run;
* ``meta``: a 0-d JSON string naming the populations, inputs and probe kinds (plots use it).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from spikestream.build import Model
from spikestream.errors import ConfigError
from spikestream.signals import signal_values
from spikestream.sim import Simulator

AnyArray = npt.NDArray[np.generic]


def ticks_for(duration: float, dt: float) -> int:
    """Number of ticks in ``duration`` seconds (rounded to the nearest tick)."""
    if not np.isfinite(duration) or duration <= 0:
        raise ConfigError(f"duration must be a number of seconds > 0; got {duration}")
    ticks = duration / dt
    if not np.isfinite(ticks):  # e.g. 1e308 s: more ticks than a float can count
        raise ConfigError(f"duration {duration:g} s is not allowed: it is {ticks} ticks of {dt} s")
    return max(1, round(ticks))


def input_signals(model: Model, ticks: int) -> dict[str, npt.NDArray[np.float64]]:
    """Each input's offline signal, sampled at the start of every tick (``k * dt``), as in
    the seed. Shapes ``(ticks, dim)``."""
    t_start = np.arange(ticks, dtype=np.float64) * model.dt
    return {name: signal_values(model.spec, name, t_start) for name in model.inputs}


def run_offline(
    model: Model,
    ticks: int,
    *,
    inputs: Mapping[str, npt.NDArray[np.float64]] | None = None,
    resets: Sequence[int] = (),
    progress: Callable[[int], None] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, AnyArray]:
    """Run ``model`` for ``ticks`` ticks and return every array of the ``.npz`` layout.

    Args:
        model: the built network.
        ticks: number of ticks to run.
        inputs: per input, values of shape ``(ticks, dim)``; default: the inputs' offline
            signals.
        resets: ticks before which the simulator is reset (from a replayed live run).
        progress: called with the number of ticks done, every 1000 ticks.
        timings: if given, receives ``"stepping"``: seconds spent stepping (without
            building the simulator or compiling its kernels).
    """
    sim = Simulator(model)
    feeds = dict(inputs) if inputs is not None else input_signals(model, ticks)
    spikes = {name: np.zeros((ticks, p.n), np.bool_) for name, p in model.populations.items()}
    probes: dict[str, AnyArray] = {}
    for name in model.probes:
        view = sim.probe(name)
        dtype = np.bool_ if view.dtype == np.bool_ else model.dtype
        probes[name] = np.zeros((ticks, *view.shape), dtype)
    # Resets split the run into segments (a replayed live run may have been reset).
    bounds = sorted({0, ticks, *(int(r) for r in resets if 0 < r < ticks)})
    # One BLAS thread: a second one stalls for milliseconds when the other core is busy.
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for start, stop in itertools.pairwise(bounds):
            if start > 0:
                sim.reset()

            def segment_progress(k: int, start: int = start) -> None:
                if progress is not None:
                    progress(start + k)

            sim.run(
                stop - start,
                inputs={k: v[start:stop] for k, v in feeds.items()},
                record={k: v[start:stop] for k, v in probes.items()},
                record_spikes={k: v[start:stop] for k, v in spikes.items()},
                progress=segment_progress,
            )
    if timings is not None:
        timings["stepping"] = time.perf_counter() - started
    out: dict[str, AnyArray] = dict(model.arrays())
    for name, s in spikes.items():
        out[f"{name}.spikes"] = s.view(np.uint8)
    for name, values in probes.items():
        out[name] = values.view(np.uint8) if values.dtype == np.bool_ else values
    for name, values in feeds.items():
        out.setdefault(name, values[:ticks])
    out["t"] = (np.arange(ticks, dtype=np.float64) + 1.0) * model.dt
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


def save_npz(path: str | Path, arrays: Mapping[str, AnyArray]) -> Path:
    """Write ``arrays`` to ``path`` (compressed ``.npz``, no pickled objects)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise ConfigError(f"cannot write {str(p)!r}: folder {str(p.parent)!r} does not exist")
    with p.open("wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    return p
