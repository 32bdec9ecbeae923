"""Helpers shared by the transport tests: message inbox, deadlines, running links, and
MQTT's bytes for the tests that play a (hostile) broker themselves."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from spikestream_client.transport import MessageMeta, MqttLink

Received = tuple[str, bytes, MessageMeta]


class Inbox:
    """An ``on_message`` callback that records messages and lets tests wait for them."""

    def __init__(self) -> None:
        self.items: list[Received] = []
        self._arrived = asyncio.Event()

    def __call__(self, topic: str, payload: bytes, meta: MessageMeta) -> None:
        self.items.append((topic, payload, meta))
        self._arrived.set()

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [p for t, p, _ in self.items if topic is None or t == topic]

    async def wait_for(
        self, predicate: Callable[[Received], bool], within: float = 10.0
    ) -> Received:
        """The first recorded message matching ``predicate``, waiting up to ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            for item in self.items:
                if predicate(item):
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                shown = [(t, p[:40]) for t, p, _ in self.items[-10:]]
                msg = f"no matching message within {within} s; last received: {shown}"
                raise AssertionError(msg)
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()

    async def wait_payload(self, topic: str, payload: bytes, within: float = 10.0) -> Received:
        return await self.wait_for(lambda m: m[0] == topic and m[1] == payload, within)


async def eventually(
    predicate: Callable[[], bool], within: float = 10.0, interval: float = 0.02
) -> float:
    """Poll ``predicate`` until true; return the seconds it took. Fails after ``within``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            msg = f"condition not met within {within} s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def running(
    link: MqttLink, *, connect_timeout: float | None = 10.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``link`` in a task; optionally wait until connected; always stop it after."""
    task = asyncio.create_task(link.run(), name="test-link")
    try:
        if connect_timeout is not None:
            ok = await link.wait_connected(connect_timeout)
            if not ok:
                msg = f"link did not connect within {connect_timeout} s: {link.statistics()}"
                raise AssertionError(msg)
        yield task
    finally:
        if not task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await link.stop()
        if not task.done():
            task.cancel()
        # Collect the outcome so no "exception was never retrieved" escapes; tests that
        # care about run()'s result await the task themselves inside the block.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task


def varint(value: int) -> bytes:
    """MQTT's variable byte integer: seven bits a byte, low first."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    """A whole MQTT packet: its first byte, the body's length as a varint, the body."""
    return bytes([first]) + varint(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next packet off ``reader``: its first byte and its body."""
    first, size, shift = (await reader.readexactly(1))[0], 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        size, shift = size | (digit & 0x7F) << shift, shift + 7
        if not digit & 0x80:
            return first, await reader.readexactly(size)
