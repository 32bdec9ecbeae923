"""The closed-loop example: a spiking PD controller stabilises a point mass over MQTT."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.brokers import Mosquitto
from tests.serving import EXAMPLES, Listener, ServeProcess

pytestmark = pytest.mark.broker
PLANT = EXAMPLES / "loop" / "plant.py"


async def test_loop_stabilises_the_plant(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = ServeProcess(EXAMPLES / "loop" / "controller.toml", mosquitto.url(), workdir=tmp_path)
    proc.start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/loop/status"]) as sub:
            await sub.wait_status("loop", b"online")
        trace = tmp_path / "trace.csv"
        plant = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                str(PLANT),
                "--broker",
                mosquitto.url(),
                "--duration",
                "8",
                "--out",
                str(trace),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        proc.stop()
    summary = json.loads(plant.stdout.strip().splitlines()[-1])
    assert plant.returncode == 0, (plant.stdout, plant.stderr)
    assert summary["settled"] is True
    assert summary["force_frames"] > 500
    data = np.loadtxt(trace, delimiter=",", skiprows=1)
    t, x = data[:, 0], data[:, 1]
    assert x[0] == pytest.approx(0.7, abs=0.01)
    # It moved towards 0 under the network's force, and stayed there.
    assert np.abs(x[t > 7.0]).max() < 0.1
    assert np.abs(data[:, 3]).max() > 0.2  # the network really pushed
