"""MqttLink.publish_frames(): several QoS 0 messages handed over in one call, each
treated as ``publish_nowait(qos=0, resend=True)`` treats it, against a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from spikestream_client.transport.values import Kept
from spikestream_client.transport.window import Outbox
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running
from tests.transport.test_transport_link import make_link

pytestmark = pytest.mark.broker

MSGPACK = "application/msgpack"


def _messages(prefix: str, n: int) -> list[tuple[str, bytes]]:
    return [(f"{prefix}/{i % 3}", f"{i}:".encode() + b"x" * i) for i in range(n)]


@pytest.mark.parametrize("batched", [True, False], ids=["in-a-batch", "alone"])
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_frames_arrive_as_publish_nowait_sends_them(
    mosquitto: Mosquitto, protocol: str, batched: bool
) -> None:
    """The same messages, once with publish_frames and once with publish_nowait each:
    the same payloads, order, properties and flags arrive, and the same counters move."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("each/#")
    sub.subscribe("many/#")
    pub = make_link(f"{mosquitto.url()}?protocol={protocol}", "pub", max_queued_outgoing=100)
    async with running(sub), running(pub):
        for expiry in (None, 30):
            with pub.write_batch() if batched else contextlib.nullcontext():
                for topic, payload in _messages("each", 20):
                    assert pub.publish_nowait(
                        topic, payload, content_type=MSGPACK, expiry=expiry, resend=True
                    )
            each = pub.statistics()
            with pub.write_batch() if batched else contextlib.nullcontext():
                sent = pub.publish_frames(
                    _messages("many", 20), content_type=MSGPACK, expiry=expiry
                )
            assert sent == 20
            many = pub.statistics()
            assert many.publish_ok - each.publish_ok == 20
            assert many.publish_failed == each.publish_failed == 0
        await eventually(lambda: len(inbox.items) == 80)
        await eventually(lambda: len(pub._outbox or ()) == 0)  # every one reported written

    def seen(prefix: str) -> list[tuple[str, bytes, str | None, bool, int, bool]]:
        return [
            (t.split("/", 1)[1], p, m.content_type, m.expiry is not None, m.qos, m.retain)
            for t, p, m in inbox.items
            if t.startswith(prefix + "/")
        ]

    assert seen("many") == seen("each")
    assert [p for _, p, *_ in seen("many")] == [p for _, p in _messages("many", 20)] * 2
    types = {c for _, _, c, *_ in seen("many")}
    assert types == ({MSGPACK} if protocol == "5" else {None})


async def test_frames_beyond_the_window_are_refused_and_counted(mosquitto: Mosquitto) -> None:
    """With room for one more message in the window, the first of three goes and the
    other two are refused, counted in publish_failed, exactly as three publish_nowait."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("room/#")
    pub = make_link(mosquitto.url(), "pub", max_queued_outgoing=4)
    async with running(sub), running(pub):
        assert pub.room() == 4
        with pub.write_batch():  # nothing is written (confirmed) before the block ends
            for i in range(3):
                assert pub.publish_nowait("room/a", bytes([i]), resend=True)
            assert pub.room() == 1  # what publish_frames below will take
            before = pub.statistics()
            assert pub.publish_frames([("room/b", b"1"), ("room/b", b"2"), ("room/b", b"3")]) == 1
            after = pub.statistics()
            assert after.publish_ok - before.publish_ok == 1
            assert after.publish_failed - before.publish_failed == 2
            assert pub.publish_frames([("room/b", b"4")]) == 0
            assert not pub.can_publish()
            assert pub.room() == 0
        await eventually(lambda: len(inbox.items) == 4)
        assert inbox.payloads("room/b") == [b"1"]
        await eventually(pub.can_publish)  # written: the window is free again
        assert pub.publish_frames([("room/b", b"5")]) == 1
        await inbox.wait_payload("room/b", b"5")


async def test_frames_while_disconnected_are_all_refused_and_counted(
    mosquitto: Mosquitto,
) -> None:
    pub = make_link(mosquitto.url(), "pub")
    assert pub.room() == 0
    assert pub.publish_frames([("off/a", b"1"), ("off/b", b"2")]) == 0
    assert pub.statistics().publish_failed == 2
    assert pub.statistics().publish_ok == 0


async def test_an_invalid_topic_among_frames_raises_after_those_before_it(
    mosquitto: Mosquitto,
) -> None:
    """A wildcard topic is a programming error: it raises, and the frames before it are
    queued, counted and delivered; nothing after it is."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("bad/#")
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        with pub.write_batch(), pytest.raises(ValueError, match="invalid publish topic"):
            pub.publish_frames([("bad/1", b"a"), ("bad/2", b"b"), ("bad/#", b"c"), ("bad/3", b"d")])
        assert pub.statistics().publish_ok == 2
        await eventually(lambda: len(inbox.items) == 2)
        await asyncio.sleep(0.2)  # a message after the bad one would arrive by now
        assert [t for t, _, _ in inbox.items] == ["bad/1", "bad/2"]
        await eventually(lambda: len(pub._outbox or ()) == 0)


async def test_outbox_written_settles_waiters_and_forgets_kept_messages() -> None:
    carried: list[list[Kept]] = []
    outbox = Outbox(on_refused=lambda: None, on_carry=carried.append)
    outbox.add_frames([1, 2, 3], [("t/a", b"1"), ("t/b", b"2"), ("t/c", b"3")], MSGPACK, 5)
    assert outbox.kept[2] == Kept("t/b", b"2", 0, False, MSGPACK, 5)
    waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    outbox.unconfirmed[4] = waiter  # as publish() waits for its message
    outbox.written([1, 4, 3])
    assert waiter.result() is True
    assert list(outbox.unconfirmed) == [2]
    outbox.lost("gone")
    assert carried == [[Kept("t/b", b"2", 0, False, MSGPACK, 5)]]


async def test_a_payload_other_than_bytes_among_frames_keeps_its_place(
    mosquitto: Mosquitto,
) -> None:
    """A bytearray goes through paho (which converts it), after the frames packed before
    it and before those packed after it."""
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("mixed/#")
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        with pub.write_batch():
            frames = [("mixed/a", b"1"), ("mixed/a", bytearray(b"2")), ("mixed/a", b"3")]
            assert pub.publish_frames(frames) == 3  # type: ignore[arg-type]
        await eventually(lambda: len(inbox.items) == 3)
        assert inbox.payloads("mixed/a") == [b"1", b"2", b"3"]
        await eventually(lambda: len(pub._outbox or ()) == 0)
