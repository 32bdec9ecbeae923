"""Capacity benchmark: chains of 1000-neuron, 16-D populations joined by decoded connections.

Two measurements, on the network the NEF issue names (float32, dt = 1 ms, each population
feeding the next through a factored identity connection, synapse 5 ms):

1. **Offline speed** against the Nengo reference simulator, side by side in one process:
   ticks/s of spikestream and of Nengo on the same chain (Nengo in float64, its only type),
   interleaved, best of ``--repeats``.
2. **Real-time capacity**: ``spikestream serve`` (a subprocess, against a private
   mosquitto) runs chains of increasing length for ``--duration`` seconds each; reported
   per length: ticks more than 1 ms late (from the service's own lateness histogram, via its
   stats topic), real-time factor and lateness p99. With ``--runs N`` every length and
   variant runs N times, round-robin. With ``--floor``, an empty paced tick
   (``bench/floor.py``'s floor: the service's pacer waiting as its compiled tick does)
   runs for the same duration before each serve run, and each row reports the floor's
   late share beside the service's. A run holds its chain when its real-time factor over
   the measured span is at least 0.9999 and its share of ticks more than 1 ms late is
   within 0.1 percentage points of the floor beside it (without ``--floor``: at most
   0.1 %); the capacity is the largest chain held in every run (and, reported too, in
   most runs and in at least one).

Usage: ``python bench/capacity.py [--offline-pops 10,30] [--serve-pops 40,60,80,100]
[--runs 3] [--duration 60] [--serve-args '--rt-priority 50' ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
from threadpoolctl import threadpool_limits

from spikestream.build import build
from spikestream.sim import Simulator
from spikestream.spec import parse_network

DIM = 16
N = 1000


def chain_dict(
    pops: int, dtype: str = "float32", weights_dtype: str | None = None
) -> dict[str, Any]:
    """The chain as a network-file mapping (``weights_dtype``: ``network.weights_dtype``)."""
    return {
        "network": {"name": "chain", "seed": 1, "dtype": dtype, "weights_dtype": weights_dtype},
        "populations": {f"p{i}": {"n": N, "dim": DIM} for i in range(pops)},
        "inputs": {"u": {"dim": DIM, "target": "p0", "default": [0.2] * DIM}},
        "connections": [
            {"pre": f"p{i}", "post": f"p{i + 1}", "function": "x", "synapse": 0.005}
            for i in range(pops - 1)
        ],
        "probes": {"out": {"target": f"p{pops - 1}", "kind": "decoded", "synapse": 0.01}},
    }


def chain_toml(pops: int, weights_dtype: str | None = None) -> str:
    weights = "" if weights_dtype is None else f'weights_dtype = "{weights_dtype}"\n'
    lines = [f'[network]\nname = "chain"\nseed = 1\ndtype = "float32"\n{weights}']
    for i in range(pops):
        lines.append(f"[populations.p{i}]\nn = {N}\ndim = {DIM}\n")
    lines.append(f'[inputs.u]\ndim = {DIM}\ntarget = "p0"\ndefault = {[0.2] * DIM}\n')
    for i in range(pops - 1):
        lines.append(
            f'[[connections]]\npre = "p{i}"\npost = "p{i + 1}"\nfunction = "x"\nsynapse = 0.005\n'
        )
    lines.append(f'[probes.out]\ntarget = "p{pops - 1}"\nkind = "decoded"\nsynapse = 0.01\n')
    return "\n".join(lines)


def spikestream_rate(pops: int, ticks: int) -> float:
    sim = Simulator(build(parse_network(chain_dict(pops))))
    sim.set_input("u", np.full(DIM, 0.2))
    sim.run(100)
    start = time.perf_counter()
    sim.run(ticks)
    return ticks / (time.perf_counter() - start)


def nengo_rate(pops: int, ticks: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nengo

        with nengo.Network(seed=1) as net:
            u = nengo.Node([0.2] * DIM)
            ens = [
                nengo.Ensemble(
                    N,
                    DIM,
                    neuron_type=nengo.LIF(tau_rc=0.02, tau_ref=0.002),
                    max_rates=nengo.dists.Uniform(200, 400),
                    intercepts=nengo.dists.Uniform(-1, 1),
                )
                for _ in range(pops)
            ]
            nengo.Connection(u, ens[0], synapse=None)
            for a, b in itertools.pairwise(ens):
                nengo.Connection(a, b, synapse=0.005)
            nengo.Probe(ens[-1], synapse=0.01)
        with nengo.Simulator(net, progress_bar=False, optimize=True) as sim:
            sim.run_steps(20)
            start = time.perf_counter()
            sim.run_steps(ticks)
            return ticks / (time.perf_counter() - start)


def offline(pop_counts: list[int], repeats: int) -> list[dict[str, float]]:
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for pops in pop_counts:
            ticks = max(200, 20000 // pops)
            ours, theirs = [], []
            for _ in range(repeats):  # interleaved, so both see the same machine load
                theirs.append(nengo_rate(pops, max(100, ticks // 4)))
                ours.append(spikestream_rate(pops, ticks))
            rows.append(
                {
                    "pops": pops,
                    "neurons": pops * N,
                    "nengo": max(theirs),
                    "spikestream": max(ours),
                    "ratio": max(ours) / max(theirs),
                }
            )
            print(
                f"offline {pops} pops: nengo {max(theirs):.0f} ticks/s, spikestream "
                f"{max(ours):.0f} ticks/s, ratio {max(ours) / max(theirs):.2f}",
                flush=True,
            )
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_once(
    pops: int,
    duration: float,
    port: int,
    workdir: Path,
    extra: list[str],
    weights_dtype: str | None = None,
) -> dict[str, Any]:
    net = workdir / f"chain{pops}-{weights_dtype}.toml"
    net.write_text(chain_toml(pops, weights_dtype))
    log = (workdir / f"serve{pops}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spikestream",
            "serve",
            str(net),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--stats-interval",
            "1",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    first: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    windows: list[float] = []  # each stats message's last-10-s real-time factor
    seconds: list[float] = []  # and its last-1-s share of ticks > 1 ms late (%)
    work: list[tuple[float, float]] = []  # and its last-10-s work p50 and p99 (ms)
    steal: list[float] = []  # and the host's steal over the last 10 s (% of all CPUs)
    received: list[float] = []  # when the first and each later stats message arrived
    try:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("spikestream/chain/stats")
            start = None
            async for msg in client.messages:
                stats = json.loads(msg.payload)  # type: ignore[arg-type]
                if first is None:
                    if stats["tick"] < 1500:  # skip start-up (building, warm-up)
                        continue
                    first, start = stats, time.monotonic()
                last = stats
                received.append(time.monotonic())
                second = stats.get("window_1s", {}).get("late_over_1ms_pct")
                if second is not None:
                    seconds.append(float(second))
                recent = stats.get("window_10s", {})
                w = recent.get("realtime_factor_actual")
                if w is not None and len(received) > 10:  # windows wholly after `first`
                    windows.append(float(w))
                    if recent.get("work_p99_ms") is not None:
                        work.append((float(recent["work_p50_ms"]), float(recent["work_p99_ms"])))
                    if recent.get("cpu_steal_pct") is not None:
                        steal.append(float(recent["cpu_steal_pct"]))
                assert start is not None
                if time.monotonic() - start >= duration:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert first is not None
    ticks = last["tick"] - first["tick"]
    late = last["late_over_1ms"] - first["late_over_1ms"]
    return {
        "pops": pops,
        "neurons": pops * N,
        "ticks": ticks,
        "late_over_1ms": late,
        "late_fraction": late / max(ticks, 1),
        "late_p99_ms": last["late_p99_ms"],
        "late_max_ms": last["late_max_ms"],
        "rf": last["realtime_factor_actual"],
        # Over the measured span only (start-up excluded): simulated over wall time
        # between the first and the last stats message, from the pacer's own simulated
        # and wall seconds; the stats' arrival times, used before, moved the figure by
        # about 1e-4 over 60 s. Then the lowest last-10-s factor the service reported.
        "rf_span": round(span_factor(first, last, received), 6),
        "rf_10s_min": min(windows, default=None),
        # Whether the late ticks came in a few episodes or spread over the run: the 1 s
        # windows with any, and the most late (%) in one (stats every second, so each
        # second is seen about once).
        "late_seconds": sum(s > 0 for s in seconds),
        "seconds": len(seconds),
        "late_1s_max_pct": max(seconds, default=None),
        # The tick's own work over the span: the median of the 10 s windows' p50, and
        # the worst 10 s window's p99 (ms; the service's window_10s).
        "work_p50_ms": statistics.median(p50 for p50, _ in work) if work else None,
        "work_p99_ms": max((p99 for _, p99 in work), default=None),
        # The spin's adaptation over the span: spells of CPU contention begun, and the
        # ticks that waited with --busy-spin.
        "contended_spells": last["contended_spells"] - first["contended_spells"],
        "contended_ticks": last["contended_ticks"] - first["contended_ticks"],
        # Stages one tick thread ran for the other, late to begin them (two tick threads:
        # a second stage the tick thread ran, a first stage the helper ran).
        "takeovers": last.get("takeovers", 0) - first.get("takeovers", 0),
        # Backlogs catch-up gave up on over the span (--max-catchup late ticks in a row),
        # and the schedule they dropped (ms): what keeps the RTF below 1 under catch-up.
        "realigns": last.get("realigns", 0) - first.get("realigns", 0),
        "behind_ms": round(last.get("behind_ms", 0.0) - first.get("behind_ms", 0.0), 3),
        "serve_args": variant_label(extra, weights_dtype),
        # Threads that stepped each tick (--tick-threads; 2: two stages).
        "tick_threads": last.get("tick_threads"),
        # The host's CPU time the hypervisor stole, as the service saw it: the median and
        # the highest of its 10 s windows over the span (% of all CPUs' time).
        "steal_pct_median": statistics.median(steal) if steal else None,
        "steal_pct_max": max(steal, default=None),
    }


def variant_label(extra: list[str], weights_dtype: str | None) -> str:
    """How a row names its variant: the serve flags, and float16 weights if used."""
    flags = " ".join(extra)
    if weights_dtype is None:
        return flags
    return f"{flags} [weights {weights_dtype}]".strip()


def floor_share(duration: float) -> float:
    """Percent of ticks > 1 ms late of an empty paced tick run for ``duration`` s, in a
    fresh process (``bench/floor.py``'s floor)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from floor import run_floor

    return float(run_floor(duration, False)["late_1ms_pct"])


def step_ms(pops: int, weights_dtype: str | None) -> float:
    """One stepping of the chain in ms: best of 3 x 500 ticks, one compiled call per tick,
    in this process with no service around it."""
    sim = Simulator(build(parse_network(chain_dict(pops, weights_dtype=weights_dtype))))
    sim.set_input("u", np.full(DIM, 0.2))
    sim.run(200)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(500):
            sim.step()
        best = min(best, (time.perf_counter() - start) / 500)
    return best * 1e3


def work_floor_share(duration: float, work_ms: float) -> float:
    """Percent of ticks > 1 ms late of a paced tick that busy-waits ``work_ms`` each tick
    (``bench/jitter.py``, a fresh process): the floor of a tick as long as the network's,
    which recovers from a stall as slowly, but reads no memory and runs no service."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "jitter.py"),
            "--child",
            "--duration",
            str(duration),
            "--work",
            f"{work_ms:.4f}",
            "--rt-priority",
            "0",
            "--cpu-latency",
            "none",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return 100.0 * float(json.loads(out.stdout.strip().splitlines()[-1])["late_fraction"])


def loop_floor(
    pops: int, weights_dtype: str | None, threads: int, duration: float
) -> dict[str, Any]:
    """The engine's own loop paced for ``duration`` s with each stage busy-waiting its
    median once-per-tick stepping time instead of stepping, on ``threads`` tick threads
    (``bench/tickthreads.py`` variant 1c or 2c, a fresh process): the floor of this chain's
    tick on this machine, without its weights' memory traffic, the broker or MQTT. Returns
    its late share (%) and the stage times it waited (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "floor.json"
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parent / "tickthreads.py"),
                "--pops",
                str(pops),
                "--weights",
                weights_dtype or "state",
                "--variants",
                f"{threads}c",
                "--rounds",
                "1",
                "--seconds",
                str(duration),
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"the loop floor failed (tickthreads.py):\n{done.stderr[-2000:]}")
        row = json.loads(out.read_text())["paced"][0]
    return {"late_pct": float(row["late_pct"]), "stage_ms": row["stage_ms"]}


async def realtime(
    pop_counts: list[int],
    duration: float,
    variants: list[list[str]],
    runs: int = 1,
    floor: bool = False,
    weights: list[str | None] | None = None,
    work_floor: bool = False,
    with_loop_floor: bool = False,
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        conf = workdir / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
        broker = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        try:
            # Round-robin: every round serves every size with every variant, so slow
            # drifts of the machine's load spread over all of them.
            for run in range(runs):
                for pops, w, extra in itertools.product(pop_counts, weights or [None], variants):
                    base = await asyncio.to_thread(floor_share, duration) if floor else None
                    cost = work = None
                    if work_floor:
                        cost = await asyncio.to_thread(step_ms, pops, w)
                        work = await asyncio.to_thread(work_floor_share, duration, cost)
                    row = await serve_once(pops, duration, port, workdir, extra, w)
                    row["run"] = run
                    row["floor_late_pct"] = base
                    row["step_ms"] = cost
                    row["work_floor_late_pct"] = work
                    looped = None
                    if with_loop_floor:
                        threads = int(row["tick_threads"] or 1)
                        looped = await asyncio.to_thread(loop_floor, pops, w, threads, duration)
                    row["loop_floor"] = looped
                    rows.append(row)
                    beside = "" if base is None else f" (floor beside it: {base:.3f} %)"
                    if work is not None:
                        beside += f" (a tick spinning its {cost:.3f} ms: {work:.3f} %)"
                    if looped is not None:
                        stages = " + ".join(f"{x:.3f}" for x in looped["stage_ms"] if x)
                        beside += (
                            f" (the loop busy-waiting its stages, {stages} ms: "
                            f"{looped['late_pct']:.3f} %)"
                        )
                    print(
                        f"serve {pops} pops ({pops * N} neurons) [{row['serve_args']}]: "
                        f"{row['late_fraction'] * 100:.3f} % ticks > 1 ms late{beside}, "
                        f"p99 {row['late_p99_ms']} ms, rf {row['rf']} since start, "
                        f"{row['rf_span']} over the span, lowest 10 s window {row['rf_10s_min']}, "
                        f"work p50 {row['work_p50_ms']} ms, worst 10 s work p99 "
                        f"{row['work_p99_ms']} ms, contended spells {row['contended_spells']} "
                        f"({row['contended_ticks']} ticks), tick threads {row['tick_threads']} "
                        f"({row['takeovers']} stages taken over), "
                        f"{row['realigns']} realigns ({row['behind_ms']} ms dropped), "
                        f"late ticks in {row['late_seconds']} of {row['seconds']} 1 s windows "
                        f"(most {row['late_1s_max_pct']} % in one), "
                        f"host steal (10 s windows) median {row['steal_pct_median']} %, "
                        f"max {row['steal_pct_max']} %",
                        flush=True,
                    )
        finally:
            broker.terminate()
            broker.wait(5)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--offline-pops", default="10,30", help="chain lengths for the Nengo comparison")
    p.add_argument("--serve-pops", default="40,60,80,100", help="chain lengths served live")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per live run (60)")
    p.add_argument("--repeats", type=int, default=2, help="offline repeats (best of)")
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="live runs per chain length and variant, round-robin (1); lateness on a shared "
        "VM varies from run to run more than between neighbouring sizes",
    )
    p.add_argument(
        "--serve-args",
        action="append",
        default=None,
        help="extra flags for serve, e.g. '--rt-priority 50'; repeat to compare variants "
        "side by side (each chain length runs once per variant)",
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="run an empty paced tick for --duration before each serve run (the floor)",
    )
    p.add_argument(
        "--work-floor",
        action="store_true",
        help="before each serve run, time one stepping of the chain and run a paced tick "
        "that busy-waits that long for --duration (bench/jitter.py): the floor of a tick "
        "as long as the network's",
    )
    p.add_argument(
        "--loop-floor",
        action="store_true",
        help="after each serve run, run the engine's own loop for --duration on as many "
        "tick threads as the service used, each stage busy-waiting its once-per-tick "
        "stepping time instead of stepping (bench/tickthreads.py): the floor of this "
        "chain's tick without its memory traffic, the broker or MQTT",
    )
    p.add_argument(
        "--weights",
        default="state",
        help="comma list of how the served chain stores its matrices: state (the state "
        "dtype, float32) and/or float16 (network.weights_dtype); each is served side by side",
    )
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "capacity.json")
    args = p.parse_args()
    weights: list[str | None] = [None if w == "state" else w for w in args.weights.split(",") if w]
    off = offline([int(x) for x in args.offline_pops.split(",") if x], args.repeats)
    variants = [shlex.split(v) for v in (args.serve_args or [""])]
    live = asyncio.run(
        realtime(
            [int(x) for x in args.serve_pops.split(",") if x],
            args.duration,
            variants,
            args.runs,
            args.floor,
            weights,
            args.work_floor,
            args.loop_floor,
        )
    )
    print(
        "\n| Chain | Neurons | Nengo ticks/s | spikestream ticks/s | Ratio |\n|---|---|---|---|---|"
    )
    for r in off:
        print(
            f"| {r['pops']} × 1000, d=16 | {r['neurons']:,} | {r['nengo']:.0f} | "
            f"{r['spikestream']:.0f} | {r['ratio']:.2f}× |"
        )
    print(
        "\n| Chain served live | serve flags | Neurons | Ticks | > 1 ms late | floor beside it "
        "| loop floor | p99 (ms) | max (ms) | RTF since start | RTF over the span "
        "| lowest 10 s RTF | work p50 / worst p99 (ms) |"
        "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in live:
        base = r.get("floor_late_pct")
        looped = r.get("loop_floor")
        loop_cell = "-" if looped is None else f"{looped['late_pct']:.3f} %"
        print(
            f"| {r['pops']} × 1000 | {r['serve_args'] or '-'} | {r['neurons']:,} | {r['ticks']} | "
            f"{r['late_fraction'] * 100:.3f} % | {'-' if base is None else f'{base:.3f} %'} | "
            f"{loop_cell} | "
            f"{r['late_p99_ms']} | {r['late_max_ms']} | {r['rf']} | {r['rf_span']} | "
            f"{r['rf_10s_min']} | {r['work_p50_ms']} / {r['work_p99_ms']} |"
        )
    print(
        "\n| Chain | serve flags | Runs | > 1 ms late, median | worst | Runs held |"
        "\n|---|---|---|---|---|---|"
    )
    verdicts = []
    for extra, w in itertools.product(variants, weights):
        flags = variant_label(extra, w)
        always, mostly, once = [], [], []
        for pops in sorted({r["pops"] for r in live}):
            rows = [r for r in live if r["pops"] == pops and r["serve_args"] == flags]
            mine = [r["late_fraction"] for r in rows]
            met = sum(held(r) for r in rows)
            print(
                f"| {pops} × 1000 | {flags or '-'} | {len(mine)} | "
                f"{float(np.median(mine)) * 100:.3f} % | {max(mine) * 100:.3f} % | {met} |"
            )
            if met == len(mine):
                always.append(pops * N)
            if met * 2 > len(mine):
                mostly.append(pops * N)
            if met:
                once.append(pops * N)
        none = "below the smallest chain tried"
        verdicts.append(
            f"real-time capacity [{flags or 'default flags'}] (RTF over the span ≥ 0.9999, "
            "> 1 ms late within 0.1 points of the floor): "
            f"in every run {max(always) if always else none}; "
            f"in most runs {max(mostly) if mostly else none}; "
            f"in at least one run {max(once) if once else none}"
        )
    print("\n" + "\n".join(verdicts))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"offline": off, "realtime": live}, indent=2))


def span_factor(first: dict[str, Any], last: dict[str, Any], received: list[float]) -> float:
    """Simulated over wall time between two stats messages, from the pacer's own
    ``simulated_s`` and ``elapsed_s``; from the ticks and the messages' arrival times
    where the service gives neither."""
    if "simulated_s" in first and "simulated_s" in last:
        simulated = last["simulated_s"] - first["simulated_s"]
        return float(simulated / (last["elapsed_s"] - first["elapsed_s"]))
    return (last["tick"] - first["tick"]) / ((received[-1] - received[0]) / 1e-3)


def held(row: dict[str, Any]) -> bool:
    """Whether a served run held its chain: real-time factor over the span >= 0.9999 and
    ticks > 1 ms late within 0.1 percentage points of the floor beside it (0.1 % without
    a floor)."""
    floor = row.get("floor_late_pct")
    allowed = 0.1 + (0.0 if floor is None else floor)  # percent
    return row["rf_span"] >= 0.9999 and row["late_fraction"] * 100 <= allowed + 1e-9


if __name__ == "__main__":
    main()
