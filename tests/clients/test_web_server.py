"""The browser monitor's server against hostile or careless clients: pages that stop
reading, too many pages, repeated headers, odd bytes in the path, and the cost of one
broadcast to many pages. Real sockets against a real :class:`WebBridge`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server
from websockets.exceptions import ConnectionClosed, InvalidStatus

from spikestream_client.monitor.web import WebBridge, start_web_server
from tests.clients.rawhttp import reply
from tests.transport.support import eventually


@contextlib.asynccontextmanager
async def _serving(bridge: WebBridge) -> AsyncIterator[tuple[Server, int]]:
    server = await start_web_server(bridge, "127.0.0.1", 0)
    try:
        yield server, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _http(port: int, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes; return the status and body the server answers before it closes."""
    head, _, body = (await reply(port, request)).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _request(path: bytes, headers: Sequence[str]) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers).encode() + b"\r\n"
    )


def _trouble(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Log records at ERROR or with a traceback."""
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


# ------------------------------------------------------------------ stalled pages


async def _page_that_never_reads(port: int) -> socket.socket:
    """A WebSocket handshake on a socket with a small receive buffer, then no reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        _request(
            b"/ws",
            [
                f"Host: 127.0.0.1:{port}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
            ],
        ),
    )
    async with asyncio.timeout(5):
        head = await loop.sock_recv(sock, 64)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


async def test_a_page_that_stops_reading_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """A page that never reads held its connection, fd and a full kernel send queue
    forever (the keepalive ping waits behind the full buffer); once one message has
    waited ``send_timeout`` it is aborted, counted and logged once."""
    bridge = WebBridge("fake", send_timeout=0.2)
    async with _serving(bridge) as (server, port):
        sock = await _page_that_never_reads(port)
        try:
            await eventually(lambda: len(bridge.peers) == 1, 5)
            filler = {"type": "summary", "pad": "x" * 2**18}
            for _ in range(200):  # up to 4 s, 52 MB offered: far more than the buffers
                if not bridge.peers:
                    break
                bridge.broadcast(filler)
                await asyncio.sleep(0.02)
            assert not bridge.peers, "the page that never reads is still served"
            assert bridge.stalled == 1
            await eventually(lambda: not server.connections, 2)
        finally:
            sock.close()
    stalled = [r for r in caplog.records if "dropped a page that read nothing" in r.getMessage()]
    assert len(stalled) == 1
    assert stalled[0].levelno == logging.WARNING
    assert not _trouble(caplog)


# ------------------------------------------------------------------ page cap


async def _hello(ws: ClientConnection) -> str:
    return str(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])


async def test_pages_past_the_cap_get_503() -> None:
    bridge = WebBridge("fake", max_pages=2)
    async with _serving(bridge) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws"
        async with connect(url) as first, connect(url) as second:
            assert [await _hello(first), await _hello(second)] == ["hello", "hello"]
            with pytest.raises(InvalidStatus) as info:
                async with connect(url):
                    pass
            assert info.value.response.status_code == 503
            assert b"at most 2" in info.value.response.body
            assert bridge.over_cap == 1
        # Closing a page frees its place.
        await eventually(lambda: not bridge.peers, 5)
        async with connect(url) as third:
            assert await _hello(third) == "hello"


async def test_pages_opened_together_never_exceed_the_cap() -> None:
    """Six pages opening at once: the check in process_request sees each page added
    before the next handshake is checked, so exactly the cap's number get a hello."""
    bridge = WebBridge("fake", max_pages=2)
    async with _serving(bridge) as (_, port), contextlib.AsyncExitStack() as stack:
        url = f"ws://127.0.0.1:{port}/ws"

        async def page() -> bool:
            try:
                ws = await stack.enter_async_context(connect(url))
                return await _hello(ws) == "hello"
            except (InvalidStatus, ConnectionClosed):
                return False

        served = await asyncio.gather(*(page() for _ in range(6)))
        assert sum(served) == 2
        assert len(bridge.peers) == 2


# ------------------------------------------------------------------ one encoding


class _CountingDict(dict[str, Any]):
    """A dict that counts how often the JSON encoder walks it (it calls ``items``)."""

    walks = 0

    def items(self) -> Any:
        _CountingDict.walks += 1
        return super().items()


async def test_a_broadcast_is_encoded_once_whatever_the_number_of_pages() -> None:
    """With 1000 pages, encoding the batch per page took 205 ms of each 50 ms period;
    it is encoded once, and each page still reads its own ``skipped`` count."""
    bridge = WebBridge("fake")
    pages, sent, queue = 4, 20, 16
    async with _serving(bridge) as (_, port), contextlib.AsyncExitStack() as stack:
        url = f"ws://127.0.0.1:{port}/ws"
        clients = [await stack.enter_async_context(connect(url)) for _ in range(pages)]
        for ws in clients:
            assert await _hello(ws) == "hello"
        _CountingDict.walks = 0
        probe = {"kind": "spikes", "t": [0, 1], "i": [3, 4]}
        for k in range(sent):  # without yielding: each page's queue overflows by 4
            bridge.broadcast({"type": "batch", "wall": k, "probes": _CountingDict(p=probe)})
        bridge.broadcast({"type": "summary", "probes": []})
        assert _CountingDict.walks == sent
        for ws in clients:
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(queue)]
            batches, summary = got[:-1], got[-1]
            assert [m["wall"] for m in batches] == list(range(sent - queue + 1, sent))
            assert all(m["skipped"] == sent + 1 - queue for m in batches)
            assert all(m["probes"] == {"p": probe} for m in batches)
            assert summary == {"type": "summary", "probes": []}


# ------------------------------------------------------------------ hostile requests


async def test_repeated_or_missing_host_and_origin_are_refused_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``request.headers.get`` raised MultipleValuesError on a repeated header: HTTP 500
    and an ERROR traceback. They are refused as any foreign header is."""
    caplog.set_level(logging.INFO)
    bridge = WebBridge("fake")
    async with _serving(bridge) as (_, port):
        host = f"Host: 127.0.0.1:{port}"
        origin = f"Origin: http://127.0.0.1:{port}"
        assert (await _http(port, _request(b"/", [host, host])))[0] == 400
        assert (await _http(port, _request(b"/ws", [host, host])))[0] == 400
        assert (await _http(port, _request(b"/", [])))[0] == 400
        assert (await _http(port, _request(b"/", [host, origin, origin])))[0] == 403
        assert (await _http(port, _request(b"/", [host, origin])))[0] == 200
        assert bridge.refused == 4
    assert not _trouble(caplog)
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert [r.getMessage() for r in refusals] == [
        "web monitor: refused a request with 2 Host headers (1 refused so far)"
    ]


async def test_a_path_with_bytes_that_are_not_utf8_gets_a_plain_404(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 404 text echoed the path, whose byte 0xff is a surrogate escape that cannot
    be encoded: HTTP 500 and a traceback. Only its printable characters are echoed."""
    bridge = WebBridge("fake")
    async with _serving(bridge) as (_, port):
        status, body = await _http(port, _request(b"/\xff\x1b[2Jx", [f"Host: 127.0.0.1:{port}"]))
        assert status == 404
        assert body == b"no such page: /x\n"  # the escape sequence goes too
    assert not _trouble(caplog)


async def _reply(port: int, *pieces: bytes) -> bytes:
    """Send ``pieces`` one write at a time, 20 ms apart; return all the server answers."""
    return await reply(port, *pieces, pause=0.02)


async def test_methods_other_than_get_are_answered_405_and_get_still_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """websockets reads GET only, and closed any other request without an answer
    (``curl -I``: "Empty reply from server"). They get 405 with ``Allow: GET``, HEAD
    without a body, and are counted as refusals; a GET that arrives in pieces is still
    served, and bytes that are no request line are still closed unanswered."""
    caplog.set_level(logging.INFO)
    bridge = WebBridge("fake")
    async with _serving(bridge) as (_, port):
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        head = await _reply(port, b"HEAD / HTTP/1.1\r\n" + host + b"\r\n")
        assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        assert b"\r\nAllow: GET\r\n" in head
        assert head.endswith(b"\r\n\r\n")  # the head of the answer only
        body = b"a=1&b=2"
        post = await _reply(
            port,
            b"PO",  # the method arrives in pieces, then the head, then the body
            b"ST /ws HTTP/1.1\r\n" + host,
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body,
        )
        assert post.startswith(b"HTTP/1.1 405 ")
        assert post.endswith(b"\r\n\r\nmethod not allowed: POST; this monitor answers GET only\n")
        options = await _reply(port, b"OPTIONS * HTTP/1.1\r\n" + host + b"\r\n")
        assert options.startswith(b"HTTP/1.1 405 ")
        assert bridge.refused == 3
        got = await _reply(port, b"G", b"ET / HTTP/1.1\r\n" + host + b"\r\n")
        assert got.startswith(b"HTTP/1.1 200 OK\r\n")
        assert await _reply(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n") == b""
        assert await _reply(port, b"X" * 40 + b" / HTTP/1.1\r\n\r\n") == b""
        assert bridge.refused == 3
    assert not _trouble(caplog)
    refusals = [r.getMessage() for r in caplog.records if "refused a request" in r.getMessage()]
    assert refusals == ["web monitor: refused a request with method HEAD (1 refused so far)"]


def _post_then_read(port: int, body: bytes) -> bytes:
    """A client that sends its whole POST before it reads the answer (a blocking socket:
    the server reads as it goes)."""
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


async def test_a_post_with_a_body_gets_its_405_before_the_connection_closes() -> None:
    """Closed at once with a 1 MB body unread, the socket sent a reset, and a client that
    wrote the whole body first got ConnectionResetError instead of the answer. The answer
    goes, then the end of the server's side; the body is read and dropped."""
    bridge = WebBridge("fake")
    async with _serving(bridge) as (_, port):
        reply = await asyncio.to_thread(_post_then_read, port, b"x" * 1_000_000)
        assert reply.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        assert reply.endswith(b"method not allowed: POST; this monitor answers GET only\n")
        assert bridge.refused == 1
