"""Faults and hostile load against ``spikestream serve``, each on real mosquitto processes.

Every test starts its own broker(s) and runs the service as a subprocess with JSON logs
(``tests/serving.py``), then injects one fault and asserts what the service promises:

* a half-open connection (a proxy that stops forwarding without closing anything) is
  detected within about 1.5 x keepalive, and the service reconnects and republishes
  ``online``;
* a flood of inputs at 10x the tick rate on one input neither grows memory, nor starves
  another input, nor makes ticks late;
* while the broker is away the service keeps ticking, frames wait in the bounded queues
  and every frame dropped there is counted (the rise of ``dropped`` matches the ``seq``
  gap, but for a frame in flight when the broker went down);
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
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import ValueFrame, decode_frame
from tests.brokers import Mosquitto, MosquittoFactory
from tests.serving import NODELAY, SEED, BackgroundClient, ServeProcess

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
    predicate: Callable[[], Any], within: float, what: str, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after
    ``within`` seconds naming ``what``."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Received:
    """One message as a subscriber saw it."""

    topic: str
    payload: bytes
    received: float  # time.time() on arrival


@dataclass
class Subscriber(BackgroundClient):
    """An aiomqtt subscriber that survives broker restarts (it reconnects every 0.1 s)
    and records every message with its arrival time.

    Unlike ``tests.serving.Listener`` it takes credentials and outlives the broker.
    """

    port: int
    filters: list[str]
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)
    connects: int = 0

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    HOST,
                    self.port,
                    username=self.username,
                    password=self.password,
                    socket_options=NODELAY,
                ) as client:
                    for f in self.filters:
                        await client.subscribe(f, qos=1)
                    self.connects += 1
                    self._ready.set()
                    async for msg in client.messages:
                        assert isinstance(msg.payload, bytes)
                        self.messages.append(Received(str(msg.topic), msg.payload, time.time()))
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
    """Start ``proc``; always kill it on the way out, and show its log when the test
    failed (the service's own account of what it was doing)."""
    proc.start()
    try:
        yield proc
    except BaseException:
        print("--- service log (last 60 lines) ---")
        print("\n".join(proc.log_text().splitlines()[-60:]))
        raise
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
                if connack[:2] != b"\x20\x02" or connack[3] != 0:
                    raise AssertionError(f"the broker refused the flood client: {connack!r}")
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
    and republishes ``online``; ``seq`` goes on, and every frame the service counted as
    dropped lies in the gap subscribers see."""
    keepalive = 2.0
    topics = ["spikestream/seed/status", "spikestream/seed/stats", "spikestream/seed/out/b_spikes"]
    async with (
        BlackholeProxy(mosquitto.port) as proxy,
        Subscriber(mosquitto.port, topics) as sub,
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
                    msg = str(rec.get("msg", ""))
                    if (
                        rec.get("ts", 0.0) >= cut
                        and rec.get("logger") == "spikestream.transport.link"
                        and ("dead" in msg or "lost" in msg)
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
            # Not the `online` event: it can be lost when the reconnect flush fills the
            # link's outgoing window (docs/FAULTS.md, known gaps). Stats come every second.
            reconnected = await until(
                lambda: [s for s in sub.json_on("/stats") if s["connects"] >= 2],
                5,
                "stats counting the second connection",
            )
            await until(
                lambda: [m for m in sub.on("/out/b_spikes") if m.received > back[0].received],
                5,
                "frames after the reconnect",
            )
            assert proc.returncode is None
        frames = [(m.received, decode_frame(m.payload).header) for m in sub.on("/out/b_spikes")]
        last = [h for t, h in frames if t < cut][-1]
        first = next(h for t, h in frames if t > back[0].received)
        gap = first.seq - last.seq - 1
        counted = first.dropped - last.dropped
        print(
            f"half-open: noticed {detect:.2f} s after the cut, {since_heard:.2f} s after the "
            f"broker last spoke; will after {will[0].received - cut:.2f} s; online again "
            f"{back[0].received - cut:.2f} s after the cut; b_spikes seq gap {gap}, of which "
            f"counted as dropped {counted}; log: {noticed['msg']!r}"
        )
    assert first.seq > last.seq  # seq goes on
    assert 0 <= counted <= gap
    # 1.5 x keepalive after the peer last spoke, plus paho's 1 s keepalive-check tick and
    # the watchdog's 0.5 s period, plus 1 s of slack for this noisy machine.
    assert since_heard <= 1.5 * keepalive + 1.5 + 1.0
    assert detect <= 1.5 * keepalive + 1.5 + 1.0
    assert reconnected[0]["connects"] == 2
    assert reconnected[0]["link_connected"] is True


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


@dataclass
class FloodRun:
    """What one flood run measured (see :func:`run_flood`)."""

    sent: int
    rate: float
    rss_before: int  # KiB
    rss_peak: int
    rss_after: int
    base_delays: list[float]  # s from publishing a slow value to its first tick
    flood_delays: list[float]
    missing: list[float]  # slow values that never showed up
    unexplained: list[float]  # of those, the ones no backlog explains (see run_flood)
    slow_accepted: int  # slow values the service decoded and accepted
    slow_published: int
    stats_start: dict[str, Any]  # before the baseline window
    stats_base: dict[str, Any]  # end of the baseline window = start of the flood
    stats_flood: dict[str, Any]  # after the flood

    def over_1ms(self, flood: bool) -> float:
        """Fraction of ticks more than 1 ms late in the baseline or the flood window."""
        a, b = (self.stats_base, self.stats_flood) if flood else (self.stats_start, self.stats_base)
        late = float(b["late_over_1ms"] - a["late_over_1ms"])
        return late / max(1.0, float(b["tick"] - a["tick"]))

    def summary(self) -> str:
        return (
            f"flood {self.sent} msgs at {self.rate:.0f}/s; RSS {self.rss_before} -> peak "
            f"{self.rss_peak} -> {self.rss_after} KiB; slow-input delay max: baseline "
            f"{max(self.base_delays) * 1e3:.1f} ms, flood {max(self.flood_delays) * 1e3:.1f} ms "
            f"(p50 {np.median(self.flood_delays) * 1e3:.1f} ms); late_p99 "
            f"{self.stats_base['late_p99_ms']} -> {self.stats_flood['late_p99_ms']} ms; ticks "
            f"over 1 ms: baseline {self.over_1ms(False):.2%}, flood {self.over_1ms(True):.2%}"
        )


async def run_flood(broker: Mosquitto, workdir: Path, *serve_args: str) -> FloodRun:
    """Serve :data:`FLOOD_NET`; 3 s baseline with ``in/slow`` at 20 Hz, then 3 s more of
    that plus 10 kHz of valid values on ``in/fast`` from a raw-socket publisher."""
    network = workdir / "flood.toml"
    network.write_text(FLOOD_NET)
    base = "spikestream/flood"
    async with (
        Subscriber(broker.port, [f"{base}/out/slow", f"{base}/stats", f"{base}/status"]) as sub,
        aiomqtt.Client(HOST, broker.port, socket_options=NODELAY) as feeder,
    ):
        proc = ServeProcess(
            network, broker.url(), "--stats-interval", "0.5", *serve_args, workdir=workdir
        )
        with serving(proc):
            assert proc.proc is not None
            pid = proc.proc.pid
            await until(
                lambda: [m for m in sub.on("/status") if m.payload == b"online"], 20, "online"
            )
            published: list[tuple[float, float]] = []  # (value, time.time())
            counter = iter(range(1, 10_000))

            async def feed_slow(seconds: float) -> None:
                # Values k/1024 are exact in float32, so the probe shows them exactly.
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    value = next(counter) / 1024
                    published.append((value, time.time()))
                    await feeder.publish(f"{base}/in/slow", repr(value))
                    await asyncio.sleep(0.05)

            def stats_now() -> dict[str, Any]:
                return sub.json_on("/stats")[-1]

            await asyncio.sleep(1.5)  # past start-up (JIT compilation, first connect)
            s0 = stats_now()
            await feed_slow(3.0)
            s1 = stats_now()
            rss_before = vm_rss_kib(pid)
            flood = RawFlood(
                broker.port,
                f"{base}/in/fast",
                [f"{math.sin(i / 7):.4f}".encode() for i in range(97)],
                rate=10_000,
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
            await asyncio.sleep(1.1)  # one more stats message covers the end of the flood
            s2 = stats_now()
            # Every flood message was decoded and accepted: none was lost on the way.
            await until(
                lambda: stats_now()["inputs"]["fast"]["accepted"] == flood.sent,
                10,
                f"all {flood.sent} flood messages accepted",
            )
            await until(
                lambda: stats_now()["inputs"]["slow"]["accepted"] >= len(published),
                10,
                f"all {len(published)} slow values accepted",
            )
            slow_accepted = int(stats_now()["inputs"]["slow"]["accepted"])
            rss_after = vm_rss_kib(pid)
            assert proc.returncode is None
        frames = [decode_frame(m.payload) for m in sub.on("/out/slow")]
    shown = first_rows([f for f in frames if isinstance(f, ValueFrame)])
    # An input holds its latest value: a slow value decoded in the same tick as the next
    # one is replaced before any tick applies it. Slow values are 50 ms apart, so that
    # happens only while the input path is backlogged by about 50 ms or more, which the
    # neighbouring values' delays show. A value missing without such a backlog beside it
    # was lost.
    delays = {v: shown[v] - t for v, t in published if v in shown}
    unexplained = []
    for k, (v, _) in enumerate(published):
        if v in shown:
            continue
        beside = [
            delays.get(published[j][0], 0.0) for j in (k - 1, k + 1) if 0 <= j < len(published)
        ]
        if max(beside, default=0.0) < 0.045:
            unexplained.append(v)
    return FloodRun(
        sent=flood.sent,
        rate=flood.sent / (flood.finished - flood.started),
        rss_before=rss_before,
        rss_peak=rss_peak,
        rss_after=rss_after,
        base_delays=[shown[v] - t for v, t in published if t < flood_start and v in shown],
        flood_delays=[
            shown[v] - t for v, t in published if flood_start <= t <= flood_end and v in shown
        ],
        missing=[v for v, _ in published if v not in shown],
        unexplained=unexplained,
        slow_accepted=slow_accepted,
        slow_published=len(published),
        stats_start=s0,
        stats_base=s1,
        stats_flood=s2,
    )


async def test_input_flood_keeps_memory_bounded_and_does_not_starve_other_inputs(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """10 kHz on ``in/fast`` for 3 s: RSS grows by less than 16 MiB, all 30 000 messages
    are accepted (none lost), and every 20 Hz value on ``in/slow`` is accepted and reaches
    the ``slow`` input probe (none starved out), unless the next slow value replaced it in
    its mailbox before a tick, which a backlog of 50 ms or more beside it shows (an input
    holds its latest value; under a flood of 1-2 s backlogs this happened to one value).

    How long slow values wait behind the flood is a timing figure of the machine as much
    as of the service: at 10 kHz the I/O thread is near its capacity on this 2-core
    machine, and the same code measured a 37-122 ms worst wait on one day and 0.5-2.3 s
    on another (the code before this round: 0.9 s that day). It is printed here and
    reported in docs/FAULTS.md, not asserted; the brief keeps speed goals out of timed
    tests."""
    run = await run_flood(mosquitto, tmp_path, "--rt-priority", "50")
    print(run.summary())
    assert run.sent == 30_000
    assert run.rate > 9_000
    assert run.slow_accepted == run.slow_published
    assert not run.unexplained, f"slow values lost: {run.unexplained} (missing: {run.missing})"
    assert len(run.flood_delays) >= 40
    assert run.rss_peak - run.rss_before < 16 * 1024
    assert run.rss_after - run.rss_before < 16 * 1024


async def test_input_flood_keeps_the_tick_thread_at_wall_clock_pace(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """10 kHz on ``in/fast`` for 3 s: the tick thread keeps simulated time on the wall
    clock through the flood (the stats ``tick`` advances 1000 per wall second, within
    1 %), skips no tick and never realigns, and every flood value is applied (checked in
    :func:`run_flood`).

    How late ticks get under the flood is a timing figure of the machine as much as of
    the service (on a noisy day the share of ticks more than 1 ms late varied between
    runs from 0.8 % to 5.7 % under ``SCHED_FIFO``), so it is printed here and reported
    in docs/FAULTS.md, not asserted; the brief keeps speed goals out of timed tests. The
    service runs with ``--rt-priority 50`` as deploy/README.md advises for a loaded small
    machine."""
    run = await run_flood(mosquitto, tmp_path, "--rt-priority", "50")
    print(run.summary())
    base, flood = run.stats_base, run.stats_flood
    pace = (flood["tick"] - base["tick"]) * 0.001 / (flood["wall"] - base["wall"])
    assert 0.99 < pace < 1.01, run.summary()
    assert flood["skipped_ticks"] == 0
    assert flood["realtime_factor_actual"] > 0.99


async def test_publishing_while_disconnected_keeps_ticking_and_counts_every_drop(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The broker stops for 2 s under a service with ``--queue-capacity 8``: ticks go on
    at wall-clock pace, each probe keeps its 8 newest frames, and the frames after the
    reconnect carry a ``dropped`` count equal to the ``seq`` gap the subscriber sees."""
    probe = "a_spikes"
    async with Subscriber(
        mosquitto.port,
        [f"spikestream/seed/out/{probe}", "spikestream/seed/stats", "spikestream/seed/status"],
    ) as sub:
        proc = ServeProcess(
            SEED,
            mosquitto.url(),
            "--queue-capacity",
            "8",
            "--backoff-max",
            "0.5",
            "--stats-interval",
            "0.5",
            workdir=tmp_path,
        )
        with serving(proc):
            await until(
                lambda: [m for m in sub.on("/status") if m.payload == b"online"], 20, "online"
            )
            await until(lambda: len(sub.on("/stats")) >= 3, 10, "stats")
            await asyncio.sleep(0.3)
            stopped = time.time()
            await asyncio.to_thread(mosquitto.stop)
            await asyncio.sleep(2.0)
            # Stamped as the broker starts, not when start() returns: start() waits for the
            # port to answer, and the service can reconnect and say online before that
            # (seen in CI: online 0.003 s after its reconnect, missed by a later stamp).
            # Nothing arrives while the broker is down, so later is after the restart.
            restarted = time.time()
            await asyncio.to_thread(mosquitto.start)
            await until(
                lambda: [
                    m
                    for m in sub.on("/status")
                    if m.payload == b"online" and m.received > restarted
                ],
                20,  # a bound for a stuck service, not a speed target (backoff is 0.5 s)
                "online after the restart",
            )
            await until(
                lambda: [m for m in sub.on("/stats") if m.received > restarted + 0.6],
                10,
                "stats after the restart",
            )
            await until(
                lambda: len([m for m in sub.on(f"/out/{probe}") if m.received > restarted]) > 30,
                10,
                "frames again",
            )
            assert proc.returncode is None
    frames = [(m.received, decode_frame(m.payload).header) for m in sub.on(f"/out/{probe}")]
    before = [h for t, h in frames if t < stopped]
    after = [h for t, h in frames if t > restarted]
    last, first = before[-1], after[0]
    gap = first.seq - last.seq - 1
    counted = first.dropped - last.dropped
    # After the reconnect the frames are contiguous again: the 8 queued, then new ones.
    seqs = [h.seq for h in after]
    assert seqs == list(range(first.seq, first.seq + len(seqs)))
    # The tick thread never waited for the network: simulated time kept wall-clock pace
    # through the outage (ticks between the stats messages either side of it).
    stats = [(m.received, json.loads(m.payload)) for m in sub.on("/stats")]
    s_before = [s for t, s in stats if t < stopped][-1]
    s_after = next(s for t, s in stats if t > restarted)
    pace = (s_after["tick"] - s_before["tick"]) * 0.001 / (s_after["wall"] - s_before["wall"])
    ticks_pace = (first.tick - last.tick) * 0.001 / (first.wall - last.wall)
    print(
        f"outage {restarted - stopped:.2f} s: seq gap {gap}, dropped +{counted} (now "
        f"{first.dropped}), {len(after)} frames after; stats pace {pace:.4f}, frame pace "
        f"{ticks_pace:.4f}; stats after: dropped {s_after['dropped']}, connects "
        f"{s_after['connects']}"
    )
    assert counted > 150  # ~2.2 s at 100 frames/s, minus the 8 kept
    # Every lost frame is counted. Frames in flight when the broker went down (written
    # to the socket at QoS 0 before the link saw the connection close, never delivered)
    # are the only ones it cannot count: usually 1-2, once 10 on a busy CI run, so the
    # bound is 0.15 s of frames at this probe's 100 frames/s. With --qos 1 across a
    # cluster's failover the count is exact (tests/e2e/test_cluster.py).
    assert counted <= gap <= counted + 15
    assert 0.97 < pace < 1.03
    assert 0.97 < ticks_pace < 1.03
    assert s_after["connects"] == 2
    assert s_after["dropped"] >= first.dropped


async def test_wrong_password_clear_error_bounded_backoff_then_exit(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    """A refused login is retried with jittered backoff (5 attempts, never a tight
    loop), logged clearly without the password, and after ``max_auth_failures`` (5) the
    process exits non-zero with one line naming the problem and no traceback."""
    secret = "Wr0ng-s3cret-Pw"
    broker = mosquitto_factory(users={"spikestream": "the-right-one"})
    proc = ServeProcess(
        SEED, broker.url("spikestream", secret), "--backoff-max", "2", workdir=tmp_path
    )
    with serving(proc):
        started = time.monotonic()
        assert proc.proc is not None
        code = await asyncio.to_thread(proc.proc.wait, 30)
        elapsed = time.monotonic() - started
    output = proc.log_text()
    # The link's records of each refusal (the CLI's last line, one JSON object in this
    # log format, names the refusal too).
    refused = [
        r
        for r in log_records(proc)
        if "refused the login" in str(r.get("msg")) and r.get("logger") != "spikestream"
    ]
    attempts = broker.count_in_log("disconnected, not authorised")
    gaps = np.diff([r["ts"] for r in refused])
    print(
        f"wrong password: exit {code} after {elapsed:.1f} s, {attempts} refused logins in "
        f"the broker log, gaps {np.round(gaps, 2).tolist()} s; last line: "
        f"{output.strip().splitlines()[-1][:200]!r}"
    )
    assert secret not in output
    assert secret not in broker.log_text()
    error_lines = [line for line in output.splitlines() if "Error" in line]
    assert "Traceback" not in output, f"traceback, exit {code}: {error_lines[-1:]}"
    assert code == 2
    assert "refused the login as user 'spikestream'" in output
    last = json.loads(output.strip().splitlines()[-1])
    assert (last["level"], last["command"], last["error"]) == ("error", "serve", "AuthError")
    assert "giving up after 5 refused attempts" in last["msg"]
    # Bounded: exactly max_auth_failures attempts reached the broker, spaced by the
    # backoff (>= backoff_min 0.2 s each, capped at --backoff-max 2 s).
    assert attempts == 5
    assert len(refused) == 5
    assert all(0.15 <= g <= 2.5 for g in gaps), gaps


ACL_NO_OUT = """
user spikestream
topic write spikestream/+/status
topic write spikestream/+/events
topic write spikestream/+/stats
topic read spikestream/+/in/#
topic read spikestream/+/control

user watcher
topic read spikestream/#
"""


async def test_acl_denying_out_costs_the_frames_not_the_service(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    """The service's user may not publish on ``out/#``. With ``--qos 1`` over MQTT 5
    mosquitto answers every frame with PUBACK "not authorised" (0x87) and logs a
    ``Denied PUBLISH``. Observable: subscribers see no frames while status, events and
    stats flow; the service keeps ticking, stays connected (one connection, no
    reconnect loop) and still stops cleanly."""
    broker = mosquitto_factory(
        users={"spikestream": "svc-pw", "watcher": "watch-pw"},
        acl=ACL_NO_OUT,
        extra_config="log_type debug",
    )
    async with Subscriber(broker.port, ["spikestream/#"], "watcher", "watch-pw") as sub:
        proc = ServeProcess(
            SEED,
            broker.url("spikestream", "svc-pw"),
            "--qos",
            "1",
            "--stats-interval",
            "0.5",
            workdir=tmp_path,
        )
        with serving(proc):
            await until(
                lambda: [m for m in sub.on("/status") if m.payload == b"online"], 20, "online"
            )
            await asyncio.sleep(3.0)
            stats = sub.json_on("/stats")
            assert proc.returncode is None
            code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)
        await until(lambda: sub.on("/status")[-1].payload == b"offline", 5, "offline")
    denied = broker.count_in_log("Denied PUBLISH")
    out = [m for m in sub.messages if "/out/" in m.topic]
    first, last = stats[0], stats[-1]
    pace = (last["tick"] - first["tick"]) * 0.001 / (last["wall"] - first["wall"])
    print(
        f"acl: {denied} denied publishes in the broker log, {len(out)} frames seen, "
        f"frames made {sum(last['frames'].values())}, connects {last['connects']}, "
        f"publish_failed {last['publish_failed']}, pace {pace:.4f}, exit {code}"
    )
    assert out == []
    assert denied > 100
    assert sum(last["frames"].values()) > 1000
    # Every refused frame is counted (the broker answers each with a negative PUBACK);
    # allow for frames still in flight when the last stats message was made.
    assert last["publish_refused"] > 0.5 * denied
    assert 0.97 < pace < 1.03
    assert last["connects"] == 1
    assert last["link_connected"] is True
    assert code == 0
    assert "Traceback" not in proc.log_text()
