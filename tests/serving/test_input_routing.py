"""How the service routes incoming messages, without a broker: every refused payload is
counted under its reason (stats ``rejected`` and the input's own count) and reported by an
``input_rejected`` event carrying that reason's running count; a retained control message
is ignored, counted and reported; and a message's expiry interval is charged only the time
it really spent on the way (§4.3 of docs/PROTOCOL.md)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from spikestream.serving.service import Service
from spikestream.serving.statistics import stats_payload
from spikestream_client.codec import ControlCommand, encode_input
from spikestream_client.transport import MessageMeta
from tests.serving import ROOT, offline_service

INPUT = "spikestream/seed/in/u"
CONTROL = "spikestream/seed/control"
LIVE = MessageMeta(qos=0, retain=False)


def said(svc: Service, kind: str) -> list[dict[str, Any]]:
    """The events of ``kind`` queued for the events topic (the link never connects)."""
    return [e for raw in svc.events.pending if (e := json.loads(raw))["event"] == kind]


def timed(x: float, t: float) -> bytes:
    return json.dumps({"t": t, "x": x}).encode()


def test_each_refusal_is_counted_under_its_reason_and_reported_with_its_count() -> None:
    """Two refusals of one reason and one each of others: the stats' ``rejected`` map, the
    input's own count, and each event's ``rejected`` (the running count of its reason)
    agree. An event that carried 1 every time, or a reason counted under another, would
    mislead whoever alarms on the events topic."""
    svc = offline_service()
    svc._on_message(INPUT, b"\xc1 not a value", LIVE)
    svc._on_message(INPUT, b"[1.0, 2.0]", LIVE)
    svc._on_message(INPUT, b"\xc1 again", LIVE)
    svc._on_message(INPUT, b"", MessageMeta(qos=0, retain=False, oversize=10**9))
    svc._on_message("spikestream/seed/in/nope", b"1", LIVE)
    svc._on_message("spikestream/seed/in/nope", b"1", LIVE)
    svc._on_message(INPUT, encode_input([0.5]), LIVE)  # accepted
    assert svc.rejected == {"garbage": 2, "dimension": 1, "oversize": 1, "unknown_input": 2}
    counts = svc.engine.inputs["u"].counts()
    assert (counts["rejected"], counts["accepted"]) == (4, 1)
    got = [(e["input"], e["reason"], e["rejected"]) for e in said(svc, "input_rejected")]
    assert got == [
        ("u", "garbage", 1),
        ("u", "dimension", 1),
        ("u", "garbage", 2),
        ("u", "oversize", 1),
        ("nope", "unknown_input", 1),
        ("nope", "unknown_input", 2),
    ]
    assert svc.statistics().rejected == svc.rejected  # no control refused: no control key


def test_a_retained_control_message_is_ignored_counted_and_reported() -> None:
    """A retained ``pause`` (published before we subscribed) must not pause the network: it
    is counted in ``retained_control`` and ``rejected.control`` and reported by a
    ``control_ignored`` event with reason ``retained``; a live one is queued as usual."""
    svc = offline_service()
    svc._on_message(CONTROL, b"pause", MessageMeta(qos=1, retain=True))
    assert not svc.engine._commands  # nothing for the tick thread
    stats = svc.statistics()
    assert stats.retained_control == 1
    assert stats.rejected == {"control": 1}
    (ignored,) = said(svc, "control_ignored")
    assert ignored["reason"] == "retained"
    assert ignored["payload"] == "pause"
    assert not said(svc, "control_rejected")
    svc._on_message(CONTROL, b"pause", MessageMeta(qos=1, retain=False))
    assert [c.cmd for c in svc.engine._commands] == ["pause"]
    assert svc.statistics().retained_control == 1


def test_refusals_by_the_tick_thread_and_a_full_queue_count_as_control() -> None:
    """``rejected.control`` counts every refused control message: at the edge (here, a
    word no command has), by the tick thread, and by a full command queue."""
    svc = offline_service()
    engine = svc.engine
    svc._on_message(CONTROL, b"explode", LIVE)
    engine._refuse(ControlCommand("set", id="t"), "refused by the tick thread")
    for _ in range(engine._commands.maxlen or 0):
        engine._commands.append(ControlCommand("status"))
    assert not engine.submit(ControlCommand("pause", id="full"))
    assert svc.statistics().rejected == {"control": 3}


def test_a_retained_inputs_expiry_is_not_charged_its_timestamps_age() -> None:
    """A retained message's expiry interval has already been counted down by the broker
    while it held it, so its old timestamp must not be subtracted again: the value is
    accepted. The same message live, 5 s old with 2 s to live, is refused as expired."""
    svc = offline_service()
    old = timed(0.7, time.time() - 5.0)
    svc._on_message(INPUT, old, MessageMeta(qos=0, retain=True, expiry=2))
    assert svc.engine.inputs["u"].counts()["accepted"] == 1
    assert svc.rejected == {}
    svc._on_message(INPUT, old, MessageMeta(qos=0, retain=False, expiry=2))
    assert svc.rejected == {"expired": 1}
    (refused,) = said(svc, "input_rejected")
    assert (refused["reason"], refused["rejected"]) == ("expired", 1)
    assert svc.engine.inputs["u"].counts()["rejected"] == 1


def test_an_accepted_value_lasts_as_long_as_its_message_expiry() -> None:
    """A value sent with 1 s to live drives the input for that second and no longer, and a
    sender whose clock runs ahead does not lengthen it (a timestamp in the future is not a
    negative age)."""
    for t in (None, time.time() + 100.0):
        svc = offline_service()
        slot = svc.engine.inputs["u"]
        payload = encode_input([0.7]) if t is None else timed(0.7, t)
        svc._on_message(INPUT, payload, MessageMeta(qos=0, retain=False, expiry=1))
        now = svc.engine.clock.now()
        target = np.zeros(1)
        slot.apply(target, now + 0.5)
        assert target[0] == 0.7, t
        slot.apply(target, now + 1.5)
        assert target[0] == 0.0, t  # back to the default: expired while held


def test_the_documented_input_rejected_example_has_the_fields_the_service_sends() -> None:
    """docs/PROTOCOL.md §6 shows an ``input_rejected`` event as the example of an event: a
    reader scripts ``jq`` against it, so its keys must be those the service publishes
    (it showed ``message`` where the service sends ``error``, and lacked ``net`` and
    ``rejected``)."""
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    (line,) = [x for x in doc.splitlines() if x.startswith('{"v":1,"event":"input_rejected"')]
    example = json.loads(line)
    svc = offline_service()
    svc._on_message(INPUT, b"[1.0, 2.0]", LIVE)
    (sent,) = said(svc, "input_rejected")
    assert list(example) == list(sent)
    assert (example["input"], example["reason"]) == (sent["input"], sent["reason"])


def test_the_stats_only_counters_are_the_services_own() -> None:
    """``retained_control``, ``status_reasserted``, ``replies_failed`` and
    ``events_pending`` (no metric: docs/PROTOCOL.md §6.2) read the service's counts, each
    its own: a reply that cannot be handed to the link (not connected) is counted, and
    its event waits in the queue."""
    svc = offline_service()
    svc._on_message(CONTROL, b"pause", MessageMeta(qos=1, retain=True))
    svc.status_guard.reasserted = 5
    svc.event("control_ok", reply=("spikestream/seed/reply", b"c1"), cmd="status", id="s")
    svc.event("control_ok", reply=("spikestream/seed/reply", b"c2"), cmd="status", id="t")
    payload = stats_payload(svc.statistics())
    assert payload["retained_control"] == 1
    assert payload["status_reasserted"] == 5
    assert payload["replies_failed"] == 2
    assert payload["events_pending"] == 3  # control_ignored and the two replies
