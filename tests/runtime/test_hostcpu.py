"""The host's CPU shares over the stats windows, from /proc/stat."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from spikestream.runtime.hostcpu import HostCpu, parse_cpu_line, read_cpu_times

# A real first line (Linux 6.x): user nice system idle iowait irq softirq steal guest
# guest_nice, in USER_HZ ticks.
LINE = "cpu  24943 18 6552 80189 568 0 328 3123 0 0\ncpu0 12000 9 3000 40000 300 0 160 1500 0 0\n"


def test_the_cpu_line_is_summed_into_busy_idle_and_steal() -> None:
    times = parse_cpu_line(LINE)
    assert times.busy == 24943 + 18 + 6552 + 0 + 328
    assert times.idle == 80189 + 568
    assert times.steal == 3123
    assert times.total == times.busy + times.idle + times.steal


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cpu0 1 2 3 4 5 6 7 8\n", ["aggregate 'cpu' line", "'cpu0 1 2"]),
        ("cpu 1 2 3 4 5 6 7\n", ["at least 8 counters", "'cpu 1 2 3 4 5 6 7'"]),
        ("cpu 1 2 x 4 5 6 7 8\n", ["not an integer", "'cpu 1 2 x"]),
        ("cpu 1 2 -3 4 5 6 7 8\n", ["negative", "-3"]),
        ("", ["aggregate 'cpu' line", "''"]),
    ],
)
def test_a_malformed_cpu_line_is_refused_naming_it(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError, match=r"cpu line|'cpu' line") as err:
        parse_cpu_line(text)
    for word in words:
        assert word in str(err.value)


def _write(path: Path, busy: int, idle: int, steal: int) -> None:
    # busy split over user and system, idle over idle and iowait: the sums are what count.
    path.write_text(f"cpu  {busy - busy // 3} 0 {busy // 3} {idle - 1} 1 0 0 {steal} 0 0\nintr 1\n")


def test_each_window_spans_the_samples_at_least_its_length_apart(tmp_path: Path) -> None:
    """Samples every 0.1 s of a fake host: 9 s at 30 % busy and no steal, then 2 s at
    50 % busy and 20 % stolen. The last 1 s shows only the second part; the last 10 s
    mixes both, over exactly 10 s; the ring wraps meanwhile (it keeps 10 s + 2 samples)."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=10.0, every=0.1, path=stat)
    busy, idle, steal = 1000, 1000, 0
    t = 0.0
    for step in range(111):  # 0 .. 11 s
        if step:
            if t <= 9.0 + 1e-9:
                busy, idle = busy + 6, idle + 14  # 20 ticks per 0.1 s: 2 CPUs at 100 Hz
            else:
                busy, idle, steal = busy + 10, idle + 6, steal + 4
        _write(stat, busy, idle, steal)
        assert cpu.sample(t)
        t = round(t + 0.1, 10)
    last = cpu.shares(1.0)
    assert last is not None
    assert last.seconds == pytest.approx(1.0)
    assert (last.busy, last.steal) == (pytest.approx(0.5), pytest.approx(0.2))
    ten = cpu.shares(10.0)
    assert ten is not None
    assert ten.seconds == pytest.approx(10.0)
    # 1 s to 9 s: 80 samples at 6 of 20; 9 s to 11 s: 20 at 10 of 20 and 4 stolen.
    assert ten.busy == pytest.approx((80 * 6 + 20 * 10) / (100 * 20))
    assert ten.steal == pytest.approx(20 * 4 / (100 * 20))
    assert cpu.shares(10.5) is None  # older than the ring keeps


def test_a_young_window_spans_since_the_first_sample_and_a_reset_gives_none(
    tmp_path: Path,
) -> None:
    """Before sampling has run a window's length, the window runs from the first sample
    (as the lateness windows hold the ticks since start); no share from one sample, nor
    across counters that went back or did not move."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=1.0, every=0.1, path=stat)
    assert cpu.shares(1.0) is None
    _write(stat, 100, 100, 0)
    cpu.sample(0.0)
    assert cpu.shares(1.0) is None  # one sample
    _write(stat, 130, 110, 10)
    cpu.sample(0.5)
    young = cpu.shares(1.0)
    assert young is not None
    assert (young.seconds, young.busy, young.steal) == (0.5, 0.6, 0.2)
    _write(stat, 50, 300, 0)  # a CPU's counters went back (hotplug)
    cpu.sample(1.0)
    assert cpu.shares(0.5) is None
    _write(stat, 50, 300, 0)  # no tick accounted between the two samples
    cpu.sample(2.0)
    assert cpu.shares(1.0) is None


def test_an_unreadable_file_stops_sampling_with_the_reason(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=1.0, every=0.1, path=stat)
    _write(stat, 100, 100, 0)
    assert cpu.sample(0.0)
    stat.write_text("garbage\n")
    assert not cpu.sample(1.0)
    assert cpu.error is not None
    assert "'garbage'" in cpu.error
    _write(stat, 200, 200, 0)
    assert not cpu.sample(2.0)  # stopped for good: a window never mixes in a bad sample
    assert cpu.shares(1.0) is None
    missing = HostCpu(path=tmp_path / "nope")
    assert not missing.sample(0.0)
    assert missing.error is not None
    assert "nope" in missing.error


def test_the_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="every"):
        HostCpu(horizon=1.0, every=0.0)
    with pytest.raises(ValueError, match="horizon"):
        HostCpu(horizon=0.05, every=0.1)


def test_this_machine_reports_the_time_a_busy_thread_spends() -> None:
    """The real /proc/stat: while this thread spins for 0.3 s, at least its share of
    all the CPUs' time (minus what the hypervisor stole from it) shows as busy."""
    times = read_cpu_times()
    assert times.total > 0
    cpu = HostCpu(horizon=1.0, every=0.1)
    start = time.monotonic()
    assert cpu.sample(start)
    while time.monotonic() - start < 0.3:
        pass
    assert cpu.sample(time.monotonic())
    share = cpu.shares(0.3)
    assert share is not None
    assert 0.0 <= share.steal <= 1.0
    cpus = len(Path("/proc/stat").read_text().split("\ncpu")) - 1
    # One busy CPU of `cpus`, counted in whole clock ticks over ~30 of them: allow slack.
    assert 0.5 / cpus <= share.busy + share.steal <= 1.0


def test_a_counter_of_minus_one_is_refused() -> None:
    """Negative is negative from -1 on: the check is not a looser bound."""
    with pytest.raises(ValueError, match="negative"):
        parse_cpu_line("cpu 1 2 3 4 5 6 7 -1\n")


def test_a_cpu_line_of_large_counters_is_read_whole(tmp_path: Path) -> None:
    """A many-CPU host up for months writes counters of many digits: the first read of
    the file must hold the whole cpu line (about 200 characters here), not a cut one
    that would stop sampling for good."""
    big = 10**18
    stat = tmp_path / "stat"
    stat.write_text("cpu  " + " ".join(str(big + k) for k in range(10)) + "\n" + "cpu0 1\n" * 50)
    times = read_cpu_times(stat)
    assert times.steal == big + 7
    assert times.idle == 2 * big + 3 + 4


def test_a_horizon_of_one_interval_is_allowed(tmp_path: Path) -> None:
    """``every <= horizon``: the equal case is a valid (one-interval) window."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=0.1, every=0.1, path=stat)
    _write(stat, 100, 100, 0)
    assert cpu.sample(0.0)
    _write(stat, 110, 110, 0)
    assert cpu.sample(0.1)
    share = cpu.shares(0.1)
    assert share is not None
    assert share.busy == pytest.approx(0.5)


def test_samples_a_hair_early_still_fill_the_longest_window(tmp_path: Path) -> None:
    """The event loop's timer may fire a hair before its interval: the ring keeps one
    sample beyond ``horizon / every`` intervals, so the longest window still spans its
    length instead of going None for good."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=1.0, every=0.1, path=stat)
    for k in range(21):
        _write(stat, 100 + 10 * k, 100 + 10 * k, 0)
        assert cpu.sample(k * 0.0999)
    share = cpu.shares(1.0)
    assert share is not None
    assert share.seconds >= 1.0
    assert share.busy == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("busy", "idle", "steal"),
    [
        (200, 95, 10),  # idle went back, busy forward: the total still grew
        (200, 300, 5),  # steal went back, the rest forward
    ],
)
def test_any_counter_that_went_back_gives_no_share(
    tmp_path: Path, busy: int, idle: int, steal: int
) -> None:
    """One counter going back (a CPU hotplugged out) while the total still grows would
    give a share above 1 or below 0: no share at all is shown instead."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=1.0, every=0.1, path=stat)
    _write(stat, 100, 100, 10)
    assert cpu.sample(0.0)
    _write(stat, busy, idle, steal)
    assert cpu.sample(0.5)
    assert cpu.shares(0.5) is None


def test_no_window_is_shown_once_sampling_failed(tmp_path: Path) -> None:
    """After an unreadable sample the windows are None, even those whose two samples
    were read before the failure: the figures would go stale without saying so."""
    stat = tmp_path / "stat"
    cpu = HostCpu(horizon=1.0, every=0.1, path=stat)
    _write(stat, 100, 100, 0)
    assert cpu.sample(0.0)
    _write(stat, 110, 110, 0)
    assert cpu.sample(0.5)
    assert cpu.shares(0.5) is not None
    stat.write_text("garbage\n")
    assert not cpu.sample(1.0)
    assert cpu.shares(0.5) is None
