"""``serve``'s wiring (:mod:`spikestream.serving.serve`) before anything is connected: the
flags that take one network, what ``--log-inputs`` may not name, the names and the memory
budget of several networks served together, and the shard a host picks."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import pytest

import spikestream.serving.serve as serve_module
from spikestream.budget import MemoryBudgetError
from spikestream.errors import ConfigError
from spikestream.serving.settings import ServeSettings, load_settings
from spikestream.spec import load_network
from tests.serving import SEED

BROKER = "mqtt://127.0.0.1:1"  # never reached: every test stops before connecting


class Reached(Exception):
    """Raised where serve would go on past the step a test checks."""


def reached(*args: object, **kwargs: object) -> None:
    raise Reached


def network(tmp_path: Path, name: str, file: str | None = None) -> Path:
    """The seed network as ``<file or name>.toml``, its network named ``name``."""
    path = tmp_path / f"{file or name}.toml"
    path.write_text(SEED.read_text().replace('name = "seed"', f'name = "{name}"', 1))
    return path


def settings(**flags: Any) -> ServeSettings:
    return load_settings({"broker": BROKER, **flags}, None)


@pytest.mark.parametrize("flag", ["log_inputs", "restore"])
def test_flags_of_one_network_are_refused_with_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    """``--log-inputs`` and ``--restore`` hold one network's inputs or state: with two
    networks served they are refused before anything is loaded."""
    monkeypatch.setattr(serve_module, "load_network_or_model", reached)
    snapshot = tmp_path / "state.npz"
    snapshot.write_bytes(b"a snapshot")
    value = str(tmp_path / "inputs.npz") if flag == "log_inputs" else str(snapshot)
    files = [network(tmp_path, "a"), network(tmp_path, "b")]
    with pytest.raises(ConfigError, match=r"^--restore and --log-inputs take one network; "):
        serve_module.serve(files, settings(**{flag: value}))


def test_a_log_naming_the_nengo_script_served_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve MODEL.py:NAME --log-inputs MODEL.py`` would replace the script with the log
    at shutdown: the script is what serve reads, whatever ``:NAME`` follows it."""
    monkeypatch.setattr(serve_module, "load_network_or_model", reached)
    script = tmp_path / "model.py"
    script.write_text("import nengo\n")
    with pytest.raises(ConfigError) as info:
        serve_module.serve([Path(f"{script}:net")], settings(log_inputs=str(script)))
    assert str(info.value) == (
        f"--log-inputs {str(script)!r} is the Nengo script {str(script)!r}, which serve "
        "reads; expected a new file name"
    )
    assert script.read_text() == "import nengo\n"


def test_a_log_in_the_default_snapshot_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``--snapshot-dir``, ``--resume`` reads the default folder
    (``$XDG_STATE_HOME/spikestream/snapshots``): a log there is refused as in a given one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(serve_module, "load_network_or_model", reached)
    folder = tmp_path / "spikestream" / "snapshots"
    folder.mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"is in the snapshot folder .*expected a file"):
        serve_module.serve([SEED], settings(log_inputs=str(folder / "x.npz"), resume=True))


def test_two_networks_of_one_name_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two networks served by one process share topics if they share a name: refused,
    naming it, before any broker is asked."""
    monkeypatch.setattr(serve_module, "parse_broker_list", reached)
    files = [network(tmp_path, "same", "one"), network(tmp_path, "same", "two")]
    with pytest.raises(ConfigError, match=r"share the network name 'same'; each network"):
        serve_module.serve(files, settings())


def test_the_budget_counts_every_network_served(tmp_path: Path) -> None:
    """Two networks that each fit the memory limit but not together are refused: the
    budget is of the process, not of its first network."""
    files = [network(tmp_path, "a"), network(tmp_path, "b")]
    specs = [load_network(f) for f in files]
    given = settings()
    (one,) = serve_module.check_serve_budget(files[:1], specs[:1], given, 2**40)
    with pytest.raises(MemoryBudgetError, match=r"serving .*a\.toml, .*b\.toml with"):
        serve_module.check_serve_budget(files, specs, given, one * 3 // 2)
    assert serve_module.check_serve_budget(files, specs, given, 2 * one) == [one, one]


def test_each_network_may_grow_into_what_the_others_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each network's own limit (for ``set ticks_per_frame``) is the process's limit less
    what the other networks take: together they never pass ``--memory-limit``. The I/O
    side is set up as asked too: the switch interval, and a real-time priority one step
    below the tick threads' (above it, the I/O thread would starve them of the GIL)."""
    from spikestream.runtime import priority

    files = [network(tmp_path, "a"), network(tmp_path, "b")]
    (one,) = serve_module.check_serve_budget(files[:1], [load_network(files[0])], settings(), 2**40)
    given: list[tuple[list[int], float]] = []
    priorities: list[tuple[int, str]] = []

    async def fake_serve(models: Any, brokers: Any, limits: list[int], *rest: Any) -> None:
        given.append((limits, sys.getswitchinterval()))

    def fake_priority(value: int, thread: str = "tick thread") -> str:
        priorities.append((value, thread))
        return "not changed"

    monkeypatch.setattr(serve_module, "_serve", fake_serve)
    monkeypatch.setattr(priority, "raise_priority", fake_priority)
    interval = sys.getswitchinterval()
    flags = {"memory_limit": 10 * one, "switch_interval": 0.0007, "rt_priority": 5}
    try:
        assert serve_module.serve(files, settings(**flags)) == 0
    finally:
        sys.setswitchinterval(interval)
        gc.unfreeze()
    ((limits, switch),) = given
    assert limits == [9 * one, 9 * one]
    assert switch == pytest.approx(0.0007)
    assert priorities == [(4, "I/O thread")]


async def test_a_list_of_brokers_is_used_as_given() -> None:
    """Several broker URLs are a failover list: every one is kept, in order (resolving
    only the first dropped the others)."""
    from spikestream_client.transport import parse_broker_list

    brokers = tuple(parse_broker_list("mqtt://127.0.0.1:1,mqtt://127.0.0.1:2"))
    async with serve_module.resolve_brokers(brokers) as concrete:
        assert concrete == brokers
    assert [b.port for b in concrete] == [1, 2]


def test_a_shard_auto_host_name_needs_a_dash_before_its_ordinal() -> None:
    """A StatefulSet's pods are ``<name>-<ordinal>``: a host name that only ends in digits
    (``web5``) is no ordinal and is refused, not taken as shard 5."""
    files = [Path(f"n{i}.toml") for i in range(8)]
    with pytest.raises(ConfigError, match=r"host name ending in -<ordinal>; got 'web5'"):
        serve_module.select_shard(files, "auto/8", hostname="web5")
    assert serve_module.select_shard(files, "auto/8", hostname="web-5") == [files[5]]


def test_a_host_ordinal_past_the_shard_count_is_named() -> None:
    """A StatefulSet scaled past ``auto/COUNT`` gives pod ``x-3`` an index of 3: the
    refusal says the index came from the host name. It said only ``got 'auto/2'``, a
    well-formed flag, leaving the user to guess what was wrong with it."""
    files = [Path(f"n{i}.toml") for i in range(4)]
    with pytest.raises(ConfigError) as info:
        serve_module.select_shard(files, "auto/2", hostname="spikestream-3")
    assert str(info.value) == (
        "--shard must be INDEX/COUNT with 0 <= INDEX < COUNT (or auto/COUNT); got 'auto/2', "
        "whose INDEX 3 is the ordinal of the host name 'spikestream-3'"
    )


FILED = """
[network]
name = "filed"
[populations.a]
n = 10
[inputs.u]
dim = 1
signal = { kind = "file", path = "u.npy" }
[[connections]]
pre = "u"
post = "a"
"""


def test_a_log_naming_a_file_the_network_reads_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve NET --log-inputs u.npy``, where the network reads its input's samples from
    ``u.npy``, replaced that file with the log at shutdown, without a word (``run`` refuses
    such an ``--out``): refused before anything is built or connected, the file kept."""
    import numpy as np

    net = tmp_path / "net.toml"
    net.write_text(FILED)
    samples = tmp_path / "u.npy"
    np.save(samples, np.zeros((10, 1)))
    before = samples.read_bytes()
    monkeypatch.setattr(serve_module, "build", reached)
    with pytest.raises(ConfigError) as info:
        serve_module.serve([net], settings(log_inputs=str(samples)))
    assert str(info.value) == (
        f"--log-inputs {str(samples)!r} is {str(samples)!r}, which the network reads "
        f"({net}: inputs.u.signal.path); expected a new file name"
    )
    assert samples.read_bytes() == before
    with pytest.raises(Reached):  # a log elsewhere: serve goes on
        serve_module.serve([net], settings(log_inputs=str(tmp_path / "inputs.npz")))
