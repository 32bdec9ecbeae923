"""The root of spikestream's one exception hierarchy, and the errors a client can meet.

Every error derives from :class:`SpikestreamError` and also from the built-in exception
that matches it, so callers may catch either (``except ValueError`` keeps working).
Messages say what was expected and what arrived; build the message first and pass it as
the single argument.

The service's own errors (bad network files, builds, snapshots) subclass these in
``spikestream.errors``; this module is the root so the client distribution never needs
the service to name an error.
"""

from __future__ import annotations


class SpikestreamError(Exception):
    """Root of every error spikestream raises on purpose."""


class ConfigError(SpikestreamError, ValueError):
    """A setting (flag, environment variable, settings file) has a bad value."""


class CodecError(SpikestreamError, ValueError):
    """A payload or frame cannot be decoded or encoded."""


class PayloadTooLarge(CodecError):
    """A payload was refused before decoding because it exceeds the size limit."""


class TransportError(SpikestreamError, ConnectionError):
    """The MQTT broker cannot be reached, refused us, or dropped the connection."""


class AuthError(TransportError, PermissionError):
    """The broker refused our credentials or an ACL denied an operation."""
