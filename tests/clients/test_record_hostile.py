"""``spikestream record`` against a hostile publisher on the broker: forged copies of real
frames, frames over ticks already recorded, and frames that contradict the network's
describe document must be skipped and said, never stored (nor exit 0 in silence)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import Description, decode_describe, encode_describe, topics
from spikestream_client.plotting import plot_run
from spikestream_client.recorder import Recorder, plot_arrays
from tests.brokers import Mosquitto
from tests.clients.conftest import cli, cli_env
from tests.clients.frames import (
    header,
    regular_spikes,
    spike_frame,
    spike_payload,
    value_frame,
    value_payload,
)
from tests.serving import NODELAY

PNG = b"\x89PNG\r\n\x1a\n"
COPY = "a frame with its seq was already recorded: a copy or a replay"
LATE = (
    "its seq went back but it is no restart (its ticks did not go back before the probe's "
    "last frame, or its wall is not later): a late frame or a replay"
)
OVERLAP = "its ticks were already recorded in the probe's current segment: a conflicting copy"
UNDESCRIBED = "its kind, shape or dt differs from the network's describe document"


def describe_document(net: str, probes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A valid describe document of ``net`` (as the service builds it) with ``probes``:
    ``{name: {"kind", "shape", "source"}}``; dt 1 ms, one input ``u`` of dim 1."""
    t = topics("spikestream", net)
    return {
        "v": 1,
        "net": net,
        "prefix": "spikestream",
        "service": {"name": "spikestream", "version": "0.1.0"},
        "session": 1,
        "dt": 0.001,
        "dtype": "float32",
        "inputs": {"u": {"topic": t.input("u"), "dim": 1, "default": [0.0], "ttl": None}},
        "probes": {
            name: {
                "topic": t.out(name),
                "dtype": "bool" if p["kind"] == "spikes" else "float32",
                "ticks_per_frame": 10,
                **p,
            }
            for name, p in probes.items()
        },
    }


def described(probes: dict[str, dict[str, Any]], net: str = "fake") -> Description:
    """The checked :class:`Description` of :func:`describe_document`."""
    return decode_describe(encode_describe(describe_document(net, probes)))


def later(frame_header: Any, seconds: float) -> Any:
    """``frame_header`` with its ``wall`` ``seconds`` later."""
    return dataclasses.replace(frame_header, wall=frame_header.wall + seconds)


# ------------------------------------------------------------- copies and restarts


def test_a_copy_with_a_later_wall_is_refused_not_taken_for_a_restart() -> None:
    """The fuzzing reproducer: each real frame (no spikes) followed by a forged copy with
    the same seq and tick, every neuron spiking and a wall 1 ms later. Each copy was
    taken for a restarted service and its rows replaced the real ones: the file held
    nothing but spikes, and only meta.restarts=100 hinted at it."""
    rec = Recorder("fake")
    for s in range(100):
        h = header("a", s, 10 * s)
        rec.on_frame(spike_frame(h, np.zeros((10, 10), bool)))
        rec.on_frame(spike_frame(later(h, 1e-3), np.ones((10, 10), bool)))
    out = rec.arrays()
    assert out["a"].shape == (1000, 10)
    assert not out["a"].any(), "a forged copy's rows replaced the recorded ones"
    assert (rec.frames, rec.tracker.restarts, rec.skip_reasons) == (100, 0, {("a", COPY): 100})
    meta = json.loads(str(out["meta"]))
    assert (meta["restarts"], meta["segments"], meta["skipped_frames"]) == (0, 1, {"a": 100})


def test_a_seq_that_went_back_without_its_ticks_going_back_is_no_restart() -> None:
    """A restarted service starts its ticks again too: a repeated seq whose ticks run on
    (here the next frame's ticks, before the real one) is a forgery, not a new process;
    taken for a restart it also cleared the seqs, so the real frame was kept beside it."""
    rec = Recorder("fake")
    for s in range(10):
        rec.on_frame(spike_frame(header("a", s, 10 * s), np.zeros((10, 4), bool)))
    forged = later(header("a", 9, 100), 1.0)  # seq 9 again, ticks 100..109, wall later
    rec.on_frame(spike_frame(forged, np.ones((10, 4), bool)))
    rec.on_frame(spike_frame(header("a", 10, 100), np.zeros((10, 4), bool)))
    out = rec.arrays()
    assert not out["a"].any()
    assert (rec.frames, rec.tracker.restarts, rec.skip_reasons) == (11, 0, {("a", COPY): 1})


def test_a_late_frame_whose_seq_went_back_is_refused() -> None:
    """A frame counted lost that arrives after later ones (or a replay of an old frame
    not recorded): seq and ticks went back, but its wall is older than what was
    recorded. It used to open a segment and count as a restart."""
    rec = Recorder("fake")
    for s in (0, 1, 2, 4, 5):
        rec.on_frame(value_frame(header("v", s, 10 * s), np.full((10, 1), float(s))))
    rec.on_frame(value_frame(header("v", 3, 30), np.full((10, 1), 3.0)))  # late
    out = rec.arrays()
    np.testing.assert_array_equal(out["segment"], np.zeros(60))
    assert out["v.gaps"].sum() == 10  # frame 3 stays lost: its ticks are gaps
    assert (rec.tracker.restarts, rec.missing["v"]) == (0, 1)
    assert rec.skip_reasons == {("v", LATE): 1}


def test_a_restart_after_joining_mid_stream_is_still_a_new_segment() -> None:
    """The real thing, as the service does it: a new process numbers seq from 0 and its
    ticks from 0 again, later in time. Joined at seq 3, its seq 0 is below every
    recorded seq (no repeat); its seq 3 onwards then repeat the old process's: kept."""
    rec = Recorder("fake")
    for s in range(3, 8):
        rec.on_frame(value_frame(header("v", s, 10 * s), np.full((10, 1), 1.0)))
    for s in range(10):  # the new process
        h = later(header("v", s, 10 * s), 3600.0)
        rec.on_frame(value_frame(h, np.full((10, 1), 2.0)))
    assert (rec.frames, rec.skipped, rec.tracker.restarts) == (15, {}, 1)
    out = rec.arrays()
    np.testing.assert_array_equal(out["segment"], [0] * 50 + [1] * 100)
    np.testing.assert_array_equal(out["tick"], [*range(30, 80), *range(0, 100)])
    np.testing.assert_array_equal(out["v"][:, 0], [1.0] * 50 + [2.0] * 100)
    assert json.loads(str(out["meta"]))["restarts"] == 1


def test_frames_over_ticks_already_recorded_are_refused_and_the_first_kept() -> None:
    """New seqs over ticks the segment holds (a forger numbering ahead of the service):
    the rows of the last such frame won, and its seq jump counted as lost frames."""
    rec = Recorder("fake")
    for s in range(20):
        rec.on_frame(spike_frame(header("a", s, 10 * s), regular_spikes(10 * s, 10, 6, 3)))
        if s % 2:  # over the ticks just recorded, and a frame half over them
            for seq, tick in ((10**6 + s, 10 * s), (10**6 + s + 1, 10 * s + 5)):
                forged = spike_frame(header("a", seq, tick), np.ones((10, 6), bool))
                rec.on_frame(forged)
    out = rec.arrays()
    np.testing.assert_array_equal(out["a"], regular_spikes(0, 200, 6, 3).astype(np.uint8))
    assert (rec.frames, rec.tracker.missing, rec.tracker.gaps) == (20, 0, 0)
    assert rec.skip_reasons == {("a", OVERLAP): 20}


# ------------------------------------------------------------ the describe document


def test_frames_that_contradict_the_describe_document_are_skipped_and_warned_once() -> None:
    """Frames were stored as they came: the first frame of a probe set its kind and
    shape, so values of shape (3,) on a probe described as spikes [10] made it a value
    array (and its real frames skipped), a (2, 3) one broke --plot later, and one frame
    with another dt on an invented probe made every real frame skipped."""
    warnings: list[str] = []
    rec = Recorder("fake", warn=warnings.append)
    rec.description = described(
        {
            "a": {"kind": "spikes", "shape": [10], "source": "spikes"},
            "v": {"kind": "values", "shape": [2], "source": "decoded"},
        }
    )
    bad_dt = dataclasses.replace(header("zz", 0, 0), dt=0.002)
    rec.on_frame(value_frame(bad_dt, np.zeros((10, 1))))
    rec.on_frame(value_frame(header("a", 0, 0), np.zeros((10, 3))))
    rec.on_frame(value_frame(header("a", 1, 0), np.zeros((10, 2, 3))))
    rec.on_frame(spike_frame(header("a", 2, 0), np.ones((10, 20), bool)))
    rec.on_frame(spike_frame(header("v", 0, 0), np.ones((10, 2), bool)))
    rec.on_frame(value_frame(header("v", 1, 0), np.zeros((10, 3))))
    for s in range(10):
        tick = 10 * s
        rec.on_frame(spike_frame(header("a", 10 + s, tick), regular_spikes(tick, 10, 10, 4)))
        rec.on_frame(value_frame(header("v", 10 + s, tick), np.full((10, 2), float(s))))
    assert rec.skip_reasons == {
        ("zz", UNDESCRIBED): 1,
        ("a", UNDESCRIBED): 3,
        ("v", UNDESCRIBED): 2,
    }
    assert rec.frames == 20
    out = rec.arrays()
    assert out["a"].dtype == np.uint8
    np.testing.assert_array_equal(out["a"], regular_spikes(0, 100, 10, 4).astype(np.uint8))
    np.testing.assert_array_equal(out["v"], np.repeat(np.arange(10.0), 10)[:, None] * [1, 1])
    assert float(out["dt"]) == 0.001
    meta = json.loads(str(out["meta"]))
    assert meta["probes"] == {"a": "spikes", "v": "decoded"}
    assert meta["skipped_frames"] == {"zz": 1, "a": 3, "v": 2}
    # Once per probe and reason, saying what came and what the document says.
    assert len(warnings) == 3, warnings
    (warned,) = [w for w in warnings if "'a'" in w]
    assert warned == (
        f"skipping frames of probe 'a': {UNDESCRIBED} (first: seq 0, tick 0, kind values, "
        "shape [3], dt 0.001; described: kind spikes, shape [10], dt 0.001)"
    )
    assert any("'zz'" in w and "dt 0.002; described: dt 0.001)" in w for w in warnings)
    assert "3 frames of probe 'a' skipped (its kind, shape or dt differs" in rec.skipped_text()


def test_meta_takes_each_probe_kind_from_the_describe_document_consistently(
    tmp_path: Path,
) -> None:
    """meta.probes took the document's unchecked ``source`` as it came: a value probe
    whose source said ``spikes`` was drawn as a raster of floats, and a spike probe
    whose source said ``filtered`` as a trace. A source that does not fit the probe's
    described kind gives way to the kind (``input`` for a value probe named like one
    of the document's inputs)."""
    rec = Recorder("fake")
    rec.description = described(
        {
            "a": {"kind": "spikes", "shape": [4], "source": "filtered"},
            "v": {"kind": "values", "shape": [2], "source": "spikes"},
            "u": {"kind": "values", "shape": [1]},
            "f": {"kind": "values", "shape": [3], "source": "voltage"},
        }
    )
    for s in range(5):
        h = header("p", s, 10 * s)
        rec.on_frame(
            spike_frame(dataclasses.replace(h, probe="a"), regular_spikes(10 * s, 10, 4, 3))
        )
        rec.on_frame(value_frame(dataclasses.replace(h, probe="v"), np.ones((10, 2))))
        rec.on_frame(value_frame(dataclasses.replace(h, probe="u"), np.ones((10, 1))))
        rec.on_frame(value_frame(dataclasses.replace(h, probe="f"), np.ones((10, 3))))
    out = rec.arrays()
    meta = json.loads(str(out["meta"]))
    assert meta["probes"] == {"a": "spikes", "f": "voltage", "u": "input", "v": "values"}
    assert meta["inputs"] == ["u"]
    png = plot_run(plot_arrays(out), tmp_path / "kinds.png")
    assert png.read_bytes()[:8] == PNG


def test_warnings_are_bounded_and_counts_are_not() -> None:
    """Each invented probe warns once: a flood of names must not flood the terminal."""
    warnings: list[str] = []
    rec = Recorder("fake", warn=warnings.append)
    rec.description = described({})
    for i in range(100):
        rec.on_frame(
            value_frame(dataclasses.replace(header(f"p{i}", 0, 0), dt=0.5), np.ones((10, 1)))
        )
    assert len(warnings) == 21
    assert warnings[-1].startswith("more probes' frames are being skipped")
    assert sum(rec.skipped.values()) == rec.skipped_total == 100


def test_the_skipped_frames_line_names_twenty_probes_and_counts_the_rest() -> None:
    """``record`` says the skipped frames at the end even with --quiet: 10,000 invented
    probe names made that one line 1 MB long. It names 20 and counts the others; meta
    still counts every probe."""
    rec = Recorder("fake")
    rec.description = described({})
    for i in range(100):
        h = dataclasses.replace(header(f"p{i:03}", 0, 0), dt=0.5)
        for _ in range(2 if i == 99 else 1):
            rec.on_frame(value_frame(h, np.ones((10, 1))))
    text = rec.skipped_text()
    assert text.count("frames of probe") == 20
    assert "probe 'p019'" in text
    assert "probe 'p020'" not in text
    assert text.endswith(
        "; 81 more frames skipped, of 80 more probes or reasons (meta.skipped_frames counts "
        "each probe)"
    )
    assert len(rec.skipped) == 100


def test_the_skip_counts_keep_at_most_max_skip_keys_probes_apart() -> None:
    """A publisher inventing a probe name per frame grew the skip counts by an entry per
    frame, outside ``--max-mib``: past MAX_SKIP_KEYS probes and reasons, further probes
    are counted together under OTHER_PROBES, and no frame goes uncounted."""
    from spikestream_client.recorder import MAX_SKIP_KEYS, OTHER_PROBES

    rec = Recorder("fake")
    rec.description = described({})
    extra = 50
    for i in range(MAX_SKIP_KEYS + extra):
        h = dataclasses.replace(header(f"p{i:05}", 0, 0), dt=0.5)
        rec.on_frame(value_frame(h, np.ones((10, 1))))
    rec.on_frame(
        value_frame(dataclasses.replace(header("p00000", 1, 10), dt=0.5), np.ones((10, 1)))
    )
    assert len(rec.skip_reasons) == MAX_SKIP_KEYS + 1  # the others' one bucket
    assert rec.skipped[OTHER_PROBES] == extra
    assert rec.skipped["p00000"] == 2  # a probe counted apart stays apart
    assert rec.skipped_total == MAX_SKIP_KEYS + extra + 1
    assert f"p{MAX_SKIP_KEYS - 1:05}" in rec.skipped
    assert f"p{MAX_SKIP_KEYS:05}" not in rec.skipped


# ------------------------------------------------------------------- the tool, live


@pytest.mark.broker
async def test_record_refuses_forged_copies_and_undescribed_frames_and_says_so(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The reproducer against the real tool: ``record`` wrote the forged copies' rows,
    printed "0 frames lost, 0 ticks with gaps" and exited 0. Frames that contradict the
    describe document (a (2, 3) value frame first on a spike probe broke --plot) were
    stored as they came. Now every such frame is skipped, warned about and counted in
    the summary line, and the file holds only the real rows."""
    net = "hostile"
    t = topics("spikestream", net)
    document = describe_document(
        net,
        {
            "a": {"kind": "spikes", "shape": [10], "source": "spikes"},
            "w": {"kind": "spikes", "shape": [10], "source": "spikes"},
            "v": {"kind": "values", "shape": [2], "source": "filtered"},
        },
    )
    out, png = tmp_path / "x.npz", tmp_path / "x.png"
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, socket_options=NODELAY) as pub:
        await pub.publish(t.describe, encode_describe(document), qos=1, retain=True)
        await pub.publish(t.status, b"online", qos=1, retain=True)
        proc = await asyncio.create_subprocess_exec(
            *cli("record", "--broker", mosquitto.url(), "--net", net, "--out", str(out),
                 "--plot", str(png)),
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )  # fmt: skip
        assert proc.stderr is not None
        lines: list[str] = []

        async def progress() -> re.Match[str]:
            """The next progress line (they come once a second)."""
            while True:
                lines.append((await proc.stderr.readline()).decode())  # type: ignore[union-attr]
                assert lines[-1], "".join(lines)
                match = re.search(
                    r"record: (\d+) frames, (\d+) lost(?:, (\d+) skipped)?$", lines[-1]
                )
                if match:
                    return match

        async def frame(payload: bytes, probe: str) -> None:
            await pub.publish(t.out(probe), payload, qos=1)

        seq = 0
        try:
            async with asyncio.timeout(20):
                # Real frames of `a` until the recorder has one: subscribed from then.
                while True:
                    h = header("a", seq, 10 * seq, net=net)
                    await frame(spike_payload(h, np.zeros((10, 10), bool)), "a")
                    seq += 1
                    primed = int((await progress())[1])
                    if primed:
                        break
                # Two frames the client refuses before the recorder sees them: garbage, and
                # a frame of `a` posing as one of `w`.
                await frame(b"\x93garbage", "a")
                await frame(spike_payload(h, np.ones((10, 10), bool)), "w")
                # Each first frame of `w` and `v` contradicts the document.
                await frame(value_payload(header("w", 0, 0, net=net), np.zeros((10, 2, 3))), "w")
                await frame(spike_payload(header("v", 0, 0, net=net), np.ones((10, 20), bool)), "v")
                for s in range(100):
                    tick = 10 * (seq + s)
                    h = header("a", seq + s, tick, net=net)
                    await frame(spike_payload(h, np.zeros((10, 10), bool)), "a")
                    await frame(spike_payload(later(h, 1e-3), np.ones((10, 10), bool)), "a")
                    hw = header("w", 1 + s, tick, net=net)
                    await frame(spike_payload(hw, regular_spikes(tick, 10, 10, 3)), "w")
                    hv = header("v", 1 + s, tick, net=net)
                    await frame(value_payload(hv, np.full((10, 2), float(s))), "v")
                while True:  # every frame arrived, kept or skipped
                    match = await progress()
                    if int(match[1]) + int(match[3] or 0) == primed + 402:
                        break
        except TimeoutError:
            pytest.fail(f"record never counted all 402 frames kept or skipped:\n{''.join(lines)}")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            rest = (await proc.stderr.read()).decode()
            code = await proc.wait()
    assert code == 0, "".join(lines) + rest
    said = "".join(lines) + rest
    assert re.search(
        r"wrote .*x\.npz: 1000 ticks \(1\.000 s\) of 3 probes from \d+ frames; 0 frames lost, "
        r"0 ticks with gaps, 1 segments, 0 restarts, 102 frames skipped, 2 frames refused",
        said,
    ), said
    # Said even with --quiet: the client logs only the first refusal.
    assert (
        "record: 2 frames on spikestream/hostile/out/+ refused (undecodable, retained or past "
        "the size limit; the first is logged)" in said
    )
    assert f"record: 100 frames of probe 'a' skipped ({COPY})" in said
    assert f"record: skipping frames of probe 'a': {COPY}" in said  # while it happened
    assert f"record: skipping frames of probe 'w': {UNDESCRIBED}" in said
    assert "kind values, shape [2, 3], dt 0.001; described: kind spikes, shape [10]" in said
    with np.load(out) as npz:
        data = {k: npz[k] for k in npz.files}
    np.testing.assert_array_equal(data["tick"], np.arange(10 * seq, 10 * seq + 1000))
    assert not data["a"].any(), "a forged copy's rows are in the file"
    assert data["w"].shape == (1000, 10)
    np.testing.assert_array_equal(data["w"], regular_spikes(10 * seq, 1000, 10, 3))
    np.testing.assert_array_equal(data["v"], np.repeat(np.arange(100.0), 10)[:, None] * [1, 1])
    meta = json.loads(str(data["meta"]))
    assert meta["probes"] == {"a": "spikes", "v": "filtered", "w": "spikes"}
    assert (meta["restarts"], meta["segments"]) == (0, 1)
    assert meta["skipped_frames"] == {"a": 100, "v": 1, "w": 1}
    assert meta["refused_frames"] == 2
    assert png.read_bytes()[:8] == PNG


@pytest.mark.broker
async def test_record_counts_lost_frames_gap_ticks_segments_and_restarts_in_its_summary(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The summary line's counts come from what was recorded, not only the file's meta:
    one frame lost (10 ticks of gaps) and a restart (seq and ticks from 0 again, later)
    are said as such, never as "0 frames lost" or "0 restarts"."""
    net = "gappy"
    t = topics("spikestream", net)
    document = describe_document(net, {"v": {"kind": "values", "shape": [1], "source": "filtered"}})
    out = tmp_path / "x.npz"
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, socket_options=NODELAY) as pub:
        await pub.publish(t.describe, encode_describe(document), qos=1, retain=True)
        await pub.publish(t.status, b"online", qos=1, retain=True)
        proc = await asyncio.create_subprocess_exec(
            *cli("record", "--broker", mosquitto.url(), "--net", net, "--out", str(out)),
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        assert proc.stderr is not None
        lines: list[str] = []

        async def recorded() -> int:
            """Frames recorded, from the next progress line (they come once a second)."""
            while True:
                lines.append((await proc.stderr.readline()).decode())  # type: ignore[union-attr]
                assert lines[-1], "".join(lines)
                match = re.search(r"record: (\d+) frames, \d+ lost$", lines[-1])
                if match:
                    return int(match[1])

        async def frame(h: Any) -> None:
            await pub.publish(t.out("v"), value_payload(h, np.ones((10, 1))), qos=1)

        seq = 0
        try:
            async with asyncio.timeout(20):
                while True:  # frames in sequence until the recorder has one
                    await frame(header("v", seq, 10 * seq, net=net))
                    seq += 1
                    if await recorded():
                        break
                primed = await recorded()  # a line later: the last of those frames counted
                await frame(header("v", seq + 1, 10 * (seq + 1), net=net))  # seq lost
                await frame(header("v", seq + 2, 10 * (seq + 2), net=net))
                await frame(later(header("v", 0, 0, net=net), 1000.0))  # a restart
                await frame(later(header("v", 1, 10, net=net), 1000.0))
                while await recorded() < primed + 4:
                    pass
        except TimeoutError:
            pytest.fail(f"record never counted the 4 frames:\n{''.join(lines)}")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            rest = (await proc.stderr.read()).decode()
            code = await proc.wait()
    said = "".join(lines) + rest
    assert code == 0, said
    assert re.search(
        r"wrote .*x\.npz: \d+ ticks \(\d+\.\d{3} s\) of 1 probes from \d+ frames; 1 frames lost, "
        r"10 ticks with gaps, 2 segments, 1 restarts, 0 frames skipped, 0 frames refused",
        said,
    ), said
    with np.load(out) as npz:
        assert int(npz["gaps"].sum()) == 10
        assert int(npz["segment"][-1]) == 1
