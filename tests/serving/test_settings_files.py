"""``serve`` settings from outside, refused in one line: the settings file (size-capped, a
regular file, valid TOML) and misspelt ``SPIKESTREAM_*`` variables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from spikestream.serving.settings import (
    OTHER_ENV_VARS,
    SERVICE_LINK,
    SETTINGS_FILE_MAX_BYTES,
    ServeSettings,
    env_name,
    load_settings,
)

ROOT = Path(__file__).parents[2]
SEED = ROOT / "examples" / "seed.toml"


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``spikestream serve`` in a child, as a user runs it (every case here fails before a
    broker is needed)."""
    return subprocess.run(
        [sys.executable, "-m", "spikestream", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # tomllib.TOMLDecodeError and UnicodeDecodeError tracebacks before.
        (b"realtime_factor = [\n", "not valid TOML: Invalid value (at end of document)"),
        (b"realtime_factor = 1 # \xff\n", "settings file is not UTF-8 text ("),
        (b"x = " + b"[" * 50_000 + b"]" * 50_000, "not valid TOML: arrays or inline tables nest"),
    ],
)
def test_a_malformed_settings_file_is_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings({}, cfg)
    assert str(info.value).startswith(f"settings file {str(cfg)!r}: {message}")


def test_a_malformed_settings_file_is_one_line_from_the_command(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("realtime_factor = [\n")
    done = _serve(str(SEED), "--config", str(cfg))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"spikestream serve: error: settings file {str(cfg)!r}: not valid TOML: Invalid value "
        "(at end of document)"
    )


def test_a_settings_file_that_is_no_regular_file_is_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError) as info:
            load_settings({}, path)
        assert str(info.value) == (
            f"settings file {str(path)!r}: not a regular file (a folder, FIFO or device); "
            "expected a settings file"
        )


def test_a_settings_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "big.toml"
    cfg.write_text("realtime_factor = 2.0\n" + "#" * SETTINGS_FILE_MAX_BYTES)
    with pytest.raises(ConfigError, match=f"larger than {SETTINGS_FILE_MAX_BYTES} bytes"):
        load_settings({}, cfg)


def test_a_good_settings_file_still_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text('realtime_factor = 2\ntick_threads = 2\nbroker = "mqtt://h:1883"\n')
    s = load_settings({}, cfg)
    assert (s.realtime_factor, s.tick_threads, s.broker) == (2.0, "2", "mqtt://h:1883")


def test_a_misspelt_variable_is_refused_naming_the_close_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It was ignored: the service ran at the default factor.
    monkeypatch.setenv("SPIKESTREAM_REALTIME_FACTR", "2")
    with pytest.raises(ConfigError) as info:
        load_settings({}, None)
    assert str(info.value) == (
        "unknown environment variable SPIKESTREAM_REALTIME_FACTR (did you mean "
        "SPIKESTREAM_REALTIME_FACTOR?): expected SPIKESTREAM_<SETTING> for a setting of "
        "`spikestream serve --help`, or SPIKESTREAM_MQTT_USERNAME, SPIKESTREAM_MQTT_PASSWORD "
        "or SPIKESTREAM_MQTT_PASSWORD_FILE"
    )


def test_a_misspelt_password_variable_never_shows_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("spikestream_mqtt_pasword", "hunter2")  # read without case too
    with pytest.raises(ConfigError) as info:
        load_settings({}, None)
    assert str(info.value).startswith(
        "unknown environment variable spikestream_mqtt_pasword (did you mean "
        "SPIKESTREAM_MQTT_PASSWORD, SPIKESTREAM_MQTT_PASSWORD_FILE or SPIKESTREAM_PASSWORD?)"
    )
    assert "hunter2" not in str(info.value)


def test_a_misspelt_variable_is_one_line_from_the_command() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SPIKESTREAM_")}
    done = _serve(str(SEED), env={**env, "SPIKESTREAM_METRICS_PRT": "9100"})
    assert done.returncode == 2
    assert done.stderr.strip().startswith(
        "spikestream serve: error: unknown environment variable SPIKESTREAM_METRICS_PRT (did "
        "you mean SPIKESTREAM_METRICS_PORT or SPIKESTREAM_METRICS_HOST?)"
    )
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_variables_read_elsewhere_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTHER_ENV_VARS:
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("SPIKESTREAM_MQTT_PASSWORD_FILE")  # read by serve, not by settings
    monkeypatch.setenv("SPIKESTREAM_REALTIME_FACTOR", "2")
    assert load_settings({}, None).realtime_factor == 2.0


def test_kubernetes_service_links_are_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Injected into every pod of a namespace with a Service named spikestream (unless
    # enableServiceLinks is false, as deploy/k8s sets it): not the user's doing.
    for name in (
        "SPIKESTREAM_PORT",
        "SPIKESTREAM_SERVICE_HOST",
        "SPIKESTREAM_SERVICE_PORT_METRICS",
        "SPIKESTREAM_PORT_9100_TCP_ADDR",
    ):
        monkeypatch.setenv(name, "10.0.0.1")
    assert load_settings({}, None).realtime_factor == 1.0
    monkeypatch.setenv("SPIKESTREAM_PORTS", "1")  # not a service link's shape
    with pytest.raises(ConfigError, match="unknown environment variable SPIKESTREAM_PORTS"):
        load_settings({}, None)


def test_every_spikestream_variable_the_project_names_is_known() -> None:
    # The code, the tests, CI, the deploy files, the benchmarks and the docs: a name used
    # in any of them and refused by serve would break that place.
    known = {env_name(name) for name in ServeSettings.model_fields} | OTHER_ENV_VARS
    found: set[str] = set()
    for top in ("service", "clients", "tests", ".ci", "deploy", "bench", "docs", "examples"):
        for path in (ROOT / top).rglob("*"):
            binary = path.suffix in (".npz", ".npy", ".png", ".so", ".pyc")
            # This file names misspelt variables on purpose.
            if path.is_file() and not binary and path != Path(__file__):
                text = path.read_text(errors="replace")
                found.update(re.findall(r"\bSPIKESTREAM_[A-Z0-9_]*[A-Z0-9]\b", text))
    for path in ROOT.glob("*.md"):  # the changelog quotes misspelt names too
        if path.name != "CHANGELOG.md":
            found.update(re.findall(r"\bSPIKESTREAM_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert {n for n in found - known if not SERVICE_LINK.fullmatch(n)} == set()
