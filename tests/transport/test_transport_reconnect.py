"""Parts of the link's connection loop (``reconnect.py``) driven without a broker: the
keepalive watchdog's schedule, the protocol fallback after a silent CONNECT, and a stop
that arrives just as a connection is made."""

from __future__ import annotations

import asyncio
import types

import pytest

from spikestream_client.errors import TransportError
from spikestream_client.transport import MqttLink, parse_broker_url, reconnect


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class SilentPeer:
    """A connection whose PINGREQ, sent at ``ping_at``, is never answered."""

    def __init__(self, keepalive: int, ping_at: float) -> None:
        self.keepalive = keepalive
        self.ping_at = ping_at
        self.aborted: list[str] = []
        self.closed = False

    def ping_sent_at(self) -> float:
        return self.ping_at

    def abort(self, reason: str) -> None:
        self.aborted.append(reason)

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 - Connection.close's signature
        self.closed = True


def make_link() -> MqttLink:
    return MqttLink(parse_broker_url("mqtt://127.0.0.1:1"), client_id="loop")


async def test_the_watchdog_checks_every_second_even_with_a_long_keepalive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With keepalive 60 s a dead peer must be dropped about 30 s after the unanswered
    PINGREQ (half a keepalive), not up to a whole keepalive later: the watchdog looks
    at least once per second."""
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(reconnect, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(reconnect, "asyncio", types.SimpleNamespace(sleep=fake_sleep))
    peer = SilentPeer(keepalive=60, ping_at=clock.now)
    await make_link()._keepalive_watchdog(peer)  # type: ignore[arg-type]
    assert len(peer.aborted) == 1
    assert "no PINGRESP" in peer.aborted[0]
    assert max(slept) <= 1.0
    assert 30.0 < clock.now - peer.ping_at <= 31.0


async def test_a_silent_connect_to_a_broker_that_spoke_mqtt5_is_not_retried_as_311() -> None:
    """The 3.1.1 retry after a CONNECT left unanswered is for brokers that never spoke
    MQTT 5 with us (amqtt). A broker that did (mosquitto, restarting and slow to answer)
    must not be downgraded to 3.1.1 for good: the attempt fails and is retried as 5."""
    link = make_link()
    link._negotiated[0] = "5"
    tried: list[str] = []

    async def silent(version: str) -> tuple[object, object]:
        tried.append(version)
        msg = "did not answer CONNECT (scripted)"
        raise reconnect._NoConnack(msg)

    link._connect_once = silent  # type: ignore[method-assign,assignment]
    with pytest.raises(TransportError, match="did not answer CONNECT"):
        await link._connect()
    assert tried == ["5"]
    assert link.protocol == "5"


async def test_a_connection_made_as_stop_is_requested_is_closed_not_kept() -> None:
    """stop() racing a connection attempt that succeeds in the same moment: the new
    connection is closed cleanly (DISCONNECT, so no will and no socket left behind),
    not handed to a session nobody will run."""
    link = make_link()
    peer = SilentPeer(keepalive=10, ping_at=0.0)

    async def connecting() -> tuple[object, object]:
        link._stop_requested.set()
        return peer, object()

    assert await link._unless_stopped(connecting()) is None  # type: ignore[arg-type]
    assert peer.closed


def test_connected_is_false_as_soon_as_the_connection_is_lost() -> None:
    """Between the socket dying and the session noticing, ``connected`` must already be
    False: a producer checking it would otherwise publish into a dead connection."""
    link = make_link()
    peer = SilentPeer(keepalive=10, ping_at=0.0)
    peer.lost = asyncio.Event()  # type: ignore[attr-defined]
    link._conn = peer  # type: ignore[assignment]
    link._up.set()
    assert link.connected
    peer.lost.set()  # type: ignore[attr-defined]
    assert not link.connected
    assert link.statistics().connected is False
