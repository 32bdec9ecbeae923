"""The service against the machine's floor, and where input-to-output time goes.

One session, on one private mosquitto (``set_tcp_nodelay true``), with ``--neighbours N``
CPU-bound processes running beside everything for the whole session. Each run measures,
in an order that rotates from run to run (so slow drifts of a shared machine hit all three
alike):

* **floor**: an empty paced tick, the service's own ``Pacer`` on ``SystemClock`` with the
  service's defaults (1 ms, ``catch-up``, 0.2 ms spin and a 1 ns timer slack, GC frozen,
  0.5 ms switch interval, the tick thread's 0.1 ms scheduling slice; ``--floor-slice 0``:
  the kernel's default; ``--floor-spin``: another spin),
  waiting for each deadline as the service's compiled tick does (``sleep_until`` in the C
  extension, without the GIL; ``--python-floor``: the pacer's Python ``wait``), in a fresh
  process doing nothing else. Whatever is late here is the machine's doing.
* **broker**: the broker's own publish -> subscribe time: this process publishes a small
  message at 50 Hz to a topic it subscribes to, on the same client setup the service probe
  uses, and times the round trip. From its samples, the floor of input-to-output for any
  service paced in 1 ms ticks: a hop in, a wait for the next tick (uniform over 0-1 ms)
  and a hop out, drawn independently (Monte Carlo); and without the wait, for a service
  that starts the tick an input arrives for at once (``serve``'s default).
* **service**: ``spikestream serve`` on the seed network, default flags plus
  ``--ticks-per-frame 1`` (five probes at 1000 frames/s each, all taken by
  ``mosquitto_sub``; ``--subscriber python``: by an aiomqtt client decoding each frame)
  and the debug ``--trace-latency``; this process publishes a distinct input value at
  50 Hz, each at a random phase of the 1 ms tick (as a sensor's), and times it until the
  first ``u`` frame that carries it.

Lateness of floor and service is read the same way: the pacer's own 10 s window
(``stats.window_10s`` for the service, ``Pacer.recent()`` for the floor) taken every 10 s
after a 2 s warm-up, so both cover the same kind of span. Late share (> 1 ms and
> 0.25 ms) is summed over the windows (exact counts); p99 is the worst window's. The
service's rows also give its tick's own work p99 (``work_p99_ms`` of the same windows),
which tells a tick that started late from one whose work ran long.

Input-to-output time is split with the service's trace (``spikestream.runtime.trace``):

| Leg | From | To |
|---|---|---|
| broker hop in | this process publishes | the service decoded it (I/O thread) |
| (of which: to the handler) | this process publishes | the MQTT client calls the handler |
| (of which: decoding) | the handler called | the value stored in its slot |
| waiting for the tick | decoded | the tick thread applied it (a tick starts) |
| compute | applied | the tick's frame is complete (frame ``wall``) |
| I/O queueing | frame complete | the I/O thread takes it from the probe queue |
| (of which: wake-up and collect) | frame complete | the I/O thread takes the tick's first frame |
| (of that: the wake-up) | frame complete | the I/O thread's pump begins |
| (of that: the collect) | the pump begins | the tick's first frame taken |
| (of which: frames before it) | the tick's first frame taken | this frame taken |
| encode + hand-off | taken | handed to the MQTT client |
| broker hop out | handed | this process received the frame |

Prints one line per run and a table of medians over runs; ``--json`` writes everything.

Usage: ``.venv/bin/python bench/floor.py [--duration 20] [--runs 3] [--neighbours 0]
[--serve-args '...'] [--json bench/results/floor.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realtime import COUNTER, NODELAY, SEED, Broker, free_port
from spikestream.runtime.hostcpu import CpuTimes, read_cpu_times
from spikestream.serving.settings import ServeSettings
from spikestream_client.codec import ValueFrame, decode_frame, decode_input, encode_input

WARMUP = 2.0
WINDOW = 10.0
SERVICE_SLICE = float(ServeSettings.model_fields["tick_slice"].default)  # seconds
SERVICE_SPIN = float(ServeSettings.model_fields["spin"].default)  # seconds
SERVICE_BUSY_SPIN = float(ServeSettings.model_fields["busy_spin"].default)  # seconds
RATE = 50.0  # probe messages per second
LEGS = (
    "hop_in",
    "hop_in_client",
    "hop_in_decode",
    "echo",
    "wait_tick",
    "compute",
    "queue",
    "queue_wake",
    "queue_wakeup",
    "queue_collect",
    "queue_behind",
    "encode",
    "hop_out",
)
LEG_NAMES = {
    "hop_in": "broker hop in (publish -> service decoded it)",
    "hop_in_client": "  of which: broker and MQTT client (-> the service's handler called)",
    "hop_in_decode": "  of which: decoding and the slot (handler -> value stored)",
    "wait_tick": "waiting for the tick (decoded -> applied)",
    "compute": "compute (applied -> frame complete)",
    "queue": "I/O-thread queueing (frame complete -> taken)",
    "queue_wake": "  of which: wake-up and collect (-> the tick's first frame taken)",
    "queue_wakeup": "    of that: the wake-up (-> the I/O thread's pump began)",
    "queue_collect": "    of that: the collect (pump began -> first frame taken)",
    "queue_behind": "  of which: the tick's frames sent before this one",
    "encode": "encode + hand-off to the MQTT client",
    "hop_out": "broker hop out (handed -> received)",
    "echo": "(the same input, delivered by the broker to this process)",
}


# ------------------------------------------------------------------------------ floor


def floor_child(
    duration: float,
    python_wait: bool,
    tick_slice: float,
    spin: float = SERVICE_SPIN,
    busy_spin: float = SERVICE_BUSY_SPIN,
) -> dict[str, Any]:
    """Empty ticks on the service's pacer for WARMUP + ``duration`` s, the thread holding
    a scheduling slice of ``tick_slice`` s (0: the kernel's default), a timer slack of
    1 ns and spinning ``spin`` s before each deadline, or ``busy_spin`` s while it is kept
    waiting for a CPU (the service's adaptation, ``SpinAdapter``), as the service's tick
    thread does; one row per window."""
    from spikestream.runtime.clock import SystemClock
    from spikestream.runtime.native_pacing import SpinAdapter
    from spikestream.runtime.pacer import Pacer
    from spikestream.runtime.priority import request_slice, request_timer_slack
    from spikestream.sim.native import extension

    granted = request_slice(tick_slice)
    request_timer_slack(1)

    ext = extension()
    if ext is None and not python_wait:
        raise SystemExit("the C extension is not built: pass --python-floor")

    sys.setswitchinterval(0.0005)
    gc.collect()
    gc.freeze()
    pacer = Pacer(0.001, SystemClock(spin=spin), policy="catch-up")
    adapt = None if python_wait else SpinAdapter(spin, busy_spin)
    pacer.start()
    clock = pacer.clock
    t0 = clock.now()
    windows = []
    nxt = t0 + WARMUP + WINDOW
    end = t0 + WARMUP + duration + 0.15  # the last window's last bucket has ended
    host: CpuTimes | None = None  # the host's CPU times when the current window began
    while True:
        if python_wait:
            tick = pacer.wait()
        else:
            tick = pacer.release(ext.sleep_until(pacer.due().deadline, spin))
            if adapt is not None:
                spin = adapt()
        if host is None and tick.start >= nxt - WINDOW:
            host = read_cpu_times()
        if tick.start >= nxt:
            now = read_cpu_times()
            assert host is not None
            windows.append(window_row(pacer.recent()[1]) | {"steal_pct": steal_pct(host, now)})
            host = now
            nxt += WINDOW
            if nxt > end:
                break
    spells = 0 if adapt is None else adapt.spells
    return {"windows": windows, "slice": granted, "contended_spells": spells}


def steal_pct(before: CpuTimes, after: CpuTimes) -> float:
    """The share of all the host's CPU time the hypervisor stole between two readings, %."""
    total = after.total - before.total
    return 100.0 * (after.steal - before.steal) / total if total > 0 else math.nan


def window_row(w: Any) -> dict[str, float]:
    lat = w.lateness
    return {
        "ticks": lat.count,
        "over_250us": lat.over_threshold(0.00025),
        "over_1ms": lat.over_threshold(0.001),
        "p99_ms": lat.p99 * 1e3,
        "max_ms": lat.max * 1e3,
        "rtf": w.realtime_factor_actual,
    }


def scrape_window(port: int) -> dict[str, float]:
    """The same row from a service's 10 s window gauges on ``/metrics`` (read over HTTP,
    not the stats topic: a congested broker can hold stats messages back for seconds)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    got: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("spikestream_contended_spells_total", "spikestream_contended_ticks")):
            got[line.split("{")[0]] = float(line.rsplit(" ", 1)[1])
        if line.startswith("spikestream_window_") and 'window="10s"' in line:
            name, value = line.rsplit(" ", 1)
            got[name.split("{")[0] + ("_q99" if 'quantile="0.99"' in name else "")] = float(value)
            if 'threshold="' in name:
                got["ratio_" + name.split('threshold="')[1].split('"')[0]] = float(value)
    ticks = got["spikestream_window_ticks"]
    return {
        "ticks": ticks,
        "over_250us": round(got["ratio_0.00025"] * ticks),
        "over_1ms": round(got["ratio_0.001"] * ticks),
        "p99_ms": got["spikestream_window_tick_lateness_seconds_q99"] * 1e3,
        "max_ms": got["spikestream_window_tick_lateness_max_seconds"] * 1e3,
        "rtf": got["spikestream_window_realtime_factor_actual"],
        "work_p99_ms": got["spikestream_window_tick_work_seconds_q99"] * 1e3,
        # The host's steal over the service's own 10 s window (NaN where unknown).
        "steal_pct": got.get("spikestream_window_cpu_steal_ratio", math.nan) * 100.0,
        # Since the service started (cumulative counters): the spin's adaptation.
        "contended_spells": got.get("spikestream_contended_spells_total", math.nan),
        "contended_ticks": got.get("spikestream_contended_ticks_total", math.nan),
    }


def _mean(values: list[float]) -> float:
    known = [v for v in values if v == v]
    return statistics.fmean(known) if known else math.nan


def summarize(windows: list[dict[str, float]]) -> dict[str, float]:
    ticks = sum(w["ticks"] for w in windows)
    return {
        "windows": len(windows),
        "ticks": ticks,
        "late_1ms_pct": 100.0 * sum(w["over_1ms"] for w in windows) / max(ticks, 1),
        "late_250us_pct": 100.0 * sum(w["over_250us"] for w in windows) / max(ticks, 1),
        "p99_ms": max((w["p99_ms"] for w in windows), default=math.nan),
        "max_ms": max((w["max_ms"] for w in windows), default=math.nan),
        # The host's steal, the mean of the windows' (each covers 10 s).
        "steal_pct": _mean([w.get("steal_pct", math.nan) for w in windows]),
        # The service's own work per tick (the floor has none to speak of).
        "work_p99_ms": max((w.get("work_p99_ms", math.nan) for w in windows), default=math.nan),
        # The service's adaptation, cumulative: the last window's count (the floor counts
        # its own spells, as run_floor reports).
        "contended_spells": windows[-1].get("contended_spells", math.nan) if windows else math.nan,
        "contended_ticks": windows[-1].get("contended_ticks", math.nan) if windows else math.nan,
    }


def served_value(serve_args: list[str], flag: str, default: float) -> float:
    """The value of ``flag`` (a float) a service run with ``serve_args`` uses: its last
    ``flag``, else ``default``."""
    value = default
    for k, arg in enumerate(serve_args):
        if arg == flag and k + 1 < len(serve_args):
            value = float(serve_args[k + 1])
        elif arg.startswith(flag + "="):
            value = float(arg.partition("=")[2])
    return value


def run_floor(
    duration: float,
    python_wait: bool,
    tick_slice: float = SERVICE_SLICE,
    spin: float = SERVICE_SPIN,
    busy_spin: float = SERVICE_BUSY_SPIN,
) -> dict[str, Any]:
    extra = ["--python-floor"] if python_wait else []
    extra += ["--floor-slice", repr(tick_slice), "--floor-spin", repr(spin)]
    extra += ["--floor-busy-spin", repr(busy_spin)]
    out = subprocess.run(
        [sys.executable, __file__, "--floor-child", "--duration", str(duration), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    windows = child["windows"]
    return summarize(windows) | {
        "raw": windows,
        "slice": child["slice"],
        "contended_spells": child["contended_spells"],
    }


# ----------------------------------------------------------------------------- broker


async def run_broker(port: int, duration: float) -> dict[str, Any]:
    """Publish -> subscribe round trip of a small message on one client, at RATE Hz."""
    sent: dict[float, float] = {}
    times: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as client:
        await client.subscribe("bench/echo")

        async def reader() -> None:
            async for msg in client.messages:
                now = time.time()
                value = float(np.frombuffer(msg.payload, np.float64)[0])  # type: ignore[arg-type]
                start = sent.pop(value, None)
                if start is not None:
                    times.append((now - start) * 1e3)

        task = asyncio.create_task(reader())
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < duration:
            k += 1
            await asyncio.sleep(max(0.0, start + k / RATE - time.monotonic()))
            value = float(k)
            sent[value] = time.time()
            await client.publish("bench/echo", np.array([value]).tobytes())
        await asyncio.sleep(0.5)
        task.cancel()
    # The floor of input-to-output for any service paced in 1 ms ticks behind this broker:
    # one broker hop in, the wait for the next tick (uniform over the tick, since inputs
    # arrive at random phases), one broker hop out; hops drawn from this run's samples.
    # A service that starts the tick an input arrives for at once (serve's default; not
    # with --tick-at-deadline) waits for no tick: its floor is the two hops alone.
    rng = np.random.default_rng(0)
    hops = np.asarray(times)
    two_hops = (
        rng.choice(hops, 200_000) + rng.choice(hops, 200_000) if hops.size else np.array([math.nan])
    )
    floor = two_hops + rng.uniform(0.0, 1.0, two_hops.size)
    return {
        "n": len(times),
        "p50_ms": pct(times, 50),
        "p99_ms": pct(times, 99),
        "io_floor_p50_ms": float(np.percentile(floor, 50)),
        "io_floor_p99_ms": float(np.percentile(floor, 99)),
        "two_hops_p50_ms": float(np.percentile(two_hops, 50)),
        "two_hops_p99_ms": float(np.percentile(two_hops, 99)),
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


# ---------------------------------------------------------------------------- service


async def run_service(
    port: int, duration: float, workdir: Path, extra: list[str], run: int, subscriber: str = "c"
) -> dict[str, Any]:
    trace_file = workdir / f"trace-{run}.npz"
    metrics_port = free_port()
    log = (workdir / f"serve-{run}.log").open("wb")
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "spikestream", "--log-format", "json", "serve", str(SEED)),
            *("--broker", f"mqtt://127.0.0.1:{port}", "--ticks-per-frame", "1"),
            *("--trace-latency", str(trace_file), "--metrics-port", str(metrics_port), *extra),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    if subscriber == "c":
        # mosquitto_sub takes every frame for a few percent of a core; the Python counter
        # (aiomqtt, decoding each frame) takes most of a core of this 2-core machine at
        # 5,000 frames/s, load that is the bench's, not the service's.
        counter = subprocess.Popen(
            [
                shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub",
                *("-h", "127.0.0.1", "-p", str(port), "-t", "spikestream/seed/out/#"),
            ],
            stdout=subprocess.DEVNULL,
        )
    else:
        counter = subprocess.Popen(
            [sys.executable, "-c", COUNTER, str(port), str(duration + WARMUP + 10.0)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert counter.stdout is not None
        counter.stdout.readline()  # "ready"
    sent: dict[float, float] = {}
    # value -> (published, received, frame wall, frame seq)
    seen: dict[float, tuple[float, float, float, int]] = {}
    # value -> when the broker delivered the same input message back to this process: the
    # broker's side of the hop in, apart from the service's receive path.
    echoed: dict[float, float] = {}
    windows: list[dict[str, float]] = []
    online = asyncio.Event()
    t_start = math.inf
    try:
        async with aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as client:
            for topic in ("status", "out/u", "in/u"):
                await client.subscribe(f"spikestream/seed/{topic}")

            async def scraper() -> None:
                for k in range(1, int(duration // WINDOW) + 1):
                    when = t_start + WARMUP + k * WINDOW
                    await asyncio.sleep(max(0.0, when - time.monotonic()))
                    windows.append(await asyncio.to_thread(scrape_window, metrics_port))

            async def reader() -> None:
                async for msg in client.messages:
                    now = time.time()
                    topic = str(msg.topic)
                    payload = msg.payload if isinstance(msg.payload, bytes) else b""
                    if topic.endswith("/in/u"):
                        echo = float(np.float32(decode_input(payload, 1).x[0]))
                        echoed.setdefault(echo, now)
                        continue
                    if topic.endswith("/status"):
                        if payload == b"online":
                            online.set()
                        continue
                    frame = decode_frame(payload)
                    if not isinstance(frame, ValueFrame):
                        continue
                    for value in np.unique(frame.data):
                        v = float(value)
                        if v in sent and v not in seen:
                            h = frame.header
                            seen[v] = (sent[v], now, h.wall, h.seq)

            task = asyncio.create_task(reader())
            await asyncio.wait_for(online.wait(), 30)
            t_start = time.monotonic()
            scraping = asyncio.create_task(scraper())
            await asyncio.sleep(WARMUP)
            loop = asyncio.get_running_loop()

            async def send(k: int) -> None:
                # A distinct float32-exact value per message, so the frame shows it.
                value = float(np.float32(0.5 + (k % 997) / 4096.0 * (1 if k % 2 else -1)))
                sent[value] = time.time()
                await client.publish("spikestream/seed/in/u", encode_input(np.array([value])))

            def timed(start: float) -> None:
                # Each input at a random phase of the service's 1 ms tick, as a sensor's
                # would be: a thread sleeps to start + k / RATE plus a uniform jitter of up
                # to one tick, then hands the publish to the loop. Timed by the loop itself,
                # inputs went out when the loop woke for the frame it receives after each
                # tick, all at one phase of the tick, so every input waited about as long
                # for its tick (0.7 ms in every run of one session), not a uniform 0-1 ms.
                rng = np.random.default_rng(1)
                k = 0
                while True:
                    k += 1
                    when = start + k / RATE + rng.uniform(0.0, 0.001)
                    if when - start >= duration:
                        return
                    time.sleep(max(0.0, when - time.monotonic()))
                    asyncio.run_coroutine_threadsafe(send(k), loop).result(timeout=10)

            await asyncio.to_thread(timed, time.monotonic())
            await scraping
            # The last inputs' frames: on a congested broker they trail by seconds. Wait
            # until none has arrived for 2 s (at most 30 s).
            quiet, count, give_up = time.monotonic(), len(seen), time.monotonic() + 30.0
            while time.monotonic() - quiet < 2.0 and time.monotonic() < give_up:
                await asyncio.sleep(0.1)
                if len(seen) != count:
                    quiet, count = time.monotonic(), len(seen)
            task.cancel()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(20)
        log.close()
        counter.send_signal(signal.SIGTERM)
        counter.wait(10)
    legs = breakdown(seen, echoed, trace_file)
    # ``sent`` minus ``n``: values overwritten in the input slot before a tick applied them
    # (or frames still in flight at the end); ``lost``: seen but missing from the trace.
    return summarize(windows) | {"raw": windows, "sent": len(sent)} | legs


def _columns(rows: np.ndarray, width: int) -> np.ndarray:
    """``rows`` with NaN columns added up to ``width``: a trace from a build that recorded
    fewer timestamps reads as those legs unknown."""
    missing = width - rows.shape[1]
    return np.pad(rows, ((0, 0), (0, missing)), constant_values=math.nan) if missing > 0 else rows


def breakdown(
    seen: dict[float, tuple[float, float, float, int]], echoed: dict[float, float], trace: Path
) -> dict[str, Any]:
    """Per input message: the legs of its trip (ms), joined with the service's trace."""
    with np.load(trace) as t:
        got_in = _columns(t["received"], 3)  # value, wall, handler's wall
        received = {float(r[0]): float(r[1]) for r in got_in}
        handled = {float(r[0]): float(r[2]) for r in got_in}
        applied: dict[float, float] = {}
        for v, w in t["applied"]:
            applied.setdefault(float(v), float(w))
        u = list(t["probes"]).index("u")
        rows_f = _columns(t["frames"], 5)  # probe, seq, taken, handed, pump began
        frames = {int(r[1]): (r[2], r[3], r[4]) for r in rows_f if int(r[0]) == u}
        # At one tick per frame every probe's frame of a tick has the same seq: the
        # tick's first frame taken marks when the I/O thread began on that tick.
        first: dict[int, float] = {}
        for r in rows_f:
            first[int(r[1])] = min(first.get(int(r[1]), math.inf), float(r[2]))
    rows = []
    for v, (pub, got, wall, seq) in seen.items():
        if v not in received or v not in applied or seq not in frames:
            continue
        taken, handed, began = frames[seq]
        rows.append(
            {
                "total": got - pub,
                "hop_in": received[v] - pub,
                "hop_in_client": handled[v] - pub,
                "hop_in_decode": received[v] - handled[v],
                "wait_tick": applied[v] - received[v],
                "compute": wall - applied[v],
                "queue": taken - wall,
                "queue_wake": first[seq] - wall,
                "queue_wakeup": began - wall,
                "queue_collect": first[seq] - began,
                "queue_behind": taken - first[seq],
                "encode": handed - taken,
                "hop_out": got - handed,
                "echo": echoed.get(v, math.nan) - pub,
            }
        )
    out: dict[str, Any] = {"n": len(rows), "lost": len(seen) - len(rows)}
    if not rows:
        return out
    total = np.array([r["total"] for r in rows]) * 1e3
    slow = total >= np.percentile(total, 99)
    for leg in ("total", *LEGS):
        ms = np.array([r[leg] for r in rows]) * 1e3
        if np.isnan(ms).all():
            continue
        # nan-aware: an echo can be missing (this process's own reader fell behind).
        out[f"{leg}_p50"] = float(np.nanpercentile(ms, 50))
        out[f"{leg}_p99"] = float(np.nanpercentile(ms, 99))
        out[f"{leg}_slow"] = float(np.nanmean(ms[slow]))  # what the slowest 1 % spent here
    return out


# ------------------------------------------------------------------------------- main


def fmt(x: float, digits: int = 3) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


async def session(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # In this session (and so, with the kernel's autogroups, in the service's scheduling
    # group) or each in a session of its own, as a program started from another terminal
    # is (a systemd unit gets its own cgroup likewise): the scheduler then shares the CPUs
    # between the groups first.
    neighbours = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], start_new_session=args.neighbours_apart
        )
        for _ in range(args.neighbours)
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            broker = Broker(workdir)
            try:
                for run in range(args.runs):
                    order = ["floor", "broker", "service"]
                    if args.compare_args is not None:
                        order.append("compare")
                    order = order[run % len(order) :] + order[: run % len(order)]
                    row: dict[str, Any] = {"run": run, "order": order}
                    for what in order:
                        if what == "floor":
                            row["floor"] = await asyncio.to_thread(
                                run_floor,
                                args.duration,
                                args.python_floor,
                                args.floor_slice,
                                args.floor_spin,
                                args.floor_busy_spin,
                            )
                        elif what == "broker":
                            row["broker"] = await run_broker(broker.port, args.duration)
                        elif what == "service":
                            row["service"] = await run_service(
                                broker.port,
                                args.duration,
                                workdir,
                                args.serve_args,
                                run,
                                args.subscriber,
                            )
                        else:
                            row["compare"] = await run_service(
                                broker.port,
                                args.duration,
                                workdir,
                                [*args.serve_args, *args.compare_args],
                                run,
                                args.subscriber,
                            )
                    rows.append(row)
                    f, b, s = row["floor"], row["broker"], row["service"]
                    print(
                        f"run {run} ({', '.join(order)}): late > 1 ms floor "
                        f"{fmt(f['late_1ms_pct'])} % / service {fmt(s['late_1ms_pct'])} %; "
                        f"lateness p99 floor {fmt(f['p99_ms'])} / service {fmt(s['p99_ms'])} ms; "
                        f"input->output p99 {fmt(s.get('total_p99', math.nan))} ms "
                        f"(n={s['n']} of {s['sent']}) vs broker p99 {fmt(b['p99_ms'])} ms; "
                        f"contended spells floor {f['contended_spells']} / service "
                        f"{fmt(s['contended_spells'], 0)} ({fmt(s['contended_ticks'], 0)} ticks)",
                        flush=True,
                    )
                    if "compare" in row:
                        c = row["compare"]
                        print(
                            f"  with {' '.join(args.compare_args)}: late > 1 ms "
                            f"{fmt(c['late_1ms_pct'])} %, p99 {fmt(c['p99_ms'])} ms, "
                            f"input->output p99 {fmt(c.get('total_p99', math.nan))} ms; "
                            f"contended spells {fmt(c['contended_spells'], 0)}",
                            flush=True,
                        )
            finally:
                broker.stop()
    finally:
        for proc in neighbours:
            proc.kill()
            proc.wait()
    return rows


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    def med(part: str, key: str) -> float:
        values = [r[part].get(key, math.nan) for r in rows]
        values = [v for v in values if v == v]
        return statistics.median(values) if values else math.nan

    def each(part: str, key: str) -> str:
        return ", ".join(fmt(r[part].get(key, math.nan)) for r in rows)

    flags = " ".join(args.serve_args) or "default flags"
    apart = " (each in its own session)" if args.neighbours_apart else ""
    print(
        f"\nseed network, --ticks-per-frame 1, {flags}; {args.runs} interleaved runs of "
        f"{args.duration:g} s; {args.neighbours} busy neighbour(s){apart}; {os.cpu_count()} cores; "
        f"the floor's scheduling slice: {rows[0]['floor'].get('slice')}\n"
    )
    compare = "compare" in rows[0]
    extra = f" | Service, {' '.join(args.compare_args)}" if compare else ""
    runs = " / compared" if compare else ""
    print(f"| Measure | Floor (empty tick) | Service{extra} | Each run (floor / service{runs}) |")
    print("|---|---|---|---|" + ("---|" if compare else ""))
    measures = [
        ("late_1ms_pct", "Ticks > 1 ms late (%)"),
        ("late_250us_pct", "Ticks > 0.25 ms late (%)"),
        ("p99_ms", "Tick lateness p99, worst 10 s window (ms)"),
        ("max_ms", "Tick lateness max (ms)"),
        ("work_p99_ms", "Tick work p99, worst 10 s window (ms)"),
        ("steal_pct", "Host steal, mean of the 10 s windows (% of all CPU time)"),
    ]
    if compare:
        measures.append(("total_p99", "Input-to-output p99 (ms)"))
    for key, name in measures:
        other = f" | {fmt(med('compare', key))}" if compare else ""
        also = f" / {each('compare', key)}" if compare else ""
        print(
            f"| {name} | {fmt(med('floor', key))} | {fmt(med('service', key))}{other} | "
            f"{each('floor', key)} / {each('service', key)}{also} |"
        )
    print("\n| Input-to-output leg | p50 (ms) | p99 (ms) | mean of the slowest 1 % (ms) |")
    print("|---|---|---|---|")
    for leg in LEGS:
        print(
            f"| {LEG_NAMES[leg]} | {fmt(med('service', f'{leg}_p50'))} | "
            f"{fmt(med('service', f'{leg}_p99'))} | {fmt(med('service', f'{leg}_slow'))} |"
        )
    print(
        f"| **total, input to output** | {fmt(med('service', 'total_p50'))} | "
        f"{fmt(med('service', 'total_p99'))} | {fmt(med('service', 'total_slow'))} |"
    )
    print(
        f"| broker's own publish -> subscribe | {fmt(med('broker', 'p50_ms'))} | "
        f"{fmt(med('broker', 'p99_ms'))} | - |"
    )
    print(
        f"| floor: broker hop + wait for a 1 ms tick + broker hop | "
        f"{fmt(med('broker', 'io_floor_p50_ms'))} | {fmt(med('broker', 'io_floor_p99_ms'))} | - |"
    )
    print(
        f"| floor without the wait: broker hop + broker hop (a tick started on input) | "
        f"{fmt(med('broker', 'two_hops_p50_ms'))} | {fmt(med('broker', 'two_hops_p99_ms'))} | - |"
    )
    print(
        f"\nInput-to-output p99 per run: {each('service', 'total_p99')} ms; broker p99 per run: "
        f"{each('broker', 'p99_ms')} ms; its floor per run: {each('broker', 'io_floor_p99_ms')} "
        f"ms; without the tick's wait: {each('broker', 'two_hops_p99_ms')} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds per part (20)")
    p.add_argument("--runs", type=int, default=3, help="interleaved runs (3)")
    p.add_argument("--neighbours", type=int, default=0, help="CPU-bound processes beside (0)")
    p.add_argument(
        "--neighbours-apart",
        action="store_true",
        help="start each neighbour in a session of its own (another autogroup), as a program "
        "started from another terminal is; default: in this session, beside the service",
    )
    p.add_argument("--serve-args", type=shlex.split, default=[], help="extra flags for serve")
    p.add_argument("--json", type=Path, default=None, help="write every row here")
    p.add_argument(
        "--python-floor",
        action="store_true",
        help="floor ticks wait in the pacer's Python wait (default: the C sleep_until, as "
        "the service's compiled tick)",
    )
    p.add_argument(
        "--compare-args",
        type=shlex.split,
        default=None,
        help="also run the service with these flags added in each run (a fourth part), "
        "e.g. '--tick-slice 0' against the default",
    )
    p.add_argument(
        "--compare-python-tick",
        action="store_true",
        help="the same as --compare-args=--python-tick (the interpreter runs each tick)",
    )
    p.add_argument(
        "--subscriber",
        choices=("c", "python"),
        default="c",
        help="what takes the five probes' frames: mosquitto_sub (c, default) or a Python "
        "aiomqtt client that decodes each frame (python, most of a core here)",
    )
    p.add_argument(
        "--floor-slice",
        type=float,
        default=None,
        help=f"the floor tick thread's scheduling slice in s (default: the service's, "
        f"--tick-slice in --serve-args or else {SERVICE_SLICE:g}; 0: the kernel's default)",
    )
    p.add_argument(
        "--floor-spin",
        type=float,
        default=None,
        help=f"the floor's spin before each deadline in s (default: the service's, --spin "
        f"in --serve-args or else {SERVICE_SPIN:g})",
    )
    p.add_argument(
        "--floor-busy-spin",
        type=float,
        default=None,
        help=f"the floor's spin while its thread is kept waiting for a CPU, in s (default: "
        f"the service's, --busy-spin in --serve-args or else {SERVICE_BUSY_SPIN:g}; equal to "
        f"--floor-spin: never adapt)",
    )
    p.add_argument("--floor-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_slice is None:
        args.floor_slice = served_value(args.serve_args, "--tick-slice", SERVICE_SLICE)
    if args.floor_spin is None:
        args.floor_spin = served_value(args.serve_args, "--spin", SERVICE_SPIN)
    if args.floor_busy_spin is None:
        args.floor_busy_spin = served_value(args.serve_args, "--busy-spin", SERVICE_BUSY_SPIN)
    if args.floor_child:
        floor = floor_child(
            args.duration,
            args.python_floor,
            args.floor_slice,
            args.floor_spin,
            args.floor_busy_spin,
        )
        print(json.dumps(floor))
        return
    if args.compare_python_tick:
        args.compare_args = [*(args.compare_args or []), "--python-tick"]
    if args.duration < WINDOW:
        p.error(f"--duration must be at least {WINDOW:g} s (one lateness window)")
    rows = asyncio.run(session(args))
    report(rows, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2, default=str
            )
        )


if __name__ == "__main__":
    main()
