"""The tick pacer: when each tick of the simulation may start, on the wall clock.

Ticks are scheduled on a grid of absolute deadlines, never by adding up sleeps::

    deadline(k) = t0 + (k - k0) * dt / realtime_factor        (seconds, Clock.now() time line)

``k`` is an integer tick index and ``(t0, k0)`` the current *anchor*: the deadline of tick
``k0`` is ``t0``. Every deadline is one multiply and one add from integers, so no rounding
error accumulates however many ticks run (10**7 ticks of 1 ms land within a few ulp of
the exact value). The anchor moves only on purpose (rate change, pause, slip, realign),
each time to the exact deadline or start time of a specific tick, so the grid never jumps.

The pacer is synchronous and not thread-safe: construct it anywhere, then call every
method except :meth:`Pacer.statistics` from the tick thread. :meth:`Pacer.statistics` may be
called from any thread (it reads counters; a torn read is tolerated, see ``stats.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np

from spikestream.errors import ConfigError, SimulationError
from spikestream.runtime.clock import Clock, SystemClock
from spikestream.runtime.stats import (
    DEFAULT_THRESHOLDS,
    LatenessHistogram,
    LatenessSnapshot,
    PaceRecord,
    WindowStatistics,
    pace_factor,
)

__all__ = [
    "MAX_PERIOD",
    "MAX_REALTIME_FACTOR",
    "POLICIES",
    "STOP_POLL",
    "WINDOWS",
    "Pacer",
    "PacerPolicy",
    "PacerStatistics",
    "Tick",
]

#: What to do when a tick's deadline has passed before it could start (an *overrun*).
PacerPolicy = Literal["catch-up", "skip", "slip"]
POLICIES: Final[tuple[PacerPolicy, ...]] = get_args(PacerPolicy)

#: Lengths in seconds of the recent windows :meth:`Pacer.statistics` reports beside the
#: since-start figures, so that an episode shows while it lasts.
WINDOWS: Final[tuple[float, ...]] = (1.0, 10.0)

#: The longest tick period (s) a realtime factor may give: the compiled tick refuses a
#: deadline further ahead (``MAX_WAIT`` in ``_native_inputs.h``), so a factor below ``dt`` over
#: it is refused where it is set, not by the tick thread.
MAX_PERIOD: Final[float] = 86400.0

#: The largest realtime factor: past it a tick's period is below a nanosecond at dt = 1 ms,
#: and the schedule dropped, in simulated seconds (``behind``), could overflow to inf. The
#: control schema's bound (``spikestream_client.codec.MAX_REALTIME_FACTOR``) is the same
#: (a test checks it); it is not imported here, so that an offline run loads no codec.
MAX_REALTIME_FACTOR: Final[float] = 1e6

#: The longest (s) a command or a stop waits for the tick thread at a slow realtime
#: factor: its waits for a deadline look for them this often (``STOP_POLL`` in
#: ``_native_stages.h`` for the runs of compiled ticks).
STOP_POLL: Final[float] = 0.05


@dataclass(slots=True)
class Tick:
    """The tick :meth:`Pacer.wait` just released. Times in seconds on the clock's ``now`` line.

    The pacer owns one ``Tick`` and overwrites it on every ``wait()`` (no allocation per
    tick): read or copy the fields before the next ``wait()``.

    Attributes:
        index: Tick number since :meth:`Pacer.start`, from 0. Counts skipped ticks too, so
            ``index * dt`` is the simulated time the grid says this tick is at.
        deadline: When the tick was due.
        start: When ``wait()`` released it (``>= deadline``).
        lateness: ``start - deadline``, seconds of wall time, >= 0 (0 when free-running).
        skipped: Ticks dropped just before this one (``skip`` policy only, else 0). The
            pacer does not run them; the caller decides whether simulated time jumps.
    """

    index: int = -1
    deadline: float = math.nan
    start: float = math.nan
    lateness: float = 0.0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class PacerStatistics:
    """Counters of a :class:`Pacer` since :meth:`Pacer.start` or the last reset.

    Attributes:
        ticks: Ticks released by ``wait()`` (skipped ticks not included).
        overruns: Times ``wait()`` found the next deadline already passed, i.e. the previous
            tick's work (or anything else) made it late; the policy then applied.
        skipped: Ticks dropped under the ``skip`` policy.
        slips: Times the schedule was moved under the ``slip`` policy.
        realigns: Times the ``catch-up`` policy gave up on a backlog after ``max_catchup``
            late ticks in a row and moved the schedule.
        behind: Simulated seconds the schedule dropped: the backlog each slip, realign or
            resume gave up on (wall seconds late times the real-time factor), so simulated
            time lost against the wall clock's original grid.
        lateness: Per-tick lateness in seconds (percentiles, max, counts over thresholds).
        realtime_factor: The requested factor now.
        realtime_factor_actual: Simulated seconds per wall second over the window:
            ``(ticks between the first and the last tick start) * dt / active wall time``,
            where active time excludes pauses. Ticks dropped by ``skip`` do not count as
            simulated, so skipping shows up here as a factor below the requested one.
            NaN before two ticks have run; +inf if no wall time passed (fake clock).
        elapsed: The active wall time in seconds that ``realtime_factor_actual`` divides by.
        simulated: The simulated seconds it divides (the intervals between ticks times
            ``dt``): between two snapshots, ``(simulated2 - simulated1) / (elapsed2 -
            elapsed1)`` is the factor over that span.
        recent: Lateness and real-time factor over the last :data:`WINDOWS` seconds (one
            entry per window, in that order), not since start.
    """

    ticks: int
    overruns: int
    skipped: int
    slips: int
    realigns: int
    behind: float
    lateness: LatenessSnapshot
    realtime_factor: float
    realtime_factor_actual: float
    elapsed: float
    simulated: float
    recent: tuple[WindowStatistics, ...] = ()

    def late(self, threshold: float) -> int:
        """Ticks later than ``threshold`` seconds (one of the pacer's ``late_thresholds``)."""
        return self.lateness.over_threshold(threshold)


class Pacer:
    """Paces ticks of ``dt`` simulated seconds to the wall clock.

    Usage, on the tick thread::

        pacer = Pacer(0.001, SystemClock(), policy="catch-up")
        pacer.start()
        while running:
            tick = pacer.wait()          # blocks until the tick is due
            if tick.skipped:             # "skip" policy only
                sim.jump(tick.skipped)   # or not: the caller decides
            sim.step()

    Tick 0 is due at the moment :meth:`start` is called and tick ``k`` at
    ``t0 + k * dt / realtime_factor``. If the work of a tick ends before the next deadline,
    ``wait()`` sleeps until it. If it ends after (an *overrun*), the policy decides:

    ``"catch-up"``
        Release the late ticks at once, back to back, so simulated time catches up with
        the wall clock (their lateness decreases as the backlog shrinks). At most
        ``max_catchup`` late ticks run in a row: the ``max_catchup``-th one *realigns* the
        schedule at its own start (the next tick is due one period later) and the rest of
        the backlog is dropped from the wall-clock schedule (nothing is skipped: the
        simulation just ends up behind the original grid). ``max_catchup=1`` behaves
        like ``"slip"`` but is counted as realigns.
    ``"skip"``
        Drop every tick whose deadline has passed; the next tick released is the first
        one on the original grid whose deadline is now or later, and ``Tick.skipped``
        says how many were dropped. The pacer does not run them and does not know whether
        the simulation's time jumps: the caller decides (``Tick.index`` includes them).
        Even a 1 us overrun drops a tick; simulated time stays locked to the grid.
    ``"slip"``
        Release the late tick at once and move the whole schedule by its lateness: the
        next tick is due one period after this one started. No backlog, no skipping; the
        simulation ends up behind the original grid by the sum of the slips.

    Lateness is always measured against the deadline the tick was actually due at before
    any re-anchoring, so it is never hidden.

    With ``realtime_factor == 0`` the pacer free-runs: ``wait()`` never sleeps, lateness is
    0 and no overruns are possible (offline runs, as fast as possible).

    Args:
        dt: Simulated seconds per tick; finite and > 0.
        clock: Time source; default :class:`SystemClock`.
        realtime_factor: Simulated seconds per wall second (1.0 real time, 2.0 twice as
            fast, 0 as fast as possible); finite and >= 0.
        policy: ``"catch-up"``, ``"skip"`` or ``"slip"``.
        max_catchup: Most late ticks run in a row under ``"catch-up"``; int >= 1.
        late_thresholds: Seconds; ticks later than each are counted exactly in
            :meth:`statistics`.
    """

    __slots__ = (
        "_behind",
        "_burst",
        "_clock",
        "_dt",
        "_k0",
        "_lateness",
        "_max_catchup",
        "_next",
        "_overruns",
        "_pause_at",
        "_paused",
        "_period",
        "_planned_at",
        "_policy",
        "_realigns",
        "_record",
        "_rf",
        "_skipped",
        "_slips",
        "_started",
        "_t0",
        "_tick",
        "_window",
    )

    def __init__(
        self,
        dt: float = 0.001,
        clock: Clock | None = None,
        *,
        realtime_factor: float = 1.0,
        policy: PacerPolicy = "catch-up",
        max_catchup: int = 20,
        late_thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    ) -> None:
        if not (_is_real(dt) and math.isfinite(dt) and dt > 0.0):
            msg = f"dt must be a finite number of seconds > 0, got {dt!r}"
            raise ConfigError(msg)
        if policy not in POLICIES:
            msg = f"pacer policy must be one of {', '.join(POLICIES)}, got {policy!r}"
            raise ConfigError(msg)
        if isinstance(max_catchup, bool) or not (isinstance(max_catchup, int) and max_catchup >= 1):
            msg = f"max_catchup must be an int >= 1, got {max_catchup!r}"
            raise ConfigError(msg)
        _check_factor(realtime_factor, dt)

        self._clock: Clock = SystemClock() if clock is None else clock
        self._dt = float(dt)
        self._rf = float(realtime_factor)
        # Wall seconds per tick; 0.0 means free-running (realtime_factor 0).
        self._period = self._dt / self._rf if self._rf > 0.0 else 0.0
        self._policy: PacerPolicy = policy
        self._max_catchup = max_catchup
        # Ticks, lateness and the intervals between tick starts, in arrays that a run of
        # compiled ticks records into as well (see pace_record).
        self._record = PaceRecord(self._dt, late_thresholds, span=max(WINDOWS))
        self._lateness = self._record.lateness
        self._window = self._record.window
        self._tick = Tick()

        # Schedule: deadline(k) = _t0 + (k - _k0) * _period. _next is the tick wait() releases
        # next.
        self._started = False
        self._t0 = math.nan
        self._k0 = 0
        self._next = 0
        self._burst = 0  # late ticks released in a row under catch-up
        self._paused = False
        self._pause_at = math.nan
        self._planned_at = math.nan  # clock time of the last due()

        # Counters (reset by reset_statistics); ints so that reads from another thread are
        # atomic under the GIL.
        self._overruns = 0
        self._skipped = 0
        self._slips = 0
        self._realigns = 0
        self._behind = 0.0

    # -- read-only configuration and state -----------------------------------------------

    @property
    def dt(self) -> float:
        """Simulated seconds per tick."""
        return self._dt

    @property
    def clock(self) -> Clock:
        """The clock this pacer reads and sleeps on."""
        return self._clock

    @property
    def policy(self) -> PacerPolicy:
        """The overrun policy."""
        return self._policy

    @property
    def max_catchup(self) -> int:
        """Most late ticks released in a row under ``"catch-up"``."""
        return self._max_catchup

    @property
    def realtime_factor(self) -> float:
        """Requested simulated seconds per wall second (0 = free-running)."""
        return self._rf

    @property
    def period(self) -> float:
        """Wall seconds between deadlines, ``dt / realtime_factor`` (0.0 when free-running)."""
        return self._period

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has been called."""
        return self._started

    @property
    def paused(self) -> bool:
        """Whether the pacer is between :meth:`pause` and :meth:`resume`."""
        return self._paused

    @property
    def next_index(self) -> int:
        """Index of the tick the next :meth:`wait` will release, unless it skips."""
        return self._next

    def ahead(self, margin: float) -> float:
        """Seconds from now until ``margin`` s before the next tick's deadline; 0.0 when
        that has passed, before :meth:`start`, while paused, free-running or when the
        period is at most ``margin``. A tick thread
        at a slow realtime factor waits this long for commands before its precise wait."""
        # A period within the margin never leaves more (the next deadline is at most a
        # period after the last tick began): no clock read on each fast tick.
        if not self._started or self._paused or self._period <= margin:
            return 0.0
        return max(0.0, self.deadline(self._next) - margin - self._clock.now())

    def anchor(self) -> tuple[float, int]:
        """The schedule's anchor ``(t0, k0)``: tick ``k`` is due at
        ``t0 + (k - k0) * period`` (for a caller that computes deadlines itself)."""
        return self._t0, self._k0

    @property
    def burst(self) -> int:
        """Late ticks released in a row so far under ``catch-up`` (0 after an on-time one)."""
        return self._burst

    def ran(self, index: int, deadline: float, start: float, caught_up: bool = False) -> Tick:
        """Learn of tick ``index``, run by a caller that paces itself on :meth:`anchor`'s
        grid (``deadline``), started at ``start`` and recorded already in
        :attr:`pace_record` (by ``_native.run_ticks``): the state :meth:`due` and
        :meth:`release` leave for a tick that was on time or, with ``caught_up``, late and
        released at once by ``catch-up`` without reaching ``max_catchup`` (the caller
        leaves that one to :meth:`due`). Returns the reused :class:`Tick`."""
        if caught_up:
            self._overruns += 1
            self._burst += 1
        else:
            self._burst = 0
        tick = self._tick
        tick.index = index
        tick.deadline = deadline
        tick.skipped = 0
        return self._released(start, _lateness(start, deadline))

    def ran_run(
        self,
        count: int,
        index: int,
        deadline: float,
        start: float,
        caught_up: int = 0,
        trailing: int = 0,
    ) -> Tick:
        """:meth:`ran` for ``count`` ticks at once, the last being tick ``index`` (its
        ``deadline`` and ``start``): ``caught_up`` of them were catch-up ticks, the last
        ``trailing`` of them in a row. Leaves the state that :meth:`ran` called for each
        tick in turn leaves (``count`` > 0). Returns the reused :class:`Tick`."""
        self._overruns += caught_up
        # A run ending in catch-up ticks only goes on with the burst it began with.
        self._burst = self._burst + count if trailing == count else trailing
        tick = self._tick
        tick.index = index
        tick.deadline = deadline
        tick.skipped = 0
        return self._released(start, _lateness(start, deadline))

    @property
    def pace_record(self) -> PaceRecord:
        """The record :meth:`release` writes each tick into, for a run of compiled ticks
        that records its ticks alike (``TickLoop.record_into``); the pacer then learns of
        each with :meth:`ran` (or of a run with :meth:`ran_run`). Paced ticks only: a
        free-running tick's lateness is 0 and its deadline its start."""
        return self._record

    def deadline(self, index: int) -> float:
        """Deadline of tick ``index`` on the current schedule (``Clock.now()`` seconds).

        Raises:
            SimulationError: Before :meth:`start`, or when free-running (no deadlines).
        """
        if not self._started or self._period == 0.0:
            msg = "no deadlines: the pacer is not started or is free-running (realtime_factor 0)"
            raise SimulationError(msg)
        return self._t0 + (index - self._k0) * self._period

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Anchor the schedule: tick 0 is due now. Call once, right before the first wait()."""
        if self._started:
            msg = "Pacer.start() was already called; create a new Pacer to start over"
            raise SimulationError(msg)
        self._started = True
        self._t0 = self._clock.now()
        self._k0 = 0
        self._next = 0
        self.reset_statistics()

    def wait(self) -> Tick:
        """Block until the next tick is due, apply the overrun policy, and release it.

        :meth:`due`, then the clock's ``sleep_until`` the deadline, then :meth:`release`.

        Returns:
            The pacer's reused :class:`Tick`, overwritten on each call.

        Raises:
            SimulationError: Before :meth:`start` or while paused.
        """
        tick = self.due()
        start = self._planned_at
        if start < tick.deadline:
            self._clock.sleep_until(tick.deadline)
            start = self._clock.now()
        return self.release(start)

    def due(self) -> Tick:
        """Decide the next tick and apply the overrun policy, without sleeping.

        For a caller that waits for the deadline itself, e.g. in compiled code that also
        runs the tick (:mod:`spikestream.runtime.native`). Fills ``index``, ``deadline``
        and ``skipped`` of the reused :class:`Tick` (free-running: the deadline is now);
        call :meth:`release` with the time the tick started before the next ``due``.

        Raises:
            SimulationError: Before :meth:`start` or while paused.
        """
        if not self._started or self._paused:
            msg = "Pacer.wait() needs a started, unpaused pacer (call start() or resume())"
            raise SimulationError(msg)
        period = self._period
        k = self._next
        skipped = 0
        now = self._clock.now()
        if period == 0.0:
            deadline = now  # free-running: no schedule, no sleep, never late
        else:
            deadline = self._t0 + (k - self._k0) * period
            if now > deadline:
                self._overruns += 1
                policy = self._policy
                if policy == "catch-up":
                    self._burst += 1
                    if self._burst >= self._max_catchup:
                        # Give up on the backlog: this tick is the new anchor.
                        self._behind += (now - deadline) * self._rf
                        self._t0 = now
                        self._k0 = k
                        self._realigns += 1
                        self._burst = 0
                elif policy == "slip":
                    self._behind += (now - deadline) * self._rf
                    self._t0 = now
                    self._k0 = k
                    self._slips += 1
                else:  # "skip": jump to the first grid deadline not yet passed
                    m = self._first_due_at_or_after(now, k + 1)
                    skipped = m - k
                    self._skipped += skipped
                    k = m
                    deadline = self._t0 + (m - self._k0) * period
            else:
                self._burst = 0
        self._planned_at = now
        tick = self._tick
        tick.index = k
        tick.deadline = deadline
        tick.start = math.nan
        tick.lateness = math.nan
        tick.skipped = skipped
        return tick

    def release(self, start: float) -> Tick:
        """Record that the tick :meth:`due` decided started at ``start`` (clock seconds).

        Lateness is ``start - deadline``, never below 0 (a clock may return a hair early),
        and 0 when free-running. Returns the completed reused :class:`Tick`.
        """
        tick = self._tick
        if self._period == 0.0:
            tick.deadline = start
            lateness = 0.0
        else:
            lateness = _lateness(start, tick.deadline)
        self._record.record(start, lateness)
        return self._released(start, lateness)

    def _released(self, start: float, lateness: float) -> Tick:
        """Complete the reused :class:`Tick` (index and deadline set) and move on."""
        tick = self._tick
        self._next = tick.index + 1
        tick.start = start
        tick.lateness = lateness
        return tick

    def set_realtime_factor(self, factor: float) -> None:
        """Change the rate without a jump in the schedule.

        The last released tick keeps its deadline and the following ones are spaced
        ``dt / factor`` from it (the next one is due one *new* period after the last one
        was due), except that a deadline still ahead (a tick started early, before it was
        due) counts as now. Switching from 0 (free-running) to paced makes the next tick
        due now.

        Args:
            factor: Simulated seconds per wall second, in [0, ``MAX_REALTIME_FACTOR``]
                and at least ``dt / MAX_PERIOD`` when not 0.
        """
        _check_factor(factor, self._dt)
        factor = float(factor)
        if factor == self._rf:
            return
        period = self._dt / factor if factor > 0.0 else 0.0
        if self._started and period > 0.0:
            if self._period > 0.0:
                # Re-anchor on the last released tick, from integers: exact, no jump. A
                # tick started early for an input is due up to a whole old period ahead:
                # anchored there, a switch from a slow factor would hold the ticks for
                # that long, so the anchor is now at the latest.
                a = self._next - 1 if self._next > 0 else 0
                due = self._t0 + (a - self._k0) * self._period
                # Paused, "now" is when the pause began: resume() adds the time since.
                now = self._pause_at if self._paused else self._clock.now()
                self._t0 = due if due < now else now
                self._k0 = a
            else:
                # From free-running: the next tick is due now (or when the pause began, so
                # that resume() makes it due at the moment of resuming).
                self._t0 = self._pause_at if self._paused else self._clock.now()
                self._k0 = self._next
        self._rf = factor
        self._period = period

    def pause(self) -> None:
        """Stop the schedule (no-op if already paused). Do not call :meth:`wait` until
        :meth:`resume`; the tick thread blocks on its own control channel meanwhile."""
        if not self._started:
            msg = "Pacer.pause() before start()"
            raise SimulationError(msg)
        if self._paused:
            return
        now = self._clock.now()
        self._paused = True
        self._pause_at = now
        # The last ticks before the pause count in the windows, and the active part of
        # the current tick now; resume() restarts the interval.
        self._record.pause(now)

    def resume(self) -> None:
        """Restart the schedule after :meth:`pause` (no-op if not paused).

        The schedule is shifted by the time spent paused, so the next tick keeps its phase
        (due as long after resuming as it was due after pausing). A backlog from before
        the pause is forgiven: the next tick is due no earlier than now, so no burst of
        catch-up ticks follows a pause.
        """
        if not self._paused:
            return
        now = self._clock.now()
        if self._period > 0.0:
            k = self._next
            shifted = self._t0 + (k - self._k0) * self._period + (now - self._pause_at)
            if shifted < now:  # the backlog forgiven is schedule dropped, as a realign's
                self._behind += (now - shifted) * self._rf
            self._t0 = shifted if shifted > now else now
            self._k0 = k
        self._burst = 0
        self._paused = False
        self._pause_at = math.nan
        self._record.resume(now)

    # -- statistics ------------------------------------------------------------------------

    def statistics(self) -> PacerStatistics:
        """A frozen snapshot of the counters (safe to call from any thread)."""
        lateness = self._lateness.snapshot()
        record = self._record
        intervals, active = record.intervals, record.active
        actual = pace_factor(intervals, self._dt, active)
        return PacerStatistics(
            ticks=record.ticks,
            overruns=self._overruns,
            skipped=self._skipped,
            slips=self._slips,
            realigns=self._realigns,
            behind=self._behind,
            lateness=lateness,
            realtime_factor=self._rf,
            realtime_factor_actual=actual,
            elapsed=active,
            simulated=intervals * self._dt,
            recent=self.recent(),
        )

    def recent(self) -> tuple[WindowStatistics, ...]:
        """Lateness and pace over the last :data:`WINDOWS` seconds (any thread)."""
        now = self._clock.now()
        return tuple(self._window.statistics(w, now) for w in WINDOWS)

    def lateness_histogram(self) -> LatenessHistogram:
        """The raw lateness histogram (bucket edges in seconds), for metrics exporters."""
        return self._lateness.histogram()

    def reset_statistics(self) -> None:
        """Zero the counters and lateness statistics; the schedule is untouched.

        Call from the tick thread.
        """
        self._overruns = 0
        self._skipped = 0
        self._slips = 0
        self._realigns = 0
        self._behind = 0.0
        self._record.reset()

    def _first_due_at_or_after(self, now: float, lowest: int) -> int:
        """Smallest tick index ``m >= lowest`` whose deadline is ``>= now``."""
        t0 = self._t0
        k0 = self._k0
        period = self._period
        m = max(lowest, k0 + math.ceil((now - t0) / period))
        # The division can round either way by an ulp; settle it on the real deadlines.
        while t0 + (m - k0) * period < now:
            m += 1
        while m > lowest and t0 + (m - 1 - k0) * period >= now:
            m -= 1
        return m


def _lateness(start: float, deadline: float) -> float:
    """Seconds a tick started after its deadline, never below 0 (a clock may return a
    hair early); the compiled run of ticks records the same (``_native_stages.h``, finish_tick)."""
    return start - deadline if start > deadline else 0.0


def _check_factor(factor: float, dt: float) -> None:
    if not (_is_real(factor) and math.isfinite(factor) and 0.0 <= factor <= MAX_REALTIME_FACTOR):
        msg = (
            f"realtime_factor must be a number in [0, {MAX_REALTIME_FACTOR:g}] "
            f"(0 = free-running), got {factor!r}"
        )
        raise ConfigError(msg)
    if factor > 0.0 and dt / factor > MAX_PERIOD:
        msg = (
            f"realtime_factor must be 0 (free-running) or at least dt / {MAX_PERIOD:g} s = "
            f"{dt / MAX_PERIOD:.6g} (a tick period of at most a day), got {factor!r}"
        )
        raise ConfigError(msg)


def _is_real(value: object) -> bool:
    """A real number (Python or numpy), but not a bool: True is not a period."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
