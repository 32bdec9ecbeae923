"""``spikestream serve`` end to end against a real mosquitto, faults included."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import Frame, SpikeFrame, ValueFrame, decode_frame, encode_control
from tests.brokers import Mosquitto
from tests.clients.conftest import run_cli
from tests.serving import EXAMPLES, NODELAY, SEED, Listener, Message, ServeProcess

pytestmark = pytest.mark.broker

OUT = "spikestream/seed/out/"


def frames_of(messages: list[Message], probe: str) -> list[Frame]:
    return [decode_frame(m.payload) for m in messages if m.topic == OUT + probe]


def events(messages: list[Message], kind: str | None = None) -> list[dict[str, object]]:
    out = [json.loads(m.payload) for m in messages if m.topic == "spikestream/seed/events"]
    return [e for e in out if kind is None or e["event"] == kind]


def stats_of(messages: list[Message]) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in messages if m.topic == "spikestream/seed/stats"]


async def publish(broker: Mosquitto, topic: str, payload: bytes | str, **kw: object) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, socket_options=NODELAY) as client:
        await client.publish(topic, payload, **kw)  # type: ignore[arg-type]


async def test_frames_arrive_contiguous_and_inputs_change_spiking(
    mosquitto: Mosquitto, serve
) -> None:
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--backoff-max", "1")
        await sub.wait_status("seed", b"online")
        rates = {}
        for value in ("1", "-1"):
            await publish(mosquitto, "spikestream/seed/in/u", value)
            # Wait until the input probe shows the value, then count a's spikes for 0.5 s.
            target = float(value)

            def applied(ms: list[Message], target: float = target) -> int | None:
                for i, m in enumerate(ms):
                    if m.topic == OUT + "u":
                        f = decode_frame(m.payload)
                        assert isinstance(f, ValueFrame)
                        if np.all(f.data == target):
                            return i
                return None

            start = await sub.wait_for(lambda ms: applied(ms), what=f"u = {value}")
            await asyncio.sleep(0.6)
            later = [m for m in sub.messages[start:] if m.topic == OUT + "a_spikes"]
            spikes = np.concatenate([decode_frame(m.payload).spikes for m in later[:50]])  # type: ignore[union-attr]
            rates[value] = spikes.mean(axis=0) / 0.001
        # Neurons with positive encoders fire more for +1; negative ones for -1.
        assert np.abs(rates["1"] - rates["-1"]).mean() > 50.0
        assert proc.stop() == 0
        for probe in ("a_spikes", "b_spikes", "a_filtered", "u"):
            frames = frames_of(sub.messages, probe)
            seqs = [f.header.seq for f in frames]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), probe
            ticks = [(f.header.tick, f.header.ticks) for f in frames]
            for (t0, n0), (t1, _) in itertools.pairwise(ticks):
                assert t1 == t0 + n0
            assert all(f.header.dropped == 0 for f in frames)
            h = frames[0].header
            assert h.net == "seed"
            assert h.probe == probe
            assert h.dt == 0.001
        a = frames_of(sub.messages, "a_spikes")[0]
        assert isinstance(a, SpikeFrame)
        assert a.n == 50
        assert a.spikes.shape == (10, 50)


async def test_status_retained_sigterm_exits_zero_with_offline(mosquitto: Mosquitto, serve) -> None:
    proc = serve()
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        await sub.wait_status("seed", b"online")
    # A late subscriber gets the retained status.
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as late:
        await late.wait_for(lambda ms: any(m.retain and m.payload == b"online" for m in ms))
        started = time.monotonic()
        code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)
        assert code == 0
        assert time.monotonic() - started < 5.0
        await late.wait_status("seed", b"offline")
    log = proc.log_text()
    assert '"msg": "stopped"' in log
    assert "Traceback" not in log


async def test_a_live_offline_is_answered_with_online(mosquitto: Mosquitto, serve) -> None:
    """A stale ``offline`` (a will a broker published only after the service had
    reconnected, a namesake's clean stop) must not stay retained while the service serves:
    a live one is answered with ``online``, counted and reported. The retained ``offline``
    a previous run left is not a correction (the connect hook replaces it), and the
    service's own ``offline`` at a clean stop stands."""
    await publish(mosquitto, "spikestream/seed/status", b"offline", retain=True, qos=1)
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--stats-interval", "0.2")
        await sub.wait_status("seed", b"online")
        first = await sub.wait_for(lambda ms: stats_of(ms), what="stats")
        assert first[-1]["status_reasserted"] == 0
        await publish(mosquitto, "spikestream/seed/status", b"offline", retain=True, qos=1)
        reasserted = await sub.wait_for(
            lambda ms: events(ms, "status_reasserted"), what="status_reasserted"
        )
        assert reasserted[0]["count"] == 1
        await sub.wait_for(
            lambda ms: [s for s in stats_of(ms) if s["status_reasserted"] == 1],
            what="stats counting the correction",
        )
        assert len(events(sub.messages, "status_reasserted")) == 1
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as late:
        await late.wait_for(lambda ms: ms, what="the retained status")
        assert (late.messages[0].retain, late.messages[0].payload) == (True, b"online")
        assert await asyncio.to_thread(proc.stop, signal.SIGTERM, 10) == 0
        await late.wait_status("seed", b"offline")
        await asyncio.sleep(0.5)  # time for a wrong answer to the service's own offline
        assert late.messages[-1].payload == b"offline"
    assert "Traceback" not in proc.log_text()


@pytest.mark.parametrize("refresh", [0.5, 0.0])
async def test_the_retained_status_and_description_are_refreshed(
    mosquitto: Mosquitto, serve, refresh: float
) -> None:
    """``--status-refresh 0.5``: the describe document and ``online`` are published again,
    retained, about every 0.5 s, so a retained status the broker lost (here: cleared with
    an empty retained message, which the service hears but has no reason to answer) is
    back within the interval. ``0``: only at the connection, and the cleared status stays
    cleared."""
    status, describe = "spikestream/seed/status", "spikestream/seed/describe"
    async with Listener("127.0.0.1", mosquitto.port, [status, describe]) as sub:
        serve("--status-refresh", str(refresh))
        await sub.wait_status("seed", b"online")
        await publish(mosquitto, status, b"", retain=True, qos=1)
        await asyncio.sleep(2.2)
        onlines = [m for m in sub.on(status) if m.payload == b"online" and not m.retain]
        documents = [m for m in sub.on(describe) if not m.retain]
    counts = (len(onlines), len(documents))
    if refresh:  # the one at the connection, then one each 0.5 s (loose: a noisy machine)
        assert all(3 <= n <= 7 for n in counts), counts
    else:
        assert counts == (1, 1)
    async with Listener("127.0.0.1", mosquitto.port, [status]) as late:
        await asyncio.sleep(0.5)  # a retained copy arrives at once after subscribing
        held = [(m.retain, m.payload) for m in late.messages[:1]]  # then live refreshes
    assert held == ([(True, b"online")] if refresh else [])


@pytest.mark.parametrize("at_deadline", [False, True])
async def test_a_new_input_starts_its_tick_early_unless_told_not_to(
    mosquitto: Mosquitto, serve, at_deadline: bool
) -> None:
    """Served with default flags, inputs start their ticks before the deadlines, and the
    stats count those ticks (``early_ticks``); ``--tick-at-deadline`` starts none early."""
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        serve("--stats-interval", "0.2", *(["--tick-at-deadline"] if at_deadline else []))
        await sub.wait_status("seed", b"online")
        for k in range(10):
            await publish(mosquitto, "spikestream/seed/in/u", str(0.1 * k))
            await asyncio.sleep(0.03)
        accepted = await sub.wait_for(
            lambda ms: [s for s in stats_of(ms) if s["inputs"]["u"]["accepted"] == 10],
            what="stats after the ten inputs",
        )
    early = accepted[-1]["early_ticks"]
    if at_deadline:
        assert early == 0
    else:  # a tick that started at its deadline anyway (the input came in its spin) is not
        assert 5 <= early <= 10, early


def thread_nices(pid: int) -> dict[int, tuple[int, int]]:
    """Thread id -> (nice value, CPU time in clock ticks) of every thread of process
    ``pid`` (Linux ``/proc``)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        # After the ")" closing the thread's name: utime and stime are fields 14 and 15 of
        # the stat line, nice field 19.
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[int(task.name)] = (int(fields[16]), int(fields[11]) + int(fields[12]))
    return out


async def test_io_nice_lowers_the_io_thread_and_not_the_tick_thread(
    mosquitto: Mosquitto, serve
) -> None:
    """``--io-nice 7``: the I/O thread (the main thread, whose id is the process id) runs
    at 7 above the nice value it started with once serving, while the tick thread,
    started before it lowered itself and the busiest of the other threads (it spins
    before every deadline), keeps the starting value (the suite's own: 0, or what
    ``nice`` gave it)."""
    base = os.getpriority(os.PRIO_PROCESS, 0)  # inherited by the service
    proc = serve("--io-nice", "7")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        await sub.wait_status("seed", b"online")
    assert proc.proc is not None
    pid = proc.proc.pid
    await asyncio.sleep(1.0)  # a second of ticks, so the tick thread is the busiest
    threads = await asyncio.to_thread(thread_nices, pid)
    assert threads.pop(pid)[0] == min(19, base + 7)
    nice, cpu = max(threads.values(), key=lambda t: t[1])
    assert cpu > 0
    assert nice == base
    log = proc.log_text()
    assert "I/O thread runs at a lower priority" in log
    assert f'"nice": {min(19, base + 7)}' in log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
async def test_sigint_and_sighup_also_stop_cleanly(
    mosquitto: Mosquitto, serve, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGHUP (a closed terminal, a lost SSH session on a robot) killed serve in place:
    exit 129, no offline of its own (only the broker's will), and the input log never
    written, its spool folder left behind. It now stops as SIGTERM and SIGINT do."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    log = folder / "inputs.npz"
    proc = serve("--log-inputs", str(log))
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        await sub.wait_status("seed", b"online")
        assert await asyncio.to_thread(proc.stop, signum, 10) == 0
        await sub.wait_status("seed", b"offline")
    assert log.is_file()
    assert [p.name for p in folder.iterdir()] == ["inputs.npz"]  # no spool folder left


async def test_a_hangup_the_process_was_started_ignoring_stays_ignored(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``nohup spikestream serve`` must survive its terminal closing: handling SIGHUP
    replaced the ignore nohup set, and the hangup stopped the service."""
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "spikestream", "serve", str(SEED), "--broker", mosquitto.url()],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
            await sub.wait_status("seed", b"online")
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.0)  # a hangup acted on stops within this (5 s at most)
            assert proc.returncode is None, "the ignored hangup stopped the service"
            assert sub.on("spikestream/seed/status")[-1].payload == b"online"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_process_serving_two_networks_names_the_network_on_every_line_of_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Only the ``serving`` line said which network it was about: with two networks in one
    process (the scale-out design), ``online``, ``running``, ``control_ok``, the link's
    ``connected``, the tick thread's ``tick path`` and the two ``stopped`` lines could
    not be told apart."""
    proc = ServeProcess(
        SEED, mosquitto.url(), workdir=tmp_path, more_networks=[EXAMPLES / "channel.toml"]
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/status"]) as sub:
            await sub.wait_status("seed", b"online")
            await sub.wait_status("channel", b"online")
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/events"]) as sub:
            await publish(mosquitto, "spikestream/seed/control", encode_control("pause"))
            await sub.wait_for(lambda ms: any(b"control_ok" in m.payload for m in ms))
    finally:
        assert await asyncio.to_thread(proc.stop, signal.SIGTERM, 10) == 0
    lines = [json.loads(line) for line in proc.log_text().splitlines()]
    nets: dict[str, list[str | None]] = {}
    for line in lines:
        msg = line["msg"]  # "tick path: compiled ...", "connected to mqtt://... with MQTT 5"
        key = "connected" if msg.startswith("connected to ") else msg.split(":")[0]
        nets.setdefault(key, []).append(line.get("net"))
    for msg in ("serving", "tick path", "connected", "online", "stopped"):
        assert sorted(nets[msg]) == ["channel", "seed"], (msg, nets)  # type: ignore[type-var]
    assert nets["control_ok"] == ["seed"]
    # Only the process's own lines name no network.
    assert {msg for msg, names in nets.items() if None in names} <= {"broker"}, nets


async def test_kill_9_delivers_last_will(mosquitto: Mosquitto, serve) -> None:
    proc = serve("--keepalive", "2")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        await sub.wait_status("seed", b"online")
        proc.kill()
        await sub.wait_status("seed", b"offline", within=10)


async def test_bad_payloads_are_rejected_reported_and_ticking_goes_on(
    mosquitto: Mosquitto, serve
) -> None:
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        serve()
        await sub.wait_status("seed", b"online")
        bad = {
            "garbage": b"\xc1\xff\x00garbage",
            "dimension": b"[1.0, 2.0]",
            "nonfinite": b"nan",
            "oversize": b"1" * 100_000,
            "keys": b'{"x": 1, "x": 2}',  # JSON keeps the last, some readers the first
        }
        for payload in bad.values():
            await publish(mosquitto, "spikestream/seed/in/u", payload)
        # in/+ matches these too; names no input can have were dropped without a word.
        odd = ["nosuch", "u ", "", "n" * 300]
        for name in odd:
            await publish(mosquitto, f"spikestream/seed/in/{name}", b"1")
        await publish(mosquitto, "spikestream/seed/control", b"explode")
        got = await sub.wait_for(
            lambda ms: (e := events(ms, "input_rejected")) and len(e) >= 9 and e,
            what="nine input_rejected events",
        )
        reasons = {e["reason"] for e in got}
        assert {"garbage", "dimension", "nonfinite", "oversize", "keys", "unknown_input"} <= reasons
        unknown = [e["input"] for e in got if e["reason"] == "unknown_input"]
        # Each named as it came, a long one cut to 200 characters.
        assert sorted(unknown) == sorted([*odd[:-1], "n" * 199 + "…"])
        dim = next(e for e in got if e["reason"] == "dimension")
        assert "1" in str(dim["error"])
        assert "2" in str(dim["error"])
        await sub.wait_for(lambda ms: events(ms, "control_rejected"), what="control_rejected")
        # Still ticking: frames keep coming after the rejections.
        n = len(frames_of(sub.messages, "a_spikes"))
        await sub.wait_for(lambda ms: len(frames_of(ms, "a_spikes")) > n + 20, what="more frames")
        # Each refusal counted once, under its reason, in the stats and in its event.
        stats = await sub.wait_for(
            lambda ms: [
                st
                for m in ms
                if m.topic.endswith("/stats")
                and (st := json.loads(m.payload))["inputs"]["u"]["rejected"] >= len(bad)
                and "control" in st["rejected"]
            ],
            what="stats counting the five refusals on u and the control message",
        )
        assert stats[-1]["inputs"]["u"]["rejected"] == len(bad)
        expected = {**dict.fromkeys(bad, 1), "unknown_input": len(odd), "control": 1}
        assert stats[-1]["rejected"] == expected
        assert {e["reason"]: e["rejected"] for e in got if e["reason"] in bad} == dict.fromkeys(
            bad, 1
        )
        assert sorted(e["rejected"] for e in got if e["reason"] == "unknown_input") == [1, 2, 3, 4]


async def test_a_burst_of_bad_payloads_is_reported_whole_on_events(
    mosquitto: Mosquitto, serve
) -> None:
    """60 bad payloads at once, on one connection: the events of the first 20 go out (the
    kind's burst), and the rest, which no later event carries, are reported by
    ``events_suppressed`` events once the kind is quiet. Every payload is accounted for
    on ``events``, exactly; before, the tail reached only the stats."""
    sent = 60
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        serve("--stats-interval", "0.5")
        await sub.wait_status("seed", b"online")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as pub:
            for _ in range(sent):
                await pub.publish("spikestream/seed/in/u", b"zz")

        def accounted(ms: list[Message]) -> int:
            rejected = events(ms, "input_rejected")
            reports = events(ms, "events_suppressed")
            carried = [e.get("suppressed", 0) for e in rejected] + [
                e["suppressed"] for e in reports
            ]
            return len(rejected) + sum(n for n in carried if isinstance(n, int))

        await sub.wait_for(lambda ms: accounted(ms) >= sent, what=f"{sent} payloads accounted")
        await asyncio.sleep(1.0)  # two more stats intervals: nothing is counted twice
        assert accounted(sub.messages) == sent
        reports = events(sub.messages, "events_suppressed")
        assert reports  # the tail was suppressed, and reported
        assert {e["of"] for e in reports} == {"input_rejected"}


async def test_feed_refuses_what_the_service_would_refuse_by_size(
    mosquitto: Mosquitto, serve
) -> None:
    """The describe document says the service's --max-input-bytes; a feed whose every
    message would be refused as oversize says so before it sends one. With a timestamp
    a value of seed's 1-D input is a 24-byte message, past a limit of 16; without, 10."""
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        serve("--max-input-bytes", "16")
        await sub.wait_status("seed", b"online")
    feed = ("feed", "--broker", mosquitto.url(), "--net", "seed", "--input", "u")
    refused = await asyncio.to_thread(
        run_cli, *feed, "constant", "--value", "0.5", "--timestamp", "wall", "--duration", "0.2"
    )
    assert refused.returncode == 2, refused.stderr
    assert (
        "input 'u' of 'seed' takes messages of at most 16 bytes (the service's "
        "--max-input-bytes); 1 values with a timestamp make 24" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    sent = await asyncio.to_thread(
        run_cli, *feed, "constant", "--value", "0.5", "--duration", "0.2"
    )
    assert sent.returncode == 0, sent.stderr
    assert "rejected by the service 0" in sent.stderr


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


async def test_a_message_past_every_limit_is_refused_without_being_held(
    mosquitto: Mosquitto, serve
) -> None:
    """A 40 MB input and a 1 MB control message are refused as oversize, as every
    oversize payload is, but read off the socket in chunks and dropped: the service's
    peak memory does not grow by the message (paho held the whole body first)."""
    watched = [f"spikestream/seed/{t}" for t in ("events", "stats", "status", "out/#")]
    async with Listener("127.0.0.1", mosquitto.port, watched) as sub:
        proc = serve()
        await sub.wait_status("seed", b"online")
        await sub.wait_for(lambda ms: len(stats_of(ms)) >= 1, what="first stats")
        assert proc.proc is not None
        before = _peak_rss(proc.proc.pid)
        assert before > 10_000_000  # a real reading (a Python service holds more)
        await publish(mosquitto, "spikestream/seed/in/u", b"1" * 40_000_000)
        await publish(mosquitto, "spikestream/seed/control", b"x" * 1_000_000)
        got = await sub.wait_for(
            lambda ms: (e := events(ms, "input_rejected")) and e, what="input_rejected"
        )
        assert got[0]["reason"] == "oversize"
        # The message: its topic with the length, an empty MQTT 5 property block (the
        # service speaks 5 to mosquitto), then the 40,000,000-byte payload.
        size = 2 + len("spikestream/seed/in/u") + 1 + 40_000_000
        error = str(got[0]["error"])
        assert f"input message of {size} bytes exceeds the payload limit of 65536" in error
        assert "dropped unread" in str(got[0]["error"])
        refused = await sub.wait_for(
            lambda ms: (e := events(ms, "control_rejected")) and e, what="control_rejected"
        )
        size = 2 + len("spikestream/seed/control") + 1 + 1_000_000
        assert f"control message of {size} bytes exceeds the payload limit of 4096" in str(
            refused[0]["error"]
        )
        stats = await sub.wait_for(
            lambda ms: [s for s in stats_of(ms) if s["dropped_unread"] == 2],
            what="stats counting both",
        )
        assert stats[-1]["rejected"]["oversize"] == 1
        # Still ticking, and the message never held: well under its 40 MB.
        n = len(frames_of(sub.messages, "a_spikes"))
        await sub.wait_for(lambda ms: len(frames_of(ms, "a_spikes")) > n + 20, what="more frames")
        grown = _peak_rss(proc.proc.pid) - before
        assert grown < 8_000_000, f"peak RSS grew by {grown} bytes"


async def test_control_pause_resume_and_realtime_factor(mosquitto: Mosquitto, serve) -> None:
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        serve()
        await sub.wait_status("seed", b"online")
        ctl = "spikestream/seed/control"
        await publish(mosquitto, ctl, json.dumps({"cmd": "pause", "id": "p1"}))
        ok = await sub.wait_for(
            lambda ms: [e for e in events(ms, "control_ok") if e.get("id") == "p1"]
        )
        assert ok[0]["paused"] is True
        await asyncio.sleep(0.2)
        n = len(frames_of(sub.messages, "a_spikes"))
        await asyncio.sleep(0.5)
        assert len(frames_of(sub.messages, "a_spikes")) == n  # no frames while paused
        await publish(mosquitto, ctl, b"set realtime_factor 2")
        await publish(mosquitto, ctl, b"resume")
        await sub.wait_for(lambda ms: len([e for e in events(ms, "control_ok")]) >= 3)
        frames = await sub.wait_for(
            lambda ms: (f := frames_of(ms, "a_spikes")[n:]) and len(f) > 120 and f,
        )
        # Simulated time advances twice as fast as wall time.
        first, last = frames[20].header, frames[-1].header
        ratio = (last.t - first.t) / (last.wall - first.wall)
        assert 1.7 < ratio < 2.3


async def test_broker_restart_reconnects_and_seq_continues(mosquitto: Mosquitto, serve) -> None:
    proc = serve("--backoff-max", "1")
    async with Listener(
        "127.0.0.1", mosquitto.port, [OUT + "a_spikes", "spikestream/seed/status"]
    ) as sub:
        await sub.wait_status("seed", b"online")
        await sub.wait_for(lambda ms: len(frames_of(ms, "a_spikes")) > 10)
        last = frames_of(sub.messages, "a_spikes")[-1].header
        before, dropped_before = last.seq, last.dropped
    mosquitto.kill()
    await asyncio.sleep(1.0)  # the service keeps ticking with no broker
    killed_at = time.monotonic()
    mosquitto.restart()
    async with Listener(
        "127.0.0.1", mosquitto.port, [OUT + "a_spikes", "spikestream/seed/status"]
    ) as sub:
        await sub.wait_status("seed", b"online", within=1.0 + 2.0 + 5.0)
        assert time.monotonic() - killed_at < 1.0 + 2.0 + 3.0  # backoff_max + 2 s (+ slack)
        frames = await sub.wait_for(
            lambda ms: (f := frames_of(ms, "a_spikes")) and len(f) > 5 and f
        )
        after = frames[0].header.seq
        assert after > before  # seq continues, it does not restart at 0
        # Every seq the subscriber misses while it listens is a counted drop, and no more
        # are counted than went missing since the outage began.
        for prev, cur in itertools.pairwise(frames):
            gap = cur.header.seq - prev.header.seq - 1
            assert gap <= cur.header.dropped - prev.header.dropped
        assert frames[0].header.dropped - dropped_before <= after - before - 1
    assert proc.returncode is None  # still running
    assert proc.stop() == 0


async def test_stalled_subscriber_does_not_slow_the_ticks(mosquitto: Mosquitto, serve) -> None:
    """A subscriber that never reads its socket: the broker queues for it (and drops at its
    limit); the service keeps real time and other subscribers keep getting every frame."""
    stalled = socket.create_connection(("127.0.0.1", mosquitto.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client_id = b"stalled"
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    stalled.sendall(b"\x10" + bytes([len(connect)]) + connect)
    topic = b"spikestream/seed/out/#"
    sub_body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
    stalled.sendall(b"\x82" + bytes([len(sub_body)]) + sub_body)
    try:
        # One probe's frames, not all five: a Python subscriber taking 5,000 messages/s
        # beside the service on two cores can fall seconds behind.
        wanted = ["spikestream/seed/status", "spikestream/seed/stats", OUT + "b_spikes"]
        async with Listener("127.0.0.1", mosquitto.port, wanted) as sub:
            serve("--ticks-per-frame", "1")
            await sub.wait_status("seed", b"online")
            await asyncio.sleep(3.0)
            # 2,000 frames take 2 s of ticks; the wait bounds how far the subscriber lags.
            await sub.wait_for(
                lambda ms: sum(m.topic == OUT + "b_spikes" for m in ms) > 2000,
                10.0,
                "2,000 b_spikes frames",
            )
            stats = [json.loads(m.payload) for m in sub.messages if m.topic.endswith("/stats")]
            assert stats, "no stats"
            last = stats[-1]
            assert abs(last["realtime_factor_actual"] - 1.0) < 0.01
            assert last["dropped"] == 0
            assert last["scheduling"] == "normal (not requested)"
            assert last["tick_slice"] == "0.1 ms"  # the default --tick-slice
            frames = frames_of(sub.messages, "b_spikes")
            seqs = [f.header.seq for f in frames]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # none missing
    finally:
        stalled.close()


async def test_the_latency_trace_times_each_step_of_an_input(
    mosquitto: Mosquitto, serve, tmp_path: Path
) -> None:
    """``--trace-latency``: the saved trace holds each input's handling, reception and
    application and, for each frame, when the I/O thread's pump began, took it and handed
    it on, in that order (what bench/floor.py splits input-to-output time with)."""
    trace = tmp_path / "trace.npz"
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = serve("--ticks-per-frame", "1", "--trace-latency", str(trace))
        await sub.wait_status("seed", b"online")
        sent = [0.25, 0.5, 0.75]
        for value in sent:
            await publish(mosquitto, "spikestream/seed/in/u", str(value))

            def shown(ms: list[Message], value: float = value) -> bool:
                return any(
                    m.topic == OUT + "u" and float(decode_frame(m.payload).data[0, 0]) == value  # type: ignore[union-attr]
                    for m in ms
                )

            await sub.wait_for(shown, what=f"u = {value}")
        assert proc.stop() == 0
    with np.load(trace) as saved:
        received, applied, frames = saved["received"], saved["applied"], saved["frames"]
        assert "u" in saved["probes"].tolist()
        assert received[:, 0].tolist() == sent
        for value, wall, handled in received:
            assert handled <= wall, value  # the handler began before the value was stored
            when = applied[applied[:, 0] == value, 1]
            assert len(when) == 1, value
            assert when[0] >= wall, value
        assert len(frames) > 100
        began, taken, handed = frames[:, 4], frames[:, 2], frames[:, 3]
        assert not np.isnan(began).any()
        assert (began <= taken).all()
        assert (taken <= handed).all()
