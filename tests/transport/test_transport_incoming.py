"""Incoming messages: plain QoS 0 PUBLISH packets reach the link without paho's decoding,
and every other kind still arrives through paho with all it carries."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest

from spikestream_client.transport import MessageMeta
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker


@pytest.mark.parametrize(("protocol", "through_paho"), [("5", 2), ("3.1.1", 1)])
async def test_plain_messages_skip_paho_and_the_rest_keep_what_they_carry(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, protocol: str, through_paho: int
) -> None:
    """On MQTT 5 a message with properties and a QoS 1 message go through paho's own
    handling; on 3.1.1 the broker strips the properties, so only the QoS 1 one does."""
    calls: list[bytes] = []
    handle = paho.Client._handle_publish

    def counted(client: paho.Client) -> object:
        calls.append(bytes(client._in_packet["packet"]))
        return handle(client)

    monkeypatch.setattr(paho.Client, "_handle_publish", counted)
    inbox = Inbox()
    pub = make_link(mosquitto.url(), "pub")
    sub = make_link(f"{mosquitto.url()}?protocol={protocol}", "sub", on_message=inbox)
    sub.subscribe("in/#", qos=1)
    async with running(pub):
        assert await pub.publish("in/kept", b"retained", retain=True)
        async with running(sub):
            await inbox.wait_payload("in/kept", b"retained")
            for i in range(3):
                assert await pub.publish("in/plain", bytes([0x91, 0xCB, i]))
            assert await pub.publish("in/expiring", b"e", expiry=60)
            assert await pub.publish("in/acked", b"q", qos=1)
            await eventually(lambda: len(inbox.items) == 6)
            assert sub.statistics().messages_in == 6
            assert sub.statistics().callback_errors == 0
        assert await pub.publish("in/kept", b"", retain=True)  # clear it
    by_topic = {topic: (payload, meta) for topic, payload, meta in inbox.items}
    assert by_topic["in/kept"] == (b"retained", MessageMeta(0, True))
    assert inbox.payloads("in/plain") == [bytes([0x91, 0xCB, i]) for i in range(3)]
    assert all(type(p) is bytes for p in inbox.payloads())
    assert by_topic["in/plain"][1] == MessageMeta(0, False)
    payload, meta = by_topic["in/expiring"]
    assert payload == b"e"
    if protocol == "5":
        assert meta.expiry is not None
        assert 55 <= meta.expiry <= 60
    else:
        assert meta == MessageMeta(0, False)
    assert by_topic["in/acked"][0] == b"q"
    assert by_topic["in/acked"][1].qos == 1
    assert len(calls) == through_paho, calls
