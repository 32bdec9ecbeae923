"""The signals ``spikestream feed`` publishes: sources indexed by sample number.

Signals (:func:`make_source`):

* ``sin``: ``offset + amp * sin(2π freq t + 2π i / dim)`` (component ``i`` of ``dim``);
* ``square``: ``offset ± amp`` at ``freq`` Hz, high for the first ``duty`` of each period;
* ``constant``: ``value`` (a number or a comma-separated vector);
* ``noise``: ``offset + amp * N(0, 1)``, seeded, reproducible sample by sample;
* a ``.npy`` file (``(samples,)`` or ``(samples, dim)``) or a CSV file (one sample per
  row; a header whose first column is ``t`` or ``time`` makes the rows play at those
  times instead of at ``rate``), replayed in time, optionally looped.

Limits: at most :data:`MAX_RATE` messages per second, at most :data:`MAX_DIM` values
per message (one message must fit the service's default input limit), and signal files
of at most :data:`MAX_SIGNAL_FILE_BYTES` (64 MiB), refused from their size before any
byte is read. A file is held in memory whole, as float64: a CSV's values take at least
two bytes of text each (a digit and a separator), so its samples take at most four times
the file (256 MiB); a ``.npy`` of one-byte values (``int8``, ``bool``) takes eight times
(512 MiB). CSV rows are parsed in blocks of :data:`_CSV_BLOCK` lines straight into that
array, never as a Python object per value.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Protocol

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import DEFAULT_MAX_INPUT_BYTES
from spikestream_client.codec.bounds import INPUT_VALUE_LIMIT
from spikestream_client.errors import ConfigError
from spikestream_client.npz import read_npy_header

__all__ = [
    "MAX_DIM",
    "MAX_RATE",
    "MAX_SIGNAL_FILE_BYTES",
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
MAX_SIGNAL_FILE_BYTES: Final = 64 * 2**20
"""Largest signal file (``.npy`` or CSV) a feed reads, in bytes (64 MiB): its samples are
held whole, as float64, at most 4x this from a CSV and 8x from a ``.npy`` of one-byte
values. At the most a feed sends, 1000 values a second, a CSV this size of one value a
line still plays for nine hours."""
_CSV_BLOCK: Final = 4096
"""CSV lines parsed by one :func:`numpy.loadtxt` call: the Python strings of one block
are all that is held besides the array."""
_HEADER_PREFIX: Final = 256
"""Characters of a CSV header parsed for its first column (``t``, ``time``): a header of
millions of columns costs no Python object per column."""


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


def load_samples(
    path: Path, max_bytes: int = MAX_SIGNAL_FILE_BYTES
) -> tuple[FloatArray, FloatArray | None, float | None]:
    """Read a ``.npy`` or CSV file of samples of at most ``max_bytes`` bytes (by default
    :data:`MAX_SIGNAL_FILE_BYTES`; its samples take up to 4x that from a CSV, 8x from a
    ``.npy`` of one-byte values).

    Returns:
        ``(values (samples, dim), offsets or None, t0 or None)``. CSV files whose first
        row names ``t`` or ``time`` as its first column give per-row times: offsets are
        relative to the first row, ``t0`` is the first row's time.

    Raises:
        ConfigError: Missing, not a regular file (a folder, a FIFO: never opened, so
            never waited on), larger than ``max_bytes``, unreadable,
            wrong shape, no samples, or non-finite values.
    """
    where = str(path)
    try:
        with _open_signal_file(path, max_bytes) as (fh, size):
            if path.suffix.lower() == ".npy":
                data, times = _read_npy(fh, size, where), None
            else:
                data, times = _read_csv(fh, size)
    except ConfigError:
        raise  # already says what is wrong with the file
    except (OSError, ValueError, csv.Error) as err:
        raise ConfigError(f"cannot read samples from {where!r}: {err}") from None
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        msg = (
            f"{where!r} holds an array of shape {data.shape}; expected (samples,) or (samples, dim)"
        )
        raise ConfigError(msg)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        # A number beyond float64's range (a field of 400 digits, say) reads as infinite.
        first = int(np.argmin(finite))
        raise ConfigError(
            f"{where!r} holds NaN or infinite values (the first in sample {first}, counting "
            f"from 0; numbers beyond ±1.8e308 are infinite); inputs must be finite"
        )
    if data.max() > INPUT_VALUE_LIMIT or data.min() < -INPUT_VALUE_LIMIT:
        # Every decoder refuses such a value: say so now, naming the file and the sample,
        # not when the sample's turn comes. (max and min allocate nothing; the file's
        # memory is bounded by its size.)
        beyond = (np.abs(data) > INPUT_VALUE_LIMIT).any(axis=1)
        raise ConfigError(
            f"{where!r} holds values beyond ±{INPUT_VALUE_LIMIT:g} (the first in sample "
            f"{int(np.argmax(beyond))}, counting from 0); every input value must lie within it"
        )
    if times is None:
        return data, None, None
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise ConfigError(f"the time column of {where!r} must be finite and non-decreasing")
    return data, times - times[0], float(times[0])


_KINDS: Final = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _check_regular(where: str, st: os.stat_result, max_bytes: int) -> int:
    """The size of a regular file of at most ``max_bytes``, in bytes.

    Raises:
        ConfigError: Not a regular file (saying what it is), or too large (saying its
            size and the cap).
    """
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise ConfigError(f"signal file {where!r} is {kind}; expected a regular .npy or CSV file")
    if st.st_size > max_bytes:
        mib = math.ceil(st.st_size / 2**20 * 10) / 10  # rounded up: never shown as the cap
        # The default cap in whole MiB; another in bytes only (rounded to MiB, a small cap
        # read "0 MiB" and one just under a file's size read as the file's).
        cap = (
            f"{max_bytes // 2**20} MiB; --max-mib sets it"
            if max_bytes == MAX_SIGNAL_FILE_BYTES
            else "as --max-mib set it"
        )
        raise ConfigError(
            f"signal file {where!r} is {st.st_size} bytes ({mib:.1f} MiB); "
            f"feed reads files of at most {max_bytes} bytes ({cap})"
        )
    return int(st.st_size)


@contextlib.contextmanager
def _open_signal_file(path: Path, max_bytes: int) -> Iterator[tuple[IO[bytes], int]]:
    """``with _open_signal_file(path, max_bytes) as (fh, size)``: ``path`` opened for
    reading in binary once it is known to be a regular file of at most ``max_bytes``;
    ``size`` in bytes.

    The path is checked before it is opened, so a FIFO is never opened (opening one
    waits for a writer, and would wake a writer waiting for a reader). The opened file
    is checked again, having been opened non-blocking, in case the path changed in
    between.

    Raises:
        ConfigError: Missing, not a regular file, or larger than the cap.
        OSError: Not readable (permissions, say).
    """
    where = str(path)
    try:
        _check_regular(where, os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"signal file {where!r} does not exist") from None
    try:
        size = _check_regular(where, os.fstat(fd), max_bytes)
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, size


def _read_npy(fh: IO[bytes], size: int, where: str) -> FloatArray:
    """The samples of the ``.npy`` file ``fh`` (``size`` bytes) as float64, its header
    checked before any data is read: a real dtype (kind ``f``, ``i``, ``u`` or ``b``;
    complex values would lose their imaginary part, datetimes become counts, structured
    ones do not convert) and a shape that the file's size holds, so a header claiming
    10**12 elements allocates nothing.

    Raises:
        ConfigError: The header is not a real array the file holds.
        ValueError, OSError: The file is not a readable ``.npy`` file.
    """
    shape, fortran, dtype = read_npy_header(fh)
    offset = fh.tell()
    if dtype.kind not in "fiub" or dtype.hasobject or dtype.fields is not None:
        raise ConfigError(
            f"{where!r} holds {dtype} values; expected real numbers (a float, "
            "integer or bool dtype)"
        )
    expected = math.prod(shape) * dtype.itemsize
    if expected != size - offset:
        raise ConfigError(
            f"{where!r}: its header says shape {shape} of {dtype} ({expected} bytes) "
            f"but the file holds {size - offset} bytes of data"
        )
    raw = np.fromfile(fh, dtype=dtype, count=math.prod(shape))
    if raw.size != math.prod(shape):  # the file shrank since its size was read
        raise ValueError(f"the file ended after {raw.size} of {math.prod(shape)} values")
    data = raw.reshape(shape, order="F" if fortran else "C")
    return np.asarray(data, dtype=np.float64)


def _read_csv(binary: IO[bytes], size: int) -> tuple[FloatArray, FloatArray | None]:
    """The rows of the CSV file ``binary`` (``size`` bytes, UTF-8, a BOM allowed) as
    ``(values, times or None)``.

    Blank lines and lines whose first non-blank character is ``#`` are skipped. The
    first other line is a header if it is not all numbers (``t`` or ``time`` as its
    first column makes the first column times). Rows are parsed a block of
    :data:`_CSV_BLOCK` lines at a time into one float64 array sized for the most rows
    ``size`` bytes can hold: memory is that array's filled part (8 bytes per value, at
    most 4x the file) and one block of lines.

    Raises:
        ValueError: No data rows, a field that is not a number, rows of different
            lengths (each naming its line), or a file that changed while being read.
    """
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        return _read_csv_text(text, size)
    finally:
        text.detach()  # the caller closes ``binary``; a wrapper left open warns


def _read_csv_text(fh: IO[str], size: int) -> tuple[FloatArray, FloatArray | None]:
    """:func:`_read_csv` of the decoded text ``fh``."""
    lines = _content_lines(fh, size)
    first = next(lines, None)
    if first is None:
        raise ValueError("no rows")
    timed = False
    try:
        head = _parse_rows([first[1]])
    except ValueError:  # a header: its first column may name the times
        if _is_number(_first_field(first[1])):
            # "1,2x" is a bad first row, not a header: dropping it would lose a sample.
            # (A header may name columns by number, as pandas writes ",0,1": only its
            # first field, the times' or the index's name, is never one.)
            _parse_rows_at([first])
        timed = _first_field(first[1]) in ("t", "time")
        header = first[0]
        first = next(lines, None)
        if first is None:
            msg = f"no data rows (line {header}, the only one, is taken as a header of names)"
            raise ValueError(msg) from None
        head = _parse_rows_at([first])
    cols = int(head.shape[1])
    if timed and cols < 2:
        raise ValueError("a time column needs at least one value column after it")
    # A value takes at least one character and one separator (',' or the line's end, but
    # for the last), and a UTF-8 character at least one byte: no more rows can fit. The
    # pages np.empty reserves are only resident once written.
    most = (size + 1) // (2 * cols)
    data: FloatArray = np.empty((most, cols), dtype=np.float64)
    data[0] = head[0]
    n = 1
    block: list[tuple[int, str]] = []
    for item in lines:
        block.append(item)
        if len(block) == _CSV_BLOCK:
            n = _fill(data, n, block, cols)
            block.clear()
    if block:
        n = _fill(data, n, block, cols)
    # Give back the rows reserved but not read; the array has no views yet.
    data.resize((n, cols), refcheck=False)
    if timed:
        return data[:, 1:], data[:, 0]
    return data, None


def _content_lines(fh: IO[str], size: int) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of ``fh`` that is not blank or a ``#``
    comment, reading at most ``size`` characters (a file of ``size`` bytes of UTF-8 has
    no more; a file that grows while being read is refused, not read on)."""
    left = size
    number = 0
    while line := fh.readline(left + 1):
        number += 1
        left -= len(line)
        if left < 0:
            raise ValueError(f"it grew past the {size} bytes it had when opened")
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            # Refused before numpy parses it: a line of millions of fields costs numpy's
            # parser far more than 4x its size. No message has more than MAX_DIM values
            # (one more column for the times); a field holding a comma is no number.
            if line.count(",") > MAX_DIM:
                raise ValueError(
                    f"line {number} has more than {MAX_DIM + 1} columns; a message holds "
                    f"at most {MAX_DIM} values (after a time column)"
                )
            yield number, line


def _fill(data: FloatArray, n: int, block: list[tuple[int, str]], cols: int) -> int:
    """Parse ``block`` into ``data[n:]``; returns the rows filled.

    Raises:
        ValueError: A bad line of the block (named), or more rows than ``data`` holds.
    """
    rows = _parse_rows_at(block, cols)
    if n + len(rows) > len(data):
        raise ValueError("it holds more rows than its size allows: it changed while being read")
    data[n : n + len(rows)] = rows
    return n + len(rows)


def _parse_rows(lines: list[str]) -> FloatArray:
    """``lines`` of comma-separated numbers as a ``(rows, columns)`` float64 array
    (numpy's C parser: no Python object per value).

    Raises:
        ValueError: A field is not a number, or the rows differ in length.
    """
    return np.loadtxt(lines, dtype=np.float64, delimiter=",", quotechar='"', comments=None, ndmin=2)


_LOADTXT_WHERE: Final = re.compile(r" at row \d+, column (\d+)\.?$")


def _parse_rows_at(block: list[tuple[int, str]], cols: int | None = None) -> FloatArray:
    """:func:`_parse_rows` of numbered lines, all of ``cols`` values (when given).

    Raises:
        ValueError: Naming the first bad line: numpy's row numbers count neither the
            lines skipped nor the blocks before, so the block is parsed again line by
            line (only once it failed) to find it.
    """
    failed: ValueError | None = None
    try:
        rows = _parse_rows([text for _, text in block])
    except ValueError as err:
        failed, rows = err, None
    if rows is not None and (cols is None or rows.shape[1] == cols):
        return rows
    for number, text in block:
        try:
            width = int(_parse_rows([text]).shape[1])
        except ValueError as err:
            # numpy's "at row 0" is this one line's row; the line number replaces it.
            why = _LOADTXT_WHERE.sub(r" (column \1)", str(err))
            raise ValueError(f"line {number}: {why}") from None
        if cols is None:
            cols = width
        elif width != cols:
            values = "value" if width == 1 else "values"
            raise ValueError(f"line {number} has {width} {values}; the rows before it have {cols}")
    # Every line parses alone but not with the others (no case of numpy's parser is known
    # to): say where, with numpy's own words.
    raise ValueError(f"lines {block[0][0]} to {block[-1][0]}: {failed}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_field(line: str) -> str:
    """The first column of a CSV header line, stripped and lowercased."""
    fields = next(csv.reader([line[:_HEADER_PREFIX]]), [])
    return fields[0].strip().lower() if fields else ""


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
    max_file_bytes: int = MAX_SIGNAL_FILE_BYTES,
) -> tuple[Source, float | None]:
    """Build the source for ``signal`` (a name in :data:`SIGNALS` except ``stdin``, or a
    file path of at most ``max_file_bytes`` bytes). Returns ``(source, t0)`` where ``t0``
    is a timed CSV's first time.

    Raises:
        ConfigError: Unknown signal, missing file, or bad parameters (a rate beyond
            :data:`MAX_RATE`, a dim beyond :data:`MAX_DIM`, a negative seed).
    """
    check_rate(rate)
    check_dim(dim)  # before a constant vector or a noise block of that size is made
    check_seed(seed)
    if signal in ("sin", "square", "noise"):
        # Noise reaches past 10 standard deviations about once in 1e23 samples.
        _check_reach(amp, offset, spread=10.0 if signal == "noise" else 1.0)
    if signal == "sin":
        return SinSource(rate, _finite("freq", freq), amp, offset, dim), None
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
        if np.any(np.abs(vec) > INPUT_VALUE_LIMIT):
            msg = f"--value must lie within ±{INPUT_VALUE_LIMIT:g}, got {list(value)}"
            raise ConfigError(msg)
        check_dim(vec.size, "--value")
        return ConstantSource(rate, vec), None
    if signal == "noise":
        return NoiseSource(rate, amp=amp, offset=offset, seed=seed, dim=dim), None
    path = Path(signal)
    if path.suffix.lower() not in (".npy", ".csv", ".txt"):
        msg = f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)} or a .npy/.csv file"
        raise ConfigError(msg)
    values, offsets, t0 = load_samples(path, max_file_bytes)
    check_dim(values.shape[1], f"the rows of {signal!r}")
    try:
        return ArraySource(values, offsets=offsets, rate=rate, loop=loop), t0
    except ConfigError as err:  # say which file cannot loop
        raise ConfigError(f"{signal!r} with --loop: {err}") from None


def _check_reach(amp: float, offset: float, spread: float) -> None:
    """Refuse ``--amp`` and ``--offset`` that are not finite, or whose signal reaches past
    :data:`INPUT_VALUE_LIMIT`, which every decoder refuses: said before the first value,
    naming the flags, not by the codec when the value comes."""
    _finite("amp", amp)
    _finite("offset", offset)
    reach = abs(offset) + spread * abs(amp)
    if reach > INPUT_VALUE_LIMIT:
        times = "" if spread == 1.0 else f"{spread:g} × "
        raise ConfigError(
            f"--offset {offset:g} and --amp {amp:g} reach {reach:g} (|offset| + {times}|amp|); "
            f"every input value must lie within ±{INPUT_VALUE_LIMIT:g}"
        )


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
