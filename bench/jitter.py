"""The machine's floor: how late spikestream's pacer releases ticks when a tick does no
network work at all, or a fixed amount of busy work.

``serve``'s late ticks have two causes: the network's compute (a tick that overruns, or
leaves too little slack to catch up after a hiccup) and the machine (timer wake-up jitter,
the hypervisor descheduling the virtual CPU, other processes). This script measures the
second alone, with the pacer and clock of ``serve``'s Python tick path (``Pacer.wait`` on
``SystemClock``, ``catch-up`` policy, the same spin), so a capacity figure can be read
against it. That is how ``serve --python-tick`` waits, and how every tick waited before the
compiled tick: by default ``serve`` now waits inside the compiled call, with a 1 ns timer
slack and its scheduling slice, and ``bench/floor.py``'s empty tick waits that way, so it
is the floor to read the default service against:

* ``--work 0``: an empty tick. Whatever is late here is the machine's doing.
* ``--work W``: each tick busy-waits ``W`` ms (no memory traffic, no GIL release), the
  compute time of a given network, so stalls are amplified by the same small slack.
* ``--cpu-latency none,0``: without and with a 0 µs CPU wake-up latency request held by the
  measuring process, as ``serve --cpu-latency 0`` holds it (needs root).

Each configuration runs in a fresh process; with ``--runs N`` the whole set of
configurations runs N times, round-robin, so variants are compared side by side. Prints one
line per run and a median per configuration and, with ``--json``, writes the numbers.

Usage: ``python bench/jitter.py [--duration 60] [--work 0,0.65] [--rt-priority 0,50]
[--cpu-latency none,0] [--runs 3]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spikestream.runtime.clock import SystemClock
from spikestream.runtime.cpulatency import CpuLatencyRequest
from spikestream.runtime.pacer import Pacer


def run_one(
    duration: float, work_ms: float, rt_priority: int, cpu_latency: int | None
) -> dict[str, Any]:
    """Pace ``duration`` seconds of 1 ms ticks in this process; each tick spins ``work_ms``.

    With ``cpu_latency`` (µs) the process holds that wake-up latency limit meanwhile.
    """
    held: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    latency = "none"
    if cpu_latency is not None:
        request = CpuLatencyRequest(cpu_latency)
        latency = request.acquire()
        held = request
    with held:
        return _pace(duration, work_ms, rt_priority) | {"cpu_latency": latency}


def _pace(duration: float, work_ms: float, rt_priority: int) -> dict[str, Any]:
    priority = "normal"
    if rt_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
            priority = f"SCHED_FIFO {rt_priority}"
        except (OSError, AttributeError) as err:
            priority = f"normal ({err})"
    gc.collect()
    gc.freeze()
    clock = SystemClock()
    pacer = Pacer(0.001, clock, policy="catch-up")
    work = work_ms / 1000.0
    now = time.perf_counter
    ticks = int(duration * 1000)
    pacer.start()
    for _ in range(ticks):
        pacer.wait()
        end = now() + work
        while now() < end:
            pass
    stats = pacer.statistics()
    return {
        "work_ms": work_ms,
        "priority": priority,
        "ticks": stats.ticks,
        "late_over_1ms": stats.late(0.001),
        "late_fraction": stats.late(0.001) / max(stats.ticks, 1),
        "late_p99_ms": stats.lateness.p99 * 1e3,
        "late_max_ms": stats.lateness.max * 1e3,
        "realigns": stats.realigns,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds per configuration")
    p.add_argument("--work", default="0", help="comma-separated busy ms per tick (0)")
    p.add_argument(
        "--rt-priority", default="0", help="comma-separated SCHED_FIFO priorities (0 = normal)"
    )
    p.add_argument(
        "--cpu-latency",
        default="none",
        help="comma-separated CPU wake-up latency limits in µs to hold, 'none' for no request",
    )
    p.add_argument("--runs", type=int, default=1, help="round-robin passes over all configs")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:  # one configuration, in this fresh process; the row goes to stdout
        limit = None if args.cpu_latency == "none" else int(args.cpu_latency)
        row = run_one(args.duration, float(args.work), int(args.rt_priority), limit)
        print(json.dumps(row))
        return
    configs = list(
        itertools.product(
            [int(x) for x in args.rt_priority.split(",") if x],
            [x.strip() for x in args.cpu_latency.split(",") if x.strip()],
            [float(x) for x in args.work.split(",") if x],
        )
    )
    rows = []
    for run in range(args.runs):
        for prio, latency, work in configs:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--duration",
                    str(args.duration),
                    "--work",
                    str(work),
                    "--rt-priority",
                    str(prio),
                    "--cpu-latency",
                    latency,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row |= {"run": run, "config": [prio, latency, work]}
            rows.append(row)
            print(
                f"run {run}, work {work:g} ms/tick, {row['priority']}, cpu latency "
                f"{row['cpu_latency']}: {row['late_fraction'] * 100:.3f} % of {row['ticks']} "
                f"ticks > 1 ms late, p99 {row['late_p99_ms']:.3f} ms, "
                f"max {row['late_max_ms']:.2f} ms",
                flush=True,
            )
    print("\n| Work (ms) | Scheduling | CPU latency | Runs | > 1 ms late, each run | median |")
    print("|---|---|---|---|---|---|")
    for prio, latency, work in configs:
        mine = [r for r in rows if r["config"] == [prio, latency, work]]
        fractions = [r["late_fraction"] * 100 for r in mine]
        each = ", ".join(f"{f:.3f}" for f in fractions)
        median = statistics.median(fractions) if fractions else float("nan")
        print(
            f"| {work:g} | {mine[0]['priority'] if mine else '-'} | {latency} | {len(mine)} | "
            f"{each} % | {median:.3f} % |"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
