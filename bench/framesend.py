"""CPU per frame of the I/O thread's frame path, in process: the probes' copies into their
frames, then the frames' encoding and hand-off to a real mosquitto.

The seed network's engine (not ticking) with one tick per frame, five probes; a private
mosquitto (``set_tcp_nodelay true``) and a C subscriber (``mosquitto_sub`` to /dev/null)
taking every frame, so the broker really delivers them. Each step does what the service's
I/O thread does for one tick of the compiled path, without the tick itself:

* **record**: each probe's value copied into its frame, and the frame queued
  (``ProbeStream.record``, one call per probe and tick: the Python tick path's copy; the
  compiled path's collect now copies a run's rows into every probe's frames in one call,
  which ``bench/iocost.py`` measures in the whole service);
* **send**: ``FrameSender.send`` until the queues are empty: each frame taken, encoded,
  handed to ``MqttLink`` inside one ``write_batch``, and the batch written to the socket.

Steps run back to back (no pacing), with the event loop run every 20 steps so the link
reads its socket; a step's process CPU time is split between the two parts with
``time.process_time`` around each. Unpaced, caches stay warmer than in the service, where
the tick and the broker run between steps: the figures are lower than
``bench/iocost.py``'s CPU per frame of the whole service, and the way to compare two builds'
frame paths without the service's other costs, not to predict it.

Usage: ``.venv/bin/python bench/framesend.py [--seconds 2] [--reps 5] [--json out.json]``
(run it with another checkout's interpreter to measure that checkout's code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realtime import SEED, Broker
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.serving.bridges import Bridges
from spikestream.serving.frames_out import FrameSender
from spikestream.spec import load_network
from spikestream_client.codec import Topics
from spikestream_client.transport import MqttLink, parse_broker_url


async def measure(port: int, seconds: float, reps: int) -> list[dict[str, float]]:
    engine = Engine(build(load_network(SEED)), queue_capacity=64)
    streams = list(engine.streams.values())
    for stream in streams:
        stream.resize(1)
    values = [
        np.full(s.shape, 0.5, np.float32 if s.kind == "values" else np.bool_) for s in streams
    ]
    net = engine.model.name
    topics = Topics("spikestream", net)
    link = MqttLink(parse_broker_url(f"mqtt://127.0.0.1:{port}"), client_id="framesend")
    runner = asyncio.create_task(link.run())
    if not await link.wait_connected(10):
        raise RuntimeError("no connection to the bench's mosquitto")
    shapes = {n: (s.kind, s.shape) for n, s in engine.streams.items()}
    sender = FrameSender(
        engine,
        link,
        {name: topics.out(name) for name in engine.streams},
        qos=0,
        expiry=None,
        bridges=Bridges(link, topics, shapes, text_rate=None, ha_prefix=None, version="b"),
        trace=None,
        yield_gil=lambda: None,
        retry_later=lambda delay: None,
    )
    rows: list[dict[str, float]] = []
    tick = 0
    for rep in range(reps + 1):  # the first is a warm-up, not reported
        record_cpu = send_cpu = 0.0
        frames = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            for _ in range(20):
                c0 = time.process_time()
                for stream, value in zip(streams, values, strict=True):
                    stream.record(value, tick, (tick + 1) * 0.001, 0.0, 1.0e9)
                c1 = time.process_time()
                while sender.send():
                    pass
                c2 = time.process_time()
                record_cpu += c1 - c0
                send_cpu += c2 - c1
                frames += len(streams)
                tick += 1
            await asyncio.sleep(0)
            while not link.can_publish():
                await asyncio.sleep(0.0005)
        dropped = sum(s.dropped for s in streams)
        if rep:
            rows.append(
                {
                    "frames": frames,
                    "record_us_per_frame": 1e6 * record_cpu / frames,
                    "send_us_per_frame": 1e6 * send_cpu / frames,
                    "dropped": dropped,
                }
            )
    await link.stop()
    await runner
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per repetition (2)")
    p.add_argument("--reps", type=int, default=5, help="repetitions after a warm-up (5)")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        sub_bin = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
        sub = subprocess.Popen(
            [sub_bin, "-p", str(broker.port), "-t", "spikestream/#"],
            stdout=subprocess.DEVNULL,
        )
        try:
            rows = asyncio.run(measure(broker.port, args.seconds, args.reps))
        finally:
            sub.terminate()
            sub.wait(5)
            broker.stop()
    for row in rows:
        print(
            f"record {row['record_us_per_frame']:.2f} us/frame, "
            f"send {row['send_us_per_frame']:.2f} us/frame "
            f"({row['frames']:.0f} frames, dropped {row['dropped']:.0f})"
        )
    summary = {
        key: statistics.median(r[key] for r in rows)
        for key in ("record_us_per_frame", "send_us_per_frame")
    }
    print(
        f"median: record {summary['record_us_per_frame']:.2f}, "
        f"send {summary['send_us_per_frame']:.2f} us/frame"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "median": summary}, indent=1))


if __name__ == "__main__":
    main()
