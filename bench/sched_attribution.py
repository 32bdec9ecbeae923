"""What held a thread off its CPU when it woke late: attribution from ``perf sched``.

Record a whole bench run with the kernel's scheduler tracepoints, then ask, for one
thread (the service's tick thread, or the floor's empty tick), about every wake-up that
waited at least ``--threshold`` ms for a CPU: what ran on its CPU meanwhile, and whether
the other CPU sat idle. Needs ``perf`` and root (the tracepoints)::

    perf sched record -o /tmp/run.data -- python bench/floor.py --runs 1 --duration 20
    perf sched timehist -i /tmp/run.data | awk '{print $3}' | sort | uniq -c | sort -rn
    python bench/sched_attribution.py /tmp/run.data 'python[5596/5592]'

The second command lists the threads by how often they switched: a tick thread wakes
1,000 times a second. ``perf`` itself runs during the run and is named in the answer
when it held the CPU; a CPU that stayed ``<idle>`` through the wait was woken late by the
host (a halted virtual CPU), which no scheduling setting inside the machine changes.

This measures the scheduling delay (wake-up to running) only: a timer that fired late
on an idle CPU delays the wake-up itself and does not show here.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys

#: One ``perf sched timehist`` line: time, [cpu], task, wait, scheduling delay, run time.
_LINE = re.compile(r"^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s*$")


def segments(data: str) -> list[tuple[float, float, int, str, float]]:
    """Every run of a task on a CPU: ``(start s, end s, cpu, task, delay before it ms)``."""
    out = subprocess.run(
        ["perf", "sched", "timehist", "-i", data], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        if m := _LINE.match(line):
            t, cpu, task, _wait, delay, run = m.groups()
            end = float(t)
            found.append((end - float(run) / 1e3, end, int(cpu), task.strip(), float(delay)))
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="a perf.data file written by `perf sched record`")
    p.add_argument("task", help="the thread as timehist names it, e.g. 'python[5596/5592]'")
    p.add_argument("--threshold", type=float, default=1.0, help="ms of delay to count (1)")
    args = p.parse_args()
    runs = segments(args.data)
    by_cpu: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)
    for start, end, cpu, task, _ in runs:
        by_cpu[cpu].append((start, end, re.sub(r"\[.*", "", task)))
    mine = [r for r in runs if r[3] == args.task]
    if not mine:
        print(f"no runs of {args.task!r} in {args.data}", file=sys.stderr)
        return 2
    late = [r for r in mine if r[4] >= args.threshold]
    print(f"{args.task}: {len(mine)} runs, {len(late)} after a delay >= {args.threshold} ms")
    held: collections.Counter[str] = collections.Counter()
    idle_elsewhere = 0
    for start, _, cpu, _, delay in late:
        w0 = start - delay / 1e3
        on: dict[tuple[int, str], float] = collections.defaultdict(float)
        for c, spans in by_cpu.items():
            for s0, s1, name in spans:
                if (overlap := min(s1, start) - max(s0, w0)) > 0:
                    on[c, name] += overlap * 1e3
        same = {n: round(ms, 2) for (c, n), ms in on.items() if c == cpu}
        other = {n: round(ms, 2) for (c, n), ms in on.items() if c != cpu}
        idle_elsewhere += other.get("<idle>", 0.0) > 0.3 * delay
        held.update(same)
        print(f"  {w0:.6f} cpu{cpu} waited {delay:.3f} ms; its cpu ran {same}; others {other}")
    print("on its CPU during those waits (ms):", dict(held.most_common(8)))
    print(f"waits while another CPU was idle for over 30 % of them: {idle_elsewhere}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
