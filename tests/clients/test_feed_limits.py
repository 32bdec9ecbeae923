"""``spikestream feed`` at its limits: a feed that is always late, stdin bytes that are
not UTF-8 or cannot be read, and flags that used to pass validation and crash (or spin)
only once connected.

Each bad input ends in one line naming what was expected and what arrived, before any
broker is reached where the flags alone say it; nothing spins deaf to Ctrl-C.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client import SpikestreamClient
from spikestream_client.codec import DEFAULT_MAX_INPUT_BYTES, encode_input
from spikestream_client.feed import (
    MAX_DIM,
    MAX_RATE,
    ArraySource,
    FeedOptions,
    FeedReport,
    SinSource,
    _stdin_reader,
    feed,
    feed_lines,
    make_source,
    parse_line,
    run,
)
from spikestream_client.names import NAME_RULE
from tests.brokers import Mosquitto
from tests.clients.conftest import cli, cli_env, run_cli

# Never reached: every refusal below comes before connecting.
NOWHERE = ("--broker", "mqtt://127.0.0.1:1", "--net", "fake", "--input", "u")


# ------------------------------------------------------------------- always late


class CountingSin(SinSource):
    """A sine that counts the samples it was asked for."""

    calls = 0

    def at(self, k: int) -> tuple[float, np.ndarray]:
        self.calls += 1
        return super().at(k)


class PlainSource:
    """A source without ``index_at``: the feed must search it with ``at`` alone."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.dim = 1
        self.calls = 0

    def at(self, k: int) -> tuple[float, np.ndarray]:
        self.calls += 1
        return k / self.rate, np.array([float(k)])


@pytest.mark.parametrize("make", [CountingSin, PlainSource])
async def test_a_late_feed_jumps_to_the_sample_due_now_in_one_step(make: type) -> None:
    """After a stall of 1000 s at 1000/s, the feed sends the sample due now, counting
    10**6 skipped at once; it stepped over them one by one (for ever, at --rate 1e7)."""
    source = make(1000.0) if make is PlainSource else make(rate=1000.0)
    now = [0.0]
    sent: list[float] = []

    def publish(x: np.ndarray, t: float | None) -> bool:
        sent.append(float(t or 0.0))
        now[0] += 1000.0 if len(sent) == 1 else 0.0005  # one long stall, then on time
        return True

    async def sleep(seconds: float) -> bool:
        now[0] += seconds
        return len(sent) >= 3

    report = await asyncio.wait_for(
        feed(
            source,
            publish,
            asyncio.Event(),
            timestamp="signal",
            clock=lambda: now[0],
            sleep=sleep,
        ),
        10,
    )
    assert sent[:2] == [0.0, pytest.approx(1000.0)]  # the sample due now, not the next one
    assert report.skipped == 10**6 - 1
    assert source.calls < 200  # a search, not a walk


async def test_an_always_late_feed_still_yields_to_the_event_loop() -> None:
    """A feed whose every send costs more than a sample interval never sleeps: it must
    still let the loop run, or Ctrl-C/SIGTERM (run by the loop) never stop it."""
    now = [0.0]
    stop = asyncio.Event()
    sends = 0

    async def signal_soon() -> None:  # runs only when the feed yields
        for _ in range(5):
            await asyncio.sleep(0)
        stop.set()  # what the SIGINT/SIGTERM handler does

    def publish(x: np.ndarray, t: float | None) -> bool:
        nonlocal sends
        sends += 1
        now[0] += 0.01  # 10 ms per send at 1000/s: always late
        assert sends < 10_000, "the feed never yielded to the event loop"
        return True

    signaller = asyncio.create_task(signal_soon())
    report = await asyncio.wait_for(
        feed(SinSource(rate=1000.0), publish, stop, clock=lambda: now[0]), 10
    )
    await signaller
    assert 1 <= report.sent <= 10
    assert report.skipped >= 9 * (report.sent - 1)  # ten samples come due per send


@pytest.mark.parametrize("loop", [False, True])
def test_index_at_is_the_last_sample_due(loop: bool) -> None:
    """``index_at`` agrees with ``at`` (due times with repeats, laps, rounding)."""
    rng = np.random.default_rng(7)
    offsets = np.cumsum(rng.choice([0.0, 0.001, 0.1, 0.3], size=40))
    offsets -= offsets[0]
    src = ArraySource(np.zeros((40, 1)), offsets=offsets, loop=loop)
    dues = [item[0] for k in range(200) if (item := src.at(k)) is not None]
    for t in [*rng.uniform(0, dues[-1], 300), *dues]:
        assert src.index_at(t) == max(k for k, due in enumerate(dues) if due <= t), t
    sin = SinSource(rate=1000.0)
    for t in [*rng.uniform(0, 1e6, 300), 0.3, 0.7, 1e5 + 0.001]:
        k = sin.index_at(t)
        assert k / 1000.0 <= t < (k + 1) / 1000.0


def test_looping_a_file_whose_times_are_all_equal_is_refused(tmp_path: Path) -> None:
    """Its lap takes 0 s: the feed looped for ever without waiting, deaf to Ctrl-C."""
    same = tmp_path / "same.csv"
    same.write_text("t,x\n5,1\n5,2\n5,3\n")
    with pytest.raises(ConfigError, match=r"same\.csv' with --loop: cannot loop 3 samples"):
        make_source(str(same), rate=10.0, loop=True)
    make_source(str(same), rate=10.0)  # played once, it is fine
    done = run_cli("feed", *NOWHERE, str(same), "--loop", timeout=30)
    assert done.returncode == 2, done.stderr
    assert "a lap of 0 s); expected times that increase" in done.stderr
    assert "Traceback" not in done.stderr


def test_rate_is_bounded_and_the_bound_is_in_the_help() -> None:
    for rate in ("1e7", "1001", "0", "nan", "-5"):
        done = run_cli("feed", *NOWHERE, "sin", "--rate", rate, timeout=30)
        assert done.returncode == 2, done.stderr
        assert f"--rate must be a number of messages per second in (0, {MAX_RATE:g}]" in (
            done.stderr
        )
        assert f"got {float(rate)}" in done.stderr
    shown = run_cli("feed", "--help").stdout
    assert f"at most {MAX_RATE:g}" in " ".join(shown.split())
    assert f"at most {MAX_DIM}" in " ".join(shown.split())


# ------------------------------------------------------------------------- stdin


def _read_all(stream: io.RawIOBase | io.BytesIO) -> list[object]:
    """Run the stdin reader on ``stream``; every item it queued (None last)."""

    async def go() -> list[object]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        reader = threading.Thread(
            target=_stdin_reader,
            args=(stream, queue, asyncio.get_running_loop()),
            daemon=True,
        )
        reader.start()
        items = [await asyncio.wait_for(queue.get(), 5)]
        while items[-1] is not None:
            items.append(await asyncio.wait_for(queue.get(), 5))
        return items

    return asyncio.run(go())


def test_a_line_that_is_not_utf8_is_one_invalid_line() -> None:
    with pytest.raises(ValueError, match=r"expected UTF-8 text, got b'\\xff' at position 2"):
        parse_line(b"0.\xff5\n", None)
    with pytest.raises(ValueError, match=r"expected UTF-8 text, got '\\udcff' at position 0"):
        parse_line("\udcff\n", None)  # what a surrogateescape decoder makes of 0xff
    items = _read_all(io.BytesIO(b"0.5\n\xff\xfe\n0.25"))
    assert items == [b"0.5\n", b"\xff\xfe\n", b"0.25", None]

    async def send(items: list[object]) -> tuple[FeedReport, list[float], list[str]]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        sent: list[float] = []
        warnings: list[str] = []
        report = await feed_lines(
            queue,  # type: ignore[arg-type]
            lambda x, t: sent.append(float(x[0])) is None,
            asyncio.Event(),
            rate=1000.0,
            warn=warnings.append,
        )
        return report, sent, warnings

    report, sent, warnings = asyncio.run(send(items))
    assert sent == [0.5, 0.25]
    assert report.invalid == 1
    assert warnings == [
        "feed: skipping line b'\\xff\\xfe': expected UTF-8 text, got b'\\xff' at position 0 "
        "(invalid start byte)"
    ]


class FailingStream(io.RawIOBase):
    """One line, then a read error (a terminal gone: EIO)."""

    def __init__(self) -> None:
        self.lines = [b"0.5\n"]

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        if self.lines:
            return self.lines.pop()
        raise OSError(5, "Input/output error")


def test_a_read_error_is_reported_and_the_end_is_still_queued() -> None:
    """The reader caught only RuntimeError/ValueError: a read error (or a decoding one,
    a ValueError) ended it without queueing the end, and the feed waited for ever."""
    items = _read_all(FailingStream())
    assert items[0] == b"0.5\n"
    assert isinstance(items[1], OSError)
    assert items[2:] == [None]
    report = FeedReport(sent=1, elapsed=1.0, read_error="[Errno 5] Input/output error")
    assert report.summary("t").endswith("feed: reading stdin failed: [Errno 5] Input/output error")


@pytest.mark.broker
@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_feed_stdin_survives_bytes_that_are_not_utf8(mosquitto: Mosquitto, errors: str) -> None:
    """With a strict decoder the feed stalled (the end never queued, the good lines of
    the buffer lost); with surrogateescape it died with a UnicodeEncodeError traceback."""
    env = {**cli_env(), "PYTHONIOENCODING": f"utf-8:{errors}", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        cli("feed", "--broker", mosquitto.url(), "--net", "fake", "--no-check", "--input", "u",
            "stdin", "--rate", "500"),
        input=b"0.5\n\xff\xfe\n0.25\n",
        capture_output=True,
        timeout=30,
        env=env,
        check=False,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "sent 2 values" in stderr
    assert "unparsable lines 1" in stderr


# -------------------------------------------------------------- seed, dim, budget


def test_max_dim_is_the_most_one_message_holds() -> None:
    assert len(encode_input(np.ones(MAX_DIM), t=1.0)) <= DEFAULT_MAX_INPUT_BYTES
    assert len(encode_input(np.ones(MAX_DIM + 1), t=1.0)) > DEFAULT_MAX_INPUT_BYTES
    with pytest.raises(ConfigError, match=rf"--dim: 10000000 values per message .* 1 to {MAX_DIM}"):
        make_source("noise", rate=10.0, dim=10**7)  # allocated 76 GiB at the first sample
    with pytest.raises(ConfigError, match=r"--value: 8000 values per message"):
        make_source("constant", rate=10.0, value=[0.0] * 8000)
    with pytest.raises(ConfigError, match=r"--seed: -1 is not allowed; expected an integer >= 0"):
        make_source("noise", rate=10.0, seed=-1)
    with pytest.raises(ValueError, match=rf"line of {MAX_DIM + 1} values; expected at most"):
        parse_line(" ".join(["1"] * (MAX_DIM + 1)), None)


def test_wide_files_are_refused(tmp_path: Path) -> None:
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((2, MAX_DIM + 1)))
    with pytest.raises(ConfigError, match=rf"the rows of '.*wide\.npy': {MAX_DIM + 1} values"):
        make_source(str(wide), rate=10.0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["noise", "--seed", "-1"], "--seed: -1 is not allowed; expected an integer >= 0"),
        (["noise", "--dim", str(10**7)], "--dim: 10000000 values per message is not allowed"),
        (["stdin", "--dim", "0"], "--dim: 0 values per message is not allowed"),
        # Found only once connected (the topic built as the events were subscribed to),
        # where the client's exit could hang; 'u.x' and 'a b' were not found at all.
        (["sin", "--input", ""], f"--input: '' is not a name; expected {NAME_RULE}"),
        (["sin", "--input", "u.x"], "--input: 'u.x' is not a name; expected 1-64 characters"),
        (["sin", "--input", "u/v"], "--input: 'u/v' is not a name; expected"),
        (["sin", "--net", "a b"], "--net: 'a b' is not a name; expected"),
        (["sin", "--net", "n" * 65], f"--net: '{'n' * 65}' is not a name; expected"),
    ],
)
def test_bad_feed_flags_are_refused_before_connecting(flags: list[str], message: str) -> None:
    done = run_cli("feed", *NOWHERE, *flags, timeout=30)
    assert done.returncode == 2, done.stderr
    # One line, and from the flags alone: not a connection error from the broker.
    assert done.stderr.startswith(f"spikestream feed: error: {message}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.broker
async def test_closing_the_client_ends_when_its_link_loses_a_cancellation(
    mosquitto: Mosquitto,
) -> None:
    """The feed's exit hung about 1 run in 20, deaf to SIGTERM: on Python 3.11
    ``asyncio.wait_for`` (under aiomqtt's subscribe) swallows a cancellation that meets
    the SUBACK, so the link's session setup survived the stop and its session never
    ended. That race cannot be forced; a connect hook that swallows one cancellation
    leaves the link in the same state, deterministically: close() used to wait for it
    for ever. The link's session now cancels its tasks until they end."""
    client = SpikestreamClient(mosquitto.url(), role="feed")
    await client.start(wait=False)
    link = client._link
    assert link is not None
    in_hook = asyncio.Event()
    swallowed = asyncio.Event()

    async def swallow_one_cancellation() -> None:
        in_hook.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # and return, as wait_for returns the SUBACK's result

    link.add_connect_hook(swallow_one_cancellation)
    await client.wait_connected(10)
    await asyncio.wait_for(in_hook.wait(), 10)
    async with asyncio.timeout(4.0):
        await client.close()
    assert swallowed.is_set()  # the state of the hang was reached
    assert client._task is not None
    assert client._task.done()
    assert not client.connected
    assert link.statistics().connects == 1
    # Cancelled, the link still said goodbye: the broker saw a DISCONNECT, not a drop.
    clean = f"Client {client.client_id} disconnected"
    for _ in range(100):
        if mosquitto.count_in_log(clean):
            break
        await asyncio.sleep(0.05)
    assert mosquitto.count_in_log(clean) == 1, mosquitto.log_text()[-2000:]


@pytest.mark.broker
@pytest.mark.parametrize("signal", ["sin", "stdin"])
async def test_a_described_dim_beyond_one_message_is_refused(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, signal: str
) -> None:
    """A dim from the describe document is bounded as --dim is."""
    described = SimpleNamespace(inputs={"u": SimpleNamespace(dim=MAX_DIM + 1)})

    async def find_network(*args: object) -> SimpleNamespace:
        return described

    monkeypatch.setattr("spikestream_client.feed.find_network", find_network)
    options = FeedOptions(
        net="fake", input="u", signal=signal, broker=mosquitto.url(), duration=0.2, quiet=True
    )
    with pytest.raises(ConfigError, match=rf"input 'u' of 'fake': {MAX_DIM + 1} values per"):
        await asyncio.wait_for(run(options, asyncio.Event()), 20)


def test_a_budget_under_one_byte_is_refused_showing_the_value(tmp_path: Path) -> None:
    """1e-9 MiB rounds to 0 bytes; the refusal did not say which value it refused."""
    out = str(tmp_path / "x.npz")
    done = run_cli("record", *NOWHERE[:4], "--out", out, "--max-mib", "1e-9", timeout=30)
    assert done.returncode == 2, done.stderr
    assert "--max-mib must be a finite number of MiB > 0" in done.stderr
    assert "got 1e-09" in done.stderr
