"""The host's CPU time sampled on the event loop, and where it cannot be read."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from spikestream.serving.machine import HostSampler


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
