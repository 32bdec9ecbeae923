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

This module is the connection: its lifecycle, subscriptions, publishing and control. The
consumers live in :mod:`spikestream_client.streams`, the routing and decoding of what
arrives in :mod:`spikestream_client.dispatch`, and the choice of broker in
:mod:`spikestream_client.brokers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self, overload

from spikestream_client.aio import First, Second, first_of
from spikestream_client.brokers import (
    DEFAULT_BROKER,
    ENV_BROKER,
    client_broker_spec,
    client_broker_specs,
    default_broker,
)
from spikestream_client.codec import (
    DEFAULT_PREFIX,
    ControlValue,
    Description,
    encode_control,
    text_value,
    topics,
    wildcard,
)
from spikestream_client.dispatch import QOS_DATA, QOS_RARE, Dispatcher
from spikestream_client.errors import SpikestreamError, TransportError
from spikestream_client.gaps import Gap
from spikestream_client.streams import (
    EventCallback,
    EventStream,
    FrameCallback,
    FrameStream,
    StatusWatcher,
    Subscription,
)
from spikestream_client.transport import BrokerSpec, MqttLink, redacted_list

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from spikestream_client.codec import Frame

# The streams, the broker helpers and Frame live in their own modules; they are
# re-exported here because ``spikestream_client.client`` is where users (and the docs)
# have always imported them from.
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
    "ProbeNotFound",
    "SpikestreamClient",
    "StatusWatcher",
    "Subscription",
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]

log = logging.getLogger("spikestream_client")


def __getattr__(name: str) -> Any:
    # Frame is re-exported (see __all__) but loads with the frame decoder, on first use.
    if name == "Frame":
        from spikestream_client.codec import Frame

        return Frame
    raise AttributeError(f"module 'spikestream_client.client' has no attribute {name!r}")


def _encode_input(
    x: float | Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]], t: float | None
) -> bytes:
    # The input encoder needs numpy; a client that only lists or controls networks never
    # loads it (this import is a dict lookup once it is loaded).
    from spikestream_client.codec.payloads import encode_input

    return encode_input(x, t)


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


class ProbeNotFound(SpikestreamError, LookupError):
    """The network's ``describe`` document, already received, has no such probe."""


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
        dropped_unread: Messages past 16 MiB (and 128 KiB for topic and properties),
            read off the socket in chunks and dropped, never held whole; each on a
            topic a consumer reads (but the client's own sync topic) is also in
            ``decode_errors``.
        frames_refused: Of ``decode_errors``, the messages on a probe's ``out`` topic:
            frames that failed to decode or validate, were retained (a service never
            retains frames) or were dropped unread. A lost frame of the service's shows
            in its stream's gaps as well; one that was never the service's (a forgery, a
            stray publisher's) shows only here.
        frames_duplicate: Second copies of a frame dropped undecoded: a broker may send
            one copy per matching subscription, and a probe's own stream beside the
            network's every-probe consumer matches two (``out/<probe>`` and ``out/+``).
    """

    connected: bool
    connects: int
    messages: int
    frames: int
    decode_errors: int
    unrouted: int
    callback_errors: int
    last_error: str | None
    dropped_unread: int = 0
    frames_refused: int = 0
    frames_duplicate: int = 0


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
        # Every consumer, and the state the incoming messages update.
        self._in = Dispatcher(prefix)
        self._subscriptions: list[Subscription[Any]] = []
        self._ids = itertools.count(1)
        self._sync_token = secrets.token_hex(6)
        self._sync_count = itertools.count(1)

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
            on_message=self._in.on_message,
            keepalive=self._keepalive,
            backoff_min=0.1,
            backoff_max=2.0,
        )
        for topic_filter, qos in self._in.filters():
            self._link.subscribe(topic_filter, qos=qos)
        self._link.add_lost_hook(self._in.forget_statuses)
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
        # The link task is shielded: losing the race must not stop the link.
        outcome: First[bool] | Second[None] | None
        try:
            outcome = await first_of(link.wait_connected(timeout), asyncio.shield(task))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller was cancelled
            outcome = None  # someone else cancelled the link task: not connected
        except Exception as err:
            if not task.done() or task.cancelled():
                raise
            where = redacted_list(self.specs)
            raise TransportError(f"MQTT link to {where} failed: {err}") from err
        if not (isinstance(outcome, First) and outcome.value):
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
        self._in.close(TransportError("the client was closed"))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def broker(self) -> BrokerSpec:
        """The broker the client uses now: of a list, the one its link is on (the first
        may be down), or the first before :meth:`start`. Say it with ``.redacted()``."""
        return self._link.spec if self._link is not None else self.spec

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
            messages=self._in.messages,
            frames=self._in.frames,
            decode_errors=self._in.decode_errors,
            unrouted=self._in.unrouted,
            callback_errors=self._in.callback_errors,
            last_error=ls.last_error if ls else None,
            dropped_unread=ls.dropped_unread if ls else 0,
            frames_refused=self._in.frames_refused,
            frames_duplicate=self._in.frames_duplicate,
        )

    def _require(self) -> tuple[MqttLink, asyncio.Task[None]]:
        if self._link is None or self._task is None:
            msg = "the client is not started; use 'async with SpikestreamClient(...)' or start()"
            raise RuntimeError(msg)
        return self._link, self._task

    # ------------------------------------------------------------------ subscriptions
    def _subscribe(self, topic_filter: str, qos: int) -> None:
        # Before start() the filter is subscribed by start(), from Dispatcher.filters().
        if self._link is not None:
            self._link.subscribe(topic_filter, qos=qos)

    def on_frame(self, net: str, probe: str | None, callback: FrameCallback) -> Callable[[], None]:
        """Call ``callback(frame)`` for every decoded frame of ``probe`` (every probe of
        ``net`` when ``probe`` is None), on the event loop, as frames arrive.

        The callback must be quick (aggregate, do not block). Exceptions are logged and
        counted, never propagated. Returns a function that removes the callback.

        Raises:
            ProbeNotFound: ``net``'s describe document has arrived and has no ``probe``
                (such a consumer would wait for ever); call :meth:`find_network` first to
                have the name checked.
        """
        described = self._in.descriptions.get(net)
        if probe is not None and described is not None:
            missing = described.missing_probes((probe,))
            if missing is not None:
                raise ProbeNotFound(missing)
        # The names are checked before anything is kept: a refused probe's entry would
        # be subscribed (and refused again) by the next start().
        t = topics(self.prefix, net)
        topic_filter = t.outs_filter if probe is None else t.out(probe)
        key = (net, probe)
        sinks = self._in.frame_sinks.setdefault(key, [])
        if not sinks:
            self._subscribe(topic_filter, QOS_DATA)
        sinks.append(callback)
        return lambda: _remove(sinks, callback)

    def on_event(self, net: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every decoded event of ``net``; see :meth:`on_frame`."""
        topic = topics(self.prefix, net).events  # checked before anything is kept
        sinks = self._in.event_sinks.setdefault(net, [])
        if not sinks:
            self._subscribe(topic, QOS_RARE)
        sinks.append(callback)
        return lambda: _remove(sinks, callback)

    def on_stats(self, net: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(stats)`` for every stats message of ``net`` (about once a
        second: ``tick``, ``realtime_factor_actual``, ``late_p99_ms``, ``dropped``...)."""
        topic = topics(self.prefix, net).stats  # checked before anything is kept
        sinks = self._in.stats_sinks.setdefault(net, [])
        if not sinks:
            self._subscribe(topic, QOS_DATA)
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

        A probe the network does not have would never send a frame. Its name is checked
        (by :meth:`on_frame`) against the network's ``describe`` document when one has
        arrived: call :meth:`find_network` first to have it checked.

        Args:
            net: Network name.
            probe: Probe name, or None for every probe of ``net``.
            gaps: Also yield :class:`~spikestream_client.gaps.Gap` records.
            maxsize: Frames queued before the oldest is dropped (counted, and reported
                as a gap with ``local`` > 0).

        Raises:
            ProbeNotFound: ``net``'s describe document has arrived and has no ``probe``;
                the message names the probes it has.
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
        return self._in.latest_stats.get(net)

    def status(self, net: str) -> StatusWatcher:
        """The status watcher of ``net`` (one per network, created and subscribed on the
        first call; the broker then sends the retained status)."""
        watcher = self._in.status.get(net)
        if watcher is None:
            topic = topics(self.prefix, net).status  # checked before the watcher is kept
            watcher = self._in.status[net] = StatusWatcher(net)
            self._subscribe(topic, QOS_RARE)
        return watcher

    def watch_networks(self) -> None:
        """Subscribe to every network's retained ``describe`` and ``status`` (once); see
        :meth:`descriptions`, :meth:`statuses` and :meth:`find_network`."""
        if self._in.watching:
            return
        self._in.watching = True
        self._subscribe(wildcard(self.prefix, "describe"), QOS_RARE)
        self._subscribe(wildcard(self.prefix, "status"), QOS_RARE)

    def descriptions(self) -> dict[str, Description]:
        """The latest checked ``describe`` document of every network seen, by name
        (after :meth:`watch_networks`)."""
        return dict(self._in.descriptions)

    def statuses(self) -> dict[str, str | None]:
        """The latest retained status of every network seen (``online``, ``offline``,
        or None when cleared), by name (after :meth:`watch_networks`)."""
        return dict(self._in.seen_status)

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
        while (found := self._in.descriptions.get(net)) is None and not synced:
            if net in self._in.seen_status or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        if found is not None:
            return found
        if net in self._in.seen_status:
            return None
        seen = sorted({*self._in.descriptions, *self._in.seen_status})
        others = f"; networks on it: {', '.join(seen)}" if seen else "; it has no networks"
        # The broker looked on is the link's current one: the first of a list may be down.
        msg = (
            f"no network {net!r} on {self.broker.redacted()} (no retained "
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
        topic = self._in.sync_topic(self._sync_token, next(self._sync_count))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in.sync_waiters[topic] = fut
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
            self._in.sync_waiters.pop(topic, None)

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
        topic = topics(self.prefix, net).input(name)
        return await link.publish(topic, _encode_input(x, t), qos=qos)

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
        return link.publish_nowait(topic, _encode_input(x, t), qos=qos)

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
        if isinstance(value, str) and cmd.strip().lower() == "set":
            value = text_value(value)  # typed as the text form types it, as set() does
        request = f"{self._sync_token}-{next(self._ids)}"
        payload = encode_control(cmd, key, value, request)
        t = topics(self.prefix, net)
        if not wait:
            if not await link.publish(t.control, payload, qos=1):
                raise TransportError(f"control {cmd!r} to {net!r} was not acknowledged")
            return None
        # Replies are routed only while something consumes the events: a closed events
        # stream leaves an empty list behind, which must not count as one.
        if not self._in.event_sinks.get(net):
            self.on_event(net, lambda event: None)
            await self.sync(timeout)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._in.replies[request] = fut
        try:
            async with asyncio.timeout(timeout):
                if not await link.publish(t.control, payload, qos=1):
                    raise TransportError(f"control {cmd!r} to {net!r} was not acknowledged")
                event = await fut
        except TimeoutError:
            msg = f"no reply to control {cmd!r} (id {request}) from {net!r} within {timeout} s"
            raise ControlTimeout(msg) from None
        finally:
            self._in.replies.pop(request, None)
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

    async def learn(
        self,
        net: str,
        on: bool | str = True,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ControlReply:
        """Switch PES learning of ``net`` on or off (``True``/``False`` or ``"on"``/``"off"``);
        see :meth:`control`."""
        return await self.control(net, "learn", value=on, timeout=timeout)

    async def set(
        self,
        net: str,
        key: str,
        value: float | str | bool,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ControlReply:
        """Change a setting, e.g. ``await client.set("seed", "realtime_factor", 2.0)``.

        ``value`` may be text, typed as the text form ``set KEY VALUE`` types it: ``"2e-4"``
        is a number, ``"true"`` a boolean, ``"on"`` a switch.
        """
        return await self.control(net, "set", key, value, timeout=timeout)


def _remove(items: list[Any], item: object) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)
