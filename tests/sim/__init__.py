"""Shared helpers of the simulator tests."""

from __future__ import annotations

import numpy as np

from spikestream.build import Model, build
from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator
from spikestream.spec import parse_network


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


def two_input_model() -> Model:
    """A population ``p`` (10 neurons, d = 2) with two encoded inputs ``x1`` and ``x2``."""
    data = {
        "network": {"seed": 6},
        "populations": {"p": {"n": 10, "dim": 2}},
        "inputs": {"x1": {"target": "p", "dim": 2}, "x2": {"target": "p", "dim": 2}},
    }
    return build(parse_network(data))


def assert_two_inputs_add(model: Model, sim: Simulator) -> None:
    """After one step with both inputs of :func:`two_input_model` set, ``p``'s current
    is ``bias + gain * E @ (x1 + x2)``: the second input adds to what the first and the
    bias put there, not overwrites it."""
    pop = model.populations["p"]
    x1, x2 = np.array([0.5, -0.2]), np.array([-0.1, 0.7])
    sim.set_input("x1", x1)
    sim.set_input("x2", x2)
    sim.step()
    expected = pop.bias + pop.gain * (pop.encoders @ (x1 + x2))
    np.testing.assert_allclose(sim._pops["p"].J, expected, rtol=1e-12, atol=1e-12)
