"""What the monitors show, computed cheaply: per-probe aggregates over a sliding window.

The monitors must keep up with thousands of frames per second while redrawing about ten
times per second. So the work is split:

* :meth:`MonitorModel.on_frame` runs for every frame, on the event loop, and is O(1): it
  updates a few header counters, checks ``seq`` for gaps and appends the decoded frame
  to the probe's pending list;
* :meth:`MonitorModel.snapshot` runs once per redraw: it folds all pending frames into
  ring buffers with a handful of vectorised numpy calls and returns plain numbers and
  small arrays for a view to render (:class:`Snapshot`).

Nothing here queues without bound: the pending list is folded early when it grows past
``max_pending`` frames, and the rings hold one window of ticks.

Times: ``dt``, ``tick`` and ``t`` come from the frames; ``lag`` compares a frame's
``wall`` with this machine's clock, so it includes any clock offset between the service's
machine and this one.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import Frame
from spikestream_client.gaps import Gap, GapTracker
from spikestream_client.monitor.spikecounts import (
    CellTally,
    group_counts,
    group_starts,
    window_spikes,
)

__all__ = [
    "MAX_INPUTS",
    "MAX_RING_CELLS",
    "RECENT_KEYS",
    "RECENT_WINDOWS",
    "InputSnapshot",
    "MonitorModel",
    "ProbeSnapshot",
    "ServiceSnapshot",
    "Snapshot",
    "SpikeView",
    "ValueView",
    "finite_float",
    "group_sizes",
    "input_freshness",
]


#: The stats keys of the recent windows (last 1 s and 10 s, docs/PROTOCOL.md) and the
#: figures of each window the monitors show.
RECENT_WINDOWS: Final = ("window_1s", "window_10s")
RECENT_KEYS: Final = (
    "realtime_factor_actual",
    "late_p99_ms",
    "late_max_ms",
    "late_over_1ms_pct",
    "work_p99_ms",
    "cpu_steal_pct",
)


def finite_float(value: object) -> float | None:
    """``value`` as a finite float, or None if it is not a finite number.

    Stats and events come from the bus as JSON, where a number may be ``1e999`` (parsed
    as inf) or an integer of hundreds of digits, which no float holds: ``float()`` and
    ``math.isfinite`` raise OverflowError on it, so converting inside ``try`` is the
    only test that cannot itself fail. Booleans and strings are not numbers here."""
    if type(value) is not float and type(value) is not int:
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def recent_stat(stats: dict[str, Any], window: str, key: str) -> object:
    """``stats[window][key]``, or None when the stats (from the bus) have no such object."""
    inner = stats.get(window)
    return inner.get(key) if isinstance(inner, dict) else None


log = logging.getLogger("spikestream_client.monitor")

F64 = npt.NDArray[np.float64]
_TRACE_COMPONENTS: Final = 4
_LATEST_SHOWN: Final = 8
MAX_PROBES: Final = 256
"""Most probes a :class:`MonitorModel` shows; frames of further probes are counted in
``ignored_frames`` (anyone who may publish on ``out/+`` could invent names forever)."""
MAX_EVENT_KINDS: Final = 64
"""Most distinct event kinds counted by name; rarer ones are counted as ``other``."""
MAX_INPUTS: Final = 32
"""Most inputs the monitors list (the first by name); the stats' ``inputs`` map comes
from the bus and may hold any number of names. The rest are counted in
:attr:`Snapshot.inputs_hidden`."""
_INPUT_NAME_CHARS: Final = 200
_EVENT_KIND_CHARS: Final = 200
MAX_RING_CELLS: Final = 2**23
"""Most cells (ticks × groups or components) of one probe's ring: 32 MiB of counts.
``window / dt`` comes from the user and the bus (``dt`` may be 1 µs), so a longer
window than this holds is shortened to what fits rather than allocated."""


@dataclass(frozen=True, slots=True)
class ProbeSnapshot:
    """One probe, as of a :meth:`MonitorModel.snapshot`.

    Attributes:
        name: Probe name.
        kind: ``"spikes"`` or ``"values"`` (from the frames).
        size: ``n`` neurons (spikes) or the per-tick shape (values).
        frames: Frames received so far.
        fps: Frames per second over about the last second.
        gaps: ``seq`` jumps seen; ``missing``: frames lost in them.
        restarts: ``seq`` going back (service restarts).
        dropped: The service's drop counter for this probe (from the latest frame).
        late_max: Worst ``late_max`` (s) of the frames in the window.
        lag: ``now - wall`` of the latest frame (s): how far behind real time the display is.
        tick: ``tick + ticks`` of the latest frame (the next tick).
        t: Simulated time (s) at the end of the latest frame.
        covered: Fraction of the window's ticks that have data (1.0 = no loss).
        rate: Spikes: mean firing rate over the window (Hz per neuron).
        rates: Spikes: population rate (Hz per neuron) per time bin, oldest first.
        raster: Spikes: ``(rows, bins)`` firing rate (Hz per neuron) per neuron group and
            time bin; NaN for bins without data.
        latest: Values: the latest per-tick value, flattened (first 8 components).
        low, high: Values: range of the traced components over the window.
        trace: Values: component 0 averaged per time bin (NaN without data).
    """

    name: str
    kind: Literal["spikes", "values"]
    size: int | tuple[int, ...]
    frames: int
    fps: float
    gaps: int
    missing: int
    restarts: int
    dropped: int
    late_max: float
    lag: float
    tick: int
    t: float
    covered: float
    rate: float = math.nan
    rates: F64 = field(default_factory=lambda: np.zeros(0))
    raster: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    latest: F64 = field(default_factory=lambda: np.zeros(0))
    low: float = math.nan
    high: float = math.nan
    trace: F64 = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    """The service as seen by the monitor.

    Attributes:
        status: Retained status (``online``/``offline``) or None if unknown.
        connected: Whether the monitor's own MQTT link is up.
        stats: The latest stats message (``tick``, ``realtime_factor_actual``,
            ``late_p99_ms``, ``late_max_ms``, ``dropped``, ...), or None.
        stats_age: Seconds since that stats message arrived (None if none).
        rtf_frames: Real-time factor from the frames: simulated over wall time between
            the latest frames of about the last two seconds (NaN if unknown).
        late_max_frames: Worst ``late_max`` of all frames in the window (s).
        gaps, missing: Totals over all probes.
        dropped: Sum of the probes' service-side drop counters.
        events: Events seen per kind; ``last_events``: the latest few, newest last.
    """

    status: str | None
    connected: bool
    stats: dict[str, Any] | None
    stats_age: float | None
    rtf_frames: float
    late_max_frames: float
    gaps: int
    missing: int
    dropped: int
    events: dict[str, int]
    last_events: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class InputSnapshot:
    """One input's freshness, as of the latest stats message (``inputs.<name>.*``).

    Attributes:
        name: Input name as the stats gave it (at most 200 characters); a view must
            still make it safe to show.
        age_ms: Milliseconds from the input's last accepted value to when the service
            assembled the stats; None before its first value, after a ``reset``, or
            when the stats held no finite number >= 0 there.
        stale: True while the input runs on its default (no value yet, or its TTL has
            passed); None when the stats did not say so with a boolean.
    """

    name: str
    age_ms: float | None
    stale: bool | None


def input_freshness(
    stats: Mapping[str, Any] | None, limit: int = MAX_INPUTS
) -> tuple[tuple[InputSnapshot, ...], int]:
    """The inputs of a stats message, the first ``limit`` by name, and how many more.

    The stats come from the bus as JSON and are not trusted: anything but a map of
    names to maps gives no inputs; an ``age_ms`` that is not a finite number >= 0 (a
    string, a boolean, ``1e999``, an integer too large for a float) is None, and so is
    a ``stale_now`` that is not a boolean. Picking the first names costs
    O(n log limit), not a sort of them all."""
    raw = stats.get("inputs") if stats is not None else None
    if not isinstance(raw, dict):
        return (), 0
    names = [k for k in raw if type(k) is str]
    shown: list[InputSnapshot] = []
    for name in heapq.nsmallest(limit, names):
        entry = raw[name]
        fields: Mapping[str, Any] = entry if isinstance(entry, dict) else {}
        age = finite_float(fields.get("age_ms"))
        stale = fields.get("stale_now")
        shown.append(
            InputSnapshot(
                name=name[:_INPUT_NAME_CHARS],
                age_ms=age if age is not None and age >= 0 else None,
                stale=stale if type(stale) is bool else None,
            )
        )
    return tuple(shown), len(names) - len(shown)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a monitor view draws, computed by :meth:`MonitorModel.snapshot`.

    ``inputs``: each input's freshness from the latest stats (at most
    :data:`MAX_INPUTS`, by name); ``inputs_hidden``: how many more the stats listed.
    """

    net: str
    window: float
    wall: float
    service: ServiceSnapshot
    probes: tuple[ProbeSnapshot, ...]
    recent_gaps: tuple[Gap, ...]
    inputs: tuple[InputSnapshot, ...] = ()
    inputs_hidden: int = 0


class _View:
    """Shared header bookkeeping of one probe."""

    kind: Literal["spikes", "values"]

    def __init__(self, name: str, window: float, bins: int, max_pending: int) -> None:
        self.name = name
        self.window = window
        self.bins = bins
        self.max_pending = max_pending
        self.pending: list[Any] = []
        self.frames = 0
        self.dropped = 0
        self.late_window = 0.0  # max late_max of frames folded into the current window
        self._late: deque[tuple[int, float]] = deque()  # (end tick, late_max) per frame
        self.last_wall = math.nan
        self.last_t = math.nan
        self.next_tick = 0
        self.dt = math.nan
        self.width = 0  # ring length in ticks
        self.head = 0  # absolute tick one past the newest data in the ring
        self.covered = np.zeros(0, np.bool_)
        self._last_tick = -1
        self._arrivals: deque[float] = deque(maxlen=1 << 17)  # monotonic arrival times
        self._first_arrival = math.nan
        self._progress: deque[tuple[float, float]] = deque()  # (wall, t) samples
        self.cells_per_tick = 1  # ring cells per tick, for the MAX_RING_CELLS bound

    def add(self, frame: Any) -> None:
        """Record one frame (O(1); the heavy part waits for :meth:`fold`)."""
        h = frame.header
        now = time.monotonic()
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
        start = 0
        for i, frame in enumerate(frames):
            h = frame.header
            if h.dt != self.dt:
                self._fold(frames[start:i])
                self._resize(h.dt)
                start = i
            elif h.tick < self._last_tick:  # the service was reset or restarted
                self._fold(frames[start:i])
                self._clear(h.tick)
                start = i
            self._last_tick = h.tick
        self._fold(frames[start:])

    def _resize(self, dt: float) -> None:
        self.dt = dt
        # Whole bins, at least one tick each, and at most MAX_RING_CELLS cells.
        most = max(1, MAX_RING_CELLS // self.cells_per_tick // self.bins) * self.bins
        wanted = max(self.bins, round(self.window / dt / self.bins) * self.bins)
        self.width = min(wanted, most)
        self._allocate()
        self._clear(0)

    def _allocate(self) -> None:
        self.covered = np.zeros(self.width, np.bool_)

    def _clear(self, tick: int) -> None:
        self.covered[:] = False
        self._late.clear()
        self.head = tick

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


class SpikeView(_View):
    """Spike counts per tick and neuron group over the last ``window`` seconds."""

    kind: Literal["spikes", "values"] = "spikes"

    def __init__(
        self, name: str, window: float, bins: int, rows: int, max_pending: int = 4096
    ) -> None:
        super().__init__(name, window, bins, max_pending)
        self.rows_wanted = rows
        self.cells_per_tick = max(1, rows)
        self.n = 0
        self.rows = 0
        self.counts = np.zeros((0, 0), np.uint32)
        self.group_sizes = np.zeros(0)

    def add(self, frame: Any) -> None:
        """Record one spike frame."""
        if frame.n != self.n:
            self.fold()
            self.n = frame.n
            self.rows = max(1, min(self.rows_wanted, frame.n))
            self.group_sizes = group_sizes(frame.n, self.rows)
            if self.width:
                self._allocate()
                self._clear(self.head)
        super().add(frame)

    def _allocate(self) -> None:
        super()._allocate()
        self.counts = np.zeros((self.width, self.rows), np.uint32)

    def _wipe(self, slots: npt.NDArray[np.intp]) -> None:
        super()._wipe(slots)
        self.counts[slots] = 0

    def _clear(self, tick: int) -> None:
        super()._clear(tick)
        self.counts[:] = 0

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


class ValueView(_View):
    """The latest value and the first components' trace over the last ``window`` s."""

    kind: Literal["spikes", "values"] = "values"

    def __init__(self, name: str, window: float, bins: int, max_pending: int = 4096) -> None:
        super().__init__(name, window, bins, max_pending)
        self.shape: tuple[int, ...] = ()
        self.components = 1
        self.cells_per_tick = _TRACE_COMPONENTS
        self.latest: F64 = np.zeros(0)
        self.trace = np.zeros((0, 1), np.float32)

    def add(self, frame: Any) -> None:
        """Record one value frame."""
        if frame.shape != self.shape or not self.frames:
            self.fold()
            self.shape = frame.shape
            self.components = max(1, min(_TRACE_COMPONENTS, math.prod(frame.shape)))
            if self.width:
                self._allocate()
                self._clear(self.head)
        super().add(frame)

    def _allocate(self) -> None:
        super()._allocate()
        self.trace = np.full((self.width, self.components), np.nan, np.float32)

    def _wipe(self, slots: npt.NDArray[np.intp]) -> None:
        super()._wipe(slots)
        self.trace[slots] = np.nan

    def _clear(self, tick: int) -> None:
        super()._clear(tick)
        self.trace[:] = np.nan

    def _fold(self, frames: list[Any]) -> None:
        if not frames:
            return
        last = frames[-1]
        if last.data.size:
            self.latest = last.data.reshape(last.header.ticks, -1)[-1, :_LATEST_SHOWN].astype(float)
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


class MonitorModel:
    """Aggregates one network's frames, status, stats and events for a monitor view.

    Args:
        net: Network name.
        window: Seconds of history shown (rates, raster, traces).
        bins: Time bins across the window (raster and sparkline columns).
        raster_rows: Neuron groups (rows) of a spike probe's raster.
        probes: Only these probes (None: all).
        clock: ``time.time``-like clock (injectable for tests).
        max_pending: Frames per probe held before folding early.
    """

    def __init__(
        self,
        net: str,
        *,
        window: float = 1.0,
        bins: int = 30,
        raster_rows: int = 4,
        probes: set[str] | None = None,
        clock: Callable[[], float] = time.time,
        max_pending: int = 4096,
    ) -> None:
        self.net = net
        self.window = window
        self.bins = bins
        self.raster_rows = raster_rows
        self.only = probes
        self.clock = clock
        self.max_pending = max_pending
        self.views: dict[str, SpikeView | ValueView] = {}
        self.tracker = GapTracker()
        self.gaps_by_probe: Counter[str] = Counter()
        self.missing_by_probe: Counter[str] = Counter()
        self.restarts_by_probe: Counter[str] = Counter()
        self.recent_gaps: deque[Gap] = deque(maxlen=20)
        self.status: str | None = None
        self.connected = False
        self.stats: dict[str, Any] | None = None
        self.stats_received = math.nan
        self.inputs: tuple[InputSnapshot, ...] = ()
        self.inputs_hidden = 0
        self.events: Counter[str] = Counter()
        self.last_events: deque[dict[str, Any]] = deque(maxlen=5)
        self.frames = 0
        self.ignored_frames = 0
        self.failed_snapshots = 0
        """Probe summaries that failed (the probe's window was started afresh)."""

    # ------------------------------------------------------------------ inputs (hot)
    def on_frame(self, frame: Frame) -> None:
        """Account for one decoded frame; cheap enough for thousands per second."""
        h = frame.header
        if self.only is not None and h.probe not in self.only:
            return
        view = self.views.get(h.probe)
        if view is None and len(self.views) >= MAX_PROBES:
            self.ignored_frames += 1
            return
        self.frames += 1
        if view is None or view.kind != frame.kind:
            view = self._new_view(h.probe, frame.kind)
        view.add(frame)
        gap = self.tracker.check(h)
        if gap is not None:
            self.recent_gaps.append(gap)
            if gap.kind == "lost":
                self.gaps_by_probe[h.probe] += 1
                self.missing_by_probe[h.probe] += gap.missing
            else:
                self.restarts_by_probe[h.probe] += 1

    def expect(self, probes: Mapping[str, str]) -> None:
        """Show these probes (name -> ``spikes``/``values``, e.g. from the network's
        describe document) before their first frame, so a silent probe is listed too."""
        for name, kind in probes.items():
            if (self.only is None or name in self.only) and name not in self.views:
                if len(self.views) >= MAX_PROBES:
                    return
                self._new_view(name, kind)

    def _new_view(self, probe: str, kind: str) -> SpikeView | ValueView:
        view: SpikeView | ValueView
        if kind == "spikes":
            view = SpikeView(probe, self.window, self.bins, self.raster_rows, self.max_pending)
        else:
            view = ValueView(probe, self.window, self.bins, self.max_pending)
        self.views[probe] = view
        return view

    def on_status(self, status: str | None) -> None:
        """The retained status changed."""
        self.status = status

    def on_stats(self, stats: dict[str, Any]) -> None:
        """A stats message arrived."""
        self.stats = stats
        self.stats_received = self.clock()
        # Once per stats message (about 1 Hz), not per redraw.
        self.inputs, self.inputs_hidden = input_freshness(stats)

    def on_event(self, event: dict[str, Any]) -> None:
        """An event arrived."""
        # The kind comes from the bus. One longer than the views show is counted as
        # ``other``: cut to its first characters, two kinds would be counted as one.
        kind = str(event.get("event"))
        if len(kind) > _EVENT_KIND_CHARS or (
            kind not in self.events and len(self.events) >= MAX_EVENT_KINDS
        ):
            kind = "other"
        self.events[kind] += 1
        self.last_events.append(event)

    # ------------------------------------------------------------------ output (10 Hz)
    def snapshot(self) -> Snapshot:
        """Fold pending frames and compute what the views draw."""
        now = self.clock()
        mono = time.monotonic()
        probes: list[ProbeSnapshot] = []
        newest: _View | None = None
        late_all = 0.0
        for name in sorted(self.views, key=lambda p: (self.views[p].kind, p)):
            try:
                probe, view = self._probe_snapshot(name, now, mono)
            except Exception as err:  # a redraw must outlive any one probe
                # Frames passed the decoder, so this is a bug or a combination of frames
                # nobody foresaw; the view is the only state it can have spoiled. Count
                # it, say it (rarely), start the probe's window afresh and draw the rest.
                self.failed_snapshots += 1
                if self.failed_snapshots == 1 or self.failed_snapshots % 100 == 0:
                    log.warning(
                        "monitor: cannot summarise probe %r (%d failed so far): %s: %.200s",
                        name,
                        self.failed_snapshots,
                        type(err).__name__,
                        err,
                    )
                self._new_view(name, self.views[name].kind)
                continue
            probes.append(probe)
            late_all = max(late_all, probe.late_max)
            if math.isfinite(view.last_wall) and (
                newest is None or view.last_wall > newest.last_wall
            ):
                newest = view
        rtf = newest.rtf() if newest is not None else math.nan
        service = ServiceSnapshot(
            status=self.status,
            connected=self.connected,
            stats=self.stats,
            stats_age=None if self.stats is None else now - self.stats_received,
            rtf_frames=rtf,
            late_max_frames=late_all,
            gaps=self.tracker.gaps,
            missing=self.tracker.missing,
            dropped=sum(v.dropped for v in self.views.values()),
            events=dict(self.events),
            last_events=tuple(self.last_events),
        )
        return Snapshot(
            net=self.net,
            window=self.window,
            wall=now,
            service=service,
            probes=tuple(probes),
            recent_gaps=tuple(self.recent_gaps),
            inputs=self.inputs,
            inputs_hidden=self.inputs_hidden,
        )

    def _probe_snapshot(
        self, name: str, now: float, mono: float
    ) -> tuple[ProbeSnapshot, SpikeView | ValueView]:
        """Fold one probe's pending frames and summarise it (``now``: wall clock,
        ``mono``: monotonic clock, both s)."""
        view = self.views[name]
        view.fold()
        common: dict[str, Any] = {
            "name": name,
            "frames": view.frames,
            "fps": view.fps(mono),
            "gaps": self.gaps_by_probe[name],
            "missing": self.missing_by_probe[name],
            "restarts": self.restarts_by_probe[name],
            "dropped": view.dropped,
            "late_max": view.late_max(),
            "lag": now - view.last_wall,
            "tick": view.next_tick,
            "t": view.last_t,
            "covered": view.coverage(),
        }
        if isinstance(view, SpikeView):
            rate, rates, raster = view.summary()
            snap = ProbeSnapshot(
                kind="spikes", size=view.n, rate=rate, rates=rates, raster=raster, **common
            )
        else:
            low, high, trace = view.summary()
            snap = ProbeSnapshot(
                kind="values",
                size=view.shape,
                latest=view.latest,
                low=low,
                high=high,
                trace=trace,
                **common,
            )
        return snap, view
