"""spikestream: a spiking neural network simulated in real time and streamed over MQTT.

This is the service distribution. Its package follows the data flow, and each layer
imports only the layers before it::

    errors -> spec -> build -> sim -> runtime -> serving -> cli

``spec`` describes a network (frozen pydantic models, no arrays), ``build`` turns the
description into arrays allocated once, ``sim`` steps pure in-place kernels through one
compiled program per tick, ``runtime`` paces ticks to the wall clock and runs offline,
``serving`` is the real-time service (settings, snapshot files, events, metrics,
``describe``), ``transport`` holds the embedded broker, and ``cli`` only parses flags and
dispatches.

The wire protocol (``spikestream_client.codec``), the MQTT link
(``spikestream_client.transport``, the only code importing aiomqtt), the root of the
error hierarchy and the ``spikestream`` command itself belong to the client
distribution, ``spikestream-client``, which the service imports and which never imports
the service.
"""

from spikestream.errors import (
    AuthError,
    BuildError,
    CodecError,
    ConfigError,
    NetworkFileError,
    PayloadTooLarge,
    SimulationError,
    SpikestreamError,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BuildError",
    "CodecError",
    "ConfigError",
    "NetworkFileError",
    "PayloadTooLarge",
    "SimulationError",
    "SpikestreamError",
    "TransportError",
    "__version__",
]
