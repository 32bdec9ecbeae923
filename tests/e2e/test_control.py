"""Hostile control end to end: ``spikestream serve`` on a real mosquitto keeps ticking,
with contiguous ``seq``, through every refused command, ignores retained control, and
loses no event raised while it connects."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statistics import stats_payload
from spikestream.spec import load_network
from spikestream_client.transport import MessageMeta, parse_broker_url
from tests.brokers import Mosquitto
from tests.e2e.test_serve import events, frames_of, publish
from tests.serving import SEED, Listener

pytestmark = pytest.mark.broker

CONTROL = "spikestream/seed/control"


def stats(sub: Listener) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in sub.on("spikestream/seed/stats")]


def assert_contiguous(sub: Listener, probe: str) -> int:
    seqs = [f.header.seq for f in frames_of(sub.messages, probe)]
    assert seqs, f"no frames of {probe}"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"a gap in {probe}'s seq"
    assert all(f.header.dropped == 0 for f in frames_of(sub.messages, probe))
    return len(seqs)


# Each hostile command and what its refusal must name: the key, the value, what is allowed.
HOSTILE = [
    (b"set ticks_per_frame 1e9", ["ticks_per_frame", "1000000000", "the memory budget"]),
    (b"set ticks_per_frame 2.5", ["ticks_per_frame", "2.5", "an integer"]),
    (b"set realtime_factor -1", ["realtime_factor", "-1.0", "a finite number in [0, 1e+06]"]),
    # Allowed once: the schedule dropped, in simulated seconds, overflowed to inf, and the
    # stats message that could not carry it ended the service, its status left online.
    (b"set realtime_factor 1e308", ["realtime_factor", "1e+308", "[0, 1e+06]"]),
    # A lone surrogate names no file: it was a traceback in the log and no refusal.
    (b'{"cmd": "snapshot", "value": "\\ud800.npz"}', ["UTF-8", "snapshot"]),
    (b'{"cmd": "pause", "cmd": "reset"}', ["the key 'cmd' more than once"]),
    (b"set realtime_factor nan", ["finite", "nan"]),
    (b'{"cmd": "set", "key": "ttl", "value": 1e999}', ["finite"]),
    (b"set learning_rate 5", ["learning_rate", "5.0", "[0, 1]"]),
    (b"set volume 11", ["volume", "settable keys: realtime_factor"]),
    (b"set learning on", ["no learning connection"]),  # refused by the tick thread
    (b"learn maybe", ["'learn' needs on or off", "maybe"]),
    (b"explode", ["unknown control command", "allowed: pause, resume"]),
    (b"\xc1\xff\x00", ["not valid msgpack"]),
]


async def test_hostile_commands_are_refused_and_ticking_goes_on(
    mosquitto: Mosquitto, serve
) -> None:
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--memory-limit", "1GiB", "--stats-interval", "0.2")
        await sub.wait_status("seed", b"online")
        await sub.wait_for(lambda ms: len(frames_of(ms, "a_spikes")) > 20, what="frames")
        for payload, _ in HOSTILE:
            await publish(mosquitto, CONTROL, payload)
        await publish(
            mosquitto, CONTROL, b'{"cmd": "set", "key": "ticks_per_frame", "value": 20, "id": "ok"}'
        )
        refusals = await sub.wait_for(
            lambda ms: (r := events(ms, "control_rejected")) and len(r) >= len(HOSTILE) and r,
            what=f"{len(HOSTILE)} control_rejected events",
        )
        # Refused at the edge or by the tick thread, so not in order: match on the words.
        errors = [str(e["error"]) for e in refusals]
        assert len(errors) == len(HOSTILE)
        for payload, words in HOSTILE:
            assert any(all(w in err for w in words) for err in errors), (payload, errors)
        ok = await sub.wait_for(
            lambda ms: [e for e in events(ms, "control_ok") if e.get("id") == "ok"],
            what="the valid command after the hostile ones",
        )
        assert ok[0]["ticks_per_frame"] == 20
        # A map with an id refused at the edge: the reply still echoes the id.
        await publish(mosquitto, CONTROL, b'{"cmd": "set", "key": "ttl", "value": -1, "id": "n"}')
        neg = await sub.wait_for(
            lambda ms: [e for e in events(ms, "control_rejected") if e.get("id") == "n"],
            what="the refusal echoing its id",
        )
        assert neg[0]["cmd"] == "set"
        assert "set ttl: -1.0 is not allowed; expected a finite number >= 0" in str(neg[0]["error"])
        # Still ticking, frames of the new size, seq contiguous from first to last.
        n = len(frames_of(sub.messages, "a_spikes"))
        await sub.wait_for(
            lambda ms: len(frames_of(ms, "a_spikes")) > n + 30, what="frames after the commands"
        )
        assert frames_of(sub.messages, "a_spikes")[-1].header.ticks == 20
        for probe in ("a_spikes", "b_spikes"):
            assert assert_contiguous(sub, probe) > 50
        counted = await sub.wait_for(
            lambda ms: [s for s in stats(sub) if s["rejected"].get("control") == len(HOSTILE) + 1],
            what="stats counting every refusal",
        )
        assert counted[-1]["events_lost"] == 0
        assert proc.returncode is None
    assert proc.stop(signal.SIGTERM) == 0
    assert "Traceback" not in proc.log_text()


async def test_retained_control_is_ignored_and_no_event_is_lost_at_connect(
    mosquitto: Mosquitto, serve
) -> None:
    """A retained ``pause`` and a retained bad input wait at the broker before the service
    starts: the pause is ignored (with an event), the input's refusal reaches ``events``."""
    await publish(mosquitto, CONTROL, b"pause", retain=True)
    await publish(mosquitto, "spikestream/seed/in/u", b"garbage!", retain=True)
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--stats-interval", "0.2")
        await sub.wait_status("seed", b"online")
        ignored = await sub.wait_for(
            lambda ms: events(ms, "control_ignored"), what="control_ignored"
        )
        assert ignored[0]["reason"] == "retained"
        assert ignored[0]["payload"] == "pause"
        assert "retained control message is ignored" in str(ignored[0]["error"])
        rejected = await sub.wait_for(
            lambda ms: events(ms, "input_rejected"), what="the retained input's refusal"
        )
        assert rejected[0]["input"] == "u"
        # Not paused: frames keep coming, contiguous.
        await sub.wait_for(lambda ms: len(frames_of(ms, "a_spikes")) > 100, what="frames")
        assert assert_contiguous(sub, "a_spikes") > 100
        last = await sub.wait_for(
            lambda ms: [s for s in stats(sub) if s["tick"] > 500], what="stats"
        )
        assert last[-1]["paused"] is False
        assert last[-1]["retained_control"] == 1
        assert last[-1]["rejected"]["control"] == 1
        assert last[-1]["events_lost"] == 0
    assert proc.stop(signal.SIGTERM) == 0
    await publish(mosquitto, CONTROL, b"", retain=True)  # clear the retained messages


def test_retained_control_at_a_reconnect_is_ignored(tmp_path: Path) -> None:
    """The broker replays retained messages with the retain flag at every (re)subscription;
    the service decides on that flag alone, so a replay at a reconnect is ignored too.
    (No broker needed: the service is not started, and events wait for a connection.)"""
    model = build(load_network(SEED))
    service = Service(model, parse_broker_url("mqtt://127.0.0.1:1"), ServeSettings())
    service._on_message(CONTROL, b"reset", MessageMeta(qos=1, retain=True))
    assert not service.engine._commands
    assert service.retained_control == 1
    service._on_message(CONTROL, b"reset", MessageMeta(qos=1, retain=False))
    assert [c.cmd for c in service.engine._commands] == ["reset"]
    pending = [json.loads(p) for p in service.events.pending]
    assert [e["event"] for e in pending] == ["control_ignored"]
    assert stats_payload(service.statistics())["events_pending"] == 1


def test_events_wait_bounded_while_offline_and_overflow_is_counted() -> None:
    from spikestream.serving.events import PENDING_EVENTS

    model = build(load_network(SEED))
    service = Service(model, parse_broker_url("mqtt://127.0.0.1:1"), ServeSettings())
    service.events.limiter.rate = 1e9  # let every event through the rate limit
    service.events.limiter.burst = 10**6
    for i in range(PENDING_EVENTS + 10):
        service.event("input_rejected", input="u", n=i)
    assert len(service.events.pending) == PENDING_EVENTS
    assert service.events.lost == 10
    # The oldest were dropped; the newest wait, in order.
    assert json.loads(service.events.pending[0])["n"] == 10
    assert json.loads(service.events.pending[-1])["n"] == PENDING_EVENTS + 9


def test_events_lost_on_both_sides_counted_alike_in_stats_and_metrics() -> None:
    """Events lost in the tick thread's queue and beyond the pending queue: the stats and
    the Prometheus counter give the same total."""
    from spikestream.serving.events import PENDING_EVENTS
    from spikestream.serving.metrics import ServiceCollector

    model = build(load_network(SEED))
    service = Service(model, parse_broker_url("mqtt://127.0.0.1:1"), ServeSettings())
    service.events.limiter.rate = 1e9
    service.events.limiter.burst = 10**6
    for i in range(PENDING_EVENTS + 3):
        service.event("input_rejected", input="u", n=i)
    engine = service.engine
    assert engine.events.maxlen is not None
    for _ in range(engine.events.maxlen + 5):
        engine._event("input_stale", input="u", ttl=1.0)
    assert stats_payload(service.statistics())["events_lost"] == 3 + 5
    lost = [
        s.value
        for family in ServiceCollector(service.statistics).collect()
        for s in family.samples
        if s.name == "spikestream_events_lost_total"
    ]
    assert lost == [3 + 5]


async def test_back_to_real_time_after_an_input_at_a_slow_factor_ticks_at_once(
    mosquitto: Mosquitto, serve
) -> None:
    """An input at a factor of 1e-4 (a 10 s tick) starts its tick at once, a whole slow
    period before that tick was due. Set back to 1, the service re-anchored on that
    deadline and ran no tick for the rest of the 10 s, while its stats said it was not
    paused and ran at 1.0."""
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--stats-interval", "0.2", "--ticks-per-frame", "1")
        await sub.wait_status("seed", b"online")

        async def set_factor(value: float, rid: str) -> None:
            command = {"cmd": "set", "key": "realtime_factor", "value": value, "id": rid}
            await publish(mosquitto, CONTROL, json.dumps(command))
            await sub.wait_for(
                lambda ms: [e for e in events(ms, "control_ok") if e.get("id") == rid],
                what=f"realtime_factor {value}",
            )

        await set_factor(1e-4, "slow")
        await publish(mosquitto, "spikestream/seed/in/u", b"0.3")
        await sub.wait_for(
            lambda ms: [f for f in frames_of(ms, "u") if np.any(f.data == 0.3)],  # type: ignore[union-attr]
            what="the input's early tick",
        )
        await set_factor(1.0, "back")
        start = (await sub.wait_for(lambda ms: stats(sub), what="stats"))[-1]["tick"]
        # 1000 ticks a second again; the frozen service ran none for about 9 s.
        await sub.wait_for(
            lambda ms: [s for s in stats(sub) if s["tick"] > start + 500],
            what="ticks at real time",
            within=3.0,
        )
    assert proc.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("part", ["stats", "publisher"])
async def test_a_failed_part_says_so_and_leaves_the_status_offline(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    """A task of the service that fails ends the run with its error, as before; first
    the service says ``service_failed`` and publishes ``offline``. Before, it left with a
    clean disconnect, which sends no will: the retained status said ``online`` for a
    service that was gone. The publisher's failure comes back when the stop drains the
    last frames: offline must still go out."""
    import spikestream.serving.service as service_module

    calls = 0
    real_stats = service_module.stats_payload
    real_drain = Service._drain

    def failing_stats(stats: object) -> dict[str, object]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("a part failed")
        return real_stats(stats)  # type: ignore[arg-type]

    def failing_drain(self: Service) -> bool:
        nonlocal calls
        calls += 1
        if calls >= 200:  # from then on, as a frame that cannot be sent stays queued
            raise RuntimeError("a part failed")
        return real_drain(self)

    if part == "stats":
        monkeypatch.setattr(service_module, "stats_payload", failing_stats)
    else:
        monkeypatch.setattr(Service, "_drain", failing_drain)
    model = build(load_network(SEED))
    settings = ServeSettings(stats_interval=0.2)
    service = Service(model, parse_broker_url(mosquitto.url()), settings)
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        with pytest.raises(ExceptionGroup) as info:  # the CLI reports the group's leaves
            await asyncio.wait_for(service.run(asyncio.Event()), 20)
        assert info.group_contains(RuntimeError, match="a part failed")
        await sub.wait_status("seed", b"offline")
        failed = await sub.wait_for(lambda ms: events(ms, "service_failed"), what="service_failed")
        assert failed[0]["error"] == "RuntimeError: a part failed"
