"""A hostile broker (a raw asyncio server speaking just enough MQTT, a fault injector)
against the link: packets that only a broken or malicious broker sends must cost the
link no more than their size and one clear line, never a stalled event loop, gigabytes
of memory or the same packet handled over and over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import pytest

from spikestream_client.transport.packets import CONTROL_PACKET_LIMIT
from tests.transport.support import Inbox, eventually, packet, read_packet, running
from tests.transport.test_transport_link import make_link

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def hostile(peer: Peer):  # type: ignore[no-untyped-def]
    """Serve ``peer(reader, writer, n)`` (n: the connection's number, from 1) on a free
    port after answering CONNECT with an MQTT 5 CONNACK; yield the broker URL."""
    count = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        with (
            contextlib.closing(writer),
            contextlib.suppress(asyncio.IncompleteReadError, ConnectionError),
        ):
            await read_packet(reader)  # CONNECT
            writer.write(packet(0x20, b"\x00\x00\x00"))
            await writer.drain()
            await peer(reader, writer, count)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}?protocol=5"
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()


async def _answer_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        first, _ = await read_packet(reader)
        if first >> 4 == 12:
            writer.write(b"\xd0\x00")
            await writer.drain()


def _bad_then_good(bad: bytes) -> Peer:
    """A peer that grants the SUBSCRIBE, then sends ``bad`` (on the first connection
    only) and a good message on ``in/x`` (payload ``ok``), then answers pings."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:
                writer.write(packet(0x90, body[:2] + b"\x00\x00"))
                if n == 1:
                    writer.write(bad)
                writer.write(packet(0x30, b"\x00\x04in/x\x00ok"))
                await writer.drain()
                await _answer_pings(reader, writer)

    return peer


async def test_a_suback_with_a_reason_code_per_byte_costs_no_more_than_its_size() -> None:
    """A SUBACK for one filter holding 300,000 reason codes (300 KB, under the link's
    16 MiB limit). paho builds a ReasonCode object, with its own dict of every name, per
    byte (about 2.4 KB and 10 µs each), on the event loop: measured, a 1 MB SUBACK held
    the loop 9 s and took 2.3 GB; a 50 MB one took `serve` past 2.6 GB in 12 s until it
    was killed. A SUBACK can hold no more codes than the SUBSCRIBE had filters (MQTT 5
    section 3.9.3), so the link should refuse it (or the packet size) without decoding
    it; the loop must keep running meanwhile."""
    codes = 300_000

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:  # SUBSCRIBE: its id, no properties, a code per byte
                writer.write(packet(0x90, body[:2] + b"\x00" + b"\x00" * codes))
                await writer.drain()
                await _answer_pings(reader, writer)

    worst = 0.0

    async def heartbeat() -> None:
        nonlocal worst
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            worst, last = max(worst, now - last), now

    async with hostile(peer) as url:
        link = make_link(url, "hostile-suback", on_message=Inbox())
        link.subscribe("in/#")
        beat = asyncio.create_task(heartbeat())
        try:
            async with running(link, connect_timeout=None):
                await asyncio.sleep(3.0)
        finally:
            beat.cancel()
    assert worst < 1.0, f"the event loop stalled {worst:.1f} s on one {codes}-byte SUBACK"
    stats = link.statistics()
    # Refused unread, named, and tried again with the backoff (a few times in 3 s).
    assert stats.last_error == (
        f"the broker sent a SUBACK of {3 + codes} bytes (at most {CONTROL_PACKET_LIMIT + 1} taken)"
    )
    assert 1 <= stats.connects <= 30


async def test_a_publish_with_an_invalid_utf8_topic_is_refused_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A QoS 0 PUBLISH whose topic is not UTF-8 (a broker must refuse such a topic, so
    only a broken or hostile one sends it). The link's reader leaves it to paho, paho
    hands it on with a ``topic`` that raises UnicodeDecodeError, the adapter's
    ``_paho_message`` reads it and raises, and paho neither drops the packet nor reads
    on: the same packet was handled again on every readable event (9-12 "Caught
    exception in on_message" errors per connection seen from `serve`), then the
    connection ended as a "socket error: 'utf-8' codec can't decode ...". One such
    packet should cost one line, and the good message after it must arrive."""

    peer = _bad_then_good(packet(0x30, b"\x00\x05in/\xff\xfe\x00bad"))
    caplog.set_level(logging.DEBUG)
    inbox = Inbox()
    async with hostile(peer) as url:
        link = make_link(url, "hostile-utf8", on_message=inbox)
        link.subscribe("in/#")
        async with running(link):
            await inbox.wait_payload("in/x", b"ok")
            await asyncio.sleep(0.5)
    errors = [r.getMessage() for r in caplog.records if "utf-8" in r.getMessage()]
    assert errors == [], errors
    # Mended, it is one message on a topic no one has (refused downstream, counted); the
    # connection stays, and the good message after it arrives on it.
    topics = [t for t, _, _ in inbox.items]
    assert topics == ["in/\ufffd\ufffd", "in/x"]
    assert link.statistics().connects == 1


async def test_a_suback_with_fewer_codes_than_filters_drops_the_connection() -> None:
    """A SUBACK must hold one code per filter (MQTT 3.9.3). One holding none for three
    filters was taken as success: the link reported itself subscribed to nothing it had
    asked for. It drops the connection, saying why, and subscribes again on the next."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:
                writer.write(packet(0x90, body[:2] + b"\x00"))  # id, no properties, no codes
                await writer.drain()
                await _answer_pings(reader, writer)

    async with hostile(peer) as url:
        link = make_link(url, "hostile-short-suback", on_message=Inbox())
        for topic in ("a/#", "b/#", "c/#"):
            link.subscribe(topic)
        async with running(link, connect_timeout=None):
            await eventually(lambda: link.statistics().connects >= 2)
        stats = link.statistics()
    assert stats.last_error == "the broker's SUBACK holds 0 codes for 3 filters"
    assert stats.connects >= 2  # and again, with the backoff


@pytest.mark.parametrize("qos", [0, 1])
async def test_an_oversize_publish_with_an_invalid_utf8_topic_is_refused_as_oversize(
    qos: int,
) -> None:
    """Past the link's limit a PUBLISH is dropped unread but for its topic and packet id,
    which paho still parses (QoS 1: to acknowledge it): a topic that is not UTF-8 is
    mended there too, and the message reaches the receiver once, as oversize."""
    size = 140_000  # past max_payload (1 byte) + HEAD_ROOM (128 KiB)

    packet_id = b"\x00\x07" if qos else b""
    bad = b"\x00\x05in/\xff\xfe" + packet_id + b"\x00" + b"x" * size
    peer = _bad_then_good(packet(0x30 | qos << 1, bad))
    inbox = Inbox()
    async with hostile(peer) as url:
        link = make_link(url, f"hostile-oversize-{qos}", on_message=inbox, max_payload=1)
        link.subscribe("in/#")
        async with running(link):
            await inbox.wait_for(lambda item: item[0] == "in/x")
        connects = link.statistics().connects
    (topic, payload, meta), _ = inbox.items
    assert (topic, payload) == ("in/\ufffd\ufffd", b"")
    assert meta.oversize is not None
    assert meta.oversize > size
    assert connects == 1


async def test_a_packet_of_an_unknown_type_is_named_a_protocol_error() -> None:
    """A packet type MQTT does not have (0) after the SUBACK: the connection ends, and
    the link says the broker broke the protocol (it said "socket closed or keepalive
    expired", which sent an operator to the network)."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:
                writer.write(packet(0x90, body[:2] + b"\x00\x00") + b"\x00\x00")
                await writer.drain()
                await _answer_pings(reader, writer)

    async with hostile(peer) as url:
        link = make_link(url, "hostile-type-0", on_message=Inbox())
        link.subscribe("in/#")
        async with running(link, connect_timeout=None):
            await eventually(lambda: link.statistics().connects >= 2)
        stats = link.statistics()
    expected = "the broker sent a malformed or unexpected packet (a protocol error)"
    assert stats.last_error is not None
    assert expected in stats.last_error
    assert stats.connects >= 2


async def test_a_reset_connection_is_named_with_the_sockets_own_words() -> None:
    """The broker resets the connection (an RST, as a crashed or firewalled broker's
    does). paho's line naming the cause is a debug line now (it came at ERROR at every
    broker restart), so the link's own warning carries it: it said "socket closed or
    keepalive expired" whatever the socket had said."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:
                writer.write(packet(0x90, body[:2] + b"\x00\x00"))
                await writer.drain()
                await asyncio.sleep(0.2)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # linger 0: the close is a reset
                return

    async with hostile(peer) as url:
        link = make_link(url, "hostile-reset", on_message=Inbox())
        link.subscribe("in/#")
        async with running(link):
            await eventually(lambda: link.statistics().connects >= 2)
        stats = link.statistics()
    assert stats.last_error is not None
    assert "Connection reset by peer" in stats.last_error


async def test_a_refused_subscription_is_one_error_line_and_the_link_stays_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A SUBACK refusing a filter (MQTT 5 reason 0x87, an ACL) must not vanish
    silently: the user would wait for messages that never come. One ERROR names the
    filter, ``last_error`` holds it, and the session stays up."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:  # SUBSCRIBE: packet id, then "not authorised"
                writer.write(packet(0x90, body[:2] + b"\x00\x87"))
                await writer.drain()
                await _answer_pings(reader, writer)

    async with hostile(refuse) as url:
        link = make_link(url, "hostile-refused-sub", on_message=Inbox())
        link.subscribe("denied/#")
        async with running(link):
            refused = "refused the subscription to 'denied/#'"
            await eventually(lambda: refused in caplog.text, within=5)
            errors = [r for r in caplog.records if refused in r.getMessage()]
            assert [r.levelno for r in errors] == [logging.ERROR]
            last_error = link.statistics().last_error
            assert last_error is not None
            assert refused in last_error
            assert link.connected
            assert link.statistics().connects == 1


def _filters(body: bytes) -> list[str]:
    """The topic filters of an MQTT 5 SUBSCRIBE's ``body`` (after its fixed header)."""
    i = 2  # packet id
    props, shift = 0, 0
    while True:  # the properties' length, a variable byte integer
        byte = body[i]
        i += 1
        props |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    i += props
    out: list[str] = []
    while i < len(body):
        n = struct.unpack_from("!H", body, i)[0]
        out.append(body[i + 2 : i + 2 + n].decode())
        i += 2 + n + 1  # the filter, then its options byte
    return out


async def test_a_refused_subscription_is_asked_for_again_with_the_next_one() -> None:
    """A refused filter is not taken as subscribed: the next SUBSCRIBE asks for it again
    beside the new filter (an ACL may have changed since), and a granted one is never
    asked for twice on the same connection."""
    asked: list[list[str]] = []

    async def acl(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            first, body = await read_packet(reader)
            if first >> 4 == 8:
                filters = _filters(body)
                asked.append(filters)
                codes = bytes(0x87 if f.startswith("denied") else 0x00 for f in filters)
                writer.write(packet(0x90, body[:2] + b"\x00" + codes))
                await writer.drain()
            elif first >> 4 == 12:
                writer.write(b"\xd0\x00")
                await writer.drain()

    async with hostile(acl) as url:
        link = make_link(url, "hostile-acl-again", on_message=Inbox())
        link.subscribe("denied/#")
        link.subscribe("granted/#")
        async with running(link):
            await eventually(lambda: len(asked) == 1, within=5)
            link.subscribe("more/#")
            await eventually(lambda: len(asked) == 2, within=5)
            assert link.connected
            assert link.statistics().connects == 1
    assert sorted(asked[0]) == ["denied/#", "granted/#"]
    assert sorted(asked[1]) == ["denied/#", "more/#"]
