"""The adapter's own readers of incoming packets, fed arbitrary bytes: a hostile broker
chooses every byte of a PUBLISH body, so each reader must return a well-formed result or
its documented "leave it to the library" answer, never raise (IndexError, struct.error,
UnicodeDecodeError) and never build more than the body holds."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spikestream_client.transport import MessageMeta
from spikestream_client.transport.packets import (
    MAX_PUBLISH_PROPERTIES,
    bare_publish,
    mend_topic,
    read_publish_qos0,
    trim_properties,
    unread_key,
)
from tests.transport.support import varint

firsts = st.integers(0, 255) | st.sampled_from([0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x38])


# A property: a known PUBLISH id with a value of any size (often the wrong one), or noise.
_prop = st.one_of(
    st.tuples(st.sampled_from([0x01, 0x02, 0x23]), st.binary(max_size=6)).map(
        lambda kv: bytes([kv[0]]) + kv[1]
    ),
    st.tuples(
        st.sampled_from([0x03, 0x08, 0x09]), st.integers(0, 70000), st.binary(max_size=40)
    ).map(lambda t: bytes([t[0]]) + (t[1] & 0xFFFF).to_bytes(2, "big") + t[2]),
    st.tuples(st.integers(0, 70000), st.binary(max_size=10), st.integers(0, 70000)).map(
        lambda t: (
            b"\x26" + (t[0] & 0xFFFF).to_bytes(2, "big") + t[1] + (t[2] & 0xFFFF).to_bytes(2, "big")
        )
    ),
    st.binary(min_size=1, max_size=5).map(lambda b: b"\x0b" + b),
    st.binary(min_size=1, max_size=4),
)


@st.composite
def publish_bodies(draw: st.DrawFn) -> bytes:
    """Bodies shaped like a PUBLISH (topic, maybe an id, maybe a property block) whose
    every length may lie, or plain noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    topic = draw(st.binary(max_size=30) | st.just(b""))
    told = draw(st.sampled_from([len(topic), 0, 65535]) | st.integers(0, 65535))
    body = told.to_bytes(2, "big") + topic
    if draw(st.booleans()):
        body += draw(st.binary(min_size=2, max_size=2))  # a packet id
    props = b"".join(draw(st.lists(_prop, max_size=MAX_PUBLISH_PROPERTIES + 8)))
    length = draw(st.sampled_from([len(props), len(props) + 1, max(len(props) - 1, 0)]))
    block = draw(
        st.sampled_from([varint(length), b"\xff\xff\xff\xff\x7f", b"\x80", b"\x80\x80\x80\x80"])
    )
    return body + block + props + draw(st.binary(max_size=20))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=firsts, body=publish_bodies(), v5=st.booleans(), as_array=st.booleans())
@example(first=0x30, body=b"\x00\x01t\x05\x01\x00", v5=True, as_array=False)  # block past the end
@example(first=0x30, body=b"\x00\x05ab", v5=False, as_array=True)  # topic past the end
@example(first=0x30, body=b"\x00", v5=True, as_array=False)
def test_the_reader_returns_a_message_or_none(
    first: int, body: bytes, v5: bool, as_array: bool
) -> None:
    data: bytes | bytearray = bytearray(body) if as_array else body
    read = read_publish_qos0(first, data, v5)
    if read is None:
        return
    topic, payload, meta = read
    assert first & 0xF6 == 0x30
    assert isinstance(topic, str)
    assert topic
    assert isinstance(payload, bytes)
    assert isinstance(meta, MessageMeta)
    end = 2 + int.from_bytes(body[:2], "big")
    assert topic.encode() == body[2:end]
    assert body.endswith(payload)
    if v5:  # a one-byte property length, its block inside the body, then the payload
        assert body[end] < 0x80
        assert end + 1 + body[end] + len(payload) == len(body)
    else:
        assert end + len(payload) == len(body)
    assert meta.retain == bool(first & 1)
    assert meta.qos == 0


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=firsts, body=publish_bodies(), as_array=st.booleans())
def test_trimming_returns_a_shorter_well_formed_body_or_none(
    first: int, body: bytes, as_array: bool
) -> None:
    out = trim_properties(first, bytearray(body) if as_array else body)
    if out is None:
        return
    assert isinstance(out, bytearray)
    assert len(out) <= len(body)
    head = 2 + int.from_bytes(body[:2], "big") + (2 if (first >> 1) & 3 else 0)
    assert out[:head] == body[:head]
    # its property block's length is a varint the library can read, within the body
    length, shift, i = 0, 0, head
    while True:
        byte = out[i]
        length |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if not byte & 0x80:
            break
    assert i - head <= 4
    assert i + length <= len(out)
    assert length <= len(body)
    if first & 0xF6 == 0x30:  # QoS 0: the link's own reader takes it, or leaves it
        read_publish_qos0(first, out, True)


@settings(max_examples=2000, deadline=None)
@given(first=firsts, body=publish_bodies(), v5=st.booleans())
def test_a_bare_publish_and_its_key_come_from_the_head_alone(
    first: int, body: bytes, v5: bool
) -> None:
    bare = bare_publish(first, body, v5)
    assert isinstance(bare, bytearray)
    assert len(bare) <= len(body) + 1
    assert bytes(bare[: len(bare) - (1 if v5 else 0)]) == body[: len(bare) - (1 if v5 else 0)]
    key = unread_key(first, body)
    assert key == -1 or ((first >> 1) & 3 == 2 and 0 <= key <= 0xFFFF)
    # what the oversize path does with it next: the reader, on the bare body
    read_publish_qos0(first, bare, v5)
    unread_key(first, bare)


@settings(max_examples=2000, deadline=None)
@given(body=publish_bodies())
@example(body=b"\xff\xff" + b"\xff" * 65535 + b"\x00\x07" + b"\x00payload")
@example(body=b"\xff\xff" + b"a" + b"\xff" * 65534 + b"\x00payload")  # cut mid-character
@example(body=b"\x00\x03a\xc3(" + b"\x00\x07" + b"\x02\x01\x01" + b"p")
def test_a_mended_topic_is_utf8_of_a_topic_s_length_with_the_rest_kept(body: bytes) -> None:
    """``mend_topic`` leaves a UTF-8 topic (or one whose length runs past the body)
    alone; otherwise the result's topic is valid UTF-8 of at most 65,535 bytes (cut on a
    whole character: each replacement takes three) and what followed the topic (packet
    id, property block, payload) is kept byte for byte."""
    end = 2 + int.from_bytes(body[:2], "big") if len(body) >= 2 else len(body)
    out = mend_topic(body)
    if end > len(body) or len(body) < 2:
        assert out is None
        return
    try:
        body[2:end].decode("utf-8")
    except UnicodeDecodeError:
        assert out is not None
    else:
        assert out is None
        return
    size = int.from_bytes(out[:2], "big")
    topic = bytes(out[2 : 2 + size])
    assert size <= 65535
    assert "\ufffd" in topic.decode("utf-8")  # strict: raises if not UTF-8
    assert out[2 + size :] == body[end:]
