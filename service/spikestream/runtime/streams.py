"""Frame streams: each probe's pool of preallocated frame buffers and its bounded queue.

The tick thread copies each tick's probe value into the frame being filled; a full frame
is queued. When the queue is full the oldest frame is dropped (``drop-oldest``) or the new
ticks are merged into the newest queued frame (``coalesce``). Every drop is counted, and
the count travels in the frames. Memory is bounded by construction: a stream never
allocates after construction, except when its frame size changes.

A stream keeps its pool, each buffer's header and its queue in arrays allocated once (a
:class:`_Pool`), so compiled code fills them as Python does: with the C extension, each
operation is one call of ``spikestream.sim._native`` (``_native_streams.h``), and a run of
compiled ticks' ring rows become every probe's frames in one call (:class:`RowRecorder`,
the collect's). Without it, the same steps run in Python on the same arrays
(``_py_record`` and the rest below); tests/runtime/test_streams.py checks that both leave
the same bytes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from spikestream.budget import frame_rows
from spikestream.errors import ConfigError
from spikestream.sim.native import extension

QueuePolicy = Literal["drop-oldest", "coalesce"]
QUEUE_POLICIES: tuple[QueuePolicy, ...] = ("drop-oldest", "coalesce")

_ext = extension()

# The control block's columns (``_native_streams.h``): a descriptor, then the state.
(
    K_TAG,
    K_LENGTH,
    K_POOL,
    K_POOL_BYTES,
    K_HEADS,
    K_TIMES,
    K_N_BUF,
    K_ROWS,
    K_ROW_BYTES,
    K_FLOAT,
    K_CAPACITY,
    K_TPF,
    K_COALESCE,
    K_CURRENT,
    K_Q_START,
    K_Q_LEN,
    K_N_FREE,
    K_SEQ,
    K_DROPPED,
    K_COALESCED,
    K_FRAMES,
    K_OUT,
    K_LEGACY,
    K_LEGACY_DROPPED,
    K_HEAD,
) = range(25)
#: Each buffer's int64 header: seq, first tick, ticks, dropped count, 1 while taken.
H_SEQ, H_TICK, H_TICKS, H_DROPPED, H_OUT, H_COLUMNS = range(6)
#: Each buffer's float64 header: t (s), wall time (s), largest lateness (s).
F_T, F_WALL, F_LATE, F_COLUMNS = range(4)
TAG_STREAM = 0x53504B5354520000
#: A value's kind for the compiled copy: the row's own bytes, or float64 cast to float32.
SRC_SAME, SRC_F64 = 0, 1
_F64 = np.dtype(np.float64)
#: Rows per buffer and buffers per pool stay below this (the compiled steps' bound).
MAX_ROWS = 2**24
_POOL_NUMBERS = itertools.count()


#: A frame's header as :meth:`ProbeStream.take` reads it: seq, first tick, ticks, t (s),
#: wall time (s), largest lateness (s), dropped count; the frame encoder's argument order.
Header = tuple[int, int, int, float, float, float, int]

#: What a frame sender's encode function returns (:meth:`ProbeStream.take_encoded`).
T = TypeVar("T")


@dataclass(eq=False, slots=True)
class FrameBuffer:
    """One frame's worth of preallocated storage plus its header.

    ``data`` has shape ``(capacity_ticks, *per_tick_shape)``; the first ``ticks`` rows are
    valid. Spike frames are bool, value frames float32. ``header`` is set by
    :meth:`ProbeStream.take` (the pool keeps it in its arrays meanwhile), in the order the
    frame encoder takes it.
    """

    data: npt.NDArray[Any]
    header: Header = (0, 0, 0, 0.0, 0.0, 0.0, 0)
    #: Its number in its pool, and the pool's number (``release`` gives it back to that
    #: pool only; -1: a frame of an older size, let go once sent).
    slot: int = -1
    owner: int = -1

    @property
    def seq(self) -> int:
        """The frame's sequence number."""
        return self.header[0]

    @property
    def tick(self) -> int:
        """Its first tick."""
        return self.header[1]

    @property
    def ticks(self) -> int:
        """Ticks in it."""
        return self.header[2]

    @property
    def t(self) -> float:
        """Simulated time at the end of its last tick (s)."""
        return self.header[3]

    @property
    def wall(self) -> float:
        """``time.time()`` when it was complete (s)."""
        return self.header[4]

    @property
    def late_max(self) -> float:
        """The largest lateness of its ticks (s)."""
        return self.header[5]

    @property
    def dropped(self) -> int:
        """The probe's drop count when the frame left the queue: every frame older than
        this one that was lost is in it, and no newer one."""
        return self.header[6]

    def valid(self) -> npt.NDArray[Any]:
        """The filled rows, ``(ticks, ...)`` (a view)."""
        return self.data[: self.header[2]]


class _Pool:
    """One frame size's buffers: ``data`` ``(n, rows, *shape)``, ``heads`` int64
    ``(n, H_COLUMNS)``, ``times`` float64 ``(n, F_COLUMNS)`` and the control block ``ctl``
    (int64: ``K_HEAD`` columns, the queue's ring of ``n`` buffer numbers, the free stack's
    ``n``), with ``n`` = capacity + 2 (the queue, one being filled, one being encoded)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: type[np.generic],
        ticks_per_frame: int,
        capacity: int,
        policy: QueuePolicy,
    ) -> None:
        n = capacity + 2
        rows = frame_rows(ticks_per_frame, policy)
        if rows >= MAX_ROWS or n >= MAX_ROWS:
            raise ConfigError(
                f"a frame pool of {n} buffers of {rows} rows is too large; expected fewer "
                f"than {MAX_ROWS} of each (ticks_per_frame {ticks_per_frame}, queue "
                f"capacity {capacity})"
            )
        self.data = np.zeros((n, rows, *shape), dtype)
        self.heads = np.zeros((n, H_COLUMNS), np.int64)
        self.times = np.zeros((n, F_COLUMNS), np.float64)
        self.ctl = ctl = np.zeros(K_HEAD + 2 * n, np.int64)
        row_bytes = self.data[0, 0].nbytes
        ctl[:K_CURRENT] = (
            TAG_STREAM,
            len(ctl),
            self.data.ctypes.data,
            self.data.nbytes,
            self.heads.ctypes.data,
            self.times.ctypes.data,
            n,
            rows,
            row_bytes,
            self.data.dtype == np.float32,
            capacity,
            ticks_per_frame,
            policy == "coalesce",
        )
        # The last buffer fills first; the others wait on the free stack.
        ctl[K_CURRENT] = n - 1
        ctl[K_HEAD + n : K_HEAD + 2 * n - 1] = np.arange(n - 1)
        ctl[K_N_FREE] = n - 1
        self.address = int(ctl.ctypes.data)
        #: The control block as a memoryview: its items read as Python ints, without the
        #: numpy scalar each array index makes (the sender reads the queue's length per frame).
        self.view: memoryview = memoryview(ctl.data)
        # The buffers name their pool by number, not by reference: no cycle, so a pool
        # left behind by a resize is freed as soon as nothing holds it.
        self.number = next(_POOL_NUMBERS)
        self.buffers = [FrameBuffer(self.data[i], slot=i, owner=self.number) for i in range(n)]
        self.dtype = self.data.dtype


# -- the steps in Python, as _native_streams.h takes them ------------------------------


def _py_recycle(p: _Pool, b: int) -> None:
    ctl = p.ctl
    p.heads[b, H_TICKS] = 0
    ctl[K_HEAD + int(ctl[K_N_BUF]) + int(ctl[K_N_FREE])] = b
    ctl[K_N_FREE] += 1


def _py_emit(p: _Pool) -> None:
    ctl, heads, times = p.ctl, p.heads, p.times
    n, cur = int(ctl[K_N_BUF]), int(ctl[K_CURRENT])
    if ctl[K_Q_LEN] + ctl[K_LEGACY] >= ctl[K_CAPACITY]:
        if ctl[K_Q_LEN] > 0:  # a frame of this size to merge into
            tail = int(ctl[K_HEAD + (int(ctl[K_Q_START]) + int(ctl[K_Q_LEN]) - 1) % n])
            room = int(ctl[K_ROWS]) - int(heads[tail, H_TICKS])
            ticks = int(heads[cur, H_TICKS])
            contiguous = heads[tail, H_TICK] + heads[tail, H_TICKS] == heads[cur, H_TICK]
            if ctl[K_COALESCE] and room >= ticks and contiguous:
                at = int(heads[tail, H_TICKS])
                p.data[tail, at : at + ticks] = p.data[cur, :ticks]
                heads[tail, H_TICKS] += ticks
                times[tail, F_T] = times[cur, F_T]
                times[tail, F_WALL] = times[cur, F_WALL]
                if times[cur, F_LATE] > times[tail, F_LATE]:
                    times[tail, F_LATE] = times[cur, F_LATE]
                ctl[K_COALESCED] += 1
                heads[cur, H_TICKS] = 0
                return
        # drop-oldest: the oldest frame's seq is skipped, so clients see the gap. The
        # oldest is one of an older size while any is queued; the taker discards it.
        if ctl[K_LEGACY] > 0:
            ctl[K_LEGACY] -= 1
            ctl[K_LEGACY_DROPPED] += 1
        else:
            oldest = int(ctl[K_HEAD + int(ctl[K_Q_START])])
            ctl[K_Q_START] = (int(ctl[K_Q_START]) + 1) % n
            ctl[K_Q_LEN] -= 1
            _py_recycle(p, oldest)
        ctl[K_DROPPED] += 1
    heads[cur, H_SEQ] = ctl[K_SEQ]
    ctl[K_SEQ] += 1
    ctl[K_FRAMES] += 1
    ctl[K_HEAD + (int(ctl[K_Q_START]) + int(ctl[K_Q_LEN])) % n] = cur
    ctl[K_Q_LEN] += 1
    ctl[K_N_FREE] -= 1
    nxt = int(ctl[K_HEAD + n + int(ctl[K_N_FREE])])
    heads[nxt, H_TICKS] = 0
    ctl[K_CURRENT] = nxt


def _py_record(
    p: _Pool, value: npt.NDArray[Any], tick: int, t: float, late: float, wall: float
) -> bool:
    ctl, heads, times = p.ctl, p.heads, p.times
    cur = int(ctl[K_CURRENT])
    row = int(heads[cur, H_TICKS])
    if row == 0:
        heads[cur, H_TICK] = tick
        times[cur, F_LATE] = 0.0
    # Item assignment casts as copyto(casting="unsafe") does (float64 to float32 as C does:
    # a value past float32's range is inf, without a warning).
    if value.dtype == _F64:
        with np.errstate(over="ignore"):
            p.data[cur, row] = value
    else:
        p.data[cur, row] = value
    heads[cur, H_TICKS] = row + 1
    times[cur, F_T] = t  # the end of the frame so far: a frame flushed short says where
    if late > times[cur, F_LATE]:
        times[cur, F_LATE] = late
    if row + 1 < ctl[K_TPF]:
        return False
    times[cur, F_WALL] = wall
    _py_emit(p)
    return True


def _py_flush(p: _Pool, wall: float) -> bool:
    cur = int(p.ctl[K_CURRENT])
    if p.heads[cur, H_TICKS] == 0:
        return False
    p.times[cur, F_WALL] = wall
    _py_emit(p)
    return True


def _py_take(p: _Pool) -> tuple[int, Header] | None:
    ctl = p.ctl
    if ctl[K_OUT] != 0:
        msg = "stream_take: a frame is taken already; expected it released before the next is taken"
        raise ValueError(msg)
    if ctl[K_Q_LEN] == 0:
        return None
    b = int(ctl[K_HEAD + int(ctl[K_Q_START])])
    # The header first: a failure building it changes nothing.
    seq, tick, ticks = (int(x) for x in p.heads[b, [H_SEQ, H_TICK, H_TICKS]])
    t, wall, late = (float(x) for x in p.times[b])
    header = (seq, tick, ticks, t, wall, late, int(ctl[K_DROPPED]))
    ctl[K_Q_START] = (int(ctl[K_Q_START]) + 1) % int(ctl[K_N_BUF])
    ctl[K_Q_LEN] -= 1
    p.heads[b, H_DROPPED] = ctl[K_DROPPED]
    p.heads[b, H_OUT] = 1
    ctl[K_OUT] = 1
    return b, header


def _py_take_legacy(p: _Pool) -> tuple[int, bool, int]:
    ctl = p.ctl
    discard, dropped = int(ctl[K_LEGACY_DROPPED]), int(ctl[K_DROPPED])
    ctl[K_LEGACY_DROPPED] = 0
    serve = bool(ctl[K_LEGACY] > 0)
    if serve:
        ctl[K_LEGACY] -= 1
    return discard, serve, dropped


def _py_release(p: _Pool, b: int) -> None:
    ctl = p.ctl
    if not (0 <= b < ctl[K_N_BUF]) or p.heads[b, H_OUT] != 1 or ctl[K_N_FREE] >= ctl[K_N_BUF]:
        msg = (
            f"stream_release: buffer {b} is not taken; expected one stream_take returned "
            "and not released since"
        )
        raise ValueError(msg)
    p.heads[b, H_OUT] = 0
    ctl[K_OUT] = 0
    _py_recycle(p, b)


def _py_count(p: _Pool, frames: int) -> None:
    if frames < 0:
        raise ValueError(f"stream_count: {frames} frames; expected >= 0")
    p.ctl[K_DROPPED] += frames


def _queued(p: _Pool) -> list[FrameBuffer]:
    """The pool's queued frames, oldest first, their headers read (a pool being left)."""
    ctl, n = p.ctl, int(p.ctl[K_N_BUF])
    out = []
    for i in range(int(ctl[K_Q_LEN])):
        b = int(ctl[K_HEAD + (int(ctl[K_Q_START]) + i) % n])
        seq, tick, ticks = (int(x) for x in p.heads[b, [H_SEQ, H_TICK, H_TICKS]])
        t, wall, late = (float(x) for x in p.times[b])
        buf = p.buffers[b]
        buf.header = (seq, tick, ticks, t, wall, late, 0)  # dropped: set when taken
        out.append(buf)
    return out


@dataclass(frozen=True)
class StreamStats:
    """Counters of one probe stream."""

    frames: int
    dropped: int
    coalesced: int
    queued: int
    capacity: int


class ProbeStream:
    """Frames of one probe: filled by the tick thread, taken by the I/O thread.

    ``compiled`` (default: whether the C extension is built) takes each step in compiled
    code, one call each, so each is atomic under the GIL; False takes the same steps in
    Python, under the stream's lock.

    Threads: the filling side (:meth:`record`, :meth:`flush`, :meth:`resize`,
    :class:`RowRecorder`) runs on one thread at a time (the engine's book lock); the taking
    side (:meth:`take`, :meth:`release`, :meth:`count_dropped`) on the I/O thread.
    """

    def __init__(
        self,
        name: str,
        kind: Literal["spikes", "values"],
        shape: tuple[int, ...],
        ticks_per_frame: int,
        *,
        capacity: int = 64,
        policy: QueuePolicy = "drop-oldest",
        compiled: bool | None = None,
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"queue capacity must be >= 1; got {capacity}")
        if policy not in QUEUE_POLICIES:
            raise ConfigError(
                f"queue policy {policy!r} is not allowed; expected one of "
                f"{', '.join(QUEUE_POLICIES)}"
            )
        if ticks_per_frame < 1:
            raise ConfigError(f"ticks_per_frame must be >= 1; got {ticks_per_frame}")
        if compiled is None:
            compiled = _ext is not None
        if compiled and _ext is None:
            raise ValueError("compiled streams need the C extension, which is not built")
        self.name = name
        self.kind = kind
        self.shape = shape
        self.policy = policy
        self.capacity = capacity
        self.compiled = compiled
        self._dtype: type[np.generic] = np.bool_ if kind == "spikes" else np.float32
        #: The dtypes the compiled copy takes as they are: the row's, and float64 for a
        #: float32 row (cast as numpy casts it).
        self.direct = (np.dtype(self._dtype), *((_F64,) if kind == "values" else ()))
        self._lock = threading.Lock()
        # Frames queued before the last resize, in the pool it left, oldest first: taken
        # before the pool's (they are older) and dropped first when the queue is full (the
        # pool's K_LEGACY counts those still queued, K_LEGACY_DROPPED those to discard).
        # They hold that one pool (its bytes: _legacy_bytes) until they are gone.
        self._legacy: deque[FrameBuffer] = deque()
        self._legacy_bytes = 0
        self._pool = self.allocate(ticks_per_frame)
        self.ticks_per_frame = ticks_per_frame

    def allocate(self, ticks_per_frame: int) -> _Pool:
        """A new buffer pool for frames of ``ticks_per_frame`` ticks (any thread).

        Nothing of the stream changes, so a failure here (MemoryError) leaves it as it was.
        """
        return _Pool(self.shape, self._dtype, ticks_per_frame, self.capacity, self.policy)

    def bytes_per_tick(self) -> int:
        """Bytes the pool grows by per tick of ``ticks_per_frame``."""
        per_row = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self._dtype).itemsize
        return (self.capacity + 2) * frame_rows(1, self.policy) * per_row

    @property
    def pool(self) -> _Pool:
        """The pool frames fill now (its arrays: for :class:`RowRecorder`)."""
        return self._pool

    def resize(
        self, ticks_per_frame: int, pool: _Pool | None = None, wall: float | None = None
    ) -> None:
        """Change the frame size (tick thread). Flushes the partial frame first (sent at
        ``wall``, as :meth:`flush`).

        ``pool``: from :meth:`allocate`, when the caller allocated it first (to change
        several streams all or nothing).
        """
        if ticks_per_frame < 1:
            raise ConfigError(f"ticks_per_frame must be >= 1; got {ticks_per_frame}")
        if pool is None:
            pool = self.allocate(ticks_per_frame)
        self.flush(wall)
        # Frames already queued keep their size and are still sent, before the new ones,
        # from the pool they are in; they still count against the capacity, as the oldest.
        # Frames of an earlier size still queued (a resize before they were sent) are
        # dropped, counted, so that at most one older pool is held: the memory budget's
        # (Engine.max_ticks_per_frame). Nothing is allocated here, so a change of several
        # streams is all or nothing once their pools are. The counters carry over.
        with self._lock:
            old, legacy = self._pool, self._legacy
            counters = [K_SEQ, K_DROPPED, K_COALESCED, K_FRAMES]
            pool.ctl[counters] = old.ctl[counters]
            pool.ctl[K_DROPPED] += old.ctl[K_LEGACY]  # the earlier ones still queued
            legacy.clear()
            legacy.extend(_queued(old))
            pool.ctl[K_LEGACY] = len(legacy)
            self._legacy_bytes = old.data.nbytes if legacy else 0
            self._pool = pool
            self.ticks_per_frame = ticks_per_frame

    def record(
        self, value: npt.NDArray[Any], tick: int, t: float, lateness: float, wall: float
    ) -> bool:
        """Copy one tick's value into the frame being filled (tick thread).

        Returns True when this completed a frame (the caller then wakes the publisher).
        """
        p = self._pool
        if self.compiled:
            assert _ext is not None
            if (
                value.dtype not in self.direct
                or value.shape != self.shape
                or not value.flags.c_contiguous
                or not value.flags.aligned  # numpy exports "=d": the C side takes "d" only
            ):
                # Not the engine's probes: cast and broadcast as the Python step does.
                with np.errstate(over="ignore"):
                    value = np.ascontiguousarray(np.broadcast_to(value, self.shape), p.dtype)
            completed: bool = _ext.stream_record(p.address, value, tick, t, lateness, wall)
            return completed
        with self._lock:
            return _py_record(p, value, tick, t, lateness, wall)

    def partial_ticks(self) -> int:
        """Ticks already in the frame being filled."""
        p = self._pool
        return int(p.heads[p.ctl[K_CURRENT], H_TICKS])

    def flush(self, wall: float | None = None) -> bool:
        """Queue the partial frame, if any (tick thread), sent at ``wall`` (``time.time()``
        seconds; default: now). Returns True if one was queued."""
        p = self._pool
        if wall is None:
            wall = time.time()
        if self.compiled:
            assert _ext is not None
            queued: bool = _ext.stream_flush(p.address, wall)
            return queued
        with self._lock:
            return _py_flush(p, wall)

    def take(self) -> FrameBuffer | None:
        """The oldest queued frame, or None (I/O thread). Give it back with :meth:`release`
        before the next is taken (ValueError otherwise: the pool holds one buffer for the
        sender).

        The frame's ``dropped`` is the drop count at this moment: read any later, it could
        include newer frames the tick thread dropped meanwhile, which the frame's header
        must not claim (it would count more than the ``seq`` gap shows).
        """
        with self._lock:
            p = self._pool
            if self._legacy:
                if self.compiled:
                    assert _ext is not None
                    step: tuple[int, bool, int] = _ext.stream_take_legacy(p.address)
                else:
                    step = _py_take_legacy(p)
                discard, serve, dropped = step
                for _ in range(discard):  # dropped by the filling side meanwhile
                    self._legacy.popleft()
                if serve:
                    buf = self._legacy.popleft()
                    buf.header = (*buf.header[:6], dropped)
                    return buf
            got: tuple[int, Header] | None
            if self.compiled:
                assert _ext is not None
                got = _ext.stream_take(p.address)
            else:
                got = _py_take(p)
            if got is None:
                return None
            buf = p.buffers[got[0]]
            buf.header = got[1]
            return buf

    def take_encoded(self, encode: Callable[..., T]) -> T | None:
        """Take the oldest queued frame, encode it and give its buffer back, in one step
        (I/O thread): ``encode(seq, tick, ticks, t, wall, late_max, dropped, data)``'s
        result (``data``: the whole buffer, its first ``ticks`` rows valid), or None when
        none is queued. What :meth:`take`, then ``encode(*buf.header, buf.data)``, then
        :meth:`release` do, with one lock and no :class:`FrameBuffer` header (the frame
        sender's path for each frame). The buffer is given back whatever ``encode`` does;
        should it raise, the frame, which has left the queue, is counted dropped.
        ``encode`` runs under the stream's lock: it must not call this stream."""
        with self._lock:
            p = self._pool
            if not self._legacy and self.compiled:
                assert _ext is not None
                got: tuple[int, Header] | None = _ext.stream_take(p.address)
                if got is None:
                    return None
                b, header = got
                try:
                    return encode(*header, p.buffers[b].data)
                except BaseException:
                    _ext.stream_count(p.address, 1)
                    raise
                finally:
                    _ext.stream_release(p.address, b)
        # Frames of an older size first, or the steps in Python: the steps one by one.
        buf = self.take()
        if buf is None:
            return None
        try:
            return encode(*buf.header, buf.data)
        except BaseException:
            self.count_dropped()
            raise
        finally:
            self.release(buf)

    def release(self, buf: FrameBuffer) -> None:
        """Return a frame taken with :meth:`take` to the pool (I/O thread). A frame of an
        old size (taken after a :meth:`resize`) is let go."""
        with self._lock:
            p = self._pool
            if buf.owner != p.number:
                return
            if self.compiled:
                assert _ext is not None
                _ext.stream_release(p.address, buf.slot)
            else:
                _py_release(p, buf.slot)

    def count_dropped(self, frames: int = 1) -> None:
        """Count frames lost after they left the queue (e.g. refused by the transport)."""
        with self._lock:
            p = self._pool
            if self.compiled:
                assert _ext is not None
                _ext.stream_count(p.address, frames)
            else:
                _py_count(p, frames)

    def legacy_bytes(self) -> int:
        """Bytes of the older pool that frames queued before the last resize still hold
        (0 when none is held)."""
        return self._legacy_bytes if self._legacy else 0

    def free_buffers(self) -> int:
        """Buffers of the pool neither queued, filling nor taken."""
        return int(self._pool.ctl[K_N_FREE])

    def queued(self) -> int:
        """Frames waiting in the queue."""
        view = self._pool.view
        return int(view[K_Q_LEN] + view[K_LEGACY])

    def _counter(self, column: int) -> int:
        return int(self._pool.ctl[column])

    @property
    def seq(self) -> int:
        """The next frame's sequence number."""
        return self._counter(K_SEQ)

    @seq.setter
    def seq(self, value: int) -> None:
        with self._lock:
            self._pool.ctl[K_SEQ] = value

    @property
    def dropped(self) -> int:
        """Frames dropped: from a full queue, or counted by the sender."""
        return self._counter(K_DROPPED)

    @dropped.setter
    def dropped(self, value: int) -> None:
        with self._lock:
            self._pool.ctl[K_DROPPED] = value

    @property
    def coalesced(self) -> int:
        """Frames merged into the newest queued frame (``coalesce``)."""
        return self._counter(K_COALESCED)

    @property
    def frames(self) -> int:
        """Frames queued since the start."""
        return self._counter(K_FRAMES)

    def statistics(self) -> StreamStats:
        """A snapshot of the counters."""
        with self._lock:
            ctl = self._pool.ctl
            return StreamStats(
                frames=int(ctl[K_FRAMES]),
                dropped=int(ctl[K_DROPPED]),
                coalesced=int(ctl[K_COALESCED]),
                queued=int(ctl[K_Q_LEN] + ctl[K_LEGACY]),
                capacity=self.capacity,
            )


class RowRecorder:
    """Every stream's frames from a run of compiled ticks' ring rows, in one call per
    collect (``_native.streams_record``), as :meth:`ProbeStream.record` would fill them row
    by row. Built for one tick loop's row layout; follows each stream's current pool."""

    def __init__(
        self,
        streams: Sequence[ProbeStream],
        offsets: Sequence[int],
        sources: Sequence[npt.NDArray[Any]],
    ) -> None:
        """``offsets``: each stream's value's byte offset in a ring row; ``sources``: the
        arrays the rows copy (their dtypes: the values' kinds)."""
        if _ext is None or not all(s.compiled for s in streams):
            raise ValueError("recording ring rows needs compiled streams")
        for s, a in zip(streams, sources, strict=True):
            if a.shape != s.shape or a.dtype not in s.direct:
                raise ValueError(
                    f"probe {s.name!r}: a source of shape {a.shape} and dtype {a.dtype}; "
                    f"expected shape {s.shape} and one of {[str(d) for d in s.direct]}"
                )
        self._streams = list(streams)
        self.table = np.zeros((len(streams), 3), np.int64)
        self.table[:, 1] = offsets
        self.table[:, 2] = [SRC_F64 if a.dtype == _F64 else SRC_SAME for a in sources]
        # Each stream's pool by number (a reference would keep a pool a resize left).
        self._pools = [-1] * len(streams)
        self._address = int(self.table.ctypes.data)

    def __call__(self, loop: int, count: int, first: int, dt: float) -> bool:
        """Rows ``count`` from the ring's tail (``loop``: the tick loop's address) into the
        frames; the first is tick ``first``. Returns True if a frame completed."""
        streams, pools = self._streams, self._pools
        for i, s in enumerate(streams):
            p = s.pool
            if p.number != pools[i]:  # resized since: follow the new pool
                pools[i] = p.number
                self.table[i, 0] = p.address
        assert _ext is not None
        completed: bool = _ext.streams_record(loop, self._address, len(streams), count, first, dt)
        return completed
