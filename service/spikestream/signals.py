"""Offline input signals: turn an input's ``signal`` spec into values over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from spikestream.datafiles import check_values, load_csv, load_npy
from spikestream.errors import NetworkFileError
from spikestream.spec import (
    ConstantSignal,
    FileSignal,
    InputSpec,
    NetworkSpec,
    SinSignal,
    StepSignal,
)

FloatArray = npt.NDArray[np.float64]


def _vector(value: float | list[float], dim: int) -> FloatArray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (dim,)).copy()


def default_value(inp: InputSpec) -> FloatArray:
    """The input's fallback value, shape ``(dim,)``."""
    return _vector(inp.default, inp.dim)


def load_samples(path: Path, dim: int, where: str) -> FloatArray:
    """Read a ``.npy`` or CSV file of samples into shape ``(samples, dim)``."""
    data = load_npy(path, where) if path.suffix == ".npy" else load_csv(path, where)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] != dim or data.shape[0] == 0:
        raise NetworkFileError(
            f"{where}: {str(path)!r} has shape {data.shape}; expected (samples, {dim}) with "
            "at least one sample"
        )
    return check_values(data, path, where)


def signal_values(spec: NetworkSpec, name: str, t: FloatArray) -> FloatArray:
    """Values of input ``name`` at times ``t`` (s, shape ``(ticks,)``).

    Returns:
        Array of shape ``(ticks, dim)``, float64.
    """
    inp = spec.inputs[name]
    sig = inp.signal
    dim = inp.dim
    where = f"{spec.source}: inputs.{name}.signal"  # read at run time, after the build
    if isinstance(sig, str):  # pragma: no cover - the validator expands shorthands
        raise AssertionError(sig)
    if isinstance(sig, SinSignal):
        row = sig.amp * np.sin(sig.angular * t + sig.phase) + sig.offset
        return np.repeat(row[:, None], dim, axis=1)
    if isinstance(sig, ConstantSignal):
        return np.tile(_vector(sig.value, dim), (t.shape[0], 1))
    if isinstance(sig, StepSignal):
        before, after = _vector(sig.before, dim), _vector(sig.after, dim)
        return np.where((t >= sig.t)[:, None], after[None, :], before[None, :])
    if isinstance(sig, FileSignal):
        samples = load_samples(spec.resolve(sig.path), dim, where)
        sample_dt = sig.dt if sig.dt is not None else spec.network.dt
        # Small epsilon so t = k * sample_dt lands on sample k despite rounding. The sample
        # position is wrapped or clipped while still a float, so the integer cast below
        # never sees a value beyond int64, however long the run.
        position = np.floor(t / sample_dt + 1e-9)
        count = samples.shape[0]
        position = np.mod(position, count) if sig.loop else np.clip(position, 0, count - 1)
        return samples[position.astype(np.int64)]
    raise AssertionError(f"unknown signal {sig!r}")  # pragma: no cover
