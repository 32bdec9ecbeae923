"""Array files named by a network file (weights, encoders, signal samples), read as hostile.

A network file may name any path: a FIFO or ``/dev/zero`` would block the build or feed it
for ever, and a ``.npy`` header may claim terabytes in a file of a few bytes. Both are
refused here, with one line naming the key and the file, before anything is allocated.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import typing
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from spikestream.errors import ConfigError, NetworkFileError, SpikestreamError
from spikestream.spec import VALUE_LIMIT
from spikestream_client.npz import read_npy_header as _read_npy_header

if TYPE_CHECKING:
    from spikestream.spec import NetworkSpec

#: Longest ``.npy`` header parsed (numpy's own default limit).
NPY_HEADER_MAX_BYTES = 10_000
_CHUNK = 1 << 18  # bytes read from a zip member at a time


def files_read(spec: NetworkSpec) -> list[tuple[str, Path]]:
    """Every file the network reads when it is built and run, as ``(key path, file)``:
    each field declared a ``FilePath`` in the network file's schema (array files of
    tuning values, encoders, weights and decoders, signal samples), resolved against the
    network's folder. Found from the schema, not listed here, so a file-valued key added
    later is covered too."""
    from pydantic import BaseModel

    from spikestream.spec import FilePath

    def is_path_type(annotation: object) -> bool:
        if annotation == FilePath:
            return True
        return any(is_path_type(arg) for arg in getattr(annotation, "__args__", ()))

    # A field typed ``FilePath`` alone keeps its validator in ``metadata``, not its type.
    markers = typing.get_args(FilePath)[1:]
    found: list[tuple[str, Path]] = []

    def walk(value: object, where: str, is_path: bool) -> None:
        if isinstance(value, BaseModel):
            for name, info in type(value).model_fields.items():
                marked = is_path_type(info.annotation) or any(m in markers for m in info.metadata)
                walk(getattr(value, name), f"{where}.{name}" if where else name, marked)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}", is_path)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", is_path)
        elif isinstance(value, str) and is_path:
            found.append((where, spec.resolve(value)))

    walk(spec, "", False)
    return found


def open_regular(path: Path, where: str, expected: str = "a .npy or CSV file") -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file (links are followed: the network
    file's author chose the path).

    Raises:
        NetworkFileError: it cannot be opened, or is a folder, FIFO, device or socket.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise NetworkFileError(f"{where}: cannot read {str(path)!r}: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NetworkFileError(f"{where}: {str(path)!r} is not a regular file; expected {expected}")
    return os.fdopen(fd, "rb")


class Readable(Protocol):
    """A binary stream (a file, a zip member, a bounded reader)."""

    def read(self, n: int = -1, /) -> bytes: ...


def read_npy_header(fp: Readable, max_bytes: int) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Parse the ``.npy`` header at the start of ``fp`` alone, without touching the array
    (the client's reader, :func:`spikestream_client.npz.read_npy_header`, its refusals
    worded for a message that names the file first: ``it has .npy format (3, 0)``).

    Returns:
        ``(shape, fortran_order, dtype)``, as the header states them.

    Raises:
        ValueError: not a ``.npy`` header of format 1.0 or 2.0, a size below 0, or a
            header longer than ``max_bytes``.
    """
    try:
        return _read_npy_header(fp, max_bytes)
    except ValueError as err:
        said = str(err)
        if said.startswith(".npy format"):
            raise ValueError(f"it has {said}") from None
        raise ValueError(f"its {said}" if said.startswith(".npy") else said) from None


class BoundedReader:
    """Delivers at most ``limit`` bytes of ``raw``; asking for more is refused.

    Reads never request more than one byte past the limit from ``raw``, so a compressed
    stream that would inflate to gigabytes is inflated by ``limit + 1`` bytes at most (a
    zip member is decompressed as it is read), whatever sizes its headers claim.
    """

    def __init__(
        self, raw: Readable, limit: int, what: str, error: Callable[[str], Exception] = ConfigError
    ) -> None:
        self.raw = raw
        self.limit = limit
        self.what = what
        self.error = error
        self.count = 0

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (``n < 0``: up to the limit).

        Raises:
            ``error``: the stream holds more than ``limit`` bytes.
        """
        room = self.limit - self.count
        want = room + 1 if n < 0 else min(n, room + 1)
        data = self.raw.read(want) if want > 0 else b""
        self.count += len(data)
        if self.count > self.limit:
            raise self.error(f"{self.what} inflates past {self.limit} bytes")
        return data


#: Checks a member's header ``(shape, dtype)`` before its array is allocated; raises to refuse.
HeaderCheck = Callable[[tuple[int, ...], np.dtype[Any]], None]


@contextlib.contextmanager
def zip_refusals(refuse: Callable[[str], Exception]) -> Iterator[None]:
    """Turn what zipfile and numpy's header parser raise on malformed input into
    ``refuse(why)``; refusals already raised pass through.

    Raises:
        whatever ``refuse`` returns.
    """
    try:
        yield
    except SpikestreamError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise refuse(f"corrupt zip data ({err})") from None
    except (ValueError, TypeError, SyntaxError, NotImplementedError, RuntimeError) as err:
        raise refuse(f"malformed content ({type(err).__name__}: {err})") from None


def read_npy_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    *,
    max_bytes: int,
    header_max_bytes: int,
    check_header: HeaderCheck,
    refuse: Callable[[str], Exception],
) -> npt.NDArray[Any]:
    """Read one ``.npy`` member of a zip, inflating at most ``max_bytes`` of it.

    The header is parsed alone and passed to ``check_header`` before the array is
    allocated, so a header claiming terabytes costs nothing. The array comes back in
    native byte order.

    Raises:
        whatever ``refuse(why)`` returns (``why`` names the member) or ``check_header``
        raises.
    """
    what = f"member {info.filename!r}"
    with zf.open(info) as raw:
        fp = BoundedReader(raw, max_bytes, what, refuse)
        try:
            shape, fortran, dtype = read_npy_header(fp, header_max_bytes)
        except SpikestreamError:  # the bound was hit: already a refusal
            raise
        except ValueError as err:
            raise refuse(f"{what}: {err}") from None
        check_header(shape, dtype)
        needed = math.prod(shape) * dtype.itemsize
        if needed > max_bytes - fp.count:
            raise refuse(
                f"{what}: its header claims shape {shape} ({needed} bytes); at most "
                f"{max(0, max_bytes - fp.count)} bytes of data fit"
            )
        arr = np.empty(math.prod(shape), dtype)
        out = arr.view(np.uint8)
        pos = 0
        while pos < out.size:
            chunk = fp.read(min(_CHUNK, out.size - pos))
            if not chunk:
                raise refuse(f"{what} ends after {pos} of {out.size} bytes")
            out[pos : pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
            pos += len(chunk)
        if fp.read(1):  # also makes zipfile check the CRC of the whole member
            raise refuse(f"{what} has bytes after its array")
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def load_npy(
    path: Path, where: str, check_shape: Callable[[tuple[int, ...]], None] | None = None
) -> npt.NDArray[Any]:
    """Read a ``.npy`` file of real numbers (integers or floats, no pickles).

    The header is checked before the array is allocated: its dtype must be real numbers,
    and its shape must fit in the bytes the file holds. ``check_shape``, given the header's
    shape, raises when it is not a shape the caller can use: a large file of the wrong
    shape is then refused without being read.

    Raises:
        NetworkFileError: naming ``where``, the file and what was wrong.
    """
    with open_regular(path, where) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            shape, _fortran, dtype = read_npy_header(fh, NPY_HEADER_MAX_BYTES)
            if dtype.kind not in "iuf":
                raise ValueError(f"it holds {dtype} values; expected real numbers")
            needed = math.prod(shape) * dtype.itemsize
            held = size - fh.tell()
            if needed > held:
                raise ValueError(
                    f"its header claims shape {tuple(shape)} ({needed} bytes) but the file "
                    f"holds {held} bytes of data"
                )
        except (OSError, ValueError, EOFError, SyntaxError) as err:
            raise NetworkFileError(f"{where}: cannot load {str(path)!r}: {err}") from None
        if check_shape is not None:
            check_shape(tuple(shape))  # outside the try: its own error goes out as raised
        try:
            fh.seek(0)
            data: npt.NDArray[Any] = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, SyntaxError) as err:
            raise NetworkFileError(f"{where}: cannot load {str(path)!r}: {err}") from None
    return data


def load_csv(path: Path, where: str) -> npt.NDArray[np.float64]:
    """Read a CSV file of numbers, one row per line, as float64 of shape ``(rows, cols)``.

    Raises:
        NetworkFileError: naming ``where``, the file and what was wrong.
    """
    with open_regular(path, where) as fh, warnings.catch_warnings():
        # An empty file gives 0 rows, which the caller refuses in one line; numpy's
        # two-line warning about it came first (not JSON under --log-format json).
        warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
        try:
            text = io.TextIOWrapper(fh, encoding="utf-8")
            return np.loadtxt(text, delimiter=",", ndmin=2, dtype=np.float64)
        except (OSError, ValueError) as err:
            raise NetworkFileError(f"{where}: cannot read {str(path)!r}: {err}") from None


def check_values(data: npt.NDArray[Any], path: Path, where: str) -> npt.NDArray[np.float64]:
    """``data`` as float64 if every value is finite with ``|value| <= VALUE_LIMIT`` (the
    bound on numbers written in the network file itself).

    Raises:
        NetworkFileError: naming ``where``, the file, how many values and what is allowed.
    """
    values = np.asarray(data, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = int(np.count_nonzero(~(np.abs(values) <= VALUE_LIMIT)))  # NaN compares False
    if bad:
        raise NetworkFileError(
            f"{where}: {str(path)!r} holds {bad} value(s) that are NaN, infinite or beyond "
            f"+-{VALUE_LIMIT:g}, which is not allowed; expected finite numbers with "
            f"|value| <= {VALUE_LIMIT:g}"
        )
    return values
