"""The link's connection loop: connect, negotiate, serve a session, back off, fail over.

:class:`Reconnecting` is the half of :class:`~spikestream_client.transport.MqttLink`
that keeps a connection up (``run()``); the other half (``link.py``) is the public API
and publishing. See the :mod:`spikestream_client.transport.link` docstring for the
behaviour (backoff, protocol fallback, auth retries, half-open detection, failover).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Final

from spikestream_client.aio import First, first_of
from spikestream_client.errors import AuthError, TransportError
from spikestream_client.transport.aiomqtt_adapter import Connection, PropertiesCache
from spikestream_client.transport.dispatch import Dispatcher
from spikestream_client.transport.urls import BrokerSpec, ProtocolChoice
from spikestream_client.transport.values import (
    LOG,
    ConnectFailure,
    ConnectHook,
    Counters,
    ProtocolName,
    SubscribeFailure,
    Will,
)
from spikestream_client.transport.window import Outbox, ResendQueue

__all__ = ["Reconnecting"]

# paho/aiomqtt chatter (packet-level DEBUG lines) goes to a child logger of ours so that
# it can be switched on for debugging without touching the root logger.
_mqtt_log = logging.getLogger("spikestream.transport.mqtt")


#: How paho words a connection lost while reading or writing (its socket reset, a broken
#: pipe, a timeout): logged at ERROR, though the link reports the same loss at WARNING
#: and reconnects. A broker restart, a fault the service rides out, must not page anyone
#: who alerts on ERROR.
_PAHO_SOCKET_LOSS = ("failed to receive on socket", "timeout on socket")


class _LateAck(logging.Filter):
    """aiomqtt logs a SUBACK or UNSUBACK whose request was cancelled meanwhile (a client
    closed just after subscribing) as an error with a KeyError traceback: a race of
    ours, not a fault. Kept, as a debug line without the traceback. paho's line for a
    connection lost (:data:`_PAHO_SOCKET_LOSS`) repeats the link's own warning at ERROR:
    kept as a debug line too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(("Unexpected message ID", *_PAHO_SOCKET_LOSS)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = record.exc_text = None
            return _mqtt_log.isEnabledFor(logging.DEBUG)
        return True


_mqtt_log.addFilter(_LateAck())

# MQTT 5 reason codes (3.1.1 CONNACK return codes are mapped onto these by paho).
_RC_UNSUPPORTED_PROTOCOL = 0x84
_AUTH_REASON_CODES = frozenset({0x86, 0x87, 0x8C})  # bad user/pass, not authorised, bad method
_FAILURE = 0x80


#: Seconds a cancelled task of a session has to end before it is cancelled again.
CANCEL_AGAIN_S: Final = 0.05


class _ProtocolRefused(TransportError):
    """The broker refused the MQTT protocol version we offered."""


class _NoConnack(TransportError):
    """TCP connected but the broker never answered CONNECT (hung up or stayed silent)."""


class Reconnecting:
    """Mixin: the connection loop of :class:`MqttLink` (state set by its ``__init__``)."""

    _specs: tuple[BrokerSpec, ...]
    _index: int
    _client_id: str
    _will: Will | None
    _keepalive_s: int
    _backoff_min: float
    _backoff_max: float
    _stable_after: float
    _protocol_choices: tuple[ProtocolChoice, ...]
    _tcp_nodelay: bool
    _max_payload: int
    _connect_timeout: float
    _max_auth_failures: int | None
    _rng: random.Random
    _tls_contexts: tuple[ssl.SSLContext | None, ...]
    _subscriptions: dict[str, int]
    _subscriptions_changed: asyncio.Event
    _hooks: list[ConnectHook]
    _lost_hooks: list[Callable[[], object]]
    _props: PropertiesCache
    _dispatcher: Dispatcher
    _counters: Counters
    _conn: Connection | None
    _outbox: Outbox | None
    _negotiated: list[ProtocolName | None]
    _resend: ResendQueue
    _up: asyncio.Event
    _stop_requested: asyncio.Event
    _finished: asyncio.Event
    _running: bool

    def _refused_nowait(self) -> None:
        raise NotImplementedError

    def _resend_carried(self, conn: Connection, outbox: Outbox) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    @property
    def _spec(self) -> BrokerSpec:
        """The current broker, for the many log lines that name it."""
        return self._specs[self._index]

    @property
    def _protocol(self) -> ProtocolName | None:
        """The protocol version of the current broker (of the live connection, if any)."""
        return self._negotiated[self._index]

    @_protocol.setter
    def _protocol(self, version: ProtocolName | None) -> None:
        self._negotiated[self._index] = version

    # ------------------------------------------------------------------ the loop
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
        counters = self._counters
        delay: float | None = None
        consecutive_auth = 0
        failures_in_row = 0
        try:
            while not self._stop_requested.is_set():
                counters.connect_attempts += 1
                try:
                    conn = await self._unless_stopped(self._connect())
                except AuthError as exc:
                    consecutive_auth += 1
                    counters.auth_failures += 1
                    counters.last_error = str(exc)
                    limit = self._max_auth_failures
                    if limit is not None and consecutive_auth >= limit:
                        msg = f"{exc}; giving up after {consecutive_auth} refused attempts"
                        LOG.error("%s", msg)
                        raise AuthError(msg) from None
                    delay = self._next_delay(delay)
                    self._fail_over()
                    LOG.error(
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
                    counters.last_error = str(exc)
                    failures_in_row += 1
                    delay = self._next_delay(delay)
                    self._fail_over()
                    level = logging.WARNING if failures_in_row == 1 else logging.INFO
                    LOG.log(
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
                if conn is None:  # stop requested while connecting
                    break
                consecutive_auth = 0
                failures_in_row = 0
                started = time.monotonic()
                reason = await self._session(*conn)
                if reason is None:
                    break
                counters.last_error = reason
                if time.monotonic() - started >= self._stable_after:
                    delay = None
                delay = self._next_delay(delay)
                lost_from = self._spec.redacted()
                for lost in list(self._lost_hooks):
                    try:
                        lost()
                    except Exception:
                        LOG.exception("connection-lost hook %r failed", lost)
                self._fail_over()
                LOG.warning(
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
                self._resend.drop()
            self._running = False
            self._up.clear()
            self._conn = None
            self._outbox = None
            self._stop_requested.clear()
            self._finished.set()

    def _fail_over(self) -> None:
        """Move on to the next broker of the list (a no-op with one broker)."""
        if len(self._specs) > 1:
            self._index = (self._index + 1) % len(self._specs)
            self._counters.failovers += 1

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

    async def _unless_stopped(
        self, connecting: Awaitable[tuple[Connection, Outbox]]
    ) -> tuple[Connection, Outbox] | None:
        """Await ``connecting`` unless :meth:`stop` comes first (then cancel it, and let
        it close its socket). Raises the connect error, if any."""
        won = await first_of(connecting, self._stop_requested.wait())
        if not isinstance(won, First):
            return None
        if self._stop_requested.is_set():
            await self._close(won.value[0])
            return None
        return won.value

    # ------------------------------------------------------------------ connecting
    def _candidates(self) -> list[ProtocolName]:
        choice = self._protocol_choices[self._index]
        if choice == "5":
            return ["5"]
        if choice == "3.1.1" or self._protocol == "3.1.1":
            return ["3.1.1"]
        return ["5", "3.1.1"]

    async def _connect(self) -> tuple[Connection, Outbox]:
        candidates = self._candidates()
        for index, version in enumerate(candidates):
            last = index == len(candidates) - 1
            try:
                conn = await self._connect_once(version)
            except _ProtocolRefused as exc:
                if last:
                    raise TransportError(str(exc)) from None
                LOG.info("%s; falling back to MQTT 3.1.1", exc)
                continue
            except _NoConnack as exc:
                # A broker that does not know MQTT 5 may hang up, or (amqtt, given a
                # will) wait forever for bytes it mis-parsed. Unless it has spoken MQTT 5
                # with us before, that is worth one 3.1.1 attempt.
                if last or self._protocol is not None:
                    raise TransportError(str(exc)) from None
                LOG.info("%s; retrying with MQTT 3.1.1", exc)
                continue
            if self._protocol != version:
                LOG.info("connected to %s with MQTT %s", self._spec.redacted(), version)
            self._protocol = version
            return conn
        raise AssertionError("unreachable: the last candidate raises or returns")

    async def _connect_once(self, version: ProtocolName) -> tuple[Connection, Outbox]:
        spec = self._spec
        outbox = Outbox(self._refused_nowait, self._resend.carry)
        conn = Connection(
            host=spec.host,
            port=spec.port,
            username=spec.username,
            password=spec.password_value(),
            client_id=self._client_id,
            protocol=version,
            will=self._will,
            transport=spec.transport,
            ws_path=spec.ws_path,
            tls=self._tls_contexts[self._index],
            keepalive=self._keepalive_s,
            connect_timeout=self._connect_timeout,
            tcp_nodelay=self._tcp_nodelay,
            max_payload=self._max_payload,
            properties=self._props,
            logger=_mqtt_log,
            on_message=self._dispatcher,
            on_published=outbox.published,
            on_written=outbox.written,
            on_lost=outbox.lost,
        )
        try:
            await conn.connect()
        except ConnectFailure as exc:
            raise self._connect_error(exc, version) from exc
        return conn, outbox

    def _connect_error(self, exc: ConnectFailure, version: ProtocolName) -> TransportError:
        where = self._spec.redacted()
        if exc.code is not None:
            if exc.code == _RC_UNSUPPORTED_PROTOCOL:
                return _ProtocolRefused(f"broker {where} refused MQTT {version} ({exc.text})")
            if exc.code in _AUTH_REASON_CODES:
                who = (
                    "anonymous login"
                    if self._spec.username is None
                    else (f"login as user {self._spec.username!r}")
                )
                return AuthError(f"broker {where} refused the {who}: {exc.text}")
            return TransportError(f"broker {where} refused the connection: {exc.text}")
        if exc.closed_before_connack:
            return _NoConnack(f"broker {where} closed the connection before CONNACK ({exc})")
        if exc.tcp_connected:
            return _NoConnack(f"broker {where} did not answer CONNECT: {exc}")
        return TransportError(f"cannot connect to {where}: {exc}")

    # ------------------------------------------------------------------ a session
    async def _session(self, conn: Connection, outbox: Outbox) -> str | None:
        """Serve one connection. Returns why it was lost, or ``None`` after stop()."""
        self._conn = conn
        self._outbox = outbox
        self._counters.connects += 1
        try:
            async with asyncio.TaskGroup() as tg:
                setup = tg.create_task(self._setup(conn, outbox), name="mqtt-link-setup")
                watchdog = tg.create_task(self._keepalive_watchdog(conn), name="mqtt-link-watchdog")
                await first_of(conn.wait_ended(), self._stop_requested.wait())
                await _cancel_until_done(setup, watchdog)
        except BaseException:
            # Cancellation (or a bug): leave cleanly so that the broker drops the will.
            self._up.clear()
            self._conn = None
            self._outbox = None
            await self._close(conn)
            raise
        self._up.clear()
        self._conn = None
        self._outbox = None
        reason = conn.end_reason()
        if reason is not None:
            conn.abort(reason)
            return reason
        await self._close(conn)
        return None

    async def _setup(self, conn: Connection, outbox: Outbox) -> None:
        """Subscribe, announce the connection, run hooks, then follow new filters."""
        self._subscriptions_changed.clear()
        subscribed: dict[str, int] = {}
        if not await self._subscribe(conn, subscribed):
            return
        self._resend_carried(conn, outbox)
        self._up.set()
        if self._counters.connects > 1:
            LOG.info(
                "reconnected to %s (reconnect #%d), %d subscriptions restored",
                self._spec.redacted(),
                self._counters.connects - 1,
                len(subscribed),
            )
        for hook in list(self._hooks):
            try:
                await hook()
            except Exception:
                LOG.exception("on_connect hook %r failed", hook)
        while True:
            await self._subscriptions_changed.wait()
            self._subscriptions_changed.clear()
            if not await self._subscribe(conn, subscribed):
                return

    async def _subscribe(self, conn: Connection, subscribed: dict[str, int]) -> bool:
        """Subscribe to registered filters not yet in ``subscribed``. ``False`` if the
        connection had to be dropped."""
        wanted = [(f, q) for f, q in self._subscriptions.items() if subscribed.get(f) != q]
        if not wanted:
            return True
        try:
            granted = await conn.subscribe(wanted, timeout=self._connect_timeout)
        except SubscribeFailure as exc:
            conn.abort(f"subscribe failed: {exc}")
            return False
        if len(granted) != len(wanted):
            # One code per filter (MQTT 3.9.3): a broker that answers fewer has not said
            # which it subscribed; subscribing again on a new connection is the way out.
            conn.abort(f"the broker's SUBACK holds {len(granted)} codes for {len(wanted)} filters")
            return False
        for (topic_filter, qos), (value, text) in zip(wanted, granted, strict=True):
            if value >= _FAILURE:
                where = self._spec.redacted()
                msg = f"broker {where} refused the subscription to {topic_filter!r}: {text}"
                self._counters.last_error = msg
                LOG.error("%s", AuthError(msg))
            else:
                subscribed[topic_filter] = qos
        return True

    async def _keepalive_watchdog(self, conn: Connection) -> None:
        """Drop the connection when a PINGREQ stays unanswered for half a keepalive."""
        keepalive = conn.keepalive  # MQTT 5 may change it
        period = min(1.0, keepalive / 4.0)
        while True:
            await asyncio.sleep(period)
            # paho records when it sent the outstanding PINGREQ (monotonic clock) and
            # resets it on PINGRESP; it would itself give up only after a whole keepalive.
            ping_sent = conn.ping_sent_at()
            if ping_sent and time.monotonic() - ping_sent > keepalive / 2.0:
                waited = time.monotonic() - ping_sent
                reason = f"no PINGRESP for {waited:.1f} s (keepalive {keepalive:g} s)"
                LOG.warning("connection to %s is dead: %s", self._spec.redacted(), reason)
                conn.abort(reason)
                return

    async def _close(self, conn: Connection) -> None:
        """Clean MQTT DISCONNECT (bounded by ``connect_timeout``), then close the fd."""
        problem = await conn.close(self._connect_timeout)
        if problem is not None:
            LOG.debug("clean disconnect from %s failed: %s", self._spec.redacted(), problem)


async def _cancel_until_done(*tasks: asyncio.Task[None]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that goes on.

    Once is not always enough: on Python 3.11 ``asyncio.wait_for`` (under aiomqtt's
    ``subscribe``) returns its result and drops a cancellation that meets the SUBACK in
    the same pass of the loop. The setup then went on to wait for new subscriptions for
    ever, and its session with it: a client closed just after subscribing hung (a
    ``spikestream feed`` about 1 run in 20, deaf to SIGTERM).
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)
