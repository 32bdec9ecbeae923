"""Hostile snapshot files against a running ``spikestream serve`` on a real mosquitto.

One service runs while a test plants crafted files in its snapshot folder and asks it to
restore them, and plants links and user files where it is asked to write snapshots. For
every case the test asserts a ``control_rejected`` reply naming the file and what was
wrong, counted in the stats (``rejected.control``), and that the service kept ticking:
``seq`` contiguous on every probe, ``tick`` never moved by a refused restore, nothing
outside the folder written, no user file replaced, no traceback, exit 0 on SIGTERM.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import decode_frame
from tests.brokers import Mosquitto
from tests.serving import NODELAY, SEED, Listener, Message, ServeProcess
from tests.snapshot_files import (
    MIB,
    RawMember,
    deflate_bomb,
    npy_header,
    npz_bytes,
    replace_member,
)

pytestmark = pytest.mark.broker
NET = "seed"
CTL = f"spikestream/{NET}/control"


def events(ms: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in ms if m.topic.endswith("/events")]


def replies(ms: list[Message], rid: str) -> list[dict[str, Any]]:
    return [e for e in events(ms) if e.get("id") == rid]


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def hostile_restores(good: dict[str, Any], base: bytes) -> dict[str, tuple[bytes, str]]:
    """``{file name: (content, what the refusal must say)}`` built from a good snapshot."""

    def edit(**changes: Any) -> bytes:
        return npz_bytes({**good, **changes})

    v = good["pop.a.v"]
    huge = RawMember.stored("pop.a.v.npy", npy_header((10**12,)) + bytes(64))
    header = npy_header(v.shape)
    lying = deflate_bomb("pop.a.v.npy", header, 64 * MIB, claim=len(header) + v.nbytes)
    truthful = deflate_bomb("pop.a.v.npy", header, 1_500_000_000)
    return {
        "tick-nan.npz": (
            edit(tick=np.nan),
            "member 'tick' holds <f8 (float64); expected an integer",
        ),
        "tick-text.npz": (edit(tick="12"), "member 'tick' holds <U2 (text); expected an integer"),
        "tick-array.npz": (edit(tick=[1, 2]), "member 'tick' has shape (2,)"),
        "tick-negative.npz": (edit(tick=-5), "'tick' is -5; expected an integer 0 <= tick"),
        "v-text.npz": (edit(**{"pop.a.v": v.astype("U2")}), "'pop.a.v' holds <U2 (text)"),
        "v-nan.npz": (
            edit(**{"pop.a.v": np.full_like(v, np.nan)}),
            "'pop.a.v' holds 50 NaN or infinite value(s)",
        ),
        "header-1e12.npz": (
            replace_member(base, "pop.a.v", huge),
            "member 'pop.a.v' has shape (1000000000000,); network 'seed' expects (50,)",
        ),
        "bomb-64mib-lying.npz": (
            replace_member(base, "pop.a.v", lying),
            "corrupt zip data (Bad CRC-32 for file 'pop.a.v.npy')",
        ),
        "bomb-1.5gb.npz": (
            replace_member(base, "pop.a.v", truthful),
            "a snapshot of network 'seed' takes at most",
        ),
        "other-net.npz": (
            edit(
                meta=np.frombuffer(
                    b'{"format":"spikestream.snapshot","version":1,"net":"x"}', np.uint8
                )
            ),
            "it is a snapshot of network 'x', not 'seed'",
        ),
        "not-a-zip.npz": (b"\x00" * 100, "corrupt zip data"),
    }


async def test_hostile_snapshot_files_are_refused_while_the_service_keeps_ticking(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    snaps = tmp_path / "snaps"
    outside = tmp_path / "precious.dat"
    outside.write_bytes(b"user data\n")
    proc = ServeProcess(SEED, mosquitto.url(), "--snapshot-dir", str(snaps), workdir=tmp_path)
    proc.start()
    refusals = 0
    try:
        async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
            await sub.wait_status(NET, b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:

                async def ask(rid: str, want: str, **cmd: object) -> dict[str, Any]:
                    await c.publish(CTL, json.dumps({**cmd, "id": rid}), qos=1)
                    got = await sub.wait_for(
                        lambda ms: [e for e in replies(ms, rid) if e["event"] == want],
                        what=f"{want} for {rid}: {replies(sub.messages, rid)}",
                    )
                    return dict(got[0])

                await ask("good", "snapshot_written", cmd="snapshot", value="good.npz")
                assert snaps.is_dir()
                assert snaps.stat().st_mode & 0o777 == 0o700
                with np.load(snaps / "good.npz", allow_pickle=False) as data:
                    good = {k: data[k] for k in data.files}
                good_tick = int(good["tick"])
                rss_before = vm_rss_mib(proc.proc.pid)  # type: ignore[union-attr]

                for name, (content, why) in hostile_restores(good, npz_bytes(good)).items():
                    (snaps / name).write_bytes(content)
                    r = await ask(name, "control_rejected", cmd="restore", value=name)
                    refusals += 1
                    assert r["cmd"] == "restore"
                    assert str(snaps / name) in r["error"], r
                    assert why in r["error"], r
                rss_after = vm_rss_mib(proc.proc.pid)  # type: ignore[union-attr]

                # Writes: a planted temp link is never written through; a link or a user's
                # file at the target is never replaced.
                (snaps / "w.npz.tmp").symlink_to(outside)
                await ask("w", "snapshot_written", cmd="snapshot", value="w.npz")
                assert (snaps / "w.npz").is_file()
                assert not (snaps / "w.npz").is_symlink()
                (snaps / "link.npz").symlink_to(outside)
                user_file = npz_bytes({"x": np.arange(3.0)})
                (snaps / "results.npz").write_bytes(user_file)
                for cmd, name, why in [
                    ("snapshot", "link.npz", "exists and is a symbolic link"),
                    ("restore", "link.npz", "symbolic link, which is never followed"),
                    ("snapshot", "results.npz", "is not a snapshot of network 'seed'"),
                    ("snapshot", "../x.npz", "directly inside the snapshot folder"),
                ]:
                    rid = f"{cmd}-{name}"
                    r = await ask(rid, "control_rejected", cmd=cmd, value=name)
                    refusals += 1
                    assert why in r["error"], r
                    # Refused before the engine was asked: no control_ok came first.
                    oks = [e for e in replies(sub.messages, rid) if e["event"] == "control_ok"]
                    assert not oks, oks

                # The good snapshot still restores: refusals changed nothing.
                n_before_restore = len(sub.messages)
                r = await ask("restore", "control_ok", cmd="restore", value="good.npz")
                assert r["tick"] == good_tick
                stats = await sub.wait_for(
                    lambda ms: [
                        e
                        for e in map(
                            json.loads, (m.payload for m in ms if m.topic.endswith("/stats"))
                        )
                        if e["rejected"].get("control", 0) >= refusals
                    ],
                    what=f"stats counting {refusals} control refusals",
                )
                assert stats[0]["rejected"]["control"] == refusals
                # Enough frames after the good restore too, so that contiguity is checked
                # across it (how many came so far depends on the machine's speed).
                await sub.wait_for(
                    lambda ms: all(
                        sum(1 for m in ms[n_before_restore:] if m.topic.endswith(f"/out/{p}")) >= 20
                        for p in {m.topic.rsplit("/", 1)[1] for m in ms if "/out/" in m.topic}
                    ),
                    what="20 frames of every probe after the good restore",
                )

            messages = list(sub.messages)
    finally:
        assert proc.stop() == 0
    assert outside.read_bytes() == b"user data\n"
    assert (snaps / "results.npz").read_bytes() == user_file
    assert (snaps / "link.npz").is_symlink()
    assert not (tmp_path / "x.npz").exists()
    assert not [p for p in snaps.iterdir() if p.name.startswith(".")]  # no temp left
    log = proc.log_text()
    assert "Traceback" not in log
    assert "MemoryError" not in log
    print(f"service RSS {rss_before:.1f} MiB before the hostile restores, {rss_after:.1f} after")
    assert rss_after - rss_before < 32  # the 1.5 GB and 64 MiB bombs were never inflated

    # Every probe's seq is contiguous through all of it, and tick moved only at the one
    # good restore: each refused restore left the state alone.
    by_probe: dict[str, list[Any]] = {}
    for i, m in enumerate(messages):
        if "/out/" in m.topic:
            by_probe.setdefault(m.topic, []).append((i, decode_frame(m.payload).header))
    assert len(by_probe) == 5
    for topic, frames in by_probe.items():
        seqs = [h.seq for _, h in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), topic
        assert len(seqs) > 40
        before = [h for i, h in frames if i < n_before_restore]
        for prev, h in itertools.pairwise(before):
            assert h.tick == prev.tick + prev.ticks, (topic, prev, h)
        assert all(h.tick >= 0 for _, h in frames)


async def test_the_default_folder_is_private_state_not_the_working_directory(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    work, state_home = tmp_path / "work", tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state_home)}
    proc = ServeProcess(SEED, mosquitto.url(), workdir=work, env=env).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
            await sub.wait_status(NET, b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                await c.publish(CTL, json.dumps({"cmd": "snapshot", "id": "d"}), qos=1)
                got = await sub.wait_for(
                    lambda ms: [e for e in replies(ms, "d") if e["event"] == "snapshot_written"]
                )
    finally:
        assert proc.stop() == 0
    folder = state_home / "spikestream" / "snapshots"
    assert got[0]["path"] == str(folder / "seed-snapshot.npz")
    assert (folder / "seed-snapshot.npz").is_file()
    for d in (folder, folder.parent):  # created for the owner only
        assert d.stat().st_mode & 0o777 == 0o700
    assert not list(work.glob("*.npz"))


@pytest.mark.parametrize("how", ["--restore", "--resume"])
async def test_a_bad_snapshot_at_start_is_one_line_and_exit_2(
    mosquitto: Mosquitto, tmp_path: Path, how: str
) -> None:
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    bad = snaps / "seed-latest.npz"
    bad.write_bytes(npz_bytes({"tick": -5}))
    args = ["--snapshot-dir", str(snaps)]
    args += ["--restore", str(bad)] if how == "--restore" else ["--resume"]
    proc = ServeProcess(SEED, mosquitto.url(), *args, workdir=tmp_path).start()
    assert proc.wait(30) == 2
    # One error, as one JSON object (ServeProcess logs with --log-format json).
    records = [json.loads(line) for line in proc.log_text().splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, proc.log_text()
    assert errors[0]["command"] == "serve"
    assert errors[0]["msg"].startswith(f"snapshot {str(bad)!r} refused: ")
    assert "missing" in errors[0]["msg"]
    if how == "--resume":
        assert "--resume cannot continue from it" in errors[0]["msg"]
    assert "Traceback" not in proc.log_text()
    assert bad.read_bytes() == npz_bytes({"tick": -5})
