"""Input slots: the latest value of each input, handed from the I/O thread to the tick thread.

The I/O side (asyncio, in another thread) stores each decoded value in the input's
:class:`InputSlot` (an atomic reference assignment, no lock); the tick thread copies it
into the simulator each tick, falling back to the default after ``ttl`` seconds without a
message. :class:`InputLog` receives the changes the tick thread applies (for replay).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

NEW_VALUE = 1
WENT_STALE = 2
EXPIRED = 4
"""A change's bit: a message's TTL or own expiry passed before any tick applied it, so it
never drove the network (counted in ``expired``; with or without WENT_STALE)."""


class InputLog(Protocol):
    """Receives input changes from the tick thread (see :mod:`spikestream.runtime.replay`)."""

    def record(self, executed: int, name: str, value: npt.NDArray[np.floating]) -> None: ...

    def mark(self, kind: str, executed: int) -> None: ...

    def learning(
        self, executed: int, *, rate: float | None = None, enabled: bool | None = None
    ) -> None: ...


class Mailbox(Protocol):
    """Where a slot also posts its values for the compiled tick
    (:class:`spikestream.runtime.native_tick.Mailbox`)."""

    def post(self, x: npt.NDArray[np.float64], received: float, expires: float | None) -> None: ...

    def set_ttl(self, ttl: float | None) -> None: ...

    def clear(self) -> None: ...


class InputSlot:
    """The latest value of one input, handed from the I/O thread to the tick thread.

    ``offer`` replaces a tuple reference (atomic in CPython), so no lock is needed; the
    tick thread reads the reference once per tick. Bound to a :class:`Mailbox`, the slot
    also posts each value there, and the compiled tick applies it (the same rules as
    :meth:`apply`); :meth:`applied` then keeps the slot's own record in step.
    """

    def __init__(self, name: str, dim: int, default: npt.NDArray[np.float64], ttl: float | None):
        self.name = name
        self.dim = dim
        self.default = default.astype(np.float64).copy()
        self._mailbox: Mailbox | None = None
        self._ttl = ttl
        # (value (dim,), monotonic receive time, message number, expiry time or None)
        self._latest: tuple[npt.NDArray[np.float64], float, int, float | None] | None = None
        self.accepted = 0
        self.rejected = 0
        self.stale_events = 0
        self.expired = 0  # messages that expired before any tick applied them
        # Messages a newer one replaced before any tick took them (two in one tick's
        # gap, or while paused): the slot holds the latest value, so they never drove
        # the network either; counted, not lost silently.
        self.superseded = 0
        self._taken = 0  # number of the message a tick last took (applied or expired)
        self._applied = -1  # message number last copied into the simulator
        self._stale = True

    @property
    def ttl(self) -> float | None:
        """Seconds a value drives the network without a new message (None: forever)."""
        return self._ttl

    @ttl.setter
    def ttl(self, ttl: float | None) -> None:
        self._ttl = ttl
        if self._mailbox is not None:
            self._mailbox.set_ttl(ttl)

    def bind(self, mailbox: Mailbox) -> None:
        """Post every value to ``mailbox`` from now on (before the tick thread starts)."""
        self._mailbox = mailbox
        mailbox.set_ttl(self._ttl)

    def offer(
        self, x: npt.NDArray[np.float64], received: float, expires: float | None = None
    ) -> None:
        """Store a new value (I/O thread). ``x`` has shape ``(dim,)`` and is not copied.

        ``expires``: clock time (the ``received`` time line) after which this value must
        no longer drive the network, e.g. from an MQTT 5 message expiry interval; it then
        falls back to the default as after a TTL. None: only the TTL applies.
        """
        self.accepted += 1
        self._latest = (x, received, self.accepted, expires)
        if self._mailbox is not None:
            self._mailbox.post(x, received, expires)

    def counts(self) -> dict[str, int]:
        """The counters the stats show under ``inputs.<name>`` (any thread)."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stale": self.stale_events,
            "expired": self.expired,
            "superseded": self.superseded,
        }

    def reject(self) -> None:
        """Count a rejected payload (I/O thread)."""
        self.rejected += 1

    def apply(self, target: npt.NDArray[np.floating], now: float) -> int:
        """Copy the current value into ``target`` (tick thread).

        Returns 0 when nothing changed, :data:`NEW_VALUE` when a new message was applied,
        and :data:`WENT_STALE` when the TTL (or the value's own expiry) passed and the
        default was applied; with :data:`EXPIRED` set when a message expired before any
        tick applied it.
        """
        latest = self._latest
        if latest is None:
            return 0
        value, received, number, expires = latest
        if (self.ttl is not None and now - received > self.ttl) or (
            expires is not None and now > expires
        ):
            change = 0
            if number != self._applied:  # it never drove the network: said, not lost
                self._applied = number
                self._take(number)
                self.expired += 1
                change = EXPIRED
            if not self._stale:
                self._stale = True
                self.stale_events += 1
                np.copyto(target, self.default, casting="unsafe")
                change |= WENT_STALE
            return change
        if number != self._applied:
            self._applied = number
            self._take(number)
            self._stale = False
            np.copyto(target, value, casting="unsafe")
            return NEW_VALUE
        return 0

    def applied(self, change: int, number: int) -> None:
        """The compiled tick applied ``change`` (0, :data:`NEW_VALUE` or
        :data:`WENT_STALE`, either with :data:`EXPIRED`) from the mailbox, message
        ``number`` being the last it took: count it as :meth:`apply` would, so the slot's
        record stays the same."""
        if change & EXPIRED:
            self.expired += 1
            self._applied = number
            self._take(number)
        if change & WENT_STALE:
            self._stale = True
            self.stale_events += 1
        elif change & NEW_VALUE:
            self._stale = False
            self._applied = number
            self._take(number)

    def _take(self, number: int) -> None:
        """A tick took message ``number``: count those offered since the one it took last
        as superseded (tick thread)."""
        self.superseded += max(0, number - self._taken - 1)
        self._taken = number

    def freshness(self, now: float) -> tuple[float | None, bool]:
        """Seconds since the last accepted value, and whether the input is stale now.

        Any thread; reads one reference, so it costs nothing on the tick path. The age is
        None before the first value (and after a reset); the input is stale while it runs
        on its default: before the first value, or once ``ttl`` has passed since the last.
        ``now`` is on the time line of the ``received`` stamps given to :meth:`offer`.
        """
        latest = self._latest
        if latest is None:
            return None, True
        age = max(0.0, now - latest[1])
        return age, self.ttl is not None and age > self.ttl

    def clear(self) -> None:
        """Forget the last value (after a reset). A value offered while this runs may be
        kept or forgotten: it arrived during the reset."""
        self._latest = None
        self._applied = -1
        # What was offered before the reset and not taken is forgotten: counted with the
        # superseded (the reset replaced it), so every value is accounted for. (A value
        # offered while this runs may be counted here and applied too.)
        self.superseded += max(0, self.accepted - self._taken)
        self._taken = self.accepted
        self._stale = True
        if self._mailbox is not None:
            self._mailbox.clear()
