"""A communication channel: a 2-D value goes from ensemble ``a`` to ensemble ``b``.

A plain Nengo script, written for spikestream's examples; it also runs under Nengo itself::

    spikestream import examples/nengo/channel.py --out channel.toml
    spikestream run examples/nengo/channel.py --duration 2 --out channel.npz --plot channel.png
    spikestream serve examples/nengo/channel.py --broker mqtt://localhost:1883

Served live, ``stim`` is the MQTT input ``spikestream/nengo-channel/in/stim``.
"""

import nengo
import numpy as np

model = nengo.Network(label="nengo-channel", seed=11)
with model:
    # A slow circle inside the unit disc: the offline signal of the input `stim`.
    stim = nengo.Node(lambda t: [0.7 * np.sin(np.pi * t), 0.7 * np.cos(np.pi * t)], label="stim")
    a = nengo.Ensemble(200, dimensions=2, label="a")
    b = nengo.Ensemble(200, dimensions=2, label="b")
    nengo.Connection(stim, a)
    nengo.Connection(a, b)  # the identity, decoded
    nengo.Probe(stim, label="stim_value")
    nengo.Probe(a, synapse=0.01, label="a_value")
    nengo.Probe(b, synapse=0.01, label="b_value")
    nengo.Probe(b.neurons, label="b_spikes")


#: The probe that should follow `ideal`, and what it should follow (t: seconds, (ticks,)).
TARGET_PROBE = "b_value"


def ideal(t: np.ndarray) -> np.ndarray:
    """What ``b`` represents in the limit of many neurons: the input itself."""
    return np.stack([0.7 * np.sin(np.pi * t), 0.7 * np.cos(np.pi * t)], axis=1)
