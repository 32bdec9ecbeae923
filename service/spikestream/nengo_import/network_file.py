"""Importing a model into a network file: the entry points of :mod:`spikestream.nengo_import`."""

from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spikestream.build import build
from spikestream.errors import BuildError, ConfigError, ModelImportError
from spikestream.nengo_import.naming import _one_line, describe, name_addresses
from spikestream.nengo_import.objects import _Import
from spikestream.nengo_import.script import (
    build_nengo_model,
    import_nengo,
    load_script_network,
    split_source,
)
from spikestream.signals import signal_values
from spikestream.spec import MIN_DT, NetworkSpec, load_network
from spikestream_client.files import same_file

# A key of the network file in a refusal: ``populations.a``, ``inputs.u``, ``probes.p``,
# ``connections[3]``.
_KEY = re.compile(r"\b(populations|inputs|probes)\.[A-Za-z0-9_-]+|\bconnections\[\d+\]")


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
    # Absolute before the script runs: a script that changes folder must not move --out.
    out = Path(out).absolute()
    if same_file(out, script):
        raise ConfigError(
            f"--out {str(out)!r} is the model script itself; expected another path (the "
            "network file would overwrite the script)"
        )
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
        text = name_addresses(f"{type(err).__name__}: {err}", variables or {})
        raise ModelImportError(_one_line(f"{source}: Nengo could not build it: {text}")) from None
    out_path = Path(out)
    folder = out_path.parent / f"{out_path.stem}.arrays"
    _check_out(out_path, folder)  # before the import's own work and any writing
    job = _Import(nengo, net, built, out_path, dt, sample_duration, timing)
    variables = variables or {}
    text = job.document(variables, source)
    _write_atomically(job, text, source, variables)
    return load_network(out_path)


def _write_atomically(job: _Import, text: str, source: str, variables: dict[int, str]) -> None:
    """Write the network file and its arrays to a temporary sibling folder, check that
    spikestream loads and builds them (as ``run`` would), then move them into place. A
    failure (a refusal, a full disk) leaves a previous import as it was.

    Raises:
        ModelImportError: spikestream refuses the written network (naming the object).
        ConfigError: the files cannot be written.
    """
    out = job.out
    folder = out.parent / f"{out.stem}.arrays"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.stem}.import-", dir=out.parent))
    except OSError as err:  # a permission, a read-only folder: one line naming the path
        raise ConfigError(f"--out {str(out)!r}: cannot write it: {err}") from None
    try:
        try:
            new_out = staging / out.name
            new_folder = staging / folder.name
            new_folder.mkdir()
            for rel, arr in job.arrays.items():
                np.save(staging / rel, arr)
            new_out.write_text(text, encoding="utf-8")
        except OSError as err:  # a full disk, a permission: one line naming the path
            raise ConfigError(f"--out {str(out)!r}: cannot write it: {err}") from None
        _validate(job, new_out, source, variables, staging)
        try:
            _move_into_place(new_out, new_folder, out, folder)
        except OSError as err:
            raise ConfigError(f"--out {str(out)!r}: cannot write it: {err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _validate(
    job: _Import, path: Path, source: str, variables: dict[int, str], staging: Path
) -> None:
    """Load and build the written network as ``run`` does and read every input's signal:
    an import that exits 0 gives a file ``run`` takes. A refusal becomes one line naming
    the Nengo object behind the key it names, and the final paths, not the staging ones."""
    try:
        spec = load_network(path)
        build(spec)
        for name in spec.inputs:
            signal_values(spec, name, np.zeros(1))
    except (ConfigError, BuildError) as err:
        # One line: a file with several errors lists them on lines of their own.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        text = "; ".join(lines).replace(str(staging), str(job.out.parent))
        found = _KEY.search(text)
        obj = job.origins.get(found.group(0)) if found else None
        who = describe(obj, variables) if obj is not None else source
        raise ModelImportError(
            f"{who}: spikestream refuses the imported network: {name_addresses(text, variables)}"
        ) from None


def _move_into_place(new_out: Path, new_folder: Path, out: Path, folder: Path) -> None:
    """Replace ``out`` and the arrays in ``folder`` with the validated new ones. Each move
    is an atomic rename on one file system; the network file goes last, so until then it
    reads the arrays it was written with or, file by file, their validated successors.
    Files in ``folder`` that are not ``.npy`` are the user's and stay."""
    stale: list[Path] = []
    if not folder.exists():
        new_folder.rename(folder)
    else:
        fresh = {p.name for p in new_folder.glob("*.npy")}
        # A previous import's arrays (nothing else) that the new one does not have: its
        # network file reads them until it is replaced, so they go after it.
        stale = [old for old in folder.glob("*.npy") if old.name not in fresh]
        for name in sorted(fresh):
            os.replace(new_folder / name, folder / name)
    os.replace(new_out, out)
    for old in stale:
        old.unlink(missing_ok=True)


def _check_out(out: Path, folder: Path) -> None:
    """Refuse an ``--out`` that cannot be written as a network file beside its arrays'
    folder: a folder itself, a path under a file, or an arrays' folder that is a file.
    Missing folders on the way are made when the files are written."""
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a folder; expected a network file path")
    if out.exists() and not out.is_file():  # os.replace would put a file in its place
        raise ConfigError(
            f"--out {str(out)!r} exists and is not a regular file (a device, FIFO or "
            "socket); expected a network file path"
        )
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


def import_model_to_temp(path: str | Path, *, sample_duration: float = 10.0) -> NetworkSpec:
    """The Nengo model script ``path`` (``MODEL.py[:NAME]``) imported into a temporary
    folder that lives as long as the process (``sample_duration``: seconds of each
    function-of-t input sampled); see
    :func:`~spikestream.nengo_import.sources.load_network_or_model`."""
    if not _TEMP_DIRS:
        atexit.register(_clean_temp_dirs)
    folder = tempfile.mkdtemp(prefix="spikestream-import-")
    _TEMP_DIRS.append(folder)
    script, _ = split_source(str(path))
    return import_model(path, Path(folder) / f"{script.stem}.toml", sample_duration=sample_duration)
