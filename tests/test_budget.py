"""The memory budget: sizes, refusals before allocation, and the estimate against RSS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream import budget
from spikestream.budget import (
    Estimate,
    MemoryBudgetError,
    check_budget,
    estimate_run,
    estimate_serve,
    parse_bytes,
)
from spikestream.cli import main
from spikestream.errors import ConfigError
from spikestream.spec import NetworkSpec, load_network, parse_network

ROOT = Path(__file__).parents[1]
SEED = ROOT / "examples" / "seed.toml"
README = ROOT / "README.md"
BROKER = "mqtt://127.0.0.1:1"  # never contacted: the refusal comes first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GiB", 2 * 2**30),
        ("512MiB", 512 * 2**20),
        ("1.5GB", 1_500_000_000),
        ("1e9", 1_000_000_000),
        ("4096", 4096),
        (" 8 kib ", 8192),
        ("1T", 10**12),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "0", "2 parsecs", "inf", "nan", "1e999"])
def test_parse_bytes_refuses_with_the_rule(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"memory_limit: {text!r} is not allowed; expected a"):
        parse_bytes(text)


def test_default_limit_is_a_share_of_physical_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 0 < budget.default_limit() <= budget.physical_memory()
    monkeypatch.setattr(budget, "physical_memory", lambda: 8 * 2**30)
    assert budget.default_limit() == int(8 * 2**30 * budget.DEFAULT_SHARE)


def test_estimate_grows_with_what_allocates() -> None:
    spec = load_network(SEED)
    small = estimate_serve(spec, queue_capacity=8)
    assert estimate_serve(spec, queue_capacity=16).total > small.total
    assert estimate_serve(spec, queue_capacity=8, ticks_per_frame=100).total > small.total
    coalesce = estimate_serve(spec, queue_capacity=8, ticks_per_frame=10, queue_policy="coalesce")
    plain = estimate_serve(spec, queue_capacity=8, ticks_per_frame=10)

    def frames(e: Estimate) -> int:
        return sum(v for k, v in e.parts.items() if k.startswith("frames"))

    assert frames(coalesce) == 8 * frames(plain)
    assert coalesce.parts["MQTT send queue"] > plain.parts["MQTT send queue"]
    assert estimate_run(spec, ticks=2000).total > estimate_run(spec, ticks=1000).total
    with pytest.raises(MemoryBudgetError, match=r"^x would allocate about .* over the memory"):
        check_budget("x", small, small.total - 1)
    check_budget("x", small, small.total)


# ------------------------------------------------------- refusals, before allocating


def network_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "big.toml"
    path.write_text('[network]\nname = "big"\nseed = 1\n' + textwrap.dedent(body))
    return path


HUGE_POPULATION = """
[populations.a]
n = 10_000_000
dim = 4096
"""
DENSE_100K = """
[populations.a]
n = 100_000
[populations.b]
n = 100_000
[[connections]]
pre = "a"
post = "b"
weights = {dist = "normal"}
"""
VOLTAGE_100K = """
[populations.a]
n = 100_000
[probes.v]
target = "a"
kind = "voltage"
ticks_per_frame = 100_000
"""


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the console entry point; it must exit 2 with one line naming the estimate."""
    line = refused_at(capsys, argv, "64 GiB")
    assert "over the memory limit of 64 GiB (68719476736 bytes)" in line, line
    return line


def refused_at(capsys: pytest.CaptureFixture[str], argv: list[str], limit: str) -> str:
    """As :func:`refused`, over a memory limit of ``limit``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    line = lines[0]
    assert "would allocate about" in line, line
    assert f"over the memory limit of {limit}" in line, line
    return line


@pytest.mark.parametrize(
    ("command", "body", "flags", "largest"),
    [
        ("run", HUGE_POPULATION, ["--duration", "1"], "population a"),
        ("serve", HUGE_POPULATION, [], "population a"),
        ("run", DENSE_100K, ["--duration", "0.01"], "connection a->b 149 GiB"),
        ("serve", DENSE_100K, [], "connection a->b 149 GiB"),
        ("serve", VOLTAGE_100K, [], "frames of v 9.39 TiB"),
    ],
)
def test_network_files_beyond_the_budget_are_refused_before_building(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    body: str,
    flags: list[str],
    largest: str,
) -> None:
    path = network_file(tmp_path, body)
    argv = [command, str(path), "--memory-limit", "64GiB", *flags]
    argv += ["--out", str(tmp_path / "o.npz")] if command == "run" else ["--broker", BROKER]
    line = refused(capsys, argv)
    assert largest in line
    assert not (tmp_path / "o.npz").exists()


WIDE_LIST = "[" + ", ".join(["x"] * 399) + "]"  # 399 numbers per point, in 2000 characters
WIDE_EXPRESSION = f"""
[populations.a]
n = 50
[populations.b]
n = 50
[[connections]]
pre = "a"
post = "b"
function = "{WIDE_LIST}"
eval_points = 1_000_000
"""


def test_a_wide_expression_is_counted_and_refused_before_it_is_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list of 399 numbers over 10^6 evaluation points builds (10^6, 399) float64
    arrays: the budget counts them from the text, so ``run`` refuses before evaluating."""
    path = network_file(tmp_path, WIDE_EXPRESSION)
    spec = load_network(path)
    part = estimate_run(spec, ticks=1).transient["connection a->b"]
    assert part >= 2 * 10**6 * 399 * 8
    argv = ["run", str(path), "--memory-limit", "2GiB", "--duration", "0.01"]
    code = main([*argv, "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "would allocate about" in err, err
    assert "connection a->b" in err, err


def test_serve_counts_the_encoded_frames_the_mqtt_link_may_hold(tmp_path: Path) -> None:
    """The link may hold LINK_MAX_QUEUED frames, its reserve and as many again to resend:
    a 10k-neuron voltage probe at 10 ticks per frame (400 kB frames) needs most of 1 GB
    there, and the estimate says so."""
    spec = load_network(
        network_file(
            tmp_path,
            """
            [populations.a]
            n = 10_000
            [probes.v]
            target = "a"
            kind = "voltage"
            ticks_per_frame = 10
            """,
        )
    )
    est = budget.estimate_serve(spec, queue_capacity=16)
    frame = 10 * 10_000 * 4
    messages = 2 * budget.LINK_MAX_QUEUED + budget.LINK_MAX_QUEUED // 10
    assert messages * frame <= est.parts["MQTT send queue"] <= messages * (frame + 1024)
    assert est.parts["MQTT send queue"] > est.parts["frames of v"]


def test_huge_population_estimate_is_the_arrays_it_would_need(tmp_path: Path) -> None:
    spec = load_network(network_file(tmp_path, HUGE_POPULATION))
    part = estimate_run(spec, ticks=1).parts["population a"]
    # The float64 encoders of 10^7 x 4096 dominate: 328 GB, and as much again while
    # they are drawn.
    assert 10**7 * 4096 * 8 < part < 10**7 * 4096 * 8 * 1.01
    assert estimate_run(spec, ticks=1).total > 2 * 10**7 * 4096 * 8


@pytest.mark.parametrize(
    ("flags", "asked"),
    [
        (["--ticks-per-frame", "1e9"], "ticks_per_frame=1000000000"),
        (["--queue-capacity", "1e9"], "queue_capacity=1000000000"),
    ],
)
def test_serve_flags_beyond_the_budget_are_refused(
    capsys: pytest.CaptureFixture[str], flags: list[str], asked: str
) -> None:
    line = refused(
        capsys, ["serve", str(SEED), "--broker", BROKER, "--memory-limit", "64GiB", *flags]
    )
    assert asked in line


def test_serve_budget_also_comes_from_the_environment_and_the_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPIKESTREAM_MEMORY_LIMIT", "64GiB")
    refused(capsys, ["serve", str(SEED), "--broker", BROKER, "--ticks-per-frame", "1e9"])
    monkeypatch.delenv("SPIKESTREAM_MEMORY_LIMIT")
    config = tmp_path / "serve.toml"
    config.write_text('memory_limit = "64GiB"\nqueue_capacity = 1e9\n')
    refused(capsys, ["serve", str(SEED), "--broker", BROKER, "--config", str(config)])


def test_run_duration_beyond_the_budget_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The recording streams to the file in blocks, so a long run holds one block in memory
    # and is refused for the disk it would fill, not for memory.
    out = tmp_path / "o.npz"
    argv = ["run", str(SEED), "--duration", "1e7", "--memory-limit", "64GiB", "--out", str(out)]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "for 1e+07 s (10000000000 ticks) would write about" in lines[0]
    assert "free in" in lines[0]
    # Memory: the network and one 64 MiB block, whatever the duration.
    spec = load_network(SEED)
    short = estimate_run(spec, ticks=1000, block_bytes=64 * 2**20)
    long = estimate_run(spec, ticks=10**10, block_bytes=64 * 2**20)
    assert short.total < long.total < 200 * 2**20
    assert estimate_run(spec, ticks=10**10).total > 2**40
    # A replayed log is held whole, its expansion one block at a time.
    replayed = estimate_run(spec, ticks=10**10, block_bytes=64 * 2**20, replay_bytes=2**30)
    assert 2**31 < replayed.total < 2**31 + 300 * 2**20
    monkeypatch.setenv("SPIKESTREAM_MEMORY_LIMIT", "1MiB")
    line = refused_at(capsys, ["run", str(SEED), "--duration", "1e300", "--out", str(out)], "1 MiB")
    assert "(1.000e+303 ticks)" in line
    assert not out.exists()


SERVE = [sys.executable, "-m", "spikestream", "serve", str(SEED), "--broker", BROKER]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--ticks-per-frame", "83876"],
            "network 'seed', probe 'a_filtered': ticks_per_frame=83876 makes frames larger "
            "than the 16 MiB a client decodes; expected ticks_per_frame <= 83875 for this probe",
        ),
        (
            ["--ticks-per-frame", "10485", "--queue-policy", "coalesce"],
            "network 'seed', probe 'a_filtered': ticks_per_frame=10485 makes frames (up to "
            "83880 ticks once coalesced) larger than the 16 MiB a client decodes; expected "
            "ticks_per_frame <= 10484 for this probe",
        ),
    ],
)
def test_frames_larger_than_a_client_decodes_are_refused_at_start(
    flags: list[str], expected: str
) -> None:
    """Within the memory budget, ``serve`` published frames of any size: past 16 MiB every
    client dropped them unread, and a broker with a packet limit closed the service's
    connection at each one, leaving the network offline. The seed's widest probe holds
    50 float32 values a tick: (16 MiB - 2 KiB) / 200 bytes = 83,875 ticks a frame."""
    proc = subprocess.run(
        # Past the default budget such frames are refused for their memory (the MQTT
        # send queue holds up to 2,116 of them).
        [*SERVE, "--queue-capacity", "1", "--memory-limit", "100GiB", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"spikestream serve: error: {expected}\n"
    spec = load_network(SEED)
    budget.check_frame_sizes(spec, ticks_per_frame=83875, queue_policy="drop-oldest")
    budget.check_frame_sizes(spec, ticks_per_frame=10484, queue_policy="coalesce")
    bounds = budget.frame_tick_bounds(spec, "drop-oldest")
    assert bounds["a_spikes"] == (16 * 2**20 - 2048) * 8 // 50  # bits: one per neuron


def test_console_script_refuses_in_one_line_without_a_traceback() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spikestream",
            "serve",
            str(SEED),
            "--broker",
            BROKER,
            "--ticks-per-frame",
            "1e9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("spikestream serve: error: serving ")
    assert "would allocate about" in lines[0]
    assert "Traceback" not in proc.stderr
    # README.md quotes this refusal: the same words and figures, but the machine's limit.
    quoted = re.search(r"^spikestream serve: error: serving .*$", README.read_text(), re.M)
    assert quoted is not None
    limit = re.compile(r"limit of [\d.]+ \w+ \(\d+ bytes\)")
    said = lines[0].replace(str(SEED), "examples/seed.toml")
    assert limit.sub("limit of L", quoted[0]) == limit.sub("limit of L", said)


# ------------------------------------------------------- the estimate against reality

MEASURE = """
import json, resource, sys
import numpy as np
from spikestream.budget import estimate_serve
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.spec import load_network

spec = load_network(sys.argv[1])
with open("/proc/self/statm") as fh:
    before = int(fh.read().split()[1]) * resource.getpagesize()
engine = Engine(build(spec), queue_capacity=64)
# The C extension runs the tick: no numba, whose compiler would dominate the peak.
assert engine.tick_path == "compiled", engine.tick_path
assert "numba" not in sys.modules
for stream in engine.streams.values():  # a service that has run a while wrote every buffer
    stream.pool.data.fill(1)
# VmHWM, the peak of this process's own memory since exec: ru_maxrss would also carry
# the resident set of the parent that forked it (Linux saves the forked copy's peak at
# exec), which is the test runner's, not ours.
with open("/proc/self/status") as fh:
    after = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
est = estimate_serve(spec, queue_capacity=64)
# The MQTT send queue is a worst case under a backlog, which building does not create.
built = est.total - est.parts["MQTT send queue"]
print(json.dumps({"peak_growth": after - before, "estimate": built}))
"""

NORMAL = """
[populations.a]
n = 3000
dim = 8
[populations.b]
n = 2500
dim = 8
[populations.c]
n = 2000
dim = 8
[inputs.u]
target = "a"
dim = 8
[[connections]]
pre = "a"
post = "b"
weights = {dist = "normal", std = 0.01}
[[connections]]
pre = "b"
post = "c"
function = "x"
[probes.a_spikes]
target = "a"
ticks_per_frame = 20
[probes.c_voltage]
target = "c"
kind = "voltage"
ticks_per_frame = 20
[probes.c_decoded]
target = "c"
kind = "decoded"
"""


def test_estimate_is_within_a_factor_of_the_measured_peak_rss(tmp_path: Path) -> None:
    """Build a normal network and its engine in a fresh process: the estimate must be
    within a factor of 2 of the growth of the peak resident set (not fiction)."""
    path = network_file(tmp_path, NORMAL)
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    growth, estimate = got["peak_growth"], got["estimate"]
    print(f"estimate {estimate / 2**20:.1f} MiB, peak RSS growth {growth / 2**20:.1f} MiB")
    assert estimate > 100 * 2**20  # large enough that the interpreter's noise is small
    assert growth / 2 < estimate < growth * 2


def test_estimate_matches_the_arrays_of_the_built_model(tmp_path: Path) -> None:
    """The persistent parts are exact: the weights counted are the weights built."""
    from spikestream.build import build

    spec = parse_network(
        {
            "network": {"seed": 1},
            "populations": {"a": {"n": 300}, "b": {"n": 200}},
            "connections": [{"pre": "a", "post": "b", "weights": {"dist": "normal"}}],
        }
    )
    model = build(spec)
    weights = model.connections[0].weights
    assert weights is not None
    part = estimate_serve(spec, queue_capacity=1).parts["connection a->b"]
    # float64 weights and the simulator's scaled copy, plus two currents.
    assert part == 2 * weights.nbytes + 2 * 200 * 8
    # With half-precision weights the compiled tick's float16 copy comes on top.
    half = parse_network({**spec.model_dump(), "network": {"seed": 1, "weights_dtype": "float16"}})
    part = estimate_serve(half, queue_capacity=1).parts["connection a->b"]
    assert part == 2 * weights.nbytes + weights.size * 2 + 2 * 200 * 8


@pytest.mark.parametrize(
    "probe",
    [
        {"decoders": "d.npy"},  # a file of shape (n, 300), e.g. imported from Nengo
        {"function": "[" + ", ".join(["x[0]"] * 300) + "]"},
    ],
)
def test_a_decoded_probe_wider_than_its_population_is_counted_at_its_width(
    tmp_path: Path, probe: dict[str, str]
) -> None:
    """A decoded probe gives as many values per tick as its decoders' columns or its
    function's results, not its population's dim: the frame pools counted are the pools
    the engine allocates."""
    from spikestream.build import build
    from spikestream.runtime.engine import Engine

    np.save(tmp_path / "d.npy", np.full((10, 300), 1e-3))
    path = tmp_path / "net.toml"
    ((key, value),) = probe.items()
    path.write_text(
        "[populations.a]\nn = 10\n[inputs.u]\ntarget = 'a'\n"
        f"[probes.v]\ntarget = 'a'\nkind = 'decoded'\n{key} = '{value}'\n"
    )
    spec = load_network(path)
    engine = Engine(build(spec), queue_capacity=4)
    stream = engine.streams["v"]
    estimate = estimate_serve(spec, queue_capacity=4)
    assert estimate.parts["frames of v"] == stream.ticks_per_frame * stream.bytes_per_tick()
    run = estimate_run(spec, ticks=100)
    assert run.parts["recording 100 ticks"] >= 100 * 300 * 8


def signal_file_peak(tmp_path: Path, name: str) -> tuple[NetworkSpec, int]:
    """A 10-neuron network whose 2-D input ``u`` plays ``tmp_path / name``, and the
    traced memory peak of reading its signal (``input_signals``) for 10 ticks."""
    import tracemalloc

    from spikestream.build import build
    from spikestream.runtime.offline import input_signals

    path = tmp_path / "net.toml"
    path.write_text(
        "[populations.a]\nn = 10\ndim = 2\n[inputs.u]\ntarget = 'a'\ndim = 2\n"
        f"signal = {{ kind = 'file', path = '{name}' }}\n"
    )
    spec = load_network(path)
    model = build(spec)
    tracemalloc.start()
    try:
        input_signals(model, 10)
        return spec, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_file_signal_is_counted_as_large_as_its_samples(tmp_path: Path) -> None:
    """``run`` reads an input's samples file whole for each block it feeds: the estimate
    counts at least what that allocates (numpy reports its allocations to tracemalloc),
    however short the run."""
    np.save(tmp_path / "u.npy", np.zeros((1_000_000, 2), dtype=np.float32))
    spec, peak = signal_file_peak(tmp_path, "u.npy")
    estimate = estimate_run(spec, ticks=10, block_bytes=64 * 2**20)
    base = estimate_run(parse_network({"populations": {"a": {"n": 10, "dim": 2}}}), ticks=10)
    assert estimate.total - base.total >= peak > 8_000_000


def test_a_boolean_is_not_a_size() -> None:
    """``memory_limit = true`` in a settings file is refused, not taken as 1 byte."""
    with pytest.raises(ConfigError, match=r"memory_limit: True is not allowed"):
        parse_bytes(True)


# ------------------------------------------------------- the machine's memory, faked

CGROUP_V2 = "/sys/fs/cgroup/memory.max"
CGROUP_V1 = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
GIB = 2**30


def fake_machine(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    physical: int,
    v2: str | None = None,
    v1: str | None = None,
) -> None:
    """Make ``budget`` see ``physical`` bytes of RAM and the given cgroup files (None:
    missing), whatever this machine has."""
    files = {CGROUP_V2: v2, CGROUP_V1: v1}

    def fake_path(path: str) -> Path:
        text = files[path]
        local = tmp_path / ("v2" if path == CGROUP_V2 else "v1")
        if text is None:
            return tmp_path / "missing" / local.name
        local.write_text(text + "\n")
        return local

    page = 4096
    sizes = {"SC_PHYS_PAGES": physical // page, "SC_PAGE_SIZE": page}
    monkeypatch.setattr(budget, "Path", fake_path)
    monkeypatch.setattr(budget.os, "sysconf", lambda name: sizes[name])


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        (None, None, 16 * GIB),  # no cgroup: the physical memory
        ("max", None, 16 * GIB),  # cgroup v2 without a limit
        (None, "9223372036854771712", 16 * GIB),  # cgroup v1's "no limit"
        (None, str(2**60), 16 * GIB),  # the bound itself is "no limit"
        (str(2 * GIB), None, 2 * GIB),  # a container's limit below the host's memory
        (None, str(3 * GIB), 3 * GIB),
        (None, str(2**60 - 4096), 16 * GIB),  # a limit above the memory: the memory
        (str(64 * GIB), None, 16 * GIB),
    ],
)
def test_physical_memory_is_capped_by_a_cgroup_limit_but_not_by_no_limit(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    v2: str | None,
    v1: str | None,
    expected: int,
) -> None:
    """The memory a process may use is the lower of the physical memory and the cgroup
    limit; cgroup v2's ``max`` and cgroup v1's huge number (at least 2^60) mean no limit."""
    fake_machine(monkeypatch, tmp_path, physical=16 * GIB, v2=v2, v1=v1)
    assert budget.physical_memory() == expected
    assert budget.default_limit() == int(expected * budget.DEFAULT_SHARE)


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        ("max", None, None),
        (None, "9223372036854771712", None),
        (None, str(2**60), None),
        (None, str(2**60 - 4096), 2**60 - 4096),
        (str(2 * GIB), str(3 * GIB), 2 * GIB),  # v2 first
    ],
)
def test_the_cgroup_limit_reads_no_limit_as_none(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    v2: str | None,
    v1: str | None,
    expected: int | None,
) -> None:
    """cgroup v1 writes a huge number (at least 2^60) where v2 writes ``max``: both are
    no limit (None), not a limit of exabytes. Through :func:`physical_memory` the two
    cannot differ on a real machine (the physical memory is always lower), so the
    helper itself is asked."""
    fake_machine(monkeypatch, tmp_path, physical=16 * GIB, v2=v2, v1=v1)
    assert budget._cgroup_limit() == expected


def test_a_limit_just_under_the_no_limit_bound_is_a_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Below 2^60 a cgroup v1 number is a real limit: on a (huge) machine with more
    memory it caps the estimate's default limit."""
    fake_machine(monkeypatch, tmp_path, physical=2**61, v1=str(2**60 - 4096))
    assert budget.physical_memory() == 2**60 - 4096


DENSE_SMALL = {
    "network": {"seed": 1},
    "populations": {"a": {"n": 300}, "b": {"n": 200}},
    "connections": [{"pre": "a", "post": "b", "weights": {"dist": "normal"}}],
}


def test_a_float32_dense_connection_counts_its_float64_temporary() -> None:
    """Under float32 the simulator's weights are made from a float64 temporary as large
    as the weights: a build step's peak, counted as a transient of the connection."""
    spec = parse_network({**DENSE_SMALL, "network": {"seed": 1, "dtype": "float32"}})
    est = budget.estimate_network(spec)
    assert est.transient["connection a->b"] == 300 * 200 * 8
    assert est.total >= sum(est.parts.values()) + 300 * 200 * 8
    # float64 makes no such copy.
    assert "connection a->b" not in budget.estimate_network(parse_network(DENSE_SMALL)).transient


def test_the_dtype_override_sizes_the_state() -> None:
    """``--dtype float32`` on a float64 network is estimated as the float32 network is:
    its lasting arrays are smaller (its build makes a float64 temporary the float64
    network does not); ``--dtype float64`` the other way round."""
    f64 = parse_network(DENSE_SMALL)
    f32 = parse_network({**DENSE_SMALL, "network": {"seed": 1, "dtype": "float32"}})
    as32 = budget.estimate_network(f64, dtype="float32")
    assert as32 == budget.estimate_network(f32)
    assert sum(as32.parts.values()) < sum(budget.estimate_network(f64).parts.values())
    assert budget.estimate_network(f32, dtype="float64") == budget.estimate_network(f64)
    serve32 = estimate_serve(f64, dtype="float32", queue_capacity=4)
    assert serve32.total == estimate_serve(f32, queue_capacity=4).total
    run32 = estimate_run(f64, dtype="float32", ticks=100)
    assert run32.total == estimate_run(f32, ticks=100).total
    assert budget.recording_bytes(f64, ticks=100, dtype="float32") == budget.recording_bytes(
        f32, ticks=100
    )


def test_learning_decoders_are_counted_twice_in_the_state_type() -> None:
    """A learning connection keeps a second copy of its decoders in the state type (the
    learned ones beside those it started from): ``pre.n * d * itemsize`` more bytes than
    the same connection without learning."""
    body: dict[str, Any] = {
        "network": {"seed": 1},
        "populations": {"a": {"n": 120, "dim": 3}, "b": {"n": 80, "dim": 3}},
        "inputs": {"err": {"dim": 3}},
        "connections": [{"pre": "a", "post": "b", "function": "x"}],
    }
    plain = parse_network(body)
    learning = parse_network(
        {
            **body,
            "connections": [
                {"pre": "a", "post": "b", "function": "x", "learning": {"error": "err"}}
            ],
        }
    )
    for dtype, item in (("float64", 8), ("float32", 4)):
        grown = budget.estimate_network(learning, dtype=dtype).parts["connection a->b"]
        base = budget.estimate_network(plain, dtype=dtype).parts["connection a->b"]
        assert grown - base == 120 * 3 * item


def test_a_csv_signal_file_is_counted_as_large_as_reading_it(tmp_path: Path) -> None:
    """A CSV samples file is parsed into float64 values, copied and checked: reading it
    allocates far more than the file's bytes, and the estimate counts at least what it
    allocates (numpy reports its allocations to tracemalloc)."""

    (tmp_path / "u.csv").write_text("0,0\n" * 200_000)
    spec, peak = signal_file_peak(tmp_path, "u.csv")
    part = estimate_run(spec, ticks=10).parts["signal file of input u"]
    assert part >= peak > (tmp_path / "u.csv").stat().st_size


def test_a_replayed_run_does_not_count_the_signal_file(tmp_path: Path) -> None:
    """Under ``--replay`` the inputs come from the log, and the samples file is never
    read: its size does not count, however large."""
    np.save(tmp_path / "u.npy", np.zeros((1_000_000, 2)))
    path = tmp_path / "net.toml"
    path.write_text(
        "[populations.a]\nn = 10\ndim = 2\n[inputs.u]\ntarget = 'a'\ndim = 2\n"
        "signal = { kind = 'file', path = 'u.npy' }\n"
    )
    spec = load_network(path)
    live = estimate_run(spec, ticks=10, block_bytes=64 * 2**20)
    assert live.parts["signal file of input u"] >= 1_000_000 * 2 * 8
    replayed = estimate_run(spec, ticks=10, block_bytes=64 * 2**20, replay_bytes=1000)
    assert not any(k.startswith("signal file") for k in replayed.parts)
    assert replayed.total < live.total


def _npy_with_shape(path: Path, shape: tuple[int, ...]) -> None:
    """A ``.npy`` file whose header states ``shape`` (numpy writes no negative one)."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape!r}, }}".ljust(117)
    path.write_bytes(b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little") + header.encode() + b"\n")


def test_a_negative_dimension_in_a_signal_header_cannot_shrink_the_estimate(
    tmp_path: Path,
) -> None:
    """numpy's header parser takes ``'shape': (-10**12, 1)``; the budget multiplied it
    out and subtracted 24 TiB, so a 100k x 100k dense network (149 GiB) passed the limit
    and ``run`` died allocating it (a MemoryError traceback, or the OOM killer). Such a
    header counts nothing, and the network is refused before building as without it."""
    _npy_with_shape(tmp_path / "neg.npy", (-(10**12), 1))
    net = tmp_path / "net.toml"
    net.write_text(
        '[network]\nname = "neg"\n[populations.a]\nn = 100000\n[populations.b]\n'
        'n = 100000\n[inputs.u]\ntarget = "a"\n'
        'signal = { kind = "file", path = "neg.npy" }\n'
        '[[connections]]\npre = "a"\npost = "b"\n'
        'weights = { dist = "normal", mean = 0.0, std = 0.01 }\n'
    )
    estimate = estimate_run(load_network(net), ticks=10)
    assert all(v >= 0 for v in estimate.parts.values()), estimate.parts
    assert estimate.total > 100_000 * 100_000 * 8
    with pytest.raises(MemoryBudgetError):
        check_budget("running it", estimate, 2**30)
