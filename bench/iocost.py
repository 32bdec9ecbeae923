"""CPU the service spends per published frame, by thread, at 5 probes x 1000 frames/s.

One session on a private mosquitto (``set_tcp_nodelay true``). ``spikestream serve`` runs
the seed network with ``--ticks-per-frame 1`` (five probes, 1000 frames/s each), and a
C subscriber (``mosquitto_sub``, writing to /dev/null) takes every frame, so the broker
really delivers them while the subscriber's own cost stays small. After a warm-up, the
benchmark reads each thread's CPU time from ``/proc/<pid>/task/*/stat`` and the frame and
tick counters from ``/metrics`` at the start and end of a window, and reports:

* **I/O thread** (the process's main thread: event loop, input decoding, frame encoding,
  MQTT publishing): CPU microseconds per published frame and share of a core;
* **tick thread and the rest** (every other thread): CPU microseconds per tick;
* mosquitto's and the subscriber's share of a core, and the subscriber's CPU
  microseconds per frame (with ``--subscriber client``, also the share of the published
  frames it received, counted by the subscriber itself);
* the window's late-tick share (> 1 ms, > 0.25 ms), lateness p99 and real-time factor,
  and frames dropped.

``--subscriber client`` takes the frames with a Python process using the client library
instead (``SpikestreamClient.on_frame`` on every probe, each frame decoded), as a live
monitor or a control loop in Python does: its CPU per frame is what a user's own client
pays at this rate.

``--runs N`` repeats the whole session, alternating ``--serve-args`` with ``--against``
when that is given, so two builds or flag sets are compared side by side in one run.

Usage: ``.venv/bin/python bench/iocost.py [--duration 20] [--runs 2]
[--serve-args '...'] [--against '...'] [--subscriber c|client]
[--json bench/results/iocost.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from realtime import SEED, Broker, free_port

WARMUP = 3.0
TICKS = os.sysconf("SC_CLK_TCK")

# The Python subscriber: the client library, decoding every frame of every probe. On
# SIGTERM it prints how many frames it received, so delivery is checked, not assumed.
CLIENT = """
import asyncio, signal, sys
from spikestream_client import SpikestreamClient

async def main():
    count = [0]
    def on_frame(frame):
        count[0] += 1
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    async with SpikestreamClient(f"mqtt://127.0.0.1:{sys.argv[1]}") as client:
        client.on_frame("seed", None, on_frame)
        await done.wait()
    print(count[0], flush=True)

asyncio.run(main())
"""


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended between listing and reading
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metrics(port: int) -> dict[str, float]:
    """The counters and 10 s window gauges this benchmark reads from ``/metrics``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    got: dict[str, float] = {"frames": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("spikestream_frames_total{"):
            got["frames"] += float(value)
        elif name.startswith("spikestream_frames_dropped_total{"):
            got["dropped"] += float(value)
        elif name.startswith("spikestream_tick_lateness_seconds_count"):
            got["ticks"] = float(value)
        elif name.startswith("spikestream_tick_lateness_seconds_bucket"):
            le = name.split('le="')[1].split('"')[0]
            got[f"le_{le}"] = float(value)
    return got


def session(
    broker_port: int, duration: float, extra: list[str], workdir: Path, subscriber: str = "c"
) -> dict[str, Any]:
    metrics_port = free_port()
    log = (workdir / "serve.log").open("ab")
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "spikestream", "--log-format", "json", "serve", str(SEED)),
            *("--broker", f"mqtt://127.0.0.1:{broker_port}", "--ticks-per-frame", "1"),
            *("--metrics-port", str(metrics_port), *extra),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    sub = subprocess.Popen(
        [
            shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub",
            *("-h", "127.0.0.1", "-p", str(broker_port), "-t", "spikestream/seed/out/#"),
        ]
        if subscriber == "c"
        else [sys.executable, "-c", CLIENT, str(broker_port)],
        stdout=subprocess.DEVNULL if subscriber == "c" else subprocess.PIPE,
        text=True,
    )
    received = math.nan  # frames the Python subscriber received, of those published
    try:
        time.sleep(WARMUP)
        if serve.poll() is not None:
            raise RuntimeError(f"serve exited with {serve.returncode}; see {workdir}/serve.log")
        before = (time.monotonic(), thread_cpu(serve.pid), metrics(metrics_port))
        side_before = (process_cpu(sub.pid), process_cpu(BROKER_PID[0]))
        time.sleep(duration)
        after = (time.monotonic(), thread_cpu(serve.pid), metrics(metrics_port))
        side_after = (process_cpu(sub.pid), process_cpu(BROKER_PID[0]))
        if subscriber == "client":
            # Stop the subscriber first, then read how many frames were published in all.
            sub.terminate()
            out, _ = sub.communicate(timeout=15)
            received = 100.0 * int(out.split()[-1]) / metrics(metrics_port)["frames"]
    finally:
        serve.terminate()
        sub.terminate()
        serve.wait(10)
        sub.wait(10)
    wall = after[0] - before[0]
    cpu0, cpu1 = before[1], after[1]
    io = cpu1[serve.pid] - cpu0.get(serve.pid, 0.0)
    rest = sum(c - cpu0.get(t, 0.0) for t, c in cpu1.items() if t != serve.pid)
    m0, m1 = before[2], after[2]
    frames = m1["frames"] - m0["frames"]
    ticks = m1["ticks"] - m0["ticks"]

    def late_over(le: str) -> float:
        return 100.0 * (ticks - (m1[f"le_{le}"] - m0[f"le_{le}"])) / ticks

    return {
        "wall_s": wall,
        "frames_per_s": frames / wall,
        "dropped": m1["dropped"] - m0["dropped"],
        "io_us_per_frame": 1e6 * io / frames,
        "io_core": io / wall,
        "tick_us_per_tick": 1e6 * rest / ticks,
        "rest_core": rest / wall,
        "subscriber_core": (side_after[0] - side_before[0]) / wall,
        "subscriber_us_per_frame": 1e6 * (side_after[0] - side_before[0]) / frames,
        "subscriber_received_pct": received,
        "broker_core": (side_after[1] - side_before[1]) / wall,
        "late_1ms_pct": late_over("0.001"),
        "late_250us_pct": late_over("0.00025"),
        "rtf": ticks * 0.001 / wall,
    }


BROKER_PID = [0]

ROW = (
    "frames/s {frames_per_s:7.0f}  dropped {dropped:5.0f}  I/O {io_us_per_frame:6.1f} us/frame "
    "({io_core:4.0%} core)  tick+rest {tick_us_per_tick:5.1f} us/tick ({rest_core:4.0%})  "
    "broker {broker_core:4.0%}  subscriber {subscriber_core:4.0%} "
    "({subscriber_us_per_frame:5.1f} us/frame, received {subscriber_received_pct:5.1f} %)  "
    "late>1ms "
    "{late_1ms_pct:6.3f} %  >0.25ms {late_250us_pct:6.3f} %  RTF {rtf:.5f}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--runs", type=int, default=2, help="sessions per flag set")
    parser.add_argument("--serve-args", default="", help="extra flags for serve")
    parser.add_argument("--against", default=None, help="a second flag set, interleaved")
    parser.add_argument(
        "--subscriber",
        choices=("c", "client"),
        default="c",
        help="what takes the frames: mosquitto_sub (c, default) or a Python process "
        "using the client library, decoding each frame (client)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()
    sets = {"A": shlex.split(args.serve_args)}
    if args.against is not None:
        sets["B"] = shlex.split(args.against)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in sets}
    with tempfile.TemporaryDirectory(prefix="spikestream-iocost-") as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        BROKER_PID[0] = broker.proc.pid
        try:
            for run in range(args.runs):
                for key, extra in sets.items():
                    row = session(broker.port, args.duration, extra, workdir, args.subscriber)
                    rows[key].append(row)
                    flags = " ".join(extra) or "default flags"
                    print(f"run {run} {key} ({flags}): {ROW.format(**row)}", flush=True)
        finally:
            broker.stop()
    print()
    for key, extra in sets.items():
        med = {k: statistics.median(r[k] for r in rows[key]) for k in rows[key][0]}
        print(f"median {key} ({' '.join(extra) or 'default flags'}): {ROW.format(**med)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"sets": sets, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
