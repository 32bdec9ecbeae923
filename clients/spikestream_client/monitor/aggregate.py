"""What the monitors show, computed cheaply: per-probe aggregates over a sliding window.

The monitors must keep up with thousands of frames per second while redrawing about ten
times per second. So the work is split:

* :meth:`MonitorModel.on_frame` runs for every frame, on the event loop, and is O(1): it
  updates a few header counters, checks ``seq`` for gaps and appends the decoded frame
  to the probe's pending list;
* :meth:`MonitorModel.snapshot` runs once per redraw: it folds all pending frames into
  ring buffers with a handful of vectorised numpy calls and returns plain numbers and
  small arrays for a view to render (:class:`Snapshot`).

Nothing here queues or grows without bound: the pending list is folded early when it
grows past ``max_pending`` frames; the rings (:mod:`.rings`) hold at most one window of
ticks, at most :data:`MAX_RING_CELLS` cells per probe and at most
:data:`MAX_RING_BYTES` (128 MiB) across all probes, a probe whose window does not fit
holding its newest ticks (counted in :attr:`Snapshot.shortened`); at most
:data:`MAX_PROBES` probes are shown and the frames of any further probe are counted
(:attr:`Snapshot.ignored_probes`, :attr:`Snapshot.ignored_frames`), never dropped
silently.

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
from spikestream_client.monitor.rings import (
    MAX_RING_BYTES,
    MAX_RING_CELLS,
    RingBudget,
    SpikeView,
    ValueView,
    View,
    group_sizes,
)

__all__ = [
    "MAX_IGNORED_NAMES",
    "MAX_INPUTS",
    "MAX_PROBES",
    "MAX_RING_BYTES",
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
    "limits_text",
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
MAX_PROBES: Final = 256
"""Most probes a :class:`MonitorModel` shows; frames of further probes are counted in
``ignored_frames`` (anyone who may publish on ``out/+`` could invent names forever)."""
MAX_IGNORED_NAMES: Final = 1024
"""Most names of probes not shown that a :class:`MonitorModel` remembers to count them:
past it, :attr:`Snapshot.ignored_probes` stays at this number (64 KiB of names) and the
views say "at least"."""
MAX_EVENT_KINDS: Final = 64
"""Most distinct event kinds counted by name; rarer ones are counted as ``other``."""
MAX_INPUTS: Final = 32
"""Most inputs the monitors list (the first by name); the stats' ``inputs`` map comes
from the bus and may hold any number of names. The rest are counted in
:attr:`Snapshot.inputs_hidden`."""
_INPUT_NAME_CHARS: Final = 200
_EVENT_KIND_CHARS: Final = 200


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

    ``ignored_probes``: probes not shown because :data:`MAX_PROBES` were shown already
    (counted up to :data:`MAX_IGNORED_NAMES`: "at least" that many when it is reached);
    ``ignored_frames``: their frames. ``shortened``: probes whose ring holds less than
    the window (the memory bounds of :mod:`.rings`), so their rates and traces cover
    only its newest part.
    """

    net: str
    window: float
    wall: float
    service: ServiceSnapshot
    probes: tuple[ProbeSnapshot, ...]
    recent_gaps: tuple[Gap, ...]
    inputs: tuple[InputSnapshot, ...] = ()
    inputs_hidden: int = 0
    ignored_probes: int = 0
    ignored_frames: int = 0
    shortened: int = 0


def limits_text(snap: Snapshot) -> str:
    """What the view leaves out, in words ("" when nothing): probes not shown past
    :data:`MAX_PROBES` and probes whose window was shortened to fit the ring memory."""
    parts = []
    if snap.ignored_probes:
        least = "at least " if snap.ignored_probes >= MAX_IGNORED_NAMES else ""
        parts.append(
            f"{least}{snap.ignored_probes} more probes not shown ({snap.ignored_frames} "
            f"frames; at most {MAX_PROBES} probes are shown)"
        )
    if snap.shortened:
        parts.append(
            f"{snap.shortened} probes show less than the last {snap.window:g} s "
            f"(ring memory bound, {MAX_RING_BYTES // 2**20} MiB in all)"
        )
    return "; ".join(parts)


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
        self.budget = RingBudget(MAX_PROBES, MAX_RING_BYTES)
        """The ring memory all views share (:data:`MAX_RING_BYTES`)."""
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
        """Frames of probes not shown (past :data:`MAX_PROBES`)."""
        self.ignored_names: set[str] = set()
        """Names of probes not shown, the first :data:`MAX_IGNORED_NAMES`."""
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
            self._ignore(h.probe)
            return
        self.frames += 1
        if view is None or view.kind != frame.kind:
            view = self._new_view(h.probe, frame.kind)
        view.add(frame, time.monotonic())
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
                    self._ignore(name)
                else:
                    self._new_view(name, kind)

    def shows(self, probe: str) -> bool:
        """Whether ``probe`` is one of the probes shown (so far)."""
        return probe in self.views

    def _ignore(self, probe: str) -> None:
        """Count ``probe`` as not shown (its name is kept up to MAX_IGNORED_NAMES)."""
        if len(self.ignored_names) < MAX_IGNORED_NAMES:
            self.ignored_names.add(probe)

    def _new_view(self, probe: str, kind: str) -> SpikeView | ValueView:
        old = self.views.get(probe)
        if old is not None:
            old.release()  # its ring memory goes back to the budget
        view: SpikeView | ValueView
        if kind == "spikes":
            view = SpikeView(
                probe, self.window, self.bins, self.raster_rows, self.max_pending, self.budget
            )
        else:
            view = ValueView(probe, self.window, self.bins, self.max_pending, self.budget)
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
        newest: View | None = None
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
            ignored_probes=len(self.ignored_names),
            ignored_frames=self.ignored_frames,
            shortened=sum(1 for view in self.views.values() if view.shortened),
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
