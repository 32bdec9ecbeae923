"""The host's CPU time sampled on the event loop, and where it cannot be read."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from spikestream.serving.machine import HostSampler, log_contention


async def test_the_sampler_samples_every_100_ms_until_stopped(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 100 0 0 0 0 0 0\n")
    sampler = HostSampler(horizon=1.0, path=stat)
    sampler.start(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    stat.write_text("cpu  40 0 10 130 0 0 0 20 0 0\n")  # 30 busy, 30 idle, 20 stolen
    await asyncio.sleep(0.3)  # samples at about 0.1, 0.2 and 0.3 s (later on a busy machine)
    # Sampled for less than 1 s: the window runs from the first sample, before the change.
    share = sampler.cpu.shares(1.0)
    assert share is not None
    assert 0.05 < share.seconds < 1.0
    assert (share.busy, share.steal) == (pytest.approx(30 / 80), pytest.approx(20 / 80))
    sampler.stop()
    stat.write_text("garbage\n")
    await asyncio.sleep(0.25)
    assert sampler.cpu.error is None  # stopped: the file was not read again


async def test_an_unreadable_host_is_said_once_and_sampling_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = HostSampler(horizon=1.0, path=tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="spikestream.serve"):
        sampler.start(asyncio.get_running_loop())
        await asyncio.sleep(0.25)
    warnings = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "cpu_steal_pct" in warnings[0]
    assert "missing" in warnings[0]
    assert sampler.cpu.shares(1.0) is None
    sampler.stop()  # nothing scheduled: a no-op


def test_a_contended_spell_is_logged_with_what_to_do_and_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A spell's start is a warning naming the spins and the levers (where neighbours
    run, --rt-priority); its end is an info line; both carry the tick and the counts."""
    stats = {"tick": 1234, "contended_spells": 2, "contended_ticks": 500, "other": 1}
    with caplog.at_level(logging.INFO, logger="spikestream"):
        log_contention(True, stats, 0.0002, 0.0)
        log_contention(False, stats, 0.0002, 0.0)
    start, end = caplog.records
    assert start.levelno == logging.WARNING
    text = start.getMessage()
    assert "spins 0 s before its deadline instead of 0.0002 s" in text
    assert "another session" in text
    assert "--rt-priority" in text
    assert end.levelno == logging.INFO
    assert end.getMessage() == "CPU contention is over: each tick spins 0.0002 s again"
    for record in (start, end):
        assert (record.tick, record.contended_spells, record.contended_ticks) == (1234, 2, 500)
        assert not hasattr(record, "other")
