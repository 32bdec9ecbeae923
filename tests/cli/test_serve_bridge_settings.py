"""``serve --text-rate`` and ``--ha-discovery``: flag, environment and settings file."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from spikestream.cli.serve import add_parser
from spikestream.errors import ConfigError
from spikestream.serving.settings import load_settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", "net.toml", *argv])


def test_ha_discovery_flag_takes_an_optional_prefix() -> None:
    assert parse().ha_discovery is None
    assert parse("--ha-discovery").ha_discovery == "homeassistant"
    assert parse("--ha-discovery", "ha/lab").ha_discovery == "ha/lab"
    assert parse("--text-rate", "2.5").text_rate == 2.5


def test_from_env_and_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text('text_rate = 4.0\nha_discovery = "hass"\n')
    s = load_settings({}, cfg)
    assert (s.text_rate, s.ha_discovery) == (4.0, "hass")
    monkeypatch.setenv("SPIKESTREAM_TEXT_RATE", "8")
    monkeypatch.setenv("SPIKESTREAM_HA_DISCOVERY", "homeassistant")
    s = load_settings({}, cfg)
    assert (s.text_rate, s.ha_discovery) == (8.0, "homeassistant")
    assert load_settings({"text_rate": 0.5}, cfg).text_rate == 0.5  # the flag wins
    monkeypatch.delenv("SPIKESTREAM_TEXT_RATE")
    monkeypatch.delenv("SPIKESTREAM_HA_DISCOVERY")
    assert (load_settings({}, None).text_rate, load_settings({}, None).ha_discovery) == (None, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.0, "greater than 0"),
        (-3.0, "greater than 0"),
        (1000.0, "less than or equal to 100"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
    ],
)
def test_text_rate_is_validated(value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"text_rate: .*{message}"):
        load_settings({"text_rate": value}, None)


@pytest.mark.parametrize("prefix", ["", "$SYS", "home/#", "a//b", "has space"])
def test_ha_prefix_is_validated(prefix: str) -> None:
    with pytest.raises(ConfigError, match="ha_discovery: "):
        load_settings({"ha_discovery": prefix}, None)


def test_serve_refuses_a_bad_text_rate_with_one_line(tmp_path: Path) -> None:
    net = Path(__file__).parents[2] / "examples" / "seed.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "spikestream", "serve", str(net), "--text-rate", "nan"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "text_rate" in proc.stderr
    assert "Traceback" not in proc.stderr
