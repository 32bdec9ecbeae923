"""The service's own status topic, kept true: a live ``offline`` there is answered.

A live ``offline`` on the service's status topic while it is connected is untrue: the
will of a connection a cluster node gave up on after the service reconnected elsewhere,
or a namesake's stop. Left alone it would stay retained, so ``online`` is published
again, counted and reported (``status_reasserted``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from spikestream_client.codec import STATUS_OFFLINE, STATUS_ONLINE
from spikestream_client.transport import MessageMeta, MqttLink

__all__ = ["REASSERT_GAP", "StatusGuard"]

#: Least time (s) between two ``online`` answers to live ``offline`` messages (§2).
REASSERT_GAP = 1.0


class StatusGuard:
    """Answers a live ``offline`` on ``topic`` with a retained ``online``.

    One answer at a time, :data:`REASSERT_GAP` apart: a flood gets one answer after it,
    not one (and a retry timer) each. A retained delivery is older than this connection's
    ``online`` and is left alone.

    Args:
        link: The service's link, which publishes the answer.
        topic: The service's status topic.
        event: Publishes an event: ``event(kind, **fields)``.
        stopping: Whether the service is stopping (then nothing is answered).
    """

    def __init__(
        self,
        link: MqttLink,
        topic: str,
        event: Callable[..., Any],
        stopping: Callable[[], bool],
    ) -> None:
        self._link, self._topic, self._event, self._stopping = link, topic, event, stopping
        #: ``online`` answers published so far.
        self.reasserted = 0
        self._due, self._at = False, -math.inf  # an answer scheduled; the last one's loop.time()

    def on_status(self, payload: bytes, meta: MessageMeta) -> None:
        """A message on the status topic."""
        if payload == STATUS_OFFLINE and not meta.retain and not self._due:
            self._due, loop = True, asyncio.get_running_loop()
            loop.call_at(max(loop.time(), self._at + REASSERT_GAP), self._reassert)

    def _reassert(self) -> None:
        loop = asyncio.get_running_loop()
        if self._stopping() or not self._link.connected:
            self._due = False  # stopping, or the next connection says online
        elif self._link.publish_nowait(self._topic, STATUS_ONLINE, qos=1, retain=True):
            self._due, self._at = False, loop.time()
            self.reasserted += 1
            self._event("status_reasserted", count=self.reasserted)
        else:  # the outgoing window is full: again as it drains, never silently given up
            loop.call_later(0.1, self._reassert)
