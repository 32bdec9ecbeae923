"""MQTT 5 Maximum Packet Size: the broker drops what no decoder would accept.

Against a real mosquitto (the shared fixture), no mocks: without the CONNECT property
a 17 MiB message was received in full (about 500 MiB of RSS for 200 MiB) before the
decoder refused it as PayloadTooLarge.
"""

from __future__ import annotations

import aiomqtt

from spikestream_client import SpikestreamClient
from spikestream_client.codec import DEFAULT_MAX_FRAME_BYTES
from spikestream_client.transport.values import MAX_PACKET_BYTES
from tests.brokers import Mosquitto
from tests.clients.frames import header, regular_spikes, spike_payload


async def test_the_broker_drops_messages_beyond_the_largest_decoder_limit(
    mosquitto: Mosquitto,
) -> None:
    assert MAX_PACKET_BYTES == DEFAULT_MAX_FRAME_BYTES + 2**16  # the codec's limit, and room
    spikes = regular_spikes(0, 10, 4, 2)
    topic = "spikestream/fake/out/p"
    async with (
        SpikestreamClient(mosquitto.url()) as client,
        aiomqtt.Client(mosquitto.host, mosquitto.port) as pub,
    ):
        stream = client.frames("fake", "p")
        assert await client.sync(timeout=5)
        await pub.publish(topic, b"\x00" * (MAX_PACKET_BYTES + 1), qos=1)
        await pub.publish(topic, spike_payload(header("p", 7, 70), spikes), qos=1)
        frame = await stream.get(timeout=10)
        assert await client.sync(timeout=5)
        stats = client.statistics()
    assert frame.header.seq == 7  # what fits still arrives, in order
    # The oversize message never reached the client, so nothing had to refuse it.
    assert stats.decode_errors == 0
