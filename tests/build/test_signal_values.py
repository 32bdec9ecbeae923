"""Offline input signals: the values an input takes over a run are what its ``signal``
table says (docs/NETWORK_FILES.md), at the edges too.

Found by mutation testing: the sine's frequency, phase and offset, the step's switching
instant, a file signal's hold, loop and default sample length could all change with
every other test passing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import NetworkFileError
from spikestream.signals import signal_values
from spikestream.spec import NetworkSpec, parse_network


def _spec(
    signal: object, *, dim: int = 1, dt: float = 0.001, base: Path | None = None
) -> NetworkSpec:
    spec = parse_network(
        {
            "network": {"dt": dt},
            "populations": {"a": {"n": 2, "dim": dim}},
            "inputs": {"u": {"target": "a", "dim": dim, "signal": signal}},
        },
        source="net.toml",
    )
    if base is not None:
        spec._base_dir = base
    return spec


T = np.array([0.0, 0.1, 0.25, 1.0, 2.5])


def test_sin_follows_amp_freq_phase_and_offset_on_every_dimension() -> None:
    """``amp * sin(2 pi freq t + phase) + offset``, the same on each dimension."""
    sig = {"kind": "sin", "amp": 0.5, "freq": 2.0, "phase": 0.3, "offset": 0.1}
    values = signal_values(_spec(sig, dim=2), "u", T)
    expected = 0.5 * np.sin(2 * np.pi * 2.0 * T + 0.3) + 0.1
    np.testing.assert_allclose(values, np.stack([expected, expected], axis=1), rtol=1e-12)


def test_sin_without_a_rate_is_sin_t_and_omega_is_in_radians_per_second() -> None:
    """The seed's ``sin(t)``: omega defaults to 1 rad/s; ``omega = 3`` is ``sin(3 t)``."""
    np.testing.assert_allclose(signal_values(_spec("sin"), "u", T)[:, 0], np.sin(T), rtol=1e-12)
    three = signal_values(_spec({"kind": "sin", "omega": 3.0}), "u", T)[:, 0]
    np.testing.assert_allclose(three, np.sin(3.0 * T), rtol=1e-12)


def test_step_switches_at_its_time_exactly() -> None:
    """``before`` until ``t``, then ``after`` from ``t`` itself on, per dimension."""
    sig = {"kind": "step", "t": 0.25, "before": [1.0, 2.0], "after": [-1.0, -2.0]}
    values = signal_values(_spec(sig, dim=2), "u", T)
    assert values.tolist() == [[1.0, 2.0], [1.0, 2.0], [-1.0, -2.0], [-1.0, -2.0], [-1.0, -2.0]]


def test_file_samples_are_held_for_dt_then_held_at_the_last_or_looped(tmp_path: Path) -> None:
    """Sample ``k`` covers ``[k dt, (k + 1) dt)``, also at ``t = k dt`` where ``t / dt``
    rounds just below ``k``; after the last sample the signal holds it, or loops."""
    np.save(tmp_path / "u.npy", np.array([10.0, 20.0, 30.0]))
    # 0.3 / 0.1 == 2.9999999999999996 in float64: still sample 3 -> held at sample 2 (30).
    t = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6])
    held = _spec({"kind": "file", "path": "u.npy", "dt": 0.1}, base=tmp_path)
    assert signal_values(held, "u", t)[:, 0].tolist() == [10, 10, 20, 30, 30, 30, 30]
    looped = _spec({"kind": "file", "path": "u.npy", "dt": 0.1, "loop": True}, base=tmp_path)
    assert signal_values(looped, "u", t)[:, 0].tolist() == [10, 10, 20, 30, 10, 20, 10]


def test_file_samples_last_one_network_tick_by_default(tmp_path: Path) -> None:
    """Without ``dt`` a sample lasts the network's ``dt``, not a fixed millisecond."""
    np.save(tmp_path / "u.npy", np.array([1.0, 2.0, 3.0, 4.0]))
    spec = _spec({"kind": "file", "path": "u.npy"}, dt=0.01, base=tmp_path)
    t = np.array([0.0, 0.005, 0.01, 0.02, 0.03])
    assert signal_values(spec, "u", t)[:, 0].tolist() == [1, 1, 2, 3, 4]


def test_an_empty_sample_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    """A file of no samples has no value to hold: refused, not an IndexError."""
    np.save(tmp_path / "u.npy", np.zeros((0, 1)))
    spec = _spec({"kind": "file", "path": "u.npy"}, base=tmp_path)
    with pytest.raises(NetworkFileError) as info:
        signal_values(spec, "u", T)
    assert str(info.value) == (
        f"net.toml: inputs.u.signal: {str(tmp_path / 'u.npy')!r} has shape (0, 1); expected "
        "(samples, 1) with at least one sample"
    )
