"""The QoS 0 PUBLISH packets the adapter packs itself, read back by an independent parser;
and the reader of plain incoming PUBLISH packets, checked against the packer."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream_client.transport.packets import (
    MAX_REMAINING,
    cork,
    publish_qos0,
    read_plain_publish,
)


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


def _split(packet: bytes) -> tuple[int, bytes]:
    """(first byte, body after the fixed header), as paho hands a packet to its handler."""
    _, i = _varint(packet, 1)
    return packet[0], packet[i:]


@given(
    topic=topics,
    payload=st.binary(max_size=300) | st.sampled_from([b"x" * 16_380]),
    retain=st.booleans(),
    v5=st.booleans(),
)
def test_a_plain_publish_reads_back(topic: bytes, payload: bytes, retain: bool, v5: bool) -> None:
    first, body = _split(bytes(publish_qos0(topic, payload, retain, b"\x00" if v5 else None)))
    got = read_plain_publish(first, bytearray(body), v5)
    assert got == (topic.decode("utf-8"), payload, retain)
    assert type(got[1]) is bytes  # the link's callbacks are promised bytes


@given(topic=topics, payload=st.binary(max_size=40))
def test_a_publish_with_properties_is_left_to_the_library(topic: bytes, payload: bytes) -> None:
    first, body = _split(bytes(publish_qos0(topic, payload, False, b"\x05\x02\x00\x00\x00\x3c")))
    assert read_plain_publish(first, body, True) is None
    # Read as MQTT 3.1.1 the same bytes are a plain packet whose payload starts with
    # the property bytes: the protocol decides, not a guess.
    assert read_plain_publish(first, body, False) == (
        topic.decode("utf-8"),
        b"\x05\x02\x00\x00\x00\x3c" + payload,
        False,
    )


@pytest.mark.parametrize(
    ("first", "body", "why"),
    [
        (0x32, b"\x00\x01t\x00\x07\x00x", "QoS 1"),
        (0x34, b"\x00\x01t\x00\x07\x00x", "QoS 2"),
        (0x20, b"\x00\x00", "a CONNACK"),
        (0x30, b"\x00\x00\x00x", "an empty topic (a topic alias)"),
        (0x30, b"\x00\x05ab", "a topic longer than the packet"),
        (0x30, b"\x00\x02ab", "no property length"),
        (0x30, b"\x00", "a packet shorter than a topic length"),
        (0x30, b"\x00\x02\xff\xfe\x00x", "a topic that is not UTF-8"),
    ],
)
def test_anything_but_a_plain_publish_is_left_to_the_library(
    first: int, body: bytes, why: str
) -> None:
    assert read_plain_publish(first, body, True) is None, why


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
