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


@pytest.mark.parametrize("named", ["network", "restore"])
def test_serve_refuses_a_log_naming_a_file_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    """``serve NET --log-inputs NET`` replaced the network file with the input log at
    shutdown (and ``--log-inputs`` naming the ``--restore`` snapshot replaced that), with
    no word: ``run`` refuses an ``--out`` naming what it reads, and ``serve`` must refuse
    such a log before anything is built or connected, leaving the file as it was."""
    import spikestream.serving.serve as serve_module
    from spikestream.serving.settings import load_settings

    net = tmp_path / "net.toml"
    net.write_bytes(SEED.read_bytes())
    snapshot = tmp_path / "state.npz"
    snapshot.write_bytes(b"a snapshot")
    target = net if named == "network" else snapshot
    link = tmp_path / "log.npz"
    link.symlink_to(target)  # the same file by another name
    before = target.read_bytes()

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("serve went on to load the network")

    monkeypatch.setattr(serve_module, "load_network_or_model", reached)
    settings = load_settings(
        {"log_inputs": str(link), "restore": str(snapshot), "broker": "mqtt://127.0.0.1:1"},
        None,
    )
    with pytest.raises(ConfigError) as info:
        serve_module.serve([net], settings)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--log-inputs {str(link)!r} is ")
    assert str(target) in message
    assert target.read_bytes() == before


@pytest.mark.parametrize(
    "flags",
    [{"resume": True}, {"snapshot_every": 5.0}, {"resume": True, "snapshot_dir": "."}],
    ids=["resume", "periodic snapshots", "the snapshot folder given relative"],
)
def test_serve_refuses_a_log_in_the_snapshot_folder_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: dict[str, object]
) -> None:
    """``--resume`` reads ``<net>-latest.npz`` from the snapshot folder, and periodic
    snapshots are written there: a log saved there at shutdown could replace the state
    the next ``--resume`` continues from. Refused before anything is built; a log beside
    it, outside the folder, is taken."""
    import spikestream.serving.serve as serve_module
    from spikestream.serving.settings import load_settings

    folder = tmp_path / "snaps"
    folder.mkdir()
    monkeypatch.chdir(folder)
    given = {"snapshot_dir": str(folder), **flags}

    class Reached(Exception):
        pass

    def reached(*args: object, **kwargs: object) -> None:
        raise Reached

    monkeypatch.setattr(serve_module, "load_network_or_model", reached)

    def serve(log: Path) -> None:
        settings = load_settings(
            {"log_inputs": str(log), "broker": "mqtt://127.0.0.1:1", **given}, None
        )
        serve_module.serve([SEED], settings)

    with pytest.raises(ConfigError) as info:
        serve(folder / "seed-latest.npz")
    assert str(info.value).startswith(
        f"--log-inputs {str(folder / 'seed-latest.npz')!r} is in the snapshot folder "
    )
    assert "expected a file elsewhere" in str(info.value)
    with pytest.raises(Reached):  # beside the folder: serve goes on
        serve(tmp_path / "inputs.npz")
