"""The service follows its engine's tick path: stats say which, and the I/O side hands the
GIL to the tick thread only where the tick needs it several times (the Python path)."""

from __future__ import annotations

import asyncio

import pytest

from spikestream.build import build
from spikestream.runtime.gil import yield_gil
from spikestream.runtime.native_pacing import L_EARLY
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statistics import stats_payload
from spikestream.spec import load_network
from spikestream_client.transport import parse_broker_url
from tests.serving import SEED, offline_service


@pytest.mark.parametrize(
    ("python_tick", "path", "yields"),
    [(False, "compiled", False), (True, "python (turned off)", True)],
)
def test_the_service_follows_its_tick_path(python_tick: bool, path: str, yields: bool) -> None:
    svc = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(python_tick=python_tick),
        memory_limit=1 << 30,
    )
    assert svc.engine.tick_path == path
    assert stats_payload(svc.statistics())["tick_path"] == path
    assert (svc._yield_gil is yield_gil) is yields


@pytest.mark.parametrize(("flag", "early"), [(False, 1), (True, 0)])
def test_ticks_start_on_input_unless_told_to_keep_their_deadlines(flag: bool, early: int) -> None:
    """By default the compiled loop starts the tick a new input arrives for at once
    (``L_EARLY``); ``--tick-at-deadline`` keeps every tick at its deadline."""
    svc = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(tick_at_deadline=flag),
        memory_limit=1 << 30,
    )
    assert svc.engine._runs is not None
    assert int(svc.engine._runs.loop[L_EARLY]) == early


async def test_a_failing_pump_stops_the_service_once_instead_of_logging_every_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled tick's wake-up descriptor calls the frame pump straight from the event
    loop's reader, where an exception would only be logged, tick after tick. The first
    failure is kept, the pump is not run again, and the publisher task raises it, which
    stops the service as any failed task of its TaskGroup does."""
    svc = offline_service()
    svc._loop = asyncio.get_running_loop()
    svc._wake = asyncio.Event()
    calls: list[int] = []

    def broken() -> bool:
        calls.append(1)
        raise RuntimeError("collect broke")

    monkeypatch.setattr(svc.engine, "collect", broken)
    for _ in range(3):  # three ticks' wake-ups
        svc._pump_guarded()
    assert calls == [1]
    with pytest.raises(RuntimeError, match="collect broke"):
        await asyncio.wait_for(svc._publisher(), 1.0)


async def test_frames_left_after_a_slice_are_pumped_on_the_next_loop_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slice that leaves frames queued schedules one more pump for the next pass of
    the event loop (after the socket reader), and only one however often it is woken."""
    svc = offline_service()
    svc._loop = asyncio.get_running_loop()
    svc._wake = asyncio.Event()
    left = [2]  # slices that end with frames still queued

    def drain() -> bool:
        left[0] -= 1
        return left[0] >= 0

    monkeypatch.setattr(svc, "_drain", drain)
    svc._pump_guarded()
    assert svc._pump_again
    svc._pump_guarded()  # woken again before the scheduled pass: still one pump queued
    for _ in range(5):
        await asyncio.sleep(0)
    # Two pumps by wake-up, then one scheduled pass ran the last slice; the pass the
    # second wake-up scheduled found nothing left to do and did not drain again.
    assert left[0] == -1
    assert not svc._pump_again
