"""Serving: what a running service does with the world beyond its network and broker.

This layer sits between :mod:`spikestream.runtime` and :mod:`spikestream.cli`: it may use
spec, build, sim, runtime, codec, transport and errors, and nothing here imports the cli.

* :mod:`spikestream.serving.snapshots`: snapshot files, read as hostile data and written
  atomically, inside one folder.
* :mod:`spikestream.serving.text`: value probes as plain text (``--text-rate``).
* :mod:`spikestream.serving.discovery`: Home Assistant discovery configs (``--ha-discovery``).
* :mod:`spikestream.serving.bridges`: both, wired to one service's MQTT link.
"""

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
