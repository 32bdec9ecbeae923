"""The signals ``spikestream feed`` publishes: sources indexed by sample number.

Signals (:func:`make_source`):

* ``sin``: ``offset + amp * sin(2π freq t + 2π i / dim)`` (component ``i`` of ``dim``);
* ``square``: ``offset ± amp`` at ``freq`` Hz, high for the first ``duty`` of each period;
* ``constant``: ``value`` (a number or a comma-separated vector);
* ``noise``: ``offset + amp * N(0, 1)``, seeded, reproducible sample by sample;
* a ``.npy`` file (``(samples,)`` or ``(samples, dim)``) or a CSV file (one sample per
  row; a header whose first column is ``t`` or ``time`` makes the rows play at those
  times instead of at ``rate``), replayed in time, optionally looped.

Limits: at most :data:`MAX_RATE` messages per second, and at most :data:`MAX_DIM` values
per message (one message must fit the service's default input limit).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import DEFAULT_MAX_INPUT_BYTES
from spikestream_client.errors import ConfigError
from spikestream_client.npz import read_npy_header

__all__ = [
    "MAX_DIM",
    "MAX_RATE",
    "SIGNALS",
    "ArraySource",
    "ConstantSource",
    "FloatArray",
    "NoiseSource",
    "SinSource",
    "Source",
    "SquareSource",
    "check_dim",
    "check_rate",
    "check_seed",
    "load_samples",
    "make_source",
]

FloatArray = npt.NDArray[np.float64]
SIGNALS: Final = ("sin", "square", "constant", "noise", "stdin")
"""Signal names; anything else is taken as a ``.npy``/``.csv`` file path."""
_NOISE_BLOCK: Final = 1024
MAX_RATE: Final = 1000.0
"""Most messages per second. asyncio's timers wake to the millisecond, so past about
1000/s the feed cannot pace messages on their deadlines and skips a share of them (at
2000/s, a fifth); a service ticking at its default 1 ms uses one value per tick anyway."""
DEFAULT_RATE: Final = 100.0
"""Messages per second when ``--rate`` is not given (a timed file's cap is then
:data:`MAX_RATE`: its rows play at their own times)."""
MAX_DIM: Final = (DEFAULT_MAX_INPUT_BYTES - 14 - 3) // 9
"""Most values per message (7279): the largest ``{t, x}`` message must fit the input
limit of :data:`DEFAULT_MAX_INPUT_BYTES` bytes. In msgpack that is a map header, ``t``,
a float64 and ``x`` (14 bytes), an array16 header (3) and 9 bytes per float64 value."""


class Source(Protocol):
    """A signal indexed by sample number: :meth:`at` gives ``(offset_s, x)`` or None at
    the end. ``offset_s`` is when the sample is due, in seconds after the start, and
    must not decrease with ``k``.

    A source may also have ``index_at(offset_s) -> int``: the last sample due at or
    before ``offset_s`` (the built-in ones do); without it a late feed finds that
    sample by a search over :meth:`at`."""

    dim: int

    def at(self, k: int) -> tuple[float, FloatArray] | None:
        """Sample ``k`` (``k`` >= 0), or None after the last one."""
        ...


class _RatePaced:
    """A source whose sample ``k`` is due at ``k / rate`` seconds."""

    rate: float

    def index_at(self, offset_s: float) -> int:
        """The last sample due at or before ``offset_s`` seconds."""
        return _rate_index(self.rate, offset_s)


@dataclass
class SinSource(_RatePaced):
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
class SquareSource(_RatePaced):
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
class ConstantSource(_RatePaced):
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


class NoiseSource(_RatePaced):
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


def _rate_index(rate: float, offset_s: float) -> int:
    """The largest ``k`` with ``k / rate <= offset_s`` (0 if none), exactly as the
    sources compute due times: the product is corrected for its rounding."""
    k = max(0, math.floor(offset_s * rate))
    while k > 0 and k / rate > offset_s:
        k -= 1
    while (k + 1) / rate <= offset_s:
        k += 1
    return k


class ArraySource:
    """Rows of an array replayed in time.

    Args:
        values: ``(samples, dim)``.
        offsets: When each row is due (s after the start, non-decreasing), or None for
            ``k / rate``.
        rate: Samples per second when ``offsets`` is None.
        loop: Start again after the last row (the period is the file's length plus one
            sample interval).

    Raises:
        ConfigError: ``loop`` with a period that is not > 0 (every row due at the same
            time): each lap would take no time and the feed would never wait.
    """

    def __init__(
        self,
        values: FloatArray,
        *,
        offsets: FloatArray | None = None,
        rate: float = DEFAULT_RATE,
        loop: bool = False,
    ) -> None:
        self.values = values
        self.dim = int(values.shape[1])
        n = len(values)
        if offsets is None:
            offsets = np.arange(n, dtype=np.float64) / rate
            period = n / rate
        else:
            step = float(np.median(np.diff(offsets))) if n > 1 else 1.0 / rate
            period = float(offsets[-1]) + step
        if loop and not period > 0:
            raise ConfigError(
                f"cannot loop {n} samples that are all due at the same time (a lap of "
                f"{period:g} s); expected times that increase"
            )
        self.offsets = offsets
        self.period: float = period
        self.loop = loop

    def _due(self, k: int) -> float:
        """When row ``k`` (counting laps) is due, in seconds after the start."""
        lap, row = divmod(k, len(self.values))
        return lap * self.period + float(self.offsets[row])

    def index_at(self, offset_s: float) -> int:
        """The last row (counting laps) due at or before ``offset_s`` seconds, 0 if none."""
        n = len(self.values)
        lap = max(0, math.floor(offset_s / self.period)) if self.loop else 0
        rest = offset_s - lap * self.period
        k = lap * n + max(0, int(np.searchsorted(self.offsets, rest, "right")) - 1)
        # The lap's subtraction rounds differently from _due's sum: step to the exact row.
        while k > 0 and self._due(k) > offset_s:
            k -= 1
        while (self.loop or k + 1 < n) and self._due(k + 1) <= offset_s:
            k += 1
        return k

    def at(self, k: int) -> tuple[float, FloatArray] | None:
        """Row ``k`` (modulo the length when looping)."""
        n = self.values.shape[0]
        lap, row = divmod(k, n)
        if lap and not self.loop:
            return None
        return self._due(k), self.values[row]


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
    with path.open("rb") as fh:
        shape, fortran, dtype = read_npy_header(fh)
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
        ConfigError: Unknown signal, missing file, or bad parameters (a rate beyond
            :data:`MAX_RATE`, a dim beyond :data:`MAX_DIM`, a negative seed).
    """
    check_rate(rate)
    check_dim(dim)  # before a constant vector or a noise block of that size is made
    check_seed(seed)
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
        check_dim(vec.size, "--value")
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
    check_dim(values.shape[1], f"the rows of {signal!r}")
    try:
        return ArraySource(values, offsets=offsets, rate=rate, loop=loop), t0
    except ConfigError as err:  # say which file cannot loop
        raise ConfigError(f"{signal!r} with --loop: {err}") from None


def _finite(name: str, x: float) -> float:
    if not math.isfinite(x):
        raise ConfigError(f"--{name} must be finite, got {x}")
    return x


def check_rate(rate: float) -> float:
    """``rate`` (messages per second) if in (0, :data:`MAX_RATE`].

    Raises:
        ConfigError: Naming the bound and the rate given.
    """
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise ConfigError(
            f"--rate must be a number of messages per second in (0, {MAX_RATE:g}], got {rate}"
        )
    return rate


def check_dim(dim: int, what: str = "--dim") -> int:
    """``dim`` if one message of that many values fits the input limit.

    Args:
        dim: Values per message.
        what: Where ``dim`` came from (a flag, a file), to start the message.

    Raises:
        ConfigError: Saying the bound, why, and the value given.
    """
    if not 1 <= dim <= MAX_DIM:
        raise ConfigError(
            f"{what}: {dim} values per message is not allowed; expected 1 to {MAX_DIM}, "
            f"the most whose message (msgpack float64, with a timestamp) fits the input "
            f"limit of {DEFAULT_MAX_INPUT_BYTES} bytes"
        )
    return dim


def check_seed(seed: int) -> int:
    """``seed`` if >= 0 (numpy's generators refuse negative seeds at the first sample).

    Raises:
        ConfigError: Naming the value given.
    """
    if seed < 0:
        raise ConfigError(f"--seed: {seed} is not allowed; expected an integer >= 0")
    return seed


def _positive(name: str, x: float) -> float:
    if not (math.isfinite(x) and x > 0):
        raise ConfigError(f"--{name} must be a number > 0, got {x}")
    return x
