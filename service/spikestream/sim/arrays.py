"""The simulator's arrays: per population and per connection, allocated once at build.

Every array here is C-contiguous and never rebound after construction (``set_state`` and
``reset`` write into them), so compiled programs may keep their addresses.

The arrays a tick reads start on a cache line (:func:`aligned`). numpy's allocator only
promises 16 bytes, and a 16-D float32 decoder row is 64 bytes: at a base 16, 32 or 48
bytes past a line (most matrices of a 150k chain) every row an event-driven kernel reads
for a spiker straddles two lines, so each spike costs two misses instead of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import Connection, Population

Array = npt.NDArray[np.floating]

#: Bytes per cache line on x86-64 and most ARM cores: where :func:`aligned` arrays start.
CACHE_LINE = 64


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised C-contiguous array whose first byte starts a cache line: a view
    into a buffer up to :data:`CACHE_LINE` bytes longer than its data (the view keeps the
    buffer alive)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE, np.uint8)
    skip = -raw.ctypes.data % CACHE_LINE
    return raw[skip : skip + nbytes].view(dtype).reshape(shape)


def aligned(values: npt.ArrayLike, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A C-contiguous copy of ``values`` in ``dtype`` whose first byte starts a cache line.

    It has the shape of ``values`` and equals it element for element after the cast (an
    empty array has no bytes to place). Allocated once, at build time.
    """
    src = np.asarray(values)
    out = _aligned_empty(src.shape, np.dtype(dtype))
    out[...] = src
    return out


def aligned_zeros(shape: int | tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """Zeros of ``shape`` in ``dtype``, C-contiguous, starting on a cache line."""
    dims = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(k) for k in shape)
    out = _aligned_empty(dims, np.dtype(dtype))
    out[...] = 0
    return out


@dataclass(eq=False)
class _PopState:
    """One population's arrays, each ``(n,)``; ``count``: how many spiked this tick."""

    pop: Population
    J: Array
    v: Array
    ref: Array
    spiked: npt.NDArray[np.bool_]
    s01: Array  # 1.0 where spiked this tick, else 0.0
    tmp: Array
    tmp2: Array
    idx: npt.NDArray[np.intp]
    idx2: npt.NDArray[np.intp]
    arange: npt.NDArray[np.intp]
    count: int = 0


@dataclass(eq=False)
class _ConnState:
    """One connection's arrays and its learning settings."""

    conn: Connection
    current: Array  # (post.n,): the post current this connection contributes
    filtered: Array  # dense: same array as current; decoded: (d_out,) decoded value
    decoders: Array | None  # decoded: (pre.n, d_out) in the simulator dtype (learned in place)
    learning_rate: float
    learning_enabled: bool
    pre_activity: Array | None  # PES: lowpass of pre spikes, (pre.n,)
    error_filtered: Array | None = None  # PES with an error synapse: the filtered error
