"""FrameSender: the engine's queued frames to a real mosquitto, a round of probes at a time;
every frame the link refuses or fails to encode is counted, and the count travels in the
probe's next frame."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from spikestream.budget import QueuePolicy
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.runtime.trace import LatencyTrace
from spikestream.serving import frames_out
from spikestream.serving.bridges import Bridges
from spikestream.serving.framecodec import ProbeEncoder
from spikestream.serving.frames_out import FrameSender
from spikestream.spec import load_network
from spikestream_client.codec import Topics
from spikestream_client.codec.frames import SpikeFrame, decode_frame
from spikestream_client.transport import MqttLink
from tests.brokers import Mosquitto, MosquittoFactory
from tests.runtime.test_tick_runs import SEED
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker

TICKS = 6


def _engine(first: int = 0) -> Engine:
    """The seed network's engine (not started) with ``TICKS`` one-tick frames queued on
    every probe, of ticks ``first`` on (their seqs are 0 on whatever ``first`` is)."""
    engine = Engine(build(load_network(SEED)), queue_capacity=64)
    for stream in engine.streams.values():
        stream.resize(1)
        for tick in range(first, first + TICKS):
            value = np.full(stream.shape, tick % 2, np.float32 if stream.kind == "values" else bool)
            assert stream.record(value, tick, (tick + 1) * 0.001, 0.0, 1.0e9 + tick)
    return engine


def _sender(
    engine: Engine,
    link: MqttLink,
    qos: int,
    trace: LatencyTrace | None = None,
    *,
    expiry: int | None = None,
    retry_later: Callable[[float], None] = lambda delay: None,
    text_rate: float | None = None,
) -> FrameSender:
    net = engine.model.name
    topics = {name: f"fo/{net}/{name}" for name in engine.streams}
    shapes = {name: (s.kind, s.shape) for name, s in engine.streams.items()}
    bridges = Bridges(
        link, Topics("fo", net), shapes, text_rate=text_rate, ha_prefix=None, version="test"
    )
    return FrameSender(
        engine,
        link,
        topics,
        qos=qos,
        expiry=expiry,
        bridges=bridges,
        trace=trace,
        yield_gil=lambda: None,
        retry_later=retry_later,
    )


@contextlib.asynccontextmanager
async def _pair(mosquitto: Mosquitto, **options: object) -> AsyncIterator[tuple[MqttLink, Inbox]]:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("fo/#", qos=1)
    pub = make_link(mosquitto.url(), "pub", **options)
    async with running(sub), running(pub):
        yield pub, inbox


def _seqs(inbox: Inbox, probe: str) -> list[tuple[int, int]]:
    """``(seq, dropped)`` of each frame of ``probe`` received, in order."""
    frames = [decode_frame(p) for t, p, _ in inbox.items if t.endswith("/" + probe)]
    return [(f.header.seq, f.header.dropped) for f in frames]


@pytest.mark.parametrize("qos", [0, 1])
async def test_every_queued_frame_arrives_in_order(mosquitto: Mosquitto, qos: int) -> None:
    engine = _engine()
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, qos)
        while sender.send():
            pass
        total = TICKS * len(engine.streams)
        await eventually(lambda: len(inbox.items) == total)
        for name, stream in engine.streams.items():
            assert _seqs(inbox, name) == [(seq, 0) for seq in range(TICKS)]
            assert stream.queued() == 0
            assert stream.dropped == 0
            # Each frame holds its own tick's row (the buffer's first row, nothing after).
            for _, payload, _ in (m for m in inbox.items if m[0].endswith("/" + name)):
                frame = decode_frame(payload)
                tick = frame.header.tick
                assert frame.header.ticks == 1
                got = frame.spikes if isinstance(frame, SpikeFrame) else frame.data
                assert got.shape == (1, *stream.shape)
                assert np.all(got == tick % 2)
        assert {m.qos for _, _, m in inbox.items} == {qos}
        assert {m.content_type for _, _, m in inbox.items} == {"application/msgpack"}


@pytest.mark.parametrize("qos", [0, 1])
async def test_a_small_window_is_shared_in_turns_and_nothing_is_taken_to_be_refused(
    mosquitto: Mosquitto, qos: int
) -> None:
    """A window with room for two frames and five probes: each round takes only what
    the window holds, so no frame is taken out to be refused, and the probes take turns.
    Before, every round began with the first probe: the first two had every frame sent
    and the other three every frame refused."""
    engine = _engine()
    names = list(engine.streams)
    assert len(names) == 5
    async with _pair(mosquitto, max_queued_outgoing=2) as (link, inbox):
        sender = _sender(engine, link, qos)
        sender.send()
        assert [engine.streams[n].queued() for n in names] == [TICKS - 1] * 2 + [TICKS] * 3
        served: list[set[str]] = []  # the probes whose frames went, at each send
        for _ in range(200):
            if not any(s.queued() for s in engine.streams.values()):
                break
            await eventually(lambda: link.room() == 2)
            before = {n: engine.streams[n].queued() for n in names}
            sender.send()
            served.append({n for n in names if engine.streams[n].queued() < before[n]})
        # Turns: the three probes left out of the first send went next, then the first.
        assert served[:2] == [set(names[2:4]), {names[4], names[0]}]
        assert len(served) == TICKS * len(names) // 2 - 1
        assert link.statistics().publish_failed == 0
        await eventually(lambda: len(inbox.items) == TICKS * len(names))
        for name in names:
            assert engine.streams[name].dropped == 0
            assert _seqs(inbox, name) == [(seq, 0) for seq in range(TICKS)]


@pytest.mark.parametrize("qos", [0, 1])
async def test_frames_the_link_refuses_are_counted_and_the_count_travels(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, qos: int
) -> None:
    """Frames the link refuses (here: a window that says it has room for five but takes
    two, as when other messages fill it within the round) are counted on their probes,
    whose next frames go first and carry the count."""
    engine = _engine()
    names = list(engine.streams)
    async with _pair(mosquitto, max_queued_outgoing=2) as (link, inbox):
        sender = _sender(engine, link, qos)
        room = link.room
        with monkeypatch.context() as patch:
            # The first round sees room for five; the next ones see the window as it is.
            answers = iter([len(names)])
            patch.setattr(link, "room", lambda: next(answers, None) or room())
            sender.send()  # one round of five: two go, three are refused
        assert [engine.streams[n].dropped for n in names] == [0, 0, 1, 1, 1]
        # The link counted each refusal, as publish_nowait counts it (at QoS 1 too).
        assert link.statistics().publish_failed == 3
        for _ in range(200):
            if not any(s.queued() for s in engine.streams.values()):
                break
            await eventually(link.can_publish)
            sender.send()
        await eventually(lambda: len(inbox.items) == TICKS * len(names) - 3)
        for name in names[:2]:
            assert _seqs(inbox, name) == [(seq, 0) for seq in range(TICKS)]
        for name in names[2:]:
            # Frame 0 was refused: every later frame says one was lost before it.
            assert _seqs(inbox, name) == [(seq, 1) for seq in range(1, TICKS)]


async def test_a_single_frame_refused_in_a_round_is_counted(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round of five that the window takes but four of: the one frame refused is counted
    on its probe and its count travels, as when several are refused (a round short by
    one is a round short)."""
    engine = _engine()
    names = list(engine.streams)
    async with _pair(mosquitto, max_queued_outgoing=len(names) - 1) as (link, inbox):
        sender = _sender(engine, link, 0)
        room = link.room
        with monkeypatch.context() as patch:
            answers = iter([len(names)])  # the first round sees room for five
            patch.setattr(link, "room", lambda: next(answers, None) or room())
            sender.send()
        assert [engine.streams[n].dropped for n in names] == [0] * (len(names) - 1) + [1]
        assert link.statistics().publish_failed == 1
        for _ in range(200):
            if not any(s.queued() for s in engine.streams.values()):
                break
            await eventually(link.can_publish)
            sender.send()
        await eventually(lambda: len(inbox.items) == TICKS * len(names) - 1)
        assert _seqs(inbox, names[-1]) == [(seq, 1) for seq in range(1, TICKS)]


@pytest.mark.parametrize("qos", [0, 1])
async def test_frames_past_the_brokers_packet_limit_are_dropped_and_the_rest_counted_once(
    mosquitto_factory: MosquittoFactory, monkeypatch: pytest.MonkeyPatch, qos: int
) -> None:
    """A broker that takes packets of at most 260 bytes: the filtered probes' frames (50
    and 40 float32 values, about 340 and 300 bytes with their topic) are dropped before
    the link sees them, counted on their probes and in ``publish_too_large``; the frames
    around them go in runs. With a window of one, every frame the link refuses is still
    counted once in ``publish_failed``: the run after a refused one was skipped, and its
    frames counted dropped but nowhere in the link."""
    broker = mosquitto_factory(extra_config="max_packet_size 260\n")
    engine = _engine()
    names = list(engine.streams)
    assert names == ["a_spikes", "b_spikes", "a_filtered", "b_filtered", "u"]
    async with _pair(broker, max_queued_outgoing=1) as (link, inbox):
        assert link.packet_limit == 260
        sender = _sender(engine, link, qos)
        room = link.room
        with monkeypatch.context() as patch:
            answers = iter([len(names)])  # the first round sees room for five
            patch.setattr(link, "room", lambda: next(answers, None) or room())
            sender.send()
        dropped = {n: engine.streams[n].dropped for n in names}
        assert dropped == {"a_spikes": 0, "b_spikes": 1, "a_filtered": 1, "b_filtered": 1, "u": 1}
        stats = link.statistics()
        assert stats.publish_too_large == 2
        assert stats.publish_failed == 4  # b_spikes and u by the window, two too large
        await eventually(lambda: len(inbox.items) == 1)
        assert _seqs(inbox, "a_spikes") == [(0, 0)]
        assert stats.connects == 1


async def test_frames_after_a_too_large_one_go_out_and_are_not_counted_dropped(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With room in the window, the run after the too large frames (``u``'s, past both
    filtered probes) goes out and is not counted dropped: the link's count of a run is
    of that run's frames, which begin past the first run's. Each too large probe is
    logged once, not once a frame."""
    broker = mosquitto_factory(extra_config="max_packet_size 260\n")
    engine = _engine()
    names = list(engine.streams)
    too_large = {"a_filtered", "b_filtered"}
    async with _pair(broker) as (link, inbox):
        sender = _sender(engine, link, 0)
        with caplog.at_level(logging.WARNING, logger="spikestream.serve"):
            while sender.send():
                pass
        dropped = {n: engine.streams[n].dropped for n in names}
        assert dropped == {n: TICKS if n in too_large else 0 for n in names}
        assert link.statistics().publish_too_large == TICKS * len(too_large)
        await eventually(lambda: len(inbox.items) == TICKS * (len(names) - len(too_large)))
        for name in set(names) - too_large:
            assert _seqs(inbox, name) == [(seq, 0) for seq in range(TICKS)]
        logged = [r for r in caplog.records if "does not fit" in r.getMessage()]
        assert sorted(str(r.args[0]) for r in logged) == sorted(too_large)  # type: ignore[index]


async def test_a_slice_that_runs_out_before_its_first_round_still_sends_one(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slice's time is read after each round: a sender whose thread was preempted
    past the slice before its first round (here: a slice already over) still sends a
    frame of each probe, and says more are queued. Before, it returned having sent
    nothing, which also made the refusal test above fail on a busy machine."""
    monkeypatch.setattr(frames_out, "DRAIN_SLICE", -1.0)
    engine = _engine()
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, 0)
        assert sender.send() is True
        assert [s.queued() for s in engine.streams.values()] == [TICKS - 1] * len(engine.streams)
        await eventually(lambda: len(inbox.items) == len(engine.streams))
        for name in engine.streams:
            assert _seqs(inbox, name) == [(0, 0)]


async def test_a_slice_that_ends_with_every_queue_empty_says_nothing_more(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice over after the round that emptied every queue returns False: True asks
    the event loop to call send() again, for nothing (the slice's end is checked only
    while frames are still queued)."""
    monkeypatch.setattr(frames_out, "DRAIN_SLICE", -1.0)
    engine = Engine(build(load_network(SEED)), queue_capacity=64)
    for stream in engine.streams.values():
        stream.resize(1)
        value = np.zeros(stream.shape, np.float32 if stream.kind == "values" else bool)
        assert stream.record(value, 0, 0.001, 0.0, 1.0e9)
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, 0)
        assert sender.send() is False
        assert [s.queued() for s in engine.streams.values()] == [0] * len(engine.streams)
        await eventually(lambda: len(inbox.items) == len(engine.streams))


@pytest.mark.parametrize("traced", [False, True], ids=["one-step", "traced"])
async def test_a_frame_that_fails_to_encode_is_counted_and_the_next_probes_wait(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, traced: bool
) -> None:
    """An encoder that raises (a programming error) propagates; its frame is counted and
    its buffer given back, the frames encoded before it go out, and the next probes'
    frames stay queued, nothing lost. On the one-step path (take_encoded) and on the
    path that takes each buffer to show it (a latency trace)."""
    engine = _engine()
    names = list(engine.streams)
    async with _pair(mosquitto) as (link, inbox):
        broken = names[1]
        real = ProbeEncoder.encode_rows

        def fail(self: ProbeEncoder, *args: Any) -> bytes:
            if self.probe == broken:
                raise ValueError("broken encoder")
            return real(self, *args)

        monkeypatch.setattr(ProbeEncoder, "encode_rows", fail)
        trace = LatencyTrace(names) if traced else None
        sender = _sender(engine, link, 0, trace)
        pools = {n: s.free_buffers() for n, s in engine.streams.items()}
        with pytest.raises(ValueError, match="broken encoder"):
            sender.send()
        assert [engine.streams[n].dropped for n in names] == [0, 1] + [0] * (len(names) - 2)
        # The two taken buffers are back in their pools; the next probes' frames wait.
        assert {n: s.free_buffers() for n, s in engine.streams.items()} == {
            n: pools[n] + (i < 2) for i, n in enumerate(names)
        }
        assert [engine.streams[n].queued() for n in names] == [TICKS - 1] * 2 + [TICKS] * (
            len(names) - 2
        )
        await eventually(lambda: len(inbox.items) == 1)
        assert _seqs(inbox, names[0]) == [(0, 0)]
        if trace is not None:  # the one frame handed over, as what it is: probe 0, seq 0
            published = trace._frames.ordered()
            assert published[:, :2].tolist() == [[0.0, 0.0]]
            assert published[0, 2] <= published[0, 3]  # taken, then handed over


async def test_the_trace_records_the_frames_handed_over_by_seq_and_no_refused_one(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a latency trace, a round the link partly refuses records only the frames it
    took, each under its probe's seq (not its tick: here the frames begin at tick 100),
    so a trace's frames are the frames subscribers saw."""
    engine = _engine(first=100)
    names = list(engine.streams)
    async with _pair(mosquitto, max_queued_outgoing=2) as (link, inbox):
        trace = LatencyTrace(names)
        sender = _sender(engine, link, 0, trace)
        room = link.room
        with monkeypatch.context() as patch:
            answers = iter([len(names)])  # room for five seen; the window takes two
            patch.setattr(link, "room", lambda: next(answers, None) or room())
            sender.send()
        assert [engine.streams[n].dropped for n in names] == [0, 0, 1, 1, 1]
        assert trace._frames.ordered()[:, :2].tolist() == [[0.0, 0.0], [1.0, 0.0]]
        for _ in range(200):
            if not any(s.queued() for s in engine.streams.values()):
                break
            await eventually(link.can_publish)
            sender.send()
        await eventually(lambda: len(inbox.items) == TICKS * len(names) - 3)
        got = sorted(map(tuple, trace._frames.ordered()[:, :2].tolist()))
        refused = {(float(i), 0.0) for i in (2, 3, 4)}
        every = {(float(i), float(seq)) for i in range(len(names)) for seq in range(TICKS)}
        assert got == sorted(every - refused)


async def test_a_link_that_raises_leaves_the_round_counted(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the link raise on a round (a programming error: an invalid topic), the error
    propagates and every frame of the round is counted, its buffer given back."""
    engine = _engine()
    names = list(engine.streams)
    async with _pair(mosquitto) as (link, _):
        sender = _sender(engine, link, 0)

        def broken(*args: Any, **kwargs: Any) -> int:
            raise ValueError("invalid publish topic")

        monkeypatch.setattr(link, "publish_frames", broken)
        pools = {n: s.free_buffers() for n, s in engine.streams.items()}
        with pytest.raises(ValueError, match="invalid publish topic"):
            sender.send()
        assert [engine.streams[n].dropped for n in names] == [1] * len(names)
        assert {n: s.free_buffers() for n, s in engine.streams.items()} == {
            n: pools[n] + 1 for n in names
        }


async def test_a_disconnected_link_takes_nothing_and_schedules_no_retry(
    mosquitto: Mosquitto,
) -> None:
    """While the link is down, frames stay queued (no drop) and the sender does not poll:
    it asks for no retry, the reconnection resumes sending."""
    engine = _engine()
    link = make_link(mosquitto.url(), "down")
    retries: list[float] = []
    sender = _sender(engine, link, 0, retry_later=retries.append)
    assert sender.send() is False
    assert retries == []
    assert [s.queued() for s in engine.streams.values()] == [TICKS] * len(engine.streams)
    assert [s.dropped for s in engine.streams.values()] == [0] * len(engine.streams)


async def test_a_full_window_asks_for_a_retry_and_takes_nothing(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window with no room: send() returns False at once, asks to be called again in
    a millisecond, and no frame leaves its queue."""
    engine = _engine()
    async with _pair(mosquitto) as (link, _):
        retries: list[float] = []
        sender = _sender(engine, link, 0, retry_later=retries.append)
        monkeypatch.setattr(link, "room", lambda: 0)
        assert sender.send() is False
        assert retries == [0.001]
        assert [s.queued() for s in engine.streams.values()] == [TICKS] * len(engine.streams)
        assert [s.dropped for s in engine.streams.values()] == [0] * len(engine.streams)


async def test_nothing_queued_means_nothing_more_to_send(mosquitto: Mosquitto) -> None:
    """With every queue empty, send() says there is nothing more (the caller must not
    call it again in a loop)."""
    engine = _engine()
    async with _pair(mosquitto) as (link, _):
        sender = _sender(engine, link, 0)
        while sender.send():
            pass
        assert all(s.queued() == 0 for s in engine.streams.values())
        assert sender.send() is False


async def test_a_window_smaller_than_a_round_serves_the_probes_in_turn_within_a_slice(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window that takes two frames per round (and keeps taking them) and five probes:
    within one slice the probes left out go first in the next round, so the first five
    frames are one of each probe."""
    monkeypatch.setattr(frames_out, "DRAIN_SLICE", 60.0)
    engine = _engine()
    names = list(engine.streams)
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, 0)
        order: list[str] = []
        publish = link.publish_frames

        def spy(messages: list[tuple[str, bytes]], **kwargs: Any) -> int:
            order.extend(topic.rsplit("/", 1)[1] for topic, _ in messages)
            return publish(messages, **kwargs)

        monkeypatch.setattr(link, "publish_frames", spy)
        monkeypatch.setattr(link, "room", lambda: 2)
        assert sender.send() is False
        assert order[:5] == names
        assert sorted(order) == sorted(names * TICKS)
        await eventually(lambda: len(inbox.items) == TICKS * len(names))


async def test_the_gil_is_offered_to_the_tick_thread_once_a_round(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the Python tick path the I/O thread hands the GIL over between rounds, so a
    long run of frames does not hold the tick thread back: ``yield_gil`` is called once
    per round, here one slice of ``TICKS`` rounds."""
    monkeypatch.setattr(frames_out, "DRAIN_SLICE", 60.0)
    engine = _engine()
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, 0)
        calls: list[None] = []
        sender.yield_gil = lambda: calls.append(None)
        assert sender.send() is False
        assert len(calls) == TICKS
        await eventually(lambda: len(inbox.items) == TICKS * len(engine.streams))


@pytest.mark.parametrize("qos", [0, 2])
async def test_frames_carry_the_qos_and_expiry_they_are_sent_with(
    mosquitto: Mosquitto, qos: int
) -> None:
    """Frames go out at the sender's QoS (2 too) with its message expiry interval."""
    engine = _engine()
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("fo/#", qos=2)
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        sender = _sender(engine, pub, qos, expiry=3600)
        while sender.send():
            pass
        await eventually(lambda: len(inbox.items) == TICKS * len(engine.streams))
    assert {m.qos for _, _, m in inbox.items} == {qos}
    expiries = {m.expiry for _, _, m in inbox.items}
    assert None not in expiries
    assert all(3500 < e <= 3600 for e in expiries if e is not None)


@pytest.mark.parametrize("policy", ["drop-oldest", "coalesce"])
async def test_the_text_bridge_is_shown_the_frames_rows_not_the_rest_of_its_buffer(
    mosquitto: Mosquitto, policy: QueuePolicy
) -> None:
    """The text bridge keeps a value probe's last row of each frame: the frame's last
    tick, not the buffer's last row. A flushed partial frame (2 ticks in a 4-tick
    buffer) and a coalesced one (buffers 8 frames long) leave rows after the frame's,
    which hold nothing of it."""
    engine = Engine(build(load_network(SEED)), queue_capacity=4, queue_policy=policy)
    stream = engine.streams["u"]
    stream.resize(4)
    for tick, value in enumerate([0.25, 0.75]):
        stream.record(np.full(stream.shape, value), tick, (tick + 1) * 0.001, 0.0, 1.0e9)
    assert stream.flush(1.0e9)
    assert stream.pool.data.shape[1] == (32 if policy == "coalesce" else 4)
    async with _pair(mosquitto) as (link, inbox):
        sender = _sender(engine, link, 0, text_rate=10.0)
        while sender.send():
            pass
        assert stream.queued() == 0
        text = sender.bridges.text
        assert text is not None
        assert text.due() == [("fo/seed/text/u", b"0.75")]
        await eventually(lambda: len(inbox.items) == 1)
        frame = decode_frame(inbox.items[0][1])
        assert frame.header.ticks == 2
