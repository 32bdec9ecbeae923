"""Small asyncio helpers shared by the client library, the tools and the service.

:func:`first_of` is the one way spikestream waits for "whichever comes first" of two
awaitables (a result or a stop signal, a connection or its loss): it cancels the other
and, unlike a bare ``asyncio.wait(..., return_when=FIRST_COMPLETED)``, waits until the
cancelled one has finished (so it can close its sockets), leaves no task behind when
the caller itself is cancelled, and never drops an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["First", "Second", "first_of"]

_A = TypeVar("_A")
_B = TypeVar("_B")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class First(Generic[_T]):
    """The first awaitable given to :func:`first_of` finished first, with ``value``."""

    value: _T


@dataclass(frozen=True, slots=True)
class Second(Generic[_T]):
    """The second awaitable given to :func:`first_of` finished first, with ``value``."""

    value: _T


async def first_of(
    first: Awaitable[_A],
    second: Awaitable[_B],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the timeout is the point of the helper
) -> First[_A] | Second[_B] | None:
    """Await whichever of two awaitables finishes first and cancel the other.

    Both run concurrently (coroutines are wrapped in tasks). As soon as one finishes, or
    ``timeout`` seconds pass, the other (or both) is cancelled and awaited until it has
    really finished, so that its cleanup (closing a socket, say) is done when this
    returns. Match on the result::

        match await first_of(connect(), stop.wait()):
            case First(value=client): ...
            case _: ...  # stopped first

    Args:
        first: Awaitable whose outcome wins a tie (both done in the same loop step).
        second: The other awaitable.
        timeout: Seconds to wait at most; ``None`` waits as long as it takes.

    Returns:
        :class:`First` or :class:`Second` holding the winner's result, or ``None`` when
        ``timeout`` passed first.

    Raises:
        BaseException: The winner's exception, if it raised; otherwise an exception
            (other than cancellation) the loser raised while being cancelled. A loser
            that had finished in the same loop step is dropped, whatever its outcome.
        asyncio.CancelledError: The caller was cancelled (both awaitables are cancelled
            and awaited first), or the winner was a future cancelled by someone else.

    A future or task passed in is cancelled when it loses: wrap one you do not own in
    :func:`asyncio.shield`.
    """
    a: asyncio.Future[_A] = asyncio.ensure_future(first)
    b: asyncio.Future[_B] = asyncio.ensure_future(second)
    both: set[asyncio.Future[Any]] = {a, b}
    try:
        done, _ = await asyncio.wait(both, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        # Our own cancellation: stop both and let them finish their cleanup; what they
        # ended with is retrieved (no "never retrieved" log) and superseded.
        await _cancel_and_settle(both)
        for fut in both:
            _error(fut)
        raise
    # A loser that had already finished too is dropped, whatever it ended with; one
    # that fails while being cancelled (other than by cancellation) is a bug to report.
    cancelled = [fut for fut in (a, b) if not fut.done()]
    await _cancel_and_settle(cancelled)
    winner: asyncio.Future[_A] | asyncio.Future[_B] | None
    winner = a if a in done else b if b in done else None
    errors = {fut: _error(fut) for fut in (a, b)}  # retrieves both
    if winner is not None:
        if winner.cancelled():
            raise asyncio.CancelledError
        error = errors[winner]
        if error is not None:
            raise error
    for fut in cancelled:
        error = errors[fut]
        if error is not None:
            raise error
    if winner is a:
        return First(a.result())
    if winner is b:
        return Second(b.result())
    return None


async def _cancel_and_settle(futures: Collection[asyncio.Future[Any]]) -> None:
    """Cancel the futures not done yet and wait until every one has finished."""
    pending = [fut for fut in futures if not fut.done()]
    for fut in pending:
        fut.cancel()
    if pending:
        await asyncio.wait(pending)


def _error(fut: asyncio.Future[Any]) -> BaseException | None:
    """The exception ``fut`` ended with; ``None`` when it returned or was cancelled."""
    if fut.cancelled():
        return None
    return fut.exception()
