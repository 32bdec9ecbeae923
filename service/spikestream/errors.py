"""The one exception hierarchy of spikestream: the service's errors.

The root, :class:`SpikestreamError`, and the errors a client can meet (settings, codec,
transport) live in :mod:`spikestream_client.errors`, so the client distribution never
imports the service; they are re-exported here. Every error also derives from the
built-in exception that matches it, so callers may catch either (``except ValueError``
keeps working). Messages say what was expected and what arrived.
"""

from __future__ import annotations

from spikestream_client.errors import (
    AuthError,
    CodecError,
    ConfigError,
    PayloadTooLarge,
    SpikestreamError,
    TransportError,
)

__all__ = [
    "AuthError",
    "BuildError",
    "CodecError",
    "ConfigError",
    "ModelImportError",
    "NetworkFileError",
    "PayloadTooLarge",
    "SimulationError",
    "SnapshotError",
    "SpikestreamError",
    "TransportError",
]


class NetworkFileError(ConfigError):
    """A network file is missing, unreadable or invalid.

    The message names the file, the key path, the offending value and what was allowed.
    """


class BuildError(SpikestreamError, ValueError):
    """A valid network description cannot be turned into arrays (e.g. a weight file of the
    wrong shape)."""


class SimulationError(SpikestreamError, RuntimeError):
    """The simulator was driven in a way it does not support (bad input shape, bad state)."""


class SnapshotError(ConfigError):
    """A snapshot file was refused: unreadable, not a snapshot of this network, malformed,
    too large, or a name or target outside what the snapshot folder allows.

    The message names the file and what was wrong.
    """


class ModelImportError(ConfigError):
    """A Nengo model cannot be imported: the script fails, the network is missing, or an
    object lies outside the supported subset (the message names it and what is supported)."""
