"""Array files named by a network file (weights, encoders, signal samples), read as hostile.

A network file may name any path: a FIFO or ``/dev/zero`` would block the build or feed it
for ever, and a ``.npy`` header may claim terabytes in a file of a few bytes. Both are
refused here, with one line naming the key and the file, before anything is allocated.
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from spikestream.errors import NetworkFileError
from spikestream.spec import VALUE_LIMIT

#: Longest ``.npy`` header parsed (numpy's own default limit).
NPY_HEADER_MAX_BYTES = 10_000


def open_regular(path: Path, where: str) -> IO[bytes]:
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
        raise NetworkFileError(
            f"{where}: {str(path)!r} is not a regular file; expected a .npy or CSV file"
        )
    return os.fdopen(fd, "rb")


class Readable(Protocol):
    """A binary stream (a file, a zip member, a bounded reader)."""

    def read(self, n: int = -1, /) -> bytes: ...


def read_npy_header(fp: Readable, max_bytes: int) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Parse the ``.npy`` header at the start of ``fp`` alone, without touching the array.

    Returns:
        ``(shape, fortran_order, dtype)``, as the header states them.

    Raises:
        ValueError: not a ``.npy`` header of format 1.0 or 2.0, or longer than ``max_bytes``.
    """
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(fp, max_bytes)
    elif version == (2, 0):
        header = np.lib.format.read_array_header_2_0(fp, max_bytes)
    else:
        raise ValueError(f"it has .npy format {version}; expected 1.0 or 2.0")
    shape, fortran, dtype = header
    return tuple(shape), bool(fortran), dtype


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
    with open_regular(path, where) as fh:
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
