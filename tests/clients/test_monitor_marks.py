"""What the monitor's views mark as not current: stats that stopped coming (terminal) and
frames the web bridge dropped between two batches."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from spikestream_client.monitor.aggregate import MonitorModel
from spikestream_client.monitor.terminal import render
from spikestream_client.monitor.web import WebBridge
from tests.clients.frames import header, regular_spikes, spike_frame, value_frame


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _service_line(model: MonitorModel) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(render(model.snapshot(), "mqtt://broker:1883"))
    (line,) = [ln for ln in console.export_text().splitlines() if "service" in ln]
    return line


@pytest.mark.parametrize(
    ("age", "mark"), [(0.0, None), (2.9, None), (3.0, "(stale 3 s)"), (42.4, "(stale 42 s)")]
)
def test_stats_older_than_3_s_are_marked_stale(age: float, mark: str | None) -> None:
    """The service publishes stats about every second: from 3 s without them the line
    says how old the figures shown are."""
    clock = FakeClock(1.7e9)
    model = MonitorModel("fake", clock=clock)
    model.on_stats({"tick": 1234, "t": 1.234, "overruns": 0, "dropped": 0})
    clock.now += age
    line = _service_line(model)
    assert "tick 1234" in line
    if mark is None:
        assert "stale" not in line
    else:
        assert line.rstrip().endswith(mark), line


def test_frames_a_probe_drops_between_batches_are_counted_as_overflow() -> None:
    """At most ``max_frames`` per probe wait for a batch: the oldest go, and the batch
    says how many (the page shows them as a hole, not as silence)."""
    bridge = WebBridge("fake", max_frames=3)
    for seq in range(5):
        tick = 10 * seq
        bridge.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 4, 5)))
    bridge.on_frame(value_frame(header("v", 0, 0), np.zeros((10, 1))))
    batch = bridge.batch()
    assert batch is not None
    s = batch["probes"]["s"]
    assert s["overflow"] == 2
    assert s["cov"] == [[20, 50]]  # the 3 newest frames
    assert batch["probes"]["v"]["overflow"] == 0
    bridge.on_frame(spike_frame(header("s", 5, 50), regular_spikes(50, 10, 4, 5)))
    again = bridge.batch()
    assert again is not None
    assert again["probes"]["s"]["overflow"] == 0  # counted per batch
