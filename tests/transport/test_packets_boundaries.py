"""The byte counts and limits of the adapter's own packing and reading, at their exact
boundaries (no broker). A mutation audit found each check below could be moved by one, or
removed, with every other test passing: the size of a PUBLISH at a varint's boundary, the
largest packet MQTT allows, a property block of 127 bytes and one of two varint bytes, an
empty string as the last property of a trimmed block, and the heads cache."""

from __future__ import annotations

import pytest

from spikestream_client.transport.batch import HEADS, Heads
from spikestream_client.transport.packets import (
    MAX_PUBLISH_PROPERTIES,
    MAX_REMAINING,
    append_publish_qos0,
    publish_head,
    publish_qos0,
    publish_size,
    read_publish_qos0,
    trim_properties,
)
from tests.transport.support import varint


@pytest.mark.parametrize("rest", [127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
def test_the_size_of_a_publish_at_each_varint_boundary_is_its_packed_length(rest: int) -> None:
    """publish_size() is what the link checks against the broker's Maximum Packet Size:
    one byte short at a boundary of the remaining length's varint, and a packet the broker
    refuses (closing the connection) would pass the check."""
    payload = bytes(rest - 3)  # the topic "t" and its length take the other 3
    assert len(publish_qos0(b"t", payload, False, None)) == publish_size(1, len(payload), 0, None)


@pytest.mark.parametrize("block", [127, 128, 16_383, 16_384])
def test_the_size_of_a_publish_counts_its_property_lengths_varint(block: int) -> None:
    """The property block's own length is a varint too: counted at its boundaries."""
    properties = varint(block) + b"\x26" + bytes(block - 1)  # stand-in bytes, not parsed
    packet = publish_qos0(b"t", b"x", False, properties)
    assert len(packet) == publish_size(1, 1, 0, block)


class _Uncopied(bytearray):
    """A buffer that takes the header bytes but only counts what ``+=`` adds, so a packet
    of MQTT's largest size is packed without touching 256 MiB."""

    added = 0

    def __iadd__(self, other: object) -> _Uncopied:  # type: ignore[override]
        self.added += len(other)  # type: ignore[arg-type]
        return self


def test_the_largest_packet_mqtt_allows_is_packed() -> None:
    """A remaining length of exactly MAX_REMAINING is allowed (one more is refused: see
    test_packets.py); its length is the four-byte varint ff ff ff 7f."""
    out = _Uncopied()
    head = publish_head(b"t", False, None)
    append_publish_qos0(out, head, bytes(MAX_REMAINING - 3))
    assert bytes(out) == b"\x30\xff\xff\xff\x7f"
    assert out.added == MAX_REMAINING


def test_a_property_block_of_127_bytes_is_read_here() -> None:
    """The largest block whose length is one varint byte is read by the link itself."""
    text = "c" * 124
    block = b"\x03" + len(text).to_bytes(2, "big") + text.encode()
    assert len(block) == 127
    got = read_publish_qos0(0x30, b"\x00\x01t" + bytes([len(block)]) + block + b"p", True)
    assert got is not None
    assert got[0] == "t"
    assert got[1] == b"p"
    assert got[2].content_type == text


def test_a_property_length_of_two_varint_bytes_is_left_to_the_library() -> None:
    """A block of 300 bytes (its length the varint ac 02) holding correlation data that
    paho reads: read as a one-byte length (0xac) it would look like an expiry and a
    content type, and the payload would start inside the block. It must be left whole."""
    size = 300
    wrong = 0x80 | (size & 0x7F)
    inner = b"\x03" + (wrong - 8).to_bytes(2, "big") + b"x" * (wrong - 8)
    data = b"\x00" + inner
    data += bytes(size - 3 - len(data))
    block = b"\x09" + len(data).to_bytes(2, "big") + data
    body = b"\x00\x01t" + varint(size) + block + b"payload"
    assert read_publish_qos0(0x30, body, True) is None


def test_a_trimmed_block_keeps_an_empty_string_as_its_last_property() -> None:
    """A prefixed property of length zero is three bytes, ending the block exactly."""
    users = b"\x26\x00\x00\x00\x00" * (MAX_PUBLISH_PROPERTIES + 1)
    block = users + b"\x03\x00\x00"  # an empty content type, last
    body = b"\x00\x01t" + varint(len(block)) + block + b"payload"
    trimmed = trim_properties(0x30, body)
    assert trimmed == b"\x00\x01t\x03\x03\x00\x00payload"


def test_a_head_with_an_expiry_of_zero_carries_it() -> None:
    """Expiry 0 is an expiry (the link counts its 5 bytes): the head asks for properties
    holding it, not the empty block kept for messages with neither property."""
    asked: list[tuple[str | None, int | None]] = []

    def properties(content_type: str | None, expiry: int | None) -> bytes:
        asked.append((content_type, expiry))
        return b"\x05\x02\x00\x00\x00\x00"

    _first, variable = Heads(properties).get("t", False, None, 0)
    assert asked == [(None, 0)]
    assert variable == b"\x00\x01t\x05\x02\x00\x00\x00\x00"


def test_the_heads_cache_never_holds_more_than_heads() -> None:
    """At most HEADS heads at any moment, not only after the cache starts over."""
    heads = Heads(None)
    for i in range(HEADS + 2):
        heads.get(f"t/{i}", False, None, None)
        assert len(heads._heads) <= HEADS
