"""The event buckets' arithmetic: refills across refused events, a bucket holding exactly
one token, a count carried once, and the replies' own large burst."""

from __future__ import annotations

from spikestream.serving.events import EVENT_BURST, EVENTS_PER_SECOND, EventLimiter, EventQueue
from spikestream_client.codec import decode_event


def _drain(queue: EventQueue) -> list[dict[str, object]]:
    sent: list[bytes] = []
    queue.flush(lambda event: sent.append(event) is None)
    return [decode_event(e) for e in sent]


def test_time_between_refused_events_still_refills_the_bucket() -> None:
    """A refused event keeps the tokens its bucket gained up to it: the refill is not lost
    because the event itself was over the rate (0.8 token, then 0.4 more, make one)."""
    limiter = EventLimiter(rate=20.0, burst=1)
    assert limiter.allow("k", 0.0)
    assert not limiter.allow("k", 0.04)  # 0.8 token
    assert limiter.allow("k", 0.06)  # 0.8 + 0.4
    assert limiter.suppressed == {"k": 1}


def test_a_bucket_with_exactly_one_token_is_ready() -> None:
    """``ready`` is ``allow`` without taking: one whole token is enough for both, so the
    tail of a burst is reported as soon as the next event of its kind could go."""
    queue = EventQueue("seed")
    for i in range(EVENT_BURST + 3):
        queue.add("input_rejected", 0.0, {"input": "u", "rejected": i})
    _drain(queue)
    one = 1.0 / EVENTS_PER_SECOND  # one token's refill, exactly
    assert queue.limiter.ready("input_rejected", one)
    assert queue.settle(one) == 1
    (report,) = _drain(queue)
    assert (report["of"], report["suppressed"]) == ("input_rejected", 3)


def test_a_suppressed_count_rides_on_one_event_only() -> None:
    """The count of suppressed events goes out once, on the next event of the kind: the
    events after it carry none, and ``settle`` has nothing left to report."""
    queue = EventQueue("seed")
    for i in range(EVENT_BURST + 2):
        queue.add("input_rejected", 0.0, {"input": "u", "rejected": i})
    _drain(queue)
    assert queue.add("input_rejected", 1.0, {"input": "u"})
    assert queue.add("input_rejected", 1.0, {"input": "u"})
    first, second = _drain(queue)
    assert first["suppressed"] == 2
    assert "suppressed" not in second
    assert queue.settle(10.0) == 0


def test_a_burst_of_two_hundred_replies_all_go_out() -> None:
    """Replies to requests share a bucket far larger than a kind's: 200 requests sent at
    once (each sender waits for its reply) are all answered, of whatever kinds."""
    queue = EventQueue("seed", capacity=1000)
    kinds = ("control_ok", "control_rejected", "describe")
    taken = [queue.add(kinds[i % 3], 0.0, {"id": str(i)}) for i in range(200)]
    assert all(taken)
    assert [e["id"] for e in _drain(queue)] == [str(i) for i in range(200)]
    assert queue.replies.suppressed == {}


def test_replies_of_every_kind_share_one_bucket() -> None:
    """The replies' bucket bounds a flood of requests whatever they ask: one bucket for
    all kinds, not one each (a flood spread over the kinds would get a burst per kind)."""
    queue = EventQueue("seed")
    queue.replies = EventLimiter(rate=20.0, burst=2)  # small, to flood it quickly
    kinds = ("control_ok", "describe", "control_rejected")
    assert [queue.add(kind, 0.0, {"id": str(i)}) for i, kind in enumerate(kinds)] == [
        True,
        True,
        False,
    ]
    _drain(queue)
    assert queue.settle(1.0) == 1
    (report,) = _drain(queue)
    assert (report["of"], report["suppressed"]) == ("replies", 1)


def test_a_queue_made_with_a_rate_applies_it() -> None:
    """``EventQueue(rate=...)`` sets its kinds' rate: at 1 event/s the burst refills one
    token a second, not the default's twenty."""
    queue = EventQueue("seed", rate=1.0)
    assert all(queue.add("input_stale", 0.0, {"input": "u"}) for _ in range(EVENT_BURST))
    assert not queue.add("input_stale", 0.5, {"input": "u"})  # 0.5 token (10 by default)
    assert queue.add("input_stale", 1.0, {"input": "u"})


def test_a_refused_events_refill_is_counted_once() -> None:
    """A refused event keeps its refill and restarts the clock: the time up to it is not
    counted again at the next event, or a flood just under the rate would get twice its
    tokens (0.8 token, then 0.1 more: 0.9, still refused; counted twice it made 1.7)."""
    limiter = EventLimiter(rate=20.0, burst=1)
    assert limiter.allow("k", 0.0)
    assert not limiter.allow("k", 0.04)  # 0.8 token
    assert not limiter.allow("k", 0.045)  # 0.9, not 0.8 + 0.9
    assert limiter.allow("k", 0.05)  # 1.0
    assert limiter.suppressed == {"k": 2}
