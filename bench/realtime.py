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

Usage: ``python bench/realtime.py [--duration 60] [--json bench/results/realtime.json]
[--serve-args '--rt-priority 50']``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
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

from spikestream_client.codec import ValueFrame, decode_frame, encode_input

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


def scrape(port: int) -> dict[str, float]:
    """Cumulative tick-lateness histogram buckets (``le`` -> count) from ``/metrics``."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("spikestream_tick_lateness_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out[le] = float(line.rsplit(" ", 1)[1])
    return out


def window_fractions(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Fraction of the window's ticks later than each bucket edge."""
    total = after["+Inf"] - before["+Inf"]
    return {
        le: (total - (after[le] - before.get(le, 0.0))) / total for le in after if le != "+Inf"
    } | {"ticks": total}


COUNTER = """
import asyncio, json, sys, aiomqtt
from spikestream_client.codec import decode_frame
async def main(port, seconds):
    last, frames, gaps, dropped = {}, {}, 0, 0
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.subscribe("spikestream/seed/out/#")
        print("ready", flush=True)
        async def count():
            nonlocal gaps, dropped
            async for m in c.messages:
                h = decode_frame(m.payload).header
                frames[h.probe] = frames.get(h.probe, 0) + 1
                if h.probe in last and h.seq != last[h.probe] + 1:
                    gaps += h.seq - last[h.probe] - 1
                last[h.probe] = h.seq
                dropped = max(dropped, h.dropped)
        task = asyncio.create_task(count())
        await asyncio.sleep(seconds)
        task.cancel()
    print(json.dumps({"frames": frames, "gaps": gaps, "dropped": dropped}), flush=True)
asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
"""


@dataclass
class RunResult:
    frames: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    dropped: int = 0
    delivery_ms: list[float] = field(default_factory=list)
    input_ms: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    rf_frames: float = float("nan")
    late: dict[str, float] = field(default_factory=dict)  # window fractions above each edge
    counter: dict[str, Any] = field(default_factory=dict)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def one_run(
    port: int,
    tpf: int,
    duration: float,
    workdir: Path,
    probe_input: bool,
    extra: list[str],
    client_port: int | None = None,
) -> RunResult:
    """One measured run: the service on the broker at ``port``; this script (feeder and
    subscriber) and the counter on ``client_port`` (default: the same broker), e.g. another
    node of a cluster."""
    result = RunResult()
    client_port = port if client_port is None else client_port
    log = (workdir / f"serve-tpf{tpf}-{port}-{client_port}.log").open("wb")
    metrics_port = free_port()
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
            "--metrics-port",
            str(metrics_port),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    # A separate process counts every frame of every probe (seq gaps, drops), so that
    # decoding 5000 frames/s does not delay this process's latency measurements.
    counter = subprocess.Popen(
        [sys.executable, "-c", COUNTER, str(client_port), str(duration + 5.0)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert counter.stdout is not None
    counter.stdout.readline()  # "ready"
    last_seq: dict[str, int] = {}
    first_frame: dict[str, tuple[float, float]] = {}
    last_frame: dict[str, tuple[float, float]] = {}
    pending: dict[float, float] = {}  # input value -> publish time
    online = asyncio.Event()
    measuring = False
    try:
        async with aiomqtt.Client("127.0.0.1", client_port, socket_options=NODELAY) as client:
            # Status, stats and one probe here (u carries the input, a_spikes the timing);
            # the counter process sees all of them.
            # At one tick per frame this process takes only the u probe, so that its own
            # event loop adds as little as possible to the latencies it measures.
            probes = ("out/u",) if probe_input else ("out/u", "out/a_spikes")
            for topic in ("status", "stats", *probes):
                await client.subscribe(f"spikestream/seed/{topic}")

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
            await asyncio.sleep(2.0)  # past start-up: first connection, first frames
            before = await asyncio.to_thread(scrape, metrics_port)
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
            after = await asyncio.to_thread(scrape, metrics_port)
            result.late = window_fractions(before, after)
            await asyncio.sleep(1.5)  # last stats message
            measuring = False
            task.cancel()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(10)
        log.close()
        out, _ = counter.communicate(timeout=30)
        result.counter = json.loads(out.strip().splitlines()[-1])
    (t0, w0), (t1, w1) = first_frame["u"], last_frame["u"]
    result.rf_frames = (t1 - t0) / (w1 - w0)
    return result


async def main_async(duration: float, out: Path | None, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            a = await one_run(broker.port, 10, duration, workdir, False, extra)
            b = await one_run(broker.port, 1, duration, workdir, True, extra)
        finally:
            broker.stop()

    def late(r: RunResult, edge: str) -> str:
        return f"{r.late.get(edge, float('nan')) * 100:.3f} %"

    rows = [
        (
            "Real-time-factor error (frames t vs wall)",
            f"{abs(a.rf_frames - 1) * 100:.4f} %",
            "< 0.1 %",
        ),
        (
            "Ticks later than 0.25 ms / 1 ms (measured window)",
            f"{late(a, '0.00025')} / {late(a, '0.001')} of {a.late.get('ticks', 0):.0f}",
            "≤ 1 % (p99 ≤ 0.25 ms)",
        ),
        (
            "Tick lateness p50 / p99 / p99.9 / max since start (ms)",
            f"{a.stats.get('late_p50_ms')} / {a.stats.get('late_p99_ms')} / "
            f"{a.stats.get('late_p999_ms')} / {a.stats.get('late_max_ms')}",
            "—",
        ),
        (
            "Frame delivery p50 / p99 (ms), 10 ticks/frame",
            f"{pct(a.delivery_ms, 50):.3f} / {pct(a.delivery_ms, 99):.3f}",
            "p99 ≤ 3",
        ),
        (
            "10 ticks/frame: frames counted / seq gaps / dropped",
            f"{sum(a.counter['frames'].values())} / {a.counter['gaps']} / {a.counter['dropped']}",
            "—",
        ),
        (
            "1 tick/frame: frames counted / seq gaps / dropped (all 5 probes)",
            f"{sum(b.counter['frames'].values())} / {b.counter['gaps']} / {b.counter['dropped']}",
            "0 dropped",
        ),
        (
            "1 tick/frame: ticks later than 0.25 ms / 1 ms",
            f"{late(b, '0.00025')} / {late(b, '0.001')}",
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
    flags = " ".join(extra) or "default flags"
    print(f"\nseed network, dt = 1 ms, {duration:g} s per run, {os.cpu_count()} cores, {flags}\n")
    print("| Measure | Measured | Target |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "duration": duration,
                    "serve_args": extra,
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
    parser.add_argument(
        "--serve-args", default="", help="extra flags for serve, e.g. '--rt-priority 50'"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.duration, args.json, shlex.split(args.serve_args)))


if __name__ == "__main__":
    main()
