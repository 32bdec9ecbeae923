"""The client's queues and status watcher (pure: no broker): bounds, drop counting,
gap accounting of a frame stream, and what a status watcher's listeners receive."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from spikestream_client.errors import ConfigError, TransportError
from spikestream_client.streams import FrameStream, StatusWatcher, Subscription
from tests.clients.frames import header, spike_frame


def test_a_subscription_needs_room_for_one_item_and_counts_what_it_receives() -> None:
    """maxsize is documented as >= 1; ``received`` counts every item delivered, and a
    closed subscription takes nothing more."""
    with pytest.raises(ConfigError):
        Subscription[int](0)
    sub = Subscription[int](2)
    for i in range(3):
        sub._push(i)
    assert (sub.received, sub.overflowed, len(sub)) == (3, 1, 2)
    sub.close()
    sub._push(9)
    assert (sub.received, len(sub)) == (3, 2)


async def test_local_drops_are_reported_once_with_the_gap_they_caused() -> None:
    """Frames this queue dropped are reported in the next gap's ``local`` and then
    forgotten: a later gap lost on the way must not be blamed on the queue again."""
    stream: FrameStream[object] = FrameStream("fake", None, 1, yield_gaps=False)
    ones = np.ones((10, 2), bool)

    def push(seq: int) -> None:
        stream._push(spike_frame(header("a", seq, 10 * seq), ones))

    push(0)
    await stream.get(1)
    for seq in (1, 2, 3):  # 1 and 2 are dropped by the full queue
        push(seq)
    await stream.get(1)
    push(4)
    await stream.get(1)
    push(6)  # 5 lost on the way
    await stream.get(1)
    assert [(g.missing, g.local) for g in stream.gaps] == [(2, 2), (1, 0)]


async def test_a_frame_stream_keeps_the_last_1000_gaps() -> None:
    """``gaps`` holds the most recent 1000 (documented), while the totals go on."""
    stream: FrameStream[object] = FrameStream("fake", "a", 4, yield_gaps=False)
    ones = np.ones((1, 1), bool)
    for i in range(1002):
        stream._push(spike_frame(header("a", 2 * i, 2 * i, ticks=1), ones))
        await stream.get(1)
    assert (len(stream.gaps), stream.gap_count, stream.gaps[-1].got) == (1000, 1001, 2002)


async def test_a_status_listener_gets_each_change_once() -> None:
    """A repeated status is counted in ``updates`` but is no change: listeners get it
    once; a cleared status (None) is not yielded; a listener's queue holds 64 changes;
    closing a listener detaches it from the watcher."""
    watcher = StatusWatcher("fake")
    sub = watcher.__aiter__()
    for value in ("online", "online", None, "offline"):
        watcher._set(value)
    assert watcher.updates == 4
    assert [await sub.get(1) for _ in range(len(sub))] == ["online", "offline"]
    for i in range(70):
        watcher._set(f"s{i}")
    assert (len(sub), sub.overflowed) == (64, 6)
    sub.close()
    assert watcher._listeners == []


async def test_a_wait_for_a_status_ends_when_the_client_closes() -> None:
    """A ``wait_for`` pending when the client closed went round an event that stays set,
    never yielding to the loop: the process spun at 100 % CPU and its own timeout could
    never fire. It raises TransportError now, as a reply pending at close does; so does a
    wait begun after the close, unless the status already is the one asked for."""
    watcher = StatusWatcher("seed")
    waiting = asyncio.create_task(watcher.wait_for("online", timeout=5))
    await asyncio.sleep(0)
    watcher._close()
    async with asyncio.timeout(1):
        with pytest.raises(TransportError, match="closed while waiting for 'seed' to be 'online'"):
            await waiting
    with pytest.raises(TransportError):
        await asyncio.wait_for(watcher.wait_for("offline"), 1)
    closed_online = StatusWatcher("seed")
    closed_online._set("online")
    closed_online._close()
    await asyncio.wait_for(closed_online.wait_for("online"), 1)
