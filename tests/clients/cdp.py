"""Drive headless Chromium over the DevTools protocol (CDP) with a websockets client.

``Chromium`` starts ``chromium --headless --remote-debugging-port=0`` with a throw-away
profile, reads the port it picked from ``<profile>/DevToolsActivePort``, finds the page
target over ``/json/list`` and talks to it: ``navigate``, ``evaluate`` (Runtime.evaluate)
and ``screenshot`` (Page.captureScreenshot). A missing binary raises
:class:`ChromiumMissing` carrying the install command, which the tests turn into a FAIL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "headless Chromium not found; install it with: apt-get install -y chromium"


class ChromiumMissing(RuntimeError):
    """No Chromium binary on this machine."""


def chromium_binary() -> str:
    """Path of a Chromium executable (``$SPIKESTREAM_TEST_CHROMIUM`` first)."""
    env = os.environ.get("SPIKESTREAM_TEST_CHROMIUM")
    for candidate in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    raise ChromiumMissing(INSTALL_HINT)


class Chromium:
    """One headless Chromium with one page, controlled over CDP."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 1000) -> None:
        self.binary = chromium_binary()
        self.profile = profile
        self.width = width
        self.height = height
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._log = profile / "chromium.log"

    async def __aenter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        log = await asyncio.to_thread(self._log.open, "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-extensions",
                "--mute-audio",
                f"--window-size={self.width},{self.height}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "about:blank",
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        port = await self._wait_port(port_file)
        target = await asyncio.to_thread(self._page_target, port)
        self.ws = await connect(target, max_size=64 * 1024 * 1024, open_timeout=10)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def _wait_port(self, port_file: Path, within: float = 20.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise RuntimeError(f"chromium exited early:\n{self.log_text()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = await asyncio.to_thread(port_file.read_text)
                return int(text.splitlines()[0])
            await asyncio.sleep(0.05)
        raise RuntimeError(f"chromium did not open its DevTools port:\n{self.log_text()}")

    @staticmethod
    def _page_target(port: int) -> str:
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise RuntimeError(f"no page target in {targets}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (events in between are skipped)."""
        assert self.ws is not None
        call = next(self._ids)
        await self.ws.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if reply.get("id") == call:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method} failed: {reply['error']}")
                return dict(reply.get("result", {}))

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate a JS expression in the page and return its JSON value."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 20.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + within
        value: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                value = await self.evaluate(expression)
                if value:
                    return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or expression}; last value {value!r}")

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the page's viewport to ``path``."""
        result = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))
        return path
