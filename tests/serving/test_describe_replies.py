"""The describe document published again after ``describe``, ``set`` and ``learn``:
once for each batch of replies the I/O thread hands on, before them (a real broker's side
is in tests/e2e/test_describe.py)."""

from __future__ import annotations

import json

import pytest

from tests.serving.test_status import connected_service


def test_a_batch_of_describe_set_and_learn_replies_shares_one_document_before_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc = connected_service(monkeypatch)
    svc.events.limiter.rate = 1e9  # every reply through the events' rate limit
    svc.events.limiter.burst = 10**6
    offered: list[tuple[str, bytes]] = []

    def publish_nowait(topic: str, payload: bytes, **kw: object) -> bool:
        offered.append((topic, payload))
        return True

    monkeypatch.setattr(svc.link, "publish_nowait", publish_nowait)
    describe, events, engine = svc.topics.describe, svc.topics.events, svc.engine

    def drained() -> tuple[int, list[dict[str, object]]]:
        """Drain once: the documents published, and the events, in order."""
        offered.clear()
        svc._drain()
        topics = [t for t, _ in offered]
        if describe in topics and events in topics:
            assert topics.index(describe) < topics.index(events)  # the document first
        return topics.count(describe), [json.loads(p) for t, p in offered if t == events]

    # A flood: 50 describes, a set and a pause applied in one tick.
    for i in range(50):
        engine._event("control_ok", cmd="describe", id=f"d{i}")
    engine._event("control_ok", cmd="set", id="s", ticks_per_frame=7)
    engine._event("control_ok", cmd="pause", id="p", paused=True)
    documents, replies = drained()
    assert documents == 1
    assert [r["id"] for r in replies] == [f"d{i}" for i in range(50)] + ["s", "p"]
    assert json.loads(offered[0][1])["net"] == "seed"
    # A batch without such a reply publishes none; each later one publishes its own.
    engine._event("control_ok", cmd="pause", id="p2", paused=True)
    engine._event("control_rejected", cmd="set", id="s2", error="refused")
    assert drained()[0] == 0
    engine._event("control_ok", cmd="learn", id="l")
    documents, replies = drained()
    assert documents == 1
    assert [r["id"] for r in replies] == ["l"]
