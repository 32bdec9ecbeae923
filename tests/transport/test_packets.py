"""The QoS 0 PUBLISH packets the adapter packs itself, read back by an independent parser;
and the reader of incoming QoS 0 PUBLISH packets, checked against the packer and paho's
own packing of properties."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from spikestream_client.transport import MessageMeta
from spikestream_client.transport.packets import (
    MAX_PUBLISH_PROPERTIES,
    MAX_REMAINING,
    append_publish_qos0,
    cork,
    publish_head,
    publish_qos0,
    read_publish_qos0,
    trim_properties,
    unread_key,
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
def test_a_publish_without_properties_reads_back(
    topic: bytes, payload: bytes, retain: bool, v5: bool
) -> None:
    first, body = _split(bytes(publish_qos0(topic, payload, retain, b"\x00" if v5 else None)))
    got = read_publish_qos0(first, bytearray(body), v5)
    assert got == (topic.decode("utf-8"), payload, MessageMeta(0, retain))
    assert type(got[1]) is bytes  # the link's callbacks are promised bytes


# MQTT strings; paho also refuses U+0000 and U+FEFF in them (tested below).
_texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=30
)


def _paho_reads(packed: bytes) -> tuple[object, object, object, object]:
    """What paho's own decoder (its public Properties.unpack) reads from a property block."""
    props = Properties(PacketTypes.PUBLISH)
    props.unpack(packed)
    return tuple(  # type: ignore[return-value]
        getattr(props, name, None)
        for name in ("ContentType", "MessageExpiryInterval", "ResponseTopic", "CorrelationData")
    )


@given(
    topic=topics,
    payload=st.binary(max_size=40),
    retain=st.booleans(),
    content_type=st.none() | _texts,
    expiry=st.none() | st.integers(0, 2**32 - 1),
    response_topic=st.none() | _texts.filter(bool),
    correlation=st.none() | st.binary(max_size=20),
    utf8=st.none() | st.sampled_from([0, 1]),
)
def test_the_properties_the_link_passes_on_read_back(
    topic: bytes,
    payload: bytes,
    retain: bool,
    content_type: str | None,
    expiry: int | None,
    response_topic: str | None,
    correlation: bytes | None,
    utf8: int | None,
) -> None:
    """Properties packed by paho (its public Properties class) read back as paho's own
    decoder reads them, which is what the adapter's paho path passes on."""
    props = Properties(PacketTypes.PUBLISH)
    if content_type is not None:
        props.ContentType = content_type
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    if utf8 is not None:
        props.PayloadFormatIndicator = utf8
    packed = props.pack()
    first, body = _split(bytes(publish_qos0(topic, payload, retain, packed)))
    got = read_publish_qos0(first, body, True)
    if len(packed) > 128:  # a property length of two bytes: left to paho
        assert got is None
        return
    meta = MessageMeta(0, retain, content_type, expiry, response_topic, correlation)
    assert got == (topic.decode("utf-8"), payload, meta)
    assert _paho_reads(packed) == (content_type, expiry, response_topic, correlation)


@pytest.mark.parametrize("text", ["a\x00b", "\ufeffa"])
@pytest.mark.parametrize("name", ["ContentType", "ResponseTopic"])
def test_strings_paho_refuses_are_left_to_it(name: str, text: str) -> None:
    """paho refuses U+0000 and U+FEFF in a string property (a protocol error that ends
    the connection); the reader leaves such a packet to paho, so the outcome is paho's."""
    props = Properties(PacketTypes.PUBLISH)
    setattr(props, name, "ok")
    # [length, identifier, string length (2 bytes), string]: put the text in place of "ok"
    packed = bytearray(props.pack())
    assert packed[2:] == b"\x00\x02ok"
    packed[2:] = len(text.encode()).to_bytes(2, "big") + text.encode()
    packed[0] = len(packed) - 1
    with pytest.raises(MalformedPacket, match=r"\[MQTT-1\.5\.4-[23]\]"):
        _paho_reads(bytes(packed))
    first, body = _split(bytes(publish_qos0(b"t", b"x", False, bytes(packed))))
    assert read_publish_qos0(first, body, True) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("UserProperty", [("k", "v")]), ("TopicAlias", 3), ("SubscriptionIdentifier", [7])],
)
def test_properties_the_link_does_not_pass_on_are_left_to_the_library(
    name: str, value: object
) -> None:
    props = Properties(PacketTypes.PUBLISH)
    setattr(props, name, value)
    first, body = _split(bytes(publish_qos0(b"t", b"x", False, props.pack())))
    assert read_publish_qos0(first, body, True) is None


def test_the_same_bytes_read_by_protocol() -> None:
    """Read as MQTT 3.1.1, a packet's property bytes are part of its payload: the
    protocol decides, not a guess."""
    first, body = _split(bytes(publish_qos0(b"t", b"x", False, b"\x05\x02\x00\x00\x00\x3c")))
    assert read_publish_qos0(first, body, True) == ("t", b"x", MessageMeta(0, False, None, 60))
    assert read_publish_qos0(first, body, False) == (
        "t",
        b"\x05\x02\x00\x00\x00\x3cx",
        MessageMeta(0, False),
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
        (0x30, b"\x00\x01t\x05\x02\x00\x00x", "properties longer than the packet"),
        (0x30, b"\x00\x01t\x03\x02\x00\x00", "an expiry cut short"),
        (0x30, b"\x00\x01t\x05\x03\x00\x05ab", "a content type cut short"),
        (0x30, b"\x00\x01t\x05\x03\x00\x02\xff\xfe", "a content type not UTF-8"),
        (0x30, b"\x00\x01t\x04\x01\x00\x01\x01", "a property twice"),
        (0x30, b"\x00\x01t\x02\x01\x02", "a payload format indicator of 2"),
        (0x30, b"\x00\x01t\x80\x01" + bytes(128), "a two-byte property length"),
        (0x30, b"\x00\x01t\x01\x7f", "an unknown property"),
    ],
)
def test_anything_else_is_left_to_the_library(first: int, body: bytes, why: str) -> None:
    assert read_publish_qos0(first, body, True) is None, why


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


@given(
    messages=st.lists(
        st.tuples(
            topics,
            st.binary(max_size=300) | st.sampled_from([b"x" * 127, b"x" * 16_380]),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    props=st.sampled_from([None, b"\x00", b"\x05\x02\x00\x00\x00\x3c"]),
)
def test_packets_appended_to_a_batch_are_the_single_packets_in_order(
    messages: list[tuple[bytes, bytes, bool]], props: bytes | None
) -> None:
    """A batch built with each topic's head packed once holds each message's own packet,
    back to back (what the adapter's write_batch() writes)."""
    batch = bytearray()
    heads: dict[tuple[bytes, bool], tuple[int, bytes]] = {}
    for topic, payload, retain in messages:
        head = heads.setdefault((topic, retain), publish_head(topic, retain, props))
        append_publish_qos0(batch, head, payload)
    expected = b"".join(bytes(publish_qos0(t, p, r, props)) for t, p, r in messages)
    assert bytes(batch) == expected
    at = 0
    for topic, payload, retain in messages:  # and each reads back from its place
        one = bytes(publish_qos0(topic, payload, retain, props))
        packet = bytes(batch[at : at + len(one)])
        first, got_topic, _, got_payload = _read(packet, props is not None)
        assert (first, got_topic, got_payload) == (0x30 | int(retain), topic, payload)
        at += len(one)


def test_a_refused_packet_leaves_the_batch_as_it_was() -> None:
    batch = bytearray(b"before")
    head = publish_head(b"t", False, None)
    with pytest.raises(ValueError, match="too large"):
        append_publish_qos0(batch, head, bytes(MAX_REMAINING - 2))  # one byte over
    assert batch == b"before"
    for bad in (b"", b"a/+", b"a/#", b"x" * 65536):
        with pytest.raises(ValueError, match="invalid publish topic"):
            publish_head(bad, False, None)


@given(
    topic=st.binary(min_size=1, max_size=300),
    mid=st.integers(1, 65535),
    qos=st.integers(0, 2),
    rest=st.binary(max_size=50),
)
def test_a_dropped_publish_is_remembered_by_its_id_for_qos2_only(
    topic: bytes, mid: int, qos: int, rest: bytes
) -> None:
    """QoS 2 is delivered on PUBREL, later: by its packet id; the rest at once (-1)."""
    head = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + rest
    assert unread_key(0x30 | qos << 1, head) == (mid if qos == 2 else -1)
    assert unread_key(0x34, head[: 3 + len(topic)]) == -1  # the id cut off: at once


def _paho_properties(block: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.unpack(block)
    return props


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_a_block_of_too_many_properties_keeps_only_those_the_link_uses(qos: int) -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k", "v")] * (MAX_PUBLISH_PROPERTIES + 1)
    props.SubscriptionIdentifier = [7]
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 60
    props.ContentType = "text/plain"
    props.ResponseTopic = "reply"
    props.CorrelationData = b"id"
    props.TopicAlias = 3
    packed = props.pack()
    packet_id = b"\x12\x34" if qos else b""
    body = b"\x00\x01t" + packet_id + packed + b"payload"
    first = 0x30 | qos << 1
    trimmed = trim_properties(first, body)
    assert trimmed is not None
    assert trimmed[:3] == b"\x00\x01t"
    assert trimmed[3 : 3 + len(packet_id)] == packet_id
    rest = bytes(trimmed[3 + len(packet_id) :])
    length, start = _varint(rest, 0)
    kept = _paho_properties(rest[: start + length])
    assert not hasattr(kept, "UserProperty")
    assert not hasattr(kept, "SubscriptionIdentifier")
    assert (kept.PayloadFormatIndicator, kept.MessageExpiryInterval, kept.ContentType) == (
        1,
        60,
        "text/plain",
    )
    assert (kept.ResponseTopic, kept.CorrelationData, kept.TopicAlias) == ("reply", b"id", 3)
    assert rest[start + length :] == b"payload"


def test_a_block_of_few_properties_or_a_malformed_one_is_left_as_it_came() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k", "v" * 100)] * MAX_PUBLISH_PROPERTIES  # long, but few
    body = b"\x00\x01t" + props.pack() + b"x"
    assert trim_properties(0x30, body) is None
    props.UserProperty = [("k", "v")] * (MAX_PUBLISH_PROPERTIES + 1)
    packed = props.pack()
    assert trim_properties(0x30, b"\x00\x01t" + packed + b"x") is not None
    assert trim_properties(0x30, b"\x00\x01t" + packed[:-1]) is None  # cut short
    fresh = Properties(PacketTypes.PUBLISH)  # (setting UserProperty again appends to it)
    fresh.UserProperty = [("k", "v")] * (MAX_PUBLISH_PROPERTIES + 1)
    content = fresh.pack()[1:] + b"\x27\x00\x00\x10\x00"  # then a Maximum Packet Size:
    assert len(content) < 128  # a CONNECT property, not a PUBLISH one
    bad = bytes([len(content)]) + content
    assert trim_properties(0x30, b"\x00\x01t" + bad + b"x") is None
    assert trim_properties(0x30, b"\x00") is None
    assert trim_properties(0x30, b"\x00\x01t\xff\xff\xff\xff\xff") is None  # no varint


def test_a_trimmed_qos0_packet_is_read_by_the_links_own_reader() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("", "")] * 1000
    props.MessageExpiryInterval = 30
    first, body = _split(bytes(publish_qos0(b"in/u", b"0.5", False, props.pack())))
    assert read_publish_qos0(first, body, True) is None  # the block is too long to read
    trimmed = trim_properties(first, body)
    assert trimmed is not None
    assert read_publish_qos0(first, trimmed, True) == (
        "in/u",
        b"0.5",
        MessageMeta(0, False, None, 30),
    )
