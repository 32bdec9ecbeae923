"""A PUBLISH with thousands of MQTT 5 properties is read in linear time: paho reads a
property block in time quadratic in its count (it copies what follows each property,
the payload too), so 39,000 empty user properties on one input held a live service's
I/O thread for 2-3 s, and 300 such messages cost it its connection."""

from __future__ import annotations

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker


@pytest.fixture
def parsed_by_paho(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The count of user properties in each property block paho reads in this process
    (the link's reader runs here)."""
    counts: list[int] = []
    unpack = Properties.unpack

    def counting(self: Properties, buffer: bytes) -> tuple[Properties, int]:
        result = unpack(self, buffer)
        counts.append(len(getattr(self, "UserProperty", [])))
        return result  # type: ignore[no-any-return]

    monkeypatch.setattr(Properties, "unpack", counting)
    return counts


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_thousands_of_user_properties_are_dropped_before_paho_reads_them(
    mosquitto: Mosquitto, parsed_by_paho: list[int], qos: int
) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("in/#", qos=qos)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("", "")] * 20_000
    props.MessageExpiryInterval = 60
    props.ResponseTopic = "reply/here"
    props.CorrelationData = b"\x00\x01request"
    props.ContentType = "text/plain"
    async with (
        running(sub),
        aiomqtt.Client(mosquitto.host, mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5) as pub,
    ):
        await pub.publish("in/u", b"0.5", qos=qos, properties=props)
        await pub.publish("in/v", b"0.25", qos=qos)  # the next message is unharmed
        await eventually(lambda: len(inbox.items) >= 2, within=20)
    (topic, payload, meta), (after, after_payload, _) = inbox.items
    assert (topic, payload, after, after_payload) == ("in/u", b"0.5", "in/v", b"0.25")
    # What the link passes on is kept: the broker may have counted a second off expiry.
    assert meta.qos == qos
    assert meta.expiry is not None
    assert 58 <= meta.expiry <= 60
    assert (meta.response_topic, meta.correlation_data, meta.content_type) == (
        "reply/here",
        b"\x00\x01request",
        "text/plain",
    )
    assert max(parsed_by_paho, default=0) == 0, "paho read the user properties"
