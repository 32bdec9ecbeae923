"""``trim_properties`` at its edges: a property block whose length takes four bytes, a
block that ends inside a property, and a block that names a property twice."""

from __future__ import annotations

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from spikestream_client.transport import MessageMeta
from spikestream_client.transport.packets import (
    MAX_PUBLISH_PROPERTIES,
    read_publish_qos0,
    trim_properties,
)
from tests.transport.support import varint

TOPIC = b"\x00\x04in/u"
"""A PUBLISH body's topic name (``in/u``), as it starts every body below."""
USERS = b"\x26\x00\x00\x00\x00" * (MAX_PUBLISH_PROPERTIES + 1)
"""More empty user properties than a block may hold whole: the block is trimmed."""


def body(block: bytes, payload: bytes = b"") -> bytes:
    """A QoS 0 PUBLISH body to ``in/u`` with property block ``block``."""
    return TOPIC + varint(len(block)) + block + payload


def test_a_block_whose_length_takes_four_bytes_is_trimmed() -> None:
    """A block of 2 MiB or more has a four-byte length (up to 268,435,455); it is trimmed
    as a short one is, and what the link uses is kept."""
    block = b"\x02\x00\x00\x00\x1e" + b"\x26\x00\x00\x00\x00" * 420_000
    assert len(block) >= 1 << 21  # four bytes of length
    whole = body(block, b"0.5")
    assert whole[len(TOPIC) + 3] < 0x80  # the length's fourth byte is its last
    trimmed = trim_properties(0x30, whole)
    assert trimmed is not None
    assert read_publish_qos0(0x30, trimmed, True) == (
        "in/u",
        b"0.5",
        MessageMeta(0, False, None, 30),
    )


@pytest.mark.parametrize(
    "whole",
    [
        TOPIC,  # no property length at all: the body ends after the topic
        body(USERS + b"\x03"),  # a content type cut after its key, at the body's end
        body(USERS + b"\x26\x00\x00"),  # a user property's value missing, at the body's end
        body(USERS + b"\x26\x00\x01"),  # a user property's name running past the body
    ],
)
def test_a_body_cut_inside_its_properties_is_left_to_the_library(whole: bytes) -> None:
    """A body that ends where a length or a property should be is malformed: it is left
    as it came (None), for the MQTT library to refuse, never read past its end."""
    assert trim_properties(0x30, whole) is None


def test_a_property_running_one_byte_past_its_block_is_malformed() -> None:
    """A message expiry (four bytes) with only three left in the block runs into the
    payload: the block is malformed, not read on into the payload."""
    assert trim_properties(0x30, body(USERS + b"\x02\x00\x00\x1e", b"0.5")) is None
    assert trim_properties(0x30, body(USERS + b"\x02\x00\x00\x00\x1e", b"0.5")) is not None


def test_a_property_given_twice_keeps_its_first() -> None:
    """Only the first of each property is kept: a second content type (MQTT forbids it;
    the library would refuse the whole message) is dropped with the user properties."""
    block = b"\x03\x00\x01a" + USERS + b"\x03\x00\x01b"
    trimmed = trim_properties(0x30, body(block, b"0.5"))
    assert trimmed is not None
    assert trimmed[len(TOPIC) :] == varint(4) + b"\x03\x00\x01a" + b"0.5"
    kept = Properties(PacketTypes.PUBLISH)
    kept.unpack(bytes(trimmed[len(TOPIC) :]))
    assert kept.ContentType == "a"
