"""The publish window: messages in flight on a connection, and those to send again.

:class:`Outbox` belongs to one connection: every message handed to it until the
connection confirms it (QoS 0: written to the socket; QoS 1/2: acknowledged), which
bounds memory (``max_queued_outgoing``) and lets :meth:`MqttLink.publish` wait.
:class:`ResendQueue` belongs to the link: the ``resend=True`` messages a lost
connection had not confirmed, sent first on the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from spikestream_client.transport.values import Counters, Kept

__all__ = ["Outbox", "ResendQueue"]


class Outbox:
    """One connection's unconfirmed messages.

    Args:
        on_refused: Called for a message nobody awaits that the broker refused (MQTT 5
            negative PUBACK, usually an ACL): it must not vanish silently.
        on_carry: Called once, when the connection is lost, with its unconfirmed
            ``resend=True`` messages in publish order.
    """

    def __init__(
        self, on_refused: Callable[[], None], on_carry: Callable[[list[Kept]], None]
    ) -> None:
        self._on_refused = on_refused
        self._on_carry = on_carry
        # mid -> future resolved with True when the message is confirmed; None for
        # fire-and-forget sends. Its size bounds the outgoing queue.
        self.unconfirmed: dict[int, asyncio.Future[bool] | None] = {}
        # mid -> message to send again on the next connection should this one die before
        # confirming it; a subset of ``unconfirmed``.
        self.kept: dict[int, Kept] = {}
        #: Set once the connection is lost: nothing will be confirmed any more.
        self.closed = False

    def __len__(self) -> int:
        return len(self.unconfirmed)

    def add(self, mid: int, kept: Kept | None = None) -> None:
        """Track message ``mid`` (sent, not yet confirmed); keep ``kept`` to resend."""
        self.unconfirmed[mid] = None
        if kept is not None:
            self.kept[mid] = kept

    def add_frames(
        self,
        mids: Sequence[int],
        messages: Sequence[tuple[str, bytes]],
        content_type: str | None,
        expiry: int | None,
    ) -> None:
        """Track QoS 0 messages ``mids`` (``publish_frames``), each kept to resend:
        ``mids[i]`` is ``messages[i]``'s id (``messages`` may be longer)."""
        unconfirmed, kept = self.unconfirmed, self.kept
        for mid, (topic, payload) in zip(mids, messages, strict=False):
            unconfirmed[mid] = None
            kept[mid] = Kept(topic, payload, 0, False, content_type, expiry)

    def written(self, mids: Sequence[int]) -> None:
        """The connection wrote QoS 0 messages ``mids`` whole (as :meth:`published`
        with ``accepted`` for each, in one call for a batch)."""
        unconfirmed, kept = self.unconfirmed, self.kept
        for mid in mids:
            waiter = unconfirmed.pop(mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        if kept:
            for mid in mids:
                kept.pop(mid, None)

    def published(self, mid: int, accepted: bool) -> None:
        """The connection confirmed ``mid``; ``accepted`` is ``False`` if refused."""
        waiter = self.unconfirmed.pop(mid, None)
        if self.kept:
            self.kept.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(accepted)
        elif not accepted:
            self._on_refused()

    async def wait(self, mid: int, timeout: float) -> bool | None:  # noqa: ASYNC109
        """Wait for ``mid`` (sent with no await since): ``True`` confirmed, ``False``
        refused or connection lost, ``None`` after ``timeout`` seconds."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.unconfirmed[mid] = waiter
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            if self.unconfirmed.get(mid) is waiter:
                del self.unconfirmed[mid]
            return None

    def lost(self, reason: str) -> None:
        """The connection ended: fail every waiter, hand over the messages to resend."""
        self.closed = True
        for waiter in self.unconfirmed.values():
            if waiter is not None and not waiter.done():
                waiter.set_result(False)
        self.unconfirmed.clear()
        if self.kept:
            # Synchronously, before any reconnect: the next connection sends these first.
            self._on_carry(list(self.kept.values()))
            self.kept.clear()


class ResendQueue:
    """The ``resend=True`` messages lost connections had not confirmed, oldest first.

    Bounded like the outgoing window (``limit`` messages): beyond it the oldest go,
    counted in ``counters.lost_unsent``.
    """

    def __init__(self, limit: int, counters: Counters) -> None:
        self._limit = limit
        self._counters = counters
        self._messages: list[Kept] = []

    def __len__(self) -> int:
        return len(self._messages)

    def carry(self, messages: list[Kept]) -> None:
        """Keep a lost connection's unconfirmed messages for the next one."""
        self._messages.extend(messages)
        excess = len(self._messages) - self._limit
        if excess > 0:
            del self._messages[:excess]
            self._counters.lost_unsent += excess

    def take(self) -> list[Kept]:
        """All carried messages, in order; the queue is empty after."""
        taken, self._messages = self._messages, []
        return taken

    def drop(self) -> None:
        """The link stopped before a connection could take them: lost, counted."""
        self._counters.lost_unsent += len(self._messages)
        self._messages.clear()
