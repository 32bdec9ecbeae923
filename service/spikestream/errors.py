"""The one exception hierarchy of spikestream.

Every error derives from :class:`SpikestreamError` and also from the built-in exception
that matches it, so callers may catch either (``except ValueError`` keeps working).
Messages say what was expected and what arrived; build the message first and pass it as
the single argument.
"""

from __future__ import annotations


class SpikestreamError(Exception):
    """Root of every error spikestream raises on purpose."""


class ConfigError(SpikestreamError, ValueError):
    """A setting (flag, environment variable, settings file) has a bad value."""


class NetworkFileError(ConfigError):
    """A network file is missing, unreadable or invalid.

    The message names the file, the key path, the offending value and what was allowed.
    """


class BuildError(SpikestreamError, ValueError):
    """A valid network description cannot be turned into arrays (e.g. a weight file of the
    wrong shape)."""


class SimulationError(SpikestreamError, RuntimeError):
    """The simulator was driven in a way it does not support (bad input shape, bad state)."""


class CodecError(SpikestreamError, ValueError):
    """A payload or frame cannot be decoded or encoded."""


class PayloadTooLarge(CodecError):
    """A payload was refused before decoding because it exceeds the size limit."""


class TransportError(SpikestreamError, ConnectionError):
    """The MQTT broker cannot be reached, refused us, or dropped the connection."""


class AuthError(TransportError, PermissionError):
    """The broker refused our credentials or an ACL denied an operation."""


class SnapshotError(ConfigError):
    """A snapshot file was refused: unreadable, not a snapshot of this network, malformed,
    too large, or a name or target outside what the snapshot folder allows.

    The message names the file and what was wrong.
    """


class ModelImportError(ConfigError):
    """A Nengo model cannot be imported: the script fails, the network is missing, or an
    object lies outside the supported subset (the message names it and what is supported)."""
