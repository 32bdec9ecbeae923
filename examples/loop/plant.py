"""A simulated 1-D point mass, controlled by a spiking network over MQTT.

The plant integrates ``dv/dt = gain * force`` and ``dx/dt = v`` in wall time at ``--rate``
Hz, publishes its state ``[x, v]`` on ``spikestream/loop/in/state`` and applies the latest
decoded ``force`` frame from ``spikestream/loop/out/force``. Exit status 0 means the
network brought the mass to rest near 0 (|x| and |v| below ``--tolerance`` over the last
second).

    .venv/bin/spikestream serve examples/loop/controller.toml &
    .venv/bin/python examples/loop/plant.py --broker mqtt://127.0.0.1:1883 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

from spikestream_client import Frame, SpikestreamClient, SpikestreamError, ValueFrame


async def run(args: argparse.Namespace) -> int:
    x, v = args.x0, 0.0
    force = 0.0
    frames = 0
    trace: list[tuple[float, float, float, float]] = []  # (t, x, v, force)

    def on_force(frame: Frame) -> None:
        # A callback, not a queue: the plant applies the newest force, not each one.
        nonlocal force, frames
        if isinstance(frame, ValueFrame) and frame.header.ticks > 0:
            force = float(frame.data[-1, 0])
            frames += 1

    async with SpikestreamClient(args.broker, role="plant") as client:
        client.on_frame(args.net, "force", on_force)
        dt = 1.0 / args.rate
        start = time.monotonic()
        k = 0
        while (now := time.monotonic() - start) < args.duration:
            applied = force if not args.open_loop else 0.0
            v += args.gain * applied * dt
            x += v * dt
            trace.append((now, x, v, applied))
            await client.publish_input(args.net, "state", [x, v])
            k += 1
            await asyncio.sleep(max(0.0, start + k * dt - time.monotonic()))
    arr = np.array(trace)
    last = arr[arr[:, 0] > args.duration - 1.0]
    settled = bool(
        np.all(np.abs(last[:, 1]) < args.tolerance) and np.all(np.abs(last[:, 2]) < args.tolerance)
    )
    summary = {
        "settled": settled,
        "x_end": float(arr[-1, 1]),
        "v_end": float(arr[-1, 2]),
        "max_abs_x_last_second": float(np.abs(last[:, 1]).max()),
        "force_frames": frames,
    }
    print(json.dumps(summary))
    if args.out is not None:
        np.savetxt(args.out, arr, delimiter=",", header="t,x,v,force", comments="")
    return 0 if settled else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    p.add_argument("--net", default="loop", help="network name (default: loop)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run (10)")
    p.add_argument("--rate", type=float, default=100.0, help="plant updates per second (100)")
    p.add_argument("--x0", type=float, default=0.7, help="initial position (0.7)")
    p.add_argument("--gain", type=float, default=2.0, help="acceleration per unit force (2)")
    p.add_argument("--tolerance", type=float, default=0.1, help="|x|, |v| to count as rest")
    p.add_argument("--open-loop", action="store_true", help="ignore the network (baseline)")
    p.add_argument("--out", type=Path, help="write the trajectory as CSV")
    args = p.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except KeyboardInterrupt:
        sys.exit(130)
    except SpikestreamError as err:  # no broker, refused credentials, a bad URL
        print(f"plant: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
