"""The compiled backend computes exactly what the numpy reference kernels compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.errors import SimulationError
from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator
from spikestream.spec import load_network, parse_network

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


def run(
    model_spec: object, backend: str, ticks: int, dtype: str = "float64"
) -> dict[str, np.ndarray]:
    model = build(model_spec, dtype=dtype)  # type: ignore[arg-type]
    sim = Simulator(model, backend=backend)  # type: ignore[arg-type]
    rec = {p: np.zeros((ticks, model.populations[p].n), bool) for p in model.populations}
    sim.run(ticks, inputs=input_signals(model, ticks), record_spikes=rec)
    state = sim.state()
    return {**{f"spikes.{k}": v for k, v in rec.items()}, **state}


@pytest.mark.parametrize(
    "spec",
    [
        load_network(SEED),
        parse_network(
            {
                "network": {"seed": 9},
                "populations": {"a": {"n": 300, "dim": 2}, "b": {"n": 400, "min_voltage": -0.3}},
                "inputs": {"u": {"dim": 2, "target": "a", "signal": "sin"}},
                "connections": [
                    {"pre": "a", "post": "b", "weights": {"std": 0.003}, "synapse": 0.02},
                    {"pre": "b", "post": "b", "weights": {"std": 0.001}, "synapse": 0.05},
                ],
                "probes": {"y": {"target": "b", "kind": "decoded"}},
            }
        ),
    ],
    ids=["seed", "event-driven-recurrent"],
)
def test_numba_matches_numpy(spec: object) -> None:
    """Same spikes; state equal to rounding. numpy may evaluate expm1/log1p with SIMD code
    (SVML on AVX-512) where the compiled kernel calls libm: the last bits can differ."""
    ref = run(spec, "numpy", 2000)
    jit = run(spec, "numba", 2000)
    assert ref.keys() == jit.keys()
    for key in ref:
        if key.startswith("spikes."):
            np.testing.assert_array_equal(jit[key], ref[key], err_msg=key)
        else:
            np.testing.assert_allclose(jit[key], ref[key], rtol=1e-11, atol=1e-12, err_msg=key)
    assert ref["spikes.b"].sum() > 1000


def test_float32_backends_agree_closely() -> None:
    spec = load_network(SEED)
    ref = run(spec, "numpy", 1000, "float32")
    jit = run(spec, "numba", 1000, "float32")
    # The compiled kernel computes in float64 registers and rounds on store, so float32
    # runs may differ in the last bit and, rarely, in a spike time.
    assert np.mean(ref["spikes.a"] != jit["spikes.a"]) < 0.01


def test_unknown_backend() -> None:
    with pytest.raises(SimulationError, match="backend 'gpu' is not allowed"):
        Simulator(build(load_network(SEED)), backend="gpu")  # type: ignore[arg-type]
