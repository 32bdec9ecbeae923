"""``spikestream record``: the recorder (pure) and the tool against a live service."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client import SpikestreamClient
from spikestream_client.codec import Description, SpikeFrame
from spikestream_client.plotting import plot_run
from spikestream_client.record import Recorder, plot_arrays
from tests.clients.conftest import SeedService, cli, cli_env, run_cli
from tests.clients.frames import (
    MATHTEXT_NAME,
    header,
    regular_spikes,
    renamed,
    spike_frame,
    value_frame,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_arrays_follow_the_run_layout_and_mark_lost_frames() -> None:
    rec = Recorder("fake")
    rec.on_stats({"event": "stats", "inputs": {"u": {"accepted": 0}}, "tick": 5})
    for seq in range(10):
        if seq == 4:
            continue  # lost on the way
        tick = 10 * seq
        rec.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 6, 4)))
        rec.on_frame(value_frame(header("u", seq, tick), np.arange(tick, tick + 10)[:, None]))
        rec.on_frame(value_frame(header("f", seq, tick), np.ones((10, 2, 3))))
    out = rec.arrays()
    assert out["s"].shape == (100, 6)
    assert out["s"].dtype == np.uint8
    assert out["u"].shape == (100, 1)
    assert out["f"].shape == (100, 2, 3)
    np.testing.assert_array_equal(out["tick"], np.arange(100))
    np.testing.assert_allclose(out["t"], (np.arange(100) + 1) * 0.001)
    lost = np.zeros(100, bool)
    lost[40:50] = True
    np.testing.assert_array_equal(out["gaps"], lost)
    np.testing.assert_array_equal(out["s.gaps"], lost)
    expected = regular_spikes(0, 100, 6, 4).astype(np.uint8)
    expected[lost] = 0
    np.testing.assert_array_equal(out["s"], expected)
    assert np.isnan(out["u"][40:50]).all()
    np.testing.assert_array_equal(out["u"][~lost, 0], np.arange(100)[~lost])
    meta = json.loads(str(out["meta"]))
    assert meta["probes"] == {"f": "values", "s": "spikes", "u": "input"}
    assert meta["inputs"] == ["u"]
    assert meta["populations"] == []
    assert meta["lost_frames"] == {"s": 1, "u": 1, "f": 1}
    assert meta["gaps"][0] == {"probe": "s", "expected": 4, "got": 5, "kind": "lost", "tick": 50}
    assert float(out["dt"]) == 0.001
    assert str(out["network"]) == "fake"
    # No describe document: values stay float32, the dtype the frames carry.
    assert str(out["dtype"]) == "float32"
    assert out["u"].dtype == np.float32
    assert meta["dtype"] == "float32"


@pytest.mark.parametrize("named", ["float64", "float32", "int8", None])
def test_value_probes_take_the_dtype_the_describe_document_names(named: str | None) -> None:
    """As ``run`` stores them (docs/NPZ.md): float32 frames of a float64 network become
    float64 rows, exactly; anything but float32/float64 falls back to the wire's float32."""
    rec = Recorder("fake")
    document = {"probes": {"f": {"source": "filtered"}}, "dtype": named}
    rec.description = Description("fake", 0.001, 1, "0", {}, {}, document)
    values = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3) / 7
    rec.on_frame(value_frame(header("f", 0, 0), values))
    out = rec.arrays()
    want = np.dtype("float64" if named == "float64" else "float32")
    assert out["f"].dtype == want
    assert str(out["dtype"]) == want.name
    np.testing.assert_array_equal(out["f"], values.astype(want))
    assert json.loads(str(out["meta"]))["probes"] == {"f": "filtered"}


def test_rows_span_the_ticks_every_probe_covered() -> None:
    """Joining mid-stream: probes start and stop at different frames; only the common
    span is kept, so start-up and shutdown are not counted as loss."""
    rec = Recorder("fake")
    for seq in range(2, 10):
        rec.on_frame(spike_frame(header("a", seq, 10 * seq), regular_spikes(10 * seq, 10, 3, 2)))
    for seq in range(0, 8):
        rec.on_frame(value_frame(header("b", seq, 10 * seq), np.zeros((10, 1))))
    out = rec.arrays()
    np.testing.assert_array_equal(out["tick"], np.arange(20, 80))
    assert not out["gaps"].any()


def test_a_reset_starts_a_new_segment() -> None:
    rec = Recorder("fake")
    for seq in range(5):
        rec.on_frame(value_frame(header("v", seq, 100 + 10 * seq), np.full((10, 1), 1.0)))
    for seq in range(5, 8):  # reset: ticks restart at 0, seq goes on
        tick = 10 * (seq - 5)
        rec.on_frame(value_frame(header("v", seq, tick), np.full((10, 1), 2.0)))
    out = rec.arrays()
    assert out["v"].shape == (80, 1)
    np.testing.assert_array_equal(out["segment"], [0] * 50 + [1] * 30)
    np.testing.assert_array_equal(out["tick"], [*range(100, 150), *range(0, 30)])
    np.testing.assert_array_equal(out["v"][:, 0], [1.0] * 50 + [2.0] * 30)
    assert json.loads(str(out["meta"]))["segments"] == 2
    # A restore of a much later snapshot: a new segment rather than a million empty rows.
    rec.on_frame(value_frame(header("v", 8, 5_000_000), np.full((10, 1), 3.0)))
    out = rec.arrays()
    assert out["v"].shape == (90, 1)
    assert out["segment"][-1] == 2
    assert out["tick"][-1] == 5_000_009


def test_nothing_recorded_is_an_error_and_plot_view_aliases_spikes() -> None:
    with pytest.raises(ConfigError, match="no frames were received"):
        Recorder("fake").arrays()
    rec = Recorder("fake")
    rec.on_frame(spike_frame(header("s", 0, 0), regular_spikes(0, 10, 3, 2)))
    rec.on_frame(value_frame(header("x", 0, 0), np.zeros((10, 2))))
    view = plot_arrays(rec.arrays())
    assert view["s.spikes"] is not None
    meta = json.loads(str(view["meta"]))
    assert meta["populations"] == ["s"]
    assert meta["probes"]["x"] == "values"  # plot_run draws value probes as traces


def test_probes_named_like_the_files_own_keys_are_skipped_and_counted() -> None:
    rec = Recorder("fake")
    rec.on_frame(value_frame(header("t", 0, 0), np.full((10, 1), 5.0)))
    with pytest.raises(ConfigError, match=r"1 frames of probe 't' skipped .*file's own keys"):
        rec.arrays()
    rec.on_frame(value_frame(header("v", 0, 0), np.zeros((10, 1))))
    out = rec.arrays()
    np.testing.assert_allclose(out["t"], (np.arange(10) + 1) * 0.001)  # not the probe's 5.0
    assert json.loads(str(out["meta"]))["skipped_frames"] == {"t": 1}


def test_plot_draws_mathtext_hostile_names_literally(tmp_path: Path) -> None:
    """Names are drawn as plain text: ``a$\\frac{$`` used to make matplotlib raise."""
    rec = Recorder("n$\\x{")
    for seq in range(3):
        h = header("s", seq, 10 * seq)
        rec.on_frame(
            renamed(spike_frame(h, regular_spikes(10 * seq, 10, 3, 2)), probe=MATHTEXT_NAME)
        )
        rec.on_frame(renamed(value_frame(h, np.ones((10, 2))), probe="v$^{"))
    png = plot_run(plot_arrays(rec.arrays()), tmp_path / "odd.png", title="$\\x{$ (recorded)")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000


@pytest.mark.broker
async def test_record_matches_the_frames_and_plots(
    seed_service: SeedService, tmp_path: Path
) -> None:
    out, png = tmp_path / "live.npz", tmp_path / "live.png"
    async with SpikestreamClient(seed_service.url) as client:
        stream = client.frames("seed", "a_spikes", maxsize=10000)
        await client.sync()
        done = await asyncio.to_thread(
            run_cli, "record", "--broker", seed_service.url, "--net", "seed",
            "--duration", "3", "--out", str(out), "--plot", str(png),
        )  # fmt: skip
        await client.sync()
        stream.close()
        frames = [f async for f in stream]
    assert done.returncode == 0, done.stderr
    assert re.search(r"wrote .*live\.npz: \d+ ticks .* of 5 probes", done.stderr), done.stderr
    with np.load(out) as npz:
        data = {k: npz[k] for k in npz.files}
    ticks = data["tick"]
    assert 2500 <= ticks.size <= 3600, ticks.size
    np.testing.assert_array_equal(np.diff(ticks), 1)
    np.testing.assert_allclose(data["t"], (ticks + 1) * 0.001)
    assert not data["gaps"].any()
    assert data["a_spikes"].shape == (ticks.size, 50)
    assert data["a_spikes"].dtype == np.uint8
    assert data["b_spikes"].shape == (ticks.size, 40)
    assert data["u"].shape == (ticks.size, 1)
    assert data["a_filtered"].shape == (ticks.size, 50)
    meta = json.loads(str(data["meta"]))
    # The kinds of the network file, from the service's describe document.
    assert meta["probes"] == {
        "a_filtered": "filtered",
        "a_spikes": "spikes",
        "b_filtered": "filtered",
        "b_spikes": "spikes",
        "u": "input",
    }
    assert meta["describe"]["net"] == "seed"
    assert meta["status"] == "online"
    # Every frame the test saw inside the recorded span matches the file, row for row.
    compared = 0
    for f in frames:
        assert isinstance(f, SpikeFrame)
        start = f.header.tick - int(ticks[0])
        if start < 0 or start + f.header.ticks > ticks.size:
            continue
        rows = data["a_spikes"][start : start + f.header.ticks]
        np.testing.assert_array_equal(rows, f.spikes.astype(np.uint8))
        compared += f.header.ticks
    assert compared >= ticks.size - 20
    assert data["a_spikes"].sum() > 0
    assert png.read_bytes()[:8] == PNG
    assert png.stat().st_size > 20_000


@pytest.mark.broker
async def test_record_stops_cleanly_on_sigterm(seed_service: SeedService, tmp_path: Path) -> None:
    out = tmp_path / "stopped.npz"
    proc = await asyncio.create_subprocess_exec(
        *cli("record", "--broker", seed_service.url, "--net", "seed", "--out", str(out)),
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stderr is not None
    lines = []
    async with asyncio.timeout(20):
        while True:  # progress lines come once a second: wait until frames arrived
            line = (await proc.stderr.readline()).decode()
            lines.append(line)
            match = re.search(r"record: (\d+) frames", line)
            if match and int(match[1]) > 0:
                break
            assert line, "".join(lines)
    proc.send_signal(signal.SIGTERM)
    rest = (await proc.stderr.read()).decode()
    assert await proc.wait() == 0, rest
    assert f"wrote {out}" in rest
    with np.load(out) as npz:
        assert npz["tick"].size > 100
        assert npz["b_spikes"].sum() > 0


@pytest.mark.broker
async def test_a_recording_the_budget_cuts_short_is_kept_said_and_exits_3(
    seed_service: SeedService, tmp_path: Path
) -> None:
    out = tmp_path / "cut.npz"
    done = await asyncio.to_thread(
        run_cli, "record", "--broker", seed_service.url, "--net", "seed",
        "--duration", "20", "--out", str(out), "--max-mib", "0.5", "--quiet",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "recording ended early" in done.stderr  # said even with --quiet
    with np.load(out) as npz:
        ticks = npz["tick"].size
    assert 100 < ticks < 5000  # what fitted in 0.5 MiB, well short of 20 s
    refused = await asyncio.to_thread(
        run_cli, "record", "--broker", seed_service.url, "--net", "seed",
        "--out", str(out), "--max-mib", "nan",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--max-mib must be a finite number of MiB > 0" in refused.stderr
