"""``spikestream monitor``: live views of a running network.

* :mod:`.aggregate`: the model, per-probe aggregates over a sliding window, cheap enough
  for thousands of frames per second (no I/O);
* :mod:`.rings`: each probe's window as ring buffers, and the memory budget all probes'
  rings share (128 MiB);
* :mod:`.session`: the options, and the connection that feeds the model (shared);
* :mod:`.terminal`: the terminal view (rich);
* :mod:`.web`: the browser view (``--web PORT``: a page and a WebSocket).

The views import the session and the model, never each other; :func:`run` picks one.
"""

from __future__ import annotations

import asyncio

from spikestream_client.monitor.session import MonitorOptions
from spikestream_client.tool import run_tool

__all__ = ["MonitorOptions", "main", "run"]


async def run(options: MonitorOptions, stop: asyncio.Event) -> int:
    """Run the browser view with ``--web``, else the terminal view, until ``--duration``,
    ``--once`` or Ctrl-C; returns the exit code."""
    # Each view imports its own library (websockets, rich) only when it is the one used.
    if options.web is not None:
        from spikestream_client.monitor.web import run_web

        return await run_web(options, stop)
    from spikestream_client.monitor.terminal import run_terminal

    return await run_terminal(options, stop)


def main(options: MonitorOptions) -> int:
    """Run the monitor; returns the exit code."""
    return run_tool(lambda stop: run(options, stop))
