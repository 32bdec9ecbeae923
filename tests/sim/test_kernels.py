"""Kernels against theory and against Nengo's LIF."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.build import lif_rates
from spikestream.sim import accumulate_rows, decay, lif_step, lowpass_spikes, lowpass_step
from spikestream.sim.kernels import LIFParams, spike_indices
from tests.nengo_oracle import LIF

DT, TAU_RC, TAU_REF = 0.001, 0.02, 0.002


class Neurons:
    """Preallocated state for ``n`` neurons."""

    def __init__(self, n: int, dtype: type = np.float64, min_voltage: float = 0.0) -> None:
        self.J = np.zeros(n, dtype)
        self.v = np.zeros(n, dtype)
        self.ref = np.zeros(n, dtype)
        self.spiked = np.zeros(n, bool)
        self.s01 = np.zeros(n, dtype)
        self.tmp = np.zeros(n, dtype)
        self.tmp2 = np.zeros(n, dtype)
        self.p = LIFParams.make(DT, TAU_RC, TAU_REF, min_voltage, dtype)

    def step(self) -> int:
        return lif_step(
            self.J, self.v, self.ref, self.spiked, self.s01, self.tmp, self.tmp2, self.p
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rates_match_analytic_lif_rate(dtype: type) -> None:
    currents = np.concatenate([np.linspace(1.05, 3.0, 20), np.geomspace(3.0, 60.0, 20)])
    nrn = Neurons(currents.size, dtype)
    nrn.J[:] = currents
    ticks = 5000
    counts = np.zeros(currents.size)
    for _ in range(ticks):
        nrn.step()
        counts += nrn.spiked
    simulated = counts / (ticks * DT)
    expected = lif_rates(currents, TAU_RC, TAU_REF)
    # Rates from 8 Hz to 470 Hz: counts over 5 s resolve 0.2 Hz, well inside 1 %.
    np.testing.assert_allclose(simulated, expected, rtol=0.01)


def test_below_threshold_never_spikes_and_voltage_is_floored() -> None:
    nrn = Neurons(3)
    nrn.J[:] = [0.99, -5.0, 0.0]
    for _ in range(2000):
        assert nrn.step() == 0
    assert np.all(nrn.v >= 0.0)
    assert nrn.v[1] == 0.0  # a negative current would drive v below 0 without the floor
    assert 0.9 < nrn.v[0] < 0.99


def test_custom_min_voltage() -> None:
    nrn = Neurons(1, min_voltage=-0.5)
    nrn.J[:] = -5.0
    for _ in range(500):
        nrn.step()
    assert nrn.v[0] == pytest.approx(-0.5)


def test_refractory_period_holds_voltage_at_zero() -> None:
    nrn = Neurons(1)
    nrn.J[:] = 50.0
    while not nrn.step():
        pass
    assert nrn.v[0] == 0.0
    assert nrn.s01[0] == 1.0
    assert TAU_REF < nrn.ref[0] <= TAU_REF + DT
    nrn.step()  # the whole next tick is refractory (ref > dt): v stays 0
    assert nrn.v[0] == 0.0


def test_a_neuron_at_the_threshold_with_threshold_current_never_fires() -> None:
    """The threshold is strict (``v > 1``): at ``J = 1`` the analytic rate is 0, and a
    neuron held exactly at ``v = 1`` (a start voltage the spec allows) stays there. A
    non-strict comparison would fire it every refractory period, with a spike time of
    log1p(0/0): NaN in its refractory state."""
    nrn = Neurons(2)
    nrn.J[:] = 1.0
    nrn.v[:] = [1.0, 0.5]
    assert lif_rates(np.array([1.0]), TAU_RC, TAU_REF)[0] == 0.0
    for _ in range(1000):
        assert nrn.step() == 0
    assert nrn.v[0] == 1.0
    assert 0.5 < nrn.v[1] < 1.0
    assert np.all(nrn.ref <= 0.0)
    assert np.all(np.isfinite(nrn.ref))


def test_matches_nengo_lif_step_exactly() -> None:
    rng = np.random.default_rng(7)
    n = 300
    ours = Neurons(n)
    lif = LIF(tau_rc=TAU_RC, tau_ref=TAU_REF)
    v, ref, out = np.zeros(n), np.zeros(n), np.zeros(n)
    for _ in range(3000):
        J = rng.uniform(-1.0, 8.0, n)
        ours.J[:] = J
        ours.step()
        lif.step(DT, J, out, v, ref)
        np.testing.assert_array_equal(ours.s01 / DT, out)
        np.testing.assert_array_equal(ours.v, v)
        np.testing.assert_array_equal(ours.ref, ref)


def test_synapse_step_response() -> None:
    tau = 0.1
    a = decay(tau, DT)
    assert a == pytest.approx(np.exp(-DT / tau))
    y, u, tmp = np.zeros(1), np.ones(1), np.zeros(1)
    trace = []
    for _ in range(1000):
        lowpass_step(y, u, a, tmp)
        trace.append(y[0])
    k = np.arange(1, 1001)
    np.testing.assert_allclose(trace, 1.0 - a**k, rtol=1e-12)
    # Zero-order hold: the step response is exact at the ticks, 1 - exp(-t/tau).
    np.testing.assert_allclose(trace, 1.0 - np.exp(-k * DT / tau), rtol=1e-9)
    assert decay(0.0, DT) == 0.0


def test_lowpass_spikes_equals_lowpass_of_spike_train() -> None:
    rng = np.random.default_rng(1)
    a = decay(0.05, DT)
    y1, y2, tmp = np.zeros(20), np.zeros(20), np.zeros(20)
    for _ in range(500):
        spiked = rng.random(20) < 0.2
        lowpass_spikes(y1, spiked, a, (1 - a) / DT)
        lowpass_step(y2, spiked / DT, a, tmp)
    np.testing.assert_allclose(y1, y2, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    n_pre=st.integers(1, 40),
    n_post=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_accumulate_rows_equals_dense_product(
    n_pre: int, n_post: int, density: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_pre, n_post))
    spiked = rng.random(n_pre) < density
    arange, idx = np.arange(n_pre), np.zeros(n_pre, np.intp)
    out = np.zeros(n_post)
    accumulate_rows(w, spike_indices(spiked, int(spiked.sum()), arange, idx), out)
    np.testing.assert_allclose(out, w.T @ spiked, atol=1e-12)
