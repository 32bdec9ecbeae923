"""The service follows its engine's tick path: stats say which, and the I/O side hands the
GIL to the tick thread only where the tick needs it several times (the Python path)."""

from __future__ import annotations

import pytest

from spikestream.build import build
from spikestream.runtime.gil import yield_gil
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statistics import stats_payload
from spikestream.spec import load_network
from spikestream_client.transport import parse_broker_url
from tests.serving import SEED


@pytest.mark.parametrize(
    ("python_tick", "path", "yields"),
    [(False, "compiled", False), (True, "python (turned off)", True)],
)
def test_the_service_follows_its_tick_path(python_tick: bool, path: str, yields: bool) -> None:
    svc = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(python_tick=python_tick),
        memory_limit=1 << 30,
    )
    assert svc.engine.tick_path == path
    assert stats_payload(svc.statistics())["tick_path"] == path
    assert (svc._yield_gil is yield_gil) is yields
