"""Deterministic replay: record the tick-stamped inputs of a live run, play them offline.

The live engine calls :meth:`InputRecorder.record` only when an input's value changes (a
new message applied, or a TTL fallback), with the number of ticks executed so far, and
:meth:`InputRecorder.mark` on resets. :func:`replay_inputs` turns the log back into one
value per tick, so ``spikestream run NETWORK --replay FILE`` steps the simulator through
exactly the inputs the live run saw and reproduces its spike trains.

File layout (``.npz``): ``<input>.ticks`` (k,) int64 and ``<input>.values`` (k, dim)
float64 for each input, ``resets`` (r,) int64, ``ticks`` (0-d, ticks executed), and
``network``, ``seed``, ``dtype`` (0-d) to check the replay runs the same build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import Model
from spikestream.errors import ConfigError


class InputRecorder:
    """Collects input changes on the tick thread (appends only; no I/O)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._ticks: dict[str, list[int]] = {name: [] for name in model.inputs}
        self._values: dict[str, list[npt.NDArray[np.float64]]] = {n: [] for n in model.inputs}
        self._resets: list[int] = []

    def record(self, executed: int, name: str, value: npt.NDArray[np.floating]) -> None:
        """Input ``name`` holds ``value`` from executed tick ``executed`` on."""
        self._ticks[name].append(executed)
        self._values[name].append(np.array(value, dtype=np.float64))

    def mark(self, kind: str, executed: int) -> None:
        """Record a reset before executed tick ``executed``."""
        if kind == "reset":
            self._resets.append(executed)

    def arrays(self, ticks: int) -> dict[str, npt.NDArray[Any]]:
        """The log in the file layout."""
        out: dict[str, npt.NDArray[Any]] = {}
        for name, inp in self.model.inputs.items():
            out[f"{name}.ticks"] = np.asarray(self._ticks[name], dtype=np.int64)
            values = self._values[name]
            out[f"{name}.values"] = (
                np.stack(values) if values else np.zeros((0, inp.dim), dtype=np.float64)
            )
        out["resets"] = np.asarray(self._resets, dtype=np.int64)
        out["ticks"] = np.array(ticks, dtype=np.int64)
        out["network"] = np.array(self.model.name)
        out["seed"] = np.array(self.model.seed, dtype=np.int64)
        out["dtype"] = np.array(self.model.dtype.name)
        return out

    def save(self, path: str | Path, *, ticks: int) -> None:
        """Write the log (``ticks`` = ticks executed by the live run)."""
        with Path(path).open("wb") as fh:
            np.savez_compressed(fh, **self.arrays(ticks))  # type: ignore[arg-type]


def load_replay(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """Read a replay log.

    Raises:
        ConfigError: the file is missing or not a replay log.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read replay log {str(path)!r}: {err}") from None
    if "ticks" not in arrays or "network" not in arrays:
        raise ConfigError(f"{str(path)!r} is not a replay log (no 'ticks'/'network' arrays)")
    return arrays


def replay_ticks(log: dict[str, npt.NDArray[Any]], path: str | Path) -> int:
    """The number of ticks a replay log covers, checked.

    Raises:
        ConfigError: ``ticks`` is not one integer >= 0.
    """
    raw = log["ticks"]
    if raw.shape != () or not np.issubdtype(raw.dtype, np.integer) or int(raw) < 0:
        raise ConfigError(
            f"{str(path)!r}: 'ticks' must be one integer >= 0; got {raw.dtype} {raw!r:.60}"
        )
    return int(raw)


def replay_inputs(
    model: Model, log: dict[str, npt.NDArray[Any]]
) -> tuple[int, dict[str, npt.NDArray[np.float64]], npt.NDArray[np.int64]]:
    """Per-tick inputs from a log: ``(ticks, {input: (ticks, dim)}, reset_ticks)``.

    Raises:
        ConfigError: the log belongs to another network or seed.
    """
    if str(log["network"]) != model.name or int(log["seed"]) != model.seed:
        raise ConfigError(
            f"replay log is for network {str(log['network'])!r} with seed {int(log['seed'])}; "
            f"this build is {model.name!r} with seed {model.seed} (pass --seed to match)"
        )
    ticks = int(log["ticks"])
    resets = np.asarray(log.get("resets", np.zeros(0)), dtype=np.int64)
    inputs: dict[str, npt.NDArray[np.float64]] = {}
    for name, inp in model.inputs.items():
        values = np.tile(inp.default, (ticks, 1))
        at = np.asarray(log.get(f"{name}.ticks", np.zeros(0)), dtype=np.int64)
        vals = np.asarray(log.get(f"{name}.values", np.zeros((0, inp.dim))))
        # A reset forgets the input (it falls back to its default until the next message).
        events = sorted(
            [(int(k), 1, i) for i, k in enumerate(at)] + [(int(k), 0, -1) for k in resets]
        )
        for j, (k, kind, i) in enumerate(events):
            stop = events[j + 1][0] if j + 1 < len(events) else ticks
            values[k:stop] = vals[i] if kind == 1 else inp.default
        inputs[name] = values
    return ticks, inputs, resets
