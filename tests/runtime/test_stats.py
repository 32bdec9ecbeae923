"""LatenessStats: exact counters, percentile accuracy against numpy, buckets, threading."""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.errors import ConfigError
from spikestream.runtime import DEFAULT_THRESHOLDS, LatenessStats, LatenessWindow
from spikestream.runtime.stats import PaceRecord, pace_factor

# Half the log-bucket width at 40 buckets per decade: sqrt(10**(1/40)) - 1 = 2.92 %.
REL = 10 ** (1 / 80) - 1
ABS = 1e-7  # values at or below the first edge (0.1 us) are resolved to it
QUANTILES = {"p50": (1, 2), "p99": (99, 100), "p999": (999, 1000)}


def nearest_rank(sorted_values: np.ndarray, num: int, den: int) -> float:
    n = len(sorted_values)
    return float(sorted_values[max(1, -(-num * n // den)) - 1])


def recorded(values: np.ndarray | list[float], **kwargs: object) -> LatenessStats:
    stats = LatenessStats(**kwargs)  # type: ignore[arg-type]
    for x in values:
        stats.record(float(x))
    return stats


def bucket_of(stats: LatenessStats, x: float) -> int:
    """Index of the bucket one sample of x lands in."""
    before = stats.histogram().counts
    stats.record(x)
    return int(np.flatnonzero(stats.histogram().counts - before)[0])


def test_empty_snapshot_is_nan_and_zero() -> None:
    snap = LatenessStats().snapshot()
    assert snap.count == 0
    assert all(math.isnan(v) for v in (snap.mean, snap.p50, snap.p99, snap.p999, snap.max))
    assert snap.thresholds == DEFAULT_THRESHOLDS
    assert snap.over == (0, 0)


def test_thresholds_count_strictly_greater_exactly() -> None:
    stats = recorded([0.0, 0.00025, 0.00025000001, 0.000999, 0.001, 0.0010001, 0.5, 0.0001])
    snap = stats.snapshot()
    assert snap.over_threshold(0.00025) == 5  # 0.00025 itself is not late by > 0.25 ms
    assert snap.over_threshold(0.001) == 2
    with pytest.raises(ConfigError, match="one of"):
        snap.over_threshold(0.002)


def test_custom_thresholds_are_sorted_and_deduplicated() -> None:
    stats = recorded([0.003, 0.0005, 0.02], thresholds=[0.01, 0.001, 0.001])
    assert stats.thresholds == (0.001, 0.01)
    assert stats.snapshot().over == (2, 1)


def test_count_mean_and_max_are_exact() -> None:
    values = np.random.default_rng(7).exponential(2e-4, size=5000)
    snap = recorded(values).snapshot()
    assert snap.count == 5000
    assert snap.max == values.max()
    assert snap.mean == pytest.approx(values.mean(), rel=1e-12)


def test_percentiles_match_numpy_on_a_large_sample() -> None:
    # Sub-millisecond lateness with a tail, like a real tick loop.
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=math.log(5e-5), sigma=1.0, size=200_000)
    snap = recorded(values).snapshot()
    for name, q in (("p50", 50), ("p99", 99), ("p999", 99.9)):
        assert getattr(snap, name) == pytest.approx(np.percentile(values, q), rel=0.05), name


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.just(0.0),
            st.floats(1e-9, 1e-6),
            st.floats(1e-6, 5e-3),
            st.floats(5e-3, 50.0),
        ),
        min_size=1,
        max_size=600,
    )
)
def test_percentiles_are_within_half_a_bucket_of_the_true_order_statistic(
    values: list[float],
) -> None:
    data = np.sort(np.asarray(values))
    snap = recorded(values).snapshot()
    for name, (num, den) in QUANTILES.items():
        got = getattr(snap, name)
        want = nearest_rank(data, num, den)
        assert abs(got - want) <= REL * want + ABS, (name, got, want)
        # ...and hence inside numpy's bracket of the percentile, widened by the same error.
        q = 100 * num / den
        low = np.percentile(data, q, method="lower")
        high = np.percentile(data, q, method="higher")
        assert low * (1 - REL) - ABS <= got <= high * (1 + REL) + ABS, name
    assert snap.max == data[-1]


def test_constant_samples_give_exact_percentiles() -> None:
    snap = recorded([3.3e-4] * 100).snapshot()
    assert snap.p50 == snap.p99 == snap.p999 == snap.max == 3.3e-4


def test_quantile_method_agrees_with_snapshot_and_validates() -> None:
    stats = recorded(np.linspace(0.0, 1e-3, 1001))
    snap = stats.snapshot()
    assert stats.quantile(0.99) == snap.p99
    assert stats.quantile(0.5) == snap.p50
    assert stats.quantile(0.0) == 0.0
    assert stats.quantile(1.0) == 1e-3
    for q in (-0.1, 1.5, math.nan):
        with pytest.raises(ConfigError, match="quantile"):
            stats.quantile(q)


def test_bucket_edges_are_log_spaced_from_zero_to_inf() -> None:
    stats = LatenessStats()
    upper = stats.upper_bounds
    assert upper[0] == 0.0
    assert upper[1] == 1e-7
    assert upper[-1] == math.inf
    assert upper[-2] == pytest.approx(100.0, rel=1e-12)
    ratios = upper[2:-1] / upper[1:-2]
    np.testing.assert_allclose(ratios, 10 ** (1 / 40), rtol=1e-12)
    with pytest.raises(ValueError, match="read-only"):
        upper[3] = 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e3))
def test_each_sample_lands_in_the_bucket_whose_edges_contain_it(x: float) -> None:
    stats = LatenessStats()
    i = bucket_of(stats, x)
    upper = stats.upper_bounds
    # Upper-inclusive (Prometheus "le"); 1e-12 of slack for log10 rounding at an edge.
    assert upper[i - 1] * (1 - 1e-12) < x <= upper[i] * (1 + 1e-12)


def test_zero_negative_and_nan_go_to_the_zero_bucket() -> None:
    stats = LatenessStats()
    assert [bucket_of(stats, x) for x in (0.0, -1e-3, math.nan)] == [0, 0, 0]
    snap = stats.snapshot()
    assert (snap.count, snap.mean, snap.max, snap.p999) == (3, 0.0, 0.0, 0.0)


def test_overflow_bucket_is_reported_as_the_exact_max() -> None:
    # Above ~100 s there is no upper edge to interpolate to: the max is the estimate.
    snap = recorded([1e-4, 1e3, 1e3, 2e3]).snapshot()
    assert snap.p99 == snap.max == 2e3
    assert snap.p50 == 2e3  # the true 2nd sample is 1e3; documented limitation
    assert snap.over == (3, 3)


def test_histogram_is_a_consistent_copy() -> None:
    values = [0.0, 1e-5, 2e-4, 2e-4, 0.3]
    stats = recorded(values)
    hist = stats.histogram()
    assert hist.count == 5 == hist.counts.sum()
    assert hist.sum == pytest.approx(sum(values))
    assert hist.upper_bounds is stats.upper_bounds
    hist.counts[:] = 0
    assert stats.histogram().counts.sum() == 5  # the stats were not touched
    # Cumulative counts at an edge = samples <= edge, as Prometheus wants.
    cum = np.cumsum(stats.histogram().counts)
    edge = int(np.searchsorted(hist.upper_bounds, 2e-4))
    assert cum[edge] == 4


def test_reset_forgets_everything() -> None:
    stats = recorded([1e-4, 2e-3, 5.0])
    stats.reset()
    snap = stats.snapshot()
    assert (snap.count, snap.over, stats.count) == (0, (0, 0), 0)
    assert math.isnan(snap.max)
    assert stats.histogram().counts.sum() == 0
    stats.record(2e-4)
    assert stats.snapshot().max == 2e-4


def test_record_does_not_grow_memory() -> None:
    stats = LatenessStats()
    values = np.random.default_rng(3).exponential(1e-4, size=100_000).tolist()
    stats.record(1e-4)  # warm up any lazy allocation
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for x in values:
            stats.record(x)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.count == 100_001
    # Keeping the samples would take >= 800 kB; the histogram takes nothing new.
    assert after - before < 4096


def test_snapshot_from_another_thread_while_recording_never_fails() -> None:
    stats = LatenessStats()
    n = 100_000
    values = np.random.default_rng(5).exponential(1e-4, size=n).tolist()
    done = threading.Event()

    def record_all() -> None:
        for x in values:
            stats.record(x)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave as much as possible
    try:
        worker = threading.Thread(target=record_all)
        worker.start()
        counts = []
        while not done.is_set():
            snap = stats.snapshot()
            counts.append(snap.count)
            if snap.count:
                assert 0.0 <= snap.p50 <= snap.p999 <= max(values)
        worker.join()
    finally:
        sys.setswitchinterval(old)
    assert counts == sorted(counts)
    assert stats.snapshot().count == n


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thresholds": [0.0]}, "thresholds"),
        ({"thresholds": [math.nan]}, "thresholds"),
        ({"lowest": 0.0}, "lowest"),
        ({"highest": 1e-8}, "highest"),
        ({"buckets_per_decade": 0}, "buckets_per_decade"),
        ({"buckets_per_decade": 2.5}, "buckets_per_decade"),
        ({"buckets_per_decade": 1001}, "buckets_per_decade"),
        ({"buckets_per_decade": True}, "buckets_per_decade"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LatenessStats(**kwargs)  # type: ignore[arg-type]


# -- LatenessWindow: the last seconds, not since start --------------------------------------


def paced(window: LatenessWindow, start: float, seconds: float, late: float = 0.0) -> float:
    """Record 1 ms ticks from ``start`` for ``seconds``, each ``late`` seconds late."""
    n = round(seconds * 1000)
    for i in range(n):  # i / 1000, not a running sum: tick times land on exact bucket edges
        window.record(start + i / 1000, late, 0.001)
    return start + n / 1000


def test_window_matches_lateness_stats_over_the_same_ticks() -> None:
    rng = np.random.default_rng(11)
    values = rng.exponential(2e-4, size=3000)
    window = LatenessWindow(0.001)
    reference = LatenessStats()
    t = 50.0
    for x in values:
        window.record(t, float(x), 0.001)
        reference.record(float(x))
        t += 0.001
    window.flush()  # the ticks stop (as at a pause): the last bucket counts
    # 3 s of ticks from t = 50.0; at 53.05 the 10 s window holds every whole bucket.
    got = window.statistics(10.0, 53.05)
    want = reference.snapshot()
    assert got.ticks == 3000 == want.count
    # Same histogram geometry, same exact counters; the mean is summed in another order.
    assert got.lateness.mean == pytest.approx(want.mean, rel=1e-12)
    assert dataclasses.replace(got.lateness, mean=want.mean) == want
    assert got.realtime_factor_actual == pytest.approx(1.0)


def test_one_second_window_holds_exactly_the_last_ten_whole_buckets() -> None:
    window = LatenessWindow(0.001)
    paced(window, 10.0, 2.55)  # ticks at 10.000 .. 12.549
    # At 12.55 the bucket [12.5, 12.6) is being filled: the window is [11.5, 12.5).
    assert window.statistics(1.0, 12.55).ticks == 1000
    assert window.statistics(10.0, 12.55).ticks == 2500
    paced(window, 12.55, 0.45)
    assert window.statistics(10.0, 14.0).ticks == 2900  # the last bucket is still open
    window.flush()
    # Long after the last tick the buckets have left every window.
    assert window.statistics(1.0, 14.0).ticks == 0
    assert math.isnan(window.statistics(1.0, 14.0).realtime_factor_actual)
    assert window.statistics(10.0, 14.0).ticks == 3000


def test_a_burst_of_late_ticks_shows_in_the_window_while_it_lasts_then_leaves() -> None:
    window = LatenessWindow(0.001)
    t = paced(window, 100.0, 2.0)
    t = paced(window, t, 0.05, late=0.003)  # 50 ticks 3 ms late at 102.00 .. 102.05
    t = paced(window, t, 3.0)
    during = window.statistics(1.0, 102.5)
    assert during.lateness.over_threshold(0.001) == 50
    assert during.late_share(0.001) == pytest.approx(50 / 1000)
    assert during.lateness.max == pytest.approx(0.003)
    after = window.statistics(1.0, 103.2)
    assert after.lateness.over_threshold(0.001) == 0
    assert after.lateness.max == 0.0
    assert window.statistics(10.0, 103.2).lateness.over_threshold(0.001) == 50


def test_window_real_time_factor_shows_a_slow_second() -> None:
    window = LatenessWindow(0.001)
    t = 0.0
    for _ in range(2000):  # ticks every 2 ms: half real time
        window.record(t, 0.0, 0.002)
        t += 0.002
    assert window.statistics(1.0, t).realtime_factor_actual == pytest.approx(0.5)


def test_a_gap_longer_than_the_span_clears_every_slot() -> None:
    window = LatenessWindow(0.001)
    paced(window, 0.0, 1.0, late=0.002)
    paced(window, 500.0, 0.2)  # e.g. after a long pause
    window.flush()
    recent = window.statistics(10.0, 500.25)
    assert recent.ticks == 200
    assert recent.lateness.over_threshold(0.001) == 0


def test_window_record_does_not_grow_memory() -> None:
    window = LatenessWindow(0.001)
    values = np.random.default_rng(3).exponential(1e-4, size=50_000).tolist()
    window.record(0.0, 1e-4, -1.0)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        t = 0.001
        for x in values:  # 50 s of ticks: the ring wraps five times
            window.record(t, x, 0.001)
            t += 0.001
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    window.flush()
    assert window.statistics(10.0, t).ticks == 10_000
    assert after - before < 4096


@pytest.mark.parametrize(("bucket", "span"), [(0.0, 10.0), (0.1, 0.01), (math.nan, 1.0)])
def test_window_refuses_a_bad_geometry(bucket: float, span: float) -> None:
    with pytest.raises(ConfigError, match="window"):
        LatenessWindow(0.001, bucket=bucket, span=span)


# -- the compiled record (_native_record.h) against the Python one -----------------------

# Samples where the arithmetic could split the two: bucket edges and their neighbours, the
# thresholds, 0, negatives, NaN, infinities, the smallest and largest doubles.
_EDGES = LatenessStats().upper_bounds[1:-1]
_SAMPLES = st.one_of(
    st.floats(min_value=0.0, max_value=200.0, allow_nan=False),
    st.sampled_from(
        [
            0.0,
            -0.0,
            -1.0,
            math.nan,
            math.inf,
            -math.inf,
            5e-324,
            sys.float_info.max,
            1e-7,
            *DEFAULT_THRESHOLDS,
        ]
    ),
    st.sampled_from(list(_EDGES)).flatmap(
        lambda e: st.sampled_from([e, np.nextafter(e, 0.0), np.nextafter(e, math.inf)])
    ),
)


def _blocks(record: object) -> tuple[np.ndarray, np.ndarray]:
    """A record's two state blocks (ints, floats as their bits): equal means bit for bit."""
    ints, floats = record._ints, record._floats  # type: ignore[attr-defined]
    return ints.copy(), floats.view(np.int64).copy()


def _same(a: object, b: object) -> None:
    (ai, af), (bi, bf) = _blocks(a), _blocks(b)
    np.testing.assert_array_equal(ai, bi)
    np.testing.assert_array_equal(af, bf)


def test_the_compiled_record_is_there() -> None:
    """The tests below compare the compiled record with the Python one: both must run."""
    from spikestream.runtime import stats

    assert stats._RECORD is not None


@settings(max_examples=150, deadline=None)
@given(st.lists(_SAMPLES, max_size=60), st.sampled_from([(), (0.001,), DEFAULT_THRESHOLDS]))
def test_compiled_stats_record_is_the_python_record_bit_for_bit(
    samples: list[float], thresholds: tuple[float, ...]
) -> None:
    compiled, python = LatenessStats(thresholds), LatenessStats(thresholds)
    for x in samples:
        compiled.record(x)
        python.record_python(x)
        _same(compiled, python)
    assert compiled.snapshot() == python.snapshot() or not samples


# Steps of a window: how far the clock moves (seconds: within a bucket, to the next ones,
# past the whole span, now and then back; NaN or inf: a time no clock gives, recorded by
# neither), the lateness, the interval (negative: none; NaN and inf too).
_STEPS = st.lists(
    st.tuples(
        st.one_of(
            st.floats(min_value=0.0, max_value=0.3),
            st.sampled_from([0.0, 0.1, 10.0, 25.0, -0.1, -0.25, -30.0, math.nan, math.inf]),
        ),
        _SAMPLES,
        st.one_of(
            st.floats(min_value=0.0, max_value=0.01),
            st.sampled_from([-1.0, math.nan, math.inf]),
        ),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    _STEPS,
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([(), DEFAULT_THRESHOLDS]),
    st.sampled_from([(0.1, 10.0), (0.1, 1.0), (0.05, 0.1)]),
)
def test_compiled_window_record_is_the_python_record_bit_for_bit(
    steps: list[tuple[float, float, float]],
    t0: float,
    thresholds: tuple[float, ...],
    geometry: tuple[float, float],
) -> None:
    bucket, span = geometry
    compiled, python = (
        LatenessWindow(0.001, thresholds, bucket=bucket, span=span) for _ in range(2)
    )
    now = t0
    for i, (advance, late, interval) in enumerate(steps):
        at = now + advance  # NaN and inf are recorded by neither, and the clock stays
        if math.isfinite(advance):
            now = at
        compiled.record(at, late, interval)
        python.record_python(at, late, interval)
        if i % 7 == 6:  # a pause flushes the filling bucket (in Python, on both)
            compiled.flush()
            python.flush()
        _same(compiled, python)
    later = now + 2 * bucket
    assert compiled.statistics(span, later) == python.statistics(span, later) or (
        compiled.statistics(span, later).ticks == 0 == python.statistics(span, later).ticks
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=0.5),
            _SAMPLES,
            st.sampled_from(["tick", "tick", "tick", "pause", "resume", "reset"]),
        ),
        max_size=60,
    )
)
def test_compiled_pace_record_is_the_python_record_bit_for_bit(
    steps: list[tuple[float, float, str]],
) -> None:
    from spikestream.runtime.stats import PaceRecord

    compiled, python = (PaceRecord(0.001, DEFAULT_THRESHOLDS, 10.0) for _ in range(2))
    with pytest.raises(AttributeError):
        compiled.window = LatenessWindow(0.001)  # type: ignore[misc]  # its descriptor's
    now = 100.0
    for advance, late, what in steps:
        now += advance
        for record in (compiled, python):
            if what == "pause":
                record.pause(now)
            elif what == "resume":
                record.resume(now)
            elif what == "reset":
                record.reset()
        if what == "tick":
            compiled.record(now, late)
            python.record_python(now, late)
        _same(compiled, python)
        _same(compiled.lateness, python.lateness)
        _same(compiled.window, python.window)
    assert (compiled.ticks, compiled.intervals, compiled.active) == (
        python.ticks,
        python.intervals,
        python.active,
    )


def test_the_compiled_record_refuses_a_malformed_descriptor() -> None:
    from spikestream.sim.native import extension

    ext = extension()
    assert ext is not None
    stats = LatenessStats()
    bad = np.zeros(5, dtype=np.int64)  # no arrays behind it
    for kind in (0, 1, 2):
        with pytest.raises(ValueError, match="malformed descriptor"):
            ext.record(kind, int(bad.ctypes.data), 0.001, 0.0, 0.0)
    # A descriptor of another kind, or whose blocks do not have its layout's lengths.
    window = LatenessWindow(0.001)
    with pytest.raises(ValueError, match="malformed descriptor"):
        ext.record(1, stats.address, 0.001, 0.0, 0.0)
    with pytest.raises(ValueError, match="malformed descriptor"):
        ext.record(0, window.address, 0.001, 0.0, 0.0)
    stats._desc[4] += 1  # the float block's length
    with pytest.raises(ValueError, match="malformed descriptor"):
        ext.record(0, stats.address, 0.001, 0.0, 0.0)
    stats._desc[4] -= 1
    with pytest.raises(ValueError, match="kind 3"):
        ext.record(3, stats.address, 0.001, 0.0, 0.0)
    with pytest.raises(TypeError, match="takes 5 arguments"):
        ext.record(0, stats.address, 0.001)
    assert stats.count == 0
    ext.record(0, stats.address, 0.001, 0.0, 0.0)
    assert stats.count == 1


def test_a_window_whose_sums_pass_the_largest_double_reports_inf_without_a_warning() -> None:
    """Two buckets each holding the largest double: their sum is +inf, as a Python float's
    sum is, and reading the window warns of nothing (warnings are errors here)."""
    window = LatenessWindow(0.001, bucket=0.1, span=1.0)
    window.record(0.05, sys.float_info.max, -1.0)
    window.record(0.15, sys.float_info.max, sys.float_info.max)
    window.record(0.25, 0.0, sys.float_info.max)
    window.record(0.35, 0.0, 0.1)  # puts the bucket before it in its slot
    stats = window.statistics(1.0, 0.45)  # the buckets of 0.0, 0.1 and 0.2 s have ended
    assert stats.ticks == 3
    assert stats.lateness.mean == math.inf
    assert stats.realtime_factor_actual == 0.0  # intervals over an infinite time


# -- gaps a mutation audit found ---------------------------------------------------------------


def test_the_smallest_sample_is_reported_exactly_at_rank_one() -> None:
    """A percentile whose nearest rank is 1 is the exact minimum, not its bucket's middle
    (the module doc: ranks 1 and n come out exact)."""
    # Just above a bucket's lower edge: the bucket's middle is well above the sample.
    low = float(LatenessStats().upper_bounds[100]) * (1 + 1e-6)
    stats = recorded([low, 0.5])
    snap = stats.snapshot()
    assert snap.p50 == low  # rank ceil(0.5 * 2) = 1
    assert stats.quantile(0.25) == low
    assert snap.p99 == snap.max == 0.5


def test_a_percentile_in_the_first_bucket_is_its_middle() -> None:
    """Values in (0, lowest] are reported as the middle of that bucket, lowest / 2, so
    within lowest / 2 of the truth, not at its upper edge."""
    stats = recorded([2e-8, 4e-8, 6e-8, 8e-8, 1.0])
    assert stats.snapshot().p50 == pytest.approx(0.5e-7, rel=1e-12)  # rank 3 of 5


def test_pace_factor_is_inf_without_wall_time_and_nan_without_intervals() -> None:
    """Ticks that took no wall time (a fake clock) ran infinitely fast: +inf, not NaN; no
    interval at all is NaN."""
    assert pace_factor(3, 0.001, 0.0) == math.inf
    assert math.isnan(pace_factor(0, 0.001, 0.0))
    assert pace_factor(4, 0.001, 0.002) == pytest.approx(2.0)


def test_late_share_of_an_empty_window_is_nan() -> None:
    """A window in which no tick ran has no share of late ticks: NaN, not 0."""
    window = LatenessWindow(0.001)
    empty = window.statistics(1.0, 5.0)
    assert empty.ticks == 0
    assert math.isnan(empty.late_share(0.001))


def test_a_window_longer_than_the_span_is_the_span() -> None:
    """Asking for more than :attr:`LatenessWindow.span` reports the span's whole buckets,
    never the slot of the bucket that is about to be filled again."""
    window = LatenessWindow(0.001)
    end = paced(window, 10.0, 11.0)  # 11 s of ticks, more than the 10 s span
    window.flush()
    got = window.statistics(100.0, end + 0.05)
    assert got.seconds == pytest.approx(window.span)
    assert got.ticks == 10_000


def test_pace_record_reset_forgets_the_window_too() -> None:
    """A reset forgets every tick: the since-start lateness and the recent window alike."""
    record = PaceRecord(0.001, DEFAULT_THRESHOLDS, span=10.0)
    for i in range(500):
        record.record(1.0 + i / 1000, 0.002)
    record.window.flush()
    assert record.window.statistics(1.0, 1.55).ticks == 500
    record.reset()
    assert (record.ticks, record.intervals, record.lateness.count) == (0, 0, 0)
    assert record.window.statistics(1.0, 1.55).ticks == 0
