"""``serve --log-inputs`` then ``run --replay`` reproduces the live spike trains exactly,
with the tick on one thread or cut in two stages on two (``--tick-threads 2``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream.cli import main as cli
from spikestream_client.codec import SpikeFrame, decode_frame
from tests.brokers import Mosquitto
from tests.serving import NODELAY, SEED, Listener, ServeProcess

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("threads", ["1", "2"])
async def test_replay_reproduces_live_spike_trains(
    mosquitto: Mosquitto, tmp_path: Path, threads: str
) -> None:
    log = tmp_path / "inputs.npz"
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        proc = ServeProcess(
            SEED,
            mosquitto.url(),
            "--log-inputs",
            str(log),
            "--tick-threads",
            threads,
            workdir=tmp_path,
        ).start()
        try:
            await sub.wait_status("seed", b"online")
            stats = await sub.wait_for(lambda ms: sub.on("spikestream/seed/stats"), what="stats")
            assert json.loads(stats[0].payload)["tick_threads"] == int(threads)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                for k in range(40):  # an irregular live input, 40 values over ~2 s
                    await c.publish("spikestream/seed/in/u", f"{np.sin(k * 0.7):.6f}")
                    await asyncio.sleep(0.03 + 0.02 * (k % 3))
            assert await asyncio.to_thread(proc.stop) == 0
            await sub.wait_status("seed", b"offline")
        finally:
            proc.kill()
    live: dict[str, np.ndarray] = {}
    for probe in ("a_spikes", "b_spikes"):
        frames = [
            decode_frame(m.payload) for m in sub.messages if m.topic.endswith(f"/out/{probe}")
        ]
        assert all(isinstance(f, SpikeFrame) for f in frames)
        assert frames[0].header.tick == 0
        assert [f.header.seq for f in frames] == list(range(len(frames)))
        live[probe] = np.concatenate([f.spikes for f in frames])  # type: ignore[union-attr]
    # The spool folder beside the log (changes moved out of memory every 0.5 s) is gone.
    names = [p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))]
    assert not [n for n in names if n.endswith(".spool")], names
    out = tmp_path / "replay.npz"
    assert cli(["run", str(SEED), "--replay", str(log), "--out", str(out), "--no-progress"]) == 0
    replay = np.load(out)
    recorded = np.load(log)
    assert int(recorded["ticks"]) == live["a_spikes"].shape[0] > 1500
    # Tick-stamped changes; two messages within one tick apply only the newer one.
    assert 20 <= recorded["u.ticks"].shape[0] <= 40
    for probe, pop in (("a_spikes", "a"), ("b_spikes", "b")):
        np.testing.assert_array_equal(replay[f"{pop}.spikes"].astype(bool), live[probe])
    # The live input really varied, so the comparison is not trivially all-default.
    assert np.unique(replay["u"]).size > 20


async def test_replay_follows_learning_switched_and_re_rated_live(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``learn off``, ``set learning_rate`` and ``learn on`` sent on ``control`` while the
    PES network learns: the replay applies each at the tick the live run did, so the
    learning population's spike trains are the live ones, bit for bit."""
    network = tmp_path / "learn.toml"
    text = (SEED.parent / "learn.toml").read_text()
    network.write_text(text + '\n[probes.b_spikes]\ntarget = "b"\nkind = "spikes"\n')
    log = tmp_path / "inputs.npz"
    net = "spikestream/learn"
    async with Listener("127.0.0.1", mosquitto.port, [f"{net}/#"]) as sub:
        proc = ServeProcess(network, mosquitto.url(), "--log-inputs", str(log), workdir=tmp_path)
        proc.start()
        try:
            await sub.wait_status("learn", b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                await c.publish(f"{net}/in/u", "0.8")
                for k, command in enumerate(
                    [
                        "",
                        '{"cmd": "set", "key": "learning_rate", "value": 1e-3}',
                        "learn off",
                        "",
                        "learn on",
                        "",
                    ]
                ):
                    await c.publish(f"{net}/in/err", f"{-0.5 + 0.1 * k:.2f}")
                    if command:
                        await c.publish(f"{net}/control", command)
                    await asyncio.sleep(0.25)
            acks = await sub.wait_for(
                lambda ms: [
                    e for m in sub.on(f"{net}/events")
                    if (e := json.loads(m.payload))["event"] == "control_ok"
                ],
                what="three commands applied",
            )  # fmt: skip
            assert len(acks) == 3
            assert await asyncio.to_thread(proc.stop) == 0
            await sub.wait_status("learn", b"offline")
        finally:
            proc.kill()
    frames = [decode_frame(m.payload) for m in sub.on(f"{net}/out/b_spikes")]
    assert [f.header.seq for f in frames] == list(range(len(frames)))
    live = np.concatenate([f.spikes for f in frames])  # type: ignore[union-attr]
    recorded = np.load(log)
    assert recorded["learning.values"].shape == (3, 2)
    out = tmp_path / "replay.npz"
    assert cli(["run", str(network), "--replay", str(log), "--out", str(out), "--no-progress"]) == 0
    replay = np.load(out)
    assert int(recorded["ticks"]) == live.shape[0] > 1000
    np.testing.assert_array_equal(replay["b.spikes"].astype(bool), live)
