"""Frame streams: each probe's pool of preallocated frame buffers and its bounded queue.

The tick thread copies each tick's probe value into the frame being filled; a full frame
is queued. When the queue is full the oldest frame is dropped (``drop-oldest``) or the new
ticks are merged into the newest queued frame (``coalesce``). Every drop is counted, and
the count travels in the frames. Memory is bounded by construction: a stream never
allocates after construction, except when its frame size changes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from spikestream.budget import frame_rows
from spikestream.errors import ConfigError

QueuePolicy = Literal["drop-oldest", "coalesce"]
QUEUE_POLICIES: tuple[QueuePolicy, ...] = ("drop-oldest", "coalesce")


@dataclass(eq=False)
class FrameBuffer:
    """One frame's worth of preallocated storage plus its header fields.

    ``data`` has shape ``(capacity_ticks, *per_tick_shape)``; the first ``ticks`` rows are
    valid. Spike frames are bool, value frames float32.
    """

    data: npt.NDArray[Any]
    seq: int = 0
    tick: int = 0
    ticks: int = 0
    t: float = 0.0
    wall: float = 0.0
    late_max: float = 0.0
    #: The probe's drop count when the frame left the queue (set by ``take``): every frame
    #: older than this one that was lost is in it, and no newer one.
    dropped: int = 0

    def valid(self) -> npt.NDArray[Any]:
        """The filled rows, ``(ticks, ...)`` (a view)."""
        return self.data[: self.ticks]


@dataclass(frozen=True)
class StreamStats:
    """Counters of one probe stream."""

    frames: int
    dropped: int
    coalesced: int
    queued: int
    capacity: int


class ProbeStream:
    """Frames of one probe: filled by the tick thread, taken by the I/O thread."""

    def __init__(
        self,
        name: str,
        kind: Literal["spikes", "values"],
        shape: tuple[int, ...],
        ticks_per_frame: int,
        *,
        capacity: int = 64,
        policy: QueuePolicy = "drop-oldest",
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"queue capacity must be >= 1; got {capacity}")
        if policy not in QUEUE_POLICIES:
            raise ConfigError(
                f"queue policy {policy!r} is not allowed; expected one of "
                f"{', '.join(QUEUE_POLICIES)}"
            )
        self.name = name
        self.kind = kind
        self.shape = shape
        self.policy = policy
        self.capacity = capacity
        self._dtype = np.bool_ if kind == "spikes" else np.float32
        self._lock = threading.Lock()
        self._queue: deque[FrameBuffer] = deque()
        self.seq = 0
        self.dropped = 0
        self.coalesced = 0
        self.frames = 0
        self._alloc(ticks_per_frame)

    def _alloc(self, ticks_per_frame: int) -> None:
        self._install(ticks_per_frame, self.allocate(ticks_per_frame))

    def allocate(self, ticks_per_frame: int) -> list[FrameBuffer]:
        """A new buffer pool for frames of ``ticks_per_frame`` ticks (any thread).

        Nothing of the stream changes, so a failure here (MemoryError) leaves it as it was.
        """
        # capacity queued + one being filled + one being encoded: the pool never runs dry.
        rows = frame_rows(ticks_per_frame, self.policy)
        return [
            FrameBuffer(np.zeros((rows, *self.shape), self._dtype))
            for _ in range(self.capacity + 2)
        ]

    def bytes_per_tick(self) -> int:
        """Bytes the pool grows by per tick of ``ticks_per_frame``."""
        per_row = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self._dtype).itemsize
        return (self.capacity + 2) * frame_rows(1, self.policy) * per_row

    def _install(self, ticks_per_frame: int, pool: list[FrameBuffer]) -> None:
        self.ticks_per_frame = ticks_per_frame
        self._free = pool
        self._current = self._free.pop()

    def resize(self, ticks_per_frame: int, pool: list[FrameBuffer] | None = None) -> None:
        """Change the frame size (tick thread). Flushes the partial frame first.

        ``pool``: buffers from :meth:`allocate`, when the caller allocated them first
        (to change several streams all or nothing).
        """
        if ticks_per_frame < 1:
            raise ConfigError(f"ticks_per_frame must be >= 1; got {ticks_per_frame}")
        if pool is None:
            pool = self.allocate(ticks_per_frame)
        self.flush()
        # Frames already queued keep their size and are still sent; ``release`` lets the
        # old-size buffers go instead of pooling them.
        with self._lock:
            self._install(ticks_per_frame, pool)

    def record(
        self, value: npt.NDArray[Any], tick: int, t: float, lateness: float, wall: float
    ) -> bool:
        """Copy one tick's value into the frame being filled (tick thread).

        Returns True when this completed a frame (the caller then wakes the publisher).
        """
        buf = self._current
        row = buf.ticks
        if row == 0:
            buf.tick = tick
            buf.late_max = 0.0
        # Item assignment casts as copyto(casting="unsafe") does, at half its cost.
        buf.data[row] = value
        buf.ticks = row + 1
        if lateness > buf.late_max:
            buf.late_max = lateness
        if buf.ticks < self.ticks_per_frame:
            return False
        buf.t = t
        buf.wall = wall
        self._emit()
        return True

    def partial_ticks(self) -> int:
        """Ticks already in the frame being filled."""
        return self._current.ticks

    def flush(self) -> bool:
        """Queue the partial frame, if any (tick thread). Returns True if one was queued."""
        if self._current.ticks == 0:
            return False
        self._current.wall = time.time()
        self._emit()
        return True

    def _emit(self) -> None:
        buf = self._current
        with self._lock:
            queue = self._queue
            if len(queue) >= self.capacity:
                tail = queue[-1]
                room = tail.data.shape[0] - tail.ticks
                contiguous = tail.tick + tail.ticks == buf.tick
                if self.policy == "coalesce" and room >= buf.ticks and contiguous:
                    tail.data[tail.ticks : tail.ticks + buf.ticks] = buf.data[: buf.ticks]
                    tail.ticks += buf.ticks
                    tail.t, tail.wall = buf.t, buf.wall
                    tail.late_max = max(tail.late_max, buf.late_max)
                    self.coalesced += 1
                    buf.ticks = 0
                    return
                # drop-oldest: the oldest frame's seq is skipped, so clients see the gap.
                self._recycle(queue.popleft())
                self.dropped += 1
            buf.seq = self.seq
            self.seq += 1
            self.frames += 1
            queue.append(buf)
            nxt = self._free.pop()
        nxt.ticks = 0
        self._current = nxt

    def take(self) -> FrameBuffer | None:
        """The oldest queued frame, or None (I/O thread). Give it back with :meth:`release`.

        The frame's ``dropped`` is the drop count at this moment, under the lock: read any
        later, it could include newer frames the tick thread dropped meanwhile, which the
        frame's header must not claim (it would count more than the ``seq`` gap shows).
        """
        with self._lock:
            if not self._queue:
                return None
            buf = self._queue.popleft()
            buf.dropped = self.dropped
            return buf

    def release(self, buf: FrameBuffer) -> None:
        """Return a frame taken with :meth:`take` to the pool (I/O thread)."""
        with self._lock:
            self._recycle(buf)

    def _recycle(self, buf: FrameBuffer) -> None:
        # Lock held. Buffers of an old frame size (after ``resize``) are let go.
        buf.ticks = 0
        if buf.data.shape == self._current.data.shape:
            self._free.append(buf)

    def count_dropped(self, frames: int = 1) -> None:
        """Count frames lost after they left the queue (e.g. refused by the transport)."""
        with self._lock:
            self.dropped += frames

    def queued(self) -> int:
        """Frames waiting in the queue."""
        return len(self._queue)

    def statistics(self) -> StreamStats:
        """A snapshot of the counters."""
        return StreamStats(
            frames=self.frames,
            dropped=self.dropped,
            coalesced=self.coalesced,
            queued=len(self._queue),
            capacity=self.capacity,
        )
