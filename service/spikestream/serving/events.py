"""The service's events: rate-limited per kind, logged, and queued until the link takes them.

An event is encoded when it happens (its ``wall`` says when), logged at once, and waits in
a bounded queue while the link is down or its window is full; it goes out once online.
Events over their kind's rate are counted: the count rides on the next event of that kind,
or, once the kind has gone quiet, on an ``events_suppressed`` event (:meth:`EventQueue.settle`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from spikestream_client.codec import encode_event
from spikestream_client.logs import log_fields

log = logging.getLogger("spikestream.serve")

#: Events raised while the link is down (or its window is full) wait in a queue of this
#: many and go out once online; older ones beyond it are counted in ``events_lost``.
PENDING_EVENTS = 256

#: Events of one kind allowed per second (after a burst of :data:`EVENT_BURST`).
EVENTS_PER_SECOND = 20.0

#: Events of one kind that may go out at once before the rate applies.
EVENT_BURST = 20

#: Replies to requests (events with an ``id``), of all kinds together, per second and at
#: once: one per request, which its sender waits for (an MQTT 3.1.1 client on ``events``),
#: so far more than other events, but still bounded against a flood of requests.
REPLIES_PER_SECOND = 200.0
REPLY_BURST = 1024


def _level(kind: str) -> int:
    """The log level of events of ``kind``: refusals and failures are warnings."""
    return logging.WARNING if kind.endswith(("rejected", "failed", "ignored")) else logging.INFO


class EventLimiter:
    """A token bucket per event kind, so a flood of bad payloads cannot flood ``events``.

    Suppressed events are counted (:attr:`suppressed`), and the count rides on the next
    event of that kind, or on :meth:`EventQueue.settle`'s report once the kind is quiet.

    Args:
        rate: events per second, per kind.
        burst: events of one kind that may go out at once.
    """

    def __init__(self, rate: float, burst: int = EVENT_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def _tokens_at(self, kind: str, now: float) -> float:
        """The tokens of ``kind``'s bucket at ``now``, refilled since its last event."""
        tokens = self._tokens.get(kind, float(self.burst))
        return min(self.burst, tokens + (now - self._stamp.get(kind, now)) * self.rate)

    def allow(self, kind: str, now: float) -> bool:
        """True if an event of ``kind`` may go out now (``now``: monotonic seconds)."""
        tokens = self._tokens_at(kind, now)
        self._stamp[kind] = now
        if tokens >= 1.0:
            self._tokens[kind] = tokens - 1.0
            return True
        self._tokens[kind] = tokens
        self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
        return False

    def ready(self, kind: str, now: float) -> bool:
        """True if an event of ``kind`` would go out now; nothing is taken or counted."""
        return self._tokens_at(kind, now) >= 1.0


class EventQueue:
    """Events of one network: rate-limited, logged, then queued (oldest first) until
    :meth:`flush` hands them to the link.

    Args:
        net: the network's name, carried by every event.
        rate: events per second, per kind (:class:`EventLimiter`).
        capacity: events that may wait; beyond it the oldest is dropped and counted in
            :attr:`lost` (its log line keeps it).
    """

    def __init__(
        self, net: str, rate: float = EVENTS_PER_SECOND, capacity: int = PENDING_EVENTS
    ) -> None:
        self.net = net
        self.limiter = EventLimiter(rate)
        self.replies = EventLimiter(REPLIES_PER_SECOND, REPLY_BURST)
        self.capacity = capacity
        self.pending: deque[bytes] = deque()
        self.lost = 0

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, kind: str, now: float, fields: dict[str, Any]) -> bool:
        """Log and queue an event unless its kind is over its rate (``now``: monotonic
        seconds). Replies to requests (events with an ``id``) have a far larger bucket of
        their own (:data:`REPLIES_PER_SECOND`), shared by all their kinds. Returns whether
        it was queued."""
        limiter, key = (self.limiter, kind) if fields.get("id") is None else (self.replies, "")
        if not limiter.allow(key, now):
            return False
        suppressed = limiter.suppressed.pop(key, 0)
        if suppressed:
            fields["suppressed"] = suppressed
        self._queue(kind, fields)
        return True

    def settle(self, now: float) -> int:
        """Report the events suppressed of each kind that has gone quiet (its bucket has a
        token again, and no event of it came to carry the count): one ``events_suppressed``
        event per such kind, with ``of`` (the kind; ``replies`` for replies to requests)
        and ``suppressed``. Without it the tail of a burst (say the last 5 of 25 bad
        payloads) went unreported on ``events`` until the next event of its kind, maybe
        never. The service calls it every stats interval. Returns the events queued.

        These reports are not rate-limited themselves: there is at most one per kind of
        event the service raises (a fixed, small set) per call.
        """
        queued = 0
        for limiter, name in ((self.limiter, None), (self.replies, "replies")):
            for key in [k for k, n in limiter.suppressed.items() if n > 0]:
                if limiter.ready(key, now):
                    count = limiter.suppressed.pop(key)
                    fields = {"of": name or key, "suppressed": count}
                    self._queue("events_suppressed", fields, level=_level(name or key))
                    queued += 1
        return queued

    def _queue(self, kind: str, fields: dict[str, Any], level: int | None = None) -> None:
        """Log the event (at ``level``, else its kind's) and queue it, encoded."""
        log.log(_level(kind) if level is None else level, kind, extra=log_fields(fields))
        # Encoded now: ``wall`` says when it happened, not when it went out.
        self.pending.append(encode_event(kind, net=self.net, **fields))
        if len(self.pending) > self.capacity:
            self.pending.popleft()
            self.lost += 1  # the log line keeps it; the count travels in the stats

    def flush(self, send: Callable[[bytes], bool]) -> None:
        """Hand queued events to ``send``, oldest first, until it returns False (the link
        is not connected, or its window is full: they wait for the next flush)."""
        pending = self.pending
        while pending:
            if not send(pending[0]):
                return
            pending.popleft()
