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
    with pytest.raises(ConfigError, match=rf"text_rate \(from --text-rate\): .*{message}"):
        load_settings({"text_rate": value}, None)


@pytest.mark.parametrize(
    "prefix",
    ["", "$SYS", "home/#", "a//b", "has space", "h" * 1025, "é" * 513],  # past 1024 bytes
)
def test_ha_prefix_is_validated(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"ha_discovery \(from --ha-discovery\): "):
        load_settings({"ha_discovery": prefix}, None)


def test_a_prefix_of_exactly_1024_bytes_is_taken() -> None:
    for prefix in ("h" * 1024, "é" * 512, "a/" * 511 + "bb"):
        assert load_settings({"ha_discovery": prefix}, None).ha_discovery == prefix


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


@pytest.mark.parametrize("value", ["examples/seed.toml", "seed.TOML", "model.py", "m.py:net"])
def test_a_network_file_taken_as_the_ha_prefix_is_refused(value: str) -> None:
    """``--ha-discovery a.toml b.toml``: the flag's optional PREFIX took the first network
    file, and only the second was served, its configs retained under the file's path."""
    with pytest.raises(ConfigError, match=r"names a network file.*--ha-discovery=PREFIX\)"):
        load_settings({"ha_discovery": value}, None)


def run_serve(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``spikestream serve ARGV`` against no broker (each case is refused before one)."""
    return subprocess.run(
        [sys.executable, "-m", "spikestream", "serve", *argv, "--broker", "mqtt://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_serve_refuses_a_network_file_as_the_ha_prefix_in_one_line(tmp_path: Path) -> None:
    examples = Path(__file__).parents[2] / "examples"
    proc = run_serve(
        tmp_path, "--ha-discovery", str(examples / "seed.toml"), str(examples / "channel.toml")
    )
    assert proc.returncode == 2, proc.stderr
    assert "names a network file" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("ha_prefix", ["ov/seed", "ov/seed/in", "ov/ha", "ov"])
def test_serve_refuses_an_ha_prefix_inside_the_services_topics(
    tmp_path: Path, ha_prefix: str
) -> None:
    """Its birth topic was the network's status topic (births went uncounted, HA's
    ``offline`` was taken for the service's own) or an input's (the input went deaf);
    under the service's prefix it reads as another network's status."""
    net = Path(__file__).parents[2] / "examples" / "seed.toml"
    proc = run_serve(tmp_path, str(net), "--prefix", "ov", "--ha-discovery", ha_prefix)
    assert proc.returncode == 2, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "error" in x]
    assert line == (
        f"spikestream serve: error: --ha-discovery {ha_prefix!r} lies inside the service's "
        "topics (ov/...), where it would read as a network's; expected a prefix of its own, "
        "such as 'homeassistant'"
    )
    assert "Traceback" not in proc.stderr


def test_serve_refuses_a_prefix_past_the_topic_budget_in_one_line(tmp_path: Path) -> None:
    """A 70,000-character prefix crashed the service at connect (a traceback, exit 1)."""
    net = Path(__file__).parents[2] / "examples" / "seed.toml"
    proc = run_serve(tmp_path, str(net), "--prefix", "p" * 70_000)
    assert proc.returncode == 2, proc.stderr
    assert "is 70000 bytes in UTF-8; expected at most 1024" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "homeassistant"),
        ("1", "homeassistant"),
        ("Yes", "homeassistant"),
        ("on", "homeassistant"),
        ("false", None),
        ("0", None),
        ("no", None),
        ("OFF", None),
        ("hass", "hass"),
    ],
)
def test_switch_words_turn_discovery_on_or_off(
    value: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SPIKESTREAM_HA_DISCOVERY=true`` announced under a prefix named ``true``."""
    monkeypatch.setenv("SPIKESTREAM_HA_DISCOVERY", value)
    assert load_settings({}, None).ha_discovery == expected


@pytest.mark.parametrize(("value", "expected"), [("true", "homeassistant"), ("false", None)])
def test_a_toml_boolean_turns_discovery_on_or_off(
    tmp_path: Path, value: str, expected: str | None
) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f"ha_discovery = {value}\n")
    assert load_settings({}, cfg).ha_discovery == expected
