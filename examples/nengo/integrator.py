"""An integrator: a recurrent ensemble that holds the running integral of its input.

A plain Nengo script, written for spikestream's examples; it also runs under Nengo itself::

    spikestream import examples/nengo/integrator.py --out integrator.toml
    spikestream serve examples/nengo/integrator.py --broker mqtt://localhost:1883

The NEF integrator: input with transform ``tau`` and a recurrent identity, both through a
``tau`` lowpass, give ``dx/dt = u``. The input passes a passthrough node (``relay``), which
the import folds into the connection.
"""

import nengo
import numpy as np

TAU = 0.1


def pulses(t: float) -> float:
    """+1 from 0.2 s to 0.7 s, -0.5 from 1.2 s to 1.6 s, else 0."""
    if 0.2 < t <= 0.7:
        return 1.0
    if 1.2 < t <= 1.6:
        return -0.5
    return 0.0


model = nengo.Network(label="nengo-integrator", seed=13)
with model:
    stim = nengo.Node(pulses, label="stim")
    relay = nengo.Node(size_in=1, label="relay")  # passthrough: folded away on import
    memory = nengo.Ensemble(300, dimensions=1, label="memory")
    nengo.Connection(stim, relay, synapse=None)
    nengo.Connection(relay, memory, transform=TAU, synapse=TAU)
    nengo.Connection(memory, memory, synapse=TAU)
    nengo.Probe(stim, label="stim_value")
    nengo.Probe(memory, synapse=0.01, label="memory_value")
    nengo.Probe(memory.neurons, label="memory_spikes")


TARGET_PROBE = "memory_value"


def ideal(t: np.ndarray) -> np.ndarray:
    """The integral of the input, shape ``(ticks, 1)``."""
    dt = float(t[1] - t[0]) if t.size > 1 else 0.001
    return (np.cumsum([pulses(s) for s in t]) * dt)[:, None]
