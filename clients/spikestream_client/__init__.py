"""Clients for spikestream: an asyncio library and the feed/monitor/record tools.

The library::

    from spikestream_client import SpikestreamClient

    async with SpikestreamClient("mqtt://127.0.0.1:1883") as client:
        async for frame in client.frames("seed", "a_spikes"):
            ...

Frames are decoded by :mod:`spikestream_client.codec`, the decoder the service shares; see
``docs/CLIENTS.md`` for the whole API and the command-line tools.
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
        SpikestreamClient,
        StatusWatcher,
        Subscription,
        client_broker_spec,
        client_broker_specs,
        default_broker,
    )
    from spikestream_client.gaps import Gap, GapKind, GapTracker

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
    "Frame": "spikestream_client.codec",
}


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
    "ClientStatistics",
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
    "SpikestreamClient",
    "StatusWatcher",
    "Subscription",
    "__version__",
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]
