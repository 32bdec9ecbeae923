"""Bytes on the wire that the MQTT adapter writes or reads itself, and the socket option
it uses.

Pure functions with no MQTT library behind them: ``aiomqtt_adapter.py``'s
``write_batch()`` packs QoS 0 PUBLISH packets with :func:`publish_qos0` (paho's own
``publish()`` costs most of the I/O thread's time per frame) and writes a batch under
:func:`cork`; its reader hands the plain incoming PUBLISH packets that
:func:`read_plain_publish` accepts straight to the link (paho's own decoding parses
MQTT 5 properties and builds a message object for each one).
"""

from __future__ import annotations

import socket

#: The largest remaining length an MQTT packet can state (four bytes of seven bits).
MAX_REMAINING = 268_435_455


def publish_qos0(name: bytes, payload: bytes, retain: bool, properties: bytes | None) -> bytearray:
    """One QoS 0 PUBLISH packet (MQTT 5 section 3.3; 3.1.1 section 3.3), as paho packs it.

    Args:
        name: The topic, UTF-8; non-empty, no wildcard, at most 65,535 bytes.
        payload: The message body.
        retain: The retain flag.
        properties: MQTT 5: the packed properties, length included (``b"\\x00"`` for
            none); ``None`` on MQTT 3.1.1, which has none.

    Raises:
        ValueError: An invalid topic, or a packet longer than MQTT allows.
    """
    if not name or b"+" in name or b"#" in name or len(name) > 65535:
        raise ValueError(f"invalid publish topic {name!r}: empty, a wildcard or too long")
    props = properties or b""
    remaining = 2 + len(name) + len(props) + len(payload)
    if remaining > MAX_REMAINING:
        raise ValueError(f"payload of {len(payload)} bytes: too large for MQTT")
    packet = bytearray((0x30 | (1 if retain else 0),))  # PUBLISH, QoS 0, no DUP
    while True:  # the remaining length, seven bits a byte
        byte, remaining = remaining & 0x7F, remaining >> 7
        packet.append(byte | 0x80 if remaining else byte)
        if not remaining:
            break
    packet += len(name).to_bytes(2, "big")
    packet += name
    packet += props
    packet += payload
    return packet


def read_plain_publish(
    first: int, body: bytes | bytearray, v5: bool
) -> tuple[str, bytes, bool] | None:
    """Read a plain QoS 0 PUBLISH packet, or return None for anything else.

    Plain means QoS 0, a non-empty topic that is valid UTF-8 and, on MQTT 5, no
    properties (a property length of zero). Everything else (QoS 1 and 2, properties,
    a topic alias with an empty topic, a malformed packet) is left to the MQTT library,
    which handles it in full; so a ``None`` is never an error by itself.

    Args:
        first: The packet's first byte (type and flags); a PUBLISH is ``0x3_``.
        body: The packet after the fixed header (its remaining length bytes).
        v5: MQTT 5 (a properties length follows the topic); False for 3.1.1.

    Returns:
        ``(topic, payload, retain)`` for a plain packet, else None.
    """
    if first & 0xF6 != 0x30:  # not a PUBLISH, or QoS 1 or 2 (DUP is 0 with QoS 0)
        return None
    size = len(body)
    if size < 3:
        return None
    end = 2 + ((body[0] << 8) | body[1])
    start = end + 1 if v5 else end
    if end == 2 or start > size or (v5 and body[end] != 0):
        return None
    try:
        topic = body[2:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return topic, bytes(memoryview(body)[start:]), bool(first & 0x01)


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
