"""Bytes on the wire that the MQTT adapter writes or reads itself, and the socket option
it uses.

Pure functions with no MQTT library behind them: ``aiomqtt_adapter.py``'s
``write_batch()`` packs QoS 0 PUBLISH packets with :func:`append_publish_qos0`, each
topic's :func:`publish_head` checked and packed once (paho's own ``publish()`` costs
most of the I/O thread's time per frame), and writes a batch under
:func:`cork`; its reader hands the incoming QoS 0 PUBLISH packets that
:func:`read_publish_qos0` reads straight to the link (paho's own decoding builds property
and message objects for each one).
"""

from __future__ import annotations

import socket

from spikestream_client.transport.values import MessageMeta

#: The largest remaining length an MQTT packet can state (four bytes of seven bits).
MAX_REMAINING = 268_435_455

#: A link's default ``max_payload``: a frame's limit (``codec.DEFAULT_MAX_FRAME_BYTES``;
#: the transport stands below the codec, so a test keeps the two equal).
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
#: What a PUBLISH may hold besides its payload before it is dropped unread: a topic of
#: up to 65,535 bytes with its length, a packet id, and an MQTT 5 property block.
HEAD_ROOM = 128 * 1024
#: What is kept of a PUBLISH dropped unread: its longest topic with its length, and its
#: packet id (all :func:`bare_publish` needs).
HEAD_KEEP = 2 + 65535 + 2
#: Bytes asked of the socket at a time while a packet past the limit is dropped.
DRAIN_CHUNK = 64 * 1024
#: Most bytes a packet from the broker other than a PUBLISH may hold (a SUBACK one more
#: per topic filter it answers; the link never unsubscribes): a CONNACK, an acknowledgement, a
#: DISCONNECT hold a few dozen. paho builds a ReasonCode object of about 2.4 KB per byte
#: of a SUBACK's codes, on the event loop: a hostile 1 MB SUBACK held it 9 s and took
#: 2.3 GB. Past this the link drops the connection unread.
CONTROL_PACKET_LIMIT = 16 * 1024
#: MQTT's packet types by number (the first byte's high nibble), for what the link says.
PACKET_NAMES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
    15: "AUTH",
}


def publish_size(
    topic_bytes: int, payload_bytes: int, qos: int, properties_bytes: int | None
) -> int:
    """Bytes of a whole PUBLISH packet: fixed header (its remaining length a varint of
    one to four bytes), topic with its length, a packet id at QoS 1 and 2, on MQTT 5 the
    property block (``properties_bytes``, its own length a varint before it; None on
    3.1.1), and the payload."""
    rest = 2 + topic_bytes + (2 if qos else 0) + payload_bytes
    if properties_bytes is not None:
        rest += _varint_size(properties_bytes) + properties_bytes
    return 1 + _varint_size(rest) + rest


def _varint_size(value: int) -> int:
    """Bytes of MQTT's variable byte integer for ``value``."""
    return 1 if value < 128 else 2 if value < 16_384 else 3 if value < 2_097_152 else 4


def publish_head(name: bytes, retain: bool, properties: bytes | None) -> tuple[int, bytes]:
    """What a QoS 0 PUBLISH to ``name`` holds besides its payload, checked once: its
    first byte (PUBLISH, QoS 0, no DUP, the retain flag) and its variable header (the
    topic with its length, then on MQTT 5 the packed properties).

    Args:
        name: The topic, UTF-8; non-empty, no wildcard, at most 65,535 bytes.
        retain: The retain flag.
        properties: MQTT 5: the packed properties, length included (``b"\\x00"`` for
            none); ``None`` on MQTT 3.1.1, which has none.

    Raises:
        ValueError: An invalid topic.
    """
    if not name or b"+" in name or b"#" in name or len(name) > 65535:
        raise ValueError(f"invalid publish topic {name!r}: empty, a wildcard or too long")
    return 0x30 | (1 if retain else 0), len(name).to_bytes(2, "big") + name + (properties or b"")


def append_publish_qos0(out: bytearray, head: tuple[int, bytes], payload: bytes) -> None:
    """Append one QoS 0 PUBLISH packet to ``out``: ``head`` (from :func:`publish_head`),
    the remaining length and the payload (MQTT 5 section 3.3; 3.1.1 section 3.3).

    Raises:
        ValueError: A packet longer than MQTT allows; ``out`` is left as it was.
    """
    first, variable = head
    remaining = len(variable) + len(payload)
    if remaining > MAX_REMAINING:
        raise ValueError(f"payload of {len(payload)} bytes: too large for MQTT")
    out.append(first)
    _append_varint(out, remaining)
    out += variable
    out += payload


def _append_varint(out: bytearray, value: int) -> None:
    """Append MQTT's variable byte integer for ``value``: seven bits a byte."""
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            break


def publish_qos0(name: bytes, payload: bytes, retain: bool, properties: bytes | None) -> bytearray:
    """One QoS 0 PUBLISH packet (MQTT 5 section 3.3; 3.1.1 section 3.3), as paho packs it:
    :func:`publish_head`, then :func:`append_publish_qos0`.

    Raises:
        ValueError: An invalid topic, or a packet longer than MQTT allows.
    """
    packet = bytearray()
    append_publish_qos0(packet, publish_head(name, retain, properties), payload)
    return packet


# MQTT 5 PUBLISH properties read by read_publish_qos0 (section 3.3.2.3); any other
# (topic alias, user property, subscription identifier) leaves the packet to the library.
_FORMAT, _EXPIRY, _CONTENT_TYPE, _RESPONSE_TOPIC, _CORRELATION = 0x01, 0x02, 0x03, 0x08, 0x09
_LIVE, _RETAINED = MessageMeta(0, False), MessageMeta(0, True)


def _topic_end(body: bytes | bytearray) -> int:
    """Index just past the topic of a PUBLISH ``body`` (its two-byte length, then the
    name), or ``len(body)`` when even the length is cut off."""
    return 2 + ((body[0] << 8) | body[1]) if len(body) >= 2 else len(body)


def _id_size(first: int) -> int:
    """Bytes of the packet id after the topic: 2 at QoS 1 and 2 (``first``'s bits 1-2),
    else none."""
    return 2 if (first >> 1) & 3 else 0


def read_publish_qos0(
    first: int, body: bytes | bytearray, v5: bool
) -> tuple[str, bytes, MessageMeta] | None:
    """Read a QoS 0 PUBLISH packet, or return None to leave it to the MQTT library.

    Read here: QoS 0 with a non-empty UTF-8 topic and, on MQTT 5, no properties or only
    those :class:`MessageMeta` carries (content type, message expiry interval, response
    topic, correlation data) and the payload format indicator, each at most once, in a
    property block shorter than 128 bytes. Everything else (QoS 1 and 2, a topic alias,
    user properties, subscription identifiers, strings holding U+0000 or U+FEFF, which
    paho refuses, anything malformed) is left to the library, which handles it in full;
    so a ``None`` is never an error by itself.

    Args:
        first: The packet's first byte (type and flags); a PUBLISH is ``0x3_``.
        body: The packet after the fixed header (its remaining length bytes).
        v5: MQTT 5 (a properties length follows the topic); False for 3.1.1.

    Returns:
        ``(topic, payload, meta)``, or None.
    """
    # Not a PUBLISH, or QoS 1 or 2. DUP is not looked at: MQTT forbids it with QoS 0,
    # and paho ignores it there too.
    if first & 0xF6 != 0x30:
        return None
    size = len(body)
    if size < 3:
        return None
    end = _topic_end(body)
    if end == 2 or end > size:
        return None
    try:
        topic = body[2:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    retain = bool(first & 0x01)
    meta = _RETAINED if retain else _LIVE
    start = end
    if v5:
        if end >= size:
            return None
        length = body[end]
        start = end + 1 + length
        if length > 0x7F or start > size:  # a longer property block: the library's
            return None
        if length:
            props = _read_properties(bytes(body[end + 1 : start]))
            if props is None:
                return None
            meta = MessageMeta(0, retain, *props)
    return topic, bytes(memoryview(body)[start:]), meta


def _read_properties(
    data: bytes,
) -> tuple[str | None, int | None, str | None, bytes | None] | None:
    """(content type, expiry, response topic, correlation data) of a PUBLISH's property
    block, or None when it holds anything else, a property twice, or is malformed."""
    content_type: str | None = None
    expiry: int | None = None
    response_topic: str | None = None
    correlation: bytes | None = None
    seen: set[int] = set()
    i, size = 0, len(data)
    while i < size:
        key = data[i]
        i += 1
        if key in seen:
            return None
        seen.add(key)
        if key == _FORMAT:  # 0 (bytes) or 1 (UTF-8): the link does not pass it on
            if i >= size or data[i] > 1:
                return None
            i += 1
        elif key == _EXPIRY:
            if i + 4 > size:
                return None
            expiry = int.from_bytes(data[i : i + 4], "big")
            i += 4
        elif key in (_CONTENT_TYPE, _RESPONSE_TOPIC, _CORRELATION):
            if i + 2 > size:
                return None
            n = (data[i] << 8) | data[i + 1]
            raw = data[i + 2 : i + 2 + n]
            i += 2 + n
            if i > size:
                return None
            if key == _CORRELATION:
                correlation = raw
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if "\x00" in text or "\ufeff" in text:  # paho refuses these: its decision
                return None
            if key == _CONTENT_TYPE:
                content_type = text
            else:
                response_topic = text
        else:
            return None
    return content_type, expiry, response_topic, correlation


#: Most properties a received PUBLISH's block may hold and go to the MQTT library whole.
#: paho reads a block in time quadratic in its count, copying what follows each property
#: (the payload too): 39,000 empty user properties in one 195 KB input held the I/O
#: thread for 2-3 s. No sender the link serves needs more; see :func:`trim_properties`.
MAX_PUBLISH_PROPERTIES = 16
_TOPIC_ALIAS, _SUBSCRIPTION_ID, _USER_PROPERTY = 0x23, 0x0B, 0x26
# Each PUBLISH property's value size: a fixed size, or how its length is read.
_FIXED = {_FORMAT: 1, _EXPIRY: 4, _TOPIC_ALIAS: 2}
_PREFIXED = (_CONTENT_TYPE, _RESPONSE_TOPIC, _CORRELATION)


def _read_varint(data: bytes | bytearray, i: int) -> tuple[int, int] | None:
    """(value, index after it) of the variable byte integer at ``data[i]``, or None."""
    value = 0
    for shift in (0, 7, 14, 21):
        if i >= len(data):
            return None
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
    return None


def mend_topic(body: bytes | bytearray) -> bytearray | None:
    """A PUBLISH ``body`` whose topic is not UTF-8, with each byte that breaks it replaced
    by U+FFFD; None when the topic is UTF-8 or its length runs past the body.

    MQTT topics are UTF-8 and a broker must refuse others, so only a broken or hostile
    one passes such a topic on. paho hands it on with a ``topic`` that raises on reading,
    and then handles the same packet again at every read: mended, it is one message on a
    topic no network or probe has, refused where it arrives like any other.
    """
    end = _topic_end(body)
    if end > len(body):
        return None
    try:
        bytes(body[2:end]).decode("utf-8")
    except UnicodeDecodeError:
        mended = bytes(body[2:end]).decode("utf-8", "replace").encode("utf-8")
        # Each replacement takes three bytes: cut to a topic's most, on a whole character.
        topic = mended[:65535].decode("utf-8", "ignore").encode("utf-8")
        return bytearray(len(topic).to_bytes(2, "big") + topic) + body[end:]
    return None


def trim_properties(first: int, body: bytes | bytearray) -> bytearray | None:
    """An MQTT 5 PUBLISH ``body`` whose property block holds more than
    :data:`MAX_PUBLISH_PROPERTIES` properties, rebuilt with only those the link or MQTT
    acts on (payload format, message expiry, content type, response topic, correlation
    data, topic alias: the first of each), in one linear pass; None when the block holds
    fewer (the packet goes on as it came) or is malformed (the library refuses it).

    User properties and subscription identifiers are dropped: nothing downstream reads
    them. The payload and the rest of the packet are kept.

    Args:
        first: The packet's first byte (QoS in bits 1-2: a packet id follows the topic).
        body: The packet after the fixed header.
    """
    size = len(body)
    if size < 2:
        return None
    head_end = _topic_end(body) + _id_size(first)
    read = _read_varint(body, head_end)
    if read is None:
        return None
    length, start = read
    end = start + length
    if end > size or length <= MAX_PUBLISH_PROPERTIES:  # too short for too many
        return None
    kept = bytearray()
    seen: set[int] = set()
    count = 0
    i = start
    while i < end:
        key = body[i]
        count += 1
        if key in _FIXED:
            stop = i + 1 + _FIXED[key]
        elif key in _PREFIXED:
            if i + 3 > end:
                return None
            stop = i + 3 + ((body[i + 1] << 8) | body[i + 2])
        elif key == _USER_PROPERTY:  # two length-prefixed strings
            if i + 3 > end:
                return None
            j = i + 3 + ((body[i + 1] << 8) | body[i + 2])
            if j + 2 > end:
                return None
            stop = j + 2 + ((body[j] << 8) | body[j + 1])
        elif key == _SUBSCRIPTION_ID:
            read = _read_varint(body, i + 1)
            if read is None:
                return None
            stop = read[1]
        else:
            return None  # not a PUBLISH property: the library's to refuse
        if stop > end:
            return None
        if key not in (_USER_PROPERTY, _SUBSCRIPTION_ID) and key not in seen:
            seen.add(key)
            kept += body[i:stop]
        i = stop
    if count <= MAX_PUBLISH_PROPERTIES:
        return None
    out = bytearray(body[:head_end])
    _append_varint(out, len(kept))
    out += kept
    out += memoryview(body)[end:]
    return out


def cork(sock: socket.socket, on: bool) -> bool:
    """Set or clear ``TCP_CORK`` (Linux): while set, writes are held and sent as full
    segments when it is cleared. Returns False where the option does not exist."""
    option = getattr(socket, "TCP_CORK", None)
    if option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, 1 if on else 0)
    except OSError:
        return False
    return True


def bare_publish(first: int, head: bytes | bytearray, v5: bool) -> bytearray:
    """A PUBLISH body with ``head``'s topic and packet id, no properties and no payload:
    what is handed on of a PUBLISH dropped unread, which the MQTT library can still
    parse and acknowledge however long its property block was.

    Args:
        first: The packet's first byte (QoS in bits 1-2).
        head: The packet's body, at least its topic and packet id (:data:`HEAD_KEEP`).
        v5: MQTT 5 (an empty property block follows the topic and id).
    """
    end = _topic_end(head) + _id_size(first)
    return bytearray(head[:end]) + (b"\x00" if v5 else b"")


def unread_key(first: int, body: bytes | bytearray) -> int:
    """Where a PUBLISH dropped unread is remembered until the MQTT library delivers it:
    its packet id for QoS 2 (delivered on PUBREL, later), else -1 (delivered at once).

    Args:
        first: The packet's first byte (QoS in bits 1-2).
        body: The packet's body, at least its topic and packet id.
    """
    if (first >> 1) & 3 != 2:
        return -1
    end = _topic_end(body)
    return (body[end] << 8) | body[end + 1] if end + 2 <= len(body) else -1


def take_publish(
    first: int, body: bytearray, v5: bool
) -> tuple[bytearray, tuple[str, bytes, MessageMeta] | None]:
    """A received PUBLISH ``body`` as the link takes it: read here when it can
    (:func:`read_publish_qos0`); otherwise with its topic mended when it is not UTF-8
    (:func:`mend_topic`) and, on MQTT 5, a block of too many properties cut
    (:func:`trim_properties`), then read here if that made it readable.

    Returns:
        The body to hand the MQTT library (the one given, or its mended copy), and the
        message read here, or None (the library's to read).
    """
    read = read_publish_qos0(first, body, v5)
    if read is not None:
        return body, read
    mended = mend_topic(body)
    trimmed = trim_properties(first, mended if mended is not None else body) if v5 else None
    changed = trimmed if trimmed is not None else mended
    if changed is None:
        return body, None
    return changed, read_publish_qos0(first, changed, v5)


def control_refusal(first: int, size: int, pending: int) -> str | None:
    """Why a packet from the broker other than a PUBLISH, of ``size`` bytes after its
    fixed header, is refused unread (past :data:`CONTROL_PACKET_LIMIT`, and ``pending``
    bytes more: one per topic filter awaiting a SUBACK), or None when it is taken."""
    room = CONTROL_PACKET_LIMIT + pending
    if size <= room:
        return None
    kind = first >> 4
    name = PACKET_NAMES.get(kind, f"packet of type {kind}")
    return f"the broker sent a {name} of {size} bytes (at most {room} taken)"
