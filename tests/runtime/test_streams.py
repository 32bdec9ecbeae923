"""Probe streams: frames, drops, coalescing, resizing; the compiled steps against Python's."""

from __future__ import annotations

import gc
import struct
import weakref
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.errors import ConfigError
from spikestream.runtime.native_pacing import L_CAPACITY, L_HEAD, L_RING, L_ROW_BYTES, L_TAIL
from spikestream.runtime.streams import (
    H_TICKS,
    K_CURRENT,
    K_HEAD,
    K_HEADS,
    K_LEGACY,
    K_LEGACY_DROPPED,
    K_N_BUF,
    K_N_FREE,
    K_OUT,
    K_POOL,
    K_Q_LEN,
    K_Q_START,
    K_TIMES,
    FrameBuffer,
    ProbeStream,
    RowRecorder,
)
from spikestream.sim.native import extension

ext = extension()
LOOP_COLUMNS = ext.LOOP_COLUMNS
ROW_HEADER_BYTES = ext.ROW_HEADER_BYTES


@pytest.fixture(params=[True, False], ids=["compiled", "python"])
def compiled(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def fill(stream: ProbeStream, ticks: int, start: int = 0) -> None:
    for k in range(start, start + ticks):
        stream.record(np.full(stream.shape, k % 2 == 0), k, (k + 1) * 0.001, 0.0, 0.0)


def drain(stream: ProbeStream) -> list[tuple[int, int, int, np.ndarray]]:
    out = []
    while (buf := stream.take()) is not None:
        out.append((buf.seq, buf.tick, buf.ticks, buf.valid().copy()))
        stream.release(buf)
    return out


def test_frames_have_contiguous_seq_and_ticks(compiled: bool) -> None:
    stream = ProbeStream("p", "spikes", (3,), 10, capacity=8, compiled=compiled)
    fill(stream, 50)
    frames = drain(stream)
    assert [f[0] for f in frames] == [0, 1, 2, 3, 4]
    assert [f[1] for f in frames] == [0, 10, 20, 30, 40]
    assert all(f[2] == 10 for f in frames)
    np.testing.assert_array_equal(frames[1][3][:, 0], [k % 2 == 0 for k in range(10, 20)])
    assert stream.dropped == 0


def test_drop_oldest_counts_every_drop_and_keeps_memory_bounded(compiled: bool) -> None:
    stream = ProbeStream("p", "values", (4,), 5, capacity=3, compiled=compiled)
    ctl = stream.pool.ctl
    assert ctl[K_N_FREE] + 1 == ctl[K_N_BUF] == 5  # free buffers + the one being filled
    fill(stream, 5 * 20)  # 20 frames, nobody consuming
    assert stream.dropped == 17
    frames = drain(stream)
    # The newest three survive; seq shows the gap (0..16 were dropped).
    assert [f[0] for f in frames] == [17, 18, 19]
    assert ctl[K_N_FREE] + 1 == ctl[K_N_BUF]
    assert stream.statistics().frames == 20


def test_a_taken_frame_counts_the_drops_before_it_and_none_after(compiled: bool) -> None:
    """``dropped`` is read when a frame leaves the queue: the tick thread dropping newer
    frames while the I/O side encodes it must not raise the count that frame carries
    (its header would then claim more than the seq gap before it)."""
    stream = ProbeStream("p", "values", (1,), 5, capacity=3, compiled=compiled)
    fill(stream, 5 * 5)  # frames 0..4 into a queue of 3: 0 and 1 dropped
    taken = stream.take()
    assert taken is not None
    assert (taken.seq, taken.dropped) == (2, 2)
    fill(stream, 5 * 3, start=25)  # frames 5..7: the queue (3, 4, 5, 6, 7) drops 3 and 4
    assert stream.dropped == 4
    assert taken.dropped == 2
    stream.release(taken)
    following = stream.take()
    assert following is not None
    # seq 2 -> 5: a gap of 2, and dropped rose by 2.
    assert (following.seq, following.dropped) == (5, 4)


def test_coalesce_merges_instead_of_dropping(compiled: bool) -> None:
    stream = ProbeStream("p", "spikes", (2,), 5, capacity=2, policy="coalesce", compiled=compiled)
    fill(stream, 5 * 6)
    assert stream.dropped == 0
    assert stream.coalesced == 4
    frames = drain(stream)
    assert [(f[0], f[1], f[2]) for f in frames] == [(0, 0, 5), (1, 5, 25)]
    # No tick lost: every tick from 0 to 29 is present once, in order.
    ticks = np.concatenate([f[3][:, 0] for f in frames])
    np.testing.assert_array_equal(ticks, [k % 2 == 0 for k in range(30)])


def test_coalesce_drops_once_frames_are_full(compiled: bool) -> None:
    stream = ProbeStream("p", "spikes", (2,), 5, capacity=1, policy="coalesce", compiled=compiled)
    fill(stream, 5 * 20)
    # 1 queued + 7 merged fill the 40-row buffer; the next frame drops it (twice in 20).
    assert stream.coalesced == 17
    assert stream.dropped == 2
    assert stream.statistics().queued == 1


def test_bad_queue_settings() -> None:
    with pytest.raises(ConfigError, match="queue policy 'fifo' is not allowed"):
        ProbeStream("p", "spikes", (1,), 1, policy="fifo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="capacity must be >= 1"):
        ProbeStream("p", "spikes", (1,), 1, capacity=0)
    with pytest.raises(ConfigError, match="ticks_per_frame must be >= 1"):
        ProbeStream("p", "spikes", (1,), 0)


def test_resize_keeps_queued_frames_and_counters(compiled: bool) -> None:
    stream = ProbeStream("p", "values", (1,), 4, capacity=4, compiled=compiled)
    fill(stream, 6)  # one full frame, two ticks pending
    stream.count_dropped(3)
    stream.resize(2)
    assert stream.queued() == 2  # the full frame and the flushed partial one
    fill(stream, 4, start=6)
    frames = drain(stream)
    assert [(f[0], f[1], f[2]) for f in frames] == [(0, 0, 4), (1, 4, 2), (2, 6, 2), (3, 8, 2)]
    np.testing.assert_array_equal(
        np.concatenate([f[3][:, 0] for f in frames]), [k % 2 == 0 for k in range(10)]
    )
    assert stream.dropped == 3  # carried over to the new pool
    assert stream.statistics().frames == 4


def test_a_frame_of_the_old_size_released_after_a_resize_is_let_go(compiled: bool) -> None:
    stream = ProbeStream("p", "values", (1,), 2, capacity=2, compiled=compiled)
    fill(stream, 2)
    taken = stream.take()
    assert taken is not None
    stream.resize(3)
    free = int(stream.pool.ctl[K_N_FREE])
    stream.release(taken)  # of the old pool: not pooled in the new one
    assert stream.pool.ctl[K_N_FREE] == free
    fill(stream, 3, start=2)
    assert [(f[1], f[2]) for f in drain(stream)] == [(2, 3)]


def test_a_flushed_short_frame_ends_at_its_last_tick(compiled: bool) -> None:
    """``t`` is the simulated time at the end of the frame's last tick, for a frame the
    tick thread flushed short too (a pause, a resize), not that of the buffer's last use."""
    stream = ProbeStream("p", "values", (1,), 4, capacity=4, compiled=compiled)
    fill(stream, 4)  # t = 0.004 in its buffer
    first = stream.take()
    assert first is not None
    assert first.t == pytest.approx(0.004)
    stream.release(first)
    fill(stream, 4 + 4 + 2, start=4)  # frames to 12 ms, then 2 ticks in a reused buffer
    stream.flush()
    frames = []
    while (buf := stream.take()) is not None:
        frames.append((buf.tick, buf.ticks, buf.t))
        stream.release(buf)
    assert frames == [
        (4, 4, pytest.approx(0.008)),
        (8, 4, pytest.approx(0.012)),
        (12, 2, pytest.approx(0.014)),
    ]


def _encoded(
    seq: int, tick: int, ticks: int, t: float, wall: float, late: float, dropped: int, data: Any
) -> tuple[Any, ...]:
    """A stand-in encoder: the header and a copy of the frame's valid rows."""
    return (seq, tick, ticks, t, wall, late, dropped, data[:ticks].copy())


def test_take_encoded_is_take_encode_release_in_one_step(compiled: bool) -> None:
    """``take_encoded`` gives what take, encode and release give, frame after frame, for
    frames of an older size queued before a resize too (dropped first, counted), and
    leaves the pool as they leave it."""
    streams = [ProbeStream("p", "values", (2,), 3, capacity=3, compiled=compiled) for _ in "ab"]
    for stream in streams:
        fill(stream, 7)  # two frames queued, one tick filling
        stream.count_dropped(2)
        stream.resize(2)  # the partial frame flushed: three of the older size
        fill(stream, 9, start=7)  # the capacity: the oldest of them are dropped first
    by_steps, one_step = streams
    expected = []
    while (buf := by_steps.take()) is not None:
        expected.append(_encoded(*buf.header, buf.data))
        by_steps.release(buf)
    got = []
    while (frame := one_step.take_encoded(_encoded)) is not None:
        got.append(frame)
    assert len(got) == 3
    for a, b in zip(got, expected, strict=True):
        assert a[:7] == b[:7]
        np.testing.assert_array_equal(a[7], b[7])
    assert got[0][6] > 2  # the drops of the older frames are claimed
    assert one_step.dropped == by_steps.dropped
    # Past the arrays' addresses, every entry: counters, queue, free stack.
    np.testing.assert_array_equal(one_step.pool.ctl[K_N_BUF:], by_steps.pool.ctl[K_N_BUF:])


def test_a_frame_that_fails_to_encode_is_counted_and_its_buffer_given_back(
    compiled: bool,
) -> None:
    stream = ProbeStream("p", "values", (1,), 1, capacity=4, compiled=compiled)
    fill(stream, 3)
    free = stream.free_buffers()

    def broken(*header: Any) -> bytes:
        raise RuntimeError("broken encoder")

    with pytest.raises(RuntimeError, match="broken encoder"):
        stream.take_encoded(broken)
    assert stream.dropped == 1
    assert stream.queued() == 2
    assert stream.free_buffers() == free + 1
    frame = stream.take_encoded(_encoded)
    assert frame is not None
    assert frame[:3] == (1, 1, 1)
    assert frame[6] == 1  # the next frame carries the count


def test_a_buffer_given_back_twice_is_refused(compiled: bool) -> None:
    """The free stack would hold one buffer twice, and two frames would fill it at once."""
    stream = ProbeStream("p", "values", (1,), 1, capacity=2, compiled=compiled)
    fill(stream, 1)
    taken = stream.take()
    assert taken is not None
    stream.release(taken)
    with pytest.raises(ValueError, match="is not taken"):
        stream.release(taken)
    stranger = FrameBuffer(np.zeros((1, 1), np.float32), slot=0, owner=stream.pool.number)
    with pytest.raises(ValueError, match="is not taken"):
        stream.release(stranger)


def test_a_second_frame_is_taken_only_after_the_first_is_given_back(compiled: bool) -> None:
    """The pool keeps one buffer for the sender: a second taken while the first is out
    could leave the tick thread without a buffer to fill."""
    stream = ProbeStream("p", "values", (1,), 1, capacity=1, compiled=compiled)
    fill(stream, 1)
    first = stream.take()
    assert first is not None
    fill(stream, 1, start=1)
    with pytest.raises(ValueError, match="taken already"):
        stream.take()
    fill(stream, 3, start=2)  # the queue of one drops 1, 2, 3: never out of buffers
    stream.release(first)
    assert [f[1] for f in drain(stream)] == [4]
    assert stream.dropped == 3


def test_count_dropped_refuses_a_negative_count(compiled: bool) -> None:
    stream = ProbeStream("p", "values", (1,), 1, compiled=compiled)
    with pytest.raises(ValueError, match="expected >= 0"):
        stream.count_dropped(-1)
    assert stream.dropped == 0


def test_a_malformed_stream_block_is_refused() -> None:
    """A block written by anything but the steps is refused, never written through."""
    stream = ProbeStream("p", "values", (2,), 2, capacity=3, compiled=True)
    value = np.zeros(2, np.float32)
    fill(stream, 4)  # two frames queued
    p = stream.pool
    n = int(p.ctl[K_N_BUF])
    free_top = K_HEAD + n + int(p.ctl[K_N_FREE]) - 1
    corruptions = [
        (p.ctl, K_CURRENT, n),  # past the pool
        (p.ctl, K_N_FREE, n),  # more free buffers than there are
        (p.ctl, K_LEGACY, 2),  # more queued than the capacity
        (p.ctl, K_HEAD + int(p.ctl[K_Q_START]), n),  # a queued buffer past the pool
        (p.ctl, free_top, -1),  # a free one before it
        (p.heads, (int(p.ctl[K_CURRENT]), H_TICKS), 2),  # a full frame still filling
    ]
    for array, at, bad in corruptions:
        saved = array[at].copy()
        array[at] = bad
        for call in (
            lambda: ext.stream_record(p.address, value, 0, 0.0, 0.0, 0.0),
            lambda: ext.stream_flush(p.address, 0.0),
            lambda: ext.stream_take(p.address),
        ):
            with pytest.raises(ValueError, match="malformed stream block"):
                call()
        array[at] = saved
    assert [f[1] for f in drain(stream)] == [0, 2]  # untouched
    with pytest.raises(ValueError, match="malformed stream block"):
        ext.stream_take(np.zeros(K_HEAD + 10, np.int64).ctypes.data)


def test_a_value_of_another_layout_is_refused_by_the_compiled_copy() -> None:
    stream = ProbeStream("p", "values", (2,), 1, compiled=True)
    for wrong in (np.zeros(3, np.float32), np.zeros(2, np.int32), np.zeros(2, np.bool_)):
        with pytest.raises(ValueError, match="expected the row's 8 bytes"):
            ext.stream_record(stream.pool.address, wrong, 0, 0.0, 0.0, 0.0)
    # ProbeStream.record casts what the compiled copy does not take, as numpy would.
    assert stream.record(np.array([1, 2], np.int64), 0, 0.001, 0.0, 0.0)
    buf = stream.take()
    assert buf is not None
    np.testing.assert_array_equal(buf.valid(), [[1.0, 2.0]])


# -- the compiled steps against the Python ones ----------------------------------------


def header_bytes(header: tuple[int, int, int, float, float, float, int]) -> bytes:
    """A header's exact bits (NaN payloads included)."""
    return struct.pack("<qqqdddq", *header)


def state(stream: ProbeStream) -> tuple[bytes, ...]:
    """Everything a stream holds, but its arrays' own addresses: the pool's arrays, and
    the frames of an older size it still holds."""
    p = stream.pool
    ctl = p.ctl.copy()
    ctl[[K_POOL, K_HEADS, K_TIMES]] = 0  # the arrays' addresses differ between the two
    legacy = b"".join(header_bytes(f.header) + f.data.tobytes() for f in stream._legacy)
    return (ctl.tobytes(), p.heads.tobytes(), p.times.tobytes(), p.data.tobytes(), legacy)


times = st.floats(allow_nan=True, allow_infinity=True, width=64)
step = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 3), times, times, times),
    st.tuples(st.just("flush"), times),
    st.tuples(st.just("take")),
    st.tuples(st.just("release")),
    st.tuples(st.just("count"), st.integers(0, 3)),
    st.tuples(st.just("resize"), st.integers(1, 4)),
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["spikes", "values"]),
    f64=st.booleans(),
    tpf=st.integers(1, 4),
    capacity=st.integers(1, 4),
    policy=st.sampled_from(["drop-oldest", "coalesce"]),
    steps=st.lists(step, max_size=60),
    data=st.data(),
)
def test_compiled_steps_leave_the_python_steps_bytes(
    kind: str,
    f64: bool,
    tpf: int,
    capacity: int,
    policy: str,
    steps: list[tuple[object, ...]],
    data: st.DataObject,
) -> None:
    """After every step, both cores leave the same bytes in every array and return the
    same: the queue, the free stack, each buffer's header and rows, the counters, the
    frames of an older size kept across a resize and the header each take hands over."""
    shape = (3,)
    twins = [
        ProbeStream("p", kind, shape, tpf, capacity=capacity, policy=policy, compiled=c)  # type: ignore[arg-type]
        for c in (True, False)
    ]
    held: list[list[FrameBuffer]] = [[], []]  # taken, not yet given back
    tick = 0
    for op, *args in steps:
        got: list[object]
        if op == "record":
            skip, t, late, wall = args
            tick += int(skip)  # type: ignore[call-overload]
            if kind == "spikes":
                value = np.array(data.draw(st.lists(st.booleans(), min_size=3, max_size=3)))
            else:
                floats = st.floats(width=64 if f64 else 32, allow_nan=True)
                value = np.array(
                    data.draw(st.lists(floats, min_size=3, max_size=3)),
                    np.float64 if f64 else np.float32,
                )
            got = [s.record(value, tick, t, late, wall) for s in twins]  # type: ignore[arg-type]
            tick += 1
        elif op == "flush":
            got = [s.flush(args[0]) for s in twins]  # type: ignore[arg-type]
        elif op == "take":
            if twins[0].pool.ctl[K_OUT]:  # the sender gives a frame back before the next
                for s in twins:
                    with pytest.raises(ValueError, match="taken already"):
                        s.take()
                got = []
            else:
                bufs = [s.take() for s in twins]
                got = [
                    None if b is None else (b.slot, header_bytes(b.header), b.valid().tobytes())
                    for b in bufs
                ]
                for h, b in zip(held, bufs, strict=True):
                    if b is not None:
                        h.append(b)
        elif op == "release":
            got = [len(h) for h in held]
            for s, h in zip(twins, held, strict=True):
                for b in h:  # those of a pool left behind by a resize are let go
                    s.release(b)
            held = [[], []]
        elif op == "resize":
            for s in twins:
                s.resize(int(args[0]), wall=1.5)  # type: ignore[call-overload]
            got = []
        else:
            got = [s.count_dropped(int(args[0])) for s in twins]  # type: ignore[call-overload,func-returns-value]
        assert got[:1] == got[1:], op
        assert state(twins[0]) == state(twins[1]), op
        for s in twins:  # what the queue says it holds, and the pool's buffers all counted
            ctl = s.pool.ctl
            assert s.queued() <= capacity
            assert 1 + ctl[K_Q_LEN] + ctl[K_N_FREE] + ctl[K_OUT] == ctl[K_N_BUF]
            assert len(s._legacy) == ctl[K_LEGACY] + ctl[K_LEGACY_DROPPED]


def test_frames_of_the_old_size_are_dropped_first_and_counted_in_order(compiled: bool) -> None:
    """After a resize, the frames queued before it are the oldest: a full queue drops them
    first, and each frame taken counts exactly the frames lost before it."""
    stream = ProbeStream("p", "values", (1,), 2, capacity=2, compiled=compiled)
    fill(stream, 4)  # frames 0 and 1 queued, the queue full
    stream.resize(1)
    fill(stream, 1, start=4)  # frame 2: the queue drops frame 0
    first = stream.take()
    assert first is not None
    assert (first.seq, first.tick, first.ticks, first.dropped) == (1, 2, 2, 1)
    stream.release(first)
    fill(stream, 3, start=5)  # frames 3, 4, 5 into (2, 3): 2 and 3 dropped
    assert [(f[0], f[1]) for f in drain(stream)] == [(4, 6), (5, 7)]
    assert stream.dropped == 3
    stream.resize(2)
    fill(stream, 4, start=8)  # frames 6, 7: nothing older is left to drop
    fill(stream, 2, start=12)  # frame 8 drops 6
    taken = stream.take()
    assert taken is not None
    assert (taken.seq, taken.dropped) == (7, 4)


def test_frames_of_the_old_size_still_drop_first_after_two_resizes(compiled: bool) -> None:
    stream = ProbeStream("p", "values", (1,), 3, capacity=3, compiled=compiled)
    fill(stream, 6)  # frames 0, 1
    stream.resize(2)
    fill(stream, 2, start=6)  # frame 2
    stream.resize(1)  # 0, 1 (3 ticks), 2 (2 ticks) kept
    fill(stream, 2, start=8)  # frames 3, 4: drop 0 and 1
    assert stream.queued() == 3
    frames = drain(stream)
    assert [(f[0], f[1], f[2]) for f in frames] == [(2, 6, 2), (3, 8, 1), (4, 9, 1)]
    assert stream.dropped == 2


def test_a_resize_holds_at_most_one_older_pool(compiled: bool) -> None:
    """Frames queued before a resize are sent from the pool they are in, which they hold;
    a second resize before they are sent drops them, counted, and lets that pool go at
    once (by its reference count: no cycle), so at most one older pool is held, as the
    memory budget counts it."""
    stream = ProbeStream("p", "values", (1000,), 50, capacity=4, compiled=compiled)
    fill(stream, 120)  # frames 0 and 1 queued, 20 ticks filling
    first = weakref.ref(stream.pool.data)
    gc.disable()
    try:
        stream.resize(1)  # 0, 1 and the 20 ticks flushed as frame 2: in the first pool
        assert first() is not None
        assert stream.legacy_bytes() == 6 * 50 * 1000 * 4
        fill(stream, 1, start=120)  # frame 3, of the new size
        stream.resize(2)
        assert first() is None
        assert stream.dropped == 3
    finally:
        gc.enable()
    taken = stream.take()
    assert taken is not None
    assert (taken.seq, taken.tick, taken.ticks, taken.dropped) == (3, 120, 1, 3)
    stream.release(taken)
    assert stream.take() is None
    assert stream.legacy_bytes() == 0


def test_a_frame_pool_past_the_compiled_bound_is_refused() -> None:
    with pytest.raises(ConfigError, match="too large; expected fewer than 16777216"):
        ProbeStream("p", "spikes", (1,), 2**24)
    stream = ProbeStream("p", "spikes", (1,), 1, policy="coalesce")
    with pytest.raises(ConfigError, match="too large"):
        stream.resize(2**22)  # coalesced frames hold up to 8 frames' rows
    assert stream.ticks_per_frame == 1


def test_the_compiled_record_casts_and_broadcasts_as_the_python_one() -> None:
    twins = [ProbeStream("p", "values", (2,), 1, compiled=c) for c in (True, False)]
    for value in (np.array([7], np.int64), np.array([[1e300, 2.0]]).T[:, 0], np.float64(3)):
        for s in twins:
            s.record(np.asarray(value), 0, 0.001, 0.0, 0.0)
        assert state(twins[0]) == state(twins[1])


# -- a run's ring rows into frames at once --------------------------------------------


def ring_with_rows(
    sources: list[np.ndarray],
    rows: list[tuple[list[float], list[np.ndarray]]],
    tail: int,
    size: int,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A tick loop's array and ring holding ``rows`` (meta: start, deadline, wall start,
    wall end, end; a value per source) from ``tail``, laid out as ``TickLoop``'s."""
    offsets, at = [], ROW_HEADER_BYTES
    for a in sources:
        offsets.append(at)
        at += -(-a.nbytes // 8) * 8
    row_bytes = at
    ring = np.zeros(size * row_bytes // 8, np.int64)
    raw = ring.view(np.uint8)
    for r, (meta, values) in enumerate(rows):
        base = ((tail + r) % size) * row_bytes
        raw[base : base + 40] = np.array(meta, np.float64).view(np.uint8)
        for off, v in zip(offsets, values, strict=True):
            raw[base + off : base + off + v.nbytes] = v.view(np.uint8)
    loop = np.zeros(LOOP_COLUMNS, np.int64)
    loop[[L_CAPACITY, L_ROW_BYTES, L_RING, L_TAIL, L_HEAD]] = (
        size,
        row_bytes,
        ring.ctypes.data,
        tail,
        tail + len(rows),
    )
    return loop, ring, offsets


SOURCES = [np.zeros(3, np.bool_), np.zeros(2, np.float32), np.zeros(2, np.float64)]
KINDS = ["spikes", "values", "values"]


def source_values(a: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    if a.dtype == np.bool_:
        return st.lists(st.booleans(), min_size=a.size, max_size=a.size).map(np.array)
    width = 32 if a.dtype == np.float32 else 64
    return st.lists(st.floats(width=width), min_size=a.size, max_size=a.size).map(
        lambda x: np.array(x, a.dtype)
    )


meta = st.tuples(times, times, times, times, times).map(list)
ring_row = st.tuples(meta, st.tuples(*(source_values(a) for a in SOURCES)).map(list))


@settings(max_examples=150, deadline=None)
@given(
    tpf=st.integers(1, 3),
    capacity=st.integers(1, 3),
    policy=st.sampled_from(["drop-oldest", "coalesce"]),
    size=st.integers(2, 6),
    tail=st.integers(0, 20),
    first=st.integers(0, 2**40),
    dt=st.sampled_from([0.001, 0.0005, 1e-4]),
    runs=st.lists(st.lists(ring_row, max_size=6), max_size=4),
)
def test_ring_rows_fill_frames_as_the_row_by_row_records_do(
    tpf: int,
    capacity: int,
    policy: str,
    size: int,
    tail: int,
    first: int,
    dt: float,
    runs: list[list[tuple[list[float], list[np.ndarray]]]],
) -> None:
    """``RowRecorder`` (one compiled call per collect) leaves every stream's arrays as the
    collect's Python loop leaves them: the tick index and t of each row, its lateness
    (start past deadline, never below 0), its end's wall time, each value copied (bool,
    float32) or cast (float64)."""

    def streams(compiled: bool) -> list[ProbeStream]:
        return [
            ProbeStream("p", k, a.shape, tpf, capacity=capacity, policy=policy, compiled=c)  # type: ignore[arg-type]
            for k, a in zip(KINDS, SOURCES, strict=True)
            for c in (compiled,)
        ]

    fast, slow = streams(True), streams(False)
    recorder: RowRecorder | None = None
    for rows in runs:
        rows = rows[:size]
        loop, ring, offsets = ring_with_rows(SOURCES, rows, tail, size)
        if recorder is None:
            recorder = RowRecorder(fast, offsets, SOURCES)
        got = recorder(int(loop.ctypes.data), len(rows), first, dt)
        want = False
        for r, (m, values) in enumerate(rows):
            late = m[0] - m[1] if m[0] > m[1] else 0.0
            for s, v in zip(slow, values, strict=True):
                want |= s.record(v, first + r, (first + r + 1) * dt, late, m[3])
        assert got == want
        for a, b in zip(fast, slow, strict=True):
            assert state(a) == state(b)
        first += len(rows)
        tail += len(rows)
        del ring


def test_ring_rows_follow_a_resized_stream() -> None:
    loop, ring, offsets = ring_with_rows(
        SOURCES[1:2], [([0.0, 0.0, 0.0, 1.0, 0.0], [np.array([1.0, 2.0], np.float32)])], 0, 2
    )
    stream = ProbeStream("p", "values", (2,), 2, capacity=2, compiled=True)
    recorder = RowRecorder([stream], offsets, SOURCES[1:2])
    stream.resize(1)
    assert recorder(int(loop.ctypes.data), 1, 7, 0.001)  # the new pool: one tick a frame
    buf = stream.take()
    assert buf is not None
    assert (buf.tick, buf.ticks, buf.t, buf.wall) == (7, 1, 0.008, 1.0)
    np.testing.assert_array_equal(buf.valid(), [[1.0, 2.0]])
    del ring


def test_ring_rows_refuse_what_the_ring_does_not_hold() -> None:
    row = ([0.0] * 5, [np.array([1.0, 2.0], np.float32)])
    loop, ring, offsets = ring_with_rows(SOURCES[1:2], [row], 0, 2)
    stream = ProbeStream("p", "values", (2,), 1, compiled=True)
    recorder = RowRecorder([stream], offsets, SOURCES[1:2])
    with pytest.raises(ValueError, match="expected 0 to the rows ready"):
        recorder(int(loop.ctypes.data), 2, 0, 0.001)  # one row written
    past = RowRecorder([stream], [offsets[0] + 8], SOURCES[1:2])  # runs off the row
    with pytest.raises(ValueError, match="does not fit a row of 64 bytes"):
        past(int(loop.ctypes.data), 1, 0, 0.001)
    header = RowRecorder([stream], [8], SOURCES[1:2])  # inside the row's header
    with pytest.raises(ValueError, match="does not fit"):
        header(int(loop.ctypes.data), 1, 0, 0.001)
    spikes = ProbeStream("s", "spikes", (2,), 1, compiled=True)
    with pytest.raises(ValueError, match=r"expected shape \(2,\) and one of \['bool'\]"):
        RowRecorder([spikes], offsets, [np.zeros(2, np.float64)])  # no cast to bool
    with pytest.raises(ValueError, match="expected shape"):
        RowRecorder([stream], offsets, [np.zeros(3, np.float32)])
    table = np.array([[stream.pool.address, offsets[0], 0]], np.int64)
    for column, bad in ((L_CAPACITY, 0), (L_ROW_BYTES, 60), (L_RING, 0)):
        broken = loop.copy()
        broken[column] = bad
        with pytest.raises(ValueError, match="malformed loop array"):
            ext.streams_record(broken.ctypes.data, table.ctypes.data, 1, 1, 0, 0.001)
    huge = table.copy()
    huge[0, 1] = 2**62  # past the row, and past int64 when added to
    with pytest.raises(ValueError, match="does not fit"):
        ext.streams_record(loop.ctypes.data, huge.ctypes.data, 1, 1, 0, 0.001)
    assert stream.queued() == 0  # nothing written
    del ring


def test_a_misaligned_value_is_recorded_as_an_aligned_one(compiled: bool) -> None:
    """numpy exports a misaligned float64 array's format as ``=d``, which the compiled
    step refused with a ValueError; such a value takes the converting path."""
    stream = ProbeStream("p", "values", (4,), 2, capacity=3, compiled=compiled)
    odd = np.zeros(33, np.uint8)[1:].view(np.float64)
    assert not odd.flags.aligned
    odd[:] = [1.0, 2.0, 3.0, 4.0]
    stream.record(odd, 0, 0.001, 0.0, 0.0)
    stream.record(odd * 2, 1, 0.002, 0.0, 0.0)
    ((_, tick, ticks, rows),) = drain(stream)
    assert (tick, ticks) == (0, 2)
    np.testing.assert_array_equal(rows, [[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]])


# -- gaps a mutation audit found ---------------------------------------------------------------


def test_resize_to_zero_ticks_per_frame_is_refused_and_changes_nothing(compiled: bool) -> None:
    """A frame of no ticks is refused by :meth:`ProbeStream.resize` as by the constructor,
    before the partial frame is flushed."""
    stream = ProbeStream("p", "values", (1,), 4, compiled=compiled)
    fill(stream, 2)
    with pytest.raises(ConfigError, match="ticks_per_frame must be >= 1"):
        stream.resize(0)
    assert stream.ticks_per_frame == 4
    assert stream.partial_ticks() == 2
    assert stream.queued() == 0


def test_coalesce_never_merges_frames_whose_ticks_are_not_contiguous(compiled: bool) -> None:
    """Coalescing merges only a frame that continues the newest queued one: after a gap
    in the ticks the queue drops its oldest frame instead, so no frame's ``tick`` and
    ``ticks`` claim ticks it does not hold."""
    stream = ProbeStream("p", "spikes", (2,), 2, capacity=1, policy="coalesce", compiled=compiled)
    fill(stream, 2)  # ticks 0, 1: queued
    fill(stream, 2, start=10)  # ticks 10, 11: not contiguous with the queued frame
    assert (stream.coalesced, stream.dropped) == (0, 1)
    assert [(f[0], f[1], f[2]) for f in drain(stream)] == [(1, 10, 2)]


def test_resize_carries_the_coalesced_count_over(compiled: bool) -> None:
    """The counters carry over a resize: ``coalesced`` as well as seq, dropped and frames."""
    stream = ProbeStream("p", "spikes", (2,), 5, capacity=2, policy="coalesce", compiled=compiled)
    fill(stream, 5 * 6)
    assert stream.coalesced == 4
    stream.resize(3)
    assert stream.coalesced == 4
    assert stream.statistics().coalesced == 4


def test_statistics_count_the_frames_of_the_old_size_as_queued(compiled: bool) -> None:
    """Frames queued before a resize are still queued: :meth:`ProbeStream.statistics`
    counts them, as :meth:`ProbeStream.queued` does."""
    stream = ProbeStream("p", "values", (1,), 4, capacity=4, compiled=compiled)
    fill(stream, 8)  # two full frames
    stream.resize(2)
    fill(stream, 2, start=8)  # one frame of the new size
    assert stream.queued() == 3
    assert stream.statistics().queued == 3
