"""``serve --log-inputs PATH``: a target the log cannot be saved to (an existing folder,
FIFO or device) is refused when serving starts; it used to be accepted and to fail at
shutdown, losing the run's log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.runtime.replay import InputRecorder
from spikestream.spec import load_network
from tests.brokers import Mosquitto
from tests.serving import SEED


def test_the_recorder_refuses_a_folder_and_leaves_no_spool(tmp_path: Path) -> None:
    model = build(load_network(SEED))
    with pytest.raises(ConfigError) as info:
        InputRecorder(model, tmp_path)
    assert str(info.value) == (
        f"--log-inputs: {str(tmp_path)!r} is a folder; expected a file name, e.g. "
        f"{str(tmp_path / 'inputs.npz')!r}"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_recorder_refuses_a_fifo_and_takes_a_file_it_replaces(tmp_path: Path) -> None:
    model = build(load_network(SEED))
    fifo = tmp_path / "inputs.npz"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"is not a regular file \(a FIFO or device\)"):
        InputRecorder(model, fifo)
    fifo.unlink()
    fifo.write_bytes(b"an old log")
    recorder = InputRecorder(model, fifo)
    recorder.save(ticks=0)
    assert fifo.stat().st_size > len(b"an old log")


def test_serve_refuses_a_folder_before_it_serves(mosquitto: Mosquitto, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "spikestream", "serve", str(SEED), "--broker", mosquitto.url(),
            "--log-inputs", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"spikestream serve: error: --log-inputs: {str(tmp_path)!r} is a folder; expected a "
        f"file name, e.g. {str(tmp_path / 'inputs.npz')!r}"
    ]
