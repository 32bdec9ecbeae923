"""``spikestream feed``: publish a signal to one input of a running service.

Signals (:func:`make_source`, in :mod:`spikestream_client.feed_sources`):

* ``sin``: ``offset + amp * sin(2π freq t + 2π i / dim)`` (component ``i`` of ``dim``);
* ``square``: ``offset ± amp`` at ``freq`` Hz, high for the first ``duty`` of each period;
* ``constant``: ``value`` (a number or a comma-separated vector);
* ``noise``: ``offset + amp * N(0, 1)``, seeded, reproducible sample by sample;
* a ``.npy`` file (``(samples,)`` or ``(samples, dim)``) or a CSV file (one sample per
  row; a header whose first column is ``t`` or ``time`` makes the rows play at those
  times, at most ``rate`` per second, :data:`MAX_RATE` unless given), replayed in time,
  optionally looped;
* ``stdin``: one value or vector per line (numbers separated by spaces or commas, or
  JSON), sent as lines arrive, at most ``rate`` per second.

Timing: sample ``k`` is due at ``start + offset_k`` on the monotonic clock
(``offset_k = k / rate`` for generated signals), so errors never accumulate. When the
feed falls behind (a stalled machine), it jumps straight to the newest sample already
due, counting the superseded ones as skipped rather than sending them in a burst. Signal
values are computed at the scheduled time ``offset_k``, not at the (jittered) send time.

Limits: at most :data:`MAX_RATE` messages per second, a timed file's rows included (rows
due closer together than ``1/rate`` go out at most one per ``1/rate``, the newest due,
the rest counted as skipped), at most :data:`MAX_DIM` values per message (one
message must fit the service's default input limit), and signal files of at most
:data:`~spikestream_client.feed_sources.MAX_SIGNAL_FILE_BYTES` (64 MiB) unless
``--max-mib`` says otherwise, refused from their size before they are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

import numpy as np

from spikestream_client.aio import First, first_of
from spikestream_client.client import SpikestreamClient
from spikestream_client.codec import (
    DEFAULT_MAX_INPUT_BYTES,
    InputInfo,
    OversizePayload,
    PayloadRejected,
    decode_input,
    encode_input,
    topics,
)
from spikestream_client.errors import ConfigError
from spikestream_client.feed_sources import (
    DEFAULT_RATE,
    MAX_DIM,
    MAX_RATE,
    MAX_SIGNAL_FILE_BYTES,
    SIGNALS,
    ArraySource,
    ConstantSource,
    FloatArray,
    NoiseSource,
    SinSource,
    Source,
    SquareSource,
    check_dim,
    check_rate,
    check_seed,
    load_samples,
    make_source,
)
from spikestream_client.logs import report as report_line
from spikestream_client.names import NAME_RULE, is_name
from spikestream_client.safetext import printable
from spikestream_client.tool import find_network, interruptible_sleep, run_tool

__all__ = [
    "DEFAULT_RATE",
    "MAX_DIM",
    "MAX_RATE",
    "MAX_SIGNAL_FILE_BYTES",
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

Timestamp = Literal["none", "wall", "signal"]
_SEPARATORS: Final = re.compile(r"[\s,]+")


def parse_line(line: str | bytes, dim: int | None) -> FloatArray | None:
    """Parse one stdin line (text, or bytes to decode as UTF-8): numbers separated by
    spaces/commas, or JSON (a number, an array, or ``{"t": ..., "x": ...}``). Returns
    None for blank and ``#`` lines.

    Raises:
        PayloadRejected: Not UTF-8, not numbers, not finite, more than :data:`MAX_DIM`
            values, or not ``dim`` values (when given).
    """
    stripped = line.strip()
    if len(stripped) > DEFAULT_MAX_INPUT_BYTES:  # before anything parses it
        unit = "bytes" if isinstance(stripped, bytes) else "characters"
        raise OversizePayload(
            f"line of {len(stripped)} {unit} exceeds the input limit of "
            f"{DEFAULT_MAX_INPUT_BYTES} bytes"
        )
    try:
        # Bytes are decoded here, line by line, so one bad byte costs one line; text
        # may hold lone surrogates (a stream decoded with surrogateescape).
        text = stripped.decode() if isinstance(stripped, bytes) else stripped
        payload = text.encode()
    except (UnicodeDecodeError, UnicodeEncodeError) as err:
        bad = err.object[err.start : err.end]
        raise PayloadRejected(
            f"expected UTF-8 text, got {bad!r} at position {err.start} ({err.reason})"
        ) from None
    if not text or text.startswith("#"):
        return None
    count = _count_values(text) if dim is None else dim
    if count > MAX_DIM:
        raise OversizePayload(
            f"line of {count} values; expected at most {MAX_DIM} (the most one message of "
            f"{DEFAULT_MAX_INPUT_BYTES} bytes holds)"
        )
    return decode_input(payload, count).x


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


@dataclass
class FeedReport:
    """What a feed did.

    Attributes:
        sent: Samples handed to the MQTT connection.
        failed: Samples that could not be sent (disconnected or outgoing queue full).
        skipped: Samples skipped because a newer one was already due (the feed was late,
            or a timed file's rows came closer together than its rate cap).
        invalid: stdin lines that could not be parsed (or decoded as UTF-8).
        rejected: Samples the service reported as rejected (``input_rejected`` events).
        late_max: Worst lateness of a send after its deadline, in seconds.
        elapsed: Seconds from the first deadline to the end.
        last_error: The service's last rejection message, if any.
        read_error: Why reading stdin failed, if it did (the feed ended there).
    """

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    rejected: int = 0
    late_max: float = 0.0
    elapsed: float = 0.0
    last_error: str | None = None
    read_error: str | None = None

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
        if self.read_error:
            text += f"\nfeed: reading stdin failed: {self.read_error}"
        return text


@dataclass
class FeedOptions:
    """Everything ``spikestream feed`` needs (see its ``--help``)."""

    net: str
    input: str
    signal: str
    broker: str | None = None
    prefix: str = "spikestream"
    # Messages per second; None: DEFAULT_RATE, and no cap but MAX_RATE for a timed file.
    rate: float | None = None
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
    # Largest signal file read, bytes (its samples are held whole).
    max_file_bytes: int = MAX_SIGNAL_FILE_BYTES


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
    min_gap: float = 0.0,
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
        min_gap: A timed file's rate cap, ``1/rate`` s: at most one send in each
            ``min_gap`` cell of time since the start. A sample due in a cell already
            used waits for the next one, and the newest sample due by then goes out in
            its place, the ones it supersedes counted as skipped. 0: every sample at
            its own time (a generated signal's samples are ``1/rate`` apart already).
    """
    report = report if report is not None else FeedReport()
    if sleep is None:

        async def sleep(seconds: float) -> bool:
            return await interruptible_sleep(stop, seconds)

    start = clock()
    k = 0
    cell = -1  # the last send's cell of the min_gap grid (its start / min_gap)
    try:
        while not stop.is_set():
            item = source.at(k)
            if item is None:
                break
            due, x = item
            if duration is not None and due >= duration:
                break
            # A sample's slot is its due time, unless the cap holds it back to the next
            # free cell of the min_gap grid.
            ready = max(due, (cell + 1) * min_gap) if min_gap > 0 else due
            if duration is not None and ready >= duration:
                break  # held back past the end: a capped feed ends where others do
            now = clock() - start
            slept = ready > now
            if slept:
                if await sleep(ready - now):
                    break
                now = clock() - start
            if not slept or min_gap > 0:
                # Late, or capped (a timed file: its rows may come faster than the
                # cap, and the newest due by the send supersedes the rest): jump to
                # the newest sample already due, its index from the clock. Stepping over
                # stale samples one at a time never caught up when they came due faster
                # than they could be stepped over (--rate 1e7 spun for ever; a looped
                # file of microsecond steps still could; a timed file of microsecond
                # steps sent them all).
                newest = _newest_due(source, k, now, duration)
                newer = source.at(newest) if newest > k else None
                if newer is not None:
                    report.skipped += newest - k
                    k, (due, x) = newest, newer
            if not slept:
                # A feed that is always late never sleeps: yield once per sample so the
                # signal handlers (Ctrl-C, SIGTERM) and the connection still run.
                await asyncio.sleep(0)
                if stop.is_set():
                    break
            report.late_max = max(report.late_max, now - max(due, ready))
            t = None if timestamp == "none" else (time.time() if timestamp == "wall" else t0 + due)
            if publish(x, t):
                report.sent += 1
            else:
                report.failed += 1
            if min_gap > 0:
                # One send per cell of the grid, as a generated signal sends one sample
                # per 1/rate: at most rate * elapsed + 1 sends, no drift. A send slept
                # for takes the cell it slept to, though the timer woke in the next one
                # (asyncio's timers round up to the millisecond), so the next goes at
                # once; a late one takes the cell it is in: a stall is not made up.
                cell = max(cell + 1, math.floor((ready if slept else now) / min_gap))
            k += 1
    finally:
        report.elapsed = clock() - start
    return report


_GALLOP_LIMIT: Final = 2**40
"""Most samples one search of :func:`_newest_due` skips: an endless source whose samples
are all due at once would otherwise be searched for ever (the feed's next pass, after
it has yielded, searches on)."""


def _newest_due(source: Source, k: int, now: float, duration: float | None) -> int:
    """The last sample index >= ``k`` due by ``now`` (and before ``duration``), given
    that sample ``k`` is; in O(1) with the source's ``index_at``, else O(log) :meth:`at`
    calls (a galloping search: offsets never decrease)."""
    limit = now if duration is None else min(now, math.nextafter(duration, -math.inf))
    index_at: Callable[[float], int] | None = getattr(source, "index_at", None)
    if index_at is not None:
        return max(k, index_at(limit))

    def due(j: int) -> bool:
        item = source.at(j)
        return item is not None and item[0] <= limit

    low, step = k, 1  # due(low) holds; find a high with due(high) false, then bisect
    while step < _GALLOP_LIMIT and due(low + step):
        low, step = low + step, step * 2
    high = low + step
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if due(middle) else (low, middle)
    return low


Line = str | bytes | OSError | None
"""What the stdin reader queues: a line (bytes from a binary stream), a read error, or
None at the end."""


async def feed_lines(
    lines: asyncio.Queue[Line],
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
    sent at once. The first line fixes the dimension unless ``dim`` is given. A line
    that does not parse (or is not UTF-8) is counted in ``invalid`` and warned about; an
    ``OSError`` in the queue is a read error, kept in ``read_error`` and warned about.
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
            if isinstance(line, OSError):
                report.read_error = str(line) or type(line).__name__
                if warn is not None:
                    warn(f"feed: reading stdin failed: {report.read_error}")
                continue  # the reader queues the end next
            try:
                x = parse_line(line, dim)
            except PayloadRejected as err:
                report.invalid += 1
                if warn is not None:
                    # repr: a bytes line shows its undecodable bytes as \x escapes.
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


_MAX_LINE_BYTES: Final = DEFAULT_MAX_INPUT_BYTES + 1
"""Bytes of a stdin line read at once: one more than any input may have."""


def _stdin_reader(
    stream: IO[bytes], queue: asyncio.Queue[Line], loop: asyncio.AbstractEventLoop
) -> None:
    """Read lines of bytes in a thread; blocks (backpressure to the pipe) while the
    queue is full. Lines are queued undecoded: a text stream's decoder fails on a whole
    buffer at once (losing the good lines in it), so :func:`parse_line` decodes each
    line itself. A read error is queued, and the end (None) is queued whatever
    happened, so :func:`feed_lines` never waits for lines that cannot come."""

    def put(item: Line) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    try:
        while line := stream.readline(_MAX_LINE_BYTES):
            if len(line) == _MAX_LINE_BYTES and not line.endswith(b"\n"):
                # Longer than any input may be: skip to its end without holding it, and
                # pass on what parse_line refuses as too long.
                rest = line
                while rest and not rest.endswith(b"\n"):
                    rest = stream.readline(_MAX_LINE_BYTES)
            put(line)
    except OSError as err:  # EIO from a terminal gone, say
        with contextlib.suppress(RuntimeError):
            put(err)
    except (RuntimeError, ValueError):  # the loop or the stream closed under us
        pass
    with contextlib.suppress(RuntimeError):  # RuntimeError: the loop is closed
        put(None)


def check_options(options: FeedOptions) -> None:
    """Check the flags that need no file or connection: the network and input names,
    rate, duration, dim, seed.

    The names follow the rule of every network and input a service has
    (:data:`~spikestream_client.names.NAME_RULE`). Checked here, before connecting: a bad
    one used to be found only when the topic was built, inside the connection, as a
    subscription was starting, and the client's exit could then wait for ever.

    Raises:
        ConfigError: The first bad one, with its bound and the value given.
    """
    for flag, name in (("--net", options.net), ("--input", options.input)):
        if not is_name(name):
            raise ConfigError(f"{flag}: {name!r:.80} is not a name; expected {NAME_RULE}")
    if options.rate is not None:
        check_rate(options.rate)
    if options.duration is not None and not (
        math.isfinite(options.duration) and options.duration > 0
    ):
        raise ConfigError(f"--duration must be a number > 0, got {options.duration}")
    if options.dim is not None:
        check_dim(options.dim)
    check_seed(options.seed)


def check_fits(described: InputInfo, net: str, timestamped: bool) -> None:
    """Refuse a feed whose every message the service would refuse as oversize.

    A message of ``described.dim`` values (msgpack float64, with a timestamp if
    ``timestamped``) has one size whatever the values; the describe document says the
    service's limit (``--max-input-bytes``).

    Raises:
        ConfigError: Naming the limit, the message's size and what makes it.
    """
    if described.max_bytes is None:
        return
    size = len(encode_input(np.full(described.dim, 0.5), t=0.5 if timestamped else None))
    if size > described.max_bytes:
        with_t = " with a timestamp" if timestamped else ""
        raise ConfigError(
            f"input {described.name!r} of {net!r} takes messages of at most "
            f"{described.max_bytes} bytes (the service's --max-input-bytes); "
            f"{described.dim} values{with_t} make {size}"
        )


def _source(options: FeedOptions, dim: int) -> tuple[Source, float | None]:
    return make_source(
        options.signal,
        rate=DEFAULT_RATE if options.rate is None else options.rate,
        freq=options.freq,
        amp=options.amp,
        offset=options.offset,
        value=options.value,
        duty=options.duty,
        seed=options.seed,
        dim=dim,
        loop=options.loop,
        max_file_bytes=options.max_file_bytes,
    )


async def run(options: FeedOptions, stop: asyncio.Event) -> int:
    """Connect, feed until done or stopped, print a summary; returns the exit code."""
    check_options(options)
    source: Source | None = None
    t0 = None
    stdin: IO[bytes] | None = None
    if options.signal != "stdin":
        source, t0 = _source(options, options.dim or 1)
    else:
        # Bytes, decoded line by line (see _stdin_reader); None when stdin is closed.
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise ConfigError("signal stdin needs lines on standard input; it is closed")
    report = FeedReport()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "input_rejected" and event.get("input") == options.input:
            report.rejected += 1
            # Event text comes from the bus: no escape sequences reach the terminal.
            report.last_error = printable(event.get("error", ""), 300)
            if report.rejected == 1 and not options.quiet:
                _say(f"the service rejected a value: {report.last_error}", logging.WARNING)

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
                check_dim(described.dim, f"input {options.input!r} of {options.net!r}")
                if dim is None:
                    dim = described.dim
                    if source is not None and source.dim != dim and options.signal in SIGNALS:
                        source, t0 = _source(options, dim)  # a generated signal takes its dim
                if source is not None and source.dim != described.dim:
                    raise ConfigError(
                        f"input {options.input!r} of {options.net!r} takes {described.dim} "
                        f"values per message; {options.signal!r} gives {source.dim}"
                    )
                check_fits(described, options.net, options.timestamp != "none")
            status = client.statuses().get(options.net)
            if status != "online" and not options.quiet:
                # The values go to the broker all the same; nothing reads them.
                _say(
                    f"network {options.net!r} is {printable(status or 'not online')} "
                    "(its retained status): values are sent, but no service takes them until "
                    "it is online",
                    logging.WARNING,
                )
        client.on_event(options.net, on_event)
        topic = topics(options.prefix, options.net).input(options.input)

        def publish(x: FloatArray, t: float | None) -> bool:
            return client.publish_input_nowait(options.net, options.input, x, t=t, qos=options.qos)

        rate = DEFAULT_RATE if options.rate is None else options.rate
        # A timed file plays at its rows' times; --rate (MAX_RATE unless given) caps them.
        cap = (MAX_RATE if options.rate is None else options.rate) if t0 is not None else None
        if not options.quiet:
            what = options.signal if source is None else f"{options.signal} (dim {source.dim})"
            length = "until stopped" if options.duration is None else f"for {options.duration:g} s"
            pace = f"at {rate:g}/s" if cap is None else f"at its rows' times, at most {cap:g}/s"
            _say(f"{what} -> {topic} {pace} {length}")
        if source is not None:
            await feed(
                source,
                publish,
                stop,
                duration=options.duration,
                timestamp=options.timestamp,
                t0=t0 or 0.0,
                report=report,
                min_gap=0.0 if cap is None else 1.0 / cap,
            )
        else:
            queue: asyncio.Queue[Line] = asyncio.Queue(maxsize=1024)
            reader = threading.Thread(
                target=_stdin_reader,
                args=(stdin, queue, asyncio.get_running_loop()),
                name="feed-stdin",
                daemon=True,
            )
            reader.start()
            await feed_lines(
                queue,
                publish,
                stop,
                rate=rate,
                dim=dim,
                duration=options.duration,
                timestamp=options.timestamp,
                report=report,
                warn=None if options.quiet else (lambda m: _say(m, logging.WARNING)),
            )
        # No flush needed: the clean disconnect queues DISCONNECT behind every sample not
        # yet written, and the broker handles one connection's packets in order.
    if not options.quiet:
        _say(report.summary(topic))
    return 0


def _say(text: str, level: int = logging.INFO) -> None:
    """``feed: ...`` lines for people, or JSON records under ``--log-format json``."""
    for line in text.splitlines():
        report_line("feed", line.removeprefix("feed: "), level=level)


def main(options: FeedOptions) -> int:
    """Run the feed until done, Ctrl-C or SIGTERM; returns the exit code."""
    return run_tool(lambda stop: run(options, stop))
