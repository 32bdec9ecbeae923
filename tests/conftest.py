"""Shared fixtures: real mosquitto brokers started by the tests on free ports.

``mosquitto``          a default broker (anonymous, TCP_NODELAY), killed at teardown
``mosquitto_factory``  ``make(**options) -> Mosquitto`` for users/ACL/websockets/...
``free_port``          a TCP port on 127.0.0.1 that was free a moment ago
``nats_cluster``       three nats-server nodes clustered, MQTT on each, killed at teardown

The helpers live in ``tests/brokers.py`` (importable as ``tests.brokers``). A missing
mosquitto (or nats-server) binary FAILS the test with the install command: broker tests
never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.brokers import Mosquitto, MosquittoFactory, MosquittoMissing, NatsCluster, NatsMissing
from tests.brokers import free_port as _free_port

# Hypothesis fails an example slower than 200 ms by default: a timing assertion, which a
# busy 2-core machine fails at random (one did, under load). Speed belongs in bench/.
settings.register_profile("spikestream", deadline=None)
settings.load_profile("spikestream")


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Start mosquitto brokers with custom options; all are SIGKILLed at teardown."""
    started: list[Mosquitto] = []

    def make(**options: Any) -> Mosquitto:
        try:
            broker = Mosquitto(tmp_path / f"mosquitto-{len(started)}", **options)
        except MosquittoMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(broker)
        broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in started:
            broker.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A running anonymous mosquitto on a free loopback port."""
    return mosquitto_factory()


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (call ``brokers.free_port()`` for more)."""
    return _free_port()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A running three-node NATS cluster with MQTT on every node (see ``NatsCluster``)."""
    try:
        cluster = NatsCluster(tmp_path / "nats")
    except NatsMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(autouse=True, scope="session")
def _own_decoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Builds in tests (and the processes they start) cache solved decoders in a folder of
    their own, never in the user's ``~/.cache``."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old
