"""PNG plots of a run: a spike raster per population plus value traces against time.

Works on the ``.npz`` layout written by ``spikestream run`` and ``spikestream record``:
:func:`plot_run` draws arrays held in memory, :func:`plot_run_file` a file, read member
by member as a stream of row chunks, so that plotting a run takes memory bounded
independently of its length (see :func:`plot_run_file`). Both keep only what is drawn:
at most :data:`MAX_TRACES` traces of :data:`MAX_POINTS` points per value panel, at
most :data:`MAX_SPIKES` spikes of :data:`MAX_RASTER_NEURONS` neurons per raster, and at
most :data:`MAX_PANELS` panels per figure (the figure and the log say how many more were
left out). A row wider than :data:`CHUNK_BYTES` is read in pieces, keeping only the
columns drawn, so no row is ever held whole.
matplotlib is imported lazily with the non-interactive Agg backend so that importing
spikestream never needs a display.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from spikestream_client.errors import ConfigError, SpikestreamError
from spikestream_client.npz import check_zip_directory, read_npy_header

#: Above this many neurons a raster shows a random subset (a denser raster is unreadable).
MAX_RASTER_NEURONS = 200
#: Above this many traces a value panel shows the first few only.
MAX_TRACES = 40
#: Most points drawn per trace: a run of more ticks is cut into at most ``MAX_POINTS // 2``
#: buckets of equal row counts (the rows per bucket rounded up: 20,001 ticks make 6,667
#: buckets of 3), each drawn as its minimum and maximum (in the order they
#: occur), or as a break when it holds a NaN (a gap). A 1000-pixel-wide PNG cannot show
#: more. A run of at most this many ticks is drawn tick by tick.
MAX_POINTS = 20_000
#: Most spikes drawn per raster; beyond it every 2nd (4th, ...) spike is drawn, evenly
#: over the run, and the panel says how many of how many.
MAX_SPIKES = 2_000_000
#: Bytes of a member read at a time: a chunk of rows, or a piece of one row wider than
#: this (of which only the columns drawn are kept).
CHUNK_BYTES = 4 * 2**20
#: Most rows read at a time (bounds the per-row temporaries of narrow arrays).
CHUNK_ROWS = 1 << 16
#: Longest ``.npy`` header parsed (numpy's own default limit).
HEADER_MAX_BYTES = 10_000
#: Largest ``meta`` member read (a JSON string).
META_MAX_BYTES = 64 * 2**20
#: Most members of a file plotted (each probe, population and input is one to three):
#: checked from the zip's end record before its directory is read.
MAX_MEMBERS = 65_536
#: Most panels drawn in one figure (inputs, then rasters, then value probes, in that
#: order): the figure grows 1.4 to 2 inches per panel, and each panel holds what it draws
#: until the figure is written. The figure and the log say how many more were left out.
MAX_PANELS = 64
#: Keyword arguments for every text artist that shows a name: names come from network
#: files and from frames or ``.npz`` files made elsewhere, so they are drawn literally,
#: never parsed as mathtext (``a$\frac{$`` would make matplotlib raise) or TeX (a
#: user's matplotlibrc may turn on ``text.usetex``).
_LITERAL: dict[str, Any] = {"parse_math": False, "usetex": False}

AnyArray = npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]
Header = tuple[tuple[int, ...], np.dtype[Any]]

#: dtype kinds each kind of member may hold: real numbers (bool counts), no objects.
_REAL = "fiub"
_TIME = "fiu"
_TEXT = "US"

log = logging.getLogger("spikestream_client")


class _Source(Protocol):
    """The arrays of a run, whole or as row chunks."""

    def keys(self) -> list[str]: ...

    def what(self, name: str) -> str:
        """``name`` as messages show it, after ``cannot plot``."""
        ...

    def header(self, name: str, kinds: str) -> Header: ...

    def whole(self, name: str) -> AnyArray: ...

    def rows(self, name: str, chunk: int, cols: npt.NDArray[np.intp]) -> Iterator[AnyArray]:
        """Chunks of at most ``chunk`` rows, each row flattened and cut to the (sorted)
        columns ``cols``: ``(k, cols.size)``."""
        ...


def _check_dtype(what: str, dtype: np.dtype[Any], kinds: str) -> None:
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in kinds:
        names = {"f": "float", "i": "int", "u": "uint", "b": "bool", "U": "str", "S": "bytes"}
        expected = " or ".join(names[k] for k in kinds)
        raise ConfigError(f"cannot plot {what}: it holds {dtype} values; expected {expected}")


class _InMemory:
    """Arrays a caller holds (``record``), sliced into chunks as a file would be read."""

    def __init__(self, arrays: Mapping[str, AnyArray]) -> None:
        self.arrays = arrays

    def keys(self) -> list[str]:
        return list(self.arrays)

    def what(self, name: str) -> str:
        return repr(name)

    def header(self, name: str, kinds: str) -> Header:
        arr = np.asarray(self.arrays[name])
        _check_dtype(self.what(name), arr.dtype, kinds)
        return arr.shape, arr.dtype

    def whole(self, name: str) -> AnyArray:
        return np.asarray(self.arrays[name])

    def rows(self, name: str, chunk: int, cols: npt.NDArray[np.intp]) -> Iterator[AnyArray]:
        arr = np.asarray(self.arrays[name])
        width = math.prod(arr.shape[1:])
        for start in range(0, arr.shape[0], chunk):
            part = arr[start : start + chunk]
            block = part.reshape(part.shape[0], width)
            yield block if cols.size == width else block[:, cols]


class _Counted:
    """Counts the bytes read from a member (the length of its ``.npy`` header)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count = raw, 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


class _NpzFile:
    """The ``.npy`` members of an ``.npz`` file, read as hostile: each header is parsed
    alone and checked (a real dtype, C order, a shape the member's bytes hold) before
    any of its data is read, and the data is read in chunks of rows."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path, self.zf = path, zf
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if key == info.filename:
                continue  # np.load would not read it as an array either
            if key in self.infos:
                raise self.refuse(f"member {info.filename!r} appears twice")
            self.infos[key] = info

    def refuse(self, why: str) -> ConfigError:
        return ConfigError(f"cannot plot {str(self.path)!r}: {why}")

    def keys(self) -> list[str]:
        return list(self.infos)

    def what(self, name: str) -> str:
        return f"{str(self.path)!r}: member {name + '.npy'!r}"

    @contextlib.contextmanager
    def open(self, name: str, kinds: str) -> Iterator[tuple[_Counted, tuple[int, ...], Any]]:
        """The member positioned at its data, with its checked shape and dtype."""
        info = self.infos[name]
        what = f"member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise self.refuse(f"{what} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.refuse(
                f"{what} uses zip compression method {info.compress_type}; expected stored "
                "(0) or deflated (8)"
            )
        with _refusals(self.path), self.zf.open(info) as raw:
            fp = _Counted(raw)
            shape, fortran, dtype = read_npy_header(fp, HEADER_MAX_BYTES)
            _check_dtype(self.what(name), dtype, kinds)
            if any(d < 0 for d in shape):
                raise self.refuse(f"{what} has shape {shape}")
            if fortran and math.prod(shape[1:]) > 1:
                raise self.refuse(f"{what} is stored in Fortran order; expected C order")
            needed = math.prod(shape) * dtype.itemsize
            held = info.file_size - fp.count
            if needed > held:
                raise self.refuse(
                    f"{what}: its header claims shape {shape} of {dtype} ({needed:,} bytes) "
                    f"but the member holds {max(held, 0):,} bytes of data"
                )
            yield fp, shape, dtype

    def header(self, name: str, kinds: str) -> Header:
        with self.open(name, kinds) as (_fp, shape, dtype):
            return shape, dtype

    def whole(self, name: str) -> AnyArray:
        with self.open(name, _TEXT) as (fp, shape, dtype):
            if shape != () or dtype.itemsize > META_MAX_BYTES:
                raise self.refuse(
                    f"member {name!r} holds {dtype} of shape {shape}; expected one string of "
                    f"at most {META_MAX_BYTES:,} bytes"
                )
            data = self._read(fp, dtype.itemsize, name, 0)
            return np.frombuffer(data, dtype).reshape(())

    def rows(self, name: str, chunk: int, cols: npt.NDArray[np.intp]) -> Iterator[AnyArray]:
        with self.open(name, _REAL) as (fp, shape, dtype):
            width = math.prod(shape[1:])
            row_bytes = width * dtype.itemsize
            done = 0
            while done < shape[0]:
                k = min(chunk, shape[0] - done)
                if row_bytes > CHUNK_BYTES:  # never held whole: its columns, piece by piece
                    yield np.stack(
                        [
                            self._pick(fp, width, dtype, cols, name, (done + i) * row_bytes)
                            for i in range(k)
                        ]
                    )
                else:
                    data = self._read(fp, k * row_bytes, name, done * row_bytes)
                    block = np.frombuffer(data, dtype).reshape(k, width)
                    yield block if cols.size == width else block[:, cols]
                done += k

    def _pick(
        self,
        fp: _Counted,
        width: int,
        dtype: np.dtype[Any],
        cols: npt.NDArray[np.intp],
        name: str,
        pos: int,
    ) -> AnyArray:
        """The columns ``cols`` (sorted) of the row of ``width`` values at data byte
        ``pos``, read in pieces of at most :data:`CHUNK_BYTES`."""
        out = np.empty(cols.size, dtype)
        per = max(1, CHUNK_BYTES // dtype.itemsize)
        for a in range(0, width, per):
            b = min(width, a + per)
            data = self._read(fp, (b - a) * dtype.itemsize, name, pos)
            pos += len(data)
            lo, hi = np.searchsorted(cols, [a, b])
            out[lo:hi] = np.frombuffer(data, dtype)[cols[lo:hi] - a]
        return out

    def _read(self, fp: _Counted, n: int, name: str, pos: int) -> bytes:
        parts = []
        while n > 0:
            part = fp.read(min(n, CHUNK_BYTES))
            if not part:
                raise self.refuse(f"member {name + '.npy'!r} ends after {pos:,} bytes of data")
            parts.append(part)
            n -= len(part)
            pos += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)


@contextlib.contextmanager
def _refusals(path: Path) -> Iterator[None]:
    """What zipfile, zlib and numpy's header parser raise on a malformed file, as one
    line; refusals already made pass through."""
    try:
        yield
    except SpikestreamError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as err:
        # zipfile's EOFError (a member running past the end of the file) says nothing.
        said = " ".join(str(err).split()) or "a member runs past the end of the file: truncated?"
        why = f"corrupt zip data ({said})"
        raise ConfigError(f"cannot plot {str(path)!r}: {why}") from None
    except NotImplementedError as err:
        # zipfile's word for patched data, strong encryption or a newer zip version (in
        # a member's directory entry): it was a traceback.
        why = f"it uses a zip feature this reader does not support ({err})"
        raise ConfigError(
            f"cannot plot {str(path)!r}: {why}; expected stored or deflated members"
        ) from None
    except (ValueError, TypeError, SyntaxError) as err:
        why = f"malformed content ({type(err).__name__}: {' '.join(str(err).split())})"
        raise ConfigError(f"cannot plot {str(path)!r}: {why}") from None


@dataclass
class _Axis:
    """The time axis drawn: the rows cut into buckets of ``step`` rows (1: every row)."""

    rows: int
    step: int
    #: ``t`` of each bucket's first row, and of the last row.
    first: FloatArray = field(init=False)
    last: float = field(init=False, default=math.nan)
    #: Buckets holding a gap row (``gaps``), None without a ``gaps`` array.
    gaps: npt.NDArray[np.bool_] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.first = np.full(self.buckets, np.nan)

    @property
    def buckets(self) -> int:
        return -(-self.rows // self.step)

    def spans(self) -> list[tuple[float, float]]:
        """The gaps as ``(start, stop)`` times, from a gap bucket's first row to the first
        row after it (the last row when the gap runs to the end)."""
        if self.gaps is None or not self.gaps.any():
            return []
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self.gaps.astype(np.int8), [0]])))
        ends = [*self.first[1:].tolist(), self.last]
        return [
            (float(self.first[a]), ends[b - 1])
            for a, b in zip(edges[::2], edges[1::2], strict=True)
        ]


def _with_time(
    src: _Source, name: str, header: Header, cols: npt.NDArray[np.intp] | None = None
) -> Iterator[tuple[int, FloatArray, AnyArray]]:
    """``(first row, t, rows)`` chunks of ``name``, with ``t`` read alongside; the rows
    flattened and cut to the sorted columns ``cols`` (all when None): ``(k, cols.size)``.
    A chunk holds at most :data:`CHUNK_BYTES` of rows, counted as float64 to bound the
    panels' float64 temporaries too; a row wider than that is one chunk, read in pieces
    of at most :data:`CHUNK_BYTES` of which only ``cols`` are kept."""
    shape, dtype = header
    width = math.prod(shape[1:])
    if cols is None:
        cols = np.arange(width)
    chunk = max(1, min(CHUNK_ROWS, CHUNK_BYTES // max(1, width * max(8, dtype.itemsize))))
    one = np.arange(1)
    start = 0
    for t, block in zip(src.rows("t", chunk, one), src.rows(name, chunk, cols), strict=True):
        yield start, t[:, 0].astype(np.float64), block
        start += t.shape[0]


def _buckets(axis: _Axis, start: int, k: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Of rows ``start .. start + k``: the index of the first row of each bucket they
    reach (in the chunk), and those buckets."""
    ids = (start + np.arange(k)) // axis.step
    heads = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return heads, ids[heads]


def _read_axis(src: _Source, rows: int, keys: list[str]) -> _Axis:
    """One pass over ``t`` (and ``gaps``): the bucket grid every panel shares."""
    axis = _Axis(rows, 1 if rows <= MAX_POINTS else -(-rows // (MAX_POINTS // 2)))
    name, header = "t", _header(src, "t", _TIME, rows)  # t alongside itself: no gaps
    if "gaps" in keys:
        name, header = "gaps", _header(src, "gaps", _REAL, rows, ndim=1)
        axis.gaps = np.zeros(axis.buckets, dtype=bool)
    for start, t, block in _with_time(src, name, header):
        heads, b = _buckets(axis, start, t.size)
        starts = heads[(start + heads) % axis.step == 0]  # a bucket's first row
        axis.first[(start + starts) // axis.step] = t[starts]
        if axis.gaps is not None:
            axis.gaps[b] |= np.logical_or.reduceat(block.any(axis=1), heads)
        axis.last = float(t[-1])
    return axis


def _header(src: _Source, name: str, kinds: str, rows: int, ndim: int = 0) -> Header:
    """``name``'s shape and dtype, refused unless it has ``rows`` rows (and ``ndim``
    dimensions when given)."""
    shape, dtype = src.header(name, kinds)
    if not shape or shape[0] != rows or (ndim and len(shape) != ndim):
        want = f"{ndim}-d, " if ndim else ""
        raise ConfigError(
            f"cannot plot {src.what(name)}: its shape is {shape}; expected {want}{rows} rows "
            "(one per row of 't')"
        )
    return shape, dtype


def _trace(src: _Source, name: str, header: Header, axis: _Axis) -> tuple[FloatArray, FloatArray]:
    """``(x, y)`` of a value panel's first :data:`MAX_TRACES` traces: every row, or per
    bucket its minimum and maximum in the order they occur (NaN when the bucket holds a
    NaN, so a gap stays a break)."""
    shape = header[0]
    cols = min(MAX_TRACES, math.prod(shape[1:]))
    drawn = np.arange(cols)
    if axis.step == 1:
        x = np.empty(axis.rows)
        y = np.empty((axis.rows, cols))
        for start, t, block in _with_time(src, name, header, drawn):
            x[start : start + t.size] = t
            y[start : start + t.size] = block
        return x, y
    n = axis.buckets
    lo, hi = np.full((n, cols), np.inf), np.full((n, cols), -np.inf)
    t_lo, t_hi = np.zeros((n, cols)), np.zeros((n, cols))
    nan = np.zeros((n, cols), dtype=bool)
    seen = np.zeros(n, dtype=bool)
    for start, t, block in _with_time(src, name, header, drawn):
        k = t.size
        values = block.astype(np.float64)
        heads, b = _buckets(axis, start, k)
        sizes = np.diff(np.append(heads, k))
        holes = np.isnan(values)
        nan[b] |= np.logical_or.reduceat(holes, heads, axis=0)
        fresh = ~seen[b][:, None]
        seen[b] = True
        for best, at, fill, pick in (
            (lo, t_lo, np.inf, np.minimum),
            (hi, t_hi, -np.inf, np.maximum),
        ):
            v = np.where(holes, fill, values)
            ext = pick.reduceat(v, heads, axis=0)
            # The first row of each bucket at which its extreme occurs.
            row = np.where(v == np.repeat(ext, sizes, axis=0), np.arange(k)[:, None], k - 1)
            when = t[np.minimum.reduceat(row, heads, axis=0)]
            take = fresh | (pick(ext, best[b]) != best[b])
            best[b] = np.where(take, ext, best[b])
            at[b] = np.where(take, when, at[b])
    early = t_lo <= t_hi
    x = np.stack([np.where(early, t_lo, t_hi), np.where(early, t_hi, t_lo)], axis=1)
    y = np.stack([np.where(early, lo, hi), np.where(early, hi, lo)], axis=1)
    holes = np.broadcast_to(nan[:, None, :], x.shape)
    x = np.where(holes, axis.first[:, None, None], x)  # a break at the bucket's start
    y = np.where(holes, np.nan, y)
    return x.reshape(2 * n, cols), y.reshape(2 * n, cols)


@dataclass
class _Spikes:
    """Spike events of a raster, thinned evenly to at most :data:`MAX_SPIKES`: event
    ``i`` (in time order) is kept when ``i % stride == 0``, and the stride doubles
    whenever more than :data:`MAX_SPIKES` are kept."""

    total: int = 0
    stride: int = 1
    times: list[FloatArray] = field(default_factory=list)
    neurons: list[npt.NDArray[np.int32]] = field(default_factory=list)
    kept: int = 0

    def add(self, times: FloatArray, neurons: npt.NDArray[np.int32]) -> None:
        first = (-self.total) % self.stride  # the first new event with i % stride == 0
        self.total += times.size
        times, neurons = times[first :: self.stride], neurons[first :: self.stride]
        self.times.append(times)
        self.neurons.append(neurons)
        self.kept += times.size
        while self.kept > MAX_SPIKES:
            kept_t, kept_n = self.joined()
            self.times, self.neurons = [kept_t[::2]], [kept_n[::2]]
            self.kept, self.stride = self.times[0].size, 2 * self.stride

    def joined(self) -> tuple[FloatArray, npt.NDArray[np.int32]]:
        if not self.times:
            return np.empty(0), np.empty(0, dtype=np.int32)
        return np.concatenate(self.times), np.concatenate(self.neurons)


def _raster(src: _Source, key: str, header: Header, cols: npt.NDArray[np.intp]) -> _Spikes:
    spikes = _Spikes()
    for _start, t, block in _with_time(src, key, header, cols):
        ticks, neurons = np.nonzero(block)
        spikes.add(t[ticks], neurons.astype(np.int32))
    return spikes


def _json_type(value: object) -> str:
    """``value``'s JSON type, as a refusal names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _meta(src: _Source) -> dict[str, Any]:
    """The file's ``meta`` JSON object (or one made from the ``<pop>.spikes`` keys when
    there is none), refused in one line unless ``inputs`` and ``populations`` are arrays
    of strings and ``probes`` an object of strings (``network``, when present, a string).
    A ``meta`` stored as bytes is read as UTF-8."""
    keys = src.keys()
    if "meta" not in keys:
        pops = sorted(k[: -len(".spikes")] for k in keys if k.endswith(".spikes"))
        return {"network": "", "populations": pops, "inputs": [], "probes": {}}
    what = src.what("meta")
    arr = src.whole("meta")
    if arr.shape != () or arr.dtype.kind not in _TEXT:
        raise ConfigError(
            f"cannot plot {what}: it holds {arr.dtype} of shape {arr.shape}; expected one "
            "JSON string"
        )
    item = arr.item()
    try:
        text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError too
        why = f"{type(err).__name__}: {' '.join(str(err).split())}"
        raise ConfigError(f"cannot plot {what}: it is not JSON ({why})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"cannot plot {what}: it is {_json_type(meta)}; expected a JSON object")
    for key, kind, expected in (
        ("inputs", list, "an array of strings"),
        ("populations", list, "an array of strings"),
        ("probes", dict, "an object mapping each probe to its kind (a string)"),
        ("network", str, "a string"),
    ):
        value = meta.get(key)
        if key not in meta:
            if key == "network":
                continue  # only the title shows it
            got = "missing"
        elif not isinstance(value, kind):
            got = _json_type(value)
        elif kind is str:
            continue
        else:
            items = value.values() if isinstance(value, dict) else value
            odd = [v for v in items if not isinstance(v, str)]
            if not odd:
                continue
            got = f"{_json_type(value)} holding {_json_type(odd[0])}"
        raise ConfigError(f"cannot plot {what}: its {key!r} is {got}; expected {expected}")
    return meta


def plot_suffixes() -> tuple[str, ...]:
    """The suffixes ``--plot`` takes: every format matplotlib can write here (``.png``,
    ``.pdf``, ``.svg``, ``.jpg``...), asked of matplotlib rather than listed.

    Raises:
        ConfigError: matplotlib is not installed (the client's ``plot`` extra).
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which is not installed; expected it with "
            "pip install 'spikestream-client[plot]' (or without --plot)"
        ) from None

    return tuple(sorted(f".{kind}" for kind in FigureCanvasBase.get_supported_filetypes()))


def check_plot(path: Path) -> None:
    """Refuse a ``--plot`` file that could not be written, before ``run`` or ``record``
    rather than after (a missing folder or an unknown suffix was a traceback once the run
    or the recording was done).

    Raises:
        ConfigError: one line naming the file and what was expected.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(
            f"--plot: cannot write {str(path)!r}: folder {str(folder)!r} does not exist"
        )
    if path.is_dir():
        raise ConfigError(f"--plot: {str(path)!r} is a folder; expected a file name")
    if path.is_fifo() or path.is_socket():  # failed only after the run: not seekable
        raise ConfigError(
            f"--plot: cannot write {str(path)!r}: it exists and is not a regular file (a "
            "FIFO or socket, which an image cannot be written to); expected a file name"
        )
    if path.suffix.lower() not in (suffixes := plot_suffixes()):
        got = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ConfigError(f"--plot: {str(path)!r} has {got}; expected one of {', '.join(suffixes)}")
    # A read-only folder (or file system) failed only when the finished run was drawn.
    # Creating a file is the test: os.access says yes to root on a read-only mount.
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise ConfigError(
            f"--plot: cannot write {str(path)!r}: folder {str(folder)!r} refuses new files "
            f"({err.strerror or err}); expected a writable folder"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(
            f"--plot: cannot write {str(path)!r}: it exists and is read-only; expected a "
            "file that may be replaced"
        )


def plot_run(arrays: Mapping[str, npt.NDArray[Any]], path: str | Path, *, title: str = "") -> Path:
    """Draw the run in ``arrays`` to the PNG file ``path``.

    Panels, top to bottom: inputs, one spike raster per population, then each value probe
    (``filtered``, ``decoded``, ``voltage``). Gaps recorded as NaN (by ``record``) show as
    breaks in the traces and shaded spans. A run of more than :data:`MAX_POINTS` ticks is
    drawn decimated, as :func:`plot_run_file` describes. At most :data:`MAX_PANELS` (64)
    panels are drawn, the first ones in that order; when there are more, a note at the
    foot of the figure and a warning on the ``spikestream_client`` logger say how many
    were left out.

    Raises:
        ConfigError: Nothing to draw: no input, spike or value panel, or no rows (a run
            of 0 ticks, or a recording in which no tick was kept); or ``meta`` is not a
            JSON object whose ``inputs`` and ``populations`` are arrays of strings and
            whose ``probes`` maps names to kinds (strings): one line naming the key, what
            it held and what was expected.
    """
    if isinstance(arrays, np.lib.npyio.NpzFile) and arrays.zip is not None:
        # np.load's lazy file: read as a stream, not member by member whole.
        where = Path(getattr(arrays.fid, "name", "the .npz file"))
        return _plot(_NpzFile(where, arrays.zip), Path(path), title)
    return _plot(_InMemory(arrays), Path(path), title)


def plot_run_file(npz: str | Path, path: str | Path, *, title: str = "") -> Path:
    """Draw the run in the ``.npz`` file ``npz`` (stored or deflated) to ``path``, as
    :func:`plot_run` does, in memory bounded independently of the run's length.

    Each member is read as a stream of row chunks of at most :data:`CHUNK_BYTES` (4 MiB);
    a row wider than that (a file may claim ``(1, 10**9)``) is read in pieces of at most
    :data:`CHUNK_BYTES` of which only the columns drawn are kept, so no row is ever held
    whole. Only what is drawn is kept, per panel, for at most :data:`MAX_PANELS` (64)
    panels (the rest are left out, as :func:`plot_run` says): a value
    panel its first :data:`MAX_TRACES` (40) traces of at most :data:`MAX_POINTS`
    (20,000) points (about 13 MB of float64 times and values, plus 10,000 buckets of
    reductions while reading), a raster at most :data:`MAX_SPIKES` (2,000,000) spikes of
    :data:`MAX_RASTER_NEURONS` neurons (12 bytes each: 24 MB, twice that while
    thinning). A run of more than :data:`MAX_POINTS` ticks is cut into 10,000 buckets of
    equal row counts: each trace is drawn as the minimum and maximum of each bucket, in
    the order they occur, and a bucket holding a NaN (a gap) as a break; gaps are shaded
    bucket by bucket. The bound grows with the number of panels drawn, never with the
    number of rows, the width of a row or the number of probes in the file (a 1 GB row
    of a 1 MB file: 41 MiB traced; 1000 probes: 56 MiB, 64 panels drawn). matplotlib's
    figure and rendering come on top
    (``spikestream run`` of 100 s of 1000 neurons with a voltage probe: 263 MB peak RSS
    with ``--plot``, two rasters of 1 million drawn spikes each, against 140 MB without).

    Every header is checked before its data is read (real numbers, C order, a shape its
    member's bytes hold, as many rows as ``t``), and ``meta`` as :func:`plot_run` says, so
    a hostile file is refused in one line.

    Raises:
        ConfigError: Nothing to draw (as :func:`plot_run`), or the file is not an
            ``.npz`` of such arrays.
    """
    where = Path(npz)
    with _refusals(where):  # the members' reads are wrapped too, not the drawing
        try:
            with where.open("rb") as fh:  # before ZipFile reads the directory whole
                check_zip_directory(fh, MAX_MEMBERS)
            zf = zipfile.ZipFile(where)
        except OSError as err:
            raise ConfigError(f"cannot plot {str(where)!r}: {err.strerror or err}") from None
    with zf:
        return _plot(_NpzFile(where, zf), Path(path), title)


def _plot(src: _Source, path: Path, title: str) -> Path:
    keys = src.keys()
    t_shape = src.header("t", _TIME)[0] if "t" in keys else None
    if t_shape is None or len(t_shape) != 1 or t_shape[0] == 0:
        # Checked before matplotlib loads: 0 rows made the first value panel's reshape
        # raise a numpy ValueError from deep inside the drawing.
        got = "no 't' array" if t_shape is None else f"'t' of shape {t_shape}"
        raise ConfigError(f"nothing to plot: expected at least one tick (row), got {got}")
    rows = t_shape[0]
    meta = _meta(src)
    panels: list[tuple[str, str]] = [("input", name) for name in meta["inputs"] if name in keys]
    panels += [("raster", p) for p in meta["populations"] if f"{p}.spikes" in keys]
    panels += [
        ("values", name)
        for name, kind in meta["probes"].items()
        if kind in ("filtered", "decoded", "voltage", "values") and name in keys
    ]
    if not panels:
        raise ConfigError("nothing to plot: the run has no inputs, spikes or value probes")
    left_out = len(panels) - MAX_PANELS
    panels = panels[:MAX_PANELS]
    if left_out > 0:
        # Said before the drawing, which may take a while: the figure says it too.
        log.warning(
            "plot %r: drawing the first %d of %d panels; %d left out (at most %d per figure)",
            str(path),
            MAX_PANELS,
            MAX_PANELS + left_out,
            left_out,
            MAX_PANELS,
        )
    # Every header is checked before anything is read or drawn.
    headers: dict[str, Header] = {}
    for kind, name in panels:
        if kind == "raster":
            headers[f"{name}.spikes"] = _header(src, f"{name}.spikes", _REAL, rows, ndim=2)
        else:
            headers[name] = _header(src, name, _REAL, rows)
    axis = _read_axis(src, rows, keys)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    heights = [2.0 if kind == "raster" else 1.4 for kind, _ in panels]
    note = 0.3 if left_out > 0 else 0.0  # inches kept below the panels for the note
    height = sum(heights) + 0.8 + note
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(10, height), squeeze=False)
    rng = np.random.default_rng(0)
    spans = axis.spans()
    for ax, (kind, name) in zip(axes[:, 0], panels, strict=True):
        if kind == "raster":
            key = f"{name}.spikes"
            n = headers[key][0][1]
            if n > MAX_RASTER_NEURONS:  # chosen without an index per neuron (n may be 10**9)
                cols = np.sort(rng.choice(n, MAX_RASTER_NEURONS, replace=False))
            else:
                cols = np.arange(n)
            spikes = _raster(src, key, headers[key], cols)
            times, neurons = spikes.joined()
            ax.scatter(times, neurons, s=1.0, marker="|", color="k", linewidths=0.5)
            ax.set_ylim(-0.5, len(cols) - 0.5)
            shown = f" ({len(cols)} of {n})" if len(cols) < n else ""
            ax.set_ylabel(f"{name}\nneuron{shown}", **_LITERAL)
            if spikes.stride > 1:  # thinned: the panel says so
                ax.text(
                    0.995,
                    0.97,
                    f"{spikes.kept:,} of {spikes.total:,} spikes drawn",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
                )
        else:
            x, y = _trace(src, name, headers[name], axis)
            ax.plot(x, y, linewidth=0.8)
            label = meta["probes"].get(name, "input")
            ax.set_ylabel(f"{name}\n({label})", **_LITERAL)
        for start, stop in spans:
            ax.axvspan(start, stop, color="tab:red", alpha=0.2)
    axes[-1, 0].set_xlabel("time (s)")
    if left_out > 0:
        fig.text(
            0.5,
            note / 2 / height,
            f"{left_out:,} more panel(s) left out: at most {MAX_PANELS} are drawn "
            f"(the first {MAX_PANELS} of {MAX_PANELS + left_out:,})",
            ha="center",
            va="center",
            fontsize=9,
            color="tab:red",
        )
    fig.suptitle(title or f"network {meta.get('network', '')}".strip(), **_LITERAL)
    fig.tight_layout(rect=(0.0, note / height, 1.0, 1.0))
    try:
        fig.savefig(path, dpi=100)
    except OSError as err:
        # A full disk or read-only folder, found after the whole run: one line, not a
        # traceback. The truncated image is removed (a link's target is left alone).
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
        raise ConfigError(
            f"cannot write plot {str(path)!r}: {err.strerror or err}; expected a writable "
            "folder with room for the file"
        ) from None
    finally:
        plt.close(fig)
    return path
