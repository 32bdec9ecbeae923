"""Real-time benchmark: ``spikestream serve`` on the seed network over a real mosquitto.

Two runs, each against a private mosquitto (``set_tcp_nodelay true``) on a free port, with
the service in its own process and this script as the feeder and subscriber:

A. ``--ticks-per-frame 10`` with a live sine input at 100 Hz, for DURATION seconds:
   real-time-factor error, tick lateness (the service's own histogram) and frame
   delivery latency (subscriber arrival time minus the frame's ``wall``, same clock).
B. ``--ticks-per-frame 1`` (1000 frames/s per probe, 5 probes), for DURATION seconds:
   frames dropped (``dropped`` in frames and seq gaps) and input-to-output latency: a
   distinct value is published every 50 ms and timed until the first ``u`` frame whose
   ticks used it arrives.

Usage: ``python bench/realtime.py [--duration 60] [--json bench/results/realtime.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

from spikestream.codec import ValueFrame, decode_frame, encode_input

ROOT = Path(__file__).parents[1]
SEED = ROOT / "examples" / "seed.toml"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A private mosquitto with TCP_NODELAY, as deploy/mosquitto configures it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            "persistence false\nmax_queued_messages 100000\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@dataclass
class RunResult:
    frames: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    dropped: int = 0
    delivery_ms: list[float] = field(default_factory=list)
    input_ms: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    rf_frames: float = float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def one_run(
    port: int, tpf: int, duration: float, workdir: Path, probe_input: bool
) -> RunResult:
    result = RunResult()
    log = (workdir / f"serve-tpf{tpf}.log").open("wb")
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spikestream",
            "--log-format",
            "json",
            "serve",
            str(SEED),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--ticks-per-frame",
            str(tpf),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    last_seq: dict[str, int] = {}
    first_frame: dict[str, tuple[float, float]] = {}
    last_frame: dict[str, tuple[float, float]] = {}
    pending: dict[float, float] = {}  # input value -> publish time
    online = asyncio.Event()
    measuring = False
    try:
        async with aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as client:
            await client.subscribe("spikestream/seed/#")

            async def reader() -> None:
                nonlocal measuring
                async for msg in client.messages:
                    now = time.time()
                    topic = str(msg.topic)
                    payload = msg.payload if isinstance(msg.payload, bytes) else b""
                    if topic.endswith("/status") and payload == b"online":
                        online.set()
                        continue
                    if topic.endswith("/stats"):
                        if measuring:
                            result.stats = json.loads(payload)
                        continue
                    if "/out/" not in topic or not measuring:
                        continue
                    frame = decode_frame(payload)
                    h = frame.header
                    result.frames[h.probe] = result.frames.get(h.probe, 0) + 1
                    prev = last_seq.get(h.probe)
                    if prev is not None and h.seq != prev + 1:
                        result.gaps += h.seq - prev - 1
                    last_seq[h.probe] = h.seq
                    result.dropped = max(result.dropped, h.dropped)
                    result.delivery_ms.append((now - h.wall) * 1e3)
                    first_frame.setdefault(h.probe, (h.t, h.wall))
                    last_frame[h.probe] = (h.t, h.wall)
                    if probe_input and h.probe == "u" and isinstance(frame, ValueFrame):
                        for value in np.unique(frame.data):
                            sent = pending.pop(float(value), None)
                            if sent is not None:
                                result.input_ms.append((now - sent) * 1e3)

            task = asyncio.create_task(reader())
            await asyncio.wait_for(online.wait(), 20)
            await asyncio.sleep(2.0)  # warm-up: first frames, caches, JIT-free but page faults
            measuring = True
            start = time.monotonic()
            k = 0
            rate = 20.0 if probe_input else 100.0
            while time.monotonic() - start < duration:
                k += 1
                deadline = start + k / rate
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                if probe_input:
                    # A distinct float32-exact value per message, so the frame shows it.
                    value = float(np.float32(0.5 + (k % 997) / 4096.0 * (1 if k % 2 else -1)))
                    pending[value] = time.time()
                else:
                    value = float(np.sin(2 * np.pi * 0.5 * (time.monotonic() - start)))
                await client.publish("spikestream/seed/in/u", encode_input(np.array([value])))
            await asyncio.sleep(1.5)  # last stats message
            measuring = False
            task.cancel()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(10)
        log.close()
    (t0, w0), (t1, w1) = first_frame["a_spikes"], last_frame["a_spikes"]
    result.rf_frames = (t1 - t0) / (w1 - w0)
    return result


async def main_async(duration: float, out: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            a = await one_run(broker.port, 10, duration, workdir, probe_input=False)
            b = await one_run(broker.port, 1, duration, workdir, probe_input=True)
        finally:
            broker.stop()
    rows = [
        (
            "Real-time-factor error (frames t vs wall)",
            f"{abs(a.rf_frames - 1) * 100:.4f} %",
            "< 0.1 %",
        ),
        (
            "Real-time-factor error (service stats)",
            f"{abs(a.stats.get('realtime_factor_actual', float('nan')) - 1) * 100:.4f} %",
            "< 0.1 %",
        ),
        (
            "Tick lateness p50 / p99 / p99.9 / max (ms)",
            f"{a.stats.get('late_p50_ms')} / {a.stats.get('late_p99_ms')} / "
            f"{a.stats.get('late_p999_ms')} / {a.stats.get('late_max_ms')}",
            "p99 ≤ 0.25",
        ),
        (
            "Frame delivery p50 / p99 (ms), 10 ticks/frame",
            f"{pct(a.delivery_ms, 50):.3f} / {pct(a.delivery_ms, 99):.3f}",
            "p99 ≤ 3",
        ),
        (
            "Frames received, 10 ticks/frame",
            f"{sum(a.frames.values())} (gaps {a.gaps}, dropped {a.dropped})",
            "—",
        ),
        ("1 tick/frame: frames received", f"{sum(b.frames.values())}", "—"),
        ("1 tick/frame: dropped / seq gaps", f"{b.dropped} / {b.gaps}", "0"),
        (
            "1 tick/frame: tick lateness p99 / max (ms)",
            f"{b.stats.get('late_p99_ms')} / {b.stats.get('late_max_ms')}",
            "—",
        ),
        (
            "1 tick/frame: frame delivery p50 / p99 (ms)",
            f"{pct(b.delivery_ms, 50):.3f} / {pct(b.delivery_ms, 99):.3f}",
            "—",
        ),
        (
            "Input-to-output latency p50 / p99 (ms)",
            f"{pct(b.input_ms, 50):.3f} / {pct(b.input_ms, 99):.3f} (n={len(b.input_ms)})",
            "p99 ≤ 3",
        ),
    ]
    print(f"\nseed network, dt = 1 ms, {duration:g} s per run, {os.cpu_count()} cores\n")
    print("| Measure | Measured | Target |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "duration": duration,
                    "rows": rows,
                    "stats_tpf10": a.stats,
                    "stats_tpf1": b.stats,
                },
                indent=2,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run (60)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "realtime.json")
    args = parser.parse_args()
    asyncio.run(main_async(args.duration, args.json))


if __name__ == "__main__":
    main()
