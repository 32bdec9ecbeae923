"""An asyncio client for a running spikestream service.

One :class:`SpikestreamClient` holds one self-healing MQTT connection
(:class:`spikestream.transport.MqttLink`: reconnects with backoff, resubscribes,
TCP_NODELAY, MQTT 5 with a 3.1.1 fallback) and decodes everything with
:mod:`spikestream_client.codec`, the decoder the service itself uses::

    async with SpikestreamClient("mqtt://127.0.0.1:1883") as client:
        await client.status("seed").wait_for("online", timeout=10)
        async for frame in client.frames("seed", "a_spikes"):
            print(frame.header.seq, frame.spikes.sum())

Messages are dispatched on the event loop as they arrive. Each frame is decoded once,
however many consumers it has, and only if someone consumes its topic. Consumers are
either async iterators with a bounded queue (:meth:`SpikestreamClient.frames`,
:meth:`~SpikestreamClient.events`, :meth:`~SpikestreamClient.stats`) or plain
callbacks (:meth:`~SpikestreamClient.on_frame` and friends) for tools that must keep up
with thousands of frames per second without queueing.

MqttLink cannot unsubscribe, so a closed iterator stops consuming but the topic stays
subscribed until the client closes; its messages are then dropped before decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, Self, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import (
    DEFAULT_PREFIX,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    ControlValue,
    Description,
    SpikeFrame,
    ValueFrame,
    decode_describe,
    decode_event,
    decode_frame,
    encode_control,
    encode_input,
    topics,
    wildcard,
)
from spikestream_client.errors import CodecError, ConfigError, SpikestreamError, TransportError
from spikestream_client.gaps import Gap, GapTracker
from spikestream_client.transport import (
    BrokerSpec,
    MessageMeta,
    MqttLink,
    load_broker_spec,
    load_broker_specs,
    redacted_list,
)

__all__ = [
    "DEFAULT_BROKER",
    "ENV_BROKER",
    "ClientStatistics",
    "ControlRejected",
    "ControlReply",
    "ControlTimeout",
    "EventStream",
    "Frame",
    "FrameStream",
    "NetworkNotFound",
    "SpikestreamClient",
    "StatusWatcher",
    "Subscription",
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]

log = logging.getLogger("spikestream_client")

Frame = SpikeFrame | ValueFrame
"""A decoded output frame (check ``frame.kind``: ``"spikes"`` or ``"values"``)."""

DEFAULT_BROKER: Final = "mqtt://127.0.0.1:1883"
"""The broker clients use when none is given and ``SPIKESTREAM_BROKER`` is unset."""

ENV_BROKER: Final = "SPIKESTREAM_BROKER"
"""Environment variable naming the broker URL (the same one ``serve`` reads)."""

STATUS_TEXT: Final = {STATUS_ONLINE: "online", STATUS_OFFLINE: "offline"}

T = TypeVar("T")
_MAX_ROUTES: Final = 4096


def default_broker() -> str:
    """``$SPIKESTREAM_BROKER`` if set (and not ``auto``/``embedded``), else
    :data:`DEFAULT_BROKER`."""
    url = os.environ.get(ENV_BROKER, "").strip()
    return url if url and url.lower() not in ("auto", "embedded") else DEFAULT_BROKER


def client_broker_spec(broker: str | BrokerSpec) -> BrokerSpec:
    """The concrete broker a client connects to.

    URLs go through :func:`spikestream.transport.load_broker_spec` (so credentials may
    come from ``SPIKESTREAM_MQTT_USERNAME``/``_PASSWORD``/``_PASSWORD_FILE``). ``auto``
    means the local broker on 127.0.0.1:1883. ``embedded`` is refused: an in-process
    broker inside a client would have no service on it.

    Raises:
        ConfigError: Malformed URL, or ``embedded``.
    """
    spec = load_broker_spec(broker) if isinstance(broker, str) else broker
    if spec.kind == "embedded":
        msg = (
            "a client cannot use the 'embedded' broker (it would be alone on it); give the "
            "service's broker as mqtt://host:port"
        )
        raise ConfigError(msg)
    if spec.kind == "auto":
        spec = BrokerSpec(
            kind="url",
            scheme="mqtt",
            host=spec.host,
            port=spec.port,
            username=spec.username,
            password=spec.password,
        )
    return spec


def client_broker_specs(
    broker: str | BrokerSpec | Sequence[str | BrokerSpec],
) -> tuple[BrokerSpec, ...]:
    """The concrete brokers a client may use, in failover order.

    ``broker`` is one broker as :func:`client_broker_spec` takes it, a comma-separated
    list of URLs (the nodes of a clustered broker), or a sequence of either. The client
    connects to the first that answers and fails over to the next when it loses its node.

    Raises:
        ConfigError: Malformed URL, an empty list, ``embedded``, or ``auto`` in a list.
    """
    items = [broker] if isinstance(broker, str | BrokerSpec) else list(broker)
    specs: list[BrokerSpec] = []
    for item in items:
        parsed = load_broker_specs(item) if isinstance(item, str) else (item,)
        specs.extend(client_broker_spec(spec) for spec in parsed)
    if not specs:
        msg = "no broker given: expected at least one mqtt://host:port"
        raise ConfigError(msg)
    return tuple(specs)


class ControlRejected(SpikestreamError, ValueError):
    """The service refused a control command (its ``control_rejected`` event).

    Attributes:
        reply: The reply, with the service's event in ``reply.event``.
    """

    def __init__(self, message: str, reply: ControlReply) -> None:
        super().__init__(message)
        self.reply = reply


class ControlTimeout(SpikestreamError, TimeoutError):
    """No reply to a control command arrived in time."""


class NetworkNotFound(SpikestreamError, LookupError):
    """No service has published the network's retained ``describe`` or ``status``."""


@dataclass(frozen=True, slots=True)
class ControlReply:
    """The service's answer to a control command.

    Attributes:
        cmd: The command that was sent.
        id: The request id that was sent (and echoed by the service).
        ok: True for a ``control_ok`` event, False for ``control_rejected``.
        event: The whole decoded event, e.g. ``{"event": "control_ok", "cmd": "pause",
            "id": "...", "paused": true, "wall": ..., "v": 1, "net": "seed"}``.
    """

    cmd: str
    id: str
    ok: bool
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of a client's counters (since it started).

    Attributes:
        connected: Whether the MQTT session is up.
        connects: Successful connections (1 + reconnects).
        messages: MQTT messages received.
        frames: Frames decoded.
        decode_errors: Frames, events or status payloads that failed to decode or
            validate (a frame whose ``net``/``probe`` breaks the naming rule, or differs
            from the topic it arrived on, counts here).
        unrouted: Messages on topics nobody consumes any more (dropped undecoded).
        callback_errors: Exceptions raised by consumer callbacks (logged, then ignored).
        last_error: The link's most recent connection error, if any.
    """

    connected: bool
    connects: int
    messages: int
    frames: int
    decode_errors: int
    unrouted: int
    callback_errors: int
    last_error: str | None


class Subscription(Generic[T]):
    """A bounded queue of items, consumed with ``async for`` (or :meth:`get`).

    When the consumer falls behind, the oldest item is dropped and counted in
    :attr:`overflowed`; the producer (the MQTT callback) never waits. Iteration ends after
    :meth:`close` (or the client's close) once the queued items are consumed.

    Args:
        maxsize: Most items queued (>= 1).
        on_close: Called once when the subscription is closed (detaches it).
    """

    def __init__(self, maxsize: int, on_close: Callable[[], None] | None = None) -> None:
        if maxsize < 1:
            msg = f"a subscription's maxsize must be >= 1, got {maxsize}"
            raise ConfigError(msg)
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._on_close = on_close
        self.received = 0
        """Items delivered to the queue."""
        self.overflowed = 0
        """Items dropped because the queue was full."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def _push(self, item: T) -> None:
        if self._closed:
            return
        self.received += 1
        if len(self._items) >= self._maxsize:
            self._drop(self._items.popleft())
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop(self, item: T) -> None:
        self.overflowed += 1

    def _take(self) -> T:
        return self._items.popleft()

    def close(self) -> None:
        """Stop receiving; iteration ends once the queued items are consumed."""
        if self._closed:
            return
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._on_close is not None:
            self._on_close()

    async def get(self, timeout: float | None = None) -> T:  # noqa: ASYNC109
        """The next item, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: Nothing arrived in time.
            StopAsyncIteration: The subscription is closed and empty.
        """
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._take()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class FrameStream(Subscription[T]):
    """Decoded frames of one probe (or of every probe of a network), with gap detection.

    Created by :meth:`SpikestreamClient.frames`. Every frame taken from the queue is
    checked for ``seq`` continuity; each break is recorded in :attr:`gaps` (the last
    1000) and counted in :attr:`gap_count` and :attr:`missing`. With ``gaps=True`` the
    :class:`~spikestream_client.gaps.Gap` records are also yielded, just before the frame
    that revealed them.
    """

    def __init__(
        self,
        net: str,
        probe: str | None,
        maxsize: int,
        yield_gaps: bool,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(maxsize, on_close)
        self.net = net
        self.probe = probe
        self._yield_gaps = yield_gaps
        self._tracker = GapTracker()
        self._local: dict[str, int] = {}
        self._pending: T | None = None
        self.gaps: deque[Gap] = deque(maxlen=1000)
        """The most recent gaps (oldest first)."""

    @property
    def gap_count(self) -> int:
        """Number of forward ``seq`` jumps seen so far."""
        return self._tracker.gaps

    @property
    def missing(self) -> int:
        """Total number of frames missing (lost on the way or dropped by this queue)."""
        return self._tracker.missing

    @property
    def restarts(self) -> int:
        """Number of times ``seq`` went back (the service process restarted)."""
        return self._tracker.restarts

    def _drop(self, item: T) -> None:
        super()._drop(item)
        probe = cast(Frame, item).header.probe
        self._local[probe] = self._local.get(probe, 0) + 1

    async def __anext__(self) -> T:
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        frame = await super().__anext__()
        header = cast(Frame, frame).header
        gap = self._tracker.check(header, self._local.pop(header.probe, 0))
        if gap is None:
            return frame
        self.gaps.append(gap)
        if not self._yield_gaps:
            return frame
        self._pending = frame
        return cast(T, gap)


class EventStream(Subscription[dict[str, Any]]):
    """Decoded JSON events (``input_rejected``, ``control_ok``, ``online`` ...) of one
    network; see :meth:`SpikestreamClient.events`."""


class StatusWatcher:
    """The retained ``online``/``offline`` status of one network.

    :attr:`current` is the latest value (None until the broker has sent the retained
    message, or if none is retained). ``async for status in watcher`` yields the current
    value (if known) and then every change; each iteration has its own queue.
    """

    def __init__(self, net: str) -> None:
        self.net = net
        self.current: str | None = None
        """``"online"``, ``"offline"``, another text the service set, or None."""
        self.since: float | None = None
        """``time.time()`` when :attr:`current` last changed."""
        self.updates = 0
        """Status messages received (retained replay included)."""
        self._listeners: list[Subscription[str]] = []
        self._changed: asyncio.Event = asyncio.Event()

    @property
    def online(self) -> bool:
        """Whether the service reports itself online."""
        return self.current == "online"

    def _set(self, value: str | None) -> None:
        self.updates += 1
        if value == self.current:
            return
        self.current = value
        self.since = time.time()
        self._changed.set()
        self._changed = asyncio.Event()
        if value is not None:
            for sub in self._listeners:
                sub._push(value)

    async def wait_for(self, value: str = "online", timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the status is ``value``.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        async with asyncio.timeout(timeout):
            while self.current != value:
                await self._changed.wait()

    def __aiter__(self) -> Subscription[str]:
        sub: Subscription[str] = Subscription(64)
        sub._on_close = lambda: self._listeners.remove(sub)
        self._listeners.append(sub)
        if self.current is not None:
            sub._push(self.current)
        return sub

    def _close(self) -> None:
        for sub in list(self._listeners):
            sub.close()
        self._changed.set()


FrameCallback = Callable[[Frame], None]
EventCallback = Callable[[dict[str, Any]], None]


class SpikestreamClient:
    """A connection to the broker of one or more spikestream services.

    Args:
        broker: ``mqtt://[user:pass@]host:port``, ``mqtts://...``, ``ws://...`` or a
            :class:`~spikestream.transport.BrokerSpec`, or several of them (a list, or
            URLs separated by commas: the nodes of a clustered broker, failed over in
            order, see :func:`client_broker_specs`); default ``$SPIKESTREAM_BROKER``
            or ``mqtt://127.0.0.1:1883``.
        prefix: The services' topic prefix.
        client_id: MQTT client id (unique per broker); default
            ``spikestream-<role>-<pid>-<random>``.
        role: Used in the default client id (``client``, ``monitor``, ``feed``...).
        keepalive: MQTT keepalive in seconds.
        connect_timeout: Seconds :meth:`start` waits for the first connection.

    Use it as an async context manager, or call :meth:`start` and :meth:`close`.
    All methods must be called from the event loop the client was started in.
    """

    def __init__(
        self,
        broker: str | BrokerSpec | Sequence[str | BrokerSpec] | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        client_id: str | None = None,
        role: str = "client",
        keepalive: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.specs = client_broker_specs(default_broker() if broker is None else broker)
        self.spec = self.specs[0]
        topics(prefix, "x")  # validates the prefix now, not at the first subscription
        self.prefix = prefix
        self.client_id = client_id or f"spikestream-{role}-{os.getpid()}-{secrets.token_hex(3)}"
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._link: MqttLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # (net, probe or None) -> callbacks; net -> callbacks for the other topics.
        self._frame_sinks: dict[tuple[str, str | None], list[FrameCallback]] = {}
        self._event_sinks: dict[str, list[EventCallback]] = {}
        self._stats_sinks: dict[str, list[EventCallback]] = {}
        self._status: dict[str, StatusWatcher] = {}
        self._latest_stats: dict[str, dict[str, Any]] = {}
        self._subscriptions: list[Subscription[Any]] = []
        self._routes: dict[str, tuple[str, str, str | None]] = {}
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._sync_token = secrets.token_hex(6)
        self._sync_count = itertools.count(1)
        self._sync_waiters: dict[str, asyncio.Future[None]] = {}
        # Every network's retained describe document and status, once watch_networks()
        # subscribed to them.
        self._watching = False
        self._descriptions: dict[str, Description] = {}
        self._seen_status: dict[str, str | None] = {}
        self._messages = 0
        self._frames = 0
        self._decode_errors = 0
        self._unrouted = 0
        self._callback_errors = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, wait: bool = True, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Start the connection (it then reconnects on its own until :meth:`close`).

        Args:
            wait: Wait until the first connection is up.
            timeout: Seconds to wait (default: ``connect_timeout``).

        Raises:
            TransportError: Not connected within the timeout (the message says why), or
                the broker refused the credentials. The client is then closed.
        """
        if self._link is not None:
            return
        self._link = MqttLink(
            self.specs,
            client_id=self.client_id,
            on_message=self._on_message,
            keepalive=self._keepalive,
            backoff_min=0.1,
            backoff_max=2.0,
        )
        for topic_filter in self._filters():
            self._link.subscribe(topic_filter, qos=self._qos_for(topic_filter))
        self._task = asyncio.get_running_loop().create_task(
            self._link.run(), name=f"spikestream-client-link-{self.client_id}"
        )
        if wait:
            try:
                await self.wait_connected(self._connect_timeout if timeout is None else timeout)
            except BaseException:
                await self.close()  # do not leave a link retrying in the background
                raise

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the MQTT session is up.

        Raises:
            TransportError: Not connected after ``timeout`` seconds, or the link gave up.
        """
        link, task = self._require()
        waiter = asyncio.ensure_future(link.wait_connected(timeout))
        try:
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiter.done():
                waiter.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            where = redacted_list(self.specs)
            raise TransportError(f"MQTT link to {where} failed: {task.exception()}")
        if not (waiter.done() and not waiter.cancelled() and waiter.result()):
            why = link.statistics().last_error or "no answer"
            msg = f"cannot connect to {redacted_list(self.specs)} within {timeout} s: {why}"
            raise TransportError(msg)

    async def close(self) -> None:
        """Disconnect cleanly and end every iterator (after its queued items)."""
        if self._closed:
            return
        self._closed = True
        link, task = self._link, self._task
        if link is not None:
            await link.stop()
        if task is not None:
            if not task.done():
                task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.warning("MQTT link ended with an error: %s", task.exception())
        for sub in list(self._subscriptions):
            sub.close()
        for watcher in self._status.values():
            watcher._close()
        waiters: list[asyncio.Future[Any]] = [*self._replies.values()]
        waiters += self._sync_waiters.values()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(TransportError("the client was closed"))
                fut.exception()  # retrieved: no "never retrieved" warning if nobody awaits

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether the MQTT session is up right now."""
        return self._link is not None and self._link.connected

    def statistics(self) -> ClientStatistics:
        """A snapshot of the counters."""
        ls = self._link.statistics() if self._link is not None else None
        return ClientStatistics(
            connected=self.connected,
            connects=ls.connects if ls else 0,
            messages=self._messages,
            frames=self._frames,
            decode_errors=self._decode_errors,
            unrouted=self._unrouted,
            callback_errors=self._callback_errors,
            last_error=ls.last_error if ls else None,
        )

    def _require(self) -> tuple[MqttLink, asyncio.Task[None]]:
        if self._link is None or self._task is None:
            msg = "the client is not started; use 'async with SpikestreamClient(...)' or start()"
            raise RuntimeError(msg)
        return self._link, self._task

    # ------------------------------------------------------------------ subscriptions
    def _filters(self) -> list[str]:
        out: list[str] = []
        for net, probe in self._frame_sinks:
            t = topics(self.prefix, net)
            out.append(t.outs_filter if probe is None else t.out(probe))
        for net in self._event_sinks:
            out.append(topics(self.prefix, net).events)
        for net in self._stats_sinks:
            out.append(topics(self.prefix, net).stats)
        for net in self._status:
            out.append(topics(self.prefix, net).status)
        if self._watching:
            out += [wildcard(self.prefix, "describe"), wildcard(self.prefix, "status")]
        return out

    def _qos_for(self, topic_filter: str) -> int:
        # Frames are real-time data (QoS 0, as published); status and events are rare
        # and worth the acknowledgement.
        return 0 if "/out/" in topic_filter or topic_filter.endswith("/stats") else 1

    def _subscribe(self, topic_filter: str) -> None:
        if self._link is not None:
            self._link.subscribe(topic_filter, qos=self._qos_for(topic_filter))

    def on_frame(self, net: str, probe: str | None, callback: FrameCallback) -> Callable[[], None]:
        """Call ``callback(frame)`` for every decoded frame of ``probe`` (every probe of
        ``net`` when ``probe`` is None), on the event loop, as frames arrive.

        The callback must be quick (aggregate, do not block). Exceptions are logged and
        counted, never propagated. Returns a function that removes the callback.
        """
        t = topics(self.prefix, net)
        key = (net, probe)
        sinks = self._frame_sinks.setdefault(key, [])
        if not sinks:
            self._subscribe(t.outs_filter if probe is None else t.out(probe))
        sinks.append(callback)
        return lambda: _remove(sinks, callback)

    def on_event(self, net: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every decoded event of ``net``; see :meth:`on_frame`."""
        sinks = self._event_sinks.setdefault(net, [])
        if not sinks:
            self._subscribe(topics(self.prefix, net).events)
        sinks.append(callback)
        return lambda: _remove(sinks, callback)

    def on_stats(self, net: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(stats)`` for every stats message of ``net`` (about once a
        second: ``tick``, ``realtime_factor_actual``, ``late_p99_ms``, ``dropped``...)."""
        sinks = self._stats_sinks.setdefault(net, [])
        if not sinks:
            self._subscribe(topics(self.prefix, net).stats)
        sinks.append(callback)
        return lambda: _remove(sinks, callback)

    @overload
    def frames(
        self,
        net: str,
        probe: str | None = None,
        *,
        gaps: Literal[False] = False,
        maxsize: int = 1024,
    ) -> FrameStream[Frame]: ...

    @overload
    def frames(
        self,
        net: str,
        probe: str | None = None,
        *,
        gaps: Literal[True],
        maxsize: int = 1024,
    ) -> FrameStream[Frame | Gap]: ...

    def frames(
        self,
        net: str,
        probe: str | None = None,
        *,
        gaps: bool = False,
        maxsize: int = 1024,
    ) -> FrameStream[Frame] | FrameStream[Frame | Gap]:
        """Iterate over the decoded frames of ``probe`` (all probes when None).

        The subscription starts when this is called (not at the first ``async for``);
        call :meth:`sync` to wait until the broker has confirmed it.

        Args:
            net: Network name.
            probe: Probe name, or None for every probe of ``net``.
            gaps: Also yield :class:`~spikestream_client.gaps.Gap` records.
            maxsize: Frames queued before the oldest is dropped (counted, and reported
                as a gap with ``local`` > 0).
        """
        stream: FrameStream[Any] = FrameStream(net, probe, maxsize, gaps)
        remove = self.on_frame(net, probe, stream._push)
        self._track(stream, remove)
        return stream

    def events(self, net: str, *, maxsize: int = 256) -> EventStream:
        """Iterate over the JSON events of ``net`` (decoded dicts)."""
        stream = EventStream(maxsize)
        remove = self.on_event(net, stream._push)
        self._track(stream, remove)
        return stream

    def stats(self, net: str, *, maxsize: int = 16) -> Subscription[dict[str, Any]]:
        """Iterate over the stats messages of ``net``; see :meth:`latest_stats`."""
        stream: Subscription[dict[str, Any]] = Subscription(maxsize)
        remove = self.on_stats(net, stream._push)
        self._track(stream, remove)
        return stream

    def latest_stats(self, net: str) -> dict[str, Any] | None:
        """The last stats message of ``net`` received (only while something consumes
        stats for it: :meth:`stats` or :meth:`on_stats`)."""
        return self._latest_stats.get(net)

    def status(self, net: str) -> StatusWatcher:
        """The status watcher of ``net`` (one per network, created and subscribed on the
        first call; the broker then sends the retained status)."""
        watcher = self._status.get(net)
        if watcher is None:
            watcher = self._status[net] = StatusWatcher(net)
            self._subscribe(topics(self.prefix, net).status)
        return watcher

    def watch_networks(self) -> None:
        """Subscribe to every network's retained ``describe`` and ``status`` (once); see
        :meth:`descriptions`, :meth:`statuses` and :meth:`find_network`."""
        if self._watching:
            return
        self._watching = True
        self._subscribe(wildcard(self.prefix, "describe"))
        self._subscribe(wildcard(self.prefix, "status"))

    def descriptions(self) -> dict[str, Description]:
        """The latest checked ``describe`` document of every network seen, by name
        (after :meth:`watch_networks`)."""
        return dict(self._descriptions)

    def statuses(self) -> dict[str, str | None]:
        """The latest retained status of every network seen (``online``, ``offline``,
        or None when cleared), by name (after :meth:`watch_networks`)."""
        return dict(self._seen_status)

    async def find_network(self, net: str, *, timeout: float = 3.0) -> Description | None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` s) until ``net`` is known from its retained messages.

        The broker sends retained messages as it confirms a subscription, so once
        :meth:`sync` returns, a network that any service ever announced is known.

        Returns:
            Its :class:`~spikestream_client.codec.Description`, or None when only a retained
            status exists (a service older than the describe topic).

        Raises:
            NetworkNotFound: Neither a ``describe`` nor a ``status`` of ``net`` arrived;
                the message names the networks that did.
        """
        topics(self.prefix, net)  # a bad name is a ConfigError/CodecError, not "not found"
        self.watch_networks()
        deadline = time.monotonic() + timeout
        synced = await self.sync(timeout)
        # Synced: every retained message of the subscriptions above has arrived. Not
        # synced (an ACL refusing the sync topic): wait for them until the deadline.
        while (found := self._descriptions.get(net)) is None and not synced:
            if net in self._seen_status or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        if found is not None:
            return found
        if net in self._seen_status:
            return None
        seen = sorted({*self._descriptions, *self._seen_status})
        others = f"; networks on it: {', '.join(seen)}" if seen else "; it has no networks"
        msg = (
            f"no network {net!r} on {self.spec.redacted()} (no retained "
            f"{topics(self.prefix, net).describe} or status within {timeout:g} s){others}"
        )
        raise NetworkNotFound(msg)

    def _track(self, sub: Subscription[Any], remove: Callable[[], None]) -> None:
        def detach() -> None:
            remove()
            _remove(self._subscriptions, sub)

        sub._on_close = detach
        self._subscriptions.append(sub)
        if self._closed:
            sub.close()

    async def sync(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Wait until every subscription made so far is active at the broker.

        Subscribes to a private topic (``<prefix>/_sync/<token>/<n>``), then publishes to
        it (QoS 1) until the message comes back: MQTT brokers handle one connection's
        packets in order, so the earlier subscriptions are active by then.

        Returns:
            True once synced; False after ``timeout`` seconds, or at once when the broker
            refuses the publish (an MQTT 5 "not authorised": an ACL that does not let
            this user write ``<prefix>/_sync/#``).
        """
        link, _ = self._require()
        topic = f"{self.prefix}/_sync/{self._sync_token}/{next(self._sync_count)}"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters[topic] = fut
        link.subscribe(topic, qos=0)
        deadline = time.monotonic() + timeout
        try:
            while not fut.done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if link.connected:
                    try:
                        ok = await asyncio.wait_for(link.publish(topic, b"sync", qos=1), left)
                    except TimeoutError:
                        return False
                    if not ok and link.connected:
                        log.info("sync: the broker refused a publish to %s (ACL?)", topic)
                        return False
                left = deadline - time.monotonic()
                await asyncio.wait({fut}, timeout=min(0.1, max(left, 0.0)))
            return fut.exception() is None
        finally:
            self._sync_waiters.pop(topic, None)

    # ------------------------------------------------------------------ publishing
    async def publish_input(
        self,
        net: str,
        name: str,
        x: float | Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]],
        *,
        t: float | None = None,
        qos: int = 0,
    ) -> bool:
        """Send one value to input ``name`` of ``net`` and wait until it is written
        (QoS 0) or acknowledged (QoS 1/2).

        Args:
            net: Network name.
            name: Input name.
            x: A number (1-D input) or a vector of length ``dim``.
            t: Optional timestamp (s); sends the ``{t, x}`` form.
            qos: MQTT QoS.

        Returns:
            False if disconnected or not confirmed in time.

        Raises:
            PayloadRejected: ``x`` is empty, nested or not finite (nothing is sent).
        """
        link, _ = self._require()
        return await link.publish(topics(self.prefix, net).input(name), encode_input(x, t), qos=qos)

    def publish_input_nowait(
        self,
        net: str,
        name: str,
        x: float | Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]],
        *,
        t: float | None = None,
        qos: int = 0,
    ) -> bool:
        """Like :meth:`publish_input` but never waits; False if it could not be queued."""
        link, _ = self._require()
        topic = topics(self.prefix, net).input(name)
        return link.publish_nowait(topic, encode_input(x, t), qos=qos)

    @overload
    async def control(
        self,
        net: str,
        cmd: str,
        key: str | None = None,
        value: ControlValue = None,
        *,
        wait: Literal[True] = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ControlReply: ...

    @overload
    async def control(
        self,
        net: str,
        cmd: str,
        key: str | None = None,
        value: ControlValue = None,
        *,
        wait: Literal[False],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None: ...

    async def control(
        self,
        net: str,
        cmd: str,
        key: str | None = None,
        value: ControlValue = None,
        *,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ControlReply | None:
        """Send a control command, by default waiting for the service's reply.

        Args:
            net: Network name.
            cmd: ``pause``, ``resume``, ``reset``, ``status``, ``set``, ``snapshot``,
                ``restore`` or ``learn``.
            key: The setting for ``set`` (e.g. ``realtime_factor``).
            value: The value for ``set``, the path for ``snapshot``/``restore``, or
                True/False for ``learn``.
            wait: Wait for the reply event carrying this command's id.
            timeout: Seconds to wait for the publish and for the reply.

        Returns:
            The :class:`ControlReply` (``wait=True``), else None.

        Raises:
            PayloadRejected: The command is malformed (checked before sending).
            ControlRejected: The service rejected it (``control_rejected``).
            ControlTimeout: No reply within ``timeout``.
            TransportError: Not connected, or the publish was not acknowledged.
        """
        link, _ = self._require()
        request = f"{self._sync_token}-{next(self._ids)}"
        payload = encode_control(cmd, key, value, request)
        t = topics(self.prefix, net)
        if not wait:
            if not await link.publish(t.control, payload, qos=1):
                raise TransportError(f"control {cmd!r} to {net!r} was not acknowledged")
            return None
        if net not in self._event_sinks:
            self.on_event(net, lambda event: None)
            await self.sync(timeout)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request] = fut
        try:
            async with asyncio.timeout(timeout):
                if not await link.publish(t.control, payload, qos=1):
                    raise TransportError(f"control {cmd!r} to {net!r} was not acknowledged")
                event = await fut
        except TimeoutError:
            msg = f"no reply to control {cmd!r} (id {request}) from {net!r} within {timeout} s"
            raise ControlTimeout(msg) from None
        finally:
            self._replies.pop(request, None)
        reply = ControlReply(cmd=cmd, id=request, ok=event["event"] == "control_ok", event=event)
        if not reply.ok:
            msg = f"{net!r} rejected control {cmd!r}: {event.get('error', 'no reason given')}"
            raise ControlRejected(msg, reply)
        return reply

    async def pause(self, net: str, *, timeout: float = 5.0) -> ControlReply:  # noqa: ASYNC109
        """Pause the ticks of ``net``; see :meth:`control`."""
        return await self.control(net, "pause", timeout=timeout)

    async def resume(self, net: str, *, timeout: float = 5.0) -> ControlReply:  # noqa: ASYNC109
        """Resume the ticks of ``net``; see :meth:`control`."""
        return await self.control(net, "resume", timeout=timeout)

    async def reset(self, net: str, *, timeout: float = 5.0) -> ControlReply:  # noqa: ASYNC109
        """Reset the state of ``net`` to tick 0; see :meth:`control`."""
        return await self.control(net, "reset", timeout=timeout)

    async def set(
        self,
        net: str,
        key: str,
        value: float | str | bool,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ControlReply:
        """Change a setting, e.g. ``await client.set("seed", "realtime_factor", 2.0)``."""
        return await self.control(net, "set", key, value, timeout=timeout)

    # ------------------------------------------------------------------ incoming
    def _route(self, topic: str) -> tuple[str, str, str | None] | None:
        """``(net, what, probe)`` for a topic under our prefix; what is out/status/events/
        stats/sync."""
        route = self._routes.get(topic)
        if route is not None:
            return route
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if parts[0] == "_sync":
            return ("", "sync", None)
        if len(parts) == 3 and parts[1] == "out":
            route = (parts[0], "out", parts[2])
        elif len(parts) == 2 and parts[1] in ("status", "events", "stats", "describe"):
            route = (parts[0], parts[1], None)
        else:
            return None
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[topic] = route
        return route

    def _on_message(self, topic: str, payload: bytes, meta: MessageMeta) -> None:
        self._messages += 1
        route = self._route(topic)
        if route is None:
            self._unrouted += 1
            return
        net, what, probe = route
        if what == "out":
            self._on_frame(net, probe, payload)
        elif what == "status":
            watcher = self._status.get(net)
            text = _status_text(payload)
            if watcher is not None:
                watcher._set(text)
            if self._watching and (net in self._seen_status or len(self._seen_status) < 4096):
                self._seen_status[net] = text
        elif what == "describe":
            self._on_describe(net, payload)
        elif what == "sync":
            fut = self._sync_waiters.get(topic)
            if fut is not None and not fut.done():
                fut.set_result(None)
        else:
            self._on_json(net, what, payload)

    def _on_frame(self, net: str, probe: str | None, payload: bytes) -> None:
        one = self._frame_sinks.get((net, probe))
        every = self._frame_sinks.get((net, None))
        if not one and not every:
            self._unrouted += 1
            return
        try:
            frame = decode_frame(payload)
            h = frame.header
            if h.net != net or h.probe != probe:
                # Consumers key their views on the header; a frame must not be able to
                # pose as another probe's (or network's) by lying about its name.
                msg = (
                    f"frame header names net {h.net!r}, probe {h.probe!r} but arrived on "
                    f"net {net!r:.80}, probe {probe!r:.80}"
                )
                raise CodecError(msg)
        except CodecError as err:
            # repr: topic levels come from the bus and may hold terminal escapes.
            self._decode_error(f"frame on {net!r:.80}/out/{probe!r:.80}", err)
            return
        self._frames += 1
        for sinks in (one, every):
            if sinks:
                for sink in list(sinks):
                    try:
                        sink(frame)
                    except Exception:
                        self._callback_failed()

    def _on_describe(self, net: str, payload: bytes) -> None:
        if not self._watching:
            self._unrouted += 1
            return
        if not payload:  # an empty retained message clears it
            self._descriptions.pop(net, None)
            return
        try:
            found = decode_describe(payload)
            if found.net != net:
                msg = f"the document names net {found.net!r} but arrived on {net!r:.80}"
                raise CodecError(msg)
        except CodecError as err:
            self._decode_error(f"describe of {net!r:.80}", err)
            return
        if net in self._descriptions or len(self._descriptions) < 4096:  # bounded
            self._descriptions[net] = found

    def _on_json(self, net: str, what: str, payload: bytes) -> None:
        sinks = (self._event_sinks if what == "events" else self._stats_sinks).get(net)
        if not sinks:
            self._unrouted += 1
            return
        try:
            obj = decode_event(payload)
        except CodecError as err:
            self._decode_error(f"{what} of {net!r:.80}", err)
            return
        if what == "stats":
            self._latest_stats[net] = obj
        else:
            request = obj.get("id")
            if isinstance(request, str) and obj.get("event") in ("control_ok", "control_rejected"):
                fut = self._replies.get(request)
                if fut is not None and not fut.done():
                    fut.set_result(obj)
        for sink in list(sinks):
            try:
                sink(obj)
            except Exception:
                self._callback_failed()

    def _decode_error(self, what: str, err: CodecError) -> None:
        self._decode_errors += 1
        if self._decode_errors == 1 or self._decode_errors % 1000 == 0:
            log.warning("cannot decode %s (%d so far): %s", what, self._decode_errors, err)

    def _callback_failed(self) -> None:
        self._callback_errors += 1
        if self._callback_errors == 1 or self._callback_errors % 1000 == 0:
            log.exception("a client callback failed (%d so far)", self._callback_errors)


def _status_text(payload: bytes) -> str | None:
    known = STATUS_TEXT.get(payload)
    if known is not None:
        return known
    text = payload.decode("utf-8", "replace").strip()
    return text or None  # an empty retained payload clears the status


def _remove(items: list[Any], item: object) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)
