"""Two tick threads against one, in one process: why ``--tick-threads 2`` pays, and what
pinning the threads does without the broker and the I/O of ``serve``.

For decoded chains (``bench/capacity.py``'s network), two measurements:

1. **Stepping**, no pacing: the whole tick's program stepped over and over on one thread,
   then its two stages (:func:`spikestream.sim.stages.plan`) each stepped over and over on
   a thread of its own at the same time. Milliseconds per tick, best of ``--repeats``.
   The halves run concurrently on the same arrays without handing ticks over, so this is
   the work each core does, not a live tick (part 2 is).
2. **Paced**, the engine in runs of compiled ticks for ``--seconds`` each (no MQTT: a
   thread collects the frames as ``serve``'s I/O thread would): one thread, two threads,
   and two threads pinned to CPUs of their own, in turn, ``--rounds`` times. Reported per
   run: ticks more than 1 ms late, ticks per second against the schedule's, and the work
   p50 and p99 of the last 10 s (with two threads: first stage's start to second's end).

``bench/capacity.py --serve-args`` compares the same variants served, with the broker.

Usage: ``python bench/tickthreads.py [--pops 100,150] [--seconds 15] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import select
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import N, chain_dict
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.sim import Simulator
from spikestream.sim.native import extension, program_args
from spikestream.spec import parse_network


def stepping(pops: int, ticks: int, repeats: int) -> tuple[float, float, float]:
    """ms per tick: the whole program on one thread, then each stage on its own thread
    with both running at once (best of ``repeats`` each)."""
    ext = extension()
    assert ext is not None, "the C extension is not built"
    sim = Simulator(build(parse_network(chain_dict(pops))))
    stages = sim.two_stages([sim.inputs["u"]])
    whole = sim.native_program()
    assert stages is not None
    assert whole is not None
    first = program_args(stages.first, stages.table, stages.scalars, stages.counts)
    second = program_args(stages.second, stages.table, stages.scalars, stages.counts)
    sim.run(200)  # past the start-up transient

    def step(args: tuple[int, ...], out: list[float]) -> None:
        began = time.perf_counter()
        for _ in range(ticks):
            ext.run_program(*args, 0, 1)  # one tick per call, as live; no GIL inside
        out.append((time.perf_counter() - began) / ticks * 1e3)

    best = [float("inf")] * 3
    for _ in range(repeats):
        alone: list[float] = []
        step(whole, alone)
        halves: tuple[list[float], list[float]] = ([], [])
        threads = [
            threading.Thread(target=step, args=(args, out))
            for args, out in zip((first, second), halves, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = [
            min(b, x) for b, x in zip(best, (alone[0], halves[0][0], halves[1][0]), strict=True)
        ]
    return best[0], best[1], best[2]


def paced(pops: int, threads: int, pin: bool, seconds: float) -> dict[str, float]:
    """The engine paced in runs for ``seconds`` after 3 s of start-up."""
    engine = Engine(
        build(parse_network(chain_dict(pops))),
        queue_capacity=4000,
        runs=True,
        tick_threads=threads,
        pin_tick_threads=pin,
    )
    assert engine.tick_threads == threads
    fd = engine.wake_fd
    assert fd is not None
    stop = threading.Event()

    def collect() -> None:  # what serve's I/O thread does, without MQTT
        while not stop.is_set():
            select.select([fd], [], [], 0.02)
            engine.collect()
            for stream in engine.streams.values():
                while (buf := stream.take()) is not None:
                    stream.release(buf)

    io = threading.Thread(target=collect, daemon=True)
    io.start()
    engine.start()
    try:
        time.sleep(3.0)
        before = engine.statistics()
        began = time.monotonic()
        time.sleep(seconds)
        after = engine.statistics()
        elapsed = time.monotonic() - began
    finally:
        engine.stop()
        stop.set()
        io.join(5)
        engine.close()
    ticks = after.pacer.ticks - before.pacer.ticks
    late = after.pacer.lateness.over_threshold(0.001) - before.pacer.lateness.over_threshold(0.001)
    work = after.work[-1].lateness  # the last 10 s
    return {
        "late_pct": 100.0 * late / max(ticks, 1),
        "rate": ticks / elapsed / 1000.0,
        "work_p50_ms": work.p50 * 1e3,
        "work_p99_ms": work.p99 * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pops", default="100,150", help="chain lengths (comma list)")
    parser.add_argument("--ticks", type=int, default=1000, help="ticks per stepping run")
    parser.add_argument("--repeats", type=int, default=3, help="stepping runs (best kept)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per paced run")
    parser.add_argument("--rounds", type=int, default=2, help="paced rounds (round-robin)")
    args = parser.parse_args()
    pops = [int(p) for p in args.pops.split(",") if p]
    print("stepping (ms per tick): whole on one thread | first stage, second stage at once")
    for p in pops:
        whole, first, second = stepping(p, args.ticks, args.repeats)
        print(f"  {p * N:>7,} neurons: {whole:.3f} | {first:.3f}, {second:.3f}", flush=True)
    print("paced in one process (no broker): late > 1 ms, ticks/s per scheduled, work p50/p99")
    variants = [(1, False), (2, False), (2, True)]
    for r in range(args.rounds):
        for p in pops:
            for threads, pin in variants:
                row = paced(p, threads, pin, args.seconds)
                label = f"{threads} thread{'s' if threads > 1 else ''}{', pinned' if pin else ''}"
                print(
                    f"  round {r + 1}, {p * N:>7,} neurons, {label:<18} {row['late_pct']:6.2f} %, "
                    f"{row['rate']:.4f}, {row['work_p50_ms']:.3f} / {row['work_p99_ms']:.3f} ms",
                    flush=True,
                )


if __name__ == "__main__":
    main()
