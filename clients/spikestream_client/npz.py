"""The ``.npz`` layout of a run, and its one writer: ``spikestream run`` and
``spikestream record`` both write through this module (``docs/NPZ.md`` lists every key).

The layout (DESIGN.md section 3, extended by ``docs/NPZ.md``):

* keys every file has: each probe ``<probe>`` with one row per tick (spikes ``uint8``
  0/1 ``(ticks, n)``, values ``(ticks, *shape)`` in the network's dtype), ``t``
  (``float64``, ``(tick + 1) * dt``), ``tick`` (``int64``), and the 0-d ``dt``,
  ``network``, ``dtype`` and ``meta`` (a JSON string; :data:`COMMON_META` are the keys
  both commands write in it);
* ``run`` adds what only the simulator knows (build arrays, ``<pop>.spikes``, the
  offline inputs, ``seed``); ``record`` adds what only a recording can lose (``gaps``,
  ``<probe>.gaps``, ``segment``).

:class:`NpzWriter` writes the file (the format ``np.load`` reads) array by array or block
by block, to a temporary name renamed into place on success, so a long run holds one
block in memory and a failed write never leaves half a file. numpy and the standard
library only: the service imports this module, it imports nothing of the service.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import secrets
import stat
import struct
import tempfile
import tokenize
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npy_format

from spikestream_client.errors import ConfigError

__all__ = [
    "COMMON_KEYS",
    "COMMON_META",
    "COPY_BYTES",
    "SPIKE_DTYPE",
    "TICK_DTYPE",
    "TIME_DTYPE",
    "VALUE_DTYPES",
    "WIRE_DTYPE",
    "NpzStream",
    "NpzWriter",
    "check_zip_directory",
    "header_arrays",
    "layout_meta",
    "read_npy_header",
    "save_npz",
    "time_of",
    "value_dtype",
]

AnyArray = npt.NDArray[Any]

SPIKE_DTYPE: Final = np.dtype(np.uint8)
"""Spike rows: 0/1 per tick and neuron (``<probe>``, ``<pop>.spikes``)."""
TIME_DTYPE: Final = np.dtype(np.float64)
"""``t`` and ``dt``: seconds."""
TICK_DTYPE: Final = np.dtype(np.int64)
"""``tick``: tick indices."""
VALUE_DTYPES: Final = ("float32", "float64")
"""The network dtypes (``dtype``), which value probes are stored in."""
WIRE_DTYPE: Final = "float32"
"""The dtype of value frames on the wire (``record`` without a ``describe`` document)."""

COMMON_KEYS: Final = ("t", "tick", "dt", "network", "dtype", "meta")
"""Keys of every file besides the probes (no probe may be named like one)."""
COMMON_META: Final = (
    "network",
    "dt",
    "dtype",
    "populations",
    "inputs",
    "probes",
    "source",
    "ticks",
    "first_tick",
    "last_tick",
)
"""Keys of ``meta`` that both commands write (see :func:`layout_meta`)."""

#: errno values of a write the disk refused: full, over quota, too large, read-only.
_DISK_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

#: Bytes copied at a time from a spool file into the ``.npz``.
COPY_BYTES: Final = 4 * 2**20


def value_dtype(name: object) -> np.dtype[np.floating[Any]]:
    """The dtype value probes are stored in for network dtype ``name``: ``name`` itself
    if it is one of :data:`VALUE_DTYPES`, else :data:`WIRE_DTYPE` (what the frames carry:
    a service too old to say, or a document that says something else)."""
    return np.dtype(name if name in VALUE_DTYPES else WIRE_DTYPE)


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def read_npy_header(
    fh: _Readable, max_header_bytes: int = 10_000
) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``fh``, left at its data.
    Only the header is read (at most ``max_header_bytes`` of it): the caller checks the
    dtype and that the shape fits the bytes that follow before reading any data.

    Raises:
        ValueError: Not a ``.npy`` stream, a version other than 1.0 or 2.0, or a header
            numpy cannot parse or longer than ``max_header_bytes``.
    """
    version = npy_format.read_magic(fh)
    try:
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fh, max_header_bytes)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fh, max_header_bytes)
        else:
            raise ValueError(f".npy format {version}; expected 1.0 or 2.0")
    except (tokenize.TokenError, SyntaxError, RecursionError, MemoryError) as err:
        # numpy tokenizes the header before its own checks: an unclosed "{" raises
        # TokenError, which no caller's ValueError handler caught (a traceback). CPython
        # 3.11's parser raises MemoryError past its stack (9,000 "-" signs): the header is
        # at most max_header_bytes, so it is the parser's limit, not the machine's.
        why = f"{type(err).__name__}: {err}"
        raise ValueError(f".npy header is not a Python literal ({why})") from None
    if any(n < 0 for n in shape):  # numpy's parser takes them; a product went negative
        raise ValueError(f".npy header claims shape {tuple(shape)}; expected sizes >= 0")
    return tuple(shape), bool(fortran), dtype


# The zip end records (APPNOTE 4.3.16, 4.3.15, 4.3.14): the directory's size and count.
_END = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries, size, offset, comment
_END64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 end, disks
_END64 = struct.Struct("<4sQ2H2L4Q")  # ..., entries here, entries, size, offset
ZIP_DIRECTORY_ENTRY_BYTES: Final = 512
"""Directory bytes allowed per member expected: an entry is 46 bytes, its name and extra
fields (a zip64 extra is 28) the rest."""


class _Seekable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def check_zip_directory(fh: _Seekable, max_members: int) -> None:
    """Refuse a zip whose central directory lists more than ``max_members`` members or
    takes more than ``ZIP_DIRECTORY_ENTRY_BYTES`` per member, from its end records alone
    (the last 64 KiB and 22 bytes, the zip64 locator and end record if any), before
    ``zipfile.ZipFile`` reads the directory whole and builds an object per member: a
    90 MB file of a million empty members cost 570 MB. Leaves ``fh`` at its start.

    Raises:
        ValueError: Saying how many members and bytes the directory claims and the bound.
    """
    size = fh.seek(0, os.SEEK_END)
    # The end record and a comment after it, as far back as zipfile looks: 64 KiB, a
    # byte more than a comment can be (it found the record behind 65,536 bytes, this not).
    tail_at = max(0, size - _END.size - 0x10000)
    fh.seek(tail_at)
    tail = fh.read(size - tail_at)
    at = tail.rfind(b"PK\x05\x06", 0, max(0, len(tail) - _END.size + 4))
    if at < 0:  # not a zip: zipfile says so, as cheaply (it finds no end record either)
        fh.seek(0)
        return
    *_, members, length, _offset, _comment = _END.unpack_from(tail, at)
    found = _zip64_counts(fh, tail_at + at, size)
    if found:
        # zipfile takes the zip64 record just before the locator whatever the 32-bit
        # record says (a file claiming 1 member there and 1,000,000 in zip64 cost 573 MB
        # again); another reader may follow the locator's offset. The largest claim
        # counts, and a 32-bit field counts unless it is zip64's placeholder.
        members = max([m for m, _ in found] + ([] if members == 0xFFFF else [members]))
        length = max([n for _, n in found] + ([] if length == 0xFFFFFFFF else [length]))
    fh.seek(0)
    most = max_members * ZIP_DIRECTORY_ENTRY_BYTES
    if members > max_members or length > most:
        raise ValueError(
            f"its directory lists {members} member(s) in {length} bytes; expected at most "
            f"{max_members} member(s) in {most} bytes"
        )


def _zip64_counts(fh: _Seekable, end: int, size: int) -> list[tuple[int, int]]:
    """(members, directory bytes) of each zip64 end record a reader may take: the one just
    before the locator (zipfile's) and the one at the locator's offset; none without a
    locator just before the end record at file offset ``end``."""
    if end < _END64_LOCATOR.size:
        return []
    # Read from the file, not the tail: behind a long comment the locator lies before the
    # tail, where zipfile reads it all the same (a zip64 count of 50 went unseen).
    fh.seek(end - _END64_LOCATOR.size)
    mark, _disk, where, _disks = _END64_LOCATOR.unpack(fh.read(_END64_LOCATOR.size))
    if mark != b"PK\x06\x07":
        return []
    found = []
    for offset in sorted({end - _END64_LOCATOR.size - _END64.size, where}):
        if 0 <= offset <= size - _END64.size:
            fh.seek(offset)
            record = fh.read(_END64.size)
            if record[:4] == b"PK\x06\x06":
                members, length = _END64.unpack(record)[7:9]
                found.append((members, length))
    return found


def time_of(tick: npt.NDArray[np.integer[Any]], dt: float) -> npt.NDArray[np.float64]:
    """``t`` of the rows of ``tick``: simulated time at the end of each tick,
    ``(tick + 1) * dt`` in s (as Nengo's ``trange``)."""
    return (tick.astype(TIME_DTYPE) + 1.0) * dt


def layout_meta(
    *,
    network: str,
    dt: float,
    dtype: str,
    populations: Sequence[str],
    inputs: Sequence[str],
    probes: Mapping[str, str],
    source: Literal["run", "record"],
    ticks: int,
    first_tick: int | None,
    last_tick: int | None,
    **extra: object,
) -> dict[str, object]:
    """The ``meta`` object: :data:`COMMON_META` in this order, then the command's own
    keys (``extra``; ``docs/NPZ.md`` lists them).

    Args:
        network: Network name.
        dt: Tick length (s).
        dtype: The network's dtype, as the ``dtype`` key.
        populations: Populations whose ``<pop>.*`` arrays the file holds.
        inputs: Arrays that hold input values, ``(ticks, dim)``.
        probes: Every probe array: name -> its kind in the network file (``spikes``,
            ``filtered``, ``decoded``, ``voltage``, ``input``, or ``values`` when
            ``record`` cannot tell).
        source: The command that wrote the file.
        ticks: Rows of the per-tick arrays.
        first_tick: ``tick`` of the first row (None when there are no rows).
        last_tick: ``tick`` of the last row (None when there are no rows).
        extra: The command's own keys (a common key cannot be one: it is an argument).
    """
    common: dict[str, object] = {
        "network": network,
        "dt": dt,
        "dtype": dtype,
        "populations": list(populations),
        "inputs": list(inputs),
        "probes": dict(probes),
        "source": source,
        "ticks": ticks,
        "first_tick": first_tick,
        "last_tick": last_tick,
    }
    return {**common, **extra}


def header_arrays(meta: Mapping[str, Any]) -> dict[str, AnyArray]:
    """The 0-d arrays of every file, from its ``meta`` (:func:`layout_meta`): ``dt``,
    ``network``, ``dtype`` and ``meta`` itself as a JSON string."""
    return {
        "dt": np.array(meta["dt"], dtype=TIME_DTYPE),
        "network": np.array(str(meta["network"])),
        "dtype": np.array(str(meta["dtype"])),
        "meta": np.array(json.dumps(meta)),
    }


class NpzStream:
    """One per-tick array of a :class:`NpzWriter`, written block by block (made by
    :meth:`NpzWriter.stream`)."""

    def __init__(
        self, writer: NpzWriter, name: str, shape: tuple[int, ...], dtype: np.dtype[np.generic]
    ) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype
        self._writer = writer
        self._rows = 0
        self._spool: IO[bytes] | None = None
        self._blocks: list[AnyArray] = []

    def write(self, block: AnyArray) -> None:
        """Append rows (shape ``(rows, *shape[1:])``, this array's dtype)."""
        if block.dtype != self.dtype or block.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"{self.name}: rows of {block.dtype} {block.shape[1:]}; expected "
                f"{self.dtype} {self.shape[1:]}"
            )
        if self._rows + block.shape[0] > self.shape[0]:
            raise ValueError(f"{self.name}: more than the {self.shape[0]} rows announced")
        self._rows += block.shape[0]
        if self._spool is not None:
            self._spool.write(np.ascontiguousarray(block).data)
        elif self._rows == self.shape[0]:
            # The last block: written now, while its buffer still holds it.
            self._writer._member(self.name, self.shape, self.dtype, [*self._blocks, block])
            self._blocks = []
        else:
            self._blocks.append(block.copy())  # its buffer is reused by the next block

    def finish(self) -> None:
        """Copy a spooled array into the archive."""
        if self._rows != self.shape[0]:
            raise ValueError(f"{self.name}: {self._rows} rows written of {self.shape[0]}")
        if self._spool is None:
            return
        self._spool.seek(0)
        spool = self._spool
        chunks = iter(lambda: spool.read(COPY_BYTES), b"")
        self._writer._member(self.name, self.shape, self.dtype, chunks)
        spool.close()


class NpzWriter:
    """Writes an ``.npz`` file (the format ``np.load`` reads), array by array or block by
    block, to a temporary name renamed into place on success: a failed run never leaves
    half a file behind, nor replaces an existing one.

    Members are stored uncompressed unless ``compress``; no pickled objects.
    """

    def __init__(self, path: str | Path, *, compress: bool = False) -> None:
        self.path = Path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise ConfigError(
                f"cannot write {str(self.path)!r}: folder {str(folder)!r} does not exist"
            )
        with contextlib.suppress(OSError):  # missing: written new
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                # The finished file replaces the target: run by root, --out /dev/null
                # replaced the device itself with a regular file.
                raise ConfigError(
                    f"cannot write {str(self.path)!r}: it exists and is not a regular file "
                    "(a device, FIFO, socket or folder); expected a path for an .npz file"
                )
        # Not mkstemp: its 0600 mode would survive the rename; open() honours the umask.
        self._tmp = folder / f".{self.path.name}.{secrets.token_hex(4)}.part"
        try:
            self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed in __exit__
        except OSError as err:
            raise ConfigError(f"cannot write {str(self.path)!r}: {err.strerror}") from None
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._zip = zipfile.ZipFile(self._file, "w", compression=method, allowZip64=True)
        self._streams: list[NpzStream] = []
        self._spool_dir: tempfile.TemporaryDirectory[str] | None = None

    def add(self, name: str, arr: AnyArray) -> None:
        """Write a whole array as member ``name`` (the way ``np.savez`` does)."""
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            npy_format.write_array(fh, np.asanyarray(arr), allow_pickle=False)

    def add_bytes(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: Iterator[bytes]
    ) -> None:
        """Write member ``name`` of ``shape`` and ``dtype`` from its raw C-order bytes,
        given in chunks (e.g. read from a spool file), without holding the array."""
        self._member(name, shape, dtype, chunks)

    def stream(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype[np.generic], *, spool: bool
    ) -> NpzStream:
        """A member of the given final shape, written in blocks of rows with
        :meth:`NpzStream.write`. Without ``spool`` the blocks are kept (not copied) until the
        last arrives, then written: for runs of one block. With it, they go to a spool file
        as they come, and into the archive when the writer closes."""
        s = NpzStream(self, name, shape, dtype)
        if spool:
            if self._spool_dir is None:
                self._spool_dir = tempfile.TemporaryDirectory(
                    prefix=f".{self.path.name}.", dir=self.path.parent
                )
            s._spool = open(Path(self._spool_dir.name) / f"{len(self._streams)}.bin", "w+b")  # noqa: SIM115
        self._streams.append(s)
        return s

    def _member(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        chunks: Iterator[bytes] | list[AnyArray],
    ) -> None:
        header = io.BytesIO()
        npy_format.write_array_header_1_0(
            header,
            {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape},
        )
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            for chunk in chunks:
                fh.write(chunk if isinstance(chunk, bytes) else np.ascontiguousarray(chunk).data)

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        done = False
        try:
            if exc_type is None:
                try:
                    for s in self._streams:
                        s.finish()
                    self._zip.close()
                    self._file.close()
                    os.replace(self._tmp, self.path)
                except OSError as err:  # a full disk, --out naming a folder: one line
                    raise self._refusal(err) from err
                done = True
        finally:
            self._clean_up(done)
        if isinstance(exc, OSError):
            # A write inside the block failed (the disk filled up, say): the same one line.
            raise self._refusal(exc) from exc

    def _clean_up(self, done: bool) -> None:
        """Close and delete what a failed (or interrupted) write leaves: the partial file
        and the spool folder. Nothing here may raise over the error being handled: on a
        full disk, closing the partial file flushes its buffer, which fails again
        (ENOSPC), and that OSError replaced the one-line refusal with a traceback and
        left the ``.part`` file behind. Each step is attempted whatever the others did."""
        if not done:
            # The partial file is deleted below; closing it must not hide the error.
            with contextlib.suppress(Exception):
                self._zip.close()
            with contextlib.suppress(OSError):
                self._file.close()
        for s in self._streams:
            if s._spool is not None:
                with contextlib.suppress(OSError):  # flushing a spool file to a full disk
                    s._spool.close()
        if self._spool_dir is not None:
            with contextlib.suppress(OSError):
                self._spool_dir.cleanup()
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)

    def _refusal(self, err: OSError) -> ConfigError:
        why = err.strerror or str(err)
        if err.errno in _DISK_ERRNOS:
            why += f"; expected room for the file in {str(self.path.parent)!r}"
        return ConfigError(f"cannot write {str(self.path)!r}: {why}")


def save_npz(path: str | Path, arrays: Mapping[str, AnyArray], *, compress: bool = False) -> Path:
    """Write ``arrays`` to ``path`` as an ``.npz`` (uncompressed unless ``compress``; no
    pickled objects), atomically: see :class:`NpzWriter`."""
    with NpzWriter(path, compress=compress) as npz:
        for name, arr in arrays.items():
            npz.add(name, arr)
    return npz.path
