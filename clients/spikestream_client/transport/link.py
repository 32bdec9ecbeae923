"""A long-lived MQTT connection: connect, subscribe, dispatch, publish, reconnect.

:class:`MqttLink` drives one aiomqtt client per connection attempt (through
:class:`~spikestream_client.transport.aiomqtt_adapter.Connection`) and adds what a
service that must stay up needs. Its parts, one job per module:

- ``link.py`` (here): the public API, argument checks, statistics, publishing;
- ``reconnect.py``: the connect / negotiate / session / backoff / failover loop;
- ``window.py``: the publish window of a connection and the messages to send again;
- ``dispatch.py``: incoming messages to the ``on_message`` callback;
- ``aiomqtt_adapter.py``: the only module that imports aiomqtt and paho (and the only
  one allowed to touch their private names, each listed there);
- ``batch.py``: the QoS 0 packets the adapter packs itself inside ``write_batch``;
- ``tls.py``: the TLS context, and closing sockets a failed handshake leaves behind;
- ``values.py``: the value types (:class:`MessageMeta`, :class:`Will`, ...).

What the link does:

- **Reconnect with jittered exponential backoff** ("decorrelated jitter": each delay is
  drawn from ``U(backoff_min, 3 * previous)`` and capped at ``backoff_max``), resubscribe
  every registered filter and rerun the ``on_connect`` hooks after every reconnect.
  The backoff only resets after a connection stayed up for ``stable_after`` seconds, so
  a broker that accepts and immediately drops us cannot cause a tight loop.
- **Protocol negotiation** (``protocol="auto"``): try MQTT 5 and, within the same
  attempt, fall back to 3.1.1 when the broker refuses the protocol version, or hangs up
  or stays silent before CONNACK while it never spoke MQTT 5 with us (amqtt does that
  to an MQTT 5 CONNECT with a will). The version that worked is remembered for later
  reconnects (3.1.1 stays 3.1.1; a refused 5 falls back again).
- **Bounded auth retries**: a refused login (bad credentials / not authorised) is logged
  as an :class:`~spikestream.errors.AuthError` (never with the password) and retried with
  backoff; after ``max_auth_failures`` consecutive refusals :meth:`MqttLink.run` raises
  the :class:`~spikestream.errors.AuthError` (``None`` = retry forever).
- **Half-open detection**: paho's keepalive alone notices a dead peer after about 2x
  ``keepalive``; a watchdog closes the connection when a PINGREQ has gone unanswered for
  half a keepalive, i.e. about 1.5x ``keepalive`` after the peer last spoke (the limit
  MQTT brokers apply to clients).
- **Never-blocking publish**: :meth:`MqttLink.publish_nowait` hands a message to paho or
  returns ``False`` (disconnected, outgoing queue full); :meth:`MqttLink.publish_frames`
  does the same for several QoS 0 messages in one call (a service's round of frames);
  :meth:`MqttLink.publish` also waits (bounded) until the bytes are written (QoS 0) or
  acknowledged (QoS 1/2).
- ``TCP_NODELAY`` on the socket (Nagle's algorithm adds milliseconds to small frames).
- **Failover across brokers**: given several brokers (the nodes of one cluster), the link
  connects to the first that answers; after a failed attempt or a lost connection it moves
  on to the next one in the list (round robin), after the same jittered backoff.
- **Nothing left behind on a lost connection**: a message published with ``resend=True``
  that the connection had not confirmed when it died (QoS 0: not yet written to the
  socket; QoS 1/2: not acknowledged) is sent again, in order, first thing on the next
  connection, before anything else can be published. For QoS 0 this never duplicates (the
  broker never saw those bytes); for QoS 1/2 it is at-least-once (a message the broker took
  just before dying may arrive twice). A QoS 0 message already written to the socket of a
  broker that dies is the one loss no client can see.

Clean stop (:meth:`MqttLink.stop` or cancelling :meth:`MqttLink.run`) sends an MQTT
DISCONNECT, so the broker discards the last will; the link itself publishes nothing on
stop. Publish the ``offline`` status yourself before stopping.

Sessions are always clean (MQTT 3 clean session / MQTT 5 clean start): the link
resubscribes itself, and stale queued messages are of no use to a real-time service.
All methods must be called from the event loop thread that runs :meth:`MqttLink.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
from collections.abc import Callable, Sequence

from spikestream_client.errors import AuthError, ConfigError
from spikestream_client.transport.aiomqtt_adapter import Connection, PropertiesCache
from spikestream_client.transport.dispatch import Dispatcher
from spikestream_client.transport.packets import DEFAULT_MAX_PAYLOAD, publish_size
from spikestream_client.transport.reconnect import Reconnecting
from spikestream_client.transport.tls import tls_context
from spikestream_client.transport.urls import BrokerSpec, ProtocolChoice
from spikestream_client.transport.values import (
    LOG,
    ConnectHook,
    Counters,
    Kept,
    LinkStatistics,
    MessageCallback,
    MessageMeta,
    ProtocolName,
    Will,
)
from spikestream_client.transport.window import Outbox, ResendQueue

__all__ = [
    "ConnectHook",
    "LinkStatistics",
    "MessageCallback",
    "MessageMeta",
    "MqttLink",
    "ProtocolChoice",
    "Will",
]


class MqttLink(Reconnecting):
    """A self-healing MQTT connection for one service.

    Args:
        spec: A concrete broker (``kind == "url"``; resolve ``embedded``/``auto`` first
            with :func:`spikestream.transport.resolve_broker`), or several (the nodes of
            one clustered broker, tried in order and failed over round robin).
        client_id: MQTT client identifier; must be unique on the broker (a second client
            with the same id kicks the first one off).
        on_message: Callback for incoming messages, see :data:`MessageCallback`.
        will: Last will, or ``None``.
        keepalive: MQTT keepalive in seconds (1..65535). A dead peer is detected about
            1.5x this after it last spoke.
        backoff_min: Smallest reconnect delay in seconds (> 0).
        backoff_max: Largest reconnect delay in seconds (>= ``backoff_min``).
        stable_after: A connection that lasted this many seconds resets the backoff;
            default ``max(backoff_max, 5)``.
        protocol: ``"auto"`` (MQTT 5, fall back to 3.1.1), ``"5"`` or ``"3.1.1"``;
            ``None`` takes each spec's ``protocol`` (``?protocol=`` in the URL). The
            version that worked is remembered per broker.
        max_payload: Largest incoming payload, in bytes, the receiver may accept. A
            PUBLISH whose topic, properties and payload together pass this plus
            :data:`~.packets.HEAD_ROOM` is read off the socket in chunks of
            :data:`~.packets.DRAIN_CHUNK` and dropped, never held whole, and passed on
            with its topic, an empty payload, no properties and ``meta.oversize`` set
            (counted in ``dropped_unread``); a QoS 1 or 2 one is acknowledged. Default:
            a frame's limit, 16 MiB.
        tcp_nodelay: Set ``TCP_NODELAY`` on the socket (on by default; off only for
            measurements).
        max_queued_outgoing: Most messages accepted but not yet written/acknowledged;
            beyond it publishing returns ``False`` instead of growing memory. Messages
            published without ``resend`` (statuses, events: few and small) may go a
            tenth beyond it (at least 16), so bulk data such as frames sent again after
            a failover cannot starve them.
        connect_timeout: Seconds allowed for TCP connect and then for the CONNACK, and
            for SUBACK and clean DISCONNECT.
        publish_timeout: Seconds :meth:`publish` waits for completion before giving up.
        max_auth_failures: Consecutive refused logins after which :meth:`run` raises
            :class:`AuthError`; ``None`` retries forever.
        rng: Random source for the backoff jitter (inject a seeded one in tests).

    Raises:
        ConfigError: Bad argument values, an unresolved spec, unreadable TLS files.
    """

    def __init__(
        self,
        spec: BrokerSpec | Sequence[BrokerSpec],
        *,
        client_id: str,
        on_message: MessageCallback | None = None,
        will: Will | None = None,
        keepalive: int = 10,
        backoff_min: float = 0.1,
        backoff_max: float = 5.0,
        stable_after: float | None = None,
        protocol: ProtocolChoice | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        tcp_nodelay: bool = True,
        max_queued_outgoing: int = 1000,
        connect_timeout: float = 5.0,
        publish_timeout: float = 5.0,
        max_auth_failures: int | None = 5,
        rng: random.Random | None = None,
    ) -> None:
        specs = (spec,) if isinstance(spec, BrokerSpec) else tuple(spec)
        if not specs:
            msg = "MqttLink needs at least one broker, got an empty list"
            raise ConfigError(msg)
        for one in specs:
            if one.kind != "url":
                msg = (
                    f"MqttLink needs a concrete broker URL, got {one.kind!r}; resolve it "
                    "first with spikestream.transport.resolve_broker()"
                )
                raise ConfigError(msg)
        _check(
            bool(client_id) and len(client_id) <= 65535,
            "client_id",
            "a non-empty string",
            client_id,
        )
        _check(1 <= keepalive <= 65535, "keepalive", "an integer in 1..65535 seconds", keepalive)
        _check(
            backoff_min > 0 and math.isfinite(backoff_min),
            "backoff_min",
            "> 0 seconds",
            backoff_min,
        )
        _check(
            backoff_max >= backoff_min and math.isfinite(backoff_max),
            "backoff_max",
            f">= backoff_min ({backoff_min}) seconds",
            backoff_max,
        )
        _check(
            protocol in (None, "auto", "5", "3.1.1"),
            "protocol",
            "None, 'auto', '5' or '3.1.1'",
            protocol,
        )
        _check(max_queued_outgoing >= 1, "max_queued_outgoing", ">= 1", max_queued_outgoing)
        _check(max_payload >= 1, "max_payload", ">= 1 bytes", max_payload)
        _check(connect_timeout > 0, "connect_timeout", "> 0 seconds", connect_timeout)
        _check(publish_timeout > 0, "publish_timeout", "> 0 seconds", publish_timeout)
        _check(
            max_auth_failures is None or max_auth_failures >= 1,
            "max_auth_failures",
            "None or >= 1",
            max_auth_failures,
        )
        if will is not None:
            _check(will.qos in (0, 1, 2), "will.qos", "0, 1 or 2", will.qos)

        self._specs = specs
        self._index = 0  # the broker being (or last) connected to
        self._client_id = client_id
        self._will = will
        self._keepalive_s = int(keepalive)
        self._backoff_min = float(backoff_min)
        self._backoff_max = float(backoff_max)
        self._stable_after = (
            max(self._backoff_max, 5.0) if stable_after is None else float(stable_after)
        )
        self._protocol_choices: tuple[ProtocolChoice, ...] = tuple(
            one.protocol if protocol is None else protocol for one in specs
        )
        self._tcp_nodelay = tcp_nodelay
        self._max_payload = max_payload
        self._max_queued = int(max_queued_outgoing)
        self._reserve = max(16, self._max_queued // 10)
        self._connect_timeout = float(connect_timeout)
        self._publish_timeout = float(publish_timeout)
        self._max_auth_failures = max_auth_failures
        self._rng = rng or random.Random()
        self._tls_contexts = tuple(tls_context(one.tls) if one.uses_tls else None for one in specs)

        self._subscriptions: dict[str, int] = {}
        self._subscriptions_changed = asyncio.Event()
        self._hooks: list[ConnectHook] = []
        self._lost_hooks: list[Callable[[], object]] = []
        self._props = PropertiesCache()
        self._refused_topics: set[str] = set()
        self._too_large_topics: set[str] = set()

        self._counters = Counters()
        self._dispatcher = Dispatcher(self._counters, on_message)
        # The live connection and its publish window (None between connections).
        self._conn: Connection | None = None
        self._outbox: Outbox | None = None
        # The protocol version each broker accepted last (None: never connected).
        self._negotiated: list[ProtocolName | None] = [None] * len(specs)
        self._resend = ResendQueue(self._max_queued, self._counters)
        self._up = asyncio.Event()  # session up: connected, subscribed, resent
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

    # ------------------------------------------------------------------ registration
    def subscribe(self, topic_filter: str, qos: int = 0) -> None:
        """Register ``topic_filter`` (subscribed now if connected, again after reconnects).

        Registering the same filter again only changes its QoS.

        Raises:
            ConfigError: Malformed filter or QoS outside 0..2.
        """
        _check_filter(topic_filter)
        _check(qos in (0, 1, 2), "qos", "0, 1 or 2", qos)
        self._subscriptions[topic_filter] = qos
        self._subscriptions_changed.set()

    def add_connect_hook(self, hook: ConnectHook) -> None:
        """Await ``hook()`` after every (re)connection, once subscriptions are in place.

        Hooks run in registration order; an exception is logged and does not stop the
        link or the other hooks. Typical use: publish a retained ``online`` status.
        """
        self._hooks.append(hook)

    def add_lost_hook(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` (on the event loop, not awaited) each time an established
        connection is lost, before the link waits to reconnect: what was learnt from the
        broker (a retained status) is no longer known. An exception is logged."""
        self._lost_hooks.append(hook)

    def set_message_callback(self, callback: MessageCallback | None) -> None:
        """Replace the ``on_message`` callback (``None`` drops incoming messages)."""
        self._dispatcher.callback = callback

    # ------------------------------------------------------------------ state
    @property
    def spec(self) -> BrokerSpec:
        """The broker this link talks to now (or tries next)."""
        return self._specs[self._index]

    @property
    def specs(self) -> tuple[BrokerSpec, ...]:
        """Every broker this link may use, in failover order."""
        return self._specs

    @property
    def connected(self) -> bool:
        """Whether a session is up (connected, initial subscriptions done, not lost)."""
        conn = self._conn
        return self._up.is_set() and conn is not None and not conn.lost.is_set()

    @property
    def protocol(self) -> str | None:
        """``"5"`` or ``"3.1.1"`` once negotiated, else ``None``."""
        return self._protocol

    async def wait_connected(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until connected; ``True`` if so, ``False`` after ``timeout`` seconds."""
        if self._up.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    def statistics(self) -> LinkStatistics:
        """A consistent snapshot of the counters (cheap; call as often as you like)."""
        counters = self._counters
        return LinkStatistics(
            connected=self.connected,
            protocol=self._protocol,
            connect_attempts=counters.connect_attempts,
            connects=counters.connects,
            reconnects=max(counters.connects - 1, 0),
            auth_failures=counters.auth_failures,
            publish_ok=counters.publish_ok,
            publish_failed=counters.publish_failed,
            publish_refused=counters.publish_refused,
            messages_in=counters.messages_in,
            callback_errors=counters.callback_errors,
            last_error=counters.last_error,
            broker=self.spec.redacted(),
            failovers=counters.failovers,
            resent=counters.resent,
            lost_unsent=counters.lost_unsent,
            dropped_unread=counters.dropped_unread,
            publish_too_large=counters.publish_too_large,
        )

    # ------------------------------------------------------------------ publishing
    def publish_nowait(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        content_type: str | None = None,
        expiry: int | None = None,
        correlation_data: bytes | None = None,
        resend: bool = False,
    ) -> bool:
        """Hand a message to the connection without waiting; never blocks.

        Args:
            topic: Topic name (no wildcards).
            payload: Message body.
            qos: 0, 1 or 2.
            retain: Ask the broker to retain it.
            content_type: MQTT 5 content type (e.g. ``application/msgpack``); dropped on
                3.1.1 sessions.
            expiry: MQTT 5 message expiry interval in seconds; dropped on 3.1.1.
            correlation_data: MQTT 5 correlation data (the reply to a request carries
                the request's); dropped on 3.1.1.
            resend: If the connection dies before confirming the message (QoS 0: written
                to the socket; QoS 1/2: acknowledged), send it again first thing on the
                next connection (see the module docstring for what that guarantees).

        Returns:
            ``True`` if queued for sending, ``False`` if disconnected or if
            ``max_queued_outgoing`` messages are still unsent/unacknowledged.

        Raises:
            ValueError: Invalid topic (wildcards, empty) or QoS (a programming error).
        """
        limit = self._max_queued if resend else self._max_queued + self._reserve
        message = Kept(topic, payload, qos, retain, content_type, expiry, correlation_data)
        return self._send(message, limit, resend) is not None

    def publish_frames(
        self,
        messages: Sequence[tuple[str, bytes]],
        *,
        content_type: str | None = None,
        expiry: int | None = None,
    ) -> int:
        """Hand several QoS 0 messages (``(topic, payload)``, no retain) to the
        connection at once, in order, never blocking.

        Each is treated exactly as ``publish_nowait(topic, payload, qos=0,
        content_type=content_type, expiry=expiry, resend=True)`` would treat it, in the
        same order, with the same counters; only the per-message calls are saved
        (inside :meth:`write_batch`, the case this is for: a slice of frames).

        Returns:
            How many were queued: always the first ones. The rest were refused
            (disconnected, or ``max_queued_outgoing`` messages still unsent) and are
            counted in ``publish_failed``, as ``publish_nowait`` counts each refusal.

        Raises:
            ValueError: An invalid topic or an oversized message (a programming error);
                the messages before it are queued and counted.
        """
        counters = self._counters
        conn, outbox = self._conn, self._outbox
        if conn is None or outbox is None or conn.lost.is_set() or not self._up.is_set():
            counters.publish_failed += len(messages)
            return 0
        room = self._max_queued - len(outbox)
        wanted = messages if room >= len(messages) else messages[: max(room, 0)]
        if conn.broker_max_packet is not None:
            # Never a packet the broker disconnects at: stop before the first too large.
            for i, (topic, payload) in enumerate(wanted):
                if self._too_large(conn, topic, len(payload), 0, content_type, expiry, None):
                    wanted = wanted[:i]
                    break
        mids: list[int] = []
        try:
            conn.publish_frames(wanted, content_type, expiry, mids)
        finally:
            # Until the connection confirms them they count against max_queued_outgoing
            # (and are sent again on the next connection should this one die first).
            outbox.add_frames(mids, wanted, content_type, expiry)
            counters.publish_ok += len(mids)
        counters.publish_failed += len(messages) - len(mids)
        return len(mids)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        content_type: str | None = None,
        expiry: int | None = None,
        correlation_data: bytes | None = None,
    ) -> bool:
        """Publish and wait until written (QoS 0) or acknowledged (QoS 1/2).

        Same arguments as :meth:`publish_nowait`. Returns ``False`` at once when
        disconnected, and ``False`` if the connection drops or ``publish_timeout``
        seconds pass before completion; never raises for connection problems.
        """
        limit = self._max_queued + self._reserve
        message = Kept(topic, payload, qos, retain, content_type, expiry, correlation_data)
        sent = self._send(message, limit, False)
        if sent is None:
            return False
        outbox, mid = sent
        # No await since _send(): the confirmation for this mid cannot have come yet.
        ok = await outbox.wait(mid, self._publish_timeout)
        if ok is None:
            LOG.debug("publish to %r not completed within %g s", topic, self._publish_timeout)
        if not ok:
            counters = self._counters
            counters.publish_ok -= 1
            counters.publish_failed += 1
            if ok is False and not outbox.closed:
                counters.publish_refused += 1
                self._publish_refused(topic)
        return bool(ok)

    def _refused_nowait(self) -> None:
        counters = self._counters
        counters.publish_ok -= 1
        counters.publish_failed += 1
        counters.publish_refused += 1
        self._publish_refused("(a publish_nowait topic)")

    def write_batch(self) -> contextlib.AbstractContextManager[None]:
        """A block whose ``publish_nowait`` calls are written to the socket together at
        its end (one TCP segment where they fit) instead of one write per message; the
        messages, their order and their accounting are as outside a batch."""
        conn = self._conn
        if conn is None or conn.lost.is_set():
            return contextlib.nullcontext()
        return conn.write_batch()

    def can_publish(self) -> bool:
        """True when a publish would be accepted now: connected, and the outgoing window
        (``max_queued_outgoing``) has room. Lets a producer leave data in its own queue
        instead of taking it out only to have it refused."""
        return self.room() > 0

    def room(self) -> int:
        """How many ``resend`` publishes (:meth:`publish_frames`, or
        :meth:`publish_nowait` with ``resend=True``) the outgoing window accepts now: 0
        while disconnected. Lets a producer take out of its own queue only what will be
        accepted, and choose which of its queues goes first."""
        conn, outbox = self._conn, self._outbox
        if conn is None or outbox is None or conn.lost.is_set() or not self._up.is_set():
            return 0
        return max(0, self._max_queued - len(outbox))

    def _publish_refused(self, topic: str) -> None:
        """Log a broker's negative PUBACK (MQTT 5: usually an ACL), once per topic."""
        if topic in self._refused_topics or len(self._refused_topics) >= 100:
            return
        self._refused_topics.add(topic)
        msg = f"broker {self._spec.redacted()} refused a publish to {topic!r} (not authorised?)"
        self._counters.last_error = msg
        LOG.error("%s", AuthError(msg))

    def _send(self, message: Kept, limit: int, keep: bool) -> tuple[Outbox, int] | None:
        """Queue one message unless ``limit`` messages are unconfirmed (``keep``: to be
        sent again should the connection die first); ``(outbox, mid)`` or ``None``."""
        conn, outbox = self._conn, self._outbox
        if conn is None or outbox is None or conn.lost.is_set() or not self._up.is_set():
            self._counters.publish_failed += 1
            return None
        # Too large first: such a message is refused whatever the window holds.
        if conn.broker_max_packet is not None and self._too_large(conn, *_sized(message)):
            self._counters.publish_failed += 1
            return None
        if len(outbox) >= limit:
            self._counters.publish_failed += 1
            return None
        return self._queue(conn, outbox, message, keep)

    @property
    def packet_limit(self) -> int | None:
        """The Maximum Packet Size the broker of the current connection named in its
        CONNACK (MQTT 5), or None (none named, 3.1.1, or not connected)."""
        conn = self._conn
        return None if conn is None else conn.broker_max_packet

    def payload_limit(
        self,
        topic: str,
        *,
        qos: int = 0,
        content_type: str | None = None,
        expiry: int | None = None,
    ) -> int | None:
        """The largest payload a message to ``topic`` may have on the current connection:
        what fits the Maximum Packet Size the broker named in its CONNACK (MQTT 5) with
        the topic and these properties; None when the broker named none (or on 3.1.1).
        A larger one is refused (counted in ``publish_too_large``): the broker would
        close the connection at it."""
        limit = self.packet_limit
        if limit is None:
            return None
        properties = _properties_size(content_type, expiry, None)
        name = len(topic.encode())
        room = limit - publish_size(name, 0, qos, properties)
        # A longer payload may lengthen the remaining length's varint by up to 3 bytes.
        while room > 0 and publish_size(name, room, qos, properties) > limit:
            room -= 1
        return max(0, room)

    def fits(
        self,
        topic: str,
        payload_bytes: int,
        *,
        qos: int = 0,
        content_type: str | None = None,
        expiry: int | None = None,
    ) -> bool:
        """Whether a message to ``topic`` of ``payload_bytes`` fits the Maximum Packet Size
        the current broker named (always, when it named none). One that does not is
        counted as refused (``publish_too_large`` and ``publish_failed``): the caller
        drops it, and says so in its own terms (the link logs nothing here)."""
        conn = self._conn
        if conn is None:
            return True
        if self._oversize(conn, topic, payload_bytes, qos, content_type, expiry) is None:
            return True
        self._counters.publish_failed += 1
        return False

    def _too_large(
        self,
        conn: Connection,
        topic: str,
        payload_bytes: int,
        qos: int,
        content_type: str | None,
        expiry: int | None,
        correlation_data: bytes | None,
    ) -> bool:
        """Whether the broker's Maximum Packet Size refuses this message; counts it in
        ``publish_too_large`` and logs it once per topic if so."""
        size = self._oversize(
            conn, topic, payload_bytes, qos, content_type, expiry, correlation_data
        )
        if size is None:
            return False
        if topic not in self._too_large_topics and len(self._too_large_topics) < 100:
            self._too_large_topics.add(topic)
            LOG.warning(
                "not sent: a message of %d bytes to %r, past the %d bytes broker %s takes in "
                "one packet (counted in publish_too_large)",
                size,
                topic,
                conn.broker_max_packet,
                self._spec.redacted(),
            )
        return True

    def _oversize(
        self,
        conn: Connection,
        topic: str,
        payload_bytes: int,
        qos: int,
        content_type: str | None,
        expiry: int | None,
        correlation_data: bytes | None = None,
    ) -> int | None:
        """The whole packet's size when it passes the Maximum Packet Size the broker named
        in its CONNACK (an MQTT 5 one: a property block), counted in
        ``publish_too_large``; None when it fits or no limit was named."""
        limit = conn.broker_max_packet
        if limit is None:
            return None
        properties = _properties_size(content_type, expiry, correlation_data)
        size = publish_size(len(topic.encode()), payload_bytes, qos, properties)
        if size <= limit:
            return None
        self._counters.publish_too_large += 1
        return size

    def _queue(
        self, conn: Connection, outbox: Outbox, message: Kept, keep: bool
    ) -> tuple[Outbox, int] | None:
        mid = conn.publish(*message)
        if mid is None:
            self._counters.publish_failed += 1
            return None
        # Until the connection confirms it, it counts against max_queued_outgoing.
        outbox.add(mid, message if keep else None)
        self._counters.publish_ok += 1
        return outbox, mid

    def _resend_carried(self, conn: Connection, outbox: Outbox) -> None:
        """Send the carried messages, in their order, on a new connection (before
        ``connected`` is set, so nothing newer can overtake them)."""
        carried = self._resend.take()
        for kept in carried:
            if conn.broker_max_packet is not None and self._too_large(conn, *_sized(kept)):
                self._counters.lost_unsent += 1  # this broker takes no packet that large
                continue
            if self._queue(conn, outbox, kept, True) is None:
                self._counters.lost_unsent += 1
                continue
            self._counters.resent += 1
        if carried:
            LOG.info(
                "sent %d message(s) again that the lost connection had not confirmed",
                len(carried),
            )

    # ------------------------------------------------------------------ lifecycle
    async def stop(self) -> None:
        """Disconnect cleanly (no last will) and make :meth:`run` return.

        Returns when :meth:`run` has finished; returns at once if it is not running.
        A stop requested before :meth:`run` starts makes that run return at once
        (so a stop racing a just-created run task wins).
        """
        self._stop_requested.set()
        if self._running:
            await self._finished.wait()

    # ------------------------------------------------------------------ diagnostics
    def _raw_socket(self) -> socket.socket | None:
        """The current TCP socket (for tests and diagnostics), or ``None``."""
        conn = self._conn
        return None if conn is None else conn.raw_socket()


def _sized(message: Kept) -> tuple[str, int, int, str | None, int | None, bytes | None]:
    """The arguments of ``MqttLink._too_large`` for a kept message."""
    return (
        message.topic,
        len(message.payload),
        message.qos,
        message.content_type,
        message.expiry,
        message.correlation_data,
    )


def _properties_size(
    content_type: str | None, expiry: int | None, correlation_data: bytes | None
) -> int:
    """Bytes of an MQTT 5 PUBLISH property block holding these properties (each an
    identifier byte, then a UTF-8 string or binary with its 2-byte length, or a 4-byte
    integer)."""
    size = 0 if not content_type else 3 + len(content_type.encode())
    size += 0 if expiry is None else 5
    return size + (0 if correlation_data is None else 3 + len(correlation_data))


def _check(ok: bool, name: str, expected: str, got: object) -> None:
    if not ok:
        msg = f"MqttLink {name} must be {expected}, got {got!r}"
        raise ConfigError(msg)


def _check_filter(topic_filter: str) -> None:
    problem = None
    if not isinstance(topic_filter, str) or not topic_filter:
        problem = "a non-empty string"
    elif "\x00" in topic_filter:
        problem = "free of NUL characters"
    else:
        levels = topic_filter.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                problem = "using '#' only as the whole last level"
            elif "+" in level and level != "+":
                problem = "using '+' only as a whole level"
    if problem is not None:
        msg = f"MQTT topic filter must be {problem}, got {topic_filter!r}"
        raise ConfigError(msg)
