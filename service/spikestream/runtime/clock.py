"""Clocks for pacing ticks: the real one and a fake one for tests.

A :class:`Clock` gives a monotonic time in seconds (``now``), blocks until a deadline on
that same time line (``sleep_until``), and reports Unix time (``wall``) for stamping
frames. The pacer only ever talks to a ``Clock``, so tests drive it with
:class:`FakeClock` and never sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from spikestream.errors import ConfigError

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """What the pacer needs from a clock.

    ``now`` and ``sleep_until`` share one monotonic time line in seconds whose origin is
    arbitrary; only differences and comparisons between its values mean anything.
    """

    def now(self) -> float:
        """Monotonic time in seconds (arbitrary origin, never goes backwards)."""
        ...

    def sleep_until(self, deadline: float) -> None:
        """Block until ``now() >= deadline`` (seconds on the ``now`` time line).

        Returns at once if the deadline has already passed. May return late, never early.
        """
        ...

    def wall(self) -> float:
        """Unix time in seconds, for stamping output; never used for pacing."""
        ...


class SystemClock:
    """The real clock: sleep most of the way to a deadline, then spin the rest.

    ``time.sleep`` on Linux wakes about 0.1 ms late (DESIGN.md section 4), most of it the
    thread's timer slack (50 us by default; the engine's tick thread sets its own to 1 ns),
    so :meth:`sleep_until` sleeps until ``spin`` seconds before the deadline and then
    busy-waits on :meth:`now` until it has passed. The price is up to ``spin`` seconds of
    one core per tick (20 % of a core at the default ``spin=0.0002`` and 1 ms ticks). A
    spin longer than the tick thread's scheduling slice (0.1 ms by default) also lets the
    scheduler preempt it while it waits when every CPU is busy; a shorter one leaves the
    wake-up from an idle CPU uncovered. The spin loop holds the GIL, but only for at most
    ``spin`` seconds, well under the interpreter's switch interval, and the tick work that
    follows (numpy) releases it.

    Args:
        spin: Seconds before each deadline at which to stop sleeping and start spinning;
            0 sleeps all the way (cheaper, about 0.1 ms later). Must be finite and >= 0.
    """

    __slots__ = ("_spin",)

    def __init__(self, spin: float = 0.0002) -> None:
        if not (math.isfinite(spin) and spin >= 0.0):
            msg = f"SystemClock spin must be a finite number of seconds >= 0, got {spin!r}"
            raise ConfigError(msg)
        self._spin = float(spin)

    @property
    def spin(self) -> float:
        """Seconds of busy-waiting before each deadline."""
        return self._spin

    def now(self) -> float:
        """Monotonic seconds from ``time.perf_counter``.

        perf_counter, not monotonic: both are monotonic and system-wide, and on Linux both
        read CLOCK_MONOTONIC, but perf_counter is the one documented to have the highest
        available resolution everywhere (``time.monotonic`` on Windows ticks in ~15.6 ms
        steps, useless for 1 ms ticks). ``time.sleep`` waits on the same monotonic clock,
        so sleeping towards a perf_counter deadline is consistent.
        """
        return time.perf_counter()

    def sleep_until(self, deadline: float) -> None:
        """Block until ``now() >= deadline``: sleep to ``deadline - spin``, then spin."""
        now = time.perf_counter
        remaining = deadline - now() - self._spin
        if remaining > 0.0:
            time.sleep(remaining)
        # The spin also catches an early return from time.sleep (it can wake early after
        # a signal on some platforms), so this never returns before the deadline.
        while now() < deadline:
            pass

    def wall(self) -> float:
        """Unix time in seconds (``time.time``)."""
        return time.time()


class FakeClock:
    """A clock for tests: time moves only when told to, so no test ever really sleeps.

    ``sleep_until`` jumps the time to the deadline (plus whatever ``oversleep`` returns, to
    simulate waking late), and :meth:`advance` simulates work that takes time. Useful for
    testing any code that takes a :class:`Clock`.

    Args:
        start: Initial value of :meth:`now`, in seconds.
        wall_offset: :meth:`wall` returns ``wall_offset + now()`` (Unix seconds).
        oversleep: Called as ``oversleep(deadline)`` each time ``sleep_until`` actually has
            to wait (deadline in the future); returns extra seconds (>= 0) by which the
            wake-up is late. ``None`` means always wake exactly on the deadline.
    """

    __slots__ = ("_oversleep", "_t", "_wall_offset", "sleep_calls")

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall_offset: float = 1.7e9,
        oversleep: Callable[[float], float] | None = None,
    ) -> None:
        self._t = float(start)
        self._wall_offset = float(wall_offset)
        self._oversleep = oversleep
        #: Number of ``sleep_until`` calls so far, including ones that returned at once.
        self.sleep_calls = 0

    def now(self) -> float:
        """The current fake time in seconds."""
        return self._t

    def wall(self) -> float:
        """``wall_offset + now()``, in Unix seconds."""
        return self._wall_offset + self._t

    def sleep_until(self, deadline: float) -> None:
        """Jump to ``deadline`` (plus any oversleep) if it is in the future; count the call."""
        self.sleep_calls += 1
        if deadline > self._t:
            extra = 0.0 if self._oversleep is None else self._oversleep(deadline)
            if not extra >= 0.0:
                msg = f"FakeClock oversleep must return seconds >= 0, got {extra!r}"
                raise ConfigError(msg)
            self._t = deadline + extra

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0), e.g. to simulate a tick's work."""
        if not seconds >= 0.0:
            msg = f"FakeClock.advance needs seconds >= 0 (time is monotonic), got {seconds!r}"
            raise ConfigError(msg)
        self._t += seconds

    def set(self, t: float) -> None:
        """Set the time to ``t`` seconds; it may not go backwards."""
        if not t >= self._t:
            msg = f"FakeClock.set needs t >= now() = {self._t!r} (time is monotonic), got {t!r}"
            raise ConfigError(msg)
        self._t = float(t)
