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
