"""The describe document published again after ``describe``, ``set`` and ``learn``:
once for each batch of replies the I/O thread hands on, before them (a real broker's side
is in tests/e2e/test_describe.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikestream.build import build
from spikestream.serving.describe import describe_document
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.spec import load_network
from spikestream_client.codec import decode_describe, encode_describe
from spikestream_client.transport import parse_broker_url
from tests.serving import SEED
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


def test_the_document_shows_each_input_s_own_default_and_ttl_and_the_bound_in_force(
    tmp_path: Path,
) -> None:
    """A client falls back to an input's ``default`` and re-sends within its ``ttl``, and
    sizes frames up to the ``ticks_per_frame`` bound: all three must be the engine's own.
    Every example has default 0 and no ttl on a served input, and the e2e test checks the
    bound only for being large, so a document that zeroed the default, dropped the ttl or
    was one over the bound passed every test (mutation audit)."""
    seed = SEED.read_text()
    assert seed.count("default = 0.0\n") == 1  # the one input, u
    path = tmp_path / "seed.toml"
    path.write_text(seed.replace("default = 0.0\n", "default = 0.75\nttl = 2.5\n"))
    svc = Service(
        build(load_network(path)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )
    doc = describe_document(
        svc.engine, svc.topics, session=3, started=100.0, max_input_bytes=4096, wall=200.0
    )
    assert doc["inputs"]["u"]["default"] == [0.75]
    assert doc["inputs"]["u"]["ttl"] == 2.5
    bound = svc.engine.max_ticks_per_frame()
    assert bound is not None
    assert doc["control"]["settings"]["ticks_per_frame"]["high"] == bound
    assert (doc["session"], doc["started"], doc["wall"]) == (3, 100.0, 200.0)
    # What a client reads back from it.
    described = decode_describe(encode_describe(doc))
    assert described.inputs["u"].default == (0.75,)
    assert described.inputs["u"].ttl == 2.5
