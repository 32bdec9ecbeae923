"""The command-line tools' shared plumbing: stops on signals, the network check and the
``--probe`` subscription, each checked on its own (the tools' tests only see them through
whole tool runs)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal

import aiomqtt
import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client import Frame, SpikestreamClient
from spikestream_client.codec import encode_describe, topics
from spikestream_client.tool import find_network, interruptible_sleep, run_tool, subscribe_frames
from tests.brokers import Mosquitto
from tests.clients.frames import header, spike_payload
from tests.codec.test_codec_describe import document
from tests.serving import NODELAY

# ----------------------------------------------------------------------------- run_tool


def test_run_tool_returns_mains_exit_code() -> None:
    """What ``main`` returns is the tool's exit status, unchanged."""

    async def main(stop: asyncio.Event) -> int:
        return 3

    assert run_tool(main) == 3


def test_the_first_signal_sets_stop_and_the_second_cancels_with_130() -> None:
    """The first SIGINT sets ``stop`` (the tool finishes its work); a second signal
    (SIGTERM here) cancels ``main``, and the tool exits 130."""
    seen: list[str] = []

    async def main(stop: asyncio.Event) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        async with asyncio.timeout(30):  # a guard against hanging, not a measurement
            await stop.wait()
        seen.append("stop set")
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return 0

    assert run_tool(main) == 130
    assert seen == ["stop set", "cancelled"]


def test_one_signal_lets_main_finish_with_its_own_code() -> None:
    """After one SIGTERM, ``main`` keeps running to its end and its code is the exit
    status (the tool publishes its summary and writes its file first)."""

    async def main(stop: asyncio.Event) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(30):
            await stop.wait()
        await asyncio.sleep(0)
        return 0

    assert run_tool(main) == 0


@pytest.mark.parametrize(
    ("level", "expected"),
    [(logging.INFO, logging.WARNING), (logging.DEBUG, logging.DEBUG)],
)
def test_transport_lines_are_quietened_only_at_the_default_level(level: int, expected: int) -> None:
    """At INFO the link's per-attempt reconnect lines drop to warnings; ``--log-level
    debug`` keeps them all."""
    transport = logging.getLogger("spikestream.transport")
    before = transport.level
    transport.setLevel(level)
    try:

        async def main(stop: asyncio.Event) -> int:
            return 0

        run_tool(main)
        assert transport.level == expected
    finally:
        transport.setLevel(before)


# -------------------------------------------------------------------- interruptible_sleep


async def test_interruptible_sleep_says_whether_stop_was_set() -> None:
    """False after a full sleep, True as soon as ``stop`` is set (also for a sleep of
    no time, which returns at once)."""
    stop = asyncio.Event()
    assert await interruptible_sleep(stop, 0.01) is False
    assert await interruptible_sleep(stop, 0) is False
    stop.set()
    assert await interruptible_sleep(stop, 0) is True
    async with asyncio.timeout(30):  # a set stop ends even an hour's sleep
        assert await interruptible_sleep(stop, 3600) is True


async def test_interruptible_sleep_wakes_when_stop_is_set_meanwhile() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)
    async with asyncio.timeout(30):
        assert await interruptible_sleep(stop, 3600) is True


# --------------------------------------------------------- find_network, subscribe_frames


@pytest.mark.parametrize("wait", [0.0, -1.0, math.nan, math.inf])
async def test_find_network_refuses_a_wait_that_is_no_time(wait: float) -> None:
    """``--wait-net`` must be a finite number of seconds > 0; the message names the flag
    and the value. Checked before anything reaches a broker."""
    client = SpikestreamClient("mqtt://127.0.0.1:1")
    with pytest.raises(ConfigError, match=rf"^--wait-net must be .* > 0, got {wait}$"):
        await find_network(client, "arm", wait)


async def _publish_describe(broker: Mosquitto) -> None:
    async with aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY) as pub:
        describe = topics("spikestream", "arm").describe
        await pub.publish(describe, encode_describe(document()), qos=1, retain=True)


@pytest.mark.broker
async def test_find_network_checks_the_probes_against_the_description(
    mosquitto: Mosquitto,
) -> None:
    """A ``--probe`` the description lacks is a ConfigError naming it and the probes
    there are; probes it has (or none asked for) return the description."""
    await _publish_describe(mosquitto)
    async with SpikestreamClient(mosquitto.url()) as client:
        found = await find_network(client, "arm", 5, ["hand"])
        assert found is not None
        assert found.net == "arm"
        assert await find_network(client, "arm", 5, []) is found
        with pytest.raises(
            ConfigError, match=r"^network 'arm' has no probe 'nope'; its probes: a_spikes, hand$"
        ):
            await find_network(client, "arm", 5, ["hand", "nope"])


@pytest.mark.broker
@pytest.mark.parametrize(
    ("probes", "expected"),
    [(["b"], ["b"]), (["b", "b"], ["b"]), ([], ["a", "b"]), (None, ["a", "b"])],
)
async def test_subscribe_frames_follows_the_probe_option(
    mosquitto: Mosquitto, probes: list[str] | None, expected: list[str]
) -> None:
    """``--probe b`` delivers b's frames only, once each even when the flag is repeated
    (``--probe b --probe b`` delivered every frame twice: record skipped each second
    copy as a repeated seq, the monitor counted its spikes twice); no ``--probe`` (None
    or an empty list) delivers every probe's. Frame "a" is published before "b", so
    once "b" arrived, a delivered "a" would have too."""
    got: list[str] = []
    arrived = asyncio.Event()

    def on_frame(frame: Frame) -> None:
        got.append(frame.header.probe)
        if frame.header.probe == "b":
            arrived.set()

    async with SpikestreamClient(mosquitto.url()) as client:
        subscribe_frames(client, "fake", probes, on_frame)
        assert await client.sync(timeout=5)
        out = topics("spikestream", "fake").out
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, socket_options=NODELAY) as pub:
            for probe in ("a", "b"):
                spikes = np.zeros((10, 4), np.bool_)
                await pub.publish(out(probe), spike_payload(header(probe, 0, 0), spikes), qos=1)
        async with asyncio.timeout(10):
            await arrived.wait()
        assert await client.sync(timeout=5)
    assert sorted(got) == expected
