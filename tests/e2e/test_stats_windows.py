"""The stats topic and the metrics carry the last 1 s and 10 s beside the since-start figures."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from spikestream.runtime.native_tick import RING_ROWS
from tests.brokers import Mosquitto, free_port
from tests.e2e.test_metrics import scrape
from tests.serving import NODELAY, SEED, Listener, ServeProcess

pytestmark = pytest.mark.broker

PROTOCOL = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"


def documented_window_keys() -> set[str]:
    """The keys in the table of PROTOCOL.md's "Recent windows" section."""
    text = PROTOCOL.read_text()
    section = text.split("#### 6.2.1 Recent windows", 1)[1].split("\n#", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return keys


def stats_of(sub: Listener) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in sub.messages if m.topic.endswith("/stats")]


async def test_stats_carry_documented_windows_that_empty_while_paused(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    proc = ServeProcess(SEED, mosquitto.url(), "--metrics-port", str(port), workdir=tmp_path)
    proc.start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
            await sub.wait_status("seed", b"online")
            # The second stats message: a full second of buckets has ended by then.
            running = (await sub.wait_for(lambda ms: stats_of(sub)[1:], what="2 stats"))[-1]
            samples = await asyncio.to_thread(scrape, port)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                await c.publish("spikestream/seed/control", json.dumps({"cmd": "pause"}))
            # 1.2 s after the pause the last second holds no tick; 10 s still do.
            paused = await sub.wait_for(
                lambda ms: [
                    s for s in stats_of(sub) if s["paused"] and s["window_1s"]["ticks"] == 0
                ],
                what="a paused stats message with an empty 1 s window",
            )
    finally:
        assert proc.stop() == 0

    documented = documented_window_keys()
    assert documented >= {"ticks", "late_p99_ms", "late_over_1ms_pct"}
    for window in ("window_1s", "window_10s"):
        w = running[window]
        assert set(w) == documented, f"{window} keys differ from docs/PROTOCOL.md 6.2.1"
        # The windows count each tick as the compiled loop hands it on; ``tick`` counts
        # those the I/O thread has collected, at most a ring's rows fewer.
        assert 0 < w["ticks"] <= running["tick"] + RING_ROWS
        assert 0 <= w["late_over_1ms"] <= w["late_over_250us"] <= w["ticks"]
        share = 100 * w["late_over_1ms"] / w["ticks"]
        assert w["late_over_1ms_pct"] == pytest.approx(share, abs=1e-4)  # rounded to 4 places
        assert w["late_p50_ms"] <= w["late_p99_ms"] <= w["late_p999_ms"] <= w["late_max_ms"]
        assert w["realtime_factor_actual"] > 0
        # The seed's tick works for tens of microseconds of each 1 ms period.
        assert 0 < w["work_p50_ms"] <= w["work_p99_ms"] <= w["work_max_ms"]
        assert w["work_p50_ms"] < 0.5
        # The host's CPU time. It may read 0 on a quiet machine: the kernel charges busy
        # time to whatever runs at its scheduler tick (HZ=250 here), which can fall at a
        # fixed phase of the service's 1 ms ticks, outside the tick thread's short spin.
        assert 0 <= w["cpu_busy_pct"] <= 100
        assert 0 <= w["cpu_steal_pct"] <= 100 - w["cpu_busy_pct"] + 0.01  # each rounded
    assert running["window_1s"]["ticks"] <= running["window_10s"]["ticks"]

    idle = paused[-1]
    assert idle["window_1s"]["realtime_factor_actual"] is None
    assert idle["window_1s"]["late_p99_ms"] is None
    assert idle["window_1s"]["work_p99_ms"] is None
    assert idle["window_10s"]["ticks"] > 0  # the ticks before the pause are still in it
    assert idle["late_p99_ms"] is not None  # and so are the since-start figures

    for window in ("1s", "10s"):
        labels = f'net="seed",window="{window}"'
        assert samples[f"spikestream_window_ticks{{{labels}}}"] > 0
        assert samples[f"spikestream_window_realtime_factor_actual{{{labels}}}"] > 0
        for threshold in ("0.00025", "0.001"):
            by = f'net="seed",threshold="{threshold}",window="{window}"'  # labels sorted
            ratio = samples[f"spikestream_window_late_ticks_ratio{{{by}}}"]
            assert 0.0 <= ratio <= 1.0
        p99 = samples[
            f'spikestream_window_tick_lateness_seconds{{net="seed",quantile="0.99",window="{window}"}}'
        ]
        assert 0.0 <= samples[f"spikestream_window_cpu_busy_ratio{{{labels}}}"] <= 1.0
        assert 0.0 <= samples[f"spikestream_window_cpu_steal_ratio{{{labels}}}"] <= 1.0
        assert 0.0 <= p99 <= samples[f"spikestream_window_tick_lateness_max_seconds{{{labels}}}"]
