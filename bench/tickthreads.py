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
3. **The floors** of one and two threads, in the same rounds: the same engine and loop
   with each stage's ops replaced by a busy wait
   (:meth:`TickLoop.as_floor <spikestream.runtime.native_tick.TickLoop.as_floor>`). Pacing,
   hand-over, copies and the collecting thread are the same; only the weights are not
   read. Two lengths: *hot*, each stage's back-to-back stepping time from part 1 (the
   arrays in the caches), and *cold*, its median time stepped once per 1 ms tick, alone,
   sleeping in between (what a paced tick finds: part of its arrays evicted). The cold
   floor's late ticks are the machine's, for a tick that long (a vCPU stolen or preempted
   while a tick was due); what the network's run is late beyond it is the network's (its
   work varying from tick to tick, two stages slowing each other down).

``bench/capacity.py --serve-args`` compares the same variants served, with the broker.

Usage: ``python bench/tickthreads.py [--pops 100,150] [--seconds 15] [--rounds 2]
[--variants 1,1f,2,2f,2p]``
"""

from __future__ import annotations

import argparse
import json
import select
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import N, chain_dict
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.sim import Simulator
from spikestream.sim.native import extension, program_args
from spikestream.spec import parse_network

#: The tick thread's default spin before each deadline (``serve --spin``), s.
SPIN = 0.0002


class Steps(NamedTuple):
    """ms per tick of the whole program and of each stage, stepped two ways."""

    whole: float  # back to back, one thread
    first: float  # back to back, both stages at once on two threads
    second: float
    paced_whole: float  # once per 1 ms tick, sleeping in between, one at a time (p50)
    paced_first: float
    paced_second: float

    def floor_ms(self, threads: int, kind: str) -> tuple[float, float]:
        """The stage times (ms) a floor busy-waits on ``threads`` tick threads: ``hot``,
        the back-to-back ones, ``cold``, the once-per-tick ones (one thread: the whole
        tick, then 0)."""
        hot = kind == "hot"
        whole = self.whole if hot else self.paced_whole
        halves = (self.first, self.second) if hot else (self.paced_first, self.paced_second)
        return (whole, 0.0) if threads == 1 else halves


def stepping(pops: int, ticks: int, repeats: int, weights: str | None = None) -> Steps:
    """The whole program on one thread, then each stage on its own thread with both
    running at once (best of ``repeats`` each); then each alone, once per 1 ms tick as a
    paced tick runs, sleeping in between (the median tick). Back to back, each core keeps
    its arrays in its caches; a paced tick finds part of them evicted (by whatever else
    runs on the host) and reads them again from memory."""
    ext = extension()
    assert ext is not None, "the C extension is not built"
    sim = Simulator(build(parse_network(chain_dict(pops, weights_dtype=weights))))
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

    def step_paced(args: tuple[int, ...]) -> float:
        took = []
        deadline = ext.now()
        for _ in range(ticks):
            deadline += 1e-3
            ext.sleep_until(deadline, SPIN)  # as the tick thread waits for its deadline
            began = ext.now()
            ext.run_program(*args, 0, 1)
            took.append(ext.now() - began)
        return statistics.median(took) * 1e3

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
    return Steps(*best, step_paced(whole), step_paced(first), step_paced(second))


def paced(
    pops: int,
    threads: int,
    pin: bool,
    seconds: float,
    floor: tuple[float, float] | None = None,
    weights: str | None = None,
) -> dict[str, float]:
    """The engine paced in runs for ``seconds`` after 3 s of start-up. ``floor``: each
    stage busy-waits this long (s; first, second) instead of running its ops
    (:meth:`TickLoop.as_floor`): the machine's floor for this much work per tick."""
    engine = Engine(
        build(parse_network(chain_dict(pops, weights_dtype=weights))),
        queue_capacity=4000,
        runs=True,
        tick_threads=threads,
        pin_tick_threads=pin,
    )
    assert engine.tick_threads == threads
    if floor is not None:
        loop = engine.tick_loop
        assert loop is not None
        loop.as_floor(*floor)
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
        taken_before = engine.loop_counts()[3]
        began = time.monotonic()
        time.sleep(seconds)
        after = engine.statistics()
        taken = engine.loop_counts()[3] - taken_before
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
        "takeovers": taken,
    }


#: Paced variants: name -> (tick threads, pinned, which floor: None, "hot" or "cold").
VARIANTS: dict[str, tuple[int, bool, str | None]] = {
    "1": (1, False, None),
    "1f": (1, False, "hot"),
    "1c": (1, False, "cold"),
    "2": (2, False, None),
    "2f": (2, False, "hot"),
    "2c": (2, False, "cold"),
    "2p": (2, True, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pops", default="100,150", help="chain lengths (comma list)")
    parser.add_argument("--ticks", type=int, default=1000, help="ticks per stepping run")
    parser.add_argument("--repeats", type=int, default=3, help="stepping runs (best kept)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per paced run")
    parser.add_argument("--rounds", type=int, default=2, help="paced rounds (round-robin)")
    parser.add_argument(
        "--variants",
        default="1,1c,2,2f,2c,2p",
        help="paced variants in each round, in order: 1 (one thread), 2 (two), 2p (two "
        "pinned); the floors of 1 and 2, where each stage busy-waits instead of stepping: "
        "1f and 2f as long as it steps back to back (hot caches), 1c and 2c as long as it "
        "steps once per tick (the median; part evicted); default: %(default)s",
    )
    parser.add_argument(
        "--weights",
        choices=("state", "float16"),
        default="state",
        help="how the chain stores its matrices: state (float32) or float16 "
        "(network.weights_dtype); default: %(default)s",
    )
    parser.add_argument("--json", type=Path, help="also write every paced row here")
    args = parser.parse_args()
    weights = None if args.weights == "state" else args.weights
    pops = [int(p) for p in args.pops.split(",") if p]
    wanted = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(wanted) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    print(
        "stepping (ms per tick): whole on one thread | first stage, second stage at once"
        " || the same, each alone once per 1 ms tick (median)"
    )
    steps = {}
    for p in pops:
        st = steps[p] = stepping(p, args.ticks, args.repeats, weights)
        print(
            f"  {p * N:>7,} neurons: {st.whole:.3f} | {st.first:.3f}, {st.second:.3f}"
            f" || {st.paced_whole:.3f} | {st.paced_first:.3f}, {st.paced_second:.3f}",
            flush=True,
        )
    print(
        "paced in one process (no broker): late > 1 ms, ticks/s per scheduled, work p50/p99"
        " (stages one tick thread ran for the other);"
        " a floor busy-waits instead of stepping: hot, the back-to-back times above; cold,"
        " the once-per-tick ones"
    )
    rows = []
    for r in range(args.rounds):
        for p in pops:
            st = steps[p]
            for name in wanted:
                threads, pin, floor_of = VARIANTS[name]
                stage_ms = None if floor_of is None else st.floor_ms(threads, floor_of)
                floor = None if stage_ms is None else (stage_ms[0] * 1e-3, stage_ms[1] * 1e-3)
                row = paced(p, threads, pin, args.seconds, floor, weights)
                rows.append(
                    {
                        "round": r,
                        "pops": p,
                        "variant": name,
                        "weights": args.weights,
                        "stage_ms": None if stage_ms is None else list(stage_ms),
                        **row,
                    }
                )
                label = f"{threads} thread{'s' if threads > 1 else ''}{', pinned' if pin else ''}"
                label += f", {floor_of} floor" if floor_of else ""
                print(
                    f"  round {r + 1}, {p * N:>7,} neurons, {label:<18} {row['late_pct']:6.2f} %, "
                    f"{row['rate']:.4f}, {row['work_p50_ms']:.3f} / {row['work_p99_ms']:.3f} ms"
                    f" ({row['takeovers']} stages taken over)",
                    flush=True,
                )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"stepping": {p: s._asdict() for p, s in steps.items()}, "paced": rows}, indent=2
            )
        )


if __name__ == "__main__":
    main()
