"""Clients for spikestream: an asyncio library and the feed/monitor/record tools.

The library::

    from spikestream_client import SpikestreamClient

    async with SpikestreamClient("mqtt://127.0.0.1:1883") as client:
        async for frame in client.frames("seed", "a_spikes"):
            ...

Frames are decoded by :mod:`spikestream.codec`, the decoder the service shares; see
``docs/CLIENTS.md`` for the whole API and the command-line tools.
"""

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
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]
