"""``serve`` settings from outside, refused in one line: the settings file (size-capped, a
regular file, valid TOML)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from spikestream.serving.settings import SETTINGS_FILE_MAX_BYTES, load_settings

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


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
