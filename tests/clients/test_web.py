"""``spikestream monitor --web``: the bridge (pure), the page's files, and the page in a real
headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from spikestream_client.webmonitor import ASSETS, WEB_DIR, WebBridge
from tests.clients.cdp import Chromium, ChromiumMissing, chromium_binary
from tests.clients.conftest import SeedService, cli, cli_env
from tests.clients.frames import header, regular_spikes, spike_frame, value_frame


def test_batches_carry_spikes_values_and_coverage() -> None:
    bridge = WebBridge("fake", value_rate=250.0)
    for seq in (0, 1, 3):  # seq 2 lost
        tick = 10 * seq
        bridge.on_frame(spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 4, 5)))
        bridge.on_frame(value_frame(header("v", seq, tick), np.arange(tick, tick + 10)[:, None]))
    batch = bridge.batch()
    assert batch is not None
    assert bridge.batch() is None  # everything was handed over
    s = batch["probes"]["s"]
    assert (s["kind"], s["n"], s["base"]) == ("spikes", 4, 0)
    assert s["cov"] == [[0, 20], [30, 40]]
    pairs = sorted(zip(s["t"], s["i"], strict=True))
    expected = np.argwhere(regular_spikes(0, 40, 4, 5))
    expected = [(int(t), int(i)) for t, i in expected if not 20 <= t < 30]
    assert pairs == expected
    v = batch["probes"]["v"]
    assert v["kind"] == "values"
    assert v["shape"] == [1]
    assert v["t"][:3] == [0, 4, 8]  # every 4th tick at 250 rows/s of 1 ms ticks
    assert all(row == [float(t)] for t, row in zip(v["t"], v["v"], strict=True))
    assert 9 in v["t"]  # each frame's last row always goes too
    json.dumps(batch, allow_nan=False)


def test_page_files_are_shipped_and_self_contained() -> None:
    for name, _ in ASSETS.values():
        assert (WEB_DIR / name).is_file()
    html = (WEB_DIR / "index.html").read_text()
    js = (WEB_DIR / "monitor.js").read_text()
    # No CDN or any other network fetch: only our own files and our own websocket.
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "http://" not in js
    assert "https://" not in js
    for attribute in ("spikesDrawn", "status", "connected", "gaps"):
        assert f"dataset.{attribute}" in js


async def _start_web_monitor(url: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *cli("monitor", "--broker", url, "--net", "seed", "--web", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = (await proc.stdout.readline()).decode()
    match = re.search(r"web monitor: (http://\S+)", line)
    if match is None:
        proc.kill()
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
        raise AssertionError(f"no URL from the web monitor: {line!r}\n{err}")
    return proc, match[1]


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


@pytest.mark.broker
@pytest.mark.browser
async def test_web_monitor_draws_spikes_in_chromium(
    seed_service: SeedService, tmp_path: Path
) -> None:
    try:
        chromium_binary()
    except ChromiumMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    proc, url = await _start_web_monitor(seed_service.url)
    try:
        status, ctype, body = await asyncio.to_thread(_get, url)
        assert (status, ctype) == (200, "text/html; charset=utf-8")
        assert b"<canvas" not in body  # canvases are made by the script, per probe
        status, ctype, _ = await asyncio.to_thread(_get, url + "monitor.js")
        assert (status, ctype) == (200, "text/javascript; charset=utf-8")
        assert (await asyncio.to_thread(_get, url + "nope"))[0] == 404

        async with Chromium(tmp_path / "chromium") as browser:
            await browser.navigate(url)
            first = await browser.wait_for(
                "Number(document.body.dataset.spikesDrawn)", what="spikes drawn > 0"
            )
            assert first > 0
            later = await browser.wait_for(
                f"Number(document.body.dataset.spikesDrawn) > {first} && "
                "Number(document.body.dataset.spikesDrawn)",
                what="spikes drawn to increase",
            )
            assert later > first
            await browser.wait_for(
                "document.body.dataset.status === 'online'", what="data-status online"
            )
            assert await browser.evaluate("document.body.dataset.connected") == "true"
            assert await browser.evaluate("document.body.dataset.gaps") == "0"
            probes = await browser.evaluate(
                "[...document.querySelectorAll('.panel')].map(p => p.dataset.probe).sort()"
            )
            assert probes == ["a_filtered", "a_spikes", "b_filtered", "b_spikes", "u"]
            # Independently of the page's counters: the raster canvas really has ink.
            ink = await browser.evaluate(
                """(() => {
                    const c = document.getElementById('canvas-a_spikes');
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let dark = 0;
                    for (let k = 0; k < d.length; k += 4) if (d[k] < 100) dark++;
                    return dark;
                })()"""
            )
            assert ink > 500, ink
            # For the picture: wait until the raster spans 1.5 s of the 2 s window.
            await browser.wait_for(
                "Number(document.querySelector('.panel[data-probe=a_spikes]')"
                ".dataset.span) >= 1500",
                what="1.5 s of raster",
            )
            shot = await browser.screenshot(tmp_path / "web-monitor.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000
        keep = os.environ.get("SPIKESTREAM_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, Path(keep) / "web-monitor.png")
        print(f"web monitor screenshot: {shot}")
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "batches" in err.decode()
