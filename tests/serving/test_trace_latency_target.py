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
