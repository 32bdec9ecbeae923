"""Pacing the simulation to the wall clock, on the tick thread.

:class:`Pacer` releases ticks on a grid of absolute deadlines ``t0 + k * dt / realtime_factor``
read from a :class:`Clock` (:class:`SystemClock` sleeps then spins; :class:`FakeClock` is for
tests), applies an overrun policy (``"catch-up"``, ``"skip"`` or ``"slip"``) and keeps
per-tick lateness in a constant-memory :class:`LatenessStats`. Everything here is
synchronous; nothing imports asyncio or MQTT.
"""

from spikestream.runtime.clock import Clock, FakeClock, SystemClock
from spikestream.runtime.pacer import (
    POLICIES,
    WINDOWS,
    Pacer,
    PacerPolicy,
    PacerStatistics,
    Tick,
)
from spikestream.runtime.stats import (
    DEFAULT_THRESHOLDS,
    LatenessHistogram,
    LatenessSnapshot,
    LatenessStats,
    LatenessWindow,
    WindowStatistics,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "POLICIES",
    "WINDOWS",
    "Clock",
    "FakeClock",
    "LatenessHistogram",
    "LatenessSnapshot",
    "LatenessStats",
    "LatenessWindow",
    "Pacer",
    "PacerPolicy",
    "PacerStatistics",
    "SystemClock",
    "Tick",
    "WindowStatistics",
]
