"""A broker's packet limit: mosquitto's ``max_packet_size``, named to an MQTT 5 client in
its CONNACK as Maximum Packet Size, at which it closes the connection of a client that
sends a larger packet. The link sent such a message, lost the connection, and sent it
again first on the next one: a loop that kept a service offline. It now never sends
one: it is refused, counted in ``publish_too_large`` and logged once per topic, and the
connection stays up."""

from __future__ import annotations

import logging

import pytest

from spikestream_client.transport.packets import publish_size
from tests.brokers import Mosquitto, MosquittoFactory
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker

LIMIT = 10_000


@pytest.fixture
def small_packets(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A mosquitto that takes packets of at most LIMIT bytes."""
    return mosquitto_factory(extra_config=f"max_packet_size {LIMIT}\n")


def test_the_size_of_a_publish_counts_every_byte() -> None:
    # 1 + remaining length + (2 + topic) + properties (varint + block) + payload.
    assert publish_size(3, 10, 0, None) == 1 + 1 + 2 + 3 + 10
    assert publish_size(3, 10, 1, 0) == 1 + 1 + 2 + 3 + 2 + 1 + 10
    assert publish_size(1, 200, 0, 27) == 1 + 2 + 2 + 1 + 1 + 27 + 200  # remaining 231
    assert publish_size(1, 20_000, 0, None) == 1 + 3 + 2 + 1 + 20_000


async def test_a_message_past_the_brokers_limit_is_refused_and_the_link_stays_up(
    small_packets: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    inbox = Inbox()
    sub = make_link(small_packets.url(), "sub", on_message=inbox)
    sub.subscribe("pl/#")
    pub = make_link(small_packets.url(), "pub")
    async with running(sub), running(pub):
        assert pub.packet_limit == LIMIT
        room = pub.payload_limit("pl/f", content_type="application/msgpack", expiry=60)
        assert room is not None
        # Exactly the largest: topic "pl/f" (4), content type (3 + 19) and expiry (5).
        assert publish_size(4, room, 0, 27) <= LIMIT < publish_size(4, room + 1, 0, 27)
        # The largest payload that fits goes; one byte more would close the connection.
        fits = b"\x01" * room
        msgpack = "application/msgpack"
        assert pub.publish_frames([("pl/f", fits)], content_type=msgpack, expiry=60) == 1
        assert not pub.fits("pl/f", room + 1, content_type=msgpack, expiry=60)  # counted
        too_big = b"\x02" * (LIMIT + 1)
        frames = [("pl/f", b"a"), ("pl/f", too_big), ("pl/f", b"c")]
        # The link stops before the packet the broker would disconnect at.
        assert pub.publish_frames(frames, content_type=msgpack) == 1
        assert not pub.publish_nowait("pl/n", too_big)
        assert not await pub.publish("pl/q", too_big, qos=1)
        assert await pub.publish("pl/after", b"still up", qos=1)
        await inbox.wait_payload("pl/after", b"still up")
        await eventually(lambda: len(inbox.payloads("pl/f")) == 2)
        assert inbox.payloads("pl/f") == [fits, b"a"]
        stats = pub.statistics()
        assert stats.publish_too_large == 4
        assert stats.connects == 1  # never disconnected
        assert "pl/n" not in [t for t, _, _ in inbox.items]
    warned = [r.getMessage() for r in caplog.records if "not sent: a message" in r.getMessage()]
    assert len(warned) == 3  # once per topic: pl/f, pl/n, pl/q
    assert f"past the {LIMIT} bytes broker" in warned[0]


async def test_a_311_session_is_told_no_limit(small_packets: Mosquitto) -> None:
    pub = make_link(small_packets.url() + "?protocol=3.1.1", "pub311")
    async with running(pub):
        assert pub.protocol == "3.1.1"
        assert pub.packet_limit is None
        assert pub.payload_limit("pl/f") is None
