"""Live retuning through the control topic, and snapshot/restore of the whole state."""

from __future__ import annotations

import json
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import decode_frame
from tests.brokers import Mosquitto
from tests.serving import EXAMPLES, NODELAY, Listener, Message, ServeProcess

pytestmark = pytest.mark.broker
CTL = "spikestream/learn/control"


def replies(ms: list[Message], rid: str) -> list[dict[str, object]]:
    evs = [json.loads(m.payload) for m in ms if m.topic.endswith("/events")]
    return [e for e in evs if e.get("id") == rid]


async def test_retune_and_snapshot_restore(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = ServeProcess(
        EXAMPLES / "learn.toml", mosquitto.url(), "--snapshot-dir", str(tmp_path), workdir=tmp_path
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/learn/#"]) as sub:
            await sub.wait_status("learn", b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:

                async def ask(rid: str, **cmd: object) -> dict[str, object]:
                    await c.publish(CTL, json.dumps({**cmd, "id": rid}))
                    got = await sub.wait_for(lambda ms: replies(ms, rid), what=rid)
                    return got[0]

                r = await ask("tpf", cmd="set", key="ticks_per_frame", value=3)
                assert r["event"] == "control_ok"
                assert r["ticks_per_frame"] == 3
                n = len(sub.messages)
                await sub.wait_for(
                    lambda ms: len([m for m in ms[n:] if m.topic.endswith("/out/y")]) > 30
                )
                sizes = [
                    decode_frame(m.payload).header.ticks
                    for m in sub.messages[n:]
                    if m.topic.endswith("/out/y")
                ]
                assert sizes[-10:] == [3] * 10
                assert (await ask("ttl", cmd="set", key="ttl", value=0.05))["ttl"] == 0.05
                assert (await ask("lr", cmd="set", key="learning_rate", value=5e-4))[
                    "event"
                ] == "control_ok"
                assert (await ask("off", cmd="learn", value=False))["learning"] is False
                bad = await ask("bad", cmd="set", key="learning_rate", value=-1)
                assert bad["event"] == "control_rejected"
                assert "set learning_rate: -1.0 is not allowed" in str(bad["error"])

                r = await ask("snap", cmd="snapshot", value="s1.npz")
                assert r["event"] == "control_ok"
                written = await sub.wait_for(
                    lambda ms: [e for e in replies(ms, "snap") if e["event"] == "snapshot_written"]
                )
                snap_tick = int(written[0]["tick"])  # type: ignore[call-overload]
                state = np.load(tmp_path / "s1.npz")
                assert int(state["tick"]) == snap_tick
                assert {"pop.a.v", "pop.b.ref", "conn.0.decoders", "conn.0.filtered"} <= set(
                    state.files
                )
                await c.publish(CTL, b"pause")
                r = await ask("restore", cmd="restore", value="s1.npz")
                assert r["event"] == "control_ok"
                assert r["tick"] == snap_tick
                missing = await ask("nofile", cmd="restore", value="nope.npz")
                assert missing["event"] == "control_rejected"
                escape = await ask("escape", cmd="snapshot", value="../outside.npz")
                assert escape["event"] == "control_rejected"
                assert "inside the snapshot folder" in str(escape["error"])
                assert not (tmp_path.parent / "outside.npz").exists()
    finally:
        assert proc.stop() == 0
