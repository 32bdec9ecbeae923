"""``spikestream feed``: the exact values and due times of every generated signal and of
a looped file, as docs/CLIENTS.md and the module doc state them (pure: no broker)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client.feed import (
    ArraySource,
    ConstantSource,
    NoiseSource,
    SinSource,
    SquareSource,
    feed,
    make_source,
)
from spikestream_client.feed_sources import MAX_RATE


def test_square_components_are_shifted_and_carry_the_offset() -> None:
    """``offset ± amp``, component ``i`` shifted by ``i / dim`` of a period: a square of
    two components at 1 Hz, duty 0.5, is high on the first and low on the second for the
    first half second, then the reverse. A square that dropped the offset, or the shift,
    still alternated between two levels with the right duty."""
    square = SquareSource(rate=100.0, freq=1.0, amp=2.0, offset=0.5, duty=0.5, dim=2)
    values = np.array([square.at(k)[1] for k in range(100)])
    high, low = 0.5 + 2.0, 0.5 - 2.0
    np.testing.assert_array_equal(values[:50], [[high, low]] * 50)
    np.testing.assert_array_equal(values[50:], [[low, high]] * 50)
    assert square.at(37)[0] == pytest.approx(0.37)


def test_a_constant_is_due_at_k_over_rate_and_a_scalar_fills_dim() -> None:
    """A constant's sample ``k`` is due at ``k / rate`` like every generated signal, and
    ``--value X`` with ``--dim 3`` sends ``[X, X, X]`` (a feed to an input of 3 values
    was refused as sending 1)."""
    const = ConstantSource(rate=10.0, value=np.array([0.5, -0.5]))
    assert [const.at(k)[0] for k in (0, 1, 7)] == pytest.approx([0.0, 0.1, 0.7])
    source, t0 = make_source("constant", rate=10.0, value=[0.25], dim=3)
    assert t0 is None
    assert source.dim == 3
    np.testing.assert_array_equal(source.at(4)[1], [0.25, 0.25, 0.25])  # type: ignore[index]


def test_noise_is_offset_plus_amp_times_the_seeded_block_draws() -> None:
    """``offset + amp * N(0, 1)``, drawn in blocks of 1024 from ``default_rng([seed,
    block])``: every block is a new draw (a noise repeating every 1024 samples kept the
    mean and spread the other test checks), and the offset is added."""
    noise = NoiseSource(50.0, amp=0.5, offset=3.0, seed=7, dim=2)
    for block in (0, 1, 5):
        draws = np.random.default_rng([7, block]).standard_normal((1024, 2))
        for row in (0, 17, 1023):
            due, x = noise.at(1024 * block + row)
            assert due == pytest.approx((1024 * block + row) / 50.0)
            np.testing.assert_array_equal(x, 3.0 + 0.5 * draws[row])
    assert not np.array_equal(noise.at(5)[1], noise.at(1024 + 5)[1])


@pytest.mark.parametrize(("rate", "k"), [(100.0, 29), (1000.0, 1001), (7.0, 61), (30.0, 123)])
def test_index_at_a_sample_s_own_due_time_is_that_sample(rate: float, k: int) -> None:
    """At the exact time sample ``k`` is due (``k / rate``, as :meth:`at` computes it), it
    is the last one due, though ``(k / rate) * rate`` rounds below ``k`` for these: a late
    feed sent the sample before the one due, and counted one skip too few."""
    sin = SinSource(rate=rate)
    due = sin.at(k)[0]
    assert due == k / rate
    assert sin.index_at(due) == k


@pytest.mark.parametrize(("rate", "k"), [(10.0, 9), (100.0, 5), (1000.0, 117), (30.0, 23)])
def test_index_just_before_a_sample_s_due_time_is_the_sample_before(rate: float, k: int) -> None:
    """One ulp before sample ``k`` is due, ``offset * rate`` rounds up to ``k`` for these:
    the index must step back to ``k - 1``, or a late feed sends a sample before its due
    time (``at(index)`` later than the clock)."""
    sin = SinSource(rate=rate)
    just_before = math.nextafter(k / rate, 0.0)
    assert math.floor(just_before * rate) == k  # the rounding this case is about
    index = sin.index_at(just_before)
    assert index == k - 1
    assert sin.at(index)[0] <= just_before < sin.at(index + 1)[0]


def test_a_looped_file_without_times_plays_each_row_once_a_lap(tmp_path: Path) -> None:
    """A file without times plays its rows at ``k / rate``; looped, the lap is the file's
    length plus one sample interval, so row 0 of the next lap comes one interval after
    the last row (a lap one interval short sent the last row and the first together)."""
    plain = tmp_path / "plain.csv"
    plain.write_text("1.0\n2.0\n3.0\n")
    source, t0 = make_source(str(plain), rate=10.0, loop=True)
    assert t0 is None
    items = [source.at(k) for k in range(7)]
    assert [round(item[0], 9) for item in items if item] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    )
    assert [float(item[1][0]) for item in items if item] == [1, 2, 3, 1, 2, 3, 1]


@pytest.mark.parametrize("duty", [0.0, 1.0])
def test_a_duty_that_leaves_no_high_or_no_low_part_is_refused(duty: float) -> None:
    """``--duty`` must lie strictly inside (0, 1): at 1 the "square" never goes low (at 0
    never high), a constant sent as a square without a word."""
    with pytest.raises(ConfigError, match=r"--duty must be in \(0, 1\)"):
        make_source("square", rate=10.0, duty=duty)


class StallClock:
    """A monotonic clock that advances only when the feed sleeps (exactly as asked) and
    by ``stall`` seconds after the first send."""

    def __init__(self, stall: float = 0.0) -> None:
        self.now = 50.0
        self.stall = stall
        self.stamps: list[float | None] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> bool:
        self.now += seconds
        return False

    def publish(self, x: np.ndarray, t: float | None) -> bool:
        self.stamps.append(t)
        if len(self.stamps) == 1:
            self.now += self.stall
        return True


async def test_signal_timestamps_are_t0_plus_each_rows_offset() -> None:
    """``--timestamp signal`` sends ``t0 + offset``: a timed file's own times (t0, its
    first time), not its offsets from the first row."""
    values = np.arange(3.0)[:, None]
    source = ArraySource(values, offsets=np.array([0.0, 0.2, 0.5]))
    fake = StallClock()
    report = await feed(
        source,
        fake.publish,
        asyncio.Event(),
        timestamp="signal",
        t0=10.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert report.sent == 3
    assert fake.stamps == pytest.approx([10.0, 10.2, 10.5])


async def test_a_late_feed_never_jumps_to_a_sample_due_at_its_duration() -> None:
    """Nothing due at or after ``--duration`` goes out: a feed stalled past its end jumps
    to the newest sample due *before* the duration (0.99 s at 100/s for 1 s), never to
    the one due at it (1.0 s)."""
    fake = StallClock(stall=2.0)
    report = await feed(
        SinSource(rate=100.0),
        fake.publish,
        asyncio.Event(),
        duration=1.0,
        timestamp="signal",
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert fake.stamps == pytest.approx([0.0, 0.99])
    assert (report.sent, report.skipped) == (2, 98)


def test_a_looped_timed_file_of_one_row_plays_it_once_a_sample_interval(tmp_path: Path) -> None:
    """A timed file of one row has no step between times to take as its lap's tail: the
    lap is one sample interval at ``rate`` (a lap of 0 s was refused as every row due at
    once, though looping one row is a constant at that rate)."""
    one = tmp_path / "one.csv"
    one.write_text("t,x\n5,2.5\n")
    source, t0 = make_source(str(one), rate=4.0, loop=True)
    assert t0 == 5.0
    assert [source.at(k)[0] for k in range(4)] == pytest.approx([0.0, 0.25, 0.5, 0.75])  # type: ignore[index]
    assert source.at(3)[1].tolist() == [2.5]  # type: ignore[index]


def test_an_unlooped_file_s_index_never_passes_its_last_row() -> None:
    """Long after a file played once, the last sample due is its last row: an index one
    past it is a sample :meth:`at` does not have (None), and a late feed stopped one row
    early or skipped it."""
    source = ArraySource(np.arange(3.0)[:, None], rate=10.0)
    for t in (0.2, 0.3, 0.35, 1.0, 1e6):
        k = source.index_at(t)
        assert k == 2, t
        assert source.at(k) is not None


@pytest.mark.parametrize("duty", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_a_square_duty_outside_the_open_interval_is_refused(duty: float) -> None:
    """A duty of 0 or 1 is a constant (never high, or never low), not a square: refused
    naming the flag, like one outside [0, 1] or NaN."""
    with pytest.raises(ConfigError, match=r"--duty must be in \(0, 1\)"):
        make_source("square", rate=10.0, duty=duty)


def test_the_smallest_negative_seed_is_refused_and_zero_is_allowed() -> None:
    """numpy refuses any negative seed, but only at the first noise sample, once
    connected: ``--seed -1`` is refused before, and 0 (the default) is a seed."""
    with pytest.raises(ConfigError, match=r"^--seed: -1 is not allowed; expected an integer >= 0$"):
        make_source("noise", rate=10.0, seed=-1)
    source, _ = make_source("noise", rate=10.0, seed=0)
    assert source.at(0) is not None


def test_a_scalar_constant_fills_two_values_and_the_top_rate_is_allowed() -> None:
    """``--value X --dim 2`` is ``[X, X]`` (the smallest vector a scalar fills), and
    ``--rate`` at its bound, 1000, is allowed (the bound is inclusive)."""
    source, _ = make_source("constant", rate=MAX_RATE, value=[0.25], dim=2)
    assert source.dim == 2
    assert source.at(1000)[0] == 1.0  # type: ignore[index]
    np.testing.assert_array_equal(source.at(0)[1], [0.25, 0.25])  # type: ignore[index]
