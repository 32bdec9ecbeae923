"""Bytes on the wire that the MQTT adapter writes itself, and the socket option it uses.

Pure functions with no MQTT library behind them: ``aiomqtt_adapter.py``'s
``write_batch()`` packs QoS 0 PUBLISH packets with :func:`publish_qos0` (paho's own
``publish()`` costs most of the I/O thread's time per frame) and writes a batch under
:func:`cork`.
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
