"""PNG plots of a run: a spike raster per population plus value traces against time.

Works on the ``.npz`` layout written by ``spikestream run`` and ``spikestream record``.
matplotlib is imported lazily with the non-interactive Agg backend so that importing
spikestream never needs a display.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream_client.errors import ConfigError

#: Above this many neurons a raster shows a random subset (a denser raster is unreadable).
MAX_RASTER_NEURONS = 200
#: Above this many traces a value panel shows the first few only.
MAX_TRACES = 40
#: Keyword arguments for every text artist that shows a name: names come from network
#: files and from frames or ``.npz`` files made elsewhere, so they are drawn literally,
#: never parsed as mathtext (``a$\frac{$`` would make matplotlib raise) or TeX (a
#: user's matplotlibrc may turn on ``text.usetex``).
_LITERAL: dict[str, Any] = {"parse_math": False, "usetex": False}


def _meta(arrays: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    if "meta" in arrays:
        meta: dict[str, Any] = json.loads(str(arrays["meta"]))
        return meta
    pops = sorted(k[: -len(".spikes")] for k in arrays if k.endswith(".spikes"))
    return {"network": "", "populations": pops, "inputs": [], "probes": {}}


def plot_run(arrays: Mapping[str, npt.NDArray[Any]], path: str | Path, *, title: str = "") -> Path:
    """Draw the run in ``arrays`` to the PNG file ``path``.

    Panels, top to bottom: inputs, one spike raster per population, then each value probe
    (``filtered``, ``decoded``, ``voltage``). Gaps recorded as NaN (by ``record``) show as
    breaks in the traces and shaded spans.

    Raises:
        ConfigError: Nothing to draw: no input, spike or value panel, or no rows (a run
            of 0 ticks, or a recording in which no tick was kept).
    """
    t = np.asarray(arrays["t"], dtype=np.float64) if "t" in arrays else None
    if t is None or t.ndim != 1 or t.size == 0:
        # Checked before matplotlib loads: 0 rows made the first value panel's reshape
        # raise a numpy ValueError from deep inside the drawing.
        got = "no 't' array" if t is None else f"'t' of shape {t.shape}"
        raise ConfigError(f"nothing to plot: expected at least one tick (row), got {got}")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    meta = _meta(arrays)
    gaps = np.asarray(arrays["gaps"], dtype=bool) if "gaps" in arrays else None
    panels: list[tuple[str, str]] = [("input", name) for name in meta["inputs"] if name in arrays]
    panels += [("raster", p) for p in meta["populations"] if f"{p}.spikes" in arrays]
    panels += [
        ("values", name)
        for name, kind in meta["probes"].items()
        if kind in ("filtered", "decoded", "voltage", "values") and name in arrays
    ]
    if not panels:
        raise ConfigError("nothing to plot: the run has no inputs, spikes or value probes")
    heights = [2.0 if kind == "raster" else 1.4 for kind, _ in panels]
    fig, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(10, sum(heights) + 0.8), squeeze=False
    )
    rng = np.random.default_rng(0)
    for ax, (kind, name) in zip(axes[:, 0], panels, strict=True):
        data = np.asarray(arrays[name if kind != "raster" else f"{name}.spikes"])
        if kind == "raster":
            n = data.shape[1]
            cols = np.arange(n)
            if n > MAX_RASTER_NEURONS:
                cols = np.sort(rng.choice(n, MAX_RASTER_NEURONS, replace=False))
            ticks, neurons = np.nonzero(data[:, cols])
            ax.scatter(t[ticks], neurons, s=1.0, marker="|", color="k", linewidths=0.5)
            ax.set_ylim(-0.5, len(cols) - 0.5)
            shown = f" ({len(cols)} of {n})" if len(cols) < n else ""
            ax.set_ylabel(f"{name}\nneuron{shown}", **_LITERAL)
        else:
            values = data.reshape(data.shape[0], -1).astype(np.float64)
            ax.plot(t, values[:, :MAX_TRACES], linewidth=0.8)
            label = meta["probes"].get(name, "input")
            ax.set_ylabel(f"{name}\n({label})", **_LITERAL)
        if gaps is not None and gaps.any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], gaps.astype(np.int8), [0]])))
            for start, stop in zip(edges[::2], edges[1::2], strict=True):
                ax.axvspan(t[start], t[min(stop, len(t) - 1)], color="tab:red", alpha=0.2)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title or f"network {meta.get('network', '')}".strip(), **_LITERAL)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
