"""Events: rate-limited per kind, and every suppressed one counted where a reader sees it."""

from __future__ import annotations

import logging

import pytest

from spikestream.serving.events import (
    EVENT_BURST,
    EVENTS_PER_SECOND,
    REPLIES_PER_SECOND,
    EventLimiter,
    EventQueue,
)
from spikestream_client.codec import decode_event


def _drain(queue: EventQueue) -> list[dict[str, object]]:
    sent: list[bytes] = []
    queue.flush(lambda event: sent.append(event) is None)
    return [decode_event(e) for e in sent]


def _reject(queue: EventQueue, now: float, n: int) -> list[bool]:
    return [
        queue.add("input_rejected", now, {"input": "u", "reason": "garbage", "rejected": i})
        for i in range(n)
    ]


def test_a_burst_beyond_the_bucket_is_counted_on_the_next_event_of_its_kind() -> None:
    queue = EventQueue("seed")
    assert _reject(queue, 0.0, EVENT_BURST + 5) == [True] * EVENT_BURST + [False] * 5
    assert [e.get("suppressed") for e in _drain(queue)] == [None] * EVENT_BURST
    assert _reject(queue, 1.0 / EVENTS_PER_SECOND, 1) == [True]
    (event,) = _drain(queue)
    assert event["suppressed"] == 5


def test_the_tail_of_a_burst_is_reported_once_its_kind_goes_quiet() -> None:
    """25 bad payloads and then none: the last 5 were suppressed, and no later event of
    the kind came to carry the count. ``settle`` reports them once the bucket has a token
    again, once, and the next event of the kind carries nothing twice."""
    queue = EventQueue("seed")
    _reject(queue, 0.0, EVENT_BURST + 5)
    queue.add("input_stale", 0.0, {"input": "u", "ttl": 1.0})  # another kind, not suppressed
    _drain(queue)
    assert queue.settle(0.0) == 0  # the bucket is still empty: the burst goes on, maybe
    assert _drain(queue) == []
    assert queue.settle(1.0) == 1
    (report,) = _drain(queue)
    assert report["event"] == "events_suppressed"
    assert report["net"] == "seed"
    assert (report["of"], report["suppressed"]) == ("input_rejected", 5)
    assert queue.settle(2.0) == 0
    assert _reject(queue, 2.0, 1) == [True]
    assert "suppressed" not in _drain(queue)[0]


def test_suppressed_replies_are_reported_under_their_own_name() -> None:
    queue = EventQueue("seed")
    queue.replies = EventLimiter(REPLIES_PER_SECOND, 2)  # a small bucket, quickly flooded
    got = [queue.add("control_ok", 0.0, {"cmd": "status", "id": i}) for i in range(5)]
    assert got == [True, True, False, False, False]
    _drain(queue)
    assert queue.settle(1.0) == 1
    (report,) = _drain(queue)
    assert (report["of"], report["suppressed"]) == ("replies", 3)


def test_a_report_waits_in_the_queue_like_any_event() -> None:
    """While offline the report waits with the others, bounded, oldest dropped and
    counted in ``lost``."""
    queue = EventQueue("seed", capacity=EVENT_BURST)
    _reject(queue, 0.0, EVENT_BURST + 3)
    assert queue.settle(1.0) == 1
    assert len(queue) == EVENT_BURST
    assert queue.lost == 1
    events = _drain(queue)
    assert events[-1]["event"] == "events_suppressed"
    assert events[-1]["suppressed"] == 3


def test_a_report_is_logged_at_its_kinds_level(caplog: pytest.LogCaptureFixture) -> None:
    """Suppressed refusals are warnings, as the refusals themselves."""
    queue = EventQueue("seed")
    _reject(queue, 0.0, EVENT_BURST + 1)
    queue.add("input_stale", 0.0, {"input": "u", "ttl": 1.0})
    for _ in range(EVENT_BURST):
        queue.add("input_stale", 0.0, {"input": "u", "ttl": 1.0})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="spikestream.serve"):
        assert queue.settle(1.0) == 2
    levels = {r.of: r.levelno for r in caplog.records}  # type: ignore[attr-defined]
    assert levels == {"input_rejected": logging.WARNING, "input_stale": logging.INFO}


def test_a_quiet_kind_gets_back_its_burst_and_no_more() -> None:
    """Tokens refill at the rate but never past the burst: a kind quiet for 100 s may
    send EVENT_BURST at once again, not the 2,000 that 100 s of its rate would make."""
    limiter = EventLimiter(EVENTS_PER_SECOND)
    first = [limiter.allow("input_rejected", 0.0) for _ in range(EVENT_BURST + 1)]
    assert first == [True] * EVENT_BURST + [False]
    later = [limiter.allow("input_rejected", 100.0) for _ in range(EVENT_BURST + 5)]
    assert later == [True] * EVENT_BURST + [False] * 5
    queue = EventQueue("seed")
    _reject(queue, 0.0, EVENT_BURST)
    assert _reject(queue, 100.0, EVENT_BURST + 1) == [True] * EVENT_BURST + [False]


def test_an_event_the_link_refuses_waits_for_the_next_flush() -> None:
    """``send`` returning False (offline, or a full window) leaves that event and every
    later one queued, oldest first; the next flush sends them, none lost or repeated."""
    queue = EventQueue("seed")
    _reject(queue, 0.0, 3)
    tried: list[bytes] = []
    queue.flush(lambda event: tried.append(event) and False)
    assert len(tried) == 1  # refused: nothing after it was offered either
    assert len(queue) == 3
    sent: list[bytes] = []
    queue.flush(lambda event: len(sent) < 2 and (sent.append(event) is None))
    assert len(sent) == 2  # the third was refused
    assert len(queue) == 1
    assert [e["rejected"] for e in map(decode_event, sent)] == [0, 1]
    assert [e["rejected"] for e in _drain(queue)] == [2]
    assert len(queue) == 0
    assert tried[0] == sent[0]


def test_ignored_events_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """``*_ignored`` (a retained control message), as ``*_rejected`` and ``*_failed``,
    is a warning; other kinds are info."""
    queue = EventQueue("seed")
    with caplog.at_level(logging.INFO, logger="spikestream.serve"):
        queue.add("control_ignored", 0.0, {"reason": "retained"})
        queue.add("snapshot_failed", 0.0, {"error": "disk full"})
        queue.add("control_ok", 0.0, {"cmd": "pause"})
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels == {
        "control_ignored": logging.WARNING,
        "snapshot_failed": logging.WARNING,
        "control_ok": logging.INFO,
    }
