"""``serve`` settings: declared once, flags over environment over settings file; shard
selection."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic.fields import FieldInfo

from spikestream.budget import DEFAULT_SHARE
from spikestream.cli.serve import add_parser
from spikestream.errors import ConfigError
from spikestream.serving.serve import select_shard
from spikestream.serving.settings import (
    ServeSettings,
    count_arg,
    env_name,
    flag_name,
    flags_of,
    load_settings,
    settings_key,
)
from tests.cli.test_run import NET


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


def test_bad_setting_names_key_route_value_and_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message named the setting but not which of three routes held the bad value
    ("flag, SPIKESTREAM_* variable or settings file"): it names the one that did, in
    the order they take precedence."""
    rule = r": Input should be 'catch-up', 'skip' or 'slip' \(got 'panic'\)"
    cfg = tmp_path / "serve.toml"
    cfg.write_text('overrun = "panic"\n')
    with pytest.raises(
        ConfigError, match=rf"^invalid serve setting: overrun \(from settings file '{cfg}'\){rule}$"
    ):
        load_settings({}, cfg)
    monkeypatch.setenv("spikestream_overrun", "panic")  # named as written
    with pytest.raises(ConfigError, match=rf"overrun \(from spikestream_overrun\){rule}"):
        load_settings({}, cfg)
    with pytest.raises(ConfigError, match=rf"overrun \(from --overrun\){rule}"):
        load_settings({"overrun": "panic"}, cfg)
    # The flag wins over a bad variable, which is then not read.
    assert load_settings({"overrun": "skip"}, cfg).overrun == "skip"
    with pytest.raises(ConfigError) as both:
        load_settings({"qos": 7}, None)
    assert "; " in str(both.value)
    assert "qos (from --qos): Input should be 0, 1 or 2 (got 7)" in str(both.value)
    assert "overrun (from spikestream_overrun): Input" in str(both.value)


def test_unknown_key_in_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text("bogus = 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_settings({}, cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, tmp_path / "missing.toml")
    # A misspelt key is named with the settings it may have meant, as a misspelt
    # SPIKESTREAM_* variable is (it said "Extra inputs are not permitted").
    cfg.write_text("realtme_factor = 1\n")
    with pytest.raises(
        ConfigError,
        match=r"realtme_factor \(from settings file '.*'\): not a setting \(did you mean realtime_",
    ):
        load_settings({}, cfg)


def test_backoff_min_above_max_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken before, with the maximum quietly raised to the minimum."""
    with pytest.raises(ConfigError, match=r": backoff_min \(600 s\) must be at most backoff_max"):
        load_settings({"backoff_min": 600.0, "backoff_max": 0.3}, None)
    monkeypatch.setenv("SPIKESTREAM_BACKOFF_MAX", "0.3")
    with pytest.raises(ConfigError, match=r"backoff_min \(0\.5 s\) must be at most"):
        load_settings({"backoff_min": 0.5}, None)
    assert load_settings({"backoff_min": 0.3}, None).backoff_max == 0.3


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


# ---------------------------------------------------------------------- hostile values

FINITE = "Input should be a finite number"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("backoff_max", "inf", FINITE),
        ("backoff_max", "nan", FINITE),
        ("backoff_max", "601", "less than or equal to 600"),
        ("realtime_factor", "-inf", FINITE),
        ("realtime_factor", "-1", "greater than or equal to 0"),
        ("stats_interval", "nan", FINITE),
        ("status_refresh", "inf", FINITE),
        ("status_refresh", "-1", "greater than or equal to 0"),
        ("snapshot_every", "inf", FINITE),
        # Intervals short enough to spin the event loop.
        ("snapshot_every", "1e-300", "greater than or equal to 0.1"),
        ("stats_interval", "0.001", "greater than or equal to 0.01"),
        ("status_refresh", "0.001", "0 (off) or at least 0.1 seconds"),
        ("status_refresh", "0.05", "0 (off) or at least 0.1 seconds"),
        ("max_catchup", "0", "greater than or equal to 1"),
        ("spin", "1", "less than or equal to 0.01"),
        ("switch_interval", "inf", FINITE),
        ("ticks_per_frame", "0", "greater than or equal to 1"),
        ("ticks_per_frame", "2.5", "valid integer"),
        ("queue_capacity", "abc", "valid integer"),
        ("expiry", "10000000000", "less than or equal to 4294967295"),
        ("max_input_bytes", "1000000000000", "less than or equal to 268435455"),
        ("cpu_latency", "-1", "greater than or equal to 0"),
        ("tick_threads", "3", "Input should be 'auto', '1' or '2'"),
        ("seed", "-1", "greater than or equal to 0"),
        ("memory_limit", "lots", "expected a positive size in bytes, e.g. 2GiB"),
        ("memory_limit", "-2GiB", "expected a positive size in bytes"),
    ],
)
def test_every_source_refuses_a_bad_value_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, rule: str
) -> None:
    """The same value refused the same way from a flag, the environment and the settings
    file: one line naming the key, the route, the value and what is allowed."""
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f"{key} = {_toml(value)}\n")
    sources = [
        (lambda: load_settings({key: value}, None), flag_name(key)),
        (
            lambda: (monkeypatch.setenv(env_name(key), value), load_settings({}, None)),
            env_name(key),
        ),
        (lambda: load_settings({}, cfg), f"settings file {str(cfg)!r}"),
    ]
    for source, route in sources:
        with pytest.raises(ConfigError) as info:
            source()
        message = str(info.value)
        assert "\n" not in message
        assert f"{key} (from {route}): " in message
        assert rule in message
        assert value.lstrip("-") in message
        monkeypatch.delenv(f"SPIKESTREAM_{key.upper()}", raising=False)


def _toml(value: str) -> str:
    # TOML spells the non-finite floats inf and nan; other words become strings.
    if value.lstrip("-") in ("inf", "nan"):
        return value
    try:
        float(value)
    except ValueError:
        return f'"{value}"'
    return value


def test_counts_may_be_written_in_exponent_form(tmp_path: Path) -> None:
    assert load_settings({"queue_capacity": "1e3"}, None).queue_capacity == 1000
    cfg = tmp_path / "serve.toml"
    cfg.write_text('ticks_per_frame = 1e2\nmemory_limit = "2GiB"\n')
    s = load_settings({}, cfg)
    assert s.ticks_per_frame == 100
    assert s.memory_limit == 2 * 2**30


def test_allow_python_functions_from_env_and_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings({}, None).allow_python_functions is False
    cfg = tmp_path / "serve.toml"
    cfg.write_text("allow_python_functions = true\n")
    assert load_settings({}, cfg).allow_python_functions is True
    monkeypatch.setenv("SPIKESTREAM_ALLOW_PYTHON_FUNCTIONS", "false")
    assert load_settings({}, cfg).allow_python_functions is False  # env beats file
    assert load_settings({"allow_python_functions": True}, cfg).allow_python_functions is True


PYTHON_NET = NET + 'function = "{function}"\n'


def _serve(tmp_path: Path, function: str, *flags: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "net.toml"
    path.write_text(PYTHON_NET.format(function=function))
    # An unsupported broker scheme is refused right after the networks are built, so a
    # run that gets that far has passed the build without connecting anywhere.
    argv = [sys.executable, "-m", "spikestream.cli", "serve", str(path), "--broker", "ftp://x"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIKESTREAM_")}
    return subprocess.run(
        [*argv, *flags], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_serve_refuses_python_functions_without_the_opt_in(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "numpy:square")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "connections[0].function: 'numpy:square' names a Python callable" in line
    assert "--allow-python-functions" in line
    proc = _serve(tmp_path, "numpy:square", "--allow-python-functions")
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "unsupported scheme 'ftp'" in line  # built; stopped at the broker


def test_serve_refuses_a_huge_power_instead_of_hanging(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "x * 9**9**9**9")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "the part '9 ** 9 ** 9 ** 9' of 'x * 9**9**9**9' evaluates to inf" in line


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


# ---------------------------------------------------------------------- one declaration


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", "net.toml", *argv])


#: Valid values, other than the default, for the settings whose values are checked beyond
#: their type; the others are derived from the field's type and bounds below.
SPECIAL = {
    "shard": "0/1",
    "broker": "mqtt://h:1883",
    "memory_limit": "1GiB",
    "ha_discovery": "hass",
    "dtype": "float32",
}


def _kind(annotation: Any) -> Any:
    """The annotation without ``| None`` and ``Annotated``."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _sample(name: str, info: FieldInfo) -> tuple[str | None, str]:
    """A valid non-default value of setting ``name``: as flag text (None for an on/off
    flag, which takes none) and as a TOML value."""
    if name in SPECIAL:
        return SPECIAL[name], f'"{SPECIAL[name]}"'
    kind = _kind(info.annotation)
    if kind is bool:
        return None, "true"
    if get_origin(kind) is Literal:
        value = [c for c in get_args(kind) if c != info.default][-1]
        return str(value), repr(value) if type(value) is int else f'"{value}"'
    if kind in (str, Path):
        return "/tmp/spikestream-x", '"/tmp/spikestream-x"'
    if kind is float:
        # Above a floor (ge), above status_refresh's (0, 0.1) gap its validator refuses,
        # and backoff_max above the default backoff_min.
        floor = max([getattr(m, "ge", None) or 0.0 for m in info.metadata] or [0.0])
        special = {"status_refresh": 0.2, "backoff_max": 7.0}
        value = special.get(name, max(0.001, 2 * floor))
        return repr(value), repr(value)
    lowest = max([getattr(m, "ge", 0) for m in info.metadata] or [0])
    return str(lowest + 1), str(lowest + 1)


def test_every_setting_has_one_flag_one_env_var_and_one_settings_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model is the only list: each field is a flag, a SPIKESTREAM_* variable and a
    settings-file key, and no flag but --config (the file itself) is anything else."""
    fields = ServeSettings.model_fields
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    serve_parser = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    dests = {a.dest for a in serve_parser._actions} - {"help", "networks", "config"}
    assert dests == set(fields)
    options = {o for a in serve_parser._actions for o in a.option_strings}
    assert options - {"-h", "--help", "--config"} == {flag_name(n) for n in fields}
    for name, info in fields.items():
        text, toml_value = _sample(name, info)
        flag = [flag_name(name)] if text is None else [flag_name(name), text]
        from_flag = load_settings(flags_of(_parse(*flag)), None)
        monkeypatch.setenv(env_name(name), "true" if text is None else text)
        from_env = load_settings({}, None)
        monkeypatch.delenv(env_name(name))
        cfg = tmp_path / "serve.toml"
        cfg.write_text(f"{settings_key(name)} = {toml_value}\n")
        from_file = load_settings({}, cfg)
        default = getattr(ServeSettings(), name)
        values = {getattr(s, name) for s in (from_flag, from_env, from_file)}
        assert len(values) == 1, (name, values)
        assert values != {default}, name
    assert env_name("queue_capacity") == "SPIKESTREAM_QUEUE_CAPACITY"
    assert flag_name("queue_capacity") == "--queue-capacity"


def test_flags_keep_their_names_help_and_defaults() -> None:
    """Flags derived from the model keep what the hand-written ones said."""
    args = _parse()
    assert all(value is None for value in flags_of(args).values())  # env and file may win
    help_text = _parse_help()
    for text in (
        "--max-catchup MAX_CATCHUP",
        "most late ticks run in one burst (20)",
        "--broker URL",
        "frames queued per probe (256)",
        "longest reconnect delay, seconds (5; at most 600)",
        "i % COUNT == INDEX",
        f"Default: {DEFAULT_SHARE:.0%} of physical memory",
        "--cpu-latency US",
        "--ha-discovery [PREFIX]",
        "topic prefix (default: spikestream)",
        "--allow-python-functions",
    ):
        assert text in help_text, text
    assert "--trace-latency TRACE_LATENCY" in help_text  # debugging, but explained too
    undescribed = [n for n, f in ServeSettings.model_fields.items() if not f.description]
    assert undescribed == []
    assert _parse("--trace-latency", "t.json").trace_latency == Path("t.json")
    assert flags_of(_parse("--broker", "mqtt://a", "--broker", "mqtt://b"))["broker"] == (
        "mqtt://a,mqtt://b"
    )
    assert _parse("--ha-discovery").ha_discovery == "homeassistant"
    assert _parse("--queue-capacity", "1e3").queue_capacity == 1000


def _parse_help() -> str:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    serve_parser = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    return " ".join(serve_parser.format_help().split())


def test_tick_threads_from_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` by default; a settings file may write the count as a number or as text."""
    assert load_settings({}, None).tick_threads == "auto"
    assert _parse("--tick-threads", "2").tick_threads == "2"
    cfg = tmp_path / "serve.toml"
    cfg.write_text("tick_threads = 2\n")
    assert load_settings({}, cfg).tick_threads == "2"
    cfg.write_text('tick_threads = "1"\n')
    assert load_settings({}, cfg).tick_threads == "1"
    monkeypatch.setenv("SPIKESTREAM_TICK_THREADS", "auto")
    assert load_settings({}, cfg).tick_threads == "auto"
    with pytest.raises(SystemExit):
        _parse("--tick-threads", "3")
    assert "threads that step each tick (auto)" in _parse_help()
    assert load_settings({}, None).pin_tick_threads is False
    assert _parse("--pin-tick-threads").pin_tick_threads is True
    assert load_settings({}, None).tick_at_deadline is False
    assert _parse("--tick-at-deadline").tick_at_deadline is True


@pytest.mark.parametrize("text", ["1.5", "1e-3", "many"])
def test_a_count_flag_refuses_what_is_not_an_integer(text: str) -> None:
    """``--max-catchup 1.5`` is refused by the flag's parser, naming the value."""
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected an integer.*got {text!r}"):
        count_arg(text)
    assert count_arg("1e3") == 1000


def test_engine_options_carry_every_tick_setting() -> None:
    """The settings that shape the tick reach the engine as given, not as defaults."""
    options = ServeSettings(
        tick_at_deadline=True, tick_threads="2", pin_tick_threads=True, busy_spin=0.001
    ).engine_options()
    assert options["early_ticks"] is False
    assert options["tick_threads"] == 2
    assert options["pin_tick_threads"] is True
    assert options["busy_spin"] == 0.001
    defaults = ServeSettings().engine_options()
    assert defaults["early_ticks"] is True
    assert defaults["tick_threads"] == "auto"
    assert defaults["pin_tick_threads"] is False


@pytest.mark.parametrize(
    "key", ["ticks_per_frame", "queue_capacity", "realtime_factor", "backoff_max", "qos"]
)
def test_a_toml_boolean_is_not_taken_as_a_number(tmp_path: Path, key: str) -> None:
    """``ticks_per_frame = true`` in a settings file is refused in one line, as
    ``SPIKESTREAM_TICKS_PER_FRAME=true`` and ``--ticks-per-frame true`` are, and as a
    boolean count in a network file is: pydantic's lax mode took ``true`` as 1, so a
    typo served with a silently chosen value."""
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f"{key} = true\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, cfg)
    message = str(info.value)
    assert "\n" not in message
    assert f"{key} (from settings file {str(cfg)!r}): " in message
    assert message.endswith("expected a number, not a boolean (got True)")


def test_a_toml_boolean_still_sets_a_switch(tmp_path: Path) -> None:
    """The refusal above is for numbers only: a switch (``resume``) and Home Assistant
    discovery (on with its default prefix) still take ``true`` from a settings file."""
    cfg = tmp_path / "serve.toml"
    cfg.write_text("resume = true\nha_discovery = true\n")
    settings = load_settings({}, cfg)
    assert settings.resume is True
    assert settings.ha_discovery == "homeassistant"
