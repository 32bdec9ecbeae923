"""Run ``spikestream serve`` as a real subprocess, and listen to it over MQTT.

``ServeProcess`` starts the console entry point exactly as a user would (``python -m
spikestream ... serve``) against a test broker; ``Listener`` is a small aiomqtt subscriber
that timestamps every message on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import aiomqtt

ROOT = Path(__file__).parents[2]  # tests/serving/__init__.py -> the repository
EXAMPLES = ROOT / "examples"
SEED = EXAMPLES / "seed.toml"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def offline_service() -> Any:
    """A ``Service`` on the seed network with default settings and a broker it never
    reaches (for tests of what the service builds, not of what it sends)."""
    from spikestream.build import build
    from spikestream.serving.service import Service
    from spikestream.serving.settings import ServeSettings
    from spikestream.spec import load_network
    from spikestream_client.transport import parse_broker_url

    return Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )


def _default_hangup() -> None:
    _signal.signal(_signal.SIGHUP, _signal.SIG_DFL)


class ServeProcess:
    """``spikestream serve NETWORK --broker URL ...`` in a subprocess, logs to a file."""

    def __init__(
        self,
        network: Path,
        broker_url: str,
        *args: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        more_networks: Sequence[Path] = (),
    ) -> None:
        self.network = network
        self.more_networks = [str(p) for p in more_networks]
        self.broker_url = broker_url
        self.args = list(args)
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.log_path = workdir / f"serve-{network.stem}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "spikestream",
            "--log-format",
            "json",
            "serve",
            str(self.network),
            *self.more_networks,
            "--broker",
            self.broker_url,
            *self.args,
        ]

    def start(self) -> ServeProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.env,
            # As from a terminal: a test run under nohup would pass its ignored SIGHUP on,
            # which serve rightly keeps ignoring (the SIGHUP tests send one).
            preexec_fn=_default_hangup,
        )
        log.close()
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = _signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit on its own; returns the exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Message:
    topic: str
    payload: bytes
    received: float  # time.time() on arrival
    retain: bool


class BackgroundClient:
    """An MQTT client running as a task for the length of an ``async with`` block.

    Subclasses implement ``_run`` and call ``self._ready.set()`` once subscribed; entering
    waits for that (10 s at most, failing the test if the client gives up first).
    """

    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event

    async def _run(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({ready, self._task}, timeout=10.0, return_when="FIRST_COMPLETED")
        if not ready.done():
            ready.cancel()
            await self.__aexit__()
            raise AssertionError(f"{type(self).__name__} could not connect and subscribe")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Listener(BackgroundClient):
    """Collects every message on ``filters`` into ``messages``."""

    hostname: str
    port: int
    filters: Sequence[str]
    messages: list[Message] = field(default_factory=list)
    client: aiomqtt.Client | None = None
    #: Subscription QoS. On a NATS cluster a QoS 1 subscription is a JetStream consumer
    #: (every message stored and replicated); QoS 0 takes the plain routed path.
    qos: int = 1

    #: Reconnect (every 0.1 s) when the broker goes away, instead of ending.
    reconnect: bool = False
    connects: int = 0

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError:
                if not self.reconnect:
                    raise
            if not self.reconnect:
                return
            await asyncio.sleep(0.1)

    async def _session(self) -> None:
        async with aiomqtt.Client(self.hostname, self.port, socket_options=NODELAY) as client:
            self.client = client
            for f in self.filters:
                await client.subscribe(f, qos=self.qos)
            self.connects += 1
            self._ready.set()
            async for msg in client.messages:
                payload = (
                    msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
                )
                self.messages.append(Message(str(msg.topic), payload, time.time(), msg.retain))

    def on(self, topic: str) -> list[Message]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(
        self, pred: Callable[[list[Message]], Any], within: float = 15.0, what: str = ""
    ) -> Any:
        deadline = time.monotonic() + within
        while True:
            result = pred(self.messages)
            if result:
                return result
            if time.monotonic() > deadline:
                topics = sorted({m.topic for m in self.messages})
                raise AssertionError(f"timed out waiting for {what or pred}; topics seen: {topics}")
            await asyncio.sleep(0.02)

    async def wait_status(self, net: str, status: bytes, within: float = 15.0) -> None:
        topic = f"spikestream/{net}/status"
        await self.wait_for(
            lambda ms: any(m.topic == topic and m.payload == status for m in ms),
            within,
            f"{topic} = {status!r}",
        )
