"""Incoming messages: QoS 0 PUBLISH packets reach the link without paho's decoding, and
every other kind still arrives through paho; both with all the link passes on."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest

from spikestream_client.transport import MessageMeta
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_qos0_messages_skip_paho_and_all_keep_what_they_carry(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """Only the QoS 1 message goes through paho's own handling; on MQTT 5 the QoS 0
    message's properties are read by the adapter, on 3.1.1 the broker strips them."""
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
            assert await pub.publish(
                "in/expiring", b"e", expiry=60, content_type="a/b", correlation_data=b"\x00c"
            )
            assert await pub.publish("in/acked", b"q", qos=1, content_type="text/plain")
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
        assert meta == MessageMeta(0, False, "a/b", meta.expiry, None, b"\x00c")
    else:
        assert meta == MessageMeta(0, False)
    payload, meta = by_topic["in/acked"]
    assert payload == b"q"
    assert meta == MessageMeta(1, False, "text/plain" if protocol == "5" else None)
    assert len(calls) == 1, calls
