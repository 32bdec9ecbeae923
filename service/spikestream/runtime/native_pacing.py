"""The arrays of a compiled run of live ticks, and the spin's adaptation.

``run_ticks`` (``_native_loop.h``) keeps its state in two arrays the caller allocates
once: ``loop`` (int64, :data:`LOOP_COLUMNS`) and ``times`` (float64, :data:`TIME_COLUMNS`),
laid out as ``_native_pacing.h``'s ``L_*`` and ``T_*``. This module names their columns
and fills the adaptation's share of them: the tick thread reads its own run delay and
spins longer while it is kept waiting for a CPU (:class:`SpinAdapter` runs the same
adaptation for a tick loop of the caller's own). :mod:`spikestream.runtime.native_tick`
runs the ticks.
"""

from __future__ import annotations

import os
import weakref

import numpy as np
import numpy.typing as npt

from spikestream.sim.native import extension

#: Columns of the loop array and what ``run_ticks`` returns (see ``_native_pacing.h``).
(
    L_STOP,
    L_HEAD,
    L_TAIL,
    L_CAPACITY,
    L_ROW_BYTES,
    L_RING,
    L_NEXT,
    L_K0,
    L_COPIES,
    L_N_COPIES,
    L_FILL,
    L_N_STREAMS,
    L_ARMED,
    L_EVENTFD,
    L_TICKS,
    L_BURST,
    L_CATCHUP,
    L_SCHEDSTAT,
    L_ADAPT_TICKS,
    L_CALM_WINDOWS,
    L_DELAY_NS,
    L_DELAY_AT,
    L_WINDOW,
    L_CONTENDED,
    L_CALM,
    L_BUSY_TICKS,
    L_SPELLS,
    L_HOT_WINDOWS,
    L_HOT,
    L_PROGRAM2,
    L_N_OPS2,
    L_LATCHES,
    L_N_LATCHES,
    L_MAIN_COPIES,
    L_THREADED,
    L_INLINE,
    L_PIN,
    L_PINNED,
    L_FLOOR_NS1,
    L_FLOOR_NS2,
    L_PROCSTAT,
    L_IDLE_TICKS,
    L_ALL_TICKS,
    L_PACE,
    L_WORK,
    L_TAKE_NS,
    L_TAKEOVERS,
    L_HELPER_LAG_NS,
    L_HELPER_HOLD_NS,
    L_STARTS_TAKEN,
    L_MAIN_LAG_NS,
    L_MAIN_LAG_EVERY,
    L_EARLY,
    L_EARLY_TICKS,
) = range(54)
LOOP_COLUMNS = 54
#: Columns of the times array: grid anchor and period, the spins, the contention thresholds.
T_T0, T_PERIOD, T_SPIN, T_BUSY_SPIN, T_HIGH, T_LOW, T_IDLE = range(7)
TIME_COLUMNS = 7
RUN_CONTROL, RUN_OVERRUN, RUN_FULL = range(3)

#: The contended spin's adaptation (``_native_pacing.h``'s adapt_spin), measured in
#: ``bench/floor.py``: every ADAPT_TICKS ticks the tick thread reads its own run delay
#: (``/proc/thread-self/schedstat``: time spent runnable, waiting for a CPU). HOT_WINDOWS
#: readings in a row above CONTENDED_SHARE of wall time begin a contended spell (one is a
#: transient, such as the service starting up), in which each tick spins the busy spin
#: instead of the spin; CALM_WINDOWS readings in a row below CALM_SHARE end it.
#: Measured with the seed network served at 1 tick per frame: about 0.04 % with the
#: machine otherwise idle, 1.1 % beside one CPU-bound process, 19 % beside two.
ADAPT_TICKS = 100
CONTENDED_SHARE = 0.05
CALM_SHARE = 0.01
#: 3 s: beside two CPU-bound processes the tick thread, spinning the busy spin, reads below
#: CALM_SHARE in about half of its readings (0.0–9 %, median 0.7 %), so ten in a row ended
#: a spell every 5–20 s and each end cost about a second of the long spin; a quiet machine
#: reads about 0.04 % every time.
CALM_WINDOWS = 30
HOT_WINDOWS = 2
#: A reading counts as contended only while the host's CPUs were busy: less than this
#: share of their time idle since the last one (``/proc/stat``; time the hypervisor
#: stole is left out). The run delay also counts the tick thread's waits behind the
#: service's own I/O thread and the broker: on a quiet 2-vCPU VM it began a spell in most
#: 20 s runs of the seed at 5,000 frames/s and seldom read calm enough to end it; the
#: runs that spent most of their ticks in one were 1.5–3.0 % late without the spin,
#: against 0.15–0.45 % in runs that began none. Idle per 100 ms there: 54–62 % quiet,
#: 19–38 % (p10–p90) beside one CPU-bound process, 0 % (median) beside two.
IDLE_SHARE = 0.35
SCHEDSTAT = "/proc/thread-self/schedstat"
PROC_STAT = "/proc/stat"


def open_schedstat() -> int:
    """A descriptor of the calling thread's own schedstat, or -1 where there is none
    (not Linux, or a kernel without scheduler statistics)."""
    return open_proc(SCHEDSTAT)


def open_proc(path: str) -> int:
    """A read-only descriptor of ``path`` (a /proc file the adaptation reads), or -1."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def fill_adaptation(
    loop: npt.NDArray[np.int64],
    times: npt.NDArray[np.float64],
    spin: float,
    busy_spin: float | None,
) -> float | None:
    """Fill the adaptation's columns of a fresh loop array (no schedstat yet, no reading)
    and of its times array (the two spins, the thresholds). Returns the busy spin in
    force: None when there is none, or it is ``spin`` itself (nothing to adapt to)."""
    if busy_spin == spin:
        busy_spin = None
    loop[L_SCHEDSTAT] = -1
    loop[L_PROCSTAT] = -1
    loop[L_ADAPT_TICKS] = ADAPT_TICKS
    loop[L_CALM_WINDOWS] = CALM_WINDOWS
    loop[L_HOT_WINDOWS] = HOT_WINDOWS
    loop[L_DELAY_NS] = -1
    loop[L_IDLE_TICKS] = -1
    times[[T_SPIN, T_BUSY_SPIN]] = (spin, spin if busy_spin is None else busy_spin)
    times[[T_HIGH, T_LOW, T_IDLE]] = (CONTENDED_SHARE, CALM_SHARE, IDLE_SHARE)
    return busy_spin


class SpinAdapter:
    """The spin adaptation of :class:`~spikestream.runtime.native_tick.TickLoop`, for a
    tick loop of the caller's own: ``bench/floor.py``'s empty tick waits as the service's
    tick thread does. Make it, and call it after each tick, on the thread that ticks; it
    returns the spin (s) for the next wait. ``busy_spin`` None: always ``spin``.
    """

    def __init__(self, spin: float, busy_spin: float | None) -> None:
        ext = extension()
        if ext is None:
            raise ValueError("the spin adaptation needs the C extension")
        self.loop = np.zeros(LOOP_COLUMNS, np.int64)
        self.times = np.zeros(TIME_COLUMNS)
        busy_spin = fill_adaptation(self.loop, self.times, spin, busy_spin)
        self.loop[L_SCHEDSTAT] = -1 if busy_spin is None else open_schedstat()
        self.loop[L_PROCSTAT] = -1 if busy_spin is None else open_proc(PROC_STAT)
        self._fd = int(self.loop[L_SCHEDSTAT])
        self._closer = weakref.finalize(self, close_fd, self._fd)
        self._stat_closer = weakref.finalize(self, close_fd, int(self.loop[L_PROCSTAT]))
        self._adapt = ext.adapt_spin
        self._addresses = (int(self.loop.ctypes.data), int(self.times.ctypes.data))

    def __call__(self) -> float:
        """Count one tick; the spin for the next."""
        spin: float = self._adapt(*self._addresses)
        return spin

    @property
    def contended(self) -> bool:
        """Whether a contended spell is on."""
        return bool(self.loop[L_CONTENDED])

    @property
    def spells(self) -> int:
        """Contended spells begun since the adapter was made."""
        return int(self.loop[L_SPELLS])

    def close(self) -> None:
        """Close the schedstat and /proc/stat descriptors (idempotent)."""
        self.loop[L_SCHEDSTAT] = self.loop[L_PROCSTAT] = -1
        self._closer()
        self._stat_closer()


def close_fd(fd: int) -> None:
    if fd >= 0:
        os.close(fd)
