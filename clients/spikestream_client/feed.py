"""``spikestream feed``: publish a signal to one input of a running service.

Signals (:func:`make_source`):

* ``sin``: ``offset + amp * sin(2π freq t + 2π i / dim)`` (component ``i`` of ``dim``);
* ``square``: ``offset ± amp`` at ``freq`` Hz, high for the first ``duty`` of each period;
* ``constant``: ``value`` (a number or a comma-separated vector);
* ``noise``: ``offset + amp * N(0, 1)``, seeded, reproducible sample by sample;
* a ``.npy`` file (``(samples,)`` or ``(samples, dim)``) or a CSV file (one sample per
  row; a header whose first column is ``t`` or ``time`` makes the rows play at those
  times instead of at ``rate``), replayed in time, optionally looped;
* ``stdin``: one value or vector per line (numbers separated by spaces or commas, or
  JSON), sent as lines arrive, at most ``rate`` per second.

Timing: sample ``k`` is due at ``start + offset_k`` on the monotonic clock
(``offset_k = k / rate`` for generated signals), so errors never accumulate. When the
feed falls behind (a stalled machine), samples that are already superseded by a newer
due sample are skipped and counted rather than sent in a burst. Signal values are
computed at the scheduled time ``offset_k``, not at the (jittered) send time.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from spikestream_client.aio import First, first_of
from spikestream_client.client import SpikestreamClient
from spikestream_client.codec import (
    DEFAULT_MAX_INPUT_BYTES,
    OversizePayload,
    PayloadRejected,
    decode_input,
    topics,
)
from spikestream_client.errors import ConfigError
from spikestream_client.safetext import printable
from spikestream_client.tool import find_network, interruptible_sleep, run_tool

__all__ = [
    "SIGNALS",
    "ArraySource",
    "ConstantSource",
    "FeedOptions",
    "FeedReport",
    "NoiseSource",
    "SinSource",
    "Source",
    "SquareSource",
    "feed",
    "load_samples",
    "main",
    "make_source",
    "parse_line",
]

FloatArray = npt.NDArray[np.float64]
Timestamp = Literal["none", "wall", "signal"]
SIGNALS: Final = ("sin", "square", "constant", "noise", "stdin")
"""Signal names; anything else is taken as a ``.npy``/``.csv`` file path."""
_NOISE_BLOCK: Final = 1024
_SEPARATORS: Final = re.compile(r"[\s,]+")


class Source(Protocol):
    """A signal indexed by sample number: :meth:`at` gives ``(offset_s, x)`` or None at
    the end. ``offset_s`` is when the sample is due, in seconds after the start, and
    must not decrease with ``k``."""

    dim: int

    def at(self, k: int) -> tuple[float, FloatArray] | None:
        """Sample ``k`` (``k`` >= 0), or None after the last one."""
        ...


@dataclass
class SinSource:
    """``offset + amp * sin(2π freq t + 2π i / dim)`` sampled at ``rate`` Hz."""

    rate: float
    freq: float = 1.0
    amp: float = 1.0
    offset: float = 0.0
    dim: int = 1

    def at(self, k: int) -> tuple[float, FloatArray]:
        """Sample ``k``, due at ``k / rate``."""
        t = k / self.rate
        phases = 2.0 * math.pi * np.arange(self.dim) / self.dim
        return t, self.offset + self.amp * np.sin(2.0 * math.pi * self.freq * t + phases)


@dataclass
class SquareSource:
    """``offset + amp`` for the first ``duty`` of each period of ``1/freq`` s, else
    ``offset - amp``; component ``i`` is shifted by ``i / dim`` of a period."""

    rate: float
    freq: float = 1.0
    amp: float = 1.0
    offset: float = 0.0
    duty: float = 0.5
    dim: int = 1

    def at(self, k: int) -> tuple[float, FloatArray]:
        """Sample ``k``, due at ``k / rate``."""
        t = k / self.rate
        phase = np.mod(self.freq * t + np.arange(self.dim) / self.dim, 1.0)
        return t, self.offset + self.amp * np.where(phase < self.duty, 1.0, -1.0)


@dataclass
class ConstantSource:
    """The same ``value`` at every sample."""

    rate: float
    value: FloatArray
    dim: int = field(init=False)

    def __post_init__(self) -> None:
        self.value = np.atleast_1d(np.asarray(self.value, dtype=np.float64))
        self.dim = int(self.value.size)

    def at(self, k: int) -> tuple[float, FloatArray]:
        """Sample ``k``, due at ``k / rate``."""
        return k / self.rate, self.value


class NoiseSource:
    """White Gaussian noise ``offset + amp * N(0, 1)``, reproducible from ``seed``.

    Samples are drawn in blocks of 1024 from ``default_rng([seed, block])``, so sample
    ``k`` is the same whatever was skipped before it.
    """

    def __init__(
        self, rate: float, *, amp: float = 1.0, offset: float = 0.0, seed: int = 0, dim: int = 1
    ) -> None:
        self.rate = rate
        self.amp = amp
        self.offset = offset
        self.seed = seed
        self.dim = dim
        self._block = -1
        self._values: FloatArray = np.zeros((0, dim))

    def at(self, k: int) -> tuple[float, FloatArray]:
        """Sample ``k``, due at ``k / rate``."""
        block, row = divmod(k, _NOISE_BLOCK)
        if block != self._block:
            rng = np.random.default_rng([self.seed, block])
            self._values = self.offset + self.amp * rng.standard_normal((_NOISE_BLOCK, self.dim))
            self._block = block
        return k / self.rate, self._values[row]


class ArraySource:
    """Rows of an array replayed in time.

    Args:
        values: ``(samples, dim)``.
        offsets: When each row is due (s after the start, non-decreasing), or None for
            ``k / rate``.
        rate: Samples per second when ``offsets`` is None.
        loop: Start again after the last row (the period is the file's length plus one
            sample interval).
    """

    def __init__(
        self,
        values: FloatArray,
        *,
        offsets: FloatArray | None = None,
        rate: float = 100.0,
        loop: bool = False,
    ) -> None:
        self.values = values
        self.dim = int(values.shape[1])
        n = values.shape[0]
        if offsets is None:
            offsets = np.arange(n, dtype=np.float64) / rate
            period = n / rate
        else:
            step = float(np.median(np.diff(offsets))) if n > 1 else 1.0 / rate
            period = float(offsets[-1]) + step
        self.offsets = offsets
        self.period = period
        self.loop = loop

    def at(self, k: int) -> tuple[float, FloatArray] | None:
        """Row ``k`` (modulo the length when looping)."""
        n = self.values.shape[0]
        lap, row = divmod(k, n)
        if lap and not self.loop:
            return None
        return lap * self.period + float(self.offsets[row]), self.values[row]


def load_samples(path: Path) -> tuple[FloatArray, FloatArray | None, float | None]:
    """Read a ``.npy`` or CSV file of samples.

    Returns:
        ``(values (samples, dim), offsets or None, t0 or None)``. CSV files whose first
        row names ``t`` or ``time`` as its first column give per-row times: offsets are
        relative to the first row, ``t0`` is the first row's time.

    Raises:
        ConfigError: Unreadable file, wrong shape, no samples, or non-finite values.
    """
    where = str(path)
    try:
        if path.suffix.lower() == ".npy":
            data, times = _read_npy(path), None
        else:
            data, times = _read_csv(path)
    except ConfigError:
        raise  # already says what is wrong with the file
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read samples from {where!r}: {err}") from None
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        msg = (
            f"{where!r} holds an array of shape {data.shape}; expected (samples,) or (samples, dim)"
        )
        raise ConfigError(msg)
    if not np.all(np.isfinite(data)):
        raise ConfigError(f"{where!r} holds NaN or infinite values; inputs must be finite")
    if times is None:
        return data, None, None
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise ConfigError(f"the time column of {where!r} must be finite and non-decreasing")
    return data, times - times[0], float(times[0])


def _read_npy(path: Path) -> FloatArray:
    """The samples of a ``.npy`` file as float64, its header checked before any data is
    read: a real dtype (kind ``f``, ``i``, ``u`` or ``b``; complex values would lose their
    imaginary part, datetimes become counts, structured ones do not convert) and a shape
    that the file's size holds, so a header claiming 10**12 elements allocates nothing.

    Raises:
        ConfigError: The header is not a real array the file holds.
        ValueError, OSError: The file is not a readable ``.npy`` file.
    """
    fmt = np.lib.format
    with path.open("rb") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        offset = fh.tell()
        size = path.stat().st_size
        if dtype.kind not in "fiub" or dtype.hasobject or dtype.fields is not None:
            raise ConfigError(
                f"{str(path)!r} holds {dtype} values; expected real numbers (a float, "
                "integer or bool dtype)"
            )
        expected = math.prod(shape) * dtype.itemsize
        if expected != size - offset:
            raise ConfigError(
                f"{str(path)!r}: its header says shape {shape} of {dtype} ({expected} bytes) "
                f"but the file holds {size - offset} bytes of data"
            )
        raw = np.fromfile(fh, dtype=dtype, count=math.prod(shape))
    data = raw.reshape(shape, order="F" if fortran else "C")
    return np.asarray(data, dtype=np.float64)


def _read_csv(path: Path) -> tuple[FloatArray, FloatArray | None]:
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError("no rows")
    timed = False
    first = [c.strip().lower() for c in rows[0]]
    try:
        [float(c) for c in first]
    except ValueError:
        timed = first[0] in ("t", "time")
        rows = rows[1:]
    data = np.array([[float(c) for c in row] for row in rows], dtype=np.float64)
    if data.size == 0:
        raise ValueError("no data rows")
    if timed:
        if data.shape[1] < 2:
            raise ValueError("a time column needs at least one value column after it")
        return data[:, 1:], data[:, 0]
    return data, None


def make_source(
    signal: str,
    *,
    rate: float,
    freq: float = 1.0,
    amp: float = 1.0,
    offset: float = 0.0,
    value: Sequence[float] | None = None,
    duty: float = 0.5,
    seed: int = 0,
    dim: int = 1,
    loop: bool = False,
) -> tuple[Source, float | None]:
    """Build the source for ``signal`` (a name in :data:`SIGNALS` except ``stdin``, or a
    file path). Returns ``(source, t0)`` where ``t0`` is a timed CSV's first time.

    Raises:
        ConfigError: Unknown signal, missing file, or bad parameters.
    """
    _positive("rate", rate)
    if dim < 1:
        raise ConfigError(f"--dim must be >= 1, got {dim}")
    if signal == "sin":
        return SinSource(rate, _finite("freq", freq), _finite("amp", amp), offset, dim), None
    if signal == "square":
        if not 0.0 < duty < 1.0:
            raise ConfigError(f"--duty must be in (0, 1), got {duty}")
        return SquareSource(rate, _positive("freq", freq), amp, offset, duty, dim), None
    if signal == "constant":
        if value is None:
            raise ConfigError("constant needs --value X (or X,Y,... for a vector)")
        vec = np.asarray(value, dtype=np.float64)
        if vec.size == 1 and dim > 1:
            vec = np.full(dim, float(vec[0]))
        if not np.all(np.isfinite(vec)):
            raise ConfigError(f"--value must be finite, got {list(value)}")
        return ConstantSource(rate, vec), None
    if signal == "noise":
        return NoiseSource(rate, amp=amp, offset=offset, seed=seed, dim=dim), None
    path = Path(signal)
    if path.suffix.lower() not in (".npy", ".csv", ".txt"):
        msg = f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)} or a .npy/.csv file"
        raise ConfigError(msg)
    if not path.is_file():
        raise ConfigError(f"signal file {signal!r} does not exist")
    values, offsets, t0 = load_samples(path)
    return ArraySource(values, offsets=offsets, rate=rate, loop=loop), t0


def parse_line(line: str, dim: int | None) -> FloatArray | None:
    """Parse one stdin line: numbers separated by spaces/commas, or JSON (a number, an
    array, or ``{"t": ..., "x": ...}``). Returns None for blank and ``#`` lines.

    Raises:
        PayloadRejected: Not numbers, not finite, or not ``dim`` values (when given).
    """
    text = line.strip()
    if len(text) > DEFAULT_MAX_INPUT_BYTES:  # before anything parses it
        raise OversizePayload(
            f"line of {len(text)} characters exceeds the input limit of "
            f"{DEFAULT_MAX_INPUT_BYTES} bytes"
        )
    if not text or text.startswith("#"):
        return None
    return decode_input(text.encode(), _count_values(text) if dim is None else dim).x


def _count_values(text: str) -> int:
    """How many values a line holds (the codec then checks them with this dimension)."""
    if text[0] in "[{":
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return 1  # decode_input rejects it with the parser's message (or "depth")
        if isinstance(obj, dict):
            obj = obj.get("x")
        return len(obj) if isinstance(obj, list) and obj else 1
    return max(1, len([token for token in _SEPARATORS.split(text) if token]))


def _finite(name: str, x: float) -> float:
    if not math.isfinite(x):
        raise ConfigError(f"--{name} must be finite, got {x}")
    return x


def _positive(name: str, x: float) -> float:
    if not (math.isfinite(x) and x > 0):
        raise ConfigError(f"--{name} must be a number > 0, got {x}")
    return x


@dataclass
class FeedReport:
    """What a feed did.

    Attributes:
        sent: Samples handed to the MQTT connection.
        failed: Samples that could not be sent (disconnected or outgoing queue full).
        skipped: Samples skipped because a newer one was already due (the feed was late).
        invalid: stdin lines that could not be parsed.
        rejected: Samples the service reported as rejected (``input_rejected`` events).
        late_max: Worst lateness of a send after its deadline, in seconds.
        elapsed: Seconds from the first deadline to the end.
        last_error: The service's last rejection message, if any.
    """

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    rejected: int = 0
    late_max: float = 0.0
    elapsed: float = 0.0
    last_error: str | None = None

    def summary(self, topic: str) -> str:
        """One line for the terminal."""
        rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
        text = (
            f"feed: sent {self.sent} values to {topic} in {self.elapsed:.2f} s ({rate:.1f}/s); "
            f"skipped {self.skipped}, failed {self.failed}, rejected by the service "
            f"{self.rejected}, late max {self.late_max * 1e3:.1f} ms"
        )
        if self.invalid:
            text += f", unparsable lines {self.invalid}"
        if self.last_error:
            text += f"\nfeed: last rejection: {self.last_error}"
        return text


@dataclass
class FeedOptions:
    """Everything ``spikestream feed`` needs (see its ``--help``)."""

    net: str
    input: str
    signal: str
    broker: str | None = None
    prefix: str = "spikestream"
    rate: float = 100.0
    duration: float | None = None
    freq: float = 1.0
    amp: float = 1.0
    offset: float = 0.0
    value: Sequence[float] | None = None
    duty: float = 0.5
    seed: int = 0
    dim: int | None = None
    loop: bool = False
    timestamp: Timestamp = "none"
    qos: int = 0
    quiet: bool = False
    # Seconds to wait for the network's describe/status; None: do not check it exists.
    wait_net: float | None = 3.0


Publish = Callable[[FloatArray, float | None], bool]


async def feed(
    source: Source,
    publish: Publish,
    stop: asyncio.Event,
    *,
    duration: float | None = None,
    timestamp: Timestamp = "none",
    t0: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[bool]] | None = None,
    report: FeedReport | None = None,
) -> FeedReport:
    """Send ``source``'s samples through ``publish(x, t)`` on absolute deadlines.

    Args:
        source: The samples and their due offsets.
        publish: Hands one sample to the connection; returns False if it could not.
        stop: Set to stop early (Ctrl-C).
        duration: Stop before the first sample due at or after this many seconds.
        timestamp: ``t`` sent with each sample: none, the Unix time (``wall``), or the
            signal time (``signal``: ``t0 + offset``).
        t0: Signal time of offset 0 (a timed CSV's first time).
        clock: Monotonic clock (injectable for tests).
        sleep: ``await sleep(seconds)`` returns True if stopped meanwhile (injectable for
            tests; default: an asyncio sleep that ``stop`` interrupts).
        report: Counters to update (a new one by default).
    """
    report = report if report is not None else FeedReport()
    if sleep is None:

        async def sleep(seconds: float) -> bool:
            return await interruptible_sleep(stop, seconds)

    start = clock()
    k = 0
    try:
        while not stop.is_set():
            item = source.at(k)
            if item is None:
                break
            due, x = item
            if duration is not None and due >= duration:
                break
            now = clock() - start
            if due > now:
                if await sleep(due - now):
                    break
                now = clock() - start
            else:
                following = source.at(k + 1)
                if (
                    following is not None
                    and following[0] <= now
                    and (duration is None or following[0] < duration)
                ):
                    report.skipped += 1
                    k += 1
                    continue
            report.late_max = max(report.late_max, now - due)
            t = None if timestamp == "none" else (time.time() if timestamp == "wall" else t0 + due)
            if publish(x, t):
                report.sent += 1
            else:
                report.failed += 1
            k += 1
    finally:
        report.elapsed = clock() - start
    return report


async def feed_lines(
    lines: asyncio.Queue[str | None],
    publish: Publish,
    stop: asyncio.Event,
    *,
    rate: float,
    dim: int | None = None,
    duration: float | None = None,
    timestamp: Timestamp = "none",
    clock: Callable[[], float] = time.monotonic,
    report: FeedReport | None = None,
    warn: Callable[[str], None] | None = None,
) -> FeedReport:
    """Send lines from ``lines`` (None ends) as they arrive, at most ``rate`` per second.

    A line may go out no earlier than ``1/rate`` after the previous line's slot, so a
    fast producer (a file piped in) is paced at ``rate`` without drift and a slow one is
    sent at once. The first line fixes the dimension unless ``dim`` is given.
    """
    report = report if report is not None else FeedReport()
    start = clock()
    slot = 0.0
    period = 1.0 / rate
    try:
        while not stop.is_set():
            remaining = None if duration is None else duration - (clock() - start)
            if remaining is not None and remaining <= 0:
                break
            got = await first_of(lines.get(), stop.wait(), timeout=remaining)
            if not isinstance(got, First) or got.value is None:
                break  # stopped, out of time, or the end of the lines
            line = got.value
            try:
                x = parse_line(line, dim)
            except PayloadRejected as err:
                report.invalid += 1
                if warn is not None:
                    warn(f"feed: skipping line {line.strip()[:60]!r}: {err}")
                continue
            if x is None:
                continue
            dim = x.size if dim is None else dim
            now = clock() - start
            slot = max(now, slot + period) if report.sent or report.failed else now
            if slot > now and await interruptible_sleep(stop, slot - now):
                break
            t = None if timestamp == "none" else (time.time() if timestamp == "wall" else slot)
            if publish(x, t):
                report.sent += 1
            else:
                report.failed += 1
    finally:
        report.elapsed = clock() - start
    return report


_MAX_LINE_CHARS: Final = DEFAULT_MAX_INPUT_BYTES + 1
"""Characters of a stdin line read at once: one more than any input may have."""


def _stdin_reader(
    stream: IO[str], queue: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop
) -> None:
    """Read lines in a thread; blocks (backpressure to the pipe) while the queue is full."""

    def put(item: str | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    try:
        while line := stream.readline(_MAX_LINE_CHARS):
            if len(line) == _MAX_LINE_CHARS and not line.endswith("\n"):
                # Longer than any input may be: skip to its end without holding it, and
                # pass on what parse_line refuses as too long.
                rest = line
                while rest and not rest.endswith("\n"):
                    rest = stream.readline(_MAX_LINE_CHARS)
            put(line)
    except (RuntimeError, ValueError):  # the loop or the stream closed under us
        return
    try:
        put(None)
    except RuntimeError:
        return


def _source(options: FeedOptions, dim: int) -> tuple[Source, float | None]:
    return make_source(
        options.signal,
        rate=options.rate,
        freq=options.freq,
        amp=options.amp,
        offset=options.offset,
        value=options.value,
        duty=options.duty,
        seed=options.seed,
        dim=dim,
        loop=options.loop,
    )


async def run(options: FeedOptions, stop: asyncio.Event) -> int:
    """Connect, feed until done or stopped, print a summary; returns the exit code."""
    source: Source | None = None
    t0 = None
    if options.signal != "stdin":
        source, t0 = _source(options, options.dim or 1)
    else:
        _positive("rate", options.rate)
    if options.duration is not None:
        _positive("duration", options.duration)
    report = FeedReport()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "input_rejected" and event.get("input") == options.input:
            report.rejected += 1
            # Event text comes from the bus: no escape sequences reach the terminal.
            report.last_error = printable(event.get("error", ""), 300)
            if report.rejected == 1 and not options.quiet:
                print(f"feed: the service rejected a value: {report.last_error}", file=sys.stderr)

    async with SpikestreamClient(options.broker, prefix=options.prefix, role="feed") as client:
        dim = options.dim
        if options.wait_net is not None:
            found = await find_network(client, options.net, options.wait_net)
            described = None if found is None else found.inputs.get(options.input)
            if found is not None and described is None:
                raise ConfigError(
                    f"network {options.net!r} has no input {options.input!r}; its inputs: "
                    f"{', '.join(found.inputs) or '(none)'}"
                )
            if described is not None:
                if dim is None:
                    dim = described.dim
                    if source is not None and source.dim != dim and options.signal in SIGNALS:
                        source, t0 = _source(options, dim)  # a generated signal takes its dim
                if source is not None and source.dim != described.dim:
                    raise ConfigError(
                        f"input {options.input!r} of {options.net!r} takes {described.dim} "
                        f"values per message; {options.signal!r} gives {source.dim}"
                    )
        client.on_event(options.net, on_event)
        topic = topics(options.prefix, options.net).input(options.input)

        def publish(x: FloatArray, t: float | None) -> bool:
            return client.publish_input_nowait(options.net, options.input, x, t=t, qos=options.qos)

        if not options.quiet:
            what = options.signal if source is None else f"{options.signal} (dim {source.dim})"
            length = "until stopped" if options.duration is None else f"for {options.duration:g} s"
            print(f"feed: {what} -> {topic} at {options.rate:g}/s {length}", file=sys.stderr)
        if source is not None:
            await feed(
                source,
                publish,
                stop,
                duration=options.duration,
                timestamp=options.timestamp,
                t0=t0 or 0.0,
                report=report,
            )
        else:
            queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1024)
            reader = threading.Thread(
                target=_stdin_reader,
                args=(sys.stdin, queue, asyncio.get_running_loop()),
                name="feed-stdin",
                daemon=True,
            )
            reader.start()
            await feed_lines(
                queue,
                publish,
                stop,
                rate=options.rate,
                dim=dim,
                duration=options.duration,
                timestamp=options.timestamp,
                report=report,
                warn=None if options.quiet else (lambda m: print(m, file=sys.stderr)),
            )
        # No flush needed: the clean disconnect queues DISCONNECT behind every sample not
        # yet written, and the broker handles one connection's packets in order.
    if not options.quiet:
        print(report.summary(topic), file=sys.stderr)
    return 0


def main(options: FeedOptions) -> int:
    """Run the feed until done, Ctrl-C or SIGTERM; returns the exit code."""
    return run_tool(lambda stop: run(options, stop))
