"""``serve --trace-latency PATH``: a target the trace cannot be saved to is refused when
serving starts; it used to be accepted and to fail at exit with a traceback, losing the
run's trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from tests.serving import SEED


def test_serve_refuses_a_trace_folder_before_it_loads_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spikestream.serving.serve as serve_module
    from spikestream.serving.settings import load_settings

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("serve went on to load the network")

    monkeypatch.setattr(serve_module, "load_network_or_model", reached)
    settings = load_settings(
        {"trace_latency": str(tmp_path), "broker": "mqtt://127.0.0.1:1"},
        None,
    )
    with pytest.raises(ConfigError, match=r"^--trace-latency: .* is a folder; expected a file"):
        serve_module.serve([SEED], settings)


@pytest.mark.parametrize("target", ["net.toml", "w.npy", "inputs.npz"])
def test_serve_refuses_a_trace_over_a_file_it_reads_or_writes(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trace is written at exit to the name given (numpy no longer adds ``.npz``):
    the network file, an array file it reads, or the ``--log-inputs`` log so named was
    replaced by it. Each is refused before anything is built, naming both flags' files."""
    import numpy as np

    import spikestream.serving.serve as serve_module
    from spikestream.serving.settings import load_settings

    np.save(tmp_path / "w.npy", np.random.default_rng(0).normal(size=(50, 40)))
    text = SEED.read_text().replace(
        'weights = { dist = "normal", mean = 0.0, std = 1.0 }', 'weights = { file = "w.npy" }'
    )
    (tmp_path / "net.toml").write_text(text)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"serve accepted --trace-latency {target}")

    monkeypatch.setattr(serve_module, "check_serve_budget", reached)
    settings = load_settings(
        {
            "trace_latency": str(tmp_path / target),
            "log_inputs": str(tmp_path / "inputs.npz"),
            "broker": "mqtt://127.0.0.1:1",
        },
        None,
    )
    expected = {
        "net.toml": "which serve reads",
        "w.npy": r"which the network reads \(.*connections",
        "inputs.npz": "--trace-latency and --log-inputs both name",
    }[target]
    with pytest.raises(ConfigError, match=expected):
        serve_module.serve([tmp_path / "net.toml"], settings)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
