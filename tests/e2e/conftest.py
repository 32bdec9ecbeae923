"""Fixtures of the end-to-end tests: ``serve(*flags)`` starts ``spikestream serve`` on the
test's mosquitto and kills it at teardown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers import Mosquitto
from tests.serving import SEED, ServeProcess


@pytest.fixture
def serve(mosquitto: Mosquitto, tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[ServeProcess] = []

    def make(*args: str, network: Path = SEED) -> ServeProcess:
        proc = ServeProcess(network, mosquitto.url(), *args, workdir=tmp_path).start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()
