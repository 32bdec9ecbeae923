"""Spike frames counted and sampled in bounded memory, never expanded whole.

:meth:`~spikestream_client.codec.SpikeFrame.indices` turns a frame into two int64 arrays
with one entry per spike. A bitmask frame packs 8 spike slots into a byte, so an all-ones
frame of 16 MiB (the decoder's limit) becomes 2**27 spikes: 2 GiB of indices, and several
GiB once they are masked and concatenated. The monitors need far less: spikes per tick
and neuron group over the ticks of their window (:func:`group_counts`,
:class:`CellTally`), and the newest few thousand spikes for the browser
(:func:`newest_spikes`). So these functions read only the rows asked for, in chunks of
at most :data:`CHUNK_BYTES` bytes of payload or :data:`CHUNK_SPIKES` spikes, and a
bitmask's counts per group come from byte popcounts at the group boundaries without
unpacking it at all. Whatever a frame holds, the memory they take is a few MiB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import SpikeFrame

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_SPIKES",
    "CellTally",
    "group_counts",
    "group_starts",
    "newest_spikes",
    "spike_count",
    "window_spikes",
]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
UInt = npt.NDArray[np.unsignedinteger[Any]]

CHUNK_BYTES: Final = 2**15
"""Bitmask bytes unpacked at a time: 2**18 spike slots, 256 KiB as uint8 and at most
2 MiB of int64 positions."""
CHUNK_SPIKES: Final = 2**18
"""Spikes converted to int64 (or tallied by one ``bincount``) at a time: 2 MiB per array."""
_CHUNK_POINTS: Final = 2**16
"""Group boundaries evaluated at a time by :func:`group_counts` (rows × (groups + 1))."""
_POPCOUNT: Final = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
"""Set bits of each byte value."""
_LOW_BITS: Final = np.array([(1 << k) - 1 for k in range(8)], dtype=np.uint8)
"""``_LOW_BITS[k]`` keeps bits 0..k-1 of a byte: with ``bitorder="little"`` the spike
slots of a byte that come before slot ``k`` of it."""


def group_starts(n: int, rows: int) -> I64:
    """First neuron of each of ``rows`` groups, then ``n``: shape ``(rows + 1,)``.

    Neuron ``j`` belongs to group ``j * rows // n``, so group ``g`` starts at the first
    ``j`` with ``j * rows >= g * n``: ``ceil(g * n / rows)``, in exact integer arithmetic
    for any ``n < 2**56``."""
    g = np.arange(rows + 1, dtype=np.int64)
    starts: I64 = -((-g * n) // rows)
    return starts


def spike_count(frame: SpikeFrame) -> int:
    """Spikes in ``frame``, counted without expanding it (popcounts of the bitmask in
    chunks of :data:`CHUNK_BYTES`)."""
    bits, offsets, _ = frame.wire()
    if bits is None:
        assert offsets is not None
        return int(offsets.size)
    return sum(
        int(_POPCOUNT[bits[c : c + CHUNK_BYTES]].sum(dtype=np.int64))
        for c in range(0, bits.size, CHUNK_BYTES)
    )


def _set_bits(bits: U8, start: int, *, reverse: bool = False) -> Iterator[I64]:
    """Positions (flat spike slots, int64, ascending within a chunk) of the set bits of a
    frame's bitmask from slot ``start`` to its end, one chunk of at most
    :data:`CHUNK_BYTES` bytes at a time; chunks run backwards from the end when
    ``reverse``. Chunks without a set bit are not yielded.

    The padding bits after the last slot need no test: the decoder refuses a frame
    whose padding is not zero."""
    first = start >> 3
    chunks = range(first, bits.size, CHUNK_BYTES)
    for c0 in reversed(chunks) if reverse else chunks:
        unpacked = np.unpackbits(bits[c0 : c0 + CHUNK_BYTES], bitorder="little")
        pos = unpacked.nonzero()[0].astype(np.int64, copy=False)
        if c0:
            pos += 8 * c0
        if c0 == first and start & 7:  # the first byte holds slots before `start`
            pos = pos[pos >= start]
        if pos.size:
            yield pos


def window_spikes(frame: SpikeFrame, first: int) -> Iterator[tuple[I64, I64]]:
    """The spikes on the frame's rows ``first`` and later, as ``(tick offsets, neuron
    ids)``: int64 arrays of shape ``(k,)`` with at most about 8 × :data:`CHUNK_BYTES`
    (bitmask) or :data:`CHUNK_SPIKES` (index pairs) spikes each, in the frame's order.

    Rows before ``first`` (fallen out of a window) are never expanded."""
    bits, offsets, neurons = frame.wire()
    if bits is not None:
        n = frame.n
        for pos in _set_bits(bits, first * n):
            off, idx = np.divmod(pos, n)
            yield off, idx
        return
    assert offsets is not None
    assert neurons is not None
    for s in range(0, offsets.size, CHUNK_SPIKES):
        off, idx = offsets[s : s + CHUNK_SPIKES], neurons[s : s + CHUNK_SPIKES]
        if first:
            keep = off >= first
            off, idx = off[keep], idx[keep]
        if off.size:
            yield off.astype(np.int64), idx.astype(np.int64)


def newest_spikes(frame: SpikeFrame, limit: int) -> tuple[I64, I64]:
    """The last ``limit`` spikes of ``frame`` in its order (row-major for a bitmask, as
    sent for index pairs), as int64 ``(tick offsets, neuron ids)`` of shape ``(k,)``,
    ``k <= limit``.

    A bitmask is read backwards a chunk at a time and reading stops once ``limit``
    spikes are found, so an all-ones frame costs one chunk, not its 8 × size spikes."""
    bits, offsets, neurons = frame.wire()
    empty = np.zeros(0, np.int64)
    if limit <= 0:
        return empty, empty
    if bits is None:
        assert offsets is not None
        assert neurons is not None
        return offsets[-limit:].astype(np.int64), neurons[-limit:].astype(np.int64)
    n = frame.n
    found: list[I64] = []
    size = 0
    for pos in _set_bits(bits, 0, reverse=True):
        found.append(pos[-(limit - size) :])
        size += found[-1].size
        if size >= limit:
            break
    if not found:
        return empty, empty
    off, idx = np.divmod(np.concatenate(found[::-1]), n)
    return off, idx


def _ones_before(bits: U8, points: I64) -> I64:
    """Set bits of ``bits`` (little bit order) before each of ``points`` (ascending
    flat slots in ``[0, 8 * bits.size]``), counted from the byte of ``points[0]`` on:
    only differences between points mean anything. Shape of ``points``.

    Whole bytes are counted with a popcount table over :data:`CHUNK_BYTES` bytes at a
    time (one cumulative sum each); the bits of a point's own byte below it are added."""
    out = np.empty(points.size, np.int64)
    byte = points >> 3
    first, end = int(byte[0]), min(int(byte[-1]) + 1, bits.size)
    total = 0
    done = 0  # points before this index have their whole-byte count
    for c0 in range(first, end, CHUNK_BYTES):
        c1 = min(c0 + CHUNK_BYTES, end)
        upto = int(np.searchsorted(byte, c1))
        run = np.zeros(c1 - c0 + 1, np.int64)
        np.cumsum(_POPCOUNT[bits[c0:c1]], dtype=np.int64, out=run[1:])
        out[done:upto] = total + run[byte[done:upto] - c0]
        total += int(run[-1])
        done = upto
    out[done:] = total  # points at the very end of the payload (8 * bits.size)
    inside = byte < bits.size
    out[inside] += _POPCOUNT[bits[byte[inside]] & _LOW_BITS[points[inside] & 7]]
    return out


def group_counts(frame: SpikeFrame, first: int, starts: I64) -> Iterator[tuple[int, I64]]:
    """Spikes per row and neuron group of a bitmask frame's rows ``first`` and later,
    counted from the packed bytes without unpacking them.

    Args:
        frame: A bitmask frame (``encoding == "bits"``).
        first: First row (tick offset in the frame) to count.
        starts: Group boundaries, shape ``(groups + 1,)`` (:func:`group_starts`).

    Yields:
        ``(row, counts)``: ``counts[k, g]`` spikes of group ``g`` on the frame's row
        ``row + k``; int64, shape ``(rows in this block, groups)``, at most about
        2**16 cells per block.
    """
    bits, _, _ = frame.wire()
    if bits is None:
        raise ValueError(f"group_counts expects a bitmask frame, got encoding {frame.encoding!r}")
    n, ticks = frame.n, frame.header.ticks
    if n == 0:
        return
    per_block = max(1, _CHUNK_POINTS // starts.size)
    for row in range(first, ticks, per_block):
        stop = min(row + per_block, ticks)
        points = np.arange(row, stop, dtype=np.int64)[:, None] * n + starts[None, :]
        before = _ones_before(bits, points.ravel()).reshape(stop - row, starts.size)
        yield row, np.diff(before, axis=1)


class CellTally:
    """Adds spikes to a count array, given each spike's tick and neuron.

    Spikes are batched, mapped to cells and counted by one ``bincount`` per about
    :data:`CHUNK_SPIKES` spikes (many small frames cost one pass, as one large frame),
    over only the span of cells they touch; cells scattered over a span much wider than
    their number (a ring that wrapped) go through ``np.add.at`` instead, so no step
    allocates more than a few times the batch, whatever the size of ``counts``.

    Args:
        counts: The C-contiguous array to add to, in place (any shape).
        cell: Maps absolute ticks and neuron ids (int64 arrays of shape ``(k,)``) to flat
            indices of ``counts``.
    """

    def __init__(self, counts: npt.NDArray[np.uint32], cell: Callable[[I64, I64], I64]) -> None:
        if not counts.flags.c_contiguous:
            raise ValueError("CellTally expects a C-contiguous count array, got a strided one")
        self._flat = counts.reshape(-1)  # a view: the adds below land in counts
        self._cell = cell
        self._ticks: list[I64] = []
        self._neurons: list[I64] = []
        self._size = 0

    def add(self, ticks: I64, neurons: I64) -> None:
        """Count one spike per ``(ticks[k], neurons[k])``; int64 arrays of shape ``(k,)``."""
        self._ticks.append(ticks)
        self._neurons.append(neurons)
        self._size += ticks.size
        if self._size >= CHUNK_SPIKES:
            self.flush()

    def flush(self) -> None:
        """Add the batched spikes to ``counts``."""
        ticks, neurons = self._ticks, self._neurons
        self._ticks, self._neurons, size, self._size = [], [], self._size, 0
        if not size:
            return
        cells = self._cell(np.concatenate(ticks), np.concatenate(neurons))
        lo, hi = int(cells.min()), int(cells.max()) + 1
        if hi - lo <= 4 * cells.size + 4096:
            span = self._flat[lo:hi]
            np.add(span, np.bincount(cells - lo, minlength=hi - lo), out=span, casting="unsafe")
        else:
            np.add.at(self._flat, cells, 1)
