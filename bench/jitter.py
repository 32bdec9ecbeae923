"""The machine's floor: how late spikestream's pacer releases ticks when a tick does no
network work at all, or a fixed amount of busy work.

``serve``'s late ticks have two causes: the network's compute (a tick that overruns, or
leaves too little slack to catch up after a hiccup) and the machine (timer wake-up jitter,
the hypervisor descheduling the virtual CPU, other processes). This script measures the
second alone, with the very pacer and clock ``serve`` uses (``Pacer`` on ``SystemClock``,
``catch-up`` policy, the same spin), so a capacity figure can be read against it:

* ``--work 0``: an empty tick. Whatever is late here is the machine's doing.
* ``--work W``: each tick busy-waits ``W`` ms (no memory traffic, no GIL release), the
  compute time of a given network, so stalls are amplified by the same small slack.

Each configuration runs in a fresh process. Prints one line per configuration and, with
``--json``, writes the numbers.

Usage: ``python bench/jitter.py [--duration 60] [--work 0,0.65] [--rt-priority 0,50]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spikestream.runtime.clock import SystemClock
from spikestream.runtime.pacer import Pacer


def run_one(duration: float, work_ms: float, rt_priority: int) -> dict[str, Any]:
    """Pace ``duration`` seconds of 1 ms ticks in this process; each tick spins ``work_ms``."""
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
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:  # one configuration, in this fresh process; the row goes to stdout
        row = run_one(args.duration, float(args.work), int(args.rt_priority))
        print(json.dumps(row))
        return
    rows = []
    for prio in [int(x) for x in args.rt_priority.split(",") if x]:
        for work in [float(x) for x in args.work.split(",") if x]:
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
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"work {work:g} ms/tick, {row['priority']}: {row['late_fraction'] * 100:.3f} % "
                f"of {row['ticks']} ticks > 1 ms late, p99 {row['late_p99_ms']:.3f} ms, "
                f"max {row['late_max_ms']:.2f} ms",
                flush=True,
            )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
