"""Importing a model into a network file: the entry points of :mod:`spikestream.nengo_import`."""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikestream.errors import ConfigError, ModelImportError
from spikestream.nengo_import.naming import _one_line
from spikestream.nengo_import.objects import _Import
from spikestream.nengo_import.script import (
    build_nengo_model,
    import_nengo,
    is_model_script,
    load_script_network,
    split_source,
)
from spikestream.spec import MIN_DT, NetworkSpec, load_network


def import_model(
    source: str | Path,
    out: str | Path,
    *,
    dt: float = 0.001,
    sample_duration: float = 10.0,
    timing: str = "nengo",
) -> NetworkSpec:
    """Import ``MODEL.py[:NAME]`` into the network file ``out`` (plus its side files) and
    return the validated spec.

    Args:
        source: the script, optionally with ``:NAME`` (the variable holding the network).
        out: the ``.toml`` file to write; side files go to ``<stem>.arrays/`` next to it.
        dt: the tick length (s) Nengo builds with and the network file gets.
        sample_duration: seconds of each callable input node sampled as its offline signal.
        timing: ``"nengo"`` (every filtered connection delayed one tick, as in Nengo) or
            ``"spikestream"``.

    Raises:
        ConfigError: Nengo is not installed (the message says how to install it).
        ModelImportError: the script fails or uses something outside the supported subset.
    """
    import_nengo()
    script, variable = split_source(str(source))
    net, namespace = load_script_network(script, variable)
    variables: dict[int, str] = {}
    for key, value in namespace.items():
        if not key.startswith("_"):
            variables.setdefault(id(value), key)
    return import_network(
        net,
        out,
        dt=dt,
        sample_duration=sample_duration,
        timing=timing,
        variables=variables,
        source=f"{script.name}:{variable}",
    )


def import_network(
    net: Any,
    out: str | Path,
    *,
    dt: float = 0.001,
    sample_duration: float = 10.0,
    timing: str = "nengo",
    variables: dict[int, str] | None = None,
    source: str = "a nengo.Network",
    built: Any = None,
) -> NetworkSpec:
    """Import the ``nengo.Network`` ``net`` (see :func:`import_model`); ``variables`` maps
    ``id(object)`` to the script variable naming it (for unlabelled objects). ``built`` is
    a ``nengo.builder.Model`` that already built ``net`` with this ``dt`` (to share one
    build with a ``nengo.Simulator``); by default the network is built here."""
    nengo = import_nengo()
    if not (math.isfinite(dt) and MIN_DT <= dt <= 1):
        raise ConfigError(f"--dt must be in [{MIN_DT:g}, 1] seconds; got {dt}")
    if not (math.isfinite(sample_duration) and sample_duration > 0):
        raise ConfigError(f"--sample-duration must be > 0 seconds; got {sample_duration}")
    if timing not in ("nengo", "spikestream"):
        raise ConfigError(f"timing {timing!r} is not allowed; expected nengo or spikestream")
    try:
        if built is None:
            built = build_nengo_model(net, dt)
        elif built.dt != dt:
            raise ConfigError(f"the given Nengo build has dt = {built.dt}; expected {dt}")
    except ConfigError:
        raise
    except Exception as err:  # Nengo's builder on the user's model: one line
        raise ModelImportError(
            _one_line(f"{source}: Nengo could not build it: {type(err).__name__}: {err}")
        ) from None
    out_path = Path(out)
    folder = out_path.parent / f"{out_path.stem}.arrays"
    _check_out(out_path, folder)  # before the import's own work and any writing
    job = _Import(nengo, net, built, out_path, dt, sample_duration, timing)
    text = job.document(variables or {}, source)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.npy"):  # a previous import's arrays; nothing else is touched
            old.unlink()
        for rel, arr in job.arrays.items():
            np.save(out_path.parent / rel, arr)
        out_path.write_text(text, encoding="utf-8")
    except OSError as err:  # a full disk, a permission: one line naming the path
        raise ConfigError(f"--out {str(out_path)!r}: cannot write it: {err}") from None
    return load_network(out_path)


def _check_out(out: Path, folder: Path) -> None:
    """Refuse an ``--out`` that cannot be written as a network file beside its arrays'
    folder: a folder itself, a path under a file, or an arrays' folder that is a file.
    Missing folders on the way are made when the files are written."""
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a folder; expected a network file path")
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():  # missing folders are made; one that is a file cannot be
        raise ConfigError(
            f"--out {str(out)!r}: {str(existing)!r} is not a folder; expected a path in one"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {str(out)!r}: its arrays go in {str(folder)!r}, which is not a folder"
        )


_TEMP_DIRS: list[str] = []


def _clean_temp_dirs() -> None:
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def load_network_or_model(path: str | Path, *, sample_duration: float = 10.0) -> NetworkSpec:
    """A network file, or a Nengo model script (``MODEL.py[:NAME]``) imported into a
    temporary folder that lives as long as the process (``sample_duration``: seconds of
    each function-of-t input sampled). ``run`` and ``serve`` use this."""
    if not is_model_script(path):
        return load_network(path)
    if not _TEMP_DIRS:
        atexit.register(_clean_temp_dirs)
    folder = tempfile.mkdtemp(prefix="spikestream-import-")
    _TEMP_DIRS.append(folder)
    script, _ = split_source(str(path))
    return import_model(path, Path(folder) / f"{script.stem}.toml", sample_duration=sample_duration)
