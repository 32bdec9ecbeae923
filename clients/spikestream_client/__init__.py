"""spikestream-client: the wire protocol, the MQTT transport, a client library and tools.

This distribution is what a client needs; the service distribution (``spikestream``)
imports it, and nothing here imports the service. Its layers, each importing only those
before it:

* :mod:`~spikestream_client.errors` (the root of spikestream's exception hierarchy) and
  :mod:`~spikestream_client.names` (the naming rule);
* :mod:`~spikestream_client.codec`: the wire protocol (frames, inputs, control, events,
  ``describe``) and :class:`~spikestream_client.codec.Topics`; numpy and msgpack only;
* :mod:`~spikestream_client.aio` (``first_of``) and :mod:`~spikestream_client.transport`:
  broker URLs and the self-healing MQTT link, the only code that imports aiomqtt or
  paho-mqtt (their private names only in ``transport/aiomqtt_adapter.py``);
* the library: :mod:`~spikestream_client.client` (the connection and control),
  :mod:`~spikestream_client.streams`, :mod:`~spikestream_client.dispatch`,
  :mod:`~spikestream_client.brokers`, :mod:`~spikestream_client.gaps`;
* files: :mod:`~spikestream_client.npz` (the one ``.npz`` writer, shared with
  ``spikestream run``), :mod:`~spikestream_client.recorder` (frames to a recording's
  arrays, without a connection) and :mod:`~spikestream_client.plotting` (matplotlib,
  optional);
* the tools: ``feed``, ``record``, ``ls`` and the :mod:`~spikestream_client.monitor`
  package (session, terminal, web, aggregation);
* :mod:`~spikestream_client.cli`: the ``spikestream`` command, which also offers the
  subcommands other distributions register in the ``spikestream.commands`` entry-point
  group (the service's ``run``, ``serve`` and ``import``).

The library::

    from spikestream_client import SpikestreamClient

    async with SpikestreamClient("mqtt://127.0.0.1:1883") as client:
        async for frame in client.frames("seed", "a_spikes"):
            ...

See ``docs/CLIENTS.md`` for the whole API and the command-line tools.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikestream_client.client import (
        DEFAULT_BROKER,
        ENV_BROKER,
        ClientStatistics,
        ControlRejected,
        ControlReply,
        ControlTimeout,
        EventStream,
        Frame,
        FrameStream,
        NetworkNotFound,
        ProbeNotFound,
        SpikestreamClient,
        StatusWatcher,
        Subscription,
        client_broker_spec,
        client_broker_specs,
        default_broker,
    )
    from spikestream_client.codec import SpikeFrame, ValueFrame
    from spikestream_client.gaps import Gap, GapKind, GapTracker

# The errors a client catches: a light module (no numpy, no MQTT), imported at once.
from spikestream_client.errors import (
    AuthError,
    CodecError,
    ConfigError,
    SpikestreamError,
    TransportError,
)

__version__ = "0.1.0"

# The names below load on first use (PEP 562), so importing a light part of the
# distribution (``spikestream_client.codec`` in the service, the ``spikestream`` command's
# dispatcher) does not import aiomqtt with the client library.
_LAZY = {
    **dict.fromkeys(("Gap", "GapKind", "GapTracker"), "spikestream_client.gaps"),
    **dict.fromkeys(
        ("EventStream", "FrameStream", "StatusWatcher", "Subscription"),
        "spikestream_client.streams",
    ),
    **dict.fromkeys(("Frame", "SpikeFrame", "ValueFrame"), "spikestream_client.codec"),
}

# Type checkers see the imports above only: a module-level __getattr__ would tell mypy
# that every name exists (as Any), so a misspelt or missing one would pass --strict.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in __all__ and name != "__version__":
            module = importlib.import_module(_LAZY.get(name, "spikestream_client.client"))
            value = getattr(module, name)
            globals()[name] = value
            return value
        raise AttributeError(f"module 'spikestream_client' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BROKER",
    "ENV_BROKER",
    "AuthError",
    "ClientStatistics",
    "CodecError",
    "ConfigError",
    "ControlRejected",
    "ControlReply",
    "ControlTimeout",
    "EventStream",
    "Frame",
    "FrameStream",
    "Gap",
    "GapKind",
    "GapTracker",
    "NetworkNotFound",
    "ProbeNotFound",
    "SpikeFrame",
    "SpikestreamClient",
    "SpikestreamError",
    "StatusWatcher",
    "Subscription",
    "TransportError",
    "ValueFrame",
    "__version__",
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]
