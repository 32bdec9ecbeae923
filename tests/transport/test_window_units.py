"""The publish window on its own (no broker): what :class:`Outbox` does with a confirmed,
refused, timed-out or lost message, and which messages :class:`ResendQueue` keeps past its
limit. The link tests drive these through a broker but never reach these branches: a
mutation audit found each of the checks below could be removed with every test passing."""

from __future__ import annotations

import asyncio

from spikestream_client.transport.values import Counters, Kept
from spikestream_client.transport.window import Outbox, ResendQueue


def _kept(n: int) -> Kept:
    return Kept(f"t/{n}", str(n).encode(), 1, False, None, None)


def _outbox() -> tuple[Outbox, list[int], list[list[Kept]]]:
    refused: list[int] = []
    carried: list[list[Kept]] = []
    outbox = Outbox(on_refused=lambda: refused.append(1), on_carry=carried.append)
    return outbox, refused, carried


def test_a_confirmed_message_is_not_sent_again() -> None:
    """A QoS 1 message the broker acknowledged must not be carried to the next connection
    (that would deliver it twice): published() forgets it as a kept message too."""
    outbox, refused, carried = _outbox()
    outbox.add(1, _kept(1))
    outbox.add(2, _kept(2))
    outbox.published(1, accepted=True)
    outbox.lost("gone")
    assert carried == [[_kept(2)]]
    assert refused == []


def test_a_refused_message_nobody_awaits_is_reported() -> None:
    """A negative PUBACK for a fire-and-forget message calls on_refused (it must not
    vanish silently); an accepted one does not."""
    outbox, refused, _ = _outbox()
    outbox.add(1)
    outbox.add(2)
    outbox.published(1, accepted=True)
    assert refused == []
    outbox.published(2, accepted=False)
    assert refused == [1]
    assert len(outbox) == 0


async def test_a_refused_message_someone_awaits_goes_to_the_waiter_alone() -> None:
    """An awaited refusal is the waiter's False, not also an on_refused call."""
    outbox, refused, _ = _outbox()
    task = asyncio.create_task(outbox.wait(7, 5.0))
    await asyncio.sleep(0)
    outbox.published(7, accepted=False)
    assert await task is False
    assert refused == []


async def test_a_wait_that_times_out_frees_its_place_in_the_window() -> None:
    """wait() returning None after its timeout forgets the message: otherwise each
    timed-out publish would hold a place of ``max_queued_outgoing`` for ever."""
    outbox, _, _ = _outbox()
    assert await outbox.wait(3, 0.01) is None
    assert len(outbox) == 0


async def test_a_lost_connection_fails_every_waiter_and_empties_the_window() -> None:
    """lost(): each waiter gets False (not confirmed), the window is empty, and the kept
    messages are handed over once, even if lost() is called again."""
    outbox, _, carried = _outbox()
    outbox.add(1, _kept(1))
    task = asyncio.create_task(outbox.wait(2, 5.0))
    await asyncio.sleep(0)
    outbox.lost("gone")
    assert await task is False
    assert len(outbox) == 0
    assert outbox.closed
    outbox.lost("again")
    assert carried == [[_kept(1)]]


def test_the_resend_queue_drops_its_oldest_past_the_limit_and_counts_them() -> None:
    """One message over the limit is already too many: the oldest goes, counted."""
    counters = Counters()
    queue = ResendQueue(2, counters)
    queue.carry([_kept(1), _kept(2)])
    assert len(queue) == 2
    assert counters.lost_unsent == 0
    queue.carry([_kept(3)])
    assert len(queue) == 2
    assert counters.lost_unsent == 1
    queue.carry([_kept(4), _kept(5), _kept(6)])
    assert counters.lost_unsent == 4
    assert queue.take() == [_kept(5), _kept(6)]
    assert len(queue) == 0


def test_dropping_the_resend_queue_counts_each_message_once() -> None:
    """drop() counts what it held and empties it: a second drop counts nothing."""
    counters = Counters()
    queue = ResendQueue(10, counters)
    queue.carry([_kept(1), _kept(2)])
    queue.drop()
    assert len(queue) == 0
    queue.drop()
    assert counters.lost_unsent == 2
    assert queue.take() == []
