"""Squaring: ensemble ``b`` represents the square of what ensemble ``a`` represents.

A plain Nengo script, written for spikestream's examples; it also runs under Nengo itself::

    spikestream import examples/nengo/squaring.py --out squaring.toml
    spikestream run examples/nengo/squaring.py --duration 2 --out squaring.npz --plot sq.png

The decoders of the ``lambda x: x**2`` connection are Nengo's own (taken from its build).
"""

import nengo
import numpy as np

model = nengo.Network(label="nengo-squaring", seed=12)
with model:
    stim = nengo.Node(lambda t: np.sin(2 * np.pi * t), label="stim")
    a = nengo.Ensemble(200, dimensions=1, label="a")
    b = nengo.Ensemble(200, dimensions=1, label="b")
    nengo.Connection(stim, a)
    nengo.Connection(a, b, function=lambda x: x**2)
    nengo.Probe(stim, label="stim_value")
    nengo.Probe(a, synapse=0.01, label="a_value")
    nengo.Probe(b, synapse=0.01, label="b_value")
    nengo.Probe(a.neurons, synapse=0.02, label="a_rates")


TARGET_PROBE = "b_value"


def ideal(t: np.ndarray) -> np.ndarray:
    """``sin(2 pi t)**2``, shape ``(ticks, 1)``."""
    return (np.sin(2 * np.pi * t) ** 2)[:, None]
