"""How fast the monitor ingests frames: decode + aggregate + redraw, in process.

Five probes at one tick per frame (two 200-neuron spike probes, values of width 200, 100
and 1), as the bus delivers them at 5,000 frames/s, with a redraw every 500 frames (ten
redraws per simulated second). Prints the frames per second the monitor can take on this
machine and the share of real time that 5,000 frames/s would cost it. The live monitor
keeps up when that share is well below one core.

    python bench/monitor.py [--seconds 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from rich.console import Console

from spikestream_client.codec import FrameHeader, decode_frame, encode_spikes, encode_values
from spikestream_client.monitor.aggregate import MonitorModel
from spikestream_client.monitor.terminal import render


def header(probe: str, k: int) -> FrameHeader:
    """The header of tick ``k``'s one-tick frame of ``probe``."""
    t = (k + 1) * 0.001
    return FrameHeader(
        net="x", probe=probe, seq=k, tick=k, ticks=1, dt=0.001, t=t, wall=1.7e9 + t,
        late_max=0.0, dropped=0,
    )  # fmt: skip


def payloads(seconds: int, seed: int = 0) -> list[bytes]:
    """``seconds`` of frames for the five probes, interleaved tick by tick."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(1000 * seconds):
        for probe in ("a", "b"):
            spikes = rng.random((1, 200)) < 0.05
            out.append(encode_spikes(header(probe, k), spikes))
        for probe, width in (("fa", 200), ("fb", 100), ("u", 1)):
            values = rng.random((1, width))
            out.append(encode_values(header(probe, k), values))
    return out


def ingest(frames: list[bytes]) -> float:
    """Seconds to decode and aggregate ``frames`` with a redraw every 500."""
    model = MonitorModel("x")
    console = Console(width=180, file=io.StringIO(), color_system=None)
    started = time.perf_counter()
    for i, payload in enumerate(frames):
        model.on_frame(decode_frame(payload))
        if i % 500 == 499:
            console.print(render(model.snapshot()))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="simulated seconds of frames")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median shown)")
    args = parser.parse_args()
    frames = payloads(args.seconds)
    times = [ingest(frames) for _ in range(args.repeats)]
    med = statistics.median(times)
    rate = len(frames) / med
    print(
        f"{len(frames)} frames, {args.repeats} repeats: median {med:.3f} s, best {min(times):.3f} s"
    )
    print(f"ingest rate {rate:,.0f} frames/s; 5,000 frames/s costs {5000 / rate:.0%} of a core")


if __name__ == "__main__":
    main()
