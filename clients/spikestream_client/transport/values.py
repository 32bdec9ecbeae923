"""The value types of the MQTT link: what arrives, what is kept, what is counted, and
how a connection attempt fails.

Shared by every module of :mod:`spikestream_client.transport`; none of them names
aiomqtt or paho (only :mod:`~spikestream_client.transport.aiomqtt_adapter` does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from spikestream_client.errors import TransportError

__all__ = [
    "LOG",
    "ConnectFailure",
    "ConnectHook",
    "Counters",
    "Kept",
    "LinkStatistics",
    "MessageCallback",
    "MessageMeta",
    "ProtocolName",
    "SubscribeFailure",
    "Will",
]

#: One logger for the whole link, whichever of its modules logs. It keeps its name from
#: before the client distribution existed: log filters, the fault tests and the serve log
#: level (set on the ``spikestream`` logger) depend on it.
LOG = logging.getLogger("spikestream.transport.link")

#: An MQTT protocol version as negotiated: ``"5"`` or ``"3.1.1"``.
ProtocolName = Literal["5", "3.1.1"]


class MessageMeta(NamedTuple):
    """What arrived with a message besides topic and payload.

    Attributes:
        qos: QoS the message was delivered with (0..2).
        retain: Whether it is a retained message replayed on subscribe.
        content_type: MQTT 5 content type property, ``None`` on 3.1.1 or when absent.
        expiry: MQTT 5 message expiry interval left, in seconds, or ``None``.
        response_topic: MQTT 5 response topic of a request, or ``None``.
        correlation_data: MQTT 5 correlation data of a request (opaque bytes), or ``None``.
        oversize: The message's size in bytes (topic, properties and payload: its
            packet's remaining length) when the link dropped it unread for being past
            the link's ``max_payload`` plus 128 KiB. The payload passed is then ``b""``
            and the properties are gone: refuse the message as oversize, never read it
            as empty. ``None`` for every message read whole.
    """

    qos: int
    retain: bool
    content_type: str | None = None
    expiry: int | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    oversize: int | None = None

    def dropped(self, size: int) -> MessageMeta:
        """This message's meta, for the message of ``size`` bytes dropped unread."""
        return self._replace(oversize=size)


#: ``on_message(topic, payload, meta)``: called on the event loop thread for every
#: incoming message. Must be cheap and must not block (decode, hand off, return).
MessageCallback = Callable[[str, bytes, MessageMeta], None]
#: An ``async def hook()`` awaited after every (re)connection and resubscription (its
#: result is ignored, so ``lambda: link.publish(...)`` works).
ConnectHook = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Will:
    """The last will: published by the broker if we vanish without an MQTT DISCONNECT.

    Attributes:
        topic: Topic to publish to (e.g. ``spikestream/<net>/status``).
        payload: Message body (e.g. ``b"offline"``).
        qos: QoS 0..2 of the will message.
        retain: Whether the broker retains it (status topics: yes).
    """

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """A snapshot of :class:`MqttLink` counters (all counts since construction).

    Attributes:
        connected: Whether a session is up right now.
        protocol: ``"5"`` or ``"3.1.1"`` as last negotiated, ``None`` before any success.
        connect_attempts: TCP+MQTT connection attempts, successful or not.
        connects: Successful connections (CONNACK accepted).
        reconnects: Successful connections after the first one.
        auth_failures: Connection attempts refused for credentials / authorisation.
        publish_ok: Messages handed to the broker connection.
        publish_failed: Publish calls that returned ``False``, plus ``publish_nowait``
            messages the broker refused afterwards.
        publish_refused: Messages the broker refused with a negative PUBACK (MQTT 5,
            QoS >= 1; usually an ACL), awaited or not.
        messages_in: Messages received and dispatched.
        callback_errors: Exceptions raised by the ``on_message`` callback (logged).
        last_error: Text of the most recent connection-level error, or ``None``.
        broker: The broker connected to now (or tried next), password redacted.
        failovers: Times the link moved on to the next broker of its list.
        resent: ``resend=True`` messages sent again after their connection died.
        lost_unsent: ``resend=True`` messages still waiting to be sent again when the
            link stopped (or beyond ``max_queued_outgoing`` of them): lost, and counted.
        dropped_unread: Incoming messages past ``max_payload`` plus ``HEAD_ROOM`` (topic,
            properties and payload), read off the socket in chunks and dropped (each
            still reaches ``on_message``, with ``meta.oversize`` set).
        publish_too_large: Messages not sent because the whole packet would pass the
            Maximum Packet Size the broker named in its CONNACK (MQTT 5), at which it
            would close the connection; also counted in ``publish_failed`` (or, carried
            to a new connection, in ``lost_unsent``).
    """

    connected: bool
    protocol: str | None
    connect_attempts: int
    connects: int
    reconnects: int
    auth_failures: int
    publish_ok: int
    publish_failed: int
    publish_refused: int
    messages_in: int
    callback_errors: int
    last_error: str | None
    broker: str = ""
    failovers: int = 0
    resent: int = 0
    lost_unsent: int = 0
    dropped_unread: int = 0
    publish_too_large: int = 0


@dataclass(slots=True)
class Counters:
    """The link's mutable counters (all since construction); see :class:`LinkStatistics`
    for what each counts. Shared by the link's parts, snapshotted by ``statistics()``."""

    connect_attempts: int = 0
    connects: int = 0
    auth_failures: int = 0
    publish_ok: int = 0
    publish_failed: int = 0
    publish_refused: int = 0
    messages_in: int = 0
    callback_errors: int = 0
    failovers: int = 0
    resent: int = 0
    lost_unsent: int = 0
    dropped_unread: int = 0
    publish_too_large: int = 0
    last_error: str | None = None


class Kept(NamedTuple):
    """A message kept until its connection confirms it (``publish_nowait(resend=True)``)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    content_type: str | None
    expiry: int | None
    correlation_data: bytes | None = None


class ConnectFailure(TransportError):
    """A connection attempt failed.

    Attributes:
        code: The CONNACK reason code value when the broker refused us, else ``None``.
        text: The broker's reason (``str`` of paho's reason code) or the error text.
        closed_before_connack: The broker closed the connection before CONNACK.
        tcp_connected: The TCP (and TLS/WebSocket) connection had been made.
    """

    def __init__(
        self, text: str, *, code: int | None, closed_before_connack: bool, tcp_connected: bool
    ) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.closed_before_connack = closed_before_connack
        self.tcp_connected = tcp_connected


class SubscribeFailure(TransportError):
    """SUBSCRIBE got no SUBACK in time, or could not be sent."""
