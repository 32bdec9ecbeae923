"""MqttLink.write_batch(): QoS 0 messages packed by the adapter and written together,
against a real mosquitto."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_a_batch_arrives_whole_and_in_order_with_its_properties(
    mosquitto: Mosquitto, protocol: str
) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("batch/#")
    pub = make_link(f"{mosquitto.url()}?protocol={protocol}", "pub", max_queued_outgoing=100)
    async with running(sub), running(pub):
        with pub.write_batch():
            for i in range(60):
                topic = f"batch/{i % 3}"
                typed = i % 2 == 0
                assert pub.publish_nowait(
                    topic,
                    f"{i}:".encode() + b"x" * i,
                    content_type="application/msgpack" if typed else None,
                    expiry=30 if i % 4 == 0 else None,
                    resend=True,
                )
            assert pub.publish_nowait("batch/kept", b"retained", retain=True)
        await eventually(lambda: len(inbox.items) == 61)
        for k in range(3):
            got = inbox.payloads(f"batch/{k}")
            assert got == [f"{i}:".encode() + b"x" * i for i in range(k, 60, 3)]
        for topic, payload, meta in inbox.items:
            if topic == "batch/kept":
                continue
            i = int(payload.split(b":")[0])
            if protocol == "5":
                assert meta.content_type == ("application/msgpack" if i % 2 == 0 else None)
                assert (meta.expiry is not None) == (i % 4 == 0)
            else:
                assert meta.content_type is None
                assert meta.expiry is None
            assert meta.qos == 0
        # Every message of the batch was reported written: the window is empty again.
        await eventually(lambda: pub.statistics().publish_ok == 61)
        assert pub.can_publish()
        assert len(pub._outbox or ()) == 0
    # The retain flag went out with the packed message: a new subscriber gets it.
    await _retained(mosquitto, "batch/kept", b"retained")


async def _retained(mosquitto: Mosquitto, topic: str, payload: bytes) -> None:
    """A new subscriber to ``topic`` gets ``payload`` as the retained message."""
    late = Inbox()
    again = make_link(mosquitto.url(), "late", on_message=late)
    again.subscribe(topic)
    async with running(again):
        _, _, meta = await late.wait_payload(topic, payload)
        assert meta.retain is True


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_one_topic_packed_with_and_without_retain_keeps_each_flag(
    mosquitto: Mosquitto, protocol: str
) -> None:
    """The adapter packs each topic's head once per retain flag, content type and expiry:
    a retained message between two live ones on the same topic is the one retained, and
    the others carry their own content type."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("same/#")
    pub = make_link(f"{mosquitto.url()}?protocol={protocol}", "pub")
    async with running(sub), running(pub):
        for _ in range(2):  # the second batch finds every head packed already
            with pub.write_batch():
                assert pub.publish_nowait("same/t", b"a", content_type="text/plain")
                assert pub.publish_nowait("same/t", b"b", retain=True)
                assert pub.publish_nowait("same/t", b"c")
        await eventually(lambda: len(inbox.items) == 6)
        assert inbox.payloads("same/t") == [b"a", b"b", b"c"] * 2
        types = [m.content_type for _, _, m in inbox.items]
        assert types == (["text/plain", None, None] * 2 if protocol == "5" else [None] * 6)
    await _retained(mosquitto, "same/t", b"b")


async def test_other_messages_in_a_batch_keep_their_place(mosquitto: Mosquitto) -> None:
    """A QoS 1 message (or one with correlation data) goes through paho, after what the
    batch packed before it and before what it packs after."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("order/#", qos=1)
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        with pub.write_batch():
            assert pub.publish_nowait("order/a", b"1")
            assert pub.publish_nowait("order/a", b"2")
            assert pub.publish_nowait("order/a", b"3", qos=1)
            assert pub.publish_nowait("order/a", b"4")
        await eventually(lambda: len(inbox.items) == 4)
        assert inbox.payloads("order/a") == [b"1", b"2", b"3", b"4"]
        assert [m.qos for _, _, m in inbox.items] == [0, 0, 1, 0]


async def test_a_batch_larger_than_the_socket_takes_is_written_in_full(
    mosquitto: Mosquitto,
) -> None:
    """18 MB in one batch: the socket takes part of it at the block's end and the event
    loop's writer the rest."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("big/#")
    pub = make_link(mosquitto.url(), "pub", max_queued_outgoing=1000)
    chunk = bytes(range(256)) * 240  # 60 KB
    async with running(sub), running(pub):
        raw = pub._raw_socket()
        assert raw is not None
        # A small send buffer: the batch's one write stops after a few messages, however
        # fast the broker reads (with the default, autotuned buffers it took all 18 MB
        # now and then, and nothing was left to send again).
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        with pub.write_batch():
            for i in range(300):
                assert pub.publish_nowait("big/x", i.to_bytes(4, "big") + chunk)
        await eventually(lambda: len(inbox.items) == 300, within=30)
        got = inbox.payloads("big/x")
        assert [int.from_bytes(p[:4], "big") for p in got] == list(range(300))
        assert all(p[4:] == chunk for p in got)
        await eventually(lambda: pub.statistics().publish_ok == 300)


async def test_an_invalid_topic_in_a_batch_is_refused_and_the_rest_goes_out(
    mosquitto: Mosquitto,
) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("valid/#")
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        with pub.write_batch():
            assert pub.publish_nowait("valid/1", b"a")
            for bad in ("valid/+/x", "valid/#", ""):
                with pytest.raises(ValueError, match="invalid publish topic"):
                    pub.publish_nowait(bad, b"b")
            assert pub.publish_nowait("valid/2", b"c")
        await eventually(lambda: len(inbox.items) == 2)
        assert [t for t, _, _ in inbox.items] == ["valid/1", "valid/2"]


@pytest.mark.parametrize("frames", [False, True], ids=["publish_nowait", "publish_frames"])
async def test_a_connection_lost_with_a_batch_half_written_sends_each_message_once(
    mosquitto: Mosquitto, frames: bool
) -> None:
    """18 MB in one batch, and the connection aborted as soon as the block has written what
    the socket takes: the messages written whole count as sent, the rest are sent again on
    the next connection, and the subscriber gets every message exactly once (published one
    by one, or as frames in one ``publish_frames`` call)."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("cut/#")
    pub = make_link(mosquitto.url(), "pub", max_queued_outgoing=1000)
    chunk = bytes(range(256)) * 240  # 60 KB
    async with running(sub), running(pub):
        raw = pub._raw_socket()
        assert raw is not None
        # A small send buffer, and the broker stopped while the batch is written: the
        # batch's one write stops after what the two sockets' buffers hold. (With the
        # broker reading, loopback TCP took all 18 MB in one write now and then, even
        # with this send buffer, and nothing was left to send again.)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        messages = [("cut/x", i.to_bytes(4, "big") + chunk) for i in range(300)]
        mosquitto.pause()
        try:
            with pub.write_batch():
                if frames:
                    assert pub.publish_frames(messages, content_type="application/msgpack") == 300
                else:
                    for topic, payload in messages:
                        assert pub.publish_nowait(topic, payload, resend=True)
            assert pub._conn is not None
            # Before the event loop writes any more; what the socket took still reaches
            # the broker once it runs again.
            pub._conn.abort("cut by the test")
        finally:
            mosquitto.resume()
        await eventually(lambda: len(inbox.items) >= 300, within=30)
        await eventually(lambda: pub.statistics().reconnects == 1)
        resent = pub.statistics().resent
        assert 0 < resent < 300, resent  # the cut fell inside the batch
        await asyncio.sleep(0.5)  # a duplicate would arrive by now
        got = [int.from_bytes(p[:4], "big") for p in inbox.payloads("cut/x")]
        assert sorted(got) == list(range(300))


async def test_a_write_that_fails_inside_a_batch_ends_the_connection_cleanly(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The socket refuses the batch's write (EPIPE): paho closes it; nothing is registered
    on the closed socket (asyncio would log a callback error), and the link reconnects."""
    pub = make_link(mosquitto.url(), "pub")
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with running(pub):
        raw = pub._raw_socket()
        assert raw is not None
        with pub.write_batch():
            assert pub.publish_nowait("epipe/x", b"1", resend=True)
            assert pub.publish_nowait("epipe/x", b"2", qos=1, resend=True)
            raw.shutdown(socket.SHUT_WR)
        await eventually(lambda: pub.statistics().reconnects == 1)
        await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_payloads_other_than_bytes_go_through_paho_in_order(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("kinds/#")
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        with pub.write_batch():
            assert pub.publish_nowait("kinds/a", b"1")
            assert pub.publish_nowait("kinds/a", bytearray(b"2"))
            assert pub.publish_nowait("kinds/a", b"3")
        await eventually(lambda: len(inbox.items) == 3)
        assert inbox.payloads("kinds/a") == [b"1", b"2", b"3"]


async def test_a_batch_alone_goes_straight_to_the_socket(mosquitto: Mosquitto) -> None:
    """With nothing else waiting in paho, a batch is written by the adapter itself (one
    send, no paho write and its per-packet bookkeeping) and reported written at once."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("direct/#")
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        conn = pub._conn
        assert conn is not None
        writes: list[int] = []
        loop_write = conn._paho.loop_write

        def counted() -> object:
            writes.append(1)
            return loop_write()

        conn._paho.loop_write = counted  # type: ignore[method-assign]
        before = pub.statistics().publish_ok
        for tick in range(20):
            with pub.write_batch():
                for probe in range(5):
                    assert pub.publish_nowait(f"direct/{probe}", tick.to_bytes(2, "big"))
            # Reported written inside the block's end, not on a later loop pass.
            assert pub.statistics().publish_ok == before + 5 * (tick + 1)
        await eventually(lambda: len(inbox.items) == 100)
        assert writes == []
        for probe in range(5):
            got = inbox.payloads(f"direct/{probe}")
            assert [int.from_bytes(p, "big") for p in got] == list(range(20))


async def test_a_failed_write_of_a_batch_alone_ends_the_connection_cleanly(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The direct write meets EPIPE: the batch is left to paho, whose write meets it too
    and ends the connection; the messages are sent again on the next one."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("gone/#")
    pub = make_link(mosquitto.url(), "pub")
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with running(sub), running(pub):
        raw = pub._raw_socket()
        assert raw is not None
        with pub.write_batch():
            assert pub.publish_nowait("gone/x", b"1", resend=True)
            assert pub.publish_nowait("gone/x", b"2", resend=True)
            raw.shutdown(socket.SHUT_WR)
        await eventually(lambda: pub.statistics().reconnects == 1)
        await eventually(lambda: len(inbox.items) == 2)
        assert inbox.payloads("gone/x") == [b"1", b"2"]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_a_writer_asked_for_a_socket_closed_meanwhile_is_not_registered(
    mosquitto: Mosquitto,
) -> None:
    """paho asks for a writable-socket callback from whichever thread it runs in, and the
    registration runs later on the event loop: with aiomqtt's own, a connection torn
    down meanwhile left asyncio to log a traceback at ERROR ("11 is not registered",
    "Bad file descriptor"). A socket that is no longer the connection's is skipped."""
    link = make_link(mosquitto.url(), "pub")
    async with running(link):
        conn = link._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        errors: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        try:
            gone = socket.socket()
            stale = socket.socket()
            # From another thread, as paho's connect() asks; both close before the loop
            # runs the registration, and the second's fd number may be reused meanwhile.
            await asyncio.to_thread(conn._paho.on_socket_register_write, conn._paho, None, gone)
            await asyncio.to_thread(conn._paho.on_socket_register_write, conn._paho, None, stale)
            fd = stale.fileno()
            gone.close()
            stale.close()
            reused = socket.socket()  # likely takes a closed fd's number
            await asyncio.sleep(0.05)
            assert errors == []
            assert not loop.remove_writer(fd)  # nothing was registered on that number
            reused.close()
            # The connection's own socket still gets its writer.
            assert link.publish_nowait("w/a", b"1")
        finally:
            loop.set_exception_handler(None)
