"""Soak test: ``spikestream serve`` for a long time at 1 kHz with two monitors attached.

One private mosquitto (configured like ``deploy/mosquitto/mosquitto.conf``: TCP_NODELAY,
at most 1000 messages queued per client) on a free port; the service in its own process
on the seed network (1 ms ticks, every probe on ``out/#``); a feeder publishing a sine to
``in/u`` at 100 Hz; and two subscribers to ``spikestream/seed/out/#``:

* **fast**: an aiomqtt client that decodes every frame and checks each probe's ``seq``
  for gaps;
* **slow**: a raw-socket MQTT client in a thread that sleeps ``--slow-sleep`` seconds
  after every message, so its socket fills up and the broker has to queue and drop for
  it. It must cost the service nothing.

Reported (a markdown table on stdout, optionally JSON): the service's RSS at the start
(after warm-up) and the end (``/proc/<pid>/status``), its peak, and the broker's; the
overrun ratio (``overruns / ticks`` over the soak window, from the stats topic) and the
ticks more than 1 ms late (``late_over_1ms``); lateness percentiles; the real-time
factor; frames made, dropped by the service (``dropped``) and lost on the way to the
fast monitor (``seq`` gaps); what the slow monitor got.

This is a benchmark, not a test: it is not collected by pytest. Usage::

    python bench/soak.py                    # 10 minutes
    python bench/soak.py --duration 60 --json bench/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from spikestream_client.codec import decode_frame

ROOT = Path(__file__).parents[1]
SEED = ROOT / "examples" / "seed.toml"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
HOST = "127.0.0.1"
WARMUP = 5.0  # s before the soak window opens (JIT compilation, first connections)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


class Broker:
    """A private mosquitto on a free port with the limits of deploy/mosquitto."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "mosquitto.log"
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nset_tcp_nodelay true\n"
            "persistence false\nmax_queued_messages 1000\nmax_queued_bytes 16777216\n"
            f"log_dest file {self.log}\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


class SlowMonitor:
    """A raw MQTT 3.1.1 subscriber that reads one message, then sleeps ``delay`` s.

    Keepalive 0 (off), so the broker never disconnects it for being slow to talk: it
    only ever falls behind, which is the point.
    """

    def __init__(self, port: int, topic_filter: str, delay: float) -> None:
        self.port = port
        self.filter = topic_filter.encode()
        self.delay = delay
        self.received = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=5) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                cid = b"soak-slow-monitor"
                connect = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
                sock.sendall(b"\x10" + _varint(len(connect)) + connect)
                _recv_exact(sock, 4)  # CONNACK
                body = b"\x00\x01" + len(self.filter).to_bytes(2, "big") + self.filter + b"\x00"
                sock.sendall(b"\x82" + _varint(len(body)) + body)
                sock.settimeout(1.0)
                while not self._stop.is_set():
                    try:
                        header = _recv_exact(sock, 1)
                    except TimeoutError:
                        continue
                    length, mult = 0, 1
                    while True:
                        byte = _recv_exact(sock, 1)[0]
                        length += (byte & 0x7F) * mult
                        mult *= 128
                        if not byte & 0x80:
                            break
                    _recv_exact(sock, length)
                    if header[0] >> 4 == 3:  # PUBLISH
                        self.received += 1
                        time.sleep(self.delay)
        except OSError as err:
            self.error = str(err)


@dataclass
class FastMonitor:
    """Counts frames per probe and their ``seq`` gaps; keeps every stats message."""

    frames: dict[str, int] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)
    max_dropped: int = 0
    stats: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    latency_max: float = 0.0

    def on_frame(self, payload: bytes, arrived: float) -> None:
        frame = decode_frame(payload)
        h = frame.header
        probe = h.probe
        self.frames[probe] = self.frames.get(probe, 0) + 1
        last = self.last_seq.get(probe)
        if last is not None and h.seq != last + 1:
            self.gaps[probe] = self.gaps.get(probe, 0) + max(0, h.seq - last - 1)
        self.last_seq[probe] = h.seq
        self.max_dropped = max(self.max_dropped, h.dropped)
        self.latency_max = max(self.latency_max, arrived - h.wall)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; return the measurements."""
    with tempfile.TemporaryDirectory(prefix="spikestream-soak-") as tmp:
        work = Path(tmp)
        broker = Broker(work)
        log = (work / "serve.log").open("wb")
        service = subprocess.Popen(
            [
                sys.executable, "-m", "spikestream", "--log-format", "json", "serve",
                str(args.network), "--broker", f"mqtt://{HOST}:{broker.port}",
                "--ticks-per-frame", str(args.ticks_per_frame), "--stats-interval", "1",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=work,
        )  # fmt: skip
        slow = SlowMonitor(broker.port, "spikestream/seed/out/#", args.slow_sleep)
        fast = FastMonitor()
        try:
            async with (
                aiomqtt.Client(HOST, broker.port, socket_options=NODELAY) as sub,
                aiomqtt.Client(HOST, broker.port, socket_options=NODELAY) as feeder,
            ):
                await sub.subscribe("spikestream/seed/out/#")
                await sub.subscribe("spikestream/seed/stats")
                slow.start()

                async def read() -> None:
                    async for msg in sub.messages:
                        payload = msg.payload
                        assert isinstance(payload, bytes)
                        now = time.time()
                        if str(msg.topic).endswith("/stats"):
                            fast.stats.append((now, json.loads(payload)))
                        else:
                            fast.on_frame(payload, now)

                async def feed() -> None:
                    t0 = time.monotonic()
                    k = 0
                    while True:
                        k += 1
                        await asyncio.sleep(max(0.0, t0 + k / args.input_rate - time.monotonic()))
                        value = math.sin(2 * math.pi * 0.5 * k / args.input_rate)
                        await feeder.publish("spikestream/seed/in/u", f"{value:.5f}")

                reader = asyncio.create_task(read())
                feeding = asyncio.create_task(feed())
                await asyncio.sleep(WARMUP)
                if service.poll() is not None:
                    raise RuntimeError(f"serve exited: {(work / 'serve.log').read_text()}")
                start_stats = fast.stats[-1][1]
                start_frames = dict(fast.frames)
                start_gaps = sum(fast.gaps.values())
                rss = [(time.monotonic(), proc_status(service.pid, "VmRSS"))]
                broker_rss_start = proc_status(broker.proc.pid, "VmRSS")
                slow_start = slow.received
                began = time.monotonic()
                next_report = began + 60
                while time.monotonic() - began < args.duration:
                    await asyncio.sleep(min(10.0, args.duration - (time.monotonic() - began)))
                    rss.append((time.monotonic(), proc_status(service.pid, "VmRSS")))
                    if time.monotonic() >= next_report:
                        next_report += 60
                        s = fast.stats[-1][1]
                        print(
                            f"  {time.monotonic() - began:5.0f} s: tick {s['tick']}, RSS "
                            f"{rss[-1][1] / 1024:.1f} MiB, overruns {s['overruns']}, "
                            f"dropped {s['dropped']}",
                            file=sys.stderr,
                        )
                await asyncio.sleep(1.2)  # the stats message that covers the end
                end_stats = fast.stats[-1][1]
                peak = proc_status(service.pid, "VmHWM")
                broker_rss_end = proc_status(broker.proc.pid, "VmRSS")
                alive = service.poll() is None
                feeding.cancel()
                reader.cancel()
                for task in (feeding, reader):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            slow.stop()
            service.terminate()
            try:
                code = service.wait(15)
            except subprocess.TimeoutExpired:
                service.kill()
                code = service.wait()
            log.close()
            broker.stop()
    ticks = end_stats["tick"] - start_stats["tick"]
    slope = _slope([(t - rss[0][0], kib) for t, kib in rss])  # KiB/s
    made = sum(end_stats["frames"].values()) - sum(start_stats["frames"].values())
    got = sum(fast.frames.values()) - sum(start_frames.values())
    return {
        "duration_s": args.duration,
        "ticks": ticks,
        "realtime_factor_actual": end_stats["realtime_factor_actual"],
        "overruns": end_stats["overruns"] - start_stats["overruns"],
        "overrun_ratio": (end_stats["overruns"] - start_stats["overruns"]) / ticks,
        "late_over_1ms": end_stats["late_over_1ms"] - start_stats["late_over_1ms"],
        "late_over_1ms_ratio": (end_stats["late_over_1ms"] - start_stats["late_over_1ms"]) / ticks,
        "late_p50_ms": end_stats["late_p50_ms"],
        "late_p99_ms": end_stats["late_p99_ms"],
        "late_p999_ms": end_stats["late_p999_ms"],
        "late_max_ms": end_stats["late_max_ms"],
        "skipped_ticks": end_stats["skipped_ticks"] - start_stats["skipped_ticks"],
        "frames_made": made,
        "service_dropped": end_stats["dropped"] - start_stats["dropped"],
        "fast_received": got,
        "fast_seq_gaps": sum(fast.gaps.values()) - start_gaps,
        "fast_latency_max_ms": fast.latency_max * 1e3,
        "slow_received": slow.received - slow_start,
        "slow_error": slow.error,
        "rss_start_kib": rss[0][1],
        "rss_end_kib": rss[-1][1],
        "rss_peak_kib": peak,
        "rss_slope_kib_per_min": slope * 60,
        "broker_rss_start_kib": broker_rss_start,
        "broker_rss_end_kib": broker_rss_end,
        "service_alive_at_end": alive,
        "exit_code": code,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``points`` (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den


def table(r: dict[str, Any], args: argparse.Namespace) -> str:
    """The measurements as a markdown table."""
    mib = 1024.0
    rows = [
        ("Soak window", f"{r['duration_s']:.0f} s at 1 kHz ({r['ticks']} ticks), "
         f"{args.ticks_per_frame} ticks/frame, input at {args.input_rate:g} Hz"),
        ("Real-time factor (actual)", f"{r['realtime_factor_actual']}"),
        ("Overruns / ticks", f"{r['overruns']} / {r['ticks']} = {r['overrun_ratio']:.3%}"),
        ("Ticks > 1 ms late", f"{r['late_over_1ms']} = {r['late_over_1ms_ratio']:.3%}"),
        ("Skipped ticks", f"{r['skipped_ticks']}"),
        ("Lateness p50 / p99 / p99.9 / max (whole run)",
         f"{r['late_p50_ms']} / {r['late_p99_ms']} / {r['late_p999_ms']} / "
         f"{r['late_max_ms']} ms"),
        ("Frames made (5 probes)", f"{r['frames_made']}"),
        ("Frames dropped by the service", f"{r['service_dropped']}"),
        ("Fast monitor: frames received / seq gaps",
         f"{r['fast_received']} / {r['fast_seq_gaps']} "
         f"(worst delivery {r['fast_latency_max_ms']:.1f} ms)"),
        ("Slow monitor: frames received", f"{r['slow_received']} "
         f"({r['slow_received'] / max(1, r['frames_made']):.1%}; "
         f"sleeps {args.slow_sleep * 1e3:g} ms per message, the broker drops the rest)"),
        ("Service RSS start / end / peak", f"{r['rss_start_kib'] / mib:.1f} / "
         f"{r['rss_end_kib'] / mib:.1f} / {r['rss_peak_kib'] / mib:.1f} MiB"),
        ("Service RSS trend", f"{r['rss_slope_kib_per_min']:+.1f} KiB/min"),
        ("Broker RSS start / end", f"{r['broker_rss_start_kib'] / mib:.1f} / "
         f"{r['broker_rss_end_kib'] / mib:.1f} MiB"),
        ("Service alive at the end / exit code after SIGTERM",
         f"{r['service_alive_at_end']} / {r['exit_code']}"),
    ]  # fmt: skip
    lines = ["| Measure | Value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="soak seconds (600)")
    parser.add_argument("--network", type=Path, default=SEED, help="network file (seed)")
    parser.add_argument("--ticks-per-frame", type=int, default=10, help="(10)")
    parser.add_argument("--input-rate", type=float, default=100.0, help="feeder Hz (100)")
    parser.add_argument(
        "--slow-sleep", type=float, default=0.01, help="slow monitor's sleep per message (0.01 s)"
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    print(f"soak: {args.duration:g} s after {WARMUP:g} s of warm-up ...", file=sys.stderr)
    result = asyncio.run(soak(args))
    print(table(result, args))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
