"""``serve`` settings: flags over environment over settings file; shard selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikestream.cli.serve import load_settings, select_shard
from spikestream.errors import ConfigError


def test_precedence_flags_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text('broker = "mqtt://file:1883"\nqueue_capacity = 7\nrealtime_factor = 3.0\n')
    monkeypatch.setenv("SPIKESTREAM_QUEUE_CAPACITY", "9")
    monkeypatch.setenv("SPIKESTREAM_REALTIME_FACTOR", "2.0")
    s = load_settings({"realtime_factor": 0.5, "qos": None}, cfg)
    assert s.broker == "mqtt://file:1883"  # only in the file
    assert s.queue_capacity == 9  # env beats file
    assert s.realtime_factor == 0.5  # flag beats env
    assert s.qos == 0  # default


def test_bad_setting_names_key_value_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKESTREAM_OVERRUN", "panic")
    with pytest.raises(
        ConfigError, match=r"overrun: Input should be 'catch-up', 'skip' or 'slip' \(got 'panic'\)"
    ):
        load_settings({}, None)


def test_unknown_key_in_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text("bogus = 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_settings({}, cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, tmp_path / "missing.toml")


def test_select_shard() -> None:
    files = [Path(f"n{i}.toml") for i in range(5)]
    assert select_shard(files, None) == files
    assert select_shard(files, "0/2") == [files[0], files[2], files[4]]
    assert select_shard(files, "1/2") == [files[1], files[3]]
    assert select_shard(files, "auto/2", hostname="spikestream-1") == [files[1], files[3]]
    for bad in ("2/2", "x/2", "1", "-1/3"):
        with pytest.raises(ConfigError, match="--shard must be INDEX/COUNT"):
            select_shard(files, bad)
    with pytest.raises(ConfigError, match="host name ending in -<ordinal>"):
        select_shard(files, "auto/2", hostname="laptop")
    with pytest.raises(ConfigError, match="is empty"):
        select_shard(files[:1], "1/2")


def test_broker_list_from_repeated_flags_refuses_keywords_in_a_list() -> None:
    """``--broker`` repeated makes one list; ``embedded`` in it is refused with one clear
    line (no traceback) before anything is built or connected."""
    import subprocess
    import sys

    seed = Path(__file__).parents[2] / "examples" / "seed.toml"
    cmd = [sys.executable, "-m", "spikestream", "serve", str(seed)]
    done = subprocess.run(
        [*cmd, "--broker", "mqtt://127.0.0.1:1", "--broker", "embedded"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "'embedded' cannot be part of a list of 2 brokers" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_broker_list_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKESTREAM_BROKER", "mqtt://a:1883,mqtt://b:1883")
    assert load_settings({}, None).broker == "mqtt://a:1883,mqtt://b:1883"
