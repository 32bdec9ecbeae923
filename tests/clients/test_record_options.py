"""``spikestream record``'s options: what it refuses before recording, and the flags that
must reach the recorder (``--probe``, ``--quiet``, ``--wait-net``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream_client.errors import ConfigError
from spikestream_client.record import RecordOptions, run
from tests.brokers import Mosquitto
from tests.clients.conftest import SeedService, run_cli


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"duration": 0.0}, "--duration must be > 0 seconds, got 0.0"),
        ({"duration": float("inf")}, "--duration must be > 0 seconds, got inf"),
        (
            {"max_bytes": 0},
            "--max-mib must be a finite number of MiB > 0, at least one byte; got 0 ",
        ),
        ({"out": "{d}/none/r.npz"}, "cannot write '{d}/none/r.npz': folder '{d}/none' does not"),
        ({"out": "{d}"}, "cannot write '{d}': it exists and is not a regular file"),
        ({"plot": "{d}/r.npz.png", "out": "{d}/r.npz.png"}, "--out and --plot both name"),
    ],
)
async def test_options_record_cannot_honour_are_refused_before_recording(
    change: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    """Each was found only once the recording was done (and lost: a folder or the plot's
    own file as --out), or recorded nothing (--duration 0), or for ever (inf). They are
    refused first, naming what arrived; no broker is asked (port 9)."""
    d = str(tmp_path)
    options = RecordOptions(
        net="seed", out=tmp_path / "r.npz", broker="mqtt://127.0.0.1:9", quiet=True
    )
    for key, value in change.items():
        setattr(options, key, Path(value.format(d=d)) if isinstance(value, str) else value)
    with pytest.raises(ConfigError) as caught:
        await asyncio.wait_for(run(options, asyncio.Event()), 20)
    assert expected.format(d=d) in str(caught.value)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []  # nothing written


@pytest.mark.broker
async def test_record_keeps_only_the_probes_named_and_quiet_says_nothing(
    seed_service: SeedService, tmp_path: Path
) -> None:
    """``--probe`` and ``--quiet`` reach the recorder: the file holds the one probe named
    (the seed network publishes five), and a clean recording prints no line at all."""
    out = tmp_path / "one.npz"
    done = await asyncio.to_thread(
        run_cli, "record", "--broker", seed_service.url, "--net", "seed", "--probe", "a_spikes",
        "--quiet", "--duration", "1.5", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with np.load(out) as npz:
        files = set(npz.files)
    assert {"a_spikes", "a_spikes.gaps"} <= files
    assert not {"b_spikes", "u", "a_filtered"} & files


@pytest.mark.broker
def test_record_takes_wait_net_from_its_flag(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """``--wait-net`` reaches the search for the network: a value it refuses is said
    naming it (it was replaced by the default 3 s, and the search went on)."""
    done = run_cli(
        "record", "--broker", mosquitto.url(), "--net", "nosuch", "--wait-net", "0",
        "--out", str(tmp_path / "x.npz"), timeout=30,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--wait-net must be a number of seconds > 0, got 0.0" in done.stderr
    assert not (tmp_path / "x.npz").exists()
