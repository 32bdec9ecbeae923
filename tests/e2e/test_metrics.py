"""``serve --metrics-port``: a Prometheus endpoint with the service's counters."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from spikestream.runtime.cpulatency import DEVICE, current_cpu_latency
from tests.brokers import Mosquitto, free_port
from tests.serving import SEED, Listener, ServeProcess

pytestmark = pytest.mark.broker


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_metrics_endpoint(mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()
    proc = ServeProcess(SEED, mosquitto.url(), "--metrics-port", str(port), workdir=tmp_path)
    proc.start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
            await sub.wait_status("seed", b"online")
        first = await asyncio.to_thread(scrape, port)
        await asyncio.sleep(1.0)
        second = await asyncio.to_thread(scrape, port)
    finally:
        assert proc.stop() == 0
    ticks = 'spikestream_ticks_total{net="seed"}'
    assert second[ticks] - first[ticks] > 500  # about 1000 ticks in a second
    assert second['spikestream_connected{net="seed"}'] == 1.0
    assert second['spikestream_realtime_factor{net="seed"}'] == 1.0
    assert second['spikestream_tick_thread_fifo_priority{net="seed"}'] == 0.0
    assert second['spikestream_frames_total{net="seed",probe="a_spikes"}'] > 0
    assert second['spikestream_frames_dropped_total{net="seed",probe="a_spikes"}'] == 0
    # Cumulative histogram buckets never decrease and end at the tick count.
    buckets = [
        (float(k.split('le="')[1].split('"')[0]), v)
        for k, v in second.items()
        if k.startswith("spikestream_tick_lateness_seconds_bucket")
    ]
    counts = [v for _, v in sorted(buckets)]
    assert counts == sorted(counts)
    assert counts[-1] == second['spikestream_tick_lateness_seconds_count{net="seed"}']
    assert 'spikestream_publish_refused_total{net="seed"}' in second
    assert second['spikestream_failovers_total{net="seed"}'] == 0
    assert second['spikestream_frames_resent_total{net="seed"}'] == 0


async def serve_stats_and_scrape(
    mosquitto: Mosquitto, tmp_path: Path, *flags: str
) -> tuple[dict[str, Any], dict[str, float], int | None]:
    """Serve the seed network with ``--metrics-port`` and ``flags``; once it is online,
    return its latest ``stats``, one scrape, and the kernel's CPU latency limit then."""
    port = free_port()
    proc = ServeProcess(
        SEED, mosquitto.url(), "--metrics-port", str(port), *flags, workdir=tmp_path
    )
    proc.start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
            await sub.wait_status("seed", b"online")
            stats = await sub.wait_for(
                lambda ms: [m for m in ms if m.topic.endswith("/stats")], what="stats"
            )
        samples = await asyncio.to_thread(scrape, port)
        limit = current_cpu_latency()
    finally:
        assert proc.stop() == 0
    return json.loads(stats[-1].payload), samples, limit


async def test_metrics_show_the_tick_threads_real_time_priority(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``--rt-priority 10``: the gauge shows 10 where the OS grants SCHED_FIFO (root or an
    rtprio limit), else 0, and ``stats`` says which."""
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 10
    stats, samples, _ = await serve_stats_and_scrape(mosquitto, tmp_path, "--rt-priority", "10")
    gauge = samples['spikestream_tick_thread_fifo_priority{net="seed"}']
    scheduling = stats["scheduling"]
    if allowed:
        assert (gauge, scheduling) == (10.0, "SCHED_FIFO 10")
    else:
        assert gauge == 0.0
        assert scheduling.startswith("normal (")


async def test_cpu_latency_limit_is_held_while_serving_and_dropped_on_exit(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``--cpu-latency 0``: while the service runs the kernel's limit is 0 µs (root), the
    gauge and ``stats`` say so; after a clean stop the limit is what it was before."""
    allowed = os.access(DEVICE, os.W_OK)
    before = current_cpu_latency()
    stats, samples, during = await serve_stats_and_scrape(mosquitto, tmp_path, "--cpu-latency", "0")
    gauge = samples['spikestream_cpu_latency_limit_us{net="seed"}']
    described = stats["cpu_latency"]
    if allowed:
        assert (gauge, described, during) == (0.0, "0 us held", 0)
        assert current_cpu_latency() == before != 0
    else:
        assert gauge == -1.0
        assert described.startswith("not held (")
