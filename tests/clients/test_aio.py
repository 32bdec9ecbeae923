"""first_of: the winner's outcome, the loser cancelled and settled, nothing dropped."""

from __future__ import annotations

import asyncio

import pytest

from spikestream_client.aio import First, Second, first_of


class Probe:
    """An awaitable's life: how it ended, and whether its cleanup ran to the end."""

    def __init__(self) -> None:
        self.cancelled = False
        self.cleaned = False

    async def run(self, delay: float, value: object = None, *, error: bool = False) -> object:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled = True
            await asyncio.sleep(0.01)  # cleanup that itself awaits (closing a socket)
            self.cleaned = True
            raise
        if error:
            raise ValueError(f"failed after {delay}")
        return value


async def test_the_first_to_finish_wins_and_the_other_is_cancelled_and_settled() -> None:
    slow = Probe()
    won = await first_of(Probe().run(0.0, "fast"), slow.run(10.0, "slow"))
    assert won == First("fast")
    assert slow.cancelled
    assert slow.cleaned  # its cleanup finished before first_of returned

    fast_second = await first_of(slow.run(10.0, 1), Probe().run(0.0, 2))
    assert isinstance(fast_second, Second)
    assert fast_second.value == 2


async def test_a_tie_goes_to_the_first() -> None:
    a: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    b: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    a.set_result("a")
    b.set_result("b")
    assert await first_of(a, b) == First("a")


async def test_timeout_cancels_both_and_returns_none() -> None:
    one, two = Probe(), Probe()
    assert await first_of(one.run(10.0), two.run(10.0), timeout=0.05) is None
    assert one.cleaned
    assert two.cleaned


async def test_the_winners_exception_propagates_after_the_loser_settled() -> None:
    loser = Probe()
    with pytest.raises(ValueError, match="failed after 0"):
        await first_of(Probe().run(0.0, error=True), loser.run(10.0))
    assert loser.cleaned


async def test_a_loser_failing_while_cancelled_is_not_dropped() -> None:
    async def bad_cleanup() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    with pytest.raises(RuntimeError, match="cleanup failed"):
        await first_of(asyncio.sleep(0, "done"), bad_cleanup())


async def test_a_loser_that_finished_in_the_same_step_is_dropped() -> None:
    """Like a connection that is both marked lost and failed its socket future."""
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[str] = loop.create_future()
    broken: asyncio.Future[None] = loop.create_future()
    lost.set_result("lost")
    broken.set_exception(ConnectionError("socket error"))
    assert await first_of(lost, broken) == First("lost")
    assert broken.exception() is not None  # untouched, and retrieved (no log)


async def test_cancelling_the_caller_cancels_and_settles_both() -> None:
    one, two = Probe(), Probe()
    task = asyncio.create_task(first_of(one.run(10.0), two.run(10.0)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert one.cleaned
    assert two.cleaned


async def test_a_winner_cancelled_by_someone_else_raises_cancelled() -> None:
    outside: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    other = Probe()
    outside.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_of(outside, other.run(10.0))
    assert other.cleaned


async def test_a_shielded_future_survives_losing() -> None:
    """The documented way to race a future one does not own."""
    owned: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    won = await first_of(asyncio.sleep(0, "now"), asyncio.shield(owned))
    assert won == First("now")
    assert not owned.cancelled()
    owned.set_result(None)


async def test_a_winner_cancelled_by_someone_else_outranks_a_loser_that_fails() -> None:
    """The winner's outcome comes first, even a cancellation from outside: a loser that
    fails while it is cancelled does not replace it (the loser's error used to win when
    the check for a cancelled winner was dropped)."""

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    outside: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    outside.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_of(outside, fails_when_cancelled())


async def test_a_cancelled_caller_leaves_no_exception_unretrieved() -> None:
    """When the caller is cancelled, what the awaitables ended with is retrieved: a loser
    that failed in its cleanup must not surface later as the loop's "Task exception was
    never retrieved" (logged from the garbage collector, far from its cause)."""
    import gc

    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    async def cancel_the_caller() -> None:
        task = asyncio.create_task(first_of(fails_when_cancelled(), asyncio.sleep(10)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        await cancel_the_caller()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c for c in reported if "never retrieved" in str(c.get("message"))] == []


async def test_the_winners_exception_outranks_a_loser_that_fails_in_its_cleanup() -> None:
    """Both fail: the winner's error is the one raised, as documented (the loser's, met
    while it was being cancelled, is secondary)."""

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    with pytest.raises(ValueError, match="failed after 0"):
        await first_of(Probe().run(0.0, error=True), fails_when_cancelled())
