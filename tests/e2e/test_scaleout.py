"""Scale-out on one broker: processes serve disjoint shards of networks, and a killed
process restarted with the same shard resumes from its latest snapshot with seq going on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spikestream_client.codec import decode_frame
from tests.brokers import Mosquitto
from tests.serving import SEED, Listener, Message, ServeProcess

pytestmark = pytest.mark.broker


def last_frame(ms: list[Message], net: str) -> tuple[int, int] | None:
    for m in reversed(ms):
        if m.topic == f"spikestream/{net}/out/a_spikes":
            h = decode_frame(m.payload).header
            return h.seq, h.tick
    return None


async def test_shards_and_resume_after_kill(mosquitto: Mosquitto, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"n{i}.toml"
        f.write_text(SEED.read_text().replace('name = "seed"', f'name = "n{i}"'))
        files.append(str(f))
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    common = (
        "--snapshot-every",
        "0.3",
        "--resume",
        "--snapshot-dir",
        str(snaps),
        "--backoff-max",
        "1",
        "--keepalive",
        "2",
    )

    def shard(i: int) -> ServeProcess:
        proc = ServeProcess(
            Path(files[0]),
            mosquitto.url(),
            "--shard",
            f"{i}/2",
            *common,
            workdir=tmp_path / f"shard{i}",
            more_networks=[Path(f) for f in files[1:]],
        )
        return proc.start()

    a, b = shard(0), shard(1)
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/#"]) as sub:
            for net in ("n0", "n1", "n2"):
                await sub.wait_status(net, b"online")
            await sub.wait_for(lambda ms: all(last_frame(ms, n) for n in ("n0", "n1", "n2")))
            await sub.wait_for(
                lambda _: (snaps / "n0-latest.npz").exists() and (snaps / "n2-latest.npz").exists()
            )
            # Disjoint: shard 0 serves n0 and n2, shard 1 serves n1.
            assert '"net": "n1"' not in a.log_text()
            assert '"net": "n0"' not in b.log_text()
            await asyncio.sleep(0.8)  # a few more snapshots
            before = last_frame(sub.messages, "n0")
            assert before is not None
            a.kill()
            await sub.wait_for(
                lambda ms: any(
                    m.topic == "spikestream/n0/status" and m.payload == b"offline"
                    for m in ms[-200:]
                ),
                what="n0 last will",
            )
            n = len(sub.messages)
            a = shard(0)
            await sub.wait_for(
                lambda ms: any(
                    m.topic == "spikestream/n0/status" and m.payload == b"online" for m in ms[n:]
                )
            )
            after = await sub.wait_for(lambda ms: last_frame(ms[n:], "n0"))
            seq_after, tick_after = after
            assert seq_after > before[0]  # seq continues: never a repeat after resume
            assert tick_after > 300  # the network resumed its state, not tick 0
            assert '"msg": "restored"' in a.log_text()
            # n1 was never interrupted.
            assert b.returncode is None
    finally:
        for proc in (a, b):
            proc.stop()
