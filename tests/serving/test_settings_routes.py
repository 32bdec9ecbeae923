"""``ServeSettings.route`` with a settings file: only the keys the file gives come from
it; the others keep their default's route."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikestream.serving.settings import load_settings


def test_a_settings_file_is_the_route_of_its_own_keys_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPIKESTREAM_METRICS_PORT", raising=False)
    monkeypatch.delenv("SPIKESTREAM_METRICS_HOST", raising=False)
    cfg = tmp_path / "serve.toml"
    cfg.write_text("metrics_port = 9100\n")
    settings = load_settings({}, cfg)
    assert settings.route("metrics_port") == f"settings file {str(cfg)!r}"
    assert settings.route("metrics_host") == "its default"
