"""spikestream: a spiking neural network simulated in real time and streamed over MQTT.

The package follows the data flow, and each layer imports only the layers before it::

    errors -> spec -> build -> sim -> runtime -> transport -> codec -> cli

``spec`` describes a network (frozen pydantic models, no arrays), ``build`` turns the
description into arrays allocated once, ``sim`` steps pure in-place kernels, ``runtime``
paces ticks to the wall clock, ``transport`` moves bytes over MQTT (the only module that
imports aiomqtt), ``codec`` turns frames and payloads into bytes and back, and ``cli``
wires them together.
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
