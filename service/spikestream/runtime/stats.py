"""Per-tick lateness statistics in constant memory.

Why a log-spaced histogram and not a ring buffer of recent samples: a histogram keeps
the whole window (a ring buffer of N samples forgets anything older than N ticks, so a
p99.9 over an hour would be a p99.9 over the last N ms), costs the same fixed memory
however long the service runs, records in O(1), and its buckets are exactly what a
Prometheus histogram needs. Log spacing gives the same *relative* resolution from
microseconds to seconds, which is what percentiles of lateness need.

Buckets (all edges in seconds, upper-inclusive like Prometheus ``le``)::

    index 0                  x <= 0              (on time; negative/NaN input is clamped to 0)
    index 1                  0 < x <= lowest     (default lowest = 1e-7 s = 0.1 us)
    index 1 + j, j = 1..m    lowest*R**(j-1) < x <= lowest*R**j,  R = 10**(1/buckets_per_decade)
    index m + 2              x > lowest*R**m     (overflow, upper bound +inf; ~highest = 100 s)

With the default 40 buckets per decade (R ~ 1.059), a percentile is reported as the
geometric middle of its bucket, so it is within ``sqrt(R) - 1`` ~ 2.9 % of the true order
statistic for values above 0.1 us, and within 0.1 us below that. Percentiles are also
clamped to the exact observed min and max, so a constant signal and the top sample come
out exact, as do the smallest and largest samples (ranks 1 and n). Count, sum, mean,
max and the counts above thresholds are exact.

Threading: :meth:`LatenessStats.record` and :meth:`LatenessStats.reset` belong to one
thread at a time: the tick thread, or while a run of compiled ticks lasts the thread that
finishes each tick (the tick thread, or its helper with two stages), which records it in
C. :meth:`LatenessStats.snapshot` and
:meth:`LatenessStats.histogram` may run on any other thread: they copy the counts first and
derive the percentiles from that copy alone, so they cannot index out of range or crash.
Under concurrent recording a snapshot may be torn by a sample or so (``mean`` or ``max``
may include a sample the bucket copy does not); that is tolerated by design.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from spikestream.errors import ConfigError
from spikestream.sim.native import extension

# The compiled record (``spikestream.sim._native.record``, see ``_native_record.h``), or
# None without the C extension: the classes then record in Python, with the same
# arithmetic on the same arrays (tests/runtime/test_stats.py compares the two).
_ext = extension()
_RECORD = None if _ext is None else _ext.record
#: The record kinds of ``_native.record``.
_STATS, _WINDOW, _PACE = 0, 1, 2
#: Each float block starts with the histogram's geometry: lowest, 1/lowest, highest
#: (the last finite edge) and buckets per decade.
_GEOMETRY = 4
#: A descriptor's first column: its kind's tag (``_native_record.h``'s TAG_STATS + kind).
_TAG = 0x53504B5245430000
#: A window records no tick whose bucket number is not within this (no clock's is).
_EPOCH_LIMIT = 4e18


def _descriptor(
    kind: int, ints: NDArray[np.int64], floats: NDArray[np.float64], *sizes: int
) -> NDArray[np.int64]:
    """A record's descriptor (``_native_record.h``): its kind's tag, the addresses and
    lengths of its two blocks, then its sizes (or the addresses of its parts)."""
    return np.array(
        [_TAG + kind, ints.ctypes.data, floats.ctypes.data, len(ints), len(floats), *sizes],
        dtype=np.int64,
    )


__all__ = [
    "DEFAULT_THRESHOLDS",
    "LatenessHistogram",
    "LatenessSnapshot",
    "LatenessStats",
    "LatenessWindow",
    "PaceRecord",
    "WindowStatistics",
]

#: Default lateness thresholds in seconds (0.25 ms and 1 ms) counted exactly.
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.00025, 0.001)

# Quantiles as exact fractions so that ranks are integer arithmetic: 0.999 * 1000 in
# floating point is 999.0000000000001, whose ceiling would pick the wrong sample.
_P50 = (1, 2)
_P99 = (99, 100)
_P999 = (999, 1000)


@dataclass(frozen=True, slots=True)
class LatenessSnapshot:
    """Lateness statistics at one moment. All times in seconds.

    Percentiles are nearest-rank (the smallest recorded value with at least that fraction
    of samples at or below it), estimated from the histogram to within ~2.9 % (see the
    module docstring). With no samples, ``mean``, the percentiles and ``max`` are NaN.

    Attributes:
        count: Number of samples.
        mean: Exact mean.
        p50, p99, p999: 50th, 99th and 99.9th percentiles.
        max: Exact maximum.
        thresholds: The thresholds, ascending.
        over: ``over[i]`` = exact number of samples strictly greater than ``thresholds[i]``.
    """

    count: int
    mean: float
    p50: float
    p99: float
    p999: float
    max: float
    thresholds: tuple[float, ...]
    over: tuple[int, ...]

    def over_threshold(self, threshold: float) -> int:
        """Number of samples strictly above ``threshold`` (must be one of ``thresholds``)."""
        try:
            return self.over[self.thresholds.index(threshold)]
        except ValueError:
            msg = f"threshold must be one of {self.thresholds}, got {threshold!r}"
            raise ConfigError(msg) from None


@dataclass(frozen=True, slots=True)
class LatenessHistogram:
    """The raw histogram, e.g. for a Prometheus exporter.

    Attributes:
        upper_bounds: Shape ``(B,)`` float64, read-only: upper-inclusive bucket edges in
            seconds, ascending, starting at 0.0 and ending at +inf (Prometheus ``le``).
        counts: Shape ``(B,)`` int64, a private copy: samples per bucket (not cumulative;
            Prometheus wants ``np.cumsum(counts)``).
        count: Number of samples; equals ``counts.sum()``.
        sum: Exact sum of the samples in seconds (Prometheus ``_sum``).
    """

    upper_bounds: NDArray[np.float64]
    counts: NDArray[np.int64]
    count: int
    sum: float


class LatenessStats:
    """Fixed-size record of per-tick lateness: O(1) :meth:`record`, no growing memory.

    Args:
        thresholds: Seconds; the number of samples strictly above each is counted exactly.
            Positive and finite; sorted and de-duplicated here.
        lowest: Upper edge (seconds) of the first non-zero bucket; values at or below it
            are resolved only to ``lowest``. Default 0.1 us.
        highest: Values above (about) this many seconds go to the overflow bucket.
        buckets_per_decade: Log buckets per factor of 10; 40 gives ~2.9 % percentile error.
    """

    __slots__ = (
        "_address",
        "_counts",
        "_desc",
        "_floats",
        "_highest",
        "_ints",
        "_inv_lowest",
        "_lowest",
        "_n_thresholds",
        "_over",
        "_overflow",
        "_per_decade",
        "_threshold_min",
        "_thresholds",
        "_upper",
    )

    def __init__(
        self,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
        *,
        lowest: float = 1e-7,
        highest: float = 100.0,
        buckets_per_decade: int = 40,
    ) -> None:
        thr = tuple(sorted({float(t) for t in thresholds}))
        if any(not (math.isfinite(t) and t > 0.0) for t in thr):
            msg = f"lateness thresholds must be finite seconds > 0, got {thr!r}"
            raise ConfigError(msg)
        if not (math.isfinite(lowest) and lowest > 0.0):
            msg = f"lowest bucket edge must be finite seconds > 0, got {lowest!r}"
            raise ConfigError(msg)
        if not (math.isfinite(highest) and highest > lowest):
            msg = f"highest bucket edge must be finite seconds > lowest={lowest!r}, got {highest!r}"
            raise ConfigError(msg)
        if isinstance(buckets_per_decade, bool) or not (
            isinstance(buckets_per_decade, int) and 1 <= buckets_per_decade <= 1000
        ):
            msg = f"buckets_per_decade must be an int in [1, 1000], got {buckets_per_decade!r}"
            raise ConfigError(msg)

        # The 1e-9 guards against log10 landing a hair above an integer (1e9 -> 9.0000..1).
        m = max(1, math.ceil(buckets_per_decade * math.log10(highest / lowest) - 1e-9))
        j = np.arange(1, m + 1, dtype=np.float64)
        upper = np.empty(m + 3, dtype=np.float64)
        upper[0] = 0.0
        upper[1] = lowest
        upper[2 : m + 2] = lowest * 10.0 ** (j / buckets_per_decade)
        upper[m + 2] = math.inf
        upper.setflags(write=False)

        self._upper = upper
        self._lowest = float(lowest)
        self._inv_lowest = 1.0 / float(lowest)
        self._highest = float(upper[m + 1])  # the last finite edge as actually computed
        self._per_decade = float(buckets_per_decade)
        self._overflow = m + 2
        self._thresholds = thr
        self._n_thresholds = len(thr)
        self._threshold_min = thr[0] if thr else math.inf
        # The whole state in two blocks the compiled record writes too (_native_record.h):
        # ints [count | counts (B) | over (T)], floats [geometry | sum, max, min | thresholds].
        b = m + 3
        self._ints = np.zeros(1 + b + len(thr), dtype=np.int64)
        self._counts = self._ints[1 : 1 + b]
        self._over = self._ints[1 + b :]
        self._floats = np.zeros(_GEOMETRY + 3 + len(thr), dtype=np.float64)
        self._floats[:_GEOMETRY] = (lowest, self._inv_lowest, self._highest, self._per_decade)
        self._floats[_GEOMETRY + 3 :] = thr
        self._clear()
        self._desc = _descriptor(_STATS, self._ints, self._floats, b, len(thr))
        self._address = int(self._desc.ctypes.data)

    def _clear(self) -> None:
        self._ints.fill(0)
        self._floats[_GEOMETRY : _GEOMETRY + 3] = (0.0, -math.inf, math.inf)

    @property
    def address(self) -> int:
        """Address of the record's descriptor for the compiled record (kind 0)."""
        return self._address

    def geometry(self) -> NDArray[np.float64]:
        """A copy of the histogram's geometry: lowest, 1/lowest, the highest finite edge
        and buckets per decade."""
        return self._floats[:_GEOMETRY].copy()

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The exact-count thresholds in seconds, ascending."""
        return self._thresholds

    @property
    def upper_bounds(self) -> NDArray[np.float64]:
        """Shape ``(B,)`` read-only upper-inclusive bucket edges in seconds (see module doc)."""
        return self._upper

    @property
    def count(self) -> int:
        """Number of samples recorded since construction or the last :meth:`reset`."""
        return int(self._ints[0])

    def record(self, x: float) -> None:
        """Record one lateness sample ``x`` in seconds. O(1); allocates no arrays.

        Negative and NaN values are recorded as 0 (on time): lateness is never negative,
        and one bad sample must not poison the sum.
        """
        if _RECORD is not None:
            _RECORD(_STATS, self._address, x, 0.0, 0.0)
        else:
            self.record_python(x)

    def record_python(self, x: float) -> None:
        """:meth:`record` in Python: what the compiled record does, on the same arrays."""
        if not x > 0.0:  # also true for NaN
            x = 0.0
        self._counts[self._index(x)] += 1
        self._ints[0] += 1
        f = self._floats
        # Sums as Python floats: the compiled record overflows to inf without a warning.
        f[_GEOMETRY] = float(f[_GEOMETRY]) + x
        if x > f[_GEOMETRY + 1]:
            f[_GEOMETRY + 1] = x
        if x < f[_GEOMETRY + 2]:
            f[_GEOMETRY + 2] = x
        # Thresholds are ascending, so the common on-time sample costs one comparison.
        if x > self._threshold_min:
            thr = self._thresholds
            over = self._over
            for i in range(self._n_thresholds):
                if x <= thr[i]:
                    break
                over[i] += 1

    def _index(self, x: float) -> int:
        """The bucket of a sample ``x`` (seconds, already clamped to >= 0)."""
        if x == 0.0:
            return 0
        if x <= self._lowest:
            return 1
        if x <= self._highest:
            i = 1 + math.ceil(math.log10(x * self._inv_lowest) * self._per_decade)
            return min(max(i, 1), self._overflow)  # as the compiled record clamps it
        return self._overflow

    def reset(self) -> None:
        """Forget all samples (call from the recording thread)."""
        self._clear()

    def histogram(self) -> LatenessHistogram:
        """A copy of the raw buckets (safe from any thread; see the module docstring)."""
        counts = self._counts.copy()
        return LatenessHistogram(
            upper_bounds=self._upper,
            counts=counts,
            count=int(counts.sum()),
            sum=float(self._floats[_GEOMETRY]),
        )

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile ``q`` in [0, 1] of the samples, in seconds (NaN if none)."""
        if not 0.0 <= q <= 1.0:
            msg = f"quantile must be in [0, 1], got {q!r}"
            raise ConfigError(msg)
        frac = Fraction(q).limit_denominator(1_000_000)
        cum = np.cumsum(self._counts)
        hi, lo = (float(v) for v in self._floats[_GEOMETRY + 1 : _GEOMETRY + 3])
        return self._quantile(cum, frac.numerator, frac.denominator, lo, hi)

    def snapshot(self) -> LatenessSnapshot:
        """Frozen statistics now (safe from any thread; see the module docstring)."""
        # Copy first and derive every percentile from the copy, so a concurrent record()
        # can skew the result by a sample but never make it inconsistent with itself.
        cum = np.cumsum(self._counts)
        over = tuple(int(v) for v in self._over)
        n = int(self._ints[0])
        total, hi, lo = (float(v) for v in self._floats[_GEOMETRY : _GEOMETRY + 3])
        count = int(cum[-1])
        if count == 0:
            nan = math.nan
            return LatenessSnapshot(0, nan, nan, nan, nan, nan, self._thresholds, over)
        return LatenessSnapshot(
            count=count,
            mean=total / n if n > 0 else math.nan,
            p50=self._quantile(cum, *_P50, lo, hi),
            p99=self._quantile(cum, *_P99, lo, hi),
            p999=self._quantile(cum, *_P999, lo, hi),
            max=hi if hi >= 0.0 else math.nan,  # -inf only in a torn read of the 1st sample
            thresholds=self._thresholds,
            over=over,
        )

    def _quantile(self, cum: NDArray[np.int64], num: int, den: int, lo: float, hi: float) -> float:
        """Nearest-rank quantile num/den from cumulative counts ``cum`` (shape ``(B,)``)."""
        total = int(cum[-1])
        if total == 0:
            return math.nan
        rank = max(1, -(-num * total // den))  # ceil(num/den * total), exactly
        if lo <= hi:  # (False only in a torn read of the first samples)
            # The extreme order statistics are tracked exactly; no need to estimate them.
            if rank == total:
                return hi
            if rank == 1:
                return lo
        idx = int(np.searchsorted(cum, rank, side="left"))
        upper = self._upper
        if idx == 0:
            value = 0.0
        elif idx == 1:
            value = 0.5 * self._lowest
        elif idx >= self._overflow:
            value = hi  # no upper edge to take a middle of; the max is the best estimate
        else:
            value = math.sqrt(float(upper[idx - 1]) * float(upper[idx]))
        # Clamp into the observed range: exact for constant data and for the top sample.
        # Skipped if a concurrent record() left min/max not yet covering the copied counts.
        if lo <= hi:
            value = min(max(value, lo), hi)
        return value


def pace_factor(intervals: int, dt: float, active: float) -> float:
    """Simulated seconds per wall second: ``intervals`` tick-to-tick intervals of ``dt``
    simulated seconds took ``active`` wall seconds. NaN with no interval, +inf if no wall
    time passed (a fake clock)."""
    if intervals == 0:
        return math.nan
    return intervals * dt / active if active > 0.0 else math.inf


#: "No bucket": the epoch of a slot that is being filled or cleared.
_NONE = -(2**62)


@dataclass(frozen=True, slots=True)
class WindowStatistics:
    """Lateness and pace over the last ``seconds`` of wall time (see :class:`LatenessWindow`).

    Attributes:
        seconds: Length of the window in seconds (whole buckets that have ended).
        lateness: Lateness of the ticks released in the window (``count`` = those ticks).
        realtime_factor_actual: Simulated seconds per wall second in the window:
            ``intervals * dt / (wall seconds those intervals spanned)``, where an interval
            runs from one tick's start to the next and belongs to the bucket it ends in.
            NaN if no interval ended in the window (paused, or not started).
    """

    seconds: float
    lateness: LatenessSnapshot
    realtime_factor_actual: float

    @property
    def ticks(self) -> int:
        """Ticks released in the window."""
        return self.lateness.count

    def late_share(self, threshold: float) -> float:
        """Fraction (0..1) of the window's ticks later than ``threshold``; NaN if none ran."""
        n = self.lateness.count
        return self.lateness.over_threshold(threshold) / n if n else math.nan


class LatenessWindow:
    """Per-tick lateness and real-time factor over the last seconds, in fixed memory.

    The wall clock is cut into buckets of ``bucket`` seconds (100 ms). A ring of
    ``span / bucket + 1`` slots, allocated here, holds one bucket each: a lateness
    histogram (fixed-size int64 counts with the geometry of :class:`LatenessStats`), the
    counts over the thresholds, and sum, min, max, tick-to-tick intervals and their wall
    time. :meth:`record` (tick thread) adds one tick: one increment of the bucket's
    histogram and a few plain-number updates, O(1), no array allocated; the bucket's other
    figures go into its slot when the next bucket starts (or at :meth:`flush`).
    :meth:`statistics` (any other thread, e.g. once a second) sums the slots of the whole
    buckets that ended in the last ``seconds``; the bucket being filled is left out, so a
    window is exactly ``seconds`` long and ends at most one bucket ago. A slot being
    cleared while it is read may tear a figure by a tick, as in :class:`LatenessStats`.

    Args:
        dt: Simulated seconds per tick (for the real-time factor).
        thresholds: As :class:`LatenessStats`.
        bucket: Seconds per bucket; the resolution of the window's start and end.
        span: The longest window :meth:`statistics` can report, in seconds.
    """

    __slots__ = (
        "_active",
        "_address",
        "_bucket",
        "_counts",
        "_cur",
        "_cur_over",
        "_desc",
        "_dt",
        "_epochs",
        "_flat",
        "_floats",
        "_geometry",
        "_intervals",
        "_ints",
        "_inv_bucket",
        "_max",
        "_min",
        "_n",
        "_over",
        "_slots",
        "_sum",
        "_threshold_min",
        "_thresholds",
    )

    def __init__(
        self,
        dt: float,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
        *,
        bucket: float = 0.1,
        span: float = 10.0,
    ) -> None:
        if not (math.isfinite(bucket) and bucket > 0.0):
            msg = f"window bucket must be finite seconds > 0, got {bucket!r}"
            raise ConfigError(msg)
        if not (math.isfinite(span) and span >= bucket and span / bucket <= 100_000):
            msg = f"window span must be finite seconds in [bucket, 1e5 buckets], got {span!r}"
            raise ConfigError(msg)
        geometry = LatenessStats(thresholds)
        self._geometry = geometry
        self._thresholds = geometry.thresholds
        self._threshold_min = self._thresholds[0] if self._thresholds else math.inf
        self._dt = float(dt)
        self._bucket = float(bucket)
        self._inv_bucket = 1.0 / float(bucket)
        slots = round(span / bucket) + 1  # the whole span, plus the bucket being filled
        self._slots = slots
        b = len(geometry.upper_bounds)
        t = len(self._thresholds)
        tw = max(1, t)
        # The whole state in two blocks the compiled record writes too (_native_record.h):
        # ints [epoch, base | counts (S*B) | over (S*max(1, T)) | n (S) | intervals (S) |
        # epochs (S) | cur_over (T)], floats [geometry, 1/bucket | cur (6) | sum (S) |
        # active (S) | max (S) | min (S) | thresholds (T)].
        ints = np.zeros(2 + slots * (b + tw + 3) + t, dtype=np.int64)
        self._ints = ints
        at = 2
        self._flat = ints[at : at + slots * b]  # one integer index per tick
        self._counts = self._flat.reshape(slots, b)
        at += slots * b
        self._over = ints[at : at + slots * tw].reshape(slots, tw)
        at += slots * tw
        self._n, self._intervals, self._epochs = (
            ints[at + i * slots : at + (i + 1) * slots] for i in range(3)
        )
        self._cur_over = ints[at + 3 * slots :]
        floats = np.zeros(_GEOMETRY + 1 + 6 + 4 * slots + t, dtype=np.float64)
        self._floats = floats
        floats[:_GEOMETRY] = geometry.geometry()
        floats[_GEOMETRY] = self._inv_bucket
        at = _GEOMETRY + 1
        # The filling bucket's figures: [ticks, sum, max, min, intervals, active seconds].
        self._cur = floats[at : at + 6]
        at += 6
        self._sum, self._active, self._max, self._min = (
            floats[at + i * slots : at + (i + 1) * slots] for i in range(4)
        )
        floats[at + 4 * slots :] = self._thresholds
        self._max.fill(-math.inf)
        self._min.fill(math.inf)
        # Which bucket (floor(now / bucket)) each finished slot holds; _NONE while a slot is
        # being filled or cleared, so readers skip it.
        self._epochs.fill(_NONE)
        ints[0] = _NONE  # the filling bucket; ints[1]: its histogram row's offset in _flat
        self._desc = _descriptor(_WINDOW, ints, floats, b, t, slots)
        self._address = int(self._desc.ctypes.data)

    @property
    def address(self) -> int:
        """Address of the window's descriptor for the compiled record (kind 1)."""
        return self._address

    @property
    def bucket(self) -> float:
        """Seconds per bucket."""
        return self._bucket

    @property
    def span(self) -> float:
        """The longest window in seconds."""
        return (self._slots - 1) * self._bucket

    def record(self, now: float, lateness: float, interval: float) -> None:
        """Add one tick (tick thread). O(1), allocates no arrays.

        Args:
            now: When the tick started, seconds on the pacer's clock.
            lateness: Its lateness in seconds (negative and NaN count as 0).
            interval: Wall seconds since the previous tick started; negative if there was
                none (the first tick, or the first after a pause).
        """
        if _RECORD is not None:
            _RECORD(_WINDOW, self._address, now, lateness, interval)
        else:
            self.record_python(now, lateness, interval)

    def record_python(self, now: float, lateness: float, interval: float) -> None:
        """:meth:`record` in Python: what the compiled record does, on the same arrays."""
        e = now * self._inv_bucket
        if not -_EPOCH_LIMIT < e < _EPOCH_LIMIT:  # NaN, inf, or no clock's time
            return
        epoch = math.floor(e)
        if epoch != self._ints[0]:
            self._advance(epoch)
        x = lateness if lateness > 0.0 else 0.0  # also NaN -> 0
        self._flat[int(self._ints[1]) + self._geometry._index(x)] += 1
        cur = self._cur
        cur[0] += 1
        cur[1] = float(cur[1]) + x  # a Python float's sum overflows without a warning
        if x > cur[2]:
            cur[2] = x
        if x < cur[3]:
            cur[3] = x
        if x > self._threshold_min:
            thr = self._thresholds
            over = self._cur_over
            for i in range(len(thr)):
                if x <= thr[i]:
                    break
                over[i] += 1
        if interval >= 0.0:
            cur[4] += 1
            cur[5] = float(cur[5]) + interval

    def flush(self) -> None:
        """Put the filling bucket's figures into its slot (tick thread; e.g. on pause, so
        the last ticks before it count while no tick runs)."""
        epoch = int(self._ints[0])
        if epoch == _NONE:
            return
        s = epoch % self._slots
        cur = self._cur
        self._n[s] = cur[0]
        self._sum[s] = cur[1]
        self._max[s] = cur[2]
        self._min[s] = cur[3]
        self._intervals[s] = cur[4]
        self._active[s] = cur[5]
        self._over[s, : len(self._cur_over)] = self._cur_over
        self._epochs[s] = epoch

    def _advance(self, epoch: int) -> None:
        """Start bucket ``epoch``: finish the current one, clear the slots passed over."""
        self.flush()
        current = int(self._ints[0])
        first = current + 1 if current != _NONE and epoch > current else epoch
        first = max(first, epoch - self._slots + 1)
        for e in range(first, epoch + 1):
            s = e % self._slots
            self._epochs[s] = _NONE  # readers skip the slot from now until its flush
            self._counts[s].fill(0)
        self._ints[0] = epoch
        self._ints[1] = (epoch % self._slots) * self._counts.shape[1]
        self._cur[:] = (0.0, 0.0, -math.inf, math.inf, 0.0, 0.0)
        self._cur_over.fill(0)

    def reset(self) -> None:
        """Forget every bucket (tick thread)."""
        self._epochs.fill(_NONE)
        self._ints[0] = _NONE

    def statistics(self, seconds: float, now: float) -> WindowStatistics:
        """Lateness and pace over the whole buckets that ended in the last ``seconds``.

        Args:
            seconds: Window length; rounded to whole buckets, at most :attr:`span`.
            now: The current time on the clock :meth:`record` is given.
        """
        k = min(self._slots - 1, max(1, round(seconds / self._bucket)))
        current = math.floor(now * self._inv_bucket)
        epochs = self._epochs.copy()
        mask = (epochs >= current - k) & (epochs < current)
        counts = self._counts[mask].sum(axis=0)
        n = int(counts.sum())
        over = self._over[mask].sum(axis=0)
        nthr = len(self._thresholds)
        over_t = tuple(int(v) for v in over[:nthr])
        intervals = int(self._intervals[mask].sum())
        # A sum past the largest double is +inf, without a warning, as the record's own
        # sums (Python floats, or C) are: a lateness that large is a broken clock, not
        # an error of the reader's.
        with np.errstate(over="ignore"):
            active = float(self._active[mask].sum())
            total = float(self._sum[mask].sum())
        length = k * self._bucket
        rf = pace_factor(intervals, self._dt, active)
        if n == 0:
            nan = math.nan
            empty = LatenessSnapshot(0, nan, nan, nan, nan, nan, self._thresholds, over_t)
            return WindowStatistics(length, empty, rf)
        lo = float(self._min[mask].min())
        hi = float(self._max[mask].max())
        cum = np.cumsum(counts)
        q = self._geometry._quantile
        lateness = LatenessSnapshot(
            count=n,
            mean=total / n,
            p50=q(cum, *_P50, lo, hi),
            p99=q(cum, *_P99, lo, hi),
            p999=q(cum, *_P999, lo, hi),
            max=hi if hi >= 0.0 else math.nan,
            thresholds=self._thresholds,
            over=over_t,
        )
        return WindowStatistics(length, lateness, rf)


class PaceRecord:
    """The pacer's record of released ticks: their count, their lateness since the start
    (:attr:`lateness`) and over the last seconds (:attr:`window`), and the tick-to-tick
    intervals that give the real-time factor.

    One :meth:`record` per released tick, by the tick thread, or by compiled code
    (``_native.run_ticks`` records each tick of a run through :attr:`address`, without
    the GIL): all the state is in arrays allocated here, which both write alike.

    Args:
        dt: Simulated seconds per tick.
        thresholds: As :class:`LatenessStats`.
        span: The longest window in seconds (:class:`LatenessWindow`).
    """

    __slots__ = ("_address", "_desc", "_floats", "_ints", "_lateness", "_window")

    def __init__(self, dt: float, thresholds: Iterable[float], span: float) -> None:
        self._lateness = LatenessStats(thresholds)
        self._window = LatenessWindow(dt, self._lateness.thresholds, span=span)
        # ints [ticks, intervals, have_prev], floats [prev_start, active seconds]
        self._ints = np.zeros(3, dtype=np.int64)
        self._floats = np.array([math.nan, 0.0])
        self._desc = _descriptor(
            _PACE, self._ints, self._floats, self._lateness.address, self._window.address
        )
        self._address = int(self._desc.ctypes.data)

    @property
    def lateness(self) -> LatenessStats:
        """The lateness of every tick recorded (read-only: the descriptor points at it)."""
        return self._lateness

    @property
    def window(self) -> LatenessWindow:
        """The lateness and pace of the last seconds' ticks (read-only, as :attr:`lateness`)."""
        return self._window

    @property
    def address(self) -> int:
        """Address of the record's descriptor for the compiled record (kind 2)."""
        return self._address

    def record(self, start: float, lateness: float) -> None:
        """Record a tick released at ``start`` (clock seconds), ``lateness`` seconds after
        its deadline."""
        if _RECORD is not None:
            _RECORD(_PACE, self._address, start, lateness, 0.0)
        else:
            self.record_python(start, lateness)

    def record_python(self, start: float, lateness: float) -> None:
        """:meth:`record` in Python: what the compiled record does, on the same arrays."""
        ints, floats = self._ints, self._floats
        ints[0] += 1
        self._lateness.record_python(lateness)
        if ints[2]:
            interval = start - float(floats[0])
            floats[1] = float(floats[1]) + interval
            ints[1] += 1
        else:
            interval = -1.0
            ints[2] = 1
        self._window.record_python(start, lateness, interval)
        floats[0] = start

    @property
    def ticks(self) -> int:
        """Ticks recorded."""
        return int(self._ints[0])

    @property
    def intervals(self) -> int:
        """Tick-to-tick intervals recorded (none spans a pause)."""
        return int(self._ints[1])

    @property
    def active(self) -> float:
        """Wall seconds those intervals, and the time from the last tick to a pause, took."""
        return float(self._floats[1])

    def pause(self, now: float) -> None:
        """The schedule stops at ``now``: the window's filling bucket goes into its slot
        (the last ticks count while none runs), the time since the last tick counts as
        active, and the next tick's interval starts at the resume."""
        self._window.flush()
        if self._ints[2]:
            self._floats[1] = float(self._floats[1]) + (now - float(self._floats[0]))
            self._floats[0] = now

    def resume(self, now: float) -> None:
        """The schedule starts again at ``now`` (no interval spans the pause)."""
        if self._ints[2]:
            self._floats[0] = now

    def reset(self) -> None:
        """Forget every tick (tick thread)."""
        self._lateness.reset()
        self._window.reset()
        self._ints.fill(0)
        self._floats[:] = (math.nan, 0.0)
