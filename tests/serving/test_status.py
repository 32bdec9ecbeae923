"""The service answers a live ``offline`` on its own status with ``online`` (the real
broker's side is in tests/e2e/test_serve.py); here, what happens when the link cannot
take the answer at once."""

from __future__ import annotations

import asyncio

import pytest

from spikestream.build import build
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statusguard import REASSERT_GAP
from spikestream.spec import load_network
from spikestream_client.codec import STATUS_OFFLINE, STATUS_ONLINE
from spikestream_client.transport import MessageMeta, MqttLink, parse_broker_url
from tests.serving import SEED

LIVE = MessageMeta(qos=0, retain=False)


def connected_service(monkeypatch: pytest.MonkeyPatch) -> Service:
    """The seed's service, never started, whose link says it is connected."""
    monkeypatch.setattr(MqttLink, "connected", property(lambda self: True))
    return Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )


async def test_an_answer_the_full_window_refuses_is_tried_again_until_it_goes_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc = connected_service(monkeypatch)
    offered: list[tuple[str, bytes, bool]] = []

    def publish_nowait(topic: str, payload: bytes, **kw: object) -> bool:
        offered.append((topic, payload, bool(kw.get("retain"))))
        # The outgoing window is full for the first two tries of the status.
        return topic != svc.topics.status or len(offered) > 2

    monkeypatch.setattr(svc.link, "publish_nowait", publish_nowait)
    status = svc.topics.status
    svc._on_message(status, STATUS_OFFLINE, MessageMeta(qos=0, retain=True))
    svc._on_message(status, STATUS_ONLINE, LIVE)
    assert offered == []  # neither a retained offline nor an online is answered
    svc._on_message(status, STATUS_OFFLINE, LIVE)
    for _ in range(50):
        if svc.status_guard.reasserted:
            break
        await asyncio.sleep(0.02)
    tries = [o for o in offered if o[0] == status]
    assert tries == [(status, STATUS_ONLINE, True)] * 3
    assert svc.status_guard.reasserted == 1
    await asyncio.sleep(0.25)
    assert len([o for o in offered if o[0] == status]) == 3  # no more once it went out


async def test_a_flood_of_offline_messages_gets_one_answer_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each live offline used to be answered (and, with the window full, retried on a timer
    of its own): a flood on the status topic came back as a flood of retained onlines."""
    svc = connected_service(monkeypatch)
    answers: list[float] = []

    def publish_nowait(topic: str, payload: bytes, **kw: object) -> bool:
        if topic == svc.topics.status:
            answers.append(asyncio.get_running_loop().time())
        return True

    monkeypatch.setattr(svc.link, "publish_nowait", publish_nowait)
    status = svc.topics.status
    begun = asyncio.get_running_loop().time()
    for _ in range(200):
        svc._on_message(status, STATUS_OFFLINE, LIVE)
        await asyncio.sleep(0)
    await asyncio.sleep(0.3)
    assert len(answers) == 1
    assert answers[0] - begun < 0.25
    svc._on_message(status, STATUS_OFFLINE, LIVE)  # within the gap: answered at its end
    await asyncio.sleep(0.3)
    assert len(answers) == 1
    for _ in range(60):
        if len(answers) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(answers) == 2
    assert answers[1] - answers[0] == pytest.approx(REASSERT_GAP, abs=0.1)
    assert svc.status_guard.reasserted == 2
