"""PES learning in the simulator against its rule, tick by tick (Nengo's PES).

The Nengo comparison (tests/nengo_import) needs nengo; these check the rule itself: the
presynaptic activity is the spikes lowpassed by 5 ms, and each tick moves the decoders by
``-(rate * dt / n_pre) * outer(activity, error)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from spikestream.build import build
from spikestream.sim import Simulator, decay
from spikestream.spec import parse_network

N_PRE, RATE = 60, 2e-3


def learner(error_synapse: float = 0.0, enabled: bool = True) -> Simulator:
    """a -> b, decoded, learning from input ``e``; a driven by ``u``."""
    data = {
        "network": {"seed": 11},
        "populations": {"a": {"n": N_PRE, "dim": 1}, "b": {"n": 30, "dim": 1}},
        "inputs": {"u": {"dim": 1, "target": "a"}, "e": {"dim": 1}},
        "connections": [
            {
                "pre": "a",
                "post": "b",
                "function": "x",
                "synapse": 0.01,
                "learning": {
                    "error": "e",
                    "rate": RATE,
                    "synapse": error_synapse,
                    "enabled": enabled,
                },
            }
        ],
    }
    return Simulator(build(parse_network(data)))


def test_each_tick_moves_the_decoders_by_the_pes_rule() -> None:
    """The sign, the rate * dt / n_pre scale and the 5 ms activity filter all show in one
    tick's change: a wrong sign makes learning push the output away from its target."""
    sim = learner()
    dt = sim.dt
    a_pre = decay(0.005, dt)
    activity = np.zeros(N_PRE)
    errors = 0.4 * np.sin(np.arange(400) * 0.03) + 0.1
    moved = 0
    for k, err in enumerate(errors):
        sim.set_input("u", np.array([np.sin(k * 0.02)]))
        sim.set_input("e", np.array([err]))
        before = sim.state()["conn.0.decoders"]
        sim.step()
        after = sim.state()
        spiked = sim._pops["a"].spiked  # this tick's spikes of the pre population
        activity = a_pre * activity + (1.0 - a_pre) / dt * spiked
        np.testing.assert_allclose(after["conn.0.pre_activity"], activity, rtol=1e-12, atol=1e-9)
        expected = -(RATE * dt / N_PRE) * np.outer(activity, [err])
        np.testing.assert_allclose(
            after["conn.0.decoders"] - before, expected, rtol=1e-9, atol=1e-15
        )
        moved += int(np.any(expected != 0))
    assert moved > 300  # the activity was non-zero: the rule had something to move


@pytest.mark.parametrize("enabled", [True, False])
def test_a_filtered_error_is_lowpassed_before_it_is_used_and_disabled_learning_holds(
    enabled: bool,
) -> None:
    """With an error synapse the rule reads the lowpassed error (here, the step
    response 1 - a**k of a held error); disabled, the decoders never move."""
    tau = 0.02
    sim = learner(error_synapse=tau, enabled=enabled)
    dt = sim.dt
    a_err = decay(tau, dt)
    start = sim.state()["conn.0.decoders"]
    sim.set_input("u", np.array([0.5]))
    sim.set_input("e", np.array([0.8]))
    for k in range(1, 200):
        before = sim.state()["conn.0.decoders"]
        sim.step()
        after = sim.state()
        filtered = 0.8 * (1.0 - a_err**k)
        np.testing.assert_allclose(after["conn.0.error"], [filtered], rtol=1e-12)
        if enabled:
            expected = -(RATE * dt / N_PRE) * np.outer(after["conn.0.pre_activity"], [filtered])
            np.testing.assert_allclose(
                after["conn.0.decoders"] - before, expected, rtol=1e-9, atol=1e-15
            )
    if not enabled:
        np.testing.assert_array_equal(sim.state()["conn.0.decoders"], start)
    else:
        assert not np.array_equal(sim.state()["conn.0.decoders"], start)
