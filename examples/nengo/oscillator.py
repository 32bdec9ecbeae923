"""An oscillator: a 2-D recurrent ensemble that rotates its state at 1 Hz after a kick.

A plain Nengo script, written for spikestream's examples; it also runs under Nengo itself::

    spikestream import examples/nengo/oscillator.py --out oscillator.toml
    spikestream run examples/nengo/oscillator.py --duration 2 --out osc.npz --plot osc.png

With a ``tau`` lowpass recurrence, the transform ``[[1, w*tau], [-w*tau, 1]]`` gives
``dx/dt = w [[0, 1], [-1, 0]] x``; the kick (0.1 s of ``[0.5, 0]``, through Nengo's default
5 ms synapse) starts it.
"""

import nengo
import numpy as np

TAU = 0.1
OMEGA = 2 * np.pi  # rad/s: one turn per second

model = nengo.Network(label="nengo-oscillator", seed=14)
with model:
    kick = nengo.Node(lambda t: [0.5, 0.0] if t <= 0.1 else [0.0, 0.0], label="kick")
    state = nengo.Ensemble(400, dimensions=2, label="state")
    nengo.Connection(kick, state)
    nengo.Connection(state, state, transform=[[1.0, OMEGA * TAU], [-OMEGA * TAU, 1.0]], synapse=TAU)
    nengo.Probe(kick, label="kick_value")
    nengo.Probe(state, synapse=0.01, label="state_value")
    nengo.Probe(state.neurons, label="state_spikes")


TARGET_PROBE = "state_value"


def ideal(t: np.ndarray) -> np.ndarray:
    """The linear system the network implements, integrated with Euler steps of ``dt``.

    The recurrence's filtered value ``r`` obeys ``tau dr/dt = -r + T x``, and the ensemble
    represents ``x = r + k`` with ``k`` the kick through its 5 ms lowpass, so
    ``tau dr/dt = (T - I) r + T k``.
    """
    dt = float(t[1] - t[0]) if t.size > 1 else 0.001
    transform = np.array([[1.0, OMEGA * TAU], [-OMEGA * TAU, 1.0]])
    r, k = np.zeros(2), np.zeros(2)
    out = np.zeros((t.size, 2))
    a = np.exp(-dt / 0.005)
    for i, s in enumerate(t):
        k = a * k + (1 - a) * (np.array([0.5, 0.0]) if s <= 0.1 else np.zeros(2))
        r = r + dt / TAU * ((transform - np.eye(2)) @ r + transform @ k)
        out[i] = r + k
    return out
