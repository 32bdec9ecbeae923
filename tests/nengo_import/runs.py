"""Run a Nengo example script in Nengo's simulator and, imported, in spikestream's.

Shared by the import tests and ``bench/nengo_models.py``. Both sides run the *same*
``nengo.Network`` object (its seed optionally overridden), so they build the same gains,
biases, encoders, decoders and initial voltages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import build
from spikestream.nengo_import import (
    build_nengo_model,
    import_nengo,
    import_network,
    load_script_network,
)
from spikestream.runtime.offline import input_signals, run_offline

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "nengo"
SCRIPTS = ("channel", "squaring", "integrator", "oscillator")

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def script(name: str) -> Path:
    """Path of the example script ``name``."""
    return EXAMPLES / f"{name}.py"


@dataclass
class Run:
    """One simulator's run: spikes per ensemble ``(ticks, n)``, probe data per probe label
    ``(ticks, ...)`` and ``t`` (end of each tick, s)."""

    spikes: dict[str, BoolArray]
    probes: dict[str, FloatArray]
    t: FloatArray


def load(name: str, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The example's network (with ``seed`` if given) and its module namespace."""
    net, namespace = load_script_network(script(name))
    if seed is not None:
        net.seed = seed
    return net, namespace


def run_both(
    net: Any, ticks: int, folder: Path, *, timing: str, dt: float = 0.001
) -> tuple[Run, Run]:
    """Build ``net`` once with Nengo's builder (every ensemble's spikes probed, probes added
    last so the seeds of the other objects do not change), run that build in
    ``nengo.Simulator`` and, imported, in spikestream. Returns ``(nengo, spikestream)``."""
    nengo = import_nengo()
    with net:
        spike_probes = {e.label: nengo.Probe(e.neurons) for e in net.all_ensembles}
    try:
        built = build_nengo_model(net, dt)
        spec = import_network(
            net, folder / "net.toml", dt=dt, timing=timing, sample_duration=ticks * dt, built=built
        )
        with warnings.catch_warnings():
            # Nengo's optimiser suggests SciPy; not a concern of these comparisons.
            warnings.filterwarnings("ignore", "Skipping some optimization steps", UserWarning)
            sim = nengo.Simulator(None, dt=dt, model=built, progress_bar=False)
        with sim:
            sim.run_steps(ticks)
        ref = Run(
            {k: sim.data[p] > 0 for k, p in spike_probes.items()},
            {p.label: np.asarray(sim.data[p]) for p in net.all_probes if p.label is not None},
            np.asarray(sim.trange()),
        )
    finally:
        with net:  # leave the network as it was
            for p in spike_probes.values():
                net.probes.remove(p)
    model = build(spec)
    arrays = run_offline(model, ticks, inputs=input_signals(model, ticks))
    got = Run(
        {name: arrays[f"{name}.spikes"] > 0 for name in model.populations},
        {name: np.asarray(arrays[name], np.float64) for name in spec.probes},
        np.asarray(arrays["t"], np.float64),
    )
    return ref, got


def spike_match(reference: BoolArray, got: BoolArray) -> float:
    """Fraction of spike events (neuron, tick) present in both trains, out of the larger
    count; 1.0 when both are empty."""
    total = max(int(reference.sum()), int(got.sum()))
    return 1.0 if total == 0 else float(np.sum(reference & got)) / total


def rmse(values: FloatArray, target: FloatArray) -> float:
    """Root mean square error over ticks and dimensions."""
    return float(np.sqrt(np.mean((values.reshape(target.shape) - target) ** 2)))


def ideal(namespace: dict[str, Any], t: FloatArray) -> tuple[str, FloatArray]:
    """The example's target probe label and what it should represent at times ``t``."""
    return str(namespace["TARGET_PROBE"]), np.asarray(namespace["ideal"](t), np.float64)
