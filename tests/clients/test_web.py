"""``spikestream monitor --web``: the bridge (pure), the page's files, and the page in a real
headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from spikestream.errors import ConfigError
from spikestream_client.codec import decode_event
from spikestream_client.monitor import MonitorOptions
from spikestream_client.monitor.aggregate import MAX_PROBES, MonitorModel
from spikestream_client.monitor.web import (
    ASSETS,
    WEB_DIR,
    WebAccess,
    WebBridge,
    parse_origin,
    run_web,
    snapshot_json,
    start_web_server,
)
from tests.brokers import free_port
from tests.clients.cdp import Chromium, ChromiumMissing, chromium_binary
from tests.clients.conftest import SeedService, cli, cli_env
from tests.clients.frames import (
    HTML_NAME,
    HUGE_INT,
    INPUT_STATS,
    TERMINAL_NAME,
    header,
    hostile_model,
    regular_spikes,
    renamed,
    spike_frame,
    spike_payload,
    value_frame,
)
from tests.clients.rawhttp import reply
from tests.transport.support import eventually


async def canvas_ink(browser: Chromium, canvas_id: str) -> int:
    """Dark pixels on the canvas ``canvas_id``: what the page drew, independently of its
    own counters."""
    return int(
        await browser.evaluate(
            f"""(() => {{
                const c = document.getElementById({canvas_id!r});
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let dark = 0;
                for (let k = 0; k < d.length; k += 4) if (d[k] < 100) dark++;
                return dark;
            }})()"""
        )
    )


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


def test_summary_of_hostile_stats_and_events_is_valid_json() -> None:
    """Numbers no float holds (a 401-digit integer; JSON's 1e999 is refused by the
    decoder), lists and objects where numbers belong become null; strings
    are cut short; the summary always encodes (a ValueError here stopped the bridge)."""
    summary = snapshot_json(hostile_model().snapshot())
    text = json.dumps(summary, allow_nan=False)
    stats = summary["service"]["stats"]
    assert stats["realtime_factor_actual"] is None
    assert stats["late_p99_ms"] is None
    assert stats["late_max_ms"] is None
    assert stats["t"] == "x"
    assert stats["spin_contended"] is None  # a list where a boolean belongs: null
    assert summary["service"]["last_event"] == {
        "event": "\x1b[2J[bold]kind[/bold]",
        "error": "\x1b]0;t\x07[red]why[/red]\u202e",
        "input": None,
        "cmd": None,
    }
    assert len(text) < 10_000
    model = hostile_model()
    model.on_event(
        decode_event(b'{"v": 1, "event": "x", "wall": 1, "error": ' + HUGE_INT + b', "cmd": [1]}')
    )
    summary = snapshot_json(model.snapshot())
    json.dumps(summary, allow_nan=False)
    assert summary["service"]["last_event"] == {
        "event": "x",
        "error": None,
        "input": None,
        "cmd": None,
    }


def _input_model() -> MonitorModel:
    """A model whose latest stats list inputs fresh, stale, hostile and malformed."""
    model = MonitorModel("fake")
    stats = decode_event(INPUT_STATS)
    stats["inputs"][HTML_NAME] = {"age_ms": 40.0, "stale_now": True}
    model.on_stats(stats)
    return model


def test_summary_carries_each_inputs_age_and_stale_state() -> None:
    summary = snapshot_json(_input_model().snapshot())
    json.dumps(summary, allow_nan=False)  # the 401-digit age became null
    assert summary["inputs_hidden"] == 0
    assert summary["inputs"] == [
        {"name": HTML_NAME, "age_ms": 40.0, "stale": True},
        {"name": "bare", "age_ms": None, "stale": None},
        {"name": "late", "age_ms": 2500.0, "stale": True},
        {"name": "odd", "age_ms": None, "stale": None},
        {"name": TERMINAL_NAME, "age_ms": None, "stale": None},
        {"name": "quiet", "age_ms": None, "stale": True},
        {"name": "u", "age_ms": 12.5, "stale": False},
    ]
    assert snapshot_json(MonitorModel("fake").snapshot())["inputs"] == []


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


def _need_chromium() -> None:
    """Fail (never skip) without Chromium, with the install command."""
    try:
        chromium_binary()
    except ChromiumMissing as exc:
        pytest.fail(str(exc), pytrace=False)


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
    _need_chromium()
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
            # The last second's figures from the service's stats, not since start.
            recent = await browser.wait_for(
                "(t => /^\\d\\.\\d{3} · [\\d.]+ \\/ [\\d.]+ ms · [\\d.]+ % · \\d+\\.\\d{3} ms"
                " · steal \\d+\\.\\d %$/"
                ".test(t) && t)"
                "(document.getElementById('s-recent-1s').textContent)",
                what="the last second's RTF and lateness",
            )
            assert float(recent.split(" · ")[0]) > 0.5, recent
            probes = await browser.evaluate(
                "[...document.querySelectorAll('.panel')].map(p => p.dataset.probe).sort()"
            )
            assert probes == ["a_filtered", "a_spikes", "b_filtered", "b_spikes", "u"]
            # Independently of the page's counters: the raster canvas really has ink.
            ink = await canvas_ink(browser, "canvas-a_spikes")
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


# ------------------------------------------------------------ Host and Origin checks


def test_web_access_answers_only_its_own_addresses() -> None:
    access = WebAccess("127.0.0.1", 8080)
    for host in ("localhost:8080", "LocalHost:8080", "127.0.0.1:8080", "[::1]:8080"):
        assert access.host_ok(host), host
    for host in (
        None,
        "",
        "localhost",  # port 80 implied
        "localhost:8081",
        "evil.example:8080",  # DNS rebinding: the attacker's name, our address
        "evil.example",
        "127.0.0.1:8080@evil.example",
        "127.0.0.1:8080/x",
        "127.0.0.1 :8080",
        "localhost:99999",
        "0.0.0.0:8080",
    ):
        assert not access.host_ok(host), host
    assert access.origin_ok(None)  # scripts and tools send no Origin; browsers always do
    for origin in ("http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"):
        assert access.origin_ok(origin), origin
    for origin in (
        "http://evil.example",
        "http://evil.example:8080",
        "https://localhost:8080",
        "http://localhost:8081",
        "null",  # sandboxed frames and file: pages
        "",
        "localhost:8080",
    ):
        assert not access.origin_ok(origin), origin


def test_web_access_bound_address_and_allowed_origins() -> None:
    assert WebAccess("192.168.1.5", 9000).host_ok("192.168.1.5:9000")
    assert WebAccess("::1", 9000).origin_ok("http://[::1]:9000")
    assert not WebAccess("0.0.0.0", 9000).host_ok("192.168.1.5:9000")
    assert WebAccess("127.0.0.1", 80).host_ok("localhost")  # the default port left out
    access = WebAccess(
        "127.0.0.1",
        8080,
        ["http://Pi.Local:8080", "https://mon.example.com", "http://[fe80::1]:81"],
    )
    assert access.host_ok("pi.local:8080")
    assert access.origin_ok("http://pi.local:8080")
    assert access.host_ok("mon.example.com")  # behind a TLS proxy on 443
    assert access.host_ok("mon.example.com:443")
    assert access.origin_ok("https://mon.example.com")
    assert access.origin_ok("https://mon.example.com:443")
    assert not access.origin_ok("http://mon.example.com")  # another scheme, another origin
    assert access.host_ok("[fe80::1]:81")
    assert not access.host_ok("pi.local:8081")


@pytest.mark.parametrize(
    "url",
    ["pi.local:8080", "ftp://pi.local", "http://", "http://u:p@pi.local", "http://pi/x",
     "http://pi:99999", "http://pi?x", "*"],
)  # fmt: skip
def test_bad_allowed_origins_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match=r"--web-allow-origin .*expected an origin like"):
        parse_origin(url)


@contextlib.asynccontextmanager
async def _server(
    allow: Sequence[str] = (), bridge: WebBridge | None = None, port: int = 0
) -> AsyncIterator[tuple[WebBridge, int]]:
    bridge = bridge or WebBridge("fake")
    server = await start_web_server(bridge, "127.0.0.1", port, allow)
    try:
        yield bridge, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _http(port: int, request: bytes) -> bytes:
    """Send raw bytes; return what the server answers before it closes (or b"")."""
    return await reply(port, request)


async def _status(port: int, host: str, origin: str | None = None, path: str = "/") -> int:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    reply = await _http(port, ("\r\n".join(lines) + "\r\n\r\n").encode())
    return int(reply.split(b" ", 2)[1])


async def test_foreign_host_is_refused_with_403_and_allowed_with_the_flag() -> None:
    async with _server() as (bridge, port):
        assert await _status(port, f"127.0.0.1:{port}") == 200
        assert await _status(port, f"localhost:{port}", path="/monitor.js") == 200
        assert await _status(port, f"evil.example:{port}") == 403
        assert await _status(port, f"evil.example:{port}", path="/ws") == 403
        assert await _status(port, f"localhost:{port}", origin="http://evil.example") == 403
        assert bridge.refused == 3
    port = free_port()
    async with _server([f"http://pi.local:{port}"], port=port) as (bridge, _):
        assert await _status(port, f"pi.local:{port}") == 200
        assert await _status(port, f"pi.local:{port}", origin=f"http://pi.local:{port}") == 200
        assert await _status(port, f"evil.example:{port}") == 403
        assert bridge.refused == 1


async def test_websocket_with_a_foreign_origin_is_refused() -> None:
    async with _server() as (bridge, port):
        url = f"ws://127.0.0.1:{port}/ws"
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            async with connect(url, origin="null"):  # type: ignore[arg-type]
                pass
        for origin in (None, f"http://localhost:{port}"):
            async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert hello["type"] == "hello"
        assert bridge.refused == 2


async def test_websocket_origin_allowed_by_the_flag() -> None:
    async with _server(["https://mon.example.com"]) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws"
        async with connect(url, origin="https://mon.example.com") as ws:  # type: ignore[arg-type]
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
        with pytest.raises(InvalidStatus):
            async with connect(url, origin="http://mon.example.com"):  # type: ignore[arg-type]
                pass


async def test_bare_and_garbage_connections_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Port scanners, health checks and stray clients: one DEBUG line each, no ERROR and
    no traceback (websockets used to log three tracebacks per bare connect)."""
    caplog.set_level(logging.DEBUG)
    async with _server() as (_, port):
        probes = [
            b"",  # connect, then close
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: loc",  # cut off mid-request
        ]
        for raw in probes:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            writer.close()  # without waiting for an answer
            await writer.wait_closed()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.abort()  # a reset rather than a close
        # The server still works afterwards.
        assert await _status(port, f"127.0.0.1:{port}") == 200
        await eventually(lambda: len(_aborted(caplog.records)) >= len(probes) + 1, 5)
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not bad, [(r.name, r.levelname, r.getMessage()) for r in bad]
    assert len(_aborted(caplog.records)) == len(probes) + 1
    # One DEBUG line per aborted connection, none of websockets' per-connection tracing.
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == _aborted(caplog.records), [r.getMessage() for r in debug]


def _aborted(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if "closed before a valid request" in r.getMessage()]


async def test_a_real_handshake_failure_still_logs_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The quiet logger hides aborted connections only, not a failure of our own code."""

    class Broken(WebAccess):
        def host_ok(self, value: str | None) -> bool:
            raise RuntimeError("bug in the access check")

    async with _server() as (bridge, port):
        bridge.access = Broken("127.0.0.1", port)
        assert await _status(port, f"127.0.0.1:{port}") == 500
        await eventually(lambda: any(r.levelno >= logging.ERROR for r in caplog.records), 5)
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert "bug in the access check" in str(error.exc_info[1])


# ------------------------------------------------------- hostile strings in the page


@contextlib.asynccontextmanager
async def _pumped_page(
    tmp_path: Path, port: int, pump: Callable[[], Awaitable[None]]
) -> AsyncIterator[Chromium]:
    """Chromium on the test server's page while ``pump`` feeds its bridge."""
    task = asyncio.create_task(pump())
    try:
        async with Chromium(tmp_path / "chromium") as browser:
            await browser.navigate(f"http://127.0.0.1:{port}/")
            yield browser
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _summaries(bridge: WebBridge, model: MonitorModel) -> Callable[[], Awaitable[None]]:
    """A pump for :func:`_pumped_page`: the model's summary to the page every 50 ms."""

    async def pump() -> None:
        while True:
            bridge.broadcast(snapshot_json(model.snapshot()))
            await asyncio.sleep(0.05)

    return pump


async def _page_is_safe(browser: Chromium) -> None:
    """No element or script was injected, and nothing the injection would set is set."""
    assert await browser.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
    assert await browser.evaluate("typeof window.__pwned") == "undefined"


@pytest.mark.browser
async def test_hostile_names_and_event_text_show_as_text_in_chromium(tmp_path: Path) -> None:
    """Defence in depth: frames whose probe name holds HTML (as if the codec had let it
    through) and an event holding HTML reach the page; it shows them as text."""
    _need_chromium()
    bridge = WebBridge("fake")
    model = MonitorModel("fake", window=1.0)
    script = "<script>window.__pwned=2</script>"
    model.on_event({"event": HTML_NAME, "error": script})
    model.on_status("<b>online</b>")

    def feed(seq: int) -> None:
        h = header("s", seq, 10 * seq)
        for frame in (
            renamed(spike_frame(h, regular_spikes(10 * seq, 10, 4, 5)), probe=HTML_NAME),
            renamed(value_frame(h, np.ones((10, 1))), probe=script),
        ):
            bridge.on_frame(frame)
            model.on_frame(frame)

    async with _server(bridge=bridge) as (_, port):

        async def pump() -> None:
            for seq in range(10_000):
                feed(seq)
                message = bridge.batch()
                if message is not None:
                    bridge.broadcast(message)
                bridge.broadcast(snapshot_json(model.snapshot()))
                await asyncio.sleep(0.05)

        async with _pumped_page(tmp_path, port, pump) as browser:
            await browser.wait_for(
                "document.querySelectorAll('.panel').length === 2 && "
                "document.querySelectorAll('#probe-rows tr').length === 2",
                what="two panels and two table rows",
            )
            names = await browser.evaluate(
                "[...document.querySelectorAll('.panel')].map(p => p.dataset.probe).sort()"
            )
            assert names == sorted([HTML_NAME, script])
            titles = await browser.evaluate(
                "[...document.querySelectorAll('.panel h2')].map(h => h.firstChild.data)"
            )
            assert sorted(titles) == sorted([HTML_NAME, script])
            cells = await browser.evaluate(
                "[...document.querySelectorAll('#probe-rows tr')]"
                ".map(r => [r.dataset.probe, r.cells[0].textContent, "
                "r.cells[0].children.length])"
            )
            assert sorted(cells) == sorted([[HTML_NAME, HTML_NAME, 0], [script, script, 0]])
            events = await browser.wait_for(
                "document.getElementById('s-events').textContent.includes('last:') && "
                "document.getElementById('s-events').textContent",
                what="the last event shown",
            )
            assert HTML_NAME in events
            assert script in events
            assert (
                await browser.evaluate("document.getElementById('s-events').children.length") == 0
            )
            assert await browser.evaluate("document.getElementById('status').textContent") == (
                "<b>online</b>"
            )
            await _page_is_safe(browser)


@pytest.mark.browser
async def test_inputs_age_and_stale_state_show_as_text_in_chromium(tmp_path: Path) -> None:
    """The page lists each input with its age and a STALE marker, from the summary; a
    name holding HTML shows as text, and a second summary with fewer inputs replaces the
    rows."""
    _need_chromium()
    model = _input_model()
    rows_js = (
        "[...document.querySelectorAll('#input-rows tr')].map(r => [r.dataset.input, "
        "r.dataset.stale, ...[...r.cells].map(c => c.textContent), r.cells[0].children.length])"
    )
    async with (
        _server() as (bridge, port),
        _pumped_page(tmp_path, port, _summaries(bridge, model)) as browser,
    ):
        await browser.wait_for(
            "document.querySelectorAll('#input-rows tr').length === 7", what="7 inputs"
        )
        assert await browser.evaluate("document.getElementById('inputs').hidden") is False
        rows = await browser.evaluate(rows_js)
        assert rows == [
            [HTML_NAME, "true", HTML_NAME, "40.0", "STALE", 0],
            ["bare", "", "bare", "-", "-", 0],
            ["late", "true", "late", "2500.0", "STALE", 0],
            ["odd", "", "odd", "-", "-", 0],
            [TERMINAL_NAME, "", TERMINAL_NAME, "-", "-", 0],
            ["quiet", "true", "quiet", "-", "STALE", 0],
            ["u", "false", "u", "12.5", "fresh", 0],
        ]
        late_js = "document.getElementById('s-late').textContent"
        assert "contended" not in await browser.evaluate(late_js)
        # The tick thread kept waiting for a CPU: flagged beside the lateness.
        model.on_stats(
            {"inputs": {"u": {"age_ms": 3000.0, "stale_now": True}}, "spin_contended": True}
        )
        await browser.wait_for(
            "document.querySelectorAll('#input-rows tr').length === 1", what="1 input"
        )
        assert await browser.evaluate(rows_js) == [["u", "true", "u", "3000.0", "STALE", 0]]
        assert await browser.evaluate(late_js) == "- / - ms (CPU contended)"
        # Schedule time the catch-up policy gave up on: shown beside the factor.
        rtf_js = "document.getElementById('s-rtf').textContent"
        assert "behind" not in await browser.evaluate(rtf_js)
        model.on_stats({"realtime_factor_actual": 0.5, "behind_ms": 12.5})
        await browser.wait_for(f"{rtf_js} === '0.500 (behind 12.500 ms)'", what="behind")
        await _page_is_safe(browser)


@pytest.mark.broker
@pytest.mark.browser
async def test_hostile_frame_is_rejected_and_hostile_event_shown_as_text_end_to_end(
    seed_service: SeedService, tmp_path: Path
) -> None:
    """Through the real monitor: a crafted raw frame whose probe name holds HTML is
    refused by the codec (no panel, counted), and an event holding HTML, published on
    the events topic, shows as text; no script runs."""
    _need_chromium()
    proc, url = await _start_web_monitor(seed_service.url)
    broker = seed_service.broker
    try:
        async with Chromium(tmp_path / "chromium") as browser:
            await browser.navigate(url)
            await browser.wait_for("document.body.dataset.status === 'online'", what="online")
            crafted = spike_payload(
                header(HTML_NAME, 0, 0, net="seed"), regular_spikes(0, 10, 4, 2)
            )
            event = {
                "v": 1,
                "event": HTML_NAME,
                "wall": 1.7e9,
                "error": "<script>window.__pwned=2</script>",
            }
            async with aiomqtt.Client(broker.host, broker.port) as pub:
                for _ in range(3):
                    await pub.publish("spikestream/seed/out/evil", crafted, qos=1)
                    await pub.publish(f"spikestream/seed/out/{HTML_NAME}", crafted, qos=1)
                await pub.publish("spikestream/seed/events", json.dumps(event), qos=1)
            shown = await browser.wait_for(
                "document.getElementById('s-events').textContent.includes('onerror') && "
                "document.getElementById('s-events').textContent",
                what="the hostile event shown as text",
            )
            assert HTML_NAME in shown
            assert "<script>window.__pwned=2</script>" in shown
            probes = await browser.evaluate(
                "[...document.querySelectorAll('.panel')].map(p => p.dataset.probe).sort()"
            )
            assert probes == ["a_filtered", "a_spikes", "b_filtered", "b_spikes", "u"]
            await _page_is_safe(browser)
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 0, text
    assert "cannot decode frame on 'seed'/out/" in text  # counted and logged once
    assert "'probe' must be a name" in text
    assert "Traceback" not in text


# ------------------------------------------------------- long runs and hidden probes


@pytest.mark.browser
async def test_raster_draws_spikes_past_tick_2_31_in_chromium(tmp_path: Path) -> None:
    """A service reaches tick 2**31 after 24.8 days at dt = 1 ms; the page kept a batch's
    ticks in an Int32Array, where they wrapped negative, and drew a blank raster from
    then on (0 spikes drawn). Frames from tick 2**31 + 1000 must be drawn."""
    _need_chromium()
    first = 2**31 + 1000
    bridge = WebBridge("fake")
    async with _server(bridge=bridge) as (_, port):

        async def pump() -> None:
            for seq in range(10_000):
                tick = first + 10 * seq
                frame = spike_frame(header("s", seq, tick), regular_spikes(tick, 10, 4, 5))
                bridge.on_frame(frame)
                message = bridge.batch()
                if message is not None:
                    bridge.broadcast(message)
                await asyncio.sleep(0.05)

        async with _pumped_page(tmp_path, port, pump) as browser:
            drawn = await browser.wait_for(
                "Number(document.body.dataset.spikesDrawn)", within=15, what="spikes drawn"
            )
            assert drawn > 0
            panel = "document.querySelector('.panel[data-probe=s]')"
            assert int(await browser.evaluate(f"{panel}.dataset.visible")) > 0
            # Independently of the page's counters: the raster canvas really has ink.
            ink = await canvas_ink(browser, "canvas-s")
            assert ink > 0


@pytest.mark.browser
async def test_probes_not_shown_are_said_on_the_page_in_chromium(tmp_path: Path) -> None:
    """Past the 256 probes the monitor shows, the frames of further probes were dropped
    without a word (the model counted them, no view showed the count); the page now
    says how many probes it does not show, as text."""
    _need_chromium()
    model = MonitorModel("fake", window=0.1, bins=4)
    spikes = regular_spikes(0, 10, 2, 5)
    for k in range(MAX_PROBES + 5):
        model.on_frame(spike_frame(header(f"p{k}", 0, 0), spikes))
    note_js = "(document.getElementById('limits') || {}).textContent"
    async with (
        _server() as (bridge, port),
        _pumped_page(tmp_path, port, _summaries(bridge, model)) as browser,
    ):
        note = await browser.wait_for(
            f"{note_js} && {note_js}.includes('probes not shown') && {note_js}",
            what="the note on probes not shown",
        )
        assert note == "5 more probes not shown (5 frames; at most 256 probes are shown)"
        assert await browser.evaluate("document.body.dataset.ignoredProbes") == "5"
        assert await browser.evaluate("document.getElementById('limits').children.length") == 0
        assert await browser.evaluate("document.querySelectorAll('#probe-rows tr').length") == (
            MAX_PROBES
        )


# ------------------------------------------------------------------ mutation audit


def test_summary_keeps_booleans_and_cuts_text_at_200_characters() -> None:
    """``paused: true`` reaches the page as a boolean (not null), and a string from the
    bus as its first 200 characters."""
    model = MonitorModel("fake")
    model.on_stats({"tick": 5, "paused": True, "spin_contended": False, "t": "x" * 300})
    stats = snapshot_json(model.snapshot())["service"]["stats"]
    assert (stats["paused"], stats["spin_contended"]) == (True, False)
    assert stats["t"] == "x" * 200


def test_a_frame_delivered_twice_does_not_shrink_the_coverage() -> None:
    """A frame inside the range already covered (a QoS 1 redelivery) leaves the range's
    end where it was."""
    bridge = WebBridge("fake")
    for seq in (0, 1, 0):
        bridge.on_frame(spike_frame(header("s", seq, 10 * seq), regular_spikes(10 * seq, 10, 4, 5)))
    batch = bridge.batch()
    assert batch is not None
    assert batch["probes"]["s"]["cov"] == [[0, 20]]


def test_without_a_model_the_bridge_forwards_the_first_max_probes_probes() -> None:
    bridge = WebBridge("fake")
    for k in range(MAX_PROBES + 3):
        bridge.on_frame(spike_frame(header(f"p{k}", 0, 0), regular_spikes(0, 10, 4, 5)))
    batch = bridge.batch()
    assert batch is not None
    assert sorted(batch["probes"]) == sorted(f"p{k}" for k in range(MAX_PROBES))


def test_spikes_past_max_spikes_are_counted_and_the_newest_sent_in_time_order() -> None:
    """Three frames of 40 spikes with room for 50: the newest 50 go (all of the last
    frame, the end of the one before), oldest first; the other 70 are ``thinned``."""
    bridge = WebBridge("fake", max_spikes=50)
    for seq in range(3):
        bridge.on_frame(spike_frame(header("s", seq, 10 * seq), np.ones((10, 4), dtype=bool)))
    batch = bridge.batch()
    assert batch is not None
    s = batch["probes"]["s"]
    assert s["thinned"] == 70
    assert s["t"] == [17, 17] + [18] * 4 + [19] * 4 + [t for t in range(20, 30) for _ in range(4)]
    assert s["i"] == [2, 3] + [0, 1, 2, 3] * 12
    assert (bridge.spikes_sent, bridge.batches) == (50, 1)


def test_value_rows_are_decimated_on_absolute_ticks_without_repeating_a_row() -> None:
    """Every 4th absolute tick (250 rows/s of 1 ms ticks) whatever the frames' edges,
    plus each frame's last row, once: a frame of 9 ticks ends on tick 8, sent once."""
    bridge = WebBridge("fake", value_rate=250.0)
    bridge.on_frame(value_frame(header("v", 0, 0, ticks=9), np.arange(9.0)[:, None]))
    bridge.on_frame(value_frame(header("v", 1, 9, ticks=10), np.arange(9.0, 19.0)[:, None]))
    batch = bridge.batch()
    assert batch is not None
    v = batch["probes"]["v"]
    assert v["t"] == [0, 4, 8, 12, 16, 18]
    assert v["v"] == [[0.0], [4.0], [8.0], [12.0], [16.0], [18.0]]


def test_slow_value_probes_send_every_row() -> None:
    """Ticks of 10 ms are fewer than 250 a second: every row goes, none twice."""
    bridge = WebBridge("fake", value_rate=250.0)
    bridge.on_frame(value_frame(header("v", 0, 0, dt=0.01), np.arange(10.0)[:, None]))
    batch = bridge.batch()
    assert batch is not None
    assert batch["probes"]["v"]["t"] == list(range(10))


def test_value_rows_carry_the_first_8_components() -> None:
    bridge = WebBridge("fake")
    bridge.on_frame(value_frame(header("v", 0, 0), np.tile(np.arange(12.0), (10, 1))))
    batch = bridge.batch()
    assert batch is not None
    v = batch["probes"]["v"]
    assert v["shape"] == [12]
    assert all(row == [float(k) for k in range(8)] for row in v["v"])


async def test_a_query_string_does_not_hide_the_page_or_the_websocket() -> None:
    """``/monitor.js?v=2`` is the script and ``/ws?t=1`` the WebSocket (a cache-busting
    query is common): the query is not part of the path looked up."""
    async with _server() as (_, port):
        assert await _status(port, f"127.0.0.1:{port}", path="/monitor.js?v=2") == 200
        assert await _status(port, f"127.0.0.1:{port}", path="/nope?v=2") == 404
        async with connect(f"ws://127.0.0.1:{port}/ws?t=1") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"


def test_refusals_are_logged_first_and_then_every_100th(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="spikestream_client.web")
    bridge = WebBridge("fake")
    for _ in range(250):
        bridge.refuse_method("POST")
    assert bridge.refused == 250
    assert [r.getMessage() for r in caplog.records] == [
        f"web monitor: refused a request with method POST ({n} refused so far)"
        for n in (1, 100, 200)
    ]


@pytest.mark.parametrize(
    ("web", "origins", "expected"),
    [
        (65536, (), "--web must be a TCP port in 0..65535, got 65536"),
        (-1, (), "--web must be a TCP port in 0..65535, got -1"),
        (0, ("pi.local:8080",), "--web-allow-origin 'pi.local:8080': expected an origin like"),
    ],
)
async def test_bad_web_flags_are_refused_before_the_broker_is_reached(
    web: int, origins: tuple[str, ...], expected: str
) -> None:
    """A bad ``--web`` or ``--web-allow-origin`` was said only after the broker had been
    reached (and the network found): with no broker, ten seconds of retries ended in a
    connection error that did not name the flag. Nothing listens on this broker's port."""
    options = MonitorOptions(
        "seed", broker=f"mqtt://127.0.0.1:{free_port()}", web=web, web_allow_origins=origins
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}"):
        await run_web(options, asyncio.Event())


async def test_a_page_sending_more_than_64_kib_is_closed() -> None:
    """The page only reads; a message past 64 KiB from it closes the connection (1009)
    instead of being buffered."""
    async with _server() as (_, port):
        ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        try:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
            await ws.send("x" * 70_000)
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1009
        finally:
            await ws.close()


def test_values_that_are_not_finite_reach_the_page_as_null() -> None:
    """JSON has no NaN or Infinity: the latest values and the value rows say null (an
    Infinity made the encoder raise and stopped the bridge)."""
    model = MonitorModel("fake", window=1.0, bins=10)
    bridge = WebBridge("fake")
    frame = value_frame(header("v", 0, 0), np.array([[1.0, np.nan, np.inf]] * 10))
    model.on_frame(frame)
    bridge.on_frame(frame)
    summary = snapshot_json(model.snapshot())
    json.dumps(summary, allow_nan=False)
    assert summary["probes"][0]["latest"] == [1.0, None, None]
    batch = bridge.batch()
    assert batch is not None
    json.dumps(batch, allow_nan=False)
    assert batch["probes"]["v"]["v"][0] == [1.0, None, None]


async def test_a_refused_host_is_named_in_the_log_with_the_flag_that_allows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="spikestream_client.web")
    async with _server() as (_, port):
        assert await _status(port, f"evil.example:{port}") == 403
    assert [r.getMessage() for r in caplog.records] == [
        f"web monitor: refused a request with Host 'evil.example:{port}' (1 refused so far); "
        "allow it with --web-allow-origin URL"
    ]


@pytest.mark.broker
async def test_web_monitor_on_ipv6_says_a_usable_url_and_shows_at_least_2_s(
    seed_service: SeedService, capsys: pytest.CaptureFixture[str]
) -> None:
    """On ``--host ::1`` the printed URL brackets the address (``http://::1:PORT/`` is no
    URL); the page shows at least 2 s whatever ``--window``."""
    options = MonitorOptions("seed", broker=seed_service.url, window=0.5, web=0, host="::1")
    stop = asyncio.Event()
    task = asyncio.create_task(run_web(options, stop))
    try:
        said = ""
        async with asyncio.timeout(20):
            while "web monitor: http://" not in said:
                await asyncio.sleep(0.05)
                said += capsys.readouterr().out
        match = re.search(r"web monitor: http://\[::1\]:(\d+)/", said)
        assert match, said
        async with connect(f"ws://[::1]:{match[1]}/ws") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (hello["type"], hello["net"], hello["window"]) == ("hello", "seed", 2.0)
    finally:
        stop.set()
    assert await task == 0
