"""Serving: the real-time service, and what it does with the world beyond its network.

This layer sits between :mod:`spikestream.runtime` and :mod:`spikestream.cli`: it may use
spec, build, sim, runtime and the client distribution (codec, transport, errors), and
nothing here imports the cli.

* :mod:`spikestream.serving.settings`: the ``serve`` settings, declared once; the flags,
  ``SPIKESTREAM_*`` variables and settings-file keys derive from them.
* :mod:`spikestream.serving.serve`: one process serving several networks.
* :mod:`spikestream.serving.service`: one network over one MQTT connection.
* :mod:`spikestream.serving.events`: events, rate-limited and queued for the link.
* :mod:`spikestream.serving.statistics`: the one statistics snapshot and the ``stats``
  payload; :mod:`spikestream.serving.metrics` exports the same snapshot to Prometheus.

* :mod:`spikestream.serving.snapshots`: snapshot files, read as hostile data and written
  atomically, inside one folder.
* :mod:`spikestream.serving.text`: value probes as plain text (``--text-rate``).
* :mod:`spikestream.serving.discovery`: Home Assistant discovery configs (``--ha-discovery``).
* :mod:`spikestream.serving.bridges`: both, wired to one service's MQTT link.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikestream.serving.snapshots import (
        FORMAT,
        Member,
        SnapshotFolder,
        default_snapshot_dir,
        read_snapshot,
        read_snapshot_file,
        snapshot_layout,
    )

__all__ = [
    "FORMAT",
    "Member",
    "SnapshotFolder",
    "default_snapshot_dir",
    "read_snapshot",
    "read_snapshot_file",
    "snapshot_layout",
]

#: The snapshot names above load their module on first use (PEP 562): ``serve --help``
#: needs only :mod:`spikestream.serving.settings`, and the snapshot module pulls in the
#: network-file schema and the simulator.
_LAZY = frozenset(__all__)


# Type checkers see the imports above only: a module-level __getattr__ would tell mypy
# that every name exists (as Any), so a misspelt or missing one would pass --strict.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.snapshots"), name)
        globals()[name] = value  # found directly from now on
        return value
