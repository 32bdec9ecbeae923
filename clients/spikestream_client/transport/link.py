"""A long-lived MQTT connection: connect, subscribe, dispatch, publish, reconnect.

:class:`MqttLink` wraps :class:`aiomqtt.Client` (one client object per connection
attempt) and adds what a service that must stay up needs:

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
  returns ``False`` (disconnected, outgoing queue full); :meth:`MqttLink.publish` also
  waits (bounded) until the bytes are written (QoS 0) or acknowledged (QoS 1/2).
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
import logging
import math
import random
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from spikestream_client.errors import AuthError, ConfigError, TransportError
from spikestream_client.transport.urls import BrokerSpec, ProtocolChoice, TlsOptions

__all__ = [
    "ConnectHook",
    "LinkStatistics",
    "MessageCallback",
    "MessageMeta",
    "MqttLink",
    "ProtocolChoice",
    "Will",
]

_S = TypeVar("_S", bound=socket.socket)
_log = logging.getLogger("spikestream.transport.link")
# paho/aiomqtt chatter (packet-level DEBUG lines) goes to a child logger of ours so that
# it can be switched on for debugging without touching the root logger.
_mqtt_log = logging.getLogger("spikestream.transport.mqtt")


# MQTT 5 reason codes (3.1.1 CONNACK return codes are mapped onto these by paho).
_RC_UNSUPPORTED_PROTOCOL = 0x84
_AUTH_REASON_CODES = frozenset({0x86, 0x87, 0x8C})  # bad user/pass, not authorised, bad method
_FAILURE = 0x80


class MessageMeta(NamedTuple):
    """What arrived with a message besides topic and payload.

    Attributes:
        qos: QoS the message was delivered with (0..2).
        retain: Whether it is a retained message replayed on subscribe.
        content_type: MQTT 5 content type property, ``None`` on 3.1.1 or when absent.
        expiry: MQTT 5 message expiry interval left, in seconds, or ``None``.
        response_topic: MQTT 5 response topic of a request, or ``None``.
        correlation_data: MQTT 5 correlation data of a request (opaque bytes), or ``None``.
    """

    qos: int
    retain: bool
    content_type: str | None = None
    expiry: int | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None


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


class _ProtocolRefused(TransportError):
    """The broker refused the MQTT protocol version we offered."""


class _NoConnack(TransportError):
    """TCP connected but the broker never answered CONNECT (hung up or stayed silent)."""


class _ClosedBeforeConnack(aiomqtt.MqttError):
    """The broker closed the connection before answering CONNECT."""


# Sockets created by the current thread inside paho's connect() (see _client_connect).
_connect_scope = threading.local()


def _track(sock: _S) -> _S:
    created: list[socket.socket] | None = getattr(_connect_scope, "sockets", None)
    if created is not None:
        created.append(sock)
    return sock


class _TrackingSSLContext(ssl.SSLContext):
    """An SSLContext that reports the sockets it wraps to :func:`_track`, so that a
    socket whose handshake fails inside paho's connect() can be closed."""

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return _track(
            super().wrap_socket(
                sock,
                server_side=server_side,
                do_handshake_on_connect=do_handshake_on_connect,
                suppress_ragged_eofs=suppress_ragged_eofs,
                server_hostname=server_hostname,
                session=session,
            )
        )


class _PackedOnce(Properties):
    """PUBLISH properties that serialise themselves once.

    paho packs a message's properties on every publish, in Python: ~26 µs per message,
    measured with cProfile on a service publishing 4,500 frames/s, a third of what the
    I/O thread spends per frame. The link publishes a handful of fixed property sets, so
    each is packed when it is made and the bytes are reused.
    """

    def freeze(self) -> None:
        """Pack now; later ``pack()`` calls return these bytes. Set no property after."""
        # Properties.__setattr__ only accepts MQTT property names.
        object.__setattr__(self, "_packed", super().pack())  # type: ignore[no-untyped-call]

    def pack(self) -> bytes:
        packed = self.__dict__.get("_packed")
        if packed is None:
            return super().pack()  # type: ignore[no-untyped-call,no-any-return]
        return packed  # type: ignore[no-any-return]


class _Kept(NamedTuple):
    """A message kept until its connection confirms it (``publish_nowait(resend=True)``)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    content_type: str | None
    expiry: int | None
    correlation_data: bytes | None = None


class _LinkClient(aiomqtt.Client):
    """aiomqtt.Client with the hooks MqttLink needs.

    aiomqtt's message iterator creates a task per message and cannot report connection
    loss without one; here paho's callbacks are overridden instead so that incoming
    messages go straight to the link's sync callback, publish completion and connection
    loss are tracked without extra tasks, and a connection closed before CONNACK fails
    the connect at once instead of after the full timeout.
    """

    def __init__(self, link: MqttLink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._link = link
        self._loop_thread = threading.get_ident()
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        # mid -> future resolved with True when paho reports the message written (QoS 0)
        # or acknowledged (QoS 1/2); None for fire-and-forget sends. Its size bounds
        # the outgoing queue.
        self.unconfirmed: dict[int, asyncio.Future[bool] | None] = {}
        # mid -> message to send again on the next connection should this one die before
        # confirming it (publish_nowait(resend=True)); a subset of ``unconfirmed``.
        self.kept: dict[int, _Kept] = {}
        # Set when the blocking connect (run by aiomqtt in an executor thread) returns,
        # so cleanup after a cancelled connect can wait for the socket to exist.
        self.connect_returned = threading.Event()
        self.tcp_connected = False
        create_tcp = self._client._create_socket_connection

        def tracked_tcp() -> socket.socket:
            return _track(create_tcp())

        self._client._create_socket_connection = tracked_tcp  # type: ignore[method-assign]

    # --- runs in an executor thread -------------------------------------------------
    def _client_connect(self) -> None:
        # paho leaks the socket when the TLS or WebSocket handshake inside connect()
        # fails (it is never stored in paho's _sock); record every socket created in
        # this thread during connect() and close the orphans.
        created: list[socket.socket] = []
        _connect_scope.sockets = created
        try:
            super()._client_connect()
            self.tcp_connected = True
        except BaseException:
            if self._client.socket() is None:
                for sock in created:
                    sock.close()
            raise
        finally:
            _connect_scope.sockets = None
            self.connect_returned.set()

    # --- paho callbacks (event loop thread, except during connect) -----------------
    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._link._dispatch(message)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        waiter = self.unconfirmed.pop(mid, None)
        if self.kept:
            self.kept.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reason_code.value < _FAILURE)
        elif reason_code.value >= _FAILURE:
            # A publish_nowait() the broker refused (MQTT 5 negative PUBACK, usually an
            # ACL): nobody awaits it, so count it here; it must not vanish silently.
            self._link._refused_nowait()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if flags.is_disconnect_packet_from_server:
            reason = f"broker sent DISCONNECT: {reason_code}"
        elif reason_code.value == 0:
            reason = "closed by us"
        else:
            reason = "socket closed or keepalive expired"
        self._call_in_loop(self._handle_disconnect, reason)
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _handle_disconnect(self, reason: str) -> None:
        if self.tcp_connected and not self.lost.is_set() and not self._connected.done():
            # aiomqtt ignores a disconnect before CONNACK and would wait for its timeout;
            # its __aenter__ is awaiting this future now, so fail it at once.
            self._connected.set_exception(_ClosedBeforeConnack(reason))
        self.mark_lost(reason)

    def _call_in_loop(self, fn: Callable[[str], None], arg: str) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(arg)
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(fn, arg)

    # --- helpers (event loop thread) -----------------------------------------------
    def mark_lost(self, reason: str) -> None:
        """Record the end of this connection and fail everything waiting on it."""
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        for waiter in self.unconfirmed.values():
            if waiter is not None and not waiter.done():
                waiter.set_result(False)
        self.unconfirmed.clear()
        if self.kept:
            # Synchronously, before any reconnect: the next connection sends these first.
            self._link._carry_over(list(self.kept.values()))
            self.kept.clear()

    def abort(self, reason: str) -> None:
        """Close the socket without an MQTT DISCONNECT (the broker will send the will)."""
        self.mark_lost(reason)
        # paho's _sock_close unregisters the reader/writer through aiomqtt's callbacks
        # and closes the fd; idempotent.
        self._client._sock_close()
        if self._disconnected.done():
            if not self._disconnected.cancelled():
                self._disconnected.exception()  # mark retrieved: no "never retrieved" log
        else:
            self._disconnected.set_result(None)
        if self._connected.done() and not self._connected.cancelled():
            self._connected.exception()

    @property
    def disconnected_future(self) -> asyncio.Future[None]:
        """aiomqtt's future that completes when its socket callbacks hit an error."""
        return self._disconnected

    @property
    def paho(self) -> paho.Client:
        """The underlying paho client."""
        return self._client


class MqttLink:
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
        self._on_message = on_message
        self._will = will
        self._keepalive = int(keepalive)
        self._backoff_min = float(backoff_min)
        self._backoff_max = float(backoff_max)
        self._stable_after = (
            max(self._backoff_max, 5.0) if stable_after is None else float(stable_after)
        )
        self._protocol_choices: tuple[ProtocolChoice, ...] = tuple(
            one.protocol if protocol is None else protocol for one in specs
        )
        self._tcp_nodelay = tcp_nodelay
        self._max_queued = int(max_queued_outgoing)
        self._reserve = max(16, self._max_queued // 10)
        self._connect_timeout = float(connect_timeout)
        self._publish_timeout = float(publish_timeout)
        self._max_auth_failures = max_auth_failures
        self._rng = rng or random.Random()
        self._tls_contexts = tuple(_tls_context(one.tls) if one.uses_tls else None for one in specs)

        self._subscriptions: dict[str, int] = {}
        self._subscriptions_changed = asyncio.Event()
        self._hooks: list[ConnectHook] = []
        self._props_cache: dict[tuple[str | None, int | None], Properties] = {}
        self._refused_topics: set[str] = set()

        self._client: _LinkClient | None = None
        # The protocol version each broker accepted last (None: never connected).
        self._negotiated: list[aiomqtt.ProtocolVersion | None] = [None] * len(specs)
        self._resend: list[_Kept] = []
        self._connected = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

        self._connect_attempts = 0
        self._connects = 0
        self._auth_failures = 0
        self._publish_ok = 0
        self._publish_failed = 0
        self._publish_refused_count = 0
        self._messages_in = 0
        self._callback_errors = 0
        self._failovers = 0
        self._resent = 0
        self._lost_unsent = 0
        self._last_error: str | None = None

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

    def set_message_callback(self, callback: MessageCallback | None) -> None:
        """Replace the ``on_message`` callback (``None`` drops incoming messages)."""
        self._on_message = callback

    # ------------------------------------------------------------------ state
    @property
    def spec(self) -> BrokerSpec:
        """The broker this link talks to now (or tries next)."""
        return self._specs[self._index]

    @property
    def specs(self) -> tuple[BrokerSpec, ...]:
        """Every broker this link may use, in failover order."""
        return self._specs

    # The current broker, for the many log lines that name it.
    _spec = spec

    @property
    def _protocol(self) -> aiomqtt.ProtocolVersion | None:
        """The protocol version of the current broker (of the live connection, if any)."""
        return self._negotiated[self._index]

    @_protocol.setter
    def _protocol(self, version: aiomqtt.ProtocolVersion | None) -> None:
        self._negotiated[self._index] = version

    @property
    def connected(self) -> bool:
        """Whether a session is up (connected, initial subscriptions done, not lost)."""
        client = self._client
        return self._connected.is_set() and client is not None and not client.lost.is_set()

    @property
    def protocol(self) -> str | None:
        """``"5"`` or ``"3.1.1"`` once negotiated, else ``None``."""
        return _protocol_name(self._protocol)

    async def wait_connected(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until connected; ``True`` if so, ``False`` after ``timeout`` seconds."""
        if self._connected.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    def statistics(self) -> LinkStatistics:
        """A consistent snapshot of the counters (cheap; call as often as you like)."""
        return LinkStatistics(
            connected=self.connected,
            protocol=_protocol_name(self._protocol),
            connect_attempts=self._connect_attempts,
            connects=self._connects,
            reconnects=max(self._connects - 1, 0),
            auth_failures=self._auth_failures,
            publish_ok=self._publish_ok,
            publish_failed=self._publish_failed,
            publish_refused=self._publish_refused_count,
            messages_in=self._messages_in,
            callback_errors=self._callback_errors,
            last_error=self._last_error,
            broker=self.spec.redacted(),
            failovers=self._failovers,
            resent=self._resent,
            lost_unsent=self._lost_unsent,
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
        sent = self._send(
            topic, payload, qos, retain, content_type, expiry, correlation_data, limit
        )
        if sent is None:
            return False
        if resend:
            client, mid = sent
            client.kept[mid] = _Kept(
                topic, payload, qos, retain, content_type, expiry, correlation_data
            )
        return True

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
        sent = self._send(
            topic, payload, qos, retain, content_type, expiry, correlation_data, limit
        )
        if sent is None:
            return False
        client, mid = sent
        # No await since _send(): on_publish for this mid cannot have run yet.
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        client.unconfirmed[mid] = waiter
        try:
            async with asyncio.timeout(self._publish_timeout):
                ok = await waiter
        except TimeoutError:
            if client.unconfirmed.get(mid) is waiter:
                del client.unconfirmed[mid]
            _log.debug("publish to %r not completed within %g s", topic, self._publish_timeout)
            ok = None
        if not ok:
            self._publish_ok -= 1
            self._publish_failed += 1
            if ok is False and not client.lost.is_set():
                self._publish_refused_count += 1
                self._publish_refused(topic)
        return bool(ok)

    def _refused_nowait(self) -> None:
        self._publish_ok -= 1
        self._publish_failed += 1
        self._publish_refused_count += 1
        self._publish_refused("(a publish_nowait topic)")

    def can_publish(self) -> bool:
        """True when a publish would be accepted now: connected, and the outgoing window
        (``max_queued_outgoing``) has room. Lets a producer leave data in its own queue
        instead of taking it out only to have it refused."""
        client = self._client
        return (
            client is not None
            and not client.lost.is_set()
            and self._connected.is_set()
            and len(client.unconfirmed) < self._max_queued
        )

    def _publish_refused(self, topic: str) -> None:
        """Log a broker's negative PUBACK (MQTT 5: usually an ACL), once per topic."""
        if topic in self._refused_topics or len(self._refused_topics) >= 100:
            return
        self._refused_topics.add(topic)
        msg = f"broker {self._spec.redacted()} refused a publish to {topic!r} (not authorised?)"
        self._last_error = msg
        _log.error("%s", AuthError(msg))

    def _send(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        content_type: str | None,
        expiry: int | None,
        correlation_data: bytes | None,
        limit: int,
    ) -> tuple[_LinkClient, int] | None:
        """Queue one message in paho unless ``limit`` messages are unconfirmed;
        ``(client, mid)`` or ``None`` if refused."""
        client = self._client
        if client is None or client.lost.is_set() or not self._connected.is_set():
            self._publish_failed += 1
            return None
        if len(client.unconfirmed) >= limit:
            self._publish_failed += 1
            return None
        return self._queue(
            client, topic, payload, qos, retain, content_type, expiry, correlation_data
        )

    def _queue(
        self,
        client: _LinkClient,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        content_type: str | None,
        expiry: int | None,
        correlation_data: bytes | None = None,
    ) -> tuple[_LinkClient, int] | None:
        properties = None
        if self._protocol is aiomqtt.ProtocolVersion.V5:
            if correlation_data is not None:
                # Different for every reply: packed per message, never cached.
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                if content_type:
                    properties.ContentType = content_type
                if expiry is not None:
                    properties.MessageExpiryInterval = int(expiry)
                properties.CorrelationData = correlation_data
            elif content_type or expiry is not None:
                properties = self._properties(content_type, expiry)
        info = client.paho.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self._publish_failed += 1
            return None
        # With aiomqtt's socket callbacks paho never writes inside publish(): the bytes
        # go out on the next writable event, and on_publish then pops this entry. Until
        # then it counts against max_queued_outgoing.
        client.unconfirmed[info.mid] = None
        self._publish_ok += 1
        return client, info.mid

    def _carry_over(self, messages: list[_Kept]) -> None:
        """Keep a lost connection's unconfirmed ``resend=True`` messages for the next one
        (called while the connection is marked lost, before any reconnect)."""
        self._resend.extend(messages)
        excess = len(self._resend) - self._max_queued
        if excess > 0:  # bounded like the outgoing window; the oldest go, counted
            del self._resend[:excess]
            self._lost_unsent += excess

    def _resend_carried(self, client: _LinkClient) -> None:
        """Send the carried messages, in their order, on a new connection (before
        ``connected`` is set, so nothing newer can overtake them)."""
        carried, self._resend = self._resend, []
        for kept in carried:
            sent = self._queue(client, *kept)
            if sent is None:
                self._lost_unsent += 1
                continue
            client.kept[sent[1]] = kept
            self._resent += 1
        if carried:
            _log.info(
                "sent %d message(s) again that the lost connection had not confirmed",
                len(carried),
            )

    def _properties(self, content_type: str | None, expiry: int | None) -> Properties:
        key = (content_type, expiry)
        props = self._props_cache.get(key)
        if props is None:
            props = _PackedOnce(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if content_type:
                props.ContentType = content_type
            if expiry is not None:
                props.MessageExpiryInterval = int(expiry)
            props.freeze()
            if len(self._props_cache) >= 64:  # bounded: callers normally use a handful
                self._props_cache.clear()
            self._props_cache[key] = props
        return props

    # ------------------------------------------------------------------ incoming
    def _dispatch(self, message: paho.MQTTMessage) -> None:
        self._messages_in += 1
        callback = self._on_message
        if callback is None:
            return
        try:
            props = getattr(message, "properties", None)
            if props is None:
                meta = MessageMeta(message.qos, bool(message.retain))
            else:
                correlation = getattr(props, "CorrelationData", None)
                meta = MessageMeta(
                    message.qos,
                    bool(message.retain),
                    getattr(props, "ContentType", None),
                    getattr(props, "MessageExpiryInterval", None),
                    getattr(props, "ResponseTopic", None),
                    None if correlation is None else bytes(correlation),
                )
            payload = message.payload
            if not isinstance(payload, bytes):  # paho may hand out a bytearray slice
                payload = bytes(payload)
            callback(message.topic, payload, meta)
        except Exception:
            # An exception escaping here would make paho drop the connection; a bad
            # message must not cost every other message a reconnect.
            self._callback_errors += 1
            if self._callback_errors == 1 or self._callback_errors % 1000 == 0:
                _log.exception(
                    "on_message callback failed (%d failures so far)", self._callback_errors
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

    async def run(self) -> None:
        """Connect and keep the connection up until :meth:`stop` or cancellation.

        Raises:
            AuthError: ``max_auth_failures`` consecutive logins were refused.
            RuntimeError: ``run()`` is already running.
            asyncio.CancelledError: Propagated after a clean disconnect.
        """
        if self._running:
            msg = "MqttLink.run() is already running"
            raise RuntimeError(msg)
        self._running = True
        self._finished.clear()
        delay: float | None = None
        consecutive_auth = 0
        failures_in_row = 0
        try:
            while not self._stop_requested.is_set():
                self._connect_attempts += 1
                client: _LinkClient | None = None
                try:
                    client = await self._unless_stopped(self._connect())
                except AuthError as exc:
                    consecutive_auth += 1
                    self._auth_failures += 1
                    self._last_error = str(exc)
                    limit = self._max_auth_failures
                    if limit is not None and consecutive_auth >= limit:
                        msg = f"{exc}; giving up after {consecutive_auth} refused attempts"
                        _log.error("%s", msg)
                        raise AuthError(msg) from None
                    delay = self._next_delay(delay)
                    self._fail_over()
                    _log.error(
                        "%s (attempt %d/%s); retrying in %.2f s",
                        exc,
                        consecutive_auth,
                        "unlimited" if limit is None else limit,
                        delay,
                    )
                    if await self._sleep_unless_stopped(delay):
                        break
                    continue
                except TransportError as exc:
                    self._last_error = str(exc)
                    failures_in_row += 1
                    delay = self._next_delay(delay)
                    self._fail_over()
                    level = logging.WARNING if failures_in_row == 1 else logging.INFO
                    _log.log(
                        level,
                        "%s (attempt %d); retrying%s in %.2f s",
                        exc,
                        failures_in_row,
                        self._where_next(),
                        delay,
                    )
                    if await self._sleep_unless_stopped(delay):
                        break
                    continue
                if client is None:  # stop requested while connecting
                    break
                consecutive_auth = 0
                failures_in_row = 0
                started = time.monotonic()
                reason = await self._session(client)
                if reason is None:
                    break
                self._last_error = reason
                if time.monotonic() - started >= self._stable_after:
                    delay = None
                delay = self._next_delay(delay)
                lost_from = self._spec.redacted()
                self._fail_over()
                _log.warning(
                    "connection to %s lost (%s); reconnecting%s in %.2f s",
                    lost_from,
                    reason,
                    self._where_next(),
                    delay,
                )
                if await self._sleep_unless_stopped(delay):
                    break
        finally:
            if self._resend:  # stopped before a connection could take them: lost, counted
                self._lost_unsent += len(self._resend)
                self._resend.clear()
            self._running = False
            self._connected.clear()
            self._client = None
            self._stop_requested.clear()
            self._finished.set()

    def _fail_over(self) -> None:
        """Move on to the next broker of the list (a no-op with one broker)."""
        if len(self._specs) > 1:
            self._index = (self._index + 1) % len(self._specs)
            self._failovers += 1

    def _where_next(self) -> str:
        return f" with {self._spec.redacted()}" if len(self._specs) > 1 else ""

    def _next_delay(self, previous: float | None) -> float:
        """Decorrelated jitter: U(min, 3*previous), capped; first delay near min."""
        low = self._backoff_min
        high = min(self._backoff_max, 3.0 * (previous if previous is not None else low))
        return self._rng.uniform(low, max(low, high))

    async def _sleep_unless_stopped(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; ``True`` if a stop was requested meanwhile."""
        try:
            async with asyncio.timeout(delay):
                await self._stop_requested.wait()
        except TimeoutError:
            return False
        return True

    async def _unless_stopped(self, connecting: Awaitable[_LinkClient]) -> _LinkClient | None:
        """Await ``connecting`` unless :meth:`stop` comes first (then cancel it)."""
        task = asyncio.ensure_future(connecting)
        stop_wait = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            if not task.done():
                task.cancel()
                # Let the connect attempt close its socket before we go on (or propagate
                # our own cancellation, which asyncio.wait does not swallow).
                await asyncio.wait({task})
        if task.cancelled():
            return None
        client = task.result()  # raises the connect error, if any
        if self._stop_requested.is_set():
            await self._close(client)
            return None
        return client

    # ------------------------------------------------------------------ connecting
    def _candidates(self) -> list[aiomqtt.ProtocolVersion]:
        v5, v311 = aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311
        choice = self._protocol_choices[self._index]
        if choice == "5":
            return [v5]
        if choice == "3.1.1" or self._protocol is v311:
            return [v311]
        return [v5, v311]

    async def _connect(self) -> _LinkClient:
        candidates = self._candidates()
        for index, version in enumerate(candidates):
            last = index == len(candidates) - 1
            try:
                client = await self._connect_once(version)
            except _ProtocolRefused as exc:
                if last:
                    raise TransportError(str(exc)) from None
                _log.info("%s; falling back to MQTT 3.1.1", exc)
                continue
            except _NoConnack as exc:
                # A broker that does not know MQTT 5 may hang up, or (amqtt, given a
                # will) wait forever for bytes it mis-parsed. Unless it has spoken MQTT 5
                # with us before, that is worth one 3.1.1 attempt.
                if last or self._protocol is not None:
                    raise TransportError(str(exc)) from None
                _log.info("%s; retrying with MQTT 3.1.1", exc)
                continue
            if self._protocol is not version:
                _log.info(
                    "connected to %s with MQTT %s",
                    self._spec.redacted(),
                    _protocol_name(version),
                )
            self._protocol = version
            return client
        raise AssertionError("unreachable: the last candidate raises or returns")

    def _new_client(self, version: aiomqtt.ProtocolVersion) -> _LinkClient:
        spec = self._spec
        will = None
        if self._will is not None:
            will = aiomqtt.Will(
                topic=self._will.topic,
                payload=self._will.payload,
                qos=self._will.qos,
                retain=self._will.retain,
            )
        options: tuple[tuple[int, int, int], ...] = (
            ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),) if self._tcp_nodelay else ()
        )
        client = _LinkClient(
            self,
            hostname=spec.host,
            port=spec.port,
            username=spec.username,
            password=spec.password_value(),
            logger=_mqtt_log,
            identifier=self._client_id,
            protocol=version,
            will=will,
            transport=spec.transport,
            timeout=self._connect_timeout,
            keepalive=self._keepalive,
            tls_context=self._tls_contexts[self._index],
            socket_options=options,
            websocket_path=spec.ws_path,
        )
        client.paho.connect_timeout = self._connect_timeout
        return client

    async def _connect_once(self, version: aiomqtt.ProtocolVersion) -> _LinkClient:
        client = self._new_client(version)
        try:
            await client.__aenter__()
        except BaseException as exc:
            await self._discard(client)
            if isinstance(exc, aiomqtt.MqttError):
                raise self._connect_error(exc, version, client.tcp_connected) from exc
            raise
        if self._tcp_nodelay:
            _set_nodelay_on_wrapped_socket(client.paho.socket())
        return client

    def _connect_error(
        self, exc: aiomqtt.MqttError, version: aiomqtt.ProtocolVersion, tcp_connected: bool
    ) -> TransportError:
        where = self._spec.redacted()
        if isinstance(exc, MqttConnectError):
            rc = exc.rc
            code = rc.value if isinstance(rc, ReasonCode) else rc
            if code == _RC_UNSUPPORTED_PROTOCOL:
                return _ProtocolRefused(
                    f"broker {where} refused MQTT {_protocol_name(version)} ({rc})"
                )
            if code in _AUTH_REASON_CODES:
                who = (
                    "anonymous login"
                    if self._spec.username is None
                    else (f"login as user {self._spec.username!r}")
                )
                return AuthError(f"broker {where} refused the {who}: {rc}")
            return TransportError(f"broker {where} refused the connection: {rc}")
        if isinstance(exc, _ClosedBeforeConnack):
            return _NoConnack(f"broker {where} closed the connection before CONNACK ({exc})")
        if tcp_connected:
            return _NoConnack(f"broker {where} did not answer CONNECT: {exc}")
        return TransportError(f"cannot connect to {where}: {exc}")

    async def _discard(self, client: _LinkClient) -> None:
        """Close a client whose connect failed or was cancelled, without leaking its fd."""
        if not client.connect_returned.is_set():
            # Cancelled while aiomqtt's executor thread is still inside paho.connect():
            # wait for it (bounded by the TCP connect timeout) so its socket can be
            # closed here rather than leak.
            await asyncio.to_thread(client.connect_returned.wait, self._connect_timeout + 1.0)
            # Let the socket-open callbacks it scheduled on the loop run first.
            await asyncio.sleep(0)
        client.abort("connect failed")

    # ------------------------------------------------------------------ a session
    async def _session(self, client: _LinkClient) -> str | None:
        """Serve one connection. Returns why it was lost, or ``None`` after stop()."""
        self._client = client
        self._connects += 1
        try:
            async with asyncio.TaskGroup() as tg:
                setup = tg.create_task(self._setup(client), name="mqtt-link-setup")
                watchdog = tg.create_task(
                    self._keepalive_watchdog(client), name="mqtt-link-watchdog"
                )
                lost = tg.create_task(client.lost.wait(), name="mqtt-link-lost")
                stop = tg.create_task(self._stop_requested.wait(), name="mqtt-link-stop")
                broken = client.disconnected_future
                waits: set[asyncio.Future[Any]] = {lost, stop, broken}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in (setup, watchdog, lost, stop):
                    task.cancel()
        except BaseException:
            # Cancellation (or a bug): leave cleanly so that the broker drops the will.
            self._connected.clear()
            self._client = None
            await self._close(client)
            raise
        self._connected.clear()
        self._client = None
        if client.lost.is_set():
            client.abort(client.lost_reason or "lost")
            return client.lost_reason or "connection lost"
        if broken.done():
            reason = "socket error"
            if not broken.cancelled() and broken.exception() is not None:
                reason = f"socket error: {broken.exception()}"
            client.abort(reason)
            return reason
        await self._close(client)
        return None

    async def _setup(self, client: _LinkClient) -> None:
        """Subscribe, announce the connection, run hooks, then follow new filters."""
        self._subscriptions_changed.clear()
        subscribed: dict[str, int] = {}
        if not await self._subscribe(client, subscribed):
            return
        self._resend_carried(client)
        self._connected.set()
        if self._connects > 1:
            _log.info(
                "reconnected to %s (reconnect #%d), %d subscriptions restored",
                self._spec.redacted(),
                self._connects - 1,
                len(subscribed),
            )
        for hook in list(self._hooks):
            try:
                await hook()
            except Exception:
                _log.exception("on_connect hook %r failed", hook)
        while True:
            await self._subscriptions_changed.wait()
            self._subscriptions_changed.clear()
            if not await self._subscribe(client, subscribed):
                return

    async def _subscribe(self, client: _LinkClient, subscribed: dict[str, int]) -> bool:
        """Subscribe to registered filters not yet in ``subscribed``. ``False`` if the
        connection had to be dropped."""
        wanted = [(f, q) for f, q in self._subscriptions.items() if subscribed.get(f) != q]
        if not wanted:
            return True
        try:
            codes = await client.subscribe(wanted, timeout=self._connect_timeout)
        except aiomqtt.MqttError as exc:
            client.abort(f"subscribe failed: {exc}")
            return False
        granted: Sequence[int | ReasonCode] = codes
        for (topic_filter, qos), code in zip(wanted, granted, strict=False):
            value = code.value if isinstance(code, ReasonCode) else code
            if value >= _FAILURE:
                where = self._spec.redacted()
                msg = f"broker {where} refused the subscription to {topic_filter!r}: {code}"
                self._last_error = msg
                _log.error("%s", AuthError(msg))
            else:
                subscribed[topic_filter] = qos
        return True

    async def _keepalive_watchdog(self, client: _LinkClient) -> None:
        """Drop the connection when a PINGREQ stays unanswered for half a keepalive."""
        mqtt = client.paho
        keepalive = float(getattr(mqtt, "_keepalive", self._keepalive))  # MQTT 5 may change it
        period = min(1.0, keepalive / 4.0)
        while True:
            await asyncio.sleep(period)
            # paho records when it sent the outstanding PINGREQ (monotonic clock) and
            # resets it to 0 on PINGRESP; it would itself give up only after a whole
            # keepalive.
            ping_sent = getattr(mqtt, "_ping_t", 0)
            if ping_sent and time.monotonic() - ping_sent > keepalive / 2.0:
                waited = time.monotonic() - ping_sent
                reason = f"no PINGRESP for {waited:.1f} s (keepalive {keepalive:g} s)"
                _log.warning("connection to %s is dead: %s", self._spec.redacted(), reason)
                client.abort(reason)
                return

    async def _close(self, client: _LinkClient) -> None:
        """Clean MQTT DISCONNECT (bounded by ``connect_timeout``), then close the fd."""
        if not client.lost.is_set():
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                _log.debug("clean disconnect from %s failed: %s", self._spec.redacted(), exc)
        client.abort("closed")

    # ------------------------------------------------------------------ diagnostics
    def _socket(self) -> socket.socket | None:
        """The current TCP socket (for tests and diagnostics), or ``None``."""
        client = self._client
        if client is None:
            return None
        sock = client.paho.socket()
        raw = getattr(sock, "_socket", sock)  # paho's WebSocket wrapper keeps it here
        return raw if isinstance(raw, socket.socket) else None


def _protocol_name(version: aiomqtt.ProtocolVersion | None) -> str | None:
    if version is None:
        return None
    return "5" if version is aiomqtt.ProtocolVersion.V5 else "3.1.1"


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


def _tls_context(options: TlsOptions | None) -> ssl.SSLContext:
    """Build the client TLS context: CA pinning, optional client cert, verification on."""
    opts = options or TlsOptions()
    # What ssl.create_default_context(SERVER_AUTH) does, with our tracking subclass.
    context = _TrackingSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if opts.ca_file is not None:
            context.load_verify_locations(cafile=str(opts.ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if opts.cert_file is not None:
            context.load_cert_chain(
                str(opts.cert_file), None if opts.key_file is None else str(opts.key_file)
            )
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            f"{name}={path}"
            for name, path in (
                ("ca", opts.ca_file),
                ("cert", opts.cert_file),
                ("key", opts.key_file),
            )
            if path is not None
        )
        msg = f"cannot load TLS files ({files}): {exc}; expected readable PEM files"
        raise ConfigError(msg) from None
    if opts.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _set_nodelay_on_wrapped_socket(sock: object) -> None:
    """aiomqtt applies socket options only to plain sockets; reach through paho's
    WebSocket wrapper so ws:// gets TCP_NODELAY too."""
    raw = getattr(sock, "_socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
