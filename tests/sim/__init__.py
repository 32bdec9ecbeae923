"""Shared helpers of the simulator tests."""

from __future__ import annotations

import numpy as np

from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator


def record_blocks(sim: Simulator, ticks: int, progress_every: int) -> dict[str, np.ndarray]:
    """Run ``ticks`` ticks in blocks of ``progress_every`` with the model's input signals,
    recording every probe (by name) and every population's spikes (``<pop>.spikes``)."""
    model = sim.model
    rec = {n: np.zeros((ticks, *sim.probe(n).shape), sim.probe(n).dtype) for n in model.probes}
    spikes = {p: np.zeros((ticks, model.populations[p].n), bool) for p in model.populations}
    sim.run(
        ticks,
        inputs=input_signals(model, ticks),
        record=rec,
        record_spikes=spikes,
        progress_every=progress_every,
    )
    return {**rec, **{f"{k}.spikes": v for k, v in spikes.items()}}
