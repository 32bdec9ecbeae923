"""Plumbing shared by the command-line tools: clean stops on Ctrl-C and SIGTERM, the
network check, and the frame subscription of ``--probe``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from spikestream_client.errors import ConfigError

if TYPE_CHECKING:
    from spikestream_client.client import SpikestreamClient
    from spikestream_client.codec import Description
    from spikestream_client.streams import FrameCallback

__all__ = ["find_network", "interruptible_sleep", "run_tool", "subscribe_frames"]


def run_tool(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` in a fresh event loop and return its exit code.

    The first SIGINT (Ctrl-C) or SIGTERM sets ``stop``: the tool finishes what it is
    doing (publishes its summary, writes its file) and returns. A second one cancels
    ``main`` outright, which then exits with status 130.

    At the default log level the link's per-attempt reconnect lines are quietened to
    warnings: a tool reports connection problems itself (``--log-level debug`` shows
    them all).
    """
    transport = logging.getLogger("spikestream.transport")
    if transport.getEffectiveLevel() == logging.INFO:
        transport.setLevel(logging.WARNING)

    async def wrapper() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal() -> None:
            if stop.is_set():
                task.cancel()
            else:
                stop.set()

        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, on_signal)
        try:
            return await main(stop)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(wrapper())
    except asyncio.CancelledError:
        return 130


async def interruptible_sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True if ``stop`` is set."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


async def find_network(
    client: SpikestreamClient,
    net: str,
    wait: float,
    probes: Sequence[str] | None = None,
) -> Description | None:
    """The tools' check that ``net`` exists, from its retained ``describe``/``status``.

    Returns:
        The network's description, or None when only a status exists (an older service).

    Raises:
        NetworkNotFound: Nothing of ``net`` within ``wait`` seconds (one line naming the
            networks that do exist).
        ConfigError: ``wait`` is not > 0, or a ``--probe`` the description lacks.
    """
    if not wait > 0 or wait == float("inf"):
        raise ConfigError(f"--wait-net must be a number of seconds > 0, got {wait}")
    found = await client.find_network(net, timeout=wait)
    if found is not None and probes and (missing := found.missing_probes(probes)):
        raise ConfigError(missing)
    return found


def subscribe_frames(
    client: SpikestreamClient, net: str, probes: Sequence[str] | None, callback: FrameCallback
) -> None:
    """Call ``callback`` for every frame of ``probes`` of ``net`` (every probe when None
    or empty: the tools' ``--probe``, repeatable)."""
    if probes:
        # Once each: a repeated --probe registered the callback twice, and every frame of
        # that probe reached it twice (counted twice, or skipped as a repeated seq).
        for probe in dict.fromkeys(probes):
            client.on_frame(net, probe, callback)
    else:
        client.on_frame(net, None, callback)
