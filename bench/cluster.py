"""Scale-out benchmark: the real-time service through a three-node NATS cluster, side by side
with a single mosquitto, in one run on one machine.

Brokers: a private mosquitto (``set_tcp_nodelay true``) and three ``nats-server`` nodes
clustered on loopback with MQTT enabled (``tests/brokers.py``'s ``NatsCluster``). For each
of three paths the service (``spikestream serve`` on the seed network) publishes to the
first broker and this script (input feeder and subscriber) and a frame counter are on the
second:

* ``mosquitto``: one broker for everyone (the single-broker baseline);
* ``NATS, one node``: service and clients on the same cluster node;
* ``NATS, across nodes``: service on node 0, clients on node 2 (every message takes the
  extra route hop between nodes).

Each path gets ``bench/realtime.py``'s two runs: frame delivery latency with 10 ticks per
frame (arrival time minus the frame's ``wall``, same clock) and input-to-output latency
with 1 tick per frame (a distinct value every 50 ms, timed until the first ``u`` frame that
used it arrives), plus frames, seq gaps and drops.

Then failover: the service runs with the whole cluster as its ``--broker`` list, a
subscriber watches from node 2, and the node the service is on is killed with SIGKILL
(``--kills`` times, the node restarted and the cluster settled in between). Measured: time
from the kill to the first frame through another node, and to the ``online`` status. For
the single mosquitto, the same kill costs the time until the broker is back (here:
restarted at once) plus the reconnect; measured the same way.

The paths take turns (``--rounds``, each in a rotated order, results pooled), and each turn
starts with the brokers' own floor: 1 KB messages at 200/s, no service involved.

Usage: ``python bench/cluster.py [--duration 10] [--rounds 2] [--kills 3] [--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from tests.brokers import Mosquitto, NatsCluster  # noqa: E402

from realtime import NODELAY, SEED, RunResult, one_run, pct  # noqa: E402
from spikestream_client.codec import decode_frame  # noqa: E402

FAILOVER_FLAGS = ("--keepalive", "2", "--backoff-max", "0.5")


async def failover_once(
    service_urls: str, watch_port: int, kill: Any, restart: Any, workdir: Path
) -> tuple[float, float]:
    """Serve through ``service_urls``, watch from ``watch_port`` (reconnecting, should the
    watched broker be the one killed), call ``kill()`` once frames flow; seconds from the
    kill to the first frame received again and to the ``online`` status."""
    log = (workdir / f"failover-{time.monotonic_ns()}.log").open("wb")
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spikestream",
            "--log-format",
            "json",
            "serve",
            str(SEED),
            "--broker",
            service_urls,
            *FAILOVER_FLAGS,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    flowing = asyncio.Event()
    done = asyncio.Event()
    killed = float("inf")
    times = {"frame": float("nan"), "online": float("nan")}

    async def watch() -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", watch_port, socket_options=NODELAY
                ) as client:
                    await client.subscribe("spikestream/seed/status")
                    await client.subscribe("spikestream/seed/out/a_spikes")
                    async for msg in client.messages:
                        now = time.time()
                        payload = msg.payload if isinstance(msg.payload, bytes) else b""
                        if str(msg.topic).endswith("/status"):
                            online = payload == b"online" and now > killed
                            if online and times["online"] != times["online"]:
                                times["online"] = now - killed
                        elif decode_frame(payload).header.wall > killed:
                            if times["frame"] != times["frame"]:
                                times["frame"] = now - killed
                        else:
                            flowing.set()
                        if all(v == v for v in times.values()):
                            done.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        async with asyncio.timeout(90):
            await flowing.wait()
            await asyncio.sleep(1.0)
            killed = time.time()
            await asyncio.to_thread(kill)
            await done.wait()
    except TimeoutError:
        print("  (no failover within 90 s)", flush=True)
    finally:
        watcher.cancel()
        serve.terminate()
        serve.wait(10)
        log.close()
        await asyncio.to_thread(restart)
    return times["frame"], times["online"]


def describe(values: list[float]) -> str:
    good = [v for v in values if v == v]
    if not good:
        return "—"
    return f"{min(good):.2f} / {sorted(good)[len(good) // 2]:.2f} / {max(good):.2f}"


def pool(total: RunResult, run: RunResult) -> None:
    """Add one run's samples and counts to ``total``."""
    total.delivery_ms += run.delivery_ms
    total.input_ms += run.input_ms
    counts = total.counter or {"frames": {}, "gaps": 0, "dropped": 0}
    for probe, n in run.counter["frames"].items():
        counts["frames"][probe] = counts["frames"].get(probe, 0) + n
    counts["gaps"] += run.counter["gaps"]
    counts["dropped"] += run.counter["dropped"]
    total.counter = counts


async def floor(publish_port: int, receive_port: int, seconds: float) -> list[float]:
    """The brokers' own latency, without the service: 1 KB messages at 200/s published on
    one port and timed on arrival at another (ms)."""
    latencies: list[float] = []
    async with (
        aiomqtt.Client("127.0.0.1", receive_port, socket_options=NODELAY) as sub,
        aiomqtt.Client("127.0.0.1", publish_port, socket_options=NODELAY) as pub,
    ):
        await sub.subscribe("bench/floor")
        await asyncio.sleep(0.5)  # the subscription reaches every node

        async def receive() -> None:
            async for msg in sub.messages:
                payload = msg.payload if isinstance(msg.payload, bytes) else b""
                latencies.append((time.time() - float(payload[:20])) * 1e3)

        task = asyncio.create_task(receive())
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            k += 1
            await asyncio.sleep(max(0.0, start + k / 200 - time.monotonic()))
            await pub.publish("bench/floor", f"{time.time():<20.6f}".encode() + bytes(1004))
        await asyncio.sleep(0.5)
        task.cancel()
    return latencies


async def main_async(duration: float, rounds: int, kills: int, out: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        mosquitto = Mosquitto(workdir / "mosquitto")
        cluster = NatsCluster(workdir / "nats")
        try:
            mosquitto.start()
            cluster.start()
            n0, n2 = cluster.nodes[0].port, cluster.nodes[2].port
            paths = [
                ("mosquitto", mosquitto.port, mosquitto.port),
                ("NATS, one node", n0, n0),
                ("NATS, across nodes", n0, n2),
            ]
            runs: dict[str, tuple[RunResult, RunResult]] = {
                name: (RunResult(), RunResult()) for name, _, _ in paths
            }
            floors: dict[str, list[float]] = {name: [] for name, _, _ in paths}
            # Rounds in rotating order, pooled: a burst of load from elsewhere on the
            # machine then lands on every path, not on whichever ran at that moment.
            for r in range(rounds):
                for name, service_port, client_port in paths[r % 3 :] + paths[: r % 3]:
                    print(f"round {r + 1}/{rounds}, {name} ...", flush=True)
                    floors[name] += await floor(service_port, client_port, duration / 2)
                    a = await one_run(service_port, 10, duration, workdir, False, [], client_port)
                    b = await one_run(service_port, 1, duration, workdir, True, [], client_port)
                    pool(runs[name][0], a)
                    pool(runs[name][1], b)
            nats_fail: list[tuple[float, float]] = []
            for i in range(kills):
                print(f"NATS failover {i + 1}/{kills} ...", flush=True)
                node = cluster.nodes[0]

                def restart_node0() -> None:
                    cluster.restart(0)
                    cluster.wait_settled()

                nats_fail.append(
                    await failover_once(
                        cluster.broker_list(0, 1, 2), n2, node.kill, restart_node0, workdir
                    )
                )
            mosq_fail: list[tuple[float, float]] = []
            for i in range(kills):
                print(f"mosquitto kill and restart {i + 1}/{kills} ...", flush=True)

                def kill_and_restart() -> None:
                    mosquitto.kill()
                    mosquitto.start()

                mosq_fail.append(
                    await failover_once(
                        mosquitto.url(), mosquitto.port, kill_and_restart, lambda: None, workdir
                    )
                )
        finally:
            cluster.close()
            mosquitto.kill()

    header = "| Measure | " + " | ".join(runs) + " |"
    load = os.getloadavg()[0]
    print(
        f"\nseed network, dt = 1 ms, {rounds} rounds x {duration:g} s per run and path, "
        f"{os.cpu_count()} cores, load average {load:.1f} at the end\n"
    )
    print(header)
    print("|---" * (len(runs) + 1) + "|")
    rows: list[list[str]] = []

    def row(label: str, cell: Any) -> None:
        rows.append([label, *(cell(a, b) for a, b in runs.values())])
        print("| " + " | ".join(rows[-1]) + " |")

    floor_cells = iter([f"{pct(f, 50):.3f} / {pct(f, 99):.3f}" for f in floors.values()])
    row("Broker floor p50 / p99 (ms): 1 KB message, 200/s", lambda a, b: next(floor_cells))
    row(
        "Frame delivery p50 / p99 (ms), 10 ticks/frame",
        lambda a, b: f"{pct(a.delivery_ms, 50):.3f} / {pct(a.delivery_ms, 99):.3f}",
    )
    row(
        "Input-to-output p50 / p99 (ms), 1 tick/frame",
        lambda a, b: f"{pct(b.input_ms, 50):.3f} / {pct(b.input_ms, 99):.3f} (n={len(b.input_ms)})",
    )
    row(
        "Frame delivery p50 / p99 (ms), 1 tick/frame (5000 frames/s)",
        lambda a, b: f"{pct(b.delivery_ms, 50):.3f} / {pct(b.delivery_ms, 99):.3f}",
    )
    row(
        "Frames counted / seq gaps / dropped, 1 tick/frame",
        lambda a, b: (
            f"{sum(b.counter['frames'].values())} / {b.counter['gaps']} / {b.counter['dropped']}"
        ),
    )
    print(
        "\n| Node killed (SIGKILL), "
        f"{kills}x | frames again (s) min / median / max | status online (s) |\n|---|---|---|"
    )
    fail_rows = [
        (
            "NATS cluster: service fails over to the next node",
            describe([f for f, _ in nats_fail]),
            describe([o for _, o in nats_fail]),
        ),
        (
            "single mosquitto: killed and restarted at once",
            describe([f for f, _ in mosq_fail]),
            describe([o for _, o in mosq_fail]),
        ),
    ]
    for fail_row in fail_rows:
        print("| " + " | ".join(fail_row) + " |")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "duration": duration,
                    "rounds": rounds,
                    "paths": [p[0] for p in paths],
                    "rows": rows,
                    "failover_nats": nats_fail,
                    "failover_mosquitto": mosq_fail,
                    "failover_flags": FAILOVER_FLAGS,
                },
                indent=2,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the paths (2)")
    parser.add_argument("--kills", type=int, default=3, help="node kills measured (3)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = parser.parse_args()
    asyncio.run(main_async(args.duration, args.rounds, args.kills, args.json))


if __name__ == "__main__":
    main()
