"""Giving the GIL back to the tick thread during long stretches of I/O-side Python.

The tick thread needs the GIL for a few microseconds each tick. CPython's forced switch
(``sys.setswitchinterval``) is meant to hand it over within the switch interval, but
measured on this project's 2-core machine a thread busy with Python work (paho parsing a
burst of 100 input messages, ~4 ms) kept the GIL from a waiting thread for ~3.5 ms at p99,
whatever the interval (50 µs to 5 ms). An explicit ``time.sleep(0)``, which releases and
re-takes the GIL, every 0.2 ms of such work brought the waiting thread's p99 delay to
0.015 ms. So the I/O side calls :func:`yield_gil` on its per-message and per-frame paths
when the Python tick path runs. The compiled tick (:mod:`spikestream.runtime.native_tick`)
takes the GIL once per tick, after the tick itself, and there the hand-offs cost more
than they save (``serving/service.py``), so the service skips them.
"""

from __future__ import annotations

import time

#: Longest stretch (s) of I/O-side Python between two GIL hand-offs.
YIELD_EVERY = 0.0002

_last = [0.0]


def yield_gil(now: float | None = None) -> None:
    """Release the GIL briefly if :data:`YIELD_EVERY` seconds passed since the last time.

    Costs ~0.1 µs when not due and ~2 µs (one ``sleep(0)`` system call) when due. Call it
    only from I/O threads, never from the tick thread.
    """
    t = time.perf_counter() if now is None else now
    if t - _last[0] >= YIELD_EVERY:
        time.sleep(0)
        _last[0] = time.perf_counter()
