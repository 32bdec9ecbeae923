"""The consumers of a :class:`~spikestream_client.client.SpikestreamClient`: bounded queues
read with ``async for`` and the status watcher.

The client's message callback pushes into these without ever waiting (a full queue drops
its oldest item and counts it), so a slow consumer never stalls the connection or the
other consumers. Nothing here touches the network: the queues are filled by
:class:`~spikestream_client.dispatch.Dispatcher` and created by the client's
:meth:`~spikestream_client.client.SpikestreamClient.frames`,
:meth:`~spikestream_client.client.SpikestreamClient.events`,
:meth:`~spikestream_client.client.SpikestreamClient.stats` and
:meth:`~spikestream_client.client.SpikestreamClient.status`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from spikestream_client.errors import ConfigError, TransportError
from spikestream_client.gaps import Gap, GapTracker

if TYPE_CHECKING:
    from spikestream_client.codec import Frame

__all__ = [
    "EventCallback",
    "EventStream",
    "FrameCallback",
    "FrameStream",
    "StatusWatcher",
    "Subscription",
]

T = TypeVar("T")

FrameCallback = Callable[["Frame"], None]
"""A consumer of decoded frames, called on the event loop as each frame arrives."""
EventCallback = Callable[[dict[str, Any]], None]
"""A consumer of decoded JSON events or stats messages."""


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
        probe = cast("Frame", item).header.probe
        self._local[probe] = self._local.get(probe, 0) + 1

    async def __anext__(self) -> T:
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        frame = await super().__anext__()
        header = cast("Frame", frame).header
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
    message, or if none is retained, and again from a lost connection until the broker
    sends it anew: a restarted broker may hold none while the service is still away).
    ``async for status in watcher`` yields the current value (if known) and then every
    change; each iteration has its own queue.
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
        self._closed = False

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

    def _forget(self) -> None:
        """The connection to the broker was lost: the status is unknown until it is sent
        again (iterations yield only known values)."""
        if self.current is not None:
            self.current = None
            self.since = time.time()
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, value: str = "online", timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the status is ``value``.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            TransportError: The client closed first (no status can change any more).
        """
        try:
            async with asyncio.timeout(timeout):
                while self.current != value:
                    if self._closed:
                        # Its event stays set once closed: waiting again would return at
                        # once, round and round, without ever yielding to the loop.
                        raise TransportError(
                            f"the client closed while waiting for {self.net!r} to be "
                            f"{value!r} (it was {self.current!r})"
                        )
                    await self._changed.wait()
        except TimeoutError:
            # None: no status has arrived (no service ever ran it, or the connection
            # was lost and the broker has not sent it again yet).
            now = "no status received" if self.current is None else f"it is {self.current!r}"
            msg = f"{self.net!r} was not {value!r} within {timeout:g} s ({now})"
            raise TimeoutError(msg) from None

    def __aiter__(self) -> Subscription[str]:
        sub: Subscription[str] = Subscription(64)
        sub._on_close = lambda: self._listeners.remove(sub)
        self._listeners.append(sub)
        if self.current is not None:
            sub._push(self.current)
        return sub

    def _close(self) -> None:
        self._closed = True
        for sub in list(self._listeners):
            sub.close()
        self._changed.set()
