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
from typing import Final

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


#: Redraws per second ``--refresh`` allows.
MIN_REFRESH: Final = 0.1
MAX_REFRESH: Final = 60.0
#: Columns ``--width`` allows: the narrowest view that still shows a probe's name and its
#: figures, and a bound on the work of one line.
MIN_WIDTH: Final = 40
MAX_WIDTH: Final = 1000


def check_options(options: MonitorOptions) -> None:
    """Refuse options no view can use, before anything connects.

    Raises:
        ConfigError: The message names the flag and what arrived.
    """
    if not (math.isfinite(options.window) and options.window > 0):
        raise ConfigError(f"--window must be a number > 0, got {options.window}")
    # 1e9 redraws a second kept a core busy; 1e-9 never redrew.
    if not MIN_REFRESH <= options.refresh <= MAX_REFRESH:
        raise ConfigError(
            f"--refresh must be in {MIN_REFRESH:g}..{MAX_REFRESH:g} redraws per second, got "
            f"{options.refresh}"
        )
    # Width 0 drew nothing at all (and exited 0); a few columns drew garbage.
    if options.width is not None and not MIN_WIDTH <= options.width <= MAX_WIDTH:
        bounds = f"{MIN_WIDTH}..{MAX_WIDTH}"
        raise ConfigError(f"--width must be in {bounds} columns, got {options.width}")
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
