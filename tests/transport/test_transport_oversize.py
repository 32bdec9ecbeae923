"""A PUBLISH past the link's ``max_payload`` is read off the socket in chunks and dropped,
never held whole, and still reaches ``on_message``: empty, with ``meta.oversize`` set.

paho reads a packet's whole body before handling it, asking the socket for all of it
at once, so a 32 MiB message cost the reader 32 MiB and more (up to mosquitto's limit of
256 MiB) before any decoder could refuse it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tracemalloc

import pytest

from spikestream_client.codec import DEFAULT_MAX_FRAME_BYTES
from spikestream_client.transport.packets import (
    DEFAULT_MAX_PAYLOAD,
    DRAIN_CHUNK,
    HEAD_ROOM,
)
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker

BIG = 32 * 1024 * 1024

# Published from another process, so that the test's own memory holds the reader alone.
_PUBLISH = """
import sys
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port, qos, user = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
v5 = paho.MQTTv5 if user else paho.MQTTv311
c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=v5)
c.connect("127.0.0.1", port)
c.loop_start()
props = None
if user:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("from", "test")
big = c.publish("in/big", b"\\x01" * int(sys.argv[4]), qos=qos, properties=props)
small = c.publish("in/small", b"ok", qos=qos, properties=props)
big.wait_for_publish(30)
small.wait_for_publish(30)
c.disconnect()
c.loop_stop()
"""


def test_the_default_limit_is_a_frames() -> None:
    assert DEFAULT_MAX_PAYLOAD == DEFAULT_MAX_FRAME_BYTES


@pytest.mark.parametrize(
    ("protocol", "qos", "user"),
    [
        ("3.1.1", 0, False),  # the adapter's own reader
        ("5", 0, False),
        ("5", 0, True),  # a user property: paho's handling, delivered at once
        ("3.1.1", 1, False),  # paho's, with PUBACK
        ("5", 2, False),  # paho's, delivered on PUBREL
    ],
)
async def test_a_publish_past_max_payload_is_dropped_unread(
    mosquitto: Mosquitto, protocol: str, qos: int, user: bool
) -> None:
    inbox = Inbox()
    sub = make_link(
        f"{mosquitto.url()}?protocol={protocol}", "sub", on_message=inbox, max_payload=4096
    )
    sub.subscribe("in/#", qos=qos)
    async with running(sub):
        tracemalloc.start()
        try:
            publisher = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", _PUBLISH, str(mosquitto.port), str(qos), str(int(user)),
                 str(BIG)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert publisher.returncode == 0, publisher.stderr
            await eventually(lambda: len(inbox.items) == 2, within=30)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        stats = sub.statistics()
    (big_topic, big, big_meta), (small_topic, small, small_meta) = inbox.items
    assert (big_topic, big) == ("in/big", b"")
    assert big_meta.oversize == BIG
    assert big_meta.qos == qos
    # The next message arrives whole and is not taken for the dropped one.
    assert (small_topic, small, small_meta.oversize) == ("in/small", b"ok", None)
    assert stats.dropped_unread == 1
    assert stats.messages_in == 2
    # Held at most: the head kept and one chunk (and Python's own overhead).
    assert peak < HEAD_ROOM + DRAIN_CHUNK + 2 * 1024 * 1024, peak


async def test_a_publish_at_the_limit_is_read_whole(mosquitto: Mosquitto) -> None:
    """The limit is on the payload plus HEAD_ROOM: a payload just past max_payload is
    still read, for its decoder to refuse with the size it has."""
    inbox = Inbox()
    pub = make_link(mosquitto.url(), "pub")
    sub = make_link(mosquitto.url(), "sub", on_message=inbox, max_payload=4096)
    sub.subscribe("in/#")
    async with running(pub), running(sub):
        assert await pub.publish("in/edge", b"\x02" * (4096 + HEAD_ROOM - 64))
        await eventually(lambda: len(inbox.items) == 1)
        assert sub.statistics().dropped_unread == 0
    assert inbox.payloads() == [b"\x02" * (4096 + HEAD_ROOM - 64)]
    assert inbox.items[0][2].oversize is None
