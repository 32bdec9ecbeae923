"""A PUBLISH past the link's ``max_payload`` is read off the socket in chunks and dropped,
never held whole, and still reaches ``on_message``: empty, with ``meta.oversize`` set.

paho reads a packet's whole body before handling it, asking the socket for all of it
at once, so a 32 MiB message cost the reader 32 MiB and more (up to mosquitto's limit of
256 MiB) before any decoder could refuse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tracemalloc

import pytest

from spikestream_client.codec import DEFAULT_MAX_FRAME_BYTES
from spikestream_client.transport.packets import (
    CONTROL_PACKET_LIMIT,
    DEFAULT_MAX_PAYLOAD,
    DRAIN_CHUNK,
    HEAD_ROOM,
)
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, packet, read_packet, running, varint
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker

BIG = 32 * 1024 * 1024

# Published from another process, so that the test's own memory holds the reader alone.
_PUBLISH = """
import sys
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port, qos, user, size = (int(a) for a in sys.argv[1:5])
v5 = paho.MQTTv5 if user else paho.MQTTv311
c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=v5)
c.connect("127.0.0.1", port)
c.loop_start()
props = small_props = None
if user:
    props, small_props = Properties(PacketTypes.PUBLISH), Properties(PacketTypes.PUBLISH)
    # user == 2: a property block of 240 KB, longer than HEAD_ROOM, on a small payload
    props.UserProperty = [("k%d" % i, "v" * 60000) for i in range(4)] if user == 2 else [
        ("from", "test")
    ]
    small_props.UserProperty = ("from", "test")
big = c.publish("in/big", b"\\x01" * size, qos=qos, properties=props)
# At least QoS 1: its PUBACK says the broker has read both, before this process exits
# (a QoS 0 "published" is only written; an exit then may reset the connection first).
small = c.publish("in/small", b"ok", qos=max(qos, 1), properties=small_props)
big.wait_for_publish(30)
small.wait_for_publish(30)
if not (big.is_published() and small.is_published()):
    sys.exit(f"not published within 30 s: {big.rc} {small.rc}")
c.disconnect()
c.loop_stop()
"""


def test_the_default_limit_is_a_frames() -> None:
    assert DEFAULT_MAX_PAYLOAD == DEFAULT_MAX_FRAME_BYTES


@pytest.mark.parametrize(
    ("protocol", "qos", "user", "size"),
    [
        ("3.1.1", 0, 0, BIG),  # the adapter's own reader
        ("5", 0, 0, BIG),
        ("5", 0, 1, BIG),  # a user property: dropped with the rest, the bare packet read here
        ("3.1.1", 1, 0, BIG),  # paho's, with PUBACK
        ("5", 1, 0, BIG),
        ("3.1.1", 2, 0, BIG),  # paho's, delivered on PUBREL
        ("5", 2, 0, BIG),
        # 240 KB of properties on a 64-byte payload: the block itself is cut, yet the
        # message is handed on (and acknowledged), and the connection stays up.
        ("5", 0, 2, 64),
        ("5", 1, 2, 64),
    ],
)
async def test_a_publish_past_max_payload_is_dropped_unread(
    mosquitto: Mosquitto, protocol: str, qos: int, user: int, size: int
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
                [sys.executable, "-c", _PUBLISH, str(mosquitto.port), str(qos), str(user),
                 str(size)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert publisher.returncode == 0, publisher.stderr
            try:
                await eventually(lambda: len(inbox.items) >= 2, within=30)
            except AssertionError as err:  # say what did arrive
                got = [(topic, len(payload), meta) for topic, payload, meta in inbox.items]
                raise AssertionError(f"{err}: got {got}; {sub.statistics()}") from None
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        stats = sub.statistics()
    (big_topic, big, big_meta), (small_topic, small, small_meta) = inbox.items
    assert (big_topic, big) == ("in/big", b"")
    # The message's size: topic (with its length), packet id, properties, payload.
    head = 2 + len("in/big") + (2 if qos else 0)
    assert big_meta.oversize is not None
    props = 250_000 if user else (1 if protocol == "5" else 0)  # MQTT 5: its length
    assert size + head <= big_meta.oversize <= size + head + props
    assert big_meta.qos == qos
    assert big_meta.content_type is None  # its properties were dropped with it
    # The next message arrives whole and is not taken for the dropped one.
    assert (small_topic, small, small_meta.oversize) == ("in/small", b"ok", None)
    assert stats.dropped_unread == 1
    assert stats.messages_in == 2
    assert stats.connects == 1  # no reconnect: the cut packet was still parsed
    # Held at most: the head kept and one chunk (and Python's own overhead).
    assert peak < HEAD_ROOM + DRAIN_CHUNK + 2 * 1024 * 1024, peak


async def test_the_limit_is_the_whole_message_less_head_room(mosquitto: Mosquitto) -> None:
    """A message of exactly max_payload + HEAD_ROOM bytes (topic and payload, MQTT 3.1.1,
    QoS 0) is read whole, for its decoder to refuse by its own limit; one byte more is
    dropped unread."""
    inbox = Inbox()
    pub = make_link(mosquitto.url(), "pub")
    sub = make_link(f"{mosquitto.url()}?protocol=3.1.1", "sub", on_message=inbox, max_payload=4096)
    sub.subscribe("in/#")
    edge = 4096 + HEAD_ROOM - (2 + len("in/edge"))  # the payload that makes the limit
    async with running(pub), running(sub):
        assert await pub.publish("in/edge", b"\x02" * edge)
        assert await pub.publish("in/edge", b"\x02" * (edge + 1))
        await eventually(lambda: len(inbox.items) == 2)
        assert sub.statistics().dropped_unread == 1
    (_, whole, whole_meta), (_, cut, cut_meta) = inbox.items
    assert (len(whole), whole_meta.oversize) == (edge, None)
    assert (cut, cut_meta.oversize) == (b"", 4096 + HEAD_ROOM + 1)


# --------------------------------------------------------------- a hostile broker


async def test_other_packets_are_read_whole_up_to_the_control_packet_limit() -> None:
    """A CONNACK and a SUBACK with 12 KB of properties each (only a broker sends them) are
    the MQTT library's, whole: cut like a PUBLISH, the link never connected. (Past
    CONTROL_PACKET_LIMIT the connection is dropped unread: tests/transport/
    test_hostile_broker.py.)"""
    user = b"".join(b"\x26\x00\x01k" + (6000).to_bytes(2, "big") + b"v" * 6000 for _ in range(2))
    assert 12_000 < len(user) < CONTROL_PACKET_LIMIT - 16
    props = varint(len(user)) + user

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with (
            contextlib.closing(writer),
            contextlib.suppress(asyncio.IncompleteReadError, ConnectionError),
        ):
            await read_packet(reader)  # CONNECT
            writer.write(packet(0x20, b"\x00\x00" + props))  # CONNACK
            while True:
                first, body = await read_packet(reader)
                if first >> 4 == 8:  # SUBSCRIBE: SUBACK, then one message
                    writer.write(packet(0x90, body[:2] + props + b"\x00"))
                    writer.write(packet(0x30, b"\x00\x04in/x\x00ok"))
                await writer.drain()

    server = await asyncio.start_server(broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inbox = Inbox()
    link = make_link(
        f"mqtt://127.0.0.1:{port}?protocol=5", "sub", on_message=inbox, max_payload=4096
    )
    link.subscribe("in/#")
    try:
        async with running(link):
            await inbox.wait_payload("in/x", b"ok")
            assert link.statistics().connects == 1
            assert link.statistics().dropped_unread == 0
    finally:
        server.close()
        await server.wait_closed()
