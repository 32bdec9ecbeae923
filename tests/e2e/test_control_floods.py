"""Floods and orderings of control commands against ``spikestream serve`` on a real
mosquitto: every acknowledged snapshot is written, snapshots and restores beyond the bound
are refused with a reply, every request id is answered, and commands apply in the order
they arrived (a restore whose file is still being read included)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.brokers import Mosquitto
from tests.e2e.test_describe import Paho5
from tests.serving import NODELAY, SEED, Listener, Message, ServeProcess

pytestmark = pytest.mark.broker
NET = "seed"
CTL = f"spikestream/{NET}/control"
ENDS = ("snapshot_written", "snapshot_failed", "control_rejected")


def events(ms: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in ms if m.topic == f"spikestream/{NET}/events"]


def stats_of(ms: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in ms if m.topic == f"spikestream/{NET}/stats"]


def by_id(ms: list[Message]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events(ms):
        if "id" in e:
            out.setdefault(str(e["id"]), []).append(e)
    return out


@contextlib.asynccontextmanager
async def served(
    mosquitto: Mosquitto, tmp_path: Path
) -> AsyncIterator[tuple[ServeProcess, Listener, aiomqtt.Client]]:
    """The seed served with its snapshots in ``tmp_path/snaps``, online, with a listener
    on its topics and a client to send control; the service stops with exit 0 after."""
    proc = ServeProcess(
        SEED, mosquitto.url(), "--snapshot-dir", str(tmp_path / "snaps"), workdir=tmp_path
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
            await sub.wait_status(NET, b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                yield proc, sub, c
    finally:
        assert proc.stop() == 0


async def test_a_flood_of_snapshots_writes_each_acknowledged_one_and_refuses_the_rest(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """50 snapshots and 50 status requests in one burst, as an MQTT 3.1.1 client sends
    them: each snapshot ends written or refused with a reason (none acknowledged and then
    lost: the engine's queue of taken states used to push the oldest out unseen), and
    every request id hears its reply on ``events`` (the per-kind rate limit used to drop
    all but 20)."""
    snaps = tmp_path / "snaps"

    def all_ended(ms: list[Message]) -> bool:
        seen = by_id(ms)
        return all(
            any(e["event"] in ENDS for e in seen.get(f"s{i}", [])) for i in range(50)
        ) and all(f"q{i}" in seen for i in range(50))

    async with served(mosquitto, tmp_path) as (proc, sub, c):
        for i in range(50):
            snap = {"cmd": "snapshot", "value": f"c{i}.npz", "id": f"s{i}"}
            await c.publish(CTL, json.dumps(snap), qos=1)
            await c.publish(CTL, json.dumps({"cmd": "status", "id": f"q{i}"}), qos=1)
        await sub.wait_for(all_ended, within=30, what="an end for every snapshot")
    seen = by_id(sub.messages)
    written = {e["path"] for i in range(50) for e in seen[f"s{i}"] if e["event"] == ENDS[0]}
    acknowledged = [i for i in range(50) if any(e["event"] == "control_ok" for e in seen[f"s{i}"])]
    refused = [e for i in range(50) for e in seen[f"s{i}"] if e["event"] == "control_rejected"]
    assert len(acknowledged) == len(written)  # every control_ok ends in its file
    assert {str(snaps / f"c{i}.npz") for i in acknowledged} == written
    assert sorted(p.name for p in snaps.glob("*.npz")) == sorted(Path(p).name for p in written)
    assert refused, "a burst of 50 within the bound of 2 under way"
    assert all("under way (at most 2)" in e["error"] for e in refused), refused
    assert len(acknowledged) + len(refused) == 50
    assert all(seen[f"q{i}"][0]["event"] == "control_ok" for i in range(50))
    assert "Traceback" not in proc.log_text()


async def test_commands_after_a_restore_apply_after_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A restore's file is read off the event loop; a ``status`` and a ``snapshot`` sent
    right after it used to run first, on the state before the restore."""
    async with served(mosquitto, tmp_path) as (_, sub, c):

        async def reply(rid: str, kind: str) -> dict[str, Any]:
            got = await sub.wait_for(
                lambda ms: [e for e in by_id(ms).get(rid, []) if e["event"] == kind],
                what=f"{kind} for {rid}",
            )
            return dict(got[0])

        snap = {"cmd": "snapshot", "value": "k.npz", "id": "k"}
        await c.publish(CTL, json.dumps(snap), qos=1)
        k_tick = (await reply("k", "snapshot_written"))["tick"]
        await asyncio.sleep(0.3)  # ticks go on past k's
        await c.publish(CTL, json.dumps({"cmd": "pause", "id": "p"}), qos=1)
        await c.publish(CTL, json.dumps({"cmd": "status", "id": "st0"}), qos=1)
        paused_tick = (await reply("st0", "control_ok"))["tick"]
        for body in (
            {"cmd": "restore", "value": "k.npz", "id": "r"},
            {"cmd": "status", "id": "st"},
            {"cmd": "snapshot", "value": "after.npz", "id": "a"},
        ):
            await c.publish(CTL, json.dumps(body), qos=1)
        restored = await reply("r", "control_ok")
        status = await reply("st", "control_ok")
        after = await reply("a", "snapshot_written")
    assert paused_tick > k_tick + 100  # so a status before the restore would differ
    assert restored["tick"] == k_tick
    assert status["tick"] == k_tick, "status ran before the restore it came after"
    assert after["tick"] == k_tick


async def test_an_mqtt5_requester_hears_how_its_snapshot_ended(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The end of a snapshot goes to the response topic too (it went to ``events`` only);
    a refused response topic names the request's cmd and id; an empty control message
    (a retained command cleared) is no refusal."""
    snaps = tmp_path / "snaps"
    proc = ServeProcess(
        SEED, mosquitto.url(), "--snapshot-dir", str(snaps), "--stats-interval", "0.2",
        workdir=tmp_path,
    ).start()  # fmt: skip
    paho = None
    try:
        async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
            await sub.wait_status(NET, b"online")
            paho = Paho5(mosquitto.port, "lab/me/replies")
            snap = json.dumps({"cmd": "snapshot", "value": "m5.npz", "id": "m5"}).encode()
            paho.publish(CTL, snap, ResponseTopic="lab/me/replies", CorrelationData=b"c1")
            got = [paho.next_on("lab/me/replies") for _ in range(2)]
            assert all(m.properties.CorrelationData == b"c1" for m in got)
            kinds = [json.loads(m.payload)["event"] for m in got]
            assert kinds == ["control_ok", "snapshot_written"]
            status = json.dumps({"cmd": "status", "id": "bad-topic"}).encode()
            paho.publish(CTL, status, ResponseTopic="$SYS/x", CorrelationData=b"c2")
            paho.publish(CTL, b"")
            refused = await sub.wait_for(
                lambda ms: by_id(ms).get("bad-topic"), what="the refusal of $SYS/x"
            )
            assert refused[0]["event"] == "control_rejected"
            assert refused[0]["cmd"] == "status"
            assert "starts with '$'" in refused[0]["error"]
            paho.publish(CTL, json.dumps({"cmd": "status", "id": "after"}).encode())
            await sub.wait_for(lambda ms: by_id(ms).get("after"), what="the status after")
            wall = refused[0]["wall"] + 0.5
            later = await sub.wait_for(
                lambda ms: [s for s in stats_of(ms) if s["wall"] > wall],
                what="stats after the empty message",
            )
    finally:
        if paho is not None:
            paho.close()
        assert proc.stop() == 0
    assert later[0]["rejected"] == {"control": 1}  # the $SYS topic; the empty one is no refusal
    assert later[0]["snapshots_failed"] == 0
    assert "empty control payload" not in proc.log_text()


async def test_a_stop_waits_for_the_snapshot_under_way_to_say_how_it_ended(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop right after ``control_ok``: the file being written says ``snapshot_written``
    before ``offline`` (the service used to go offline first; the event was lost)."""
    from spikestream.build import build
    from spikestream.serving.service import Service
    from spikestream.serving.settings import ServeSettings
    from spikestream.serving.snapshots import SnapshotFolder
    from spikestream.spec import load_network
    from spikestream_client.transport import parse_broker_url

    real_write = SnapshotFolder.write

    def slow_write(self: SnapshotFolder, name: str, state: Any) -> Path:
        time.sleep(1.0)  # a big network's snapshot on a slow disk
        return real_write(self, name, state)

    monkeypatch.setattr(SnapshotFolder, "write", slow_write)
    settings = ServeSettings(snapshot_dir=tmp_path / "snaps")
    service = Service(build(load_network(SEED)), parse_broker_url(mosquitto.url()), settings)
    stop = asyncio.Event()
    async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
        run = asyncio.create_task(service.run(stop))
        await sub.wait_status(NET, b"online")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
            body = {"cmd": "snapshot", "value": "last.npz", "id": "last"}
            await c.publish(CTL, json.dumps(body), qos=1)
        await sub.wait_for(lambda ms: by_id(ms).get("last"), what="control_ok")
        stop.set()
        await asyncio.wait_for(run, 15)
        await sub.wait_status(NET, b"offline")
        ended = await sub.wait_for(
            lambda ms: [e for e in by_id(ms)["last"] if e["event"] == "snapshot_written"],
            within=5,
            what="snapshot_written",
        )
    order = [m for m in sub.messages if m.topic.endswith(("/events", "/status"))]
    written_at = next(i for i, m in enumerate(order) if b"snapshot_written" in m.payload)
    offline_at = next(i for i, m in enumerate(order) if m.payload == b"offline")
    assert written_at < offline_at
    assert ended[0]["path"] == str(tmp_path / "snaps" / "last.npz")
