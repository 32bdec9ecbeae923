"""Run a Nengo example script in Nengo's simulator and, imported, in spikestream's.

Shared by the import tests and ``bench/nengo_models.py``. Both sides run the *same*
``nengo.Network`` object (its seed optionally overridden), so they build the same gains,
biases, encoders, decoders and initial voltages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import build
from spikestream.nengo_import import import_nengo, import_network, load_script_network
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


def run_nengo(net: Any, ticks: int, dt: float = 0.001) -> Run:
    """Run ``net`` in ``nengo.Simulator`` for ``ticks`` steps, probing every ensemble's
    spikes (probes added last, so the seeds of the other objects do not change)."""
    nengo = import_nengo()
    with net:
        spike_probes = {e.label: nengo.Probe(e.neurons) for e in net.all_ensembles}
    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run_steps(ticks)
    spikes = {k: sim.data[p] > 0 for k, p in spike_probes.items()}
    probes = {p.label: np.asarray(sim.data[p]) for p in net.all_probes if p.label is not None}
    with net:  # leave the network as it was
        for p in spike_probes.values():
            net.probes.remove(p)
    return Run(spikes, probes, np.asarray(sim.trange()))


def run_spikestream(net: Any, ticks: int, folder: Path, *, timing: str, dt: float = 0.001) -> Run:
    """Import ``net`` into ``folder`` and run it offline in spikestream for ``ticks`` ticks."""
    spec = import_network(
        net, folder / "net.toml", dt=dt, timing=timing, sample_duration=ticks * dt
    )
    model = build(spec)
    arrays = run_offline(model, ticks, inputs=input_signals(model, ticks))
    spikes = {name: arrays[f"{name}.spikes"] > 0 for name in model.populations}
    probes = {name: np.asarray(arrays[name], np.float64) for name in spec.probes}
    return Run(spikes, probes, np.asarray(arrays["t"], np.float64))


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


__all__ = [
    "SCRIPTS",
    "Run",
    "ideal",
    "load",
    "rmse",
    "run_nengo",
    "run_spikestream",
    "script",
    "spike_match",
]
