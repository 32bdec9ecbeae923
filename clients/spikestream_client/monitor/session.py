"""What both monitor views share: the options, the connection and the model it feeds.

:func:`open_session` connects to the broker, finds the network (its ``describe``
document says which probes to expect), and subscribes a
:class:`~spikestream_client.monitor.aggregate.MonitorModel` to the network's frames,
stats, events and status; a view then calls :func:`refresh_model` before each redraw and
renders :meth:`MonitorModel.snapshot`. The views (:mod:`.terminal`, :mod:`.web`) import
this module, never each other.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from spikestream_client.client import SpikestreamClient
from spikestream_client.errors import ConfigError
from spikestream_client.monitor.aggregate import MonitorModel
from spikestream_client.tool import find_network, subscribe_frames

__all__ = [
    "MonitorOptions",
    "check_options",
    "connect_model",
    "open_session",
    "refresh_model",
]


@dataclass
class MonitorOptions:
    """Everything ``spikestream monitor`` needs (see its ``--help``)."""

    net: str
    broker: str | None = None
    prefix: str = "spikestream"
    probes: Sequence[str] | None = None
    window: float = 1.0
    refresh: float = 10.0
    bins: int | None = None
    raster_rows: int = 4
    duration: float | None = None
    once: bool = False
    web: int | None = None
    host: str = "127.0.0.1"
    web_allow_origins: Sequence[str] = ()
    width: int | None = None
    wait_net: float = 3.0


def check_options(options: MonitorOptions) -> None:
    """Refuse options no view can use, before anything connects.

    Raises:
        ConfigError: The message names the flag and what arrived.
    """
    for name, value in (("window", options.window), ("refresh", options.refresh)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{name} must be a number > 0, got {value}")
    if options.duration is not None and not options.duration > 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {options.duration}")
    if not 1 <= options.raster_rows <= 64:
        raise ConfigError(f"--raster-rows must be in 1..64, got {options.raster_rows}")
    if options.bins is not None and not 4 <= options.bins <= 400:
        raise ConfigError(f"--bins must be in 4..400, got {options.bins}")


def connect_model(client: SpikestreamClient, model: MonitorModel, options: MonitorOptions) -> None:
    """Subscribe ``model`` to the frames, stats, events and status of ``options.net``."""
    subscribe_frames(client, options.net, options.probes, model.on_frame)
    client.on_stats(options.net, model.on_stats)
    client.on_event(options.net, model.on_event)
    client.status(options.net)


def refresh_model(client: SpikestreamClient, model: MonitorModel, net: str) -> None:
    """Copy the client's connection state and the retained status into ``model``."""
    model.connected = client.connected
    model.on_status(client.status(net).current)


@asynccontextmanager
async def open_session(
    options: MonitorOptions, *, bins: int
) -> AsyncIterator[tuple[SpikestreamClient, MonitorModel]]:
    """Connect, find ``options.net`` and feed a new model from it; closes the client on
    exit.

    Args:
        options: Checked with :func:`check_options` first.
        bins: Time bins of the model's sparklines and rasters.

    Raises:
        ConfigError: Bad options.
        TransportError: No connection to the broker.
        NetworkNotFound: No such network on the broker (after ``options.wait_net`` s).
    """
    check_options(options)
    model = MonitorModel(
        options.net,
        window=options.window,
        bins=bins,
        raster_rows=options.raster_rows,
        probes=set(options.probes) if options.probes else None,
    )
    async with SpikestreamClient(options.broker, prefix=options.prefix, role="monitor") as client:
        found = await find_network(client, options.net, options.wait_net, options.probes)
        if found is not None:
            model.expect({name: p.kind for name, p in found.probes.items()})
        connect_model(client, model, options)
        yield client, model
