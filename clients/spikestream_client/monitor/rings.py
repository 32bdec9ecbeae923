"""One probe's window as ring buffers, and the memory the rings of all probes share.

A :class:`SpikeView` or :class:`ValueView` keeps a probe's last ``window`` seconds as
rings of ``window / dt`` ticks: spike counts per neuron group (uint32, ``rows`` per tick)
or the first :data:`TRACE_COMPONENTS` value components (float32), plus one byte per tick
saying whether it has data. :class:`~.aggregate.MonitorModel` feeds them and asks for a
summary once per redraw.

**Memory.** ``window`` comes from the user, ``dt`` from the bus (down to 1 µs), and anyone
who may publish on ``out/+`` can invent up to ``MAX_PROBES`` (256) probe names, each
asking for a full window. So the rings are bounded twice:

* per probe, :data:`MAX_RING_CELLS` cells (32 MiB of spike counts);
* across all probes of one model, :data:`MAX_RING_BYTES` (128 MiB), through one
  :class:`RingBudget`. Half of it is split evenly: each probe may hold its share
  (256 KiB for 256 probes: 15 420 ticks of a 4-row raster, 15 s at dt = 1 ms) whatever
  the others hold, so invented names that come first cannot starve the real probes. The
  other half is lent, first come first served, to probes whose window needs more.

A ring that cannot hold the whole window holds the newest ticks that fit (whole bins, at
least one tick per bin) and the view is marked ``shortened``; the monitors show how many
are. Without the budget, one 1-tick frame at dt = 1 µs on each of 256 invented probes
made the monitor hold 4.2 GB.

**Setup.** A ring is set up afresh (sized; allocated only when its size changes) when
``dt`` or the probe's layout (``n`` or the value shape) changes, or its ticks go back (a
reset). Whatever came before such a change would be wiped at once, so a fold keeps only
the frames after the last one and sets the ring up once: frames that flip ``dt`` every
frame cost one setup per redraw, not one allocation per frame.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from spikestream_client.monitor.spikecounts import (
    CellTally,
    group_counts,
    group_starts,
    window_spikes,
)

__all__ = [
    "LATEST_SHOWN",
    "MAX_RING_BYTES",
    "MAX_RING_CELLS",
    "TRACE_COMPONENTS",
    "RingBudget",
    "SpikeView",
    "ValueView",
    "View",
    "group_sizes",
]

F64 = npt.NDArray[np.float64]
TRACE_COMPONENTS: Final = 4
"""Value components traced per value probe (the first ones)."""
LATEST_SHOWN: Final = 8
"""Components of a value probe's latest value kept for display."""
MAX_RING_CELLS: Final = 2**23
"""Most cells (ticks × groups or components) of one probe's ring: 32 MiB of counts.
``window / dt`` comes from the user and the bus (``dt`` may be 1 µs), so a longer
window than this holds is shortened to what fits rather than allocated."""
MAX_RING_BYTES: Final = 2**27
"""Most bytes the rings of all probes of one model hold together (128 MiB): see
:class:`RingBudget`."""


class RingBudget:
    """Ring bytes that the views of one model share, at most ``total`` together.

    Each of up to ``probes`` views may hold ``share = total // (2 * probes)`` bytes
    whatever the others hold; above its share it borrows from a ``pool`` of the rest,
    first come first served. Every grant keeps ``lent <= pool``, so the views hold at
    most ``probes * share + pool = total`` bytes.

    Args:
        probes: Most views that share the budget.
        total: Bytes all their rings may hold together.
    """

    def __init__(self, probes: int, total: int = MAX_RING_BYTES) -> None:
        if probes < 1 or total < 2 * probes:
            raise ValueError(f"a ring budget of {total} bytes cannot serve {probes} probes")
        self.total = total
        self.share = total // (2 * probes)
        self.pool = total - probes * self.share
        self.lent = 0
        """Bytes of the pool held by views above their share."""
        self.held = 0
        """Bytes held by all views."""

    def most(self, held: int) -> int:
        """Most bytes a view that now holds ``held`` bytes may hold instead."""
        own = max(0, held - self.share)  # what this view has borrowed, it may keep
        return self.share + self.pool - self.lent + own

    def move(self, before: int, after: int) -> None:
        """Account for a view going from ``before`` to ``after`` bytes (after <= most)."""
        self.lent += max(0, after - self.share) - max(0, before - self.share)
        self.held += after - before


class View:
    """One probe's header bookkeeping and the ring bookkeeping its kinds share.

    Args:
        name: Probe name.
        window: Seconds of history the ring should hold.
        bins: Time bins across the window (the ring holds a whole number per bin).
        max_pending: Frames held before folding early.
        budget: The ring memory shared with the model's other views (None: one of its
            own, bounded only by :data:`MAX_RING_CELLS`).
    """

    kind: Literal["spikes", "values"]

    def __init__(
        self,
        name: str,
        window: float,
        bins: int,
        max_pending: int,
        budget: RingBudget | None = None,
    ) -> None:
        self.name = name
        self.window = window
        self.bins = bins
        self.max_pending = max_pending
        self.budget = budget if budget is not None else RingBudget(1)
        self.pending: list[Any] = []
        self.frames = 0
        self.dropped = 0
        self._late: deque[tuple[int, float]] = deque()  # (end tick, late_max) per frame
        self.last_wall = math.nan
        self.last_t = math.nan
        self.next_tick = 0
        self.dt = math.nan
        self.layout: object = None  # the n or shape the ring was set up for
        self.width = 0  # ring length in ticks
        self.head = 0  # absolute tick one past the newest data in the ring
        self.covered = np.zeros(0, np.bool_)
        self.ring_bytes = 0  # bytes of all this view's rings, as the budget counts them
        self.allocations = 0  # rings allocated so far (a setup of the same size reuses)
        self.shortened = False  # the ring holds less than the window
        self._last_tick = -1
        self._arrivals: deque[float] = deque(maxlen=1 << 17)  # monotonic arrival times
        self._first_arrival = math.nan
        self._progress: deque[tuple[float, float]] = deque()  # (wall, t) samples
        self.cells_per_tick = 1  # ring cells per tick, for the MAX_RING_CELLS bound

    def add(self, frame: Any, now: float | None = None) -> None:
        """Record one frame (O(1); the heavy part waits for :meth:`fold`); ``now`` is
        its arrival on the monotonic clock (s; None: read it)."""
        h = frame.header
        now = time.monotonic() if now is None else now
        if not self.frames:
            self._first_arrival = now
        self._arrivals.append(now)
        self.frames += 1
        self.dropped = h.dropped
        self.last_wall = h.wall
        self.last_t = h.t
        self.next_tick = h.tick + h.ticks
        self.pending.append(frame)
        if len(self.pending) >= self.max_pending:
            self.fold()

    def fold(self) -> None:
        """Fold the pending frames into the rings."""
        frames, self.pending = self.pending, []
        if not frames:
            return
        for h in (frames[0].header, frames[-1].header):
            if self._progress and h.t < self._progress[-1][1]:
                self._progress.clear()  # simulated time went back: reset or restart
            self._progress.append((h.wall, h.t))
        newest = self._progress[-1][0]
        while len(self._progress) > 2 and newest - self._progress[1][0] >= 2.0:
            self._progress.popleft()
        # Only the frames after the last restart (dt or layout changed, ticks went back)
        # survive it, so the ring is set up once, for the first of them.
        start, restart = 0, False
        dt, layout, last = self.dt, self.layout, self._last_tick
        for i, frame in enumerate(frames):
            h = frame.header
            shape = self._layout_of(frame)
            if h.dt != dt or shape != layout or h.tick < last:
                start, restart, dt, layout = i, True, h.dt, shape
            last = h.tick
        self._last_tick = last
        if restart:
            self._restart(frames[start])
        self._fold(frames[start:])

    def _restart(self, frame: Any) -> None:
        """Set the ring up afresh for ``frame``'s dt and layout, starting at its tick."""
        self.dt = frame.header.dt
        self.layout = self._layout_of(frame)
        self._set_layout(frame)
        per_tick = 1 + 4 * self._inner()  # a covered flag and 4-byte cells
        bins = self.bins
        # Whole bins, at least one tick each, at most MAX_RING_CELLS cells and what the
        # budget grants.
        wanted = max(bins, round(self.window / self.dt / bins) * bins)
        cells = max(1, MAX_RING_CELLS // self.cells_per_tick // bins) * bins
        fits = max(1, self.budget.most(self.ring_bytes) // per_tick // bins) * bins
        width = min(wanted, cells, fits)
        self.shortened = width < wanted
        if self.width and width == self.width and self._allocated() == self._inner():
            self._zero()  # the same size: no new allocation
        else:
            self.budget.move(self.ring_bytes, 0)
            self.width = width
            self._allocate()
            self.ring_bytes = width * per_tick
            self.budget.move(0, self.ring_bytes)
            self.allocations += 1
        self._late.clear()
        self.head = frame.header.tick

    def release(self) -> None:
        """Give the ring's bytes back to the budget (the view is being dropped)."""
        self.budget.move(self.ring_bytes, 0)
        self.ring_bytes = 0

    def _layout_of(self, frame: Any) -> object:
        raise NotImplementedError

    def _set_layout(self, frame: Any) -> None:
        raise NotImplementedError

    def _inner(self) -> int:
        """Cells per tick of the data ring (groups or components)."""
        raise NotImplementedError

    def _allocated(self) -> int:
        """Cells per tick of the data ring as allocated."""
        raise NotImplementedError

    def _allocate(self) -> None:
        self.covered = np.zeros(self.width, np.bool_)

    def _zero(self) -> None:
        self.covered[:] = False

    def _advance(self, frames: list[Any]) -> tuple[int, list[Any]]:
        """Move the ring's head to the newest frame; returns (oldest kept tick, frames
        that still overlap the window)."""
        new_head = max(self.head, *(f.header.tick + f.header.ticks for f in frames))
        width = self.width
        if new_head - self.head >= width:
            self._wipe(np.arange(width))
        elif new_head > self.head:
            self._wipe(np.arange(self.head, new_head) % width)
        self.head = new_head
        oldest = new_head - width
        kept = [f for f in frames if f.header.tick + f.header.ticks > oldest]
        for f in kept:
            h = f.header
            lo = max(h.tick, oldest)
            self.covered[np.arange(lo, h.tick + h.ticks) % width] = True
            self._late.append((h.tick + h.ticks, h.late_max))
        while self._late and self._late[0][0] <= oldest:
            self._late.popleft()
        return oldest, kept

    def _wipe(self, slots: npt.NDArray[np.intp]) -> None:
        self.covered[slots] = False

    def _fold(self, frames: list[Any]) -> None:
        raise NotImplementedError

    def fps(self, now: float) -> float:
        """Frames received per second over the last second (``now``: monotonic)."""
        arrivals = self._arrivals
        while arrivals and arrivals[0] < now - 1.0:
            arrivals.popleft()
        span = min(1.0, now - self._first_arrival)
        if not arrivals:
            return 0.0
        return len(arrivals) / span if span >= 0.05 else math.nan

    def rtf(self) -> float:
        """Simulated seconds per wall second over the last ~2 s of frames (NaN if the
        frames seen span less than 0.2 s)."""
        if len(self._progress) < 2:
            return math.nan
        (w0, t0), (w1, t1) = self._progress[0], self._progress[-1]
        return (t1 - t0) / (w1 - w0) if w1 - w0 >= 0.2 else math.nan

    def late_max(self) -> float:
        """Worst ``late_max`` of the frames in the window."""
        return max((late for _, late in self._late), default=0.0)

    def ordered(self, ring: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``ring`` rolled so that row 0 is the oldest tick of the window."""
        return np.roll(ring, -(self.head % self.width), axis=0)

    def coverage(self) -> float:
        """Fraction of the window's ticks that have data."""
        return float(self.covered.mean()) if self.width else 0.0


def group_sizes(n: int, rows: int) -> F64:
    """Neurons in each of ``rows`` groups, shape ``(rows,)``, where neuron ``j`` belongs to
    group ``j * rows // n``.

    Computed from the group boundaries (:func:`.spikecounts.group_starts`), in O(rows):
    ``n`` comes from the bus (up to the frame decoder's bound), and a per-neuron array
    would cost O(n) each time it changes.
    """
    return np.diff(group_starts(n, rows)).astype(np.float64)


_COUNT_BITS: Final = 2**15
"""Spike slots of a bitmask frame's rows in the window from which they are counted per
group straight from the packed bytes (:func:`.spikecounts.group_counts`) rather than
listed spike by spike: both take bounded memory, but a dense frame has up to 8 spikes
per byte to list."""


class SpikeView(View):
    """Spike counts per tick and neuron group over the last ``window`` seconds."""

    kind: Literal["spikes", "values"] = "spikes"

    def __init__(
        self,
        name: str,
        window: float,
        bins: int,
        rows: int,
        max_pending: int = 4096,
        budget: RingBudget | None = None,
    ) -> None:
        super().__init__(name, window, bins, max_pending, budget)
        self.rows_wanted = rows
        self.cells_per_tick = max(1, rows)
        self.n = 0
        self.rows = 0
        self.counts = np.zeros((0, 0), np.uint32)
        self.group_sizes = np.zeros(0)

    def add(self, frame: Any, now: float | None = None) -> None:
        """Record one spike frame; a new ``n`` is taken at once (O(rows)), the ring
        follows at the next fold."""
        if frame.n != self.n:
            self._set_layout(frame)
        super().add(frame, now)

    def _layout_of(self, frame: Any) -> object:
        return frame.n

    def _set_layout(self, frame: Any) -> None:
        self.n = frame.n
        self.rows = max(1, min(self.rows_wanted, frame.n))
        self.group_sizes = group_sizes(frame.n, self.rows)

    def _inner(self) -> int:
        return self.rows

    def _allocated(self) -> int:
        return self.counts.shape[1]

    def _allocate(self) -> None:
        super()._allocate()
        self.counts = np.zeros((self.width, self.rows), np.uint32)

    def _zero(self) -> None:
        super()._zero()
        self.counts[:] = 0

    def _wipe(self, slots: npt.NDArray[np.intp]) -> None:
        super()._wipe(slots)
        self.counts[slots] = 0

    def _fold(self, frames: list[Any]) -> None:
        if not frames or not self.width:
            return
        oldest, kept = self._advance(frames)
        if not kept or not self.n:
            return
        width, rows, n = self.width, self.rows, self.n
        starts = group_starts(n, rows)
        tally = CellTally(self.counts, lambda tick, i: tick % width * rows + i * rows // n)
        for f in kept:
            h = f.header
            # Rows of the frame before `first` fell out of the window: never expanded,
            # so a frame of 2**24 ticks costs what its last `width` rows cost.
            first = max(h.tick, oldest) - h.tick
            if f.encoding == "bits" and (h.ticks - first) * n >= _COUNT_BITS:
                for row, block in group_counts(f, first, starts):
                    slots = (h.tick + row + np.arange(block.shape[0])) % width
                    self.counts[slots] += block.astype(np.uint32)
                continue
            for off, neuron in window_spikes(f, first):
                tally.add(off + h.tick, neuron)
        tally.flush()

    def summary(self) -> tuple[float, F64, F64]:
        """``(mean rate, population rate per bin, raster (rows, bins))`` in Hz/neuron."""
        if not self.width or not self.n:
            return math.nan, np.zeros(0), np.zeros((0, 0))
        covered = self.ordered(self.covered).reshape(self.bins, -1).sum(axis=1).astype(float)
        counts = self.ordered(self.counts).reshape(self.bins, -1, self.rows).sum(axis=1)
        total_ticks = covered.sum()
        rate = float(counts.sum() / (self.n * total_ticks * self.dt)) if total_ticks else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            per_bin = counts.sum(axis=1) / (self.n * covered * self.dt)
            raster = counts.T / (self.group_sizes[:, None] * covered[None, :] * self.dt)
        per_bin[covered == 0] = np.nan
        raster[:, covered == 0] = np.nan
        return rate, per_bin, raster


class ValueView(View):
    """The latest value and the first components' trace over the last ``window`` s."""

    kind: Literal["spikes", "values"] = "values"

    def __init__(
        self,
        name: str,
        window: float,
        bins: int,
        max_pending: int = 4096,
        budget: RingBudget | None = None,
    ) -> None:
        super().__init__(name, window, bins, max_pending, budget)
        self.shape: tuple[int, ...] = ()
        self.components = 1
        self.cells_per_tick = TRACE_COMPONENTS
        self.latest: F64 = np.zeros(0)
        self.trace = np.zeros((0, 1), np.float32)

    def add(self, frame: Any, now: float | None = None) -> None:
        """Record one value frame; a new shape is taken at once, the ring follows at
        the next fold."""
        if frame.shape != self.shape:
            self._set_layout(frame)
        super().add(frame, now)

    def _layout_of(self, frame: Any) -> object:
        return frame.shape

    def _set_layout(self, frame: Any) -> None:
        self.shape = frame.shape
        self.components = max(1, min(TRACE_COMPONENTS, math.prod(frame.shape)))

    def _inner(self) -> int:
        return self.components

    def _allocated(self) -> int:
        return self.trace.shape[1]

    def _allocate(self) -> None:
        super()._allocate()
        self.trace = np.full((self.width, self.components), np.nan, np.float32)

    def _zero(self) -> None:
        super()._zero()
        self.trace[:] = np.nan

    def _wipe(self, slots: npt.NDArray[np.intp]) -> None:
        super()._wipe(slots)
        self.trace[slots] = np.nan

    def _fold(self, frames: list[Any]) -> None:
        if not frames:
            return
        last = frames[-1]
        if last.data.size:
            self.latest = last.data.reshape(last.header.ticks, -1)[-1, :LATEST_SHOWN].astype(float)
        if not self.width:
            return
        oldest, kept = self._advance(frames)
        for f in kept:
            h = f.header
            lo = max(h.tick, oldest)
            rows = f.data.reshape(h.ticks, -1)[lo - h.tick :, : self.components]
            if rows.shape[1] == self.components:
                self.trace[np.arange(lo, h.tick + h.ticks) % self.width] = rows

    def summary(self) -> tuple[float, float, F64]:
        """``(low, high, component 0 averaged per bin)`` over the window."""
        if not self.width:
            return math.nan, math.nan, np.zeros(0)
        ordered = self.ordered(self.trace)
        finite = np.isfinite(ordered)
        low = float(ordered[finite].min()) if finite.any() else math.nan
        high = float(ordered[finite].max()) if finite.any() else math.nan
        first = ordered[:, 0].reshape(self.bins, -1).astype(np.float64)
        good = np.isfinite(first)
        sums = np.where(good, first, 0.0).sum(axis=1)
        counts = good.sum(axis=1)
        with np.errstate(invalid="ignore"):
            trace = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return low, high, trace
