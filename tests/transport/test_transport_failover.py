"""Several brokers: failover in list order, resubscription, and messages a lost connection
had not confirmed sent again through the next broker (real mosquitto processes)."""

from __future__ import annotations

import itertools

import pytest

from spikestream_client.transport import MqttLink, parse_broker_list
from tests.brokers import MosquittoFactory, free_port
from tests.transport.support import Inbox, eventually, running

pytestmark = pytest.mark.broker

_ids = itertools.count()


def make_link(urls: list[str], name: str, **options: object) -> MqttLink:
    options.setdefault("backoff_min", 0.05)
    options.setdefault("backoff_max", 0.3)
    options.setdefault("connect_timeout", 2.0)
    return MqttLink(parse_broker_list(urls), client_id=f"{name}-{next(_ids)}", **options)  # type: ignore[arg-type]


async def test_first_broker_that_answers_then_the_next_on_loss(
    mosquitto_factory: MosquittoFactory,
) -> None:
    a, b = mosquitto_factory(), mosquitto_factory()
    dead = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    inbox = Inbox()
    hooks: list[str] = []
    link = make_link([dead, a.url(), b.url()], "failover", on_message=inbox)
    link.subscribe("cmd/#")
    link.add_connect_hook(lambda: _record(hooks, link))
    feeder_b = make_link([b.url()], "feeder")
    async with running(link), running(feeder_b):
        assert link.spec.port == a.port
        stats = link.statistics()
        assert stats.broker == a.url()
        assert stats.failovers == 1  # from the dead address to A
        a.kill()
        await eventually(lambda: link.connected and link.spec.port == b.port, within=10)
        # Subscriptions restored on B, hooks run again.
        assert await feeder_b.publish("cmd/x", b"through b", qos=1)
        await inbox.wait_payload("cmd/x", b"through b")
        assert hooks == [f":{a.port}", f":{b.port}"]
        assert link.statistics().failovers == 2
        assert link.statistics().reconnects == 1


async def _record(hooks: list[str], link: MqttLink) -> None:
    hooks.append(f":{link.spec.port}")


async def test_unacknowledged_messages_are_sent_again_through_the_next_broker(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """A frozen broker acknowledges nothing; when it dies, the QoS 1 messages published
    with ``resend=True`` go out first, in order, through the next broker; the others not."""
    a, b = mosquitto_factory(), mosquitto_factory()
    inbox = Inbox()
    watcher = make_link([b.url()], "watcher", on_message=inbox)
    watcher.subscribe("data/#")
    link = make_link([a.url(), b.url()], "sender", keepalive=30)
    async with running(watcher), running(link):
        a.pause()
        sent = [f"m{i}".encode() for i in range(10)]
        for payload in sent:
            assert link.publish_nowait("data/x", payload, qos=1, resend=True)
        assert link.publish_nowait("data/x", b"not kept", qos=1)
        a.kill()
        await eventually(lambda: len(inbox.payloads("data/x")) >= 10, within=10)
        assert link.publish_nowait("data/x", b"after", qos=1, resend=True)
        await inbox.wait_payload("data/x", b"after")
        assert inbox.payloads("data/x") == [*sent, b"after"]
        stats = link.statistics()
        assert stats.resent == 10
        assert stats.lost_unsent == 0


async def test_messages_still_unconfirmed_at_stop_are_counted_lost(
    mosquitto_factory: MosquittoFactory,
) -> None:
    a = mosquitto_factory()
    link = make_link([a.url()], "stopper", connect_timeout=0.5)
    async with running(link):
        a.pause()
        for i in range(7):
            assert link.publish_nowait("data/y", str(i).encode(), qos=1, resend=True)
    assert link.statistics().lost_unsent == 7
    a.resume()


async def test_a_carried_message_too_large_for_the_next_broker_is_counted_lost_not_sent(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """A message kept for resending that the next broker's Maximum Packet Size refuses is
    not sent there (the broker would drop the connection at it): counted in lost_unsent
    and publish_too_large; the carried messages that fit go out, in order."""
    limit = 1024
    a, b = mosquitto_factory(), mosquitto_factory(extra_config=f"max_packet_size {limit}\n")
    inbox = Inbox()
    watcher = make_link([b.url()], "watcher", on_message=inbox)
    watcher.subscribe("big/#")
    link = make_link([a.url(), b.url()], "sender", keepalive=30)
    async with running(watcher), running(link):
        assert link.payload_limit("big/x") is None  # A names no limit: the large message is sent
        a.pause()  # ... and never acknowledged
        assert link.publish_nowait("big/x", b"small 1", qos=1, resend=True)
        assert link.publish_nowait("big/x", b"L" * (2 * limit), qos=1, resend=True)
        assert link.publish_nowait("big/x", b"small 2", qos=1, resend=True)
        assert link.statistics().publish_too_large == 0
        a.kill()
        await eventually(lambda: link.connected and link.spec.port == b.port, within=10)
        assert link.packet_limit == limit
        assert link.publish_nowait("big/x", b"after", qos=1, resend=True)
        await inbox.wait_payload("big/x", b"after")
        assert inbox.payloads("big/x") == [b"small 1", b"small 2", b"after"]
        stats = link.statistics()
        assert stats.resent == 2
        assert stats.lost_unsent == 1
        assert stats.publish_too_large == 1
        assert link.connected  # B never dropped the link
        assert stats.reconnects == 1
