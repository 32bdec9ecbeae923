"""The QoS 0 PUBLISH packets the adapter packs itself, read back by an independent parser."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream_client.transport.packets import MAX_REMAINING, cork, publish_qos0


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``data[i]``: (value, index after it)."""
    value, shift, start = 0, 0, i
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            assert i - start <= 4
            return value, i
        shift += 7


def _read(packet: bytes, v5: bool) -> tuple[int, bytes, bytes, bytes]:
    """(first byte, topic, properties, payload) of one PUBLISH packet, checking lengths."""
    first = packet[0]
    remaining, i = _varint(packet, 1)
    assert len(packet) - i == remaining
    n = int.from_bytes(packet[i : i + 2], "big")
    topic = packet[i + 2 : i + 2 + n]
    j = i + 2 + n
    props = b""
    if v5:
        length, k = _varint(packet, j)  # the properties' own length
        props = packet[j : k + length]
        j = k + length
    return first, bytes(topic), bytes(props), bytes(packet[j:])


topics = st.text(
    st.characters(blacklist_characters="+#\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
).map(str.encode)


@given(
    topic=topics,
    payload=st.binary(max_size=300)
    | st.sampled_from([b"x" * 127, b"x" * 16_380, b"y" * 2_097_150]),
    retain=st.booleans(),
    props=st.sampled_from([None, b"\x00", b"\x05\x02\x00\x00\x00\x3c"]),
)
def test_a_packed_publish_reads_back(
    topic: bytes, payload: bytes, retain: bool, props: bytes | None
) -> None:
    packet = bytes(publish_qos0(topic, payload, retain, props))
    first, got_topic, got_props, got_payload = _read(packet, props is not None)
    assert first == 0x30 | int(retain)  # PUBLISH, QoS 0, no DUP
    assert got_topic == topic
    assert got_props == (props or b"")
    assert got_payload == payload


@pytest.mark.parametrize("topic", [b"", b"a/+/b", b"a/#", b"x" * 65536])
def test_invalid_topics_are_refused(topic: bytes) -> None:
    with pytest.raises(ValueError, match="invalid publish topic"):
        publish_qos0(topic, b"", False, None)


def test_a_packet_longer_than_mqtt_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="too large for MQTT"):
        publish_qos0(b"t", bytes(MAX_REMAINING - 2), False, None)


def test_cork_sets_and_clears_the_option() -> None:
    with socket.socket() as sock:
        assert cork(sock, True)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
        assert cork(sock, False)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
