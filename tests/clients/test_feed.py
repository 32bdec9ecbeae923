"""``spikestream feed``: signals, drift-free pacing, and the service following the feed."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client import SpikestreamClient
from spikestream_client.codec import ValueFrame, decode_input
from spikestream_client.feed import (
    ArraySource,
    ConstantSource,
    FeedReport,
    NoiseSource,
    SinSource,
    SquareSource,
    Timestamp,
    feed,
    feed_lines,
    load_samples,
    make_source,
    parse_line,
)
from tests.brokers import Mosquitto
from tests.clients.conftest import SeedService, cli, cli_env, run_cli, wait_online
from tests.serving import SEED, Listener, ServeProcess

# ----------------------------------------------------------------------------- signals


def test_sin_is_sampled_at_scheduled_times() -> None:
    src = SinSource(rate=100.0, freq=2.0, amp=0.5, offset=0.1, dim=2)
    due, x = src.at(13)
    assert due == pytest.approx(0.13)
    expected = 0.1 + 0.5 * np.sin(2 * np.pi * 2.0 * 0.13 + np.array([0.0, np.pi]))
    np.testing.assert_allclose(x, expected)


def test_square_constant_and_noise() -> None:
    square = SquareSource(rate=100.0, freq=1.0, amp=2.0, duty=0.25)
    values = np.array([square.at(k)[1][0] for k in range(100)])
    assert set(values.tolist()) == {2.0, -2.0}
    assert np.count_nonzero(values > 0) == 25
    const = ConstantSource(rate=10.0, value=np.array([0.5, -0.5]))
    assert const.dim == 2
    np.testing.assert_array_equal(const.at(7)[1], [0.5, -0.5])
    a, b = NoiseSource(50.0, seed=3, dim=2), NoiseSource(50.0, seed=3, dim=2)
    # Sample k does not depend on which samples were read (skipped) before it.
    np.testing.assert_array_equal(a.at(2000)[1], b.at(2000)[1])
    np.testing.assert_array_equal(a.at(5)[1], NoiseSource(50.0, seed=3, dim=2).at(5)[1])
    assert not np.array_equal(a.at(5)[1], NoiseSource(50.0, seed=4, dim=2).at(5)[1])
    draws = np.array([a.at(k)[1] for k in range(4000)])
    assert abs(draws.mean()) < 0.1
    assert 0.9 < draws.std() < 1.1


def test_files_csv_npy_and_timed_csv(tmp_path: Path) -> None:
    npy = tmp_path / "x.npy"
    np.save(npy, np.array([[0.1, 0.2], [0.3, 0.4]]))
    values, offsets, t0 = load_samples(npy)
    assert values.shape == (2, 2)
    assert offsets is None
    assert t0 is None
    plain = tmp_path / "plain.csv"
    plain.write_text("1.0\n2.0\n3.0\n")
    src, _ = make_source(str(plain), rate=10.0)
    assert [src.at(k) is not None for k in range(4)] == [True, True, True, False]
    assert src.at(2) == (pytest.approx(0.2), pytest.approx(np.array([3.0])))
    timed = tmp_path / "timed.csv"
    timed.write_text("t,x,y\n5.0,1,10\n5.1,2,20\n5.4,3,30\n")
    src, t0 = make_source(str(timed), rate=10.0, loop=True)
    assert t0 == 5.0
    assert isinstance(src, ArraySource)
    offsets_seen = [round(src.at(k)[0], 6) for k in range(6)]  # type: ignore[index]
    period = 0.4 + 0.2  # last time + median step
    assert offsets_seen == pytest.approx([0.0, 0.1, 0.4, period, period + 0.1, period + 0.4])
    np.testing.assert_array_equal(src.at(4)[1], [2.0, 20.0])  # type: ignore[index]


def test_bad_signals_say_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown signal 'triangle'.*sin, square"):
        make_source("triangle", rate=10)
    with pytest.raises(ConfigError, match="does not exist"):
        make_source(str(tmp_path / "missing.npy"), rate=10)
    with pytest.raises(ConfigError, match="--value"):
        make_source("constant", rate=10)
    with pytest.raises(ConfigError, match="rate"):
        make_source("sin", rate=0)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1.0, np.nan]))
    with pytest.raises(ConfigError, match="NaN"):
        make_source(str(bad), rate=10)


def test_stdin_lines() -> None:
    np.testing.assert_array_equal(parse_line("0.5\n", None), [0.5])
    np.testing.assert_array_equal(parse_line(" 1, 2 3\n", None), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(parse_line('{"t": 1, "x": [1, 2]}', None), [1.0, 2.0])
    assert parse_line("  # comment", 1) is None
    assert parse_line("\n", 1) is None
    with pytest.raises(ValueError, match="expected 1 values"):
        parse_line("1 2", 1)
    with pytest.raises(ValueError, match="finite"):
        parse_line("nan", None)


# ----------------------------------------------------------------------------- pacing


class FakeTime:
    """A monotonic clock that advances only when the feed sleeps, by the requested time
    plus a fixed oversleep (like a real timer), and by stalls the test injects."""

    def __init__(self, oversleep: float) -> None:
        self.now = 1000.0
        self.oversleep = oversleep
        self.stalls: dict[int, float] = {}  # after the k-th send, jump this many seconds
        self.sends: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> bool:
        self.now += seconds + self.oversleep
        return False

    def publish(self, x: np.ndarray, t: float | None) -> bool:
        self.sends.append(self.now)
        self.now += self.stalls.pop(len(self.sends), 0.0)
        return True


async def test_pacing_uses_absolute_deadlines_without_drift() -> None:
    fake = FakeTime(oversleep=0.003)  # every sleep overshoots by 3 ms
    report = await feed(
        SinSource(rate=100.0),
        fake.publish,
        asyncio.Event(),
        duration=10.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    sends = np.array(fake.sends) - 1000.0
    assert report.sent == 1000
    assert report.skipped == 0
    # Adding up sleeps would put the last send 1000 * 3 ms = 3 s late; absolute deadlines
    # keep every send within one oversleep of its own deadline.
    lateness = sends - np.arange(1000) / 100.0
    assert lateness.max() <= 0.0031
    assert lateness.min() >= 0.0
    assert report.late_max == pytest.approx(0.003, abs=1e-6)


async def test_a_stall_skips_stale_samples_instead_of_bursting() -> None:
    fake = FakeTime(oversleep=0.0)
    fake.stalls = {100: 0.5}  # the machine freezes for half a second after sample 99
    sent: list[float] = []

    def publish(x: np.ndarray, t: float | None) -> bool:
        sent.append(float(t or 0.0))
        return fake.publish(x, t)

    report = await feed(
        SinSource(rate=100.0),
        publish,
        asyncio.Event(),
        duration=2.0,
        timestamp="signal",
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert report.skipped == 49  # samples 100..148 were superseded by 149
    assert report.sent == 200 - 49
    assert sent[100] == pytest.approx(1.49)  # the newest due sample, not the oldest
    assert report.elapsed == pytest.approx(1.99 + 0.0, abs=0.011)


@pytest.mark.parametrize(
    ("stall", "oversleep", "least"),
    [(0.0, 0.0, 999), (0.25, 0.0, 749), (0.0, 0.0003, 999), (0.0, 0.0011, 900)],
)
async def test_a_timed_file_is_capped_at_the_rate_sending_the_newest_row_due(
    stall: float, oversleep: float, least: int
) -> None:
    """A timed file of rows 10 us apart (100,000 in 1 s) went out at every row's time, at
    whatever rate the loop reached, past MAX_RATE. Capped at 1000/s: at most one send per
    1 ms cell, each the newest row due at its time, the rest counted as skipped; a stall
    is not made up by a burst, and timers that wake late lose few cells: even 1.1 ms
    late every time (asyncio's round up to the millisecond), at least 900 of 1000 go
    out (478 when a send more than a cell late moved the grid)."""
    rows = 100_000
    offsets = np.arange(rows) * 1e-5
    source = ArraySource(np.arange(rows, dtype=np.float64)[:, None], offsets=offsets)
    fake = FakeTime(oversleep=oversleep)
    fake.stalls = {10: stall} if stall else {}
    sent: list[float] = []

    def publish(x: np.ndarray, t: float | None) -> bool:
        sent.append(float(x[0]))
        return fake.publish(x, t)

    report = await feed(
        source, publish, asyncio.Event(), clock=fake.clock, sleep=fake.sleep, min_gap=1e-3
    )
    times = np.array(fake.sends) - 1000.0
    assert report.sent == len(sent) <= 1001
    assert report.sent >= least
    assert report.sent + report.skipped == rows
    # Never ahead of the grid: by time t, at most floor(t / 1 ms) + 1 sends.
    assert np.all(times >= np.arange(len(times)) * 1e-3 - 1e-9)
    # Each send is the newest row due at its time (the times are the feed's own offsets).
    np.testing.assert_array_equal(sent, np.searchsorted(offsets, times, "right") - 1)
    assert report.late_max <= stall + oversleep + 1e-9


async def test_a_capped_feed_ends_at_its_duration() -> None:
    """A row due just before --duration but held back by the cap to a cell at or past
    it is not sent: nothing goes out at or after the duration, as for any signal."""
    rows = 1000
    source = ArraySource(np.zeros((rows, 1)), offsets=np.arange(rows) * 1e-3)
    fake = FakeTime(oversleep=0.0)
    report = await feed(
        source,
        fake.publish,
        asyncio.Event(),
        duration=0.2,
        clock=fake.clock,
        sleep=fake.sleep,
        min_gap=0.02,
    )
    times = np.array(fake.sends) - 1000.0
    assert report.sent == 10  # cells 0, 20, ..., 180 ms
    assert times.max() < 0.2


class Arrivals(asyncio.Queue[str | None]):
    """Stdin lines that arrive ``gaps[k]`` seconds (on a :class:`FakeTime`) after the
    feed asks for line ``k``: 0 is a line already waiting in the pipe."""

    def __init__(self, fake: FakeTime, lines: list[str], gaps: list[float]) -> None:
        super().__init__()
        self.fake = fake
        self.gaps = list(gaps)
        for line in [*lines, None]:
            self.put_nowait(line)

    async def get(self) -> str | None:
        line = await super().get()
        if line is not None:
            self.fake.now += self.gaps.pop(0)
        return line


async def feed_fake_lines(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeTime,
    gaps: list[float],
    *,
    rate: float,
    timestamp: Timestamp = "none",
) -> tuple[FeedReport, list[float | None]]:
    """Feed one line per gap through :func:`feed_lines` on ``fake``'s clock, with the
    feed's sleeps on it too; the timestamps sent, in order."""

    async def sleep(stop: asyncio.Event, seconds: float) -> bool:
        await fake.sleep(seconds)
        return stop.is_set()

    monkeypatch.setattr("spikestream_client.feed.interruptible_sleep", sleep)
    stamps: list[float | None] = []

    def publish(x: np.ndarray, t: float | None) -> bool:
        stamps.append(t)
        return fake.publish(x, t)

    lines = Arrivals(fake, [f"{k}\n" for k in range(len(gaps))], gaps)
    report = await feed_lines(
        lines,  # type: ignore[arg-type]
        publish,
        asyncio.Event(),
        rate=rate,
        timestamp=timestamp,
        clock=fake.clock,
    )
    return report, stamps


async def test_stdin_lines_go_as_they_arrive_at_most_rate_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines already waiting (a file piped in) were queued at once and went out in a
    burst if the feed forgot the previous line's slot; CLIENTS.md says stdin is sent as
    it arrives, at most ``--rate``: waiting lines go 1/rate apart without drift (from
    slots, not by adding up sleeps), and a line arriving after a pause goes at once."""
    fake = FakeTime(oversleep=0.003)  # every sleep overshoots by 3 ms
    gaps = [0.0] * 5 + [0.5] + [0.0] * 4  # five waiting, a pause, four more waiting
    report, _ = await feed_fake_lines(monkeypatch, fake, gaps, rate=50.0)
    assert (report.sent, report.failed, report.invalid) == (10, 0, 0)
    sends = np.array(fake.sends) - 1000.0
    assert np.all(np.diff(sends) >= 0.02 - 1e-9)  # never more than 50/s
    slots = np.r_[np.arange(5) * 0.02, 0.5 + 0.083 + np.arange(5) * 0.02]
    # Each within one oversleep of its slot; the sixth, after the pause, at its arrival
    # (the fifth went at 0.083 s, its slot plus the oversleep).
    lateness = sends - slots
    assert lateness.min() >= -1e-9
    assert lateness.max() <= 0.0031
    assert lateness[5] == pytest.approx(0.0)


@pytest.mark.parametrize("timestamp", ["none", "wall", "signal"])
async def test_stdin_timestamps_are_the_chosen_clock(
    monkeypatch: pytest.MonkeyPatch, timestamp: Timestamp
) -> None:
    """``--timestamp signal`` on stdin sent the Unix time like ``wall`` if the feed
    ignored the choice; the signal time of a line is its slot: seconds since the first
    line, on the feed's own schedule (what a generated signal sends, its offset)."""
    fake = FakeTime(oversleep=0.003)
    before = time.time()
    _, stamps = await feed_fake_lines(
        monkeypatch, fake, [0.0, 0.0, 0.0, 0.25, 0.0], rate=10.0, timestamp=timestamp
    )
    after = time.time()
    if timestamp == "none":
        assert stamps == [None] * 5
    elif timestamp == "wall":
        assert all(t is not None and before <= t <= after for t in stamps)
    else:
        # Slots 0, 0.1, 0.2; the fourth line arrives 0.25 s after the third was sent
        # (0.203: its slot plus the oversleep), and goes at once; the fifth 0.1 later.
        assert stamps == pytest.approx([0.0, 0.1, 0.2, 0.453, 0.553])
        np.testing.assert_allclose(
            np.array(fake.sends) - 1000.0, [0.0, 0.103, 0.203, 0.453, 0.556], atol=1e-9
        )


# ----------------------------------------------------------------------------- tools


async def test_file_and_stdin_feeds_publish_in_order(mosquitto: Mosquitto, tmp_path: Path) -> None:
    topic = "spikestream/fake/in/u"
    npy = tmp_path / "five.npy"
    np.save(npy, np.arange(10.0).reshape(5, 2))
    timed = tmp_path / "timed.csv"
    timed.write_text("time,x\n10.0,1\n10.2,2\n10.5,3\n")  # t0 10 s: its times, not offsets
    async with Listener(mosquitto.host, mosquitto.port, [topic]) as listener:
        done = await asyncio.to_thread(
            run_cli, "feed", "--broker", mosquitto.url(), "--net", "fake", "--no-check",
            "--input", "u",
            str(npy), "--rate", "50",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "sent 5 values" in done.stderr
        await listener.wait_for(lambda ms: len(ms) >= 5, 5, "5 samples")
        got = [decode_input(m.payload, 2).x.tolist() for m in listener.messages]
        assert got == np.arange(10.0).reshape(5, 2).tolist()

        listener.messages.clear()
        done = await asyncio.to_thread(
            run_cli, "feed", "--broker", mosquitto.url(), "--net", "fake", "--no-check",
            "--input", "u",
            str(timed), "--timestamp", "signal",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        await listener.wait_for(lambda ms: len(ms) >= 3, 5, "3 timed samples")
        samples = [decode_input(m.payload, 1) for m in listener.messages]
        assert [s.x[0] for s in samples] == [1.0, 2.0, 3.0]
        assert [s.t for s in samples] == pytest.approx([10.0, 10.2, 10.5])  # the file's times
        arrivals = np.array([m.received for m in listener.messages])
        np.testing.assert_allclose(np.diff(arrivals), [0.2, 0.3], atol=0.05)

        # Rows 1 ms apart, capped at 50/s: one row in 20 goes out, each the newest due.
        dense = tmp_path / "dense.csv"
        dense.write_text("t,x\n" + "".join(f"{k / 1000},{k}\n" for k in range(500)))
        listener.messages.clear()
        done = await asyncio.to_thread(
            run_cli, "feed", "--broker", mosquitto.url(), "--net", "fake", "--no-check",
            "--input", "u",
            str(dense), "--rate", "50",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "at its rows' times, at most 50/s" in done.stderr
        report = re.search(r"sent (\d+) values .* skipped (\d+)", done.stderr)
        assert report is not None, done.stderr
        sent, skipped = int(report[1]), int(report[2])
        assert 5 <= sent <= 26, done.stderr  # one per 20 ms cell of 0.5 s, at most
        assert sent + skipped == 500, done.stderr
        await listener.wait_for(lambda ms: len(ms) >= sent, 5, f"{sent} capped samples")
        values = [decode_input(m.payload, 1).x[0] for m in listener.messages]
        assert np.all(np.diff(values) > 0), values  # the newest row due, each time
        assert values[-1] == 499.0  # the last row always goes out

        listener.messages.clear()
        done = await asyncio.to_thread(
            run_cli, "feed", "--broker", mosquitto.url(), "--net", "fake", "--no-check",
            "--input", "u",
            "stdin", "--rate", "200",
            stdin="0.5\n# a comment\n1 2\nbanana\n-0.25\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "sent 2 values" in done.stderr
        assert "unparsable lines 2" in done.stderr
        await listener.wait_for(lambda ms: len(ms) >= 2, 5, "2 stdin samples")
        assert [decode_input(m.payload, 1).x[0] for m in listener.messages] == [0.5, -0.25]


async def _u_values(client: SpikestreamClient, seconds: float) -> np.ndarray:
    """The ``u`` probe's per-tick values over the next ``seconds`` of frames."""
    stream = client.frames("seed", "u")
    chunks: list[np.ndarray] = []
    ticks = 0
    async with stream, asyncio.timeout(seconds + 10):
        async for frame in stream:
            assert isinstance(frame, ValueFrame)
            chunks.append(frame.data[:, 0].copy())
            ticks += frame.header.ticks
            if ticks * frame.header.dt >= seconds:
                break
    return np.concatenate(chunks)


async def test_feed_drives_the_service_input(seed_service: SeedService) -> None:
    """The ``u`` probe (the input value at each tick) follows what ``feed`` sends."""
    base = ("feed", "--broker", seed_service.url, "--net", "seed", "--input", "u")
    async with SpikestreamClient(seed_service.url) as client:
        u = client.frames("seed", "u")
        await client.sync()
        proc = await asyncio.create_subprocess_exec(
            *cli(*base, "sin", "--freq", "2", "--amp", "0.8", "--rate", "200", "--duration", "6"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        try:
            async with asyncio.timeout(15):  # wait until the sine arrives
                async for frame in u:
                    assert isinstance(frame, ValueFrame)
                    if np.ptp(frame.data) > 0.01:
                        break
            u.close()
            values = await _u_values(client, 1.5)
        finally:
            proc.send_signal(signal.SIGTERM)  # stops cleanly, before --duration
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert "sent " in stderr.decode()
    assert 0.7 < values.max() <= 0.8 + 1e-6
    assert -0.8 - 1e-6 <= values.min() < -0.7
    # A 2 Hz sine crosses zero 4 times a second.
    crossings = np.count_nonzero(np.diff(np.signbit(values)))
    assert 4 <= crossings <= 8, crossings
    assert np.all(np.abs(values) <= 0.8 + 1e-6)

    done = await asyncio.to_thread(
        run_cli, *base, "constant", "--value", "0.3", "--rate", "50", "--duration", "1.0"
    )
    assert done.returncode == 0, done.stderr
    assert "rejected by the service 0" in done.stderr
    assert "is not online" not in done.stderr
    assert "is offline" not in done.stderr
    async with SpikestreamClient(seed_service.url) as client:
        values = await _u_values(client, 0.2)
    np.testing.assert_array_equal(values, np.float32(0.3))  # the service holds the last value


async def test_feeding_a_network_that_is_offline_says_so(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Values fed to a stopped service went to the broker without a word ("sent 354 values
    ... rejected by the service 0"): nothing read them. feed says so from the start."""
    service = ServeProcess(SEED, mosquitto.url(), workdir=tmp_path).start()
    await wait_online(mosquitto.url(), "seed", service)
    assert service.stop() == 0  # its retained status is now offline; describe stays
    done = await asyncio.to_thread(
        run_cli, "feed", "--broker", mosquitto.url(), "--net", "seed", "--input", "u",
        "constant", "--value", "0.3", "--rate", "20", "--duration", "0.3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "feed: network 'seed' is offline (its retained status): values are sent, but no "
        "service takes them until it is online"
    ) in done.stderr


def test_feed_help_lists_the_signals() -> None:
    done = run_cli("feed", "--help")
    assert done.returncode == 0
    for word in ("sin", "square", "constant", "noise", "stdin", "--rate", "--duration"):
        assert word in done.stdout
    bad = run_cli("feed", "--net", "seed", "--input", "u", "triangle", "--broker", "mqtt://x:1")
    assert bad.returncode == 2
    assert "unknown signal 'triangle'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_report_summary_is_one_readable_line() -> None:
    text = FeedReport(sent=10, elapsed=0.1, late_max=0.002).summary("spikestream/seed/in/u")
    assert text.startswith("feed: sent 10 values to spikestream/seed/in/u in 0.10 s (100.0/s)")
    assert "\n" not in text
