"""Faults and hostile load against ``spikestream serve``, each on real mosquitto processes.

Every test starts its own broker(s) and runs the service as a subprocess with JSON logs
(``tests/serving.py``), then injects one fault and asserts what the service promises:

* a half-open connection (a proxy that stops forwarding without closing anything) is
  detected within about 1.5 x keepalive, and the service reconnects and republishes
  ``online``;
* a flood of inputs at 10x the tick rate on one input neither grows memory, nor starves
  another input, nor makes ticks late;
* while the broker is away the service keeps ticking, frames wait in the bounded queues
  and every frame dropped there is counted (``dropped`` equals the ``seq`` gap);
* wrong credentials give a clear error, bounded retries with backoff, no password and
  no traceback in the output, and a non-zero exit;
* an ACL that denies ``out/#`` costs the frames (the broker refuses them) but never the
  service.

docs/FAULTS.md lists every fault tried across the test suite and what each one costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from spikestream.codec import ValueFrame, decode_frame
from tests.brokers import Mosquitto, MosquittoFactory
from tests.serving import NODELAY, SEED, ServeProcess

pytestmark = pytest.mark.broker

HOST = "127.0.0.1"


# ----------------------------------------------------------------------------- helpers


def log_records(proc: ServeProcess) -> list[dict[str, Any]]:
    """The JSON log lines the service wrote so far (other lines are skipped)."""
    records = []
    for line in proc.log_text().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return records


def vm_rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


async def until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Received:
    """One message as a subscriber saw it."""

    topic: str
    payload: bytes
    received: float  # time.time() on arrival


@dataclass
class Subscriber:
    """An aiomqtt subscriber that survives broker restarts (it reconnects every 0.1 s)
    and records every message with its arrival time.

    Unlike ``tests.serving.Listener`` it takes credentials and a WebSocket transport.
    """

    port: int
    filters: list[str]
    username: str | None = None
    password: str | None = None
    transport: str = "tcp"
    messages: list[Received] = field(default_factory=list)
    connects: int = 0
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="subscriber")
        ready = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._task}, timeout=10.0, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            await self.__aexit__()
            raise AssertionError(f"subscriber could not connect to port {self.port}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    HOST,
                    self.port,
                    username=self.username,
                    password=self.password,
                    transport=self.transport,  # type: ignore[arg-type]
                    websocket_path="/mqtt" if self.transport == "websockets" else None,
                    socket_options=NODELAY if self.transport == "tcp" else (),
                ) as client:
                    for f in self.filters:
                        await client.subscribe(f, qos=1)
                    self.connects += 1
                    self._ready.set()
                    async for msg in client.messages:
                        payload = msg.payload
                        if not isinstance(payload, bytes):
                            payload = str(payload).encode()
                        self.messages.append(Received(str(msg.topic), payload, time.time()))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def on(self, suffix: str) -> list[Received]:
        """Messages whose topic ends with ``suffix``."""
        return [m for m in self.messages if m.topic.endswith(suffix)]

    def json_on(self, suffix: str) -> list[dict[str, Any]]:
        """Decoded JSON bodies (stats, events) on topics ending with ``suffix``."""
        return [json.loads(m.payload) for m in self.on(suffix)]


@contextlib.contextmanager
def serving(proc: ServeProcess) -> Iterator[ServeProcess]:
    """Start ``proc``; always kill it on the way out."""
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


# ----------------------------------------------------------------------------- proxy


class BlackholeProxy:
    """A TCP proxy between the service and the broker that can go silent.

    :meth:`blackhole` stops forwarding in both directions without closing any socket
    (bytes pile up in kernel buffers, as on a dead network path); connections accepted
    meanwhile are held silent too. :meth:`resume` forwards again. The proxy notes when
    it last forwarded bytes from the broker to the client, i.e. when the client last
    heard its peer.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0
        self.last_downstream = 0.0  # time.time() of the last broker -> client bytes
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> BlackholeProxy:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        await self._server.wait_closed()

    def blackhole(self) -> float:
        """Stop forwarding; returns the time (``time.time()``) it happened."""
        self._forwarding.clear()
        return time.time()

    def resume(self) -> None:
        """Forward again."""
        self._forwarding.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        for src, dst, down in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst, down))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool
    ) -> None:
        try:
            while True:
                await self._forwarding.wait()
                data = await src.read(65536)
                if not data:
                    break
                # Bytes read just before a blackhole are held, not forwarded.
                await self._forwarding.wait()
                dst.write(data)
                await dst.drain()
                if downstream:
                    self.last_downstream = time.time()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()


# ----------------------------------------------------------------------------- raw flood


class RawFlood:
    """Publishes QoS 0 PUBLISH packets from a thread at a fixed rate over a raw socket.

    A raw MQTT 3.1.1 client costs a few microseconds per message, so the flood measures
    the service and not the publisher. Batches go out every ``batch_period`` seconds on
    an absolute schedule.
    """

    def __init__(
        self,
        port: int,
        topic: str,
        payloads: list[bytes],
        rate: float,
        duration: float,
        batch_period: float = 0.01,
    ) -> None:
        self.port = port
        self.rate = rate
        self.duration = duration
        self.batch_period = batch_period
        self.sent = 0
        self.started = 0.0
        self.finished = 0.0
        per_batch = round(rate * batch_period)
        topic_b = topic.encode()
        packets = []
        for i in range(per_batch):
            body = len(topic_b).to_bytes(2, "big") + topic_b + payloads[i % len(payloads)]
            packets.append(b"\x30" + _varint(len(body)) + body)
        self.per_batch = per_batch
        self.blob = b"".join(packets)
        self._thread = threading.Thread(target=self._run, name="raw-flood", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the flood publisher did not finish")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=5) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                cid = b"raw-flood"
                connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
                sock.sendall(b"\x10" + _varint(len(connect)) + connect)
                connack = sock.recv(4)
                assert connack[:2] == b"\x20\x02" and connack[3] == 0, connack
                batches = round(self.duration / self.batch_period)
                self.started = time.monotonic()
                for k in range(batches):
                    delay = self.started + k * self.batch_period - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    sock.sendall(self.blob)
                    self.sent += self.per_batch
                self.finished = time.monotonic()
                sock.sendall(b"\xe0\x00")  # DISCONNECT
        except BaseException as err:  # reported by join()
            self.error = err


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ----------------------------------------------------------------------------- tests


async def test_half_open_connection_detected_within_1_5_keepalive_then_reconnects(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A proxy goes silent both ways without closing: with ``--keepalive 2`` the service
    logs the dead connection about 1.5 x keepalive after its peer last spoke, the broker
    publishes the last will, and once the path forwards again the service reconnects
    and republishes ``online``."""
    keepalive = 2.0
    async with (
        BlackholeProxy(mosquitto.port) as proxy,
        Subscriber(mosquitto.port, ["spikestream/seed/status", "spikestream/seed/events"]) as sub,
    ):
        proc = ServeProcess(
            SEED,
            f"mqtt://{HOST}:{proxy.port}",
            "--keepalive",
            "2",
            "--backoff-max",
            "1",
            workdir=tmp_path,
        )
        with serving(proc):
            await until(
                lambda: [m for m in sub.on("/status") if m.payload == b"online"], 20, "online"
            )
            # Run long enough for a keepalive round trip or two through the proxy.
            await asyncio.sleep(2.5)
            assert proxy.accepted == 1
            cut = proxy.blackhole()
            heard = proxy.last_downstream
            assert cut - heard < keepalive + 1.5, "the broker had been silent already"

            def dead() -> dict[str, Any] | None:
                for rec in log_records(proc):
                    if (
                        rec["ts"] >= cut
                        and rec["logger"] == "spikestream.transport.link"
                        and ("dead" in rec["msg"] or "lost" in rec["msg"])
                    ):
                        return rec
                return None

            noticed = await until(dead, 10, "the service to log the dead connection")
            detect = noticed["ts"] - cut
            since_heard = noticed["ts"] - heard
            # The broker applies the same rule to the silent client: it sends the will.
            will = await until(
                lambda: [
                    m for m in sub.on("/status") if m.payload == b"offline" and m.received >= cut
                ],
                10,
                "the broker's last will",
            )
            proxy.resume()
            back = await until(
                lambda: [
                    m
                    for m in sub.on("/status")
                    if m.payload == b"online" and m.received > will[0].received
                ],
                15,
                "online again",
            )
            online_events = await until(
                lambda: [
                    e
                    for e in sub.json_on("/events")
                    if e["event"] == "online" and e.get("connects", 0) >= 2
                ],
                5,
                "an online event for connect #2",
            )
            assert proc.returncode is None
        print(
            f"half-open: noticed {detect:.2f} s after the cut, {since_heard:.2f} s after the "
            f"broker last spoke; will after {will[0].received - cut:.2f} s; online again "
            f"{back[0].received - cut:.2f} s after the cut; log: {noticed['msg']!r}"
        )
    # 1.5 x keepalive after the peer last spoke, plus paho's 1 s keepalive-check tick and
    # the watchdog's 0.5 s period, plus 1 s of slack for this noisy machine.
    assert since_heard <= 1.5 * keepalive + 1.5 + 1.0
    assert detect <= 1.5 * keepalive + 1.5 + 1.0
    assert online_events[0]["connects"] >= 2


FLOOD_NET = """
[network]
name = "flood"
dt = 0.001
seed = 5

[populations.a]
n = 50

[populations.b]
n = 50

[inputs.fast]
target = "a"

[inputs.slow]
target = "b"

[probes.slow]
target = "slow"
kind = "input"
ticks_per_frame = 10

[probes.a_spikes]
target = "a"
kind = "spikes"
ticks_per_frame = 10
"""


def first_rows(frames: list[ValueFrame]) -> dict[float, float]:
    """For every value an input probe showed: the wall time of the first tick showing it."""
    seen: dict[float, float] = {}
    for f in frames:
        h = f.header
        column = f.data.reshape(h.ticks)
        for row, value in enumerate(column.tolist()):
            if value not in seen:
                seen[value] = h.wall - (h.ticks - 1 - row) * h.dt
    return seen


async def test_input_flood_bounded_memory_no_starvation_no_lateness(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """10 kHz of valid values on ``in/fast`` (10x the tick rate) for 3 s, while
    ``in/slow`` gets 20 Hz: the service's RSS stays bounded, every slow value reaches the
    ``slow`` input probe within a bounded delay, and tick lateness stays within noise of
    a baseline taken in the same run without the flood."""
    network = tmp_path / "flood.toml"
    network.write_text(FLOOD_NET)
    base = "spikestream/flood"
    async with Subscriber(
        mosquitto.port, [f"{base}/out/slow", f"{base}/stats", f"{base}/status"]
    ) as sub, aiomqtt.Client(HOST, mosquitto.port, socket_options=NODELAY) as feeder:
        proc = ServeProcess(network, mosquitto.url(), "--stats-interval", "0.5",
                            workdir=tmp_path)
        with serving(proc):
            assert proc.proc is not None
            pid = proc.proc.pid
            await until(lambda: [m for m in sub.on("/status") if m.payload == b"online"],
                        20, "online")
            published: list[tuple[float, float]] = []  # (value, time.time())
            counter = iter(range(1, 10_000))

            async def feed_slow(seconds: float) -> None:
                # Values k/1024 are exact in float32, so the probe shows them exactly.
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    value = next(counter) / 1024
                    published.append((value, time.time()))
                    await feeder.publish(f"{base}/in/slow", f"{value!r}")
                    await asyncio.sleep(0.05)

            def stats_now() -> dict[str, Any]:
                return sub.json_on("/stats")[-1]

            await asyncio.sleep(1.5)  # past start-up (JIT compilation, first connect)
            s0 = stats_now()
            await feed_slow(3.0)
            s1 = stats_now()
            rss_before = vm_rss_kib(pid)
            flood = RawFlood(
                mosquitto.port, f"{base}/in/fast",
                [f"{math.sin(i / 7):.4f}".encode() for i in range(97)], rate=10_000,
                duration=3.0,
            )
            flood_start = time.time()
            flood.start()
            rss_peak = rss_before
            slow = asyncio.ensure_future(feed_slow(3.0))
            while not slow.done():
                rss_peak = max(rss_peak, vm_rss_kib(pid))
                await asyncio.sleep(0.1)
            await slow
            await asyncio.to_thread(flood.join, 10.0)
            flood_end = time.time()
            await asyncio.sleep(1.2)  # let the stats catch up with the end of the flood
            rss_after = vm_rss_kib(pid)
            s2 = stats_now()
            accepted = s2["inputs"]["fast"]["accepted"]
            await until(lambda: stats_now()["inputs"]["fast"]["accepted"] == flood.sent,
                        5, f"all {flood.sent} flood messages accepted")
            assert proc.returncode is None
        frames = [decode_frame(m.payload) for m in sub.on("/out/slow")]
    shown = first_rows([f for f in frames if isinstance(f, ValueFrame)])
    base_delays = [shown[v] - t for v, t in published if t < flood_start]
    flood_delays = [shown[v] - t for v, t in published if flood_start <= t <= flood_end]
    missing = [v for v, _ in published if v not in shown]

    def window(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int]:
        return b["tick"] - a["tick"], b["late_over_1ms"] - a["late_over_1ms"]

    base_ticks, base_over = window(s0, s1)
    flood_ticks, flood_over = window(s1, s2)
    print(
        f"flood: {flood.sent} msgs in {flood.finished - flood.started:.2f} s "
        f"({flood.sent / (flood.finished - flood.started):.0f}/s), accepted {accepted} "
        f"1.2 s after; RSS {rss_before} -> peak {rss_peak} -> {rss_after} KiB; slow delay "
        f"baseline max {max(base_delays) * 1e3:.1f} ms, flood max "
        f"{max(flood_delays) * 1e3:.1f} ms p50 {np.median(flood_delays) * 1e3:.1f} ms; "
        f"late_p99 {s1['late_p99_ms']} -> {s2['late_p99_ms']} ms; over 1 ms: baseline "
        f"{base_over}/{base_ticks}, flood {flood_over}/{flood_ticks}"
    )
    assert not missing, f"slow values never applied: {missing}"
    assert len(flood_delays) >= 40
    assert max(flood_delays) < 0.1
    assert rss_peak - rss_before < 16 * 1024 and rss_after - rss_before < 16 * 1024
    assert s2["late_p99_ms"] < s1["late_p99_ms"] + 1.0
    assert flood_over / flood_ticks < base_over / base_ticks + 0.01
