"""Serving: what a running service does with the world beyond its network and broker.

This layer sits between :mod:`spikestream.runtime` and :mod:`spikestream.cli`: it may use
spec, build, sim, runtime, codec, transport and errors, and nothing here imports the cli.

* :mod:`spikestream.serving.snapshots`: snapshot files, read as hostile data and written
  atomically, inside one folder.
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
