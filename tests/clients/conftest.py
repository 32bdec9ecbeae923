"""Fixtures for the client tests: one real mosquitto and one ``spikestream serve`` of the
seed network, shared by the whole session (starting them costs about two seconds), plus
helpers to run the command-line tools as real subprocesses.

Tests that need their own service (another --ticks-per-frame, stopping it) use the
function-scoped ``mosquitto`` fixture from ``tests/conftest.py`` and a ``ServeProcess``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from spikestream_client import SpikestreamClient
from tests.brokers import Mosquitto, MosquittoMissing
from tests.serving import SEED, ServeProcess


async def wait_online(url: str, net: str, serve: ServeProcess, within: float = 30.0) -> None:
    """Wait until ``net`` reports online on ``url`` (fails with the service log)."""
    async with SpikestreamClient(url) as client:
        try:
            await client.status(net).wait_for("online", timeout=within)
        except TimeoutError:
            pytest.fail(
                f"service did not come online within {within} s "
                f"(exit code {serve.returncode}):\n{serve.log_text()[-3000:]}"
            )


@dataclass
class SeedService:
    """The shared broker and seed service."""

    broker: Mosquitto
    serve: ServeProcess

    @property
    def url(self) -> str:
        return self.broker.url()


@pytest.fixture(scope="session")
def seed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedService]:
    """mosquitto on a free port with ``spikestream serve examples/seed.toml`` online."""
    try:
        broker = Mosquitto(tmp_path_factory.mktemp("clients-broker"))
    except MosquittoMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    broker.start()
    serve = ServeProcess(SEED, broker.url(), workdir=tmp_path_factory.mktemp("clients-serve"))
    try:
        serve.start()
        asyncio.run(wait_online(broker.url(), "seed", serve))
        yield SeedService(broker, serve)
    finally:
        if serve.proc is not None:
            try:
                serve.stop()
            except subprocess.TimeoutExpired:
                serve.kill()
        broker.kill()


def cli(*args: str) -> list[str]:
    """The command line of ``spikestream ARGS`` as a user would run it."""
    return [sys.executable, "-m", "spikestream", *args]


def cli_env() -> dict[str, str]:
    """Environment for tool subprocesses (no colour codes, a wide fixed console)."""
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def run_cli_unread(*args: str, timeout: float = 60.0) -> int:
    """Run ``spikestream ARGS`` with its stdout and stderr on pipes nobody reads (as
    ``| head -0`` leaves them): every line it writes meets a closed pipe. Returns the
    exit code."""
    ends = [os.pipe() for _ in range(2)]
    for read, _ in ends:
        os.close(read)  # the reader is gone before the first line
    try:
        return subprocess.run(
            cli(*args),
            stdout=ends[0][1],
            stderr=ends[1][1],
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            env=cli_env(),
            check=False,
        ).returncode
    finally:
        for _, write in ends:
            os.close(write)


def run_cli(
    *args: str, timeout: float = 60.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``spikestream ARGS`` to completion and return its result."""
    return subprocess.run(
        cli(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env=cli_env(),
        check=False,
    )
