"""Raw HTTP against the web monitor's server: the bytes a careless or hostile client
sends, and every byte the server answers."""

from __future__ import annotations

import asyncio
import contextlib


async def reply(port: int, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send ``pieces`` to ``127.0.0.1:port``, one write each, ``pause`` seconds apart;
    return all the server answers before it closes (b"" if it closes without a word)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
