"""Replay logs: the recorder's memory stays bounded, logs round-trip exactly, and hostile
logs are refused with one line before anything large is allocated."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.build import Model, build
from spikestream.errors import ConfigError
from spikestream.runtime.offline import run_blocks, run_offline
from spikestream.runtime.replay import (
    InputRecorder,
    ReplayLog,
    load_replay,
    replay_block,
    replay_inputs,
)
from spikestream.spec import VALUE_LIMIT, NetworkSpec, load_network, parse_network
from tests.serving import SEED
from tests.snapshot_files import MIB, RawMember, deflate_bomb, npy_header, replace_member

LIMIT = 64 * MIB


@pytest.fixture(scope="module")
def spec() -> NetworkSpec:
    return load_network(SEED)


@pytest.fixture(scope="module")
def model(spec: NetworkSpec) -> Model:
    return build(spec)


def good_arrays(model: Model) -> dict[str, Any]:
    return {
        "u.ticks": np.array([0, 5, 5, 40], np.int64),
        "u.values": np.array([[0.5], [0.1], [-0.25], [0.75]]),
        "resets": np.array([20], np.int64),
        "ticks": np.array(100, np.int64),
        "network": np.array(model.name),
        "seed": np.array(model.seed, np.int64),
        "dtype": np.array(model.dtype.name),
    }


def write_npz(path: Path, arrays: dict[str, Any]) -> Path:
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def reference_expansion(model: Model, log: ReplayLog) -> dict[str, np.ndarray]:
    """The expansion as the first implementation did it: events sorted, resets first."""
    out = {}
    for name, inp in model.inputs.items():
        values = np.tile(inp.default, (log.ticks, 1))
        at, vals = log.changes[name]
        events = sorted(
            [(int(k), 1, i) for i, k in enumerate(at)] + [(int(k), 0, -1) for k in log.resets]
        )
        for j, (k, kind, i) in enumerate(events):
            stop = events[j + 1][0] if j + 1 < len(events) else log.ticks
            values[k:stop] = vals[i] if kind == 1 else inp.default
        out[name] = values
    return out


# ---------------------------------------------------------------------------- recording


def test_the_recorder_holds_only_unspooled_changes_and_the_log_keeps_all_of_them(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    target = tmp_path / "inputs.npz"
    recorder = InputRecorder(model, target)
    rng = np.random.default_rng(1)
    n, every = 50_000, 500
    values = rng.uniform(-1, 1, n)
    peak = 0
    for k in range(n):
        recorder.record(k, "u", np.array([values[k]]))
        if k % 7000 == 0:
            recorder.mark("reset", k)
        peak = max(peak, recorder.in_memory)
        if (k + 1) % every == 0:
            recorder.flush()  # what the service's spool task does every 0.5 s
    assert recorder.in_memory == 0
    assert peak == every + 1  # the changes of one interval (and one reset), never the run
    recorder.save(ticks=n)
    assert [p.name for p in tmp_path.iterdir()] == ["inputs.npz"]  # spool removed
    log = load_replay(target, spec, limit=LIMIT)
    np.testing.assert_array_equal(log.changes["u"][0], np.arange(n))
    np.testing.assert_array_equal(log.changes["u"][1][:, 0], values)  # float64, exact
    np.testing.assert_array_equal(log.resets, np.arange(0, n, 7000))
    assert (log.ticks, log.network, log.seed) == (n, model.name, model.seed)


def test_a_failed_spool_write_keeps_the_changes_for_the_next_flush(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    target = tmp_path / "inputs.npz"
    recorder = InputRecorder(model, target)
    recorder.record(0, "u", np.array([0.5]))
    recorder.flush()
    recorder.record(3, "u", np.array([0.25]))
    spool = recorder._make_spool()
    (spool / "0.ticks").rename(spool / "aside")
    (spool / "0.ticks").mkdir()  # the next append fails (even as root)
    with pytest.raises(IsADirectoryError):
        recorder.flush()
    assert recorder.in_memory == 1
    (spool / "0.ticks").rmdir()
    (spool / "aside").rename(spool / "0.ticks")
    recorder.record(4, "u", np.array([-0.5]))
    assert recorder.flush() == 2
    recorder.save(ticks=10)
    log = load_replay(target, spec, limit=LIMIT)
    np.testing.assert_array_equal(log.changes["u"][0], [0, 3, 4])
    np.testing.assert_array_equal(log.changes["u"][1][:, 0], [0.5, 0.25, -0.5])


def test_a_write_failing_after_a_wide_inputs_values_cuts_back_to_whole_rows(
    tmp_path: Path,
) -> None:
    """A spool write that fails after a batch's values went out (here on the resets file)
    cuts every spool file back to the entries counted before it, in bytes of whole rows
    (``dim`` floats per change): the earlier changes of a 2-dimensional input stay intact,
    and the retried batch is in the log once."""
    spec = parse_network(
        {
            "network": {"name": "wide", "seed": 3},
            "populations": {"a": {"n": 20, "dim": 2}},
            "inputs": {"v": {"dim": 2, "target": "a"}},
        }
    )
    model = build(spec)
    target = tmp_path / "inputs.npz"
    recorder = InputRecorder(model, target)
    recorder.record(0, "v", np.array([0.5, -0.5]))
    recorder.record(2, "v", np.array([0.25, 0.75]))
    recorder.flush()
    recorder.record(3, "v", np.array([-0.125, 0.625]))
    recorder.mark("reset", 3)
    spool = recorder._make_spool()
    (spool / "resets.ticks").mkdir()  # the values are written, then this append fails
    with pytest.raises(IsADirectoryError):
        recorder.flush()
    (spool / "resets.ticks").rmdir()
    assert recorder.flush() == 2
    recorder.save(ticks=5)
    log = load_replay(target, spec, limit=LIMIT)
    np.testing.assert_array_equal(log.changes["v"][0], [0, 2, 3])
    np.testing.assert_array_equal(log.changes["v"][1], [[0.5, -0.5], [0.25, 0.75], [-0.125, 0.625]])
    np.testing.assert_array_equal(log.resets, [3])


def test_recording_while_two_threads_flush_keeps_every_change_in_order(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """The tick thread appends while the spool task's thread and save() flush at once."""
    recorder = InputRecorder(model, tmp_path / "inputs.npz")
    n = 20_000
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            recorder.flush()

    threads = [threading.Thread(target=flusher) for _ in range(2)]
    for t in threads:
        t.start()
    for k in range(n):
        recorder.record(k, "u", np.array([k * 1e-3]))
    done.set()
    for t in threads:
        t.join()
    recorder.save(ticks=n)
    log = load_replay(tmp_path / "inputs.npz", spec, limit=LIMIT)
    np.testing.assert_array_equal(log.changes["u"][0], np.arange(n))
    np.testing.assert_array_equal(log.changes["u"][1][:, 0], np.arange(n) * 1e-3)


def test_a_target_in_a_missing_folder_is_refused_when_recording_starts(
    model: Model, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"--log-inputs: cannot write next to .*missing"):
        InputRecorder(model, tmp_path / "missing" / "inputs.npz")


# ---------------------------------------------------------------------------- expansion


@settings(max_examples=60, deadline=None)
@given(
    ticks=st.integers(0, 60),
    changes=st.lists(st.tuples(st.integers(0, 60), st.floats(-2, 2)), max_size=12),
    resets=st.lists(st.integers(0, 60), max_size=4),
    split=st.integers(0, 60),
)
def test_block_expansion_matches_the_reference_and_blocks_concatenate(
    model: Model,
    ticks: int,
    changes: list[tuple[int, float]],
    resets: list[int],
    split: int,
) -> None:
    changes = sorted((min(k, ticks), v) for k, v in changes)
    log = ReplayLog(
        ticks=ticks,
        network=model.name,
        seed=model.seed,
        dtype=model.dtype.name,
        changes={
            "u": (
                np.array([k for k, _ in changes], np.int64),
                np.array([[v] for _, v in changes], np.float64).reshape(-1, 1),
            )
        },
        resets=np.array(sorted(min(r, ticks) for r in resets), np.int64),
        nbytes=0,
    )
    whole = replay_inputs(model, log)[1]["u"]
    np.testing.assert_array_equal(whole, reference_expansion(model, log)["u"])
    cut = min(split, ticks)
    parts = [replay_block(model, log, 0, cut)["u"], replay_block(model, log, cut, ticks)["u"]]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_a_log_of_another_seed_is_refused(model: Model, spec: NetworkSpec, tmp_path: Path) -> None:
    arrays = good_arrays(model) | {"seed": np.array(model.seed + 1, np.int64)}
    log = load_replay(write_npz(tmp_path / "log.npz", arrays), spec, limit=LIMIT)
    with pytest.raises(ConfigError, match=r"seed .* \(pass --seed to match\)"):
        replay_inputs(model, log)


def test_a_log_of_another_number_type_is_refused(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """A float32 live run replayed in float64 runs other spikes: refused, naming the flag."""
    arrays = good_arrays(model) | {"dtype": np.array("float32")}
    log = load_replay(write_npz(tmp_path / "log.npz", arrays), spec, limit=LIMIT)
    with pytest.raises(ConfigError, match=r"'float32' run; this build is 'float64' \(pass --dtype"):
        replay_inputs(model, log)
    replay_inputs(build(spec, dtype="float32"), log)  # the same type: accepted
    # A type no run has is refused as the log is read ("pass --dtype float16" was the
    # advice, and --dtype has no float16).
    arrays = good_arrays(model) | {"dtype": np.array("float16")}
    with pytest.raises(ConfigError, match=r"'dtype' is 'float16'; expected the number type"):
        load_replay(write_npz(tmp_path / "log16.npz", arrays), spec, limit=LIMIT)


def test_a_log_of_another_network_is_refused_without_the_seed_advice(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """It said "pass --seed to match" when the names differed, which no flag mends."""
    arrays = good_arrays(model) | {"network": np.array("other")}
    log = load_replay(write_npz(tmp_path / "log.npz", arrays), spec, limit=LIMIT)
    with pytest.raises(ConfigError) as caught:
        replay_inputs(model, log)
    assert "replay log is for network 'other'; this build is 'seed'" in str(caught.value)
    assert "--seed" not in str(caught.value)


# ---------------------------------------------------------------------------- hostile logs


def _with(model: Model, **changes: Any) -> bytes:
    arrays = good_arrays(model) | changes
    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in arrays.items() if v is not None})
    return buf.getvalue()


def _many_members(count: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(count):
            zf.writestr(f"m{i}.npy", b"")
    return buf.getvalue()


def _member(model: Model, key: str, member: RawMember) -> bytes:
    return replace_member(_with(model), key, member)


HOSTILE: list[tuple[str, Any, str]] = [
    (
        "huge header",
        lambda m: _member(m, "u.values", RawMember.stored("u.values.npy", npy_header((10**12, 1)))),
        r"'u.values.npy': its header claims shape \(1000000000000, 1\) \(8000000000000 bytes\)",
    ),
    (
        "zip bomb under a small claim",
        lambda m: _member(
            m, "u.values", deflate_bomb("u.values.npy", npy_header((4, 1)), 256 * MIB, claim=160)
        ),
        r"(member 'u.values.npy' inflates past 160 bytes|Bad CRC-32 for file 'u.values.npy')",
    ),
    (
        "zip bomb claiming its size",
        lambda m: _member(
            m, "u.values", deflate_bomb("u.values.npy", npy_header((4 * MIB, 32)), 1024 * MIB)
        ),
        r"members claim \d+ bytes uncompressed, over the memory limit of 67108864 bytes",
    ),
    ("missing seed", lambda m: _with(m, seed=None), r"missing 'seed' for network 'seed'"),
    ("missing input", lambda m: _with(m, **{"u.ticks": None}), r"missing 'u.ticks'"),
    (
        "foreign input",
        lambda m: _with(m, **{"v.ticks": np.zeros(0, np.int64)}),
        r"unexpected member 'v.ticks.npy'",
    ),
    (
        "values of the wrong dtype",
        lambda m: _with(m, **{"u.values": np.zeros((4, 1), np.complex128)}),
        r"'u.values' holds complex128; expected float64 or float32",
    ),
    (
        "values of the wrong shape",
        lambda m: _with(m, **{"u.values": np.zeros((4, 3))}),
        r"'u.values' has shape \(4, 3\); expected shape \(k, 1\)",
    ),
    (
        "rows and ticks disagree",
        lambda m: _with(m, **{"u.values": np.zeros((2, 1))}),
        r"'u.values' has 2 rows; 'u.ticks' has 4",
    ),
    (
        "NaN value",
        lambda m: _with(m, **{"u.values": np.array([[0.0], [np.nan], [0.0], [0.0]])}),
        r"'u.values' holds 1 value\(s\) that are NaN, infinite or beyond \+-1e\+09",
    ),
    (
        "infinite value",
        lambda m: _with(m, **{"u.values": np.array([[0.0], [np.inf], [-np.inf], [0.0]])}),
        r"'u.values' holds 2 value\(s\)",
    ),
    (
        "value beyond the network file's bound",
        lambda m: _with(m, **{"u.values": np.array([[0.0], [2e9], [0.0], [0.0]])}),
        r"'u.values' holds 1 value\(s\)",
    ),
    (
        "ticks out of order",
        lambda m: _with(m, **{"u.ticks": np.array([0, 9, 5, 40])}),
        r"'u.ticks' is out of order at entry 2 \(9 then 5\)",
    ),
    (
        "tick beyond ticks",
        lambda m: _with(m, **{"u.ticks": np.array([0, 5, 5, 101])}),
        r"'u.ticks' holds ticks from 0 to 101; expected ticks in \[0, 100\]",
    ),
    (
        "negative tick",
        lambda m: _with(m, **{"u.ticks": np.array([-3, 5, 5, 40])}),
        r"'u.ticks' holds ticks from -3 to 40",
    ),
    (
        "uint64 tick beyond int64",
        lambda m: _with(m, **{"u.ticks": np.array([0, 5, 5, 2**64 - 1], np.uint64)}),
        r"'u.ticks' holds ticks beyond 'ticks' \(100\)",
    ),
    ("reset out of range", lambda m: _with(m, resets=np.array([500])), r"'resets' holds ticks"),
    (
        "seed beyond int64",
        lambda m: _with(m, seed=np.array(2**63, np.uint64)),
        r"'seed' is 9223372036854775808; expected an integer in \[0, 2\^63\)",
    ),
    (
        "huge ticks",
        lambda m: _with(m, ticks=np.array(2**60, np.int64)),
        r"'ticks' is 1152921504606846976; expected an integer 0 <= ticks <= 2\*\*53-1",
    ),
    (
        "ticks not one integer",
        lambda m: _with(m, ticks=np.array([100, 100])),
        r"'ticks' has shape \(2,\); expected a single value",
    ),
    (
        "pickled object",
        lambda m: _member(
            m, "network", RawMember.stored("network.npy", npy_header((), "|O") + b"x" * 16)
        ),
        r"'network' holds object; expected a string",
    ),
    (
        # numpy's TokenError for an unclosed "{" was caught by no handler: a traceback.
        "header not closed",
        lambda m: _member(
            m, "u.values", RawMember.stored("u.values.npy", b"\x93NUMPY\x01\x00\x06\x00{    \n")
        ),
        r"'u.values.npy'.*header is not a Python literal",
    ),
    (
        # zipfile read the directory whole, an object per member, before any check: a
        # million empty members took 570 MB.
        "a directory of 20,000 members",
        lambda m: _many_members(20_000),
        r"its directory lists 20000 member\(s\) in \d+ bytes; expected at most 26 member",
    ),
    (
        "not a zip",
        lambda m: b"\x93NUMPY not a zip at all" * 10,
        r"corrupt zip data \(File is not a zip file\)",
    ),
]


@pytest.mark.parametrize(("case", "make", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_log_is_refused_with_one_line_before_allocating(
    model: Model, spec: NetworkSpec, tmp_path: Path, case: str, make: Any, expected: str
) -> None:
    path = tmp_path / "log.npz"
    path.write_bytes(make(model))
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            load_replay(path, spec, limit=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(f"replay log {str(path)!r} refused: "), message
    assert "\n" not in message
    assert caught.match(expected), message
    assert peak < 4 * MIB, case  # a few read buffers, never the claimed sizes


def test_a_log_file_larger_than_the_memory_limit_is_refused_by_its_size(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """A log file bigger than the memory limit is refused by its size on disk, before its
    zip directory or any member is read, and the refusal says so."""
    path = write_npz(tmp_path / "log.npz", good_arrays(model))
    size = path.stat().st_size
    assert load_replay(path, spec, limit=size).ticks == 100  # at the limit: read
    with pytest.raises(ConfigError, match=rf"the file is {size} bytes, over the memory limit"):
        load_replay(path, spec, limit=size - 1)


def test_a_folder_or_fifo_is_refused_without_blocking(spec: NetworkSpec, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_replay(path, spec, limit=LIMIT)


def test_the_good_log_loads(model: Model, spec: NetworkSpec, tmp_path: Path) -> None:
    log = load_replay(write_npz(tmp_path / "log.npz", good_arrays(model)), spec, limit=LIMIT)
    values = replay_inputs(model, log)[1]["u"][:, 0]
    assert values[[0, 4, 5, 19, 20, 39, 40, 99]].tolist() == [
        0.5,
        0.5,
        -0.25,
        -0.25,
        0,
        0,
        0.75,
        0.75,
    ]


def test_a_change_and_a_reset_at_the_last_tick_load_and_the_replay_stops_at_the_log(
    model: Model, spec: NetworkSpec, tmp_path: Path
) -> None:
    """A live run reset (or sent a value) and then stopped before another tick logs an entry
    at tick ``ticks``, the end of ``[0, ticks]``: the log loads. Asked for more ticks than
    it holds, :func:`replay_inputs` gives the log's ticks, no made-up ones past its end. A
    value of exactly +-VALUE_LIMIT is within the network file's bounds, so it loads too."""
    arrays = good_arrays(model) | {
        "u.ticks": np.array([0, 100], np.int64),
        "u.values": np.array([[VALUE_LIMIT], [0.75]]),  # the bound itself is allowed
        "resets": np.array([20, 100], np.int64),
    }
    log = load_replay(write_npz(tmp_path / "log.npz", arrays), spec, limit=LIMIT)
    assert log.resets.tolist() == [20, 100]
    assert log.changes["u"][0].tolist() == [0, 100]
    n, inputs, resets = replay_inputs(model, log, ticks=150)
    assert n == 100
    assert inputs["u"].shape == (100, 1)
    assert inputs["u"][[0, 19, 20, 99], 0].tolist() == [VALUE_LIMIT, VALUE_LIMIT, 0.0, 0.0]
    assert resets.tolist() == [20, 100]


# ---------------------------------------------------------------------------- the command


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "spikestream.cli", "run", str(SEED), "--no-progress"]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"u.values": np.array([[0.0], [np.nan], [0.0], [0.0]])}, "'u.values' holds 1 value(s)"),
        ({"ticks": np.array(10**11, np.int64)}, "100000000000 replayed ticks would write about"),
    ],
    ids=["nan", "ticks beyond the free disk"],
)
def test_run_refuses_a_hostile_log_with_exit_2_and_one_line(
    model: Model, tmp_path: Path, arrays: dict[str, Any], expected: str
) -> None:
    log = write_npz(tmp_path / "log.npz", good_arrays(model) | arrays)
    proc = _run("--replay", str(log), "--out", str(tmp_path / "out.npz"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], proc.stderr
    assert not (tmp_path / "out.npz").exists()


def test_the_log_written_is_a_plain_npz(model: Model, tmp_path: Path) -> None:
    recorder = InputRecorder(model, tmp_path / "inputs.npz")
    recorder.record(2, "u", np.array([0.5]))
    recorder.save(ticks=10)
    with zipfile.ZipFile(tmp_path / "inputs.npz") as zf:
        # good_arrays is a log as written before learning and restores were recorded.
        since = {"learning.ticks", "learning.values", "restores"}
        assert sorted(zf.namelist()) == sorted(f"{k}.npy" for k in {*good_arrays(model), *since})
    with np.load(tmp_path / "inputs.npz") as data:
        assert data["learning.values"].shape == (0, 2)
        assert data["restores"].shape == (0,)
        assert data["u.ticks"].tolist() == [2]
        assert data["u.values"].tolist() == [[0.5]]
        assert int(data["ticks"]) == 10
        assert str(data["network"]) == model.name


def test_a_replay_expanded_block_by_block_runs_the_same_spikes_as_whole_inputs(
    model: Model,
) -> None:
    """run_blocks with small blocks and the log expanded per block == the whole expansion."""
    rng = np.random.default_rng(3)
    ticks = 700
    at = np.sort(rng.integers(0, ticks, 60))
    log = ReplayLog(
        ticks=ticks,
        network=model.name,
        seed=model.seed,
        dtype=model.dtype.name,
        changes={"u": (at, rng.uniform(-1, 1, (60, 1)))},
        resets=np.array([250, 480], np.int64),
        nbytes=0,
    )
    _, whole, resets = replay_inputs(model, log)
    expected = run_offline(model, ticks, inputs=whole, resets=resets.tolist())
    got: dict[str, list[np.ndarray]] = {"a.spikes": [], "b.spikes": [], "u": []}
    count = 0
    for block in run_blocks(
        model,
        ticks,
        inputs=functools.partial(replay_block, model, log),
        resets=resets.tolist(),
        block_ticks=97,
    ):
        count += 1
        for name, parts in got.items():
            parts.append(block.arrays[name].copy())  # the block buffers are reused
    assert count > 7
    for name, parts in got.items():
        np.testing.assert_array_equal(np.concatenate(parts), expected[name])
    assert expected["a.spikes"].any()


def test_a_log_of_no_ticks_replays_as_an_empty_run(model: Model, tmp_path: Path) -> None:
    """A service stopped before its first tick writes a log of 0 ticks: replayed, it runs
    none and says so (the closing line divided by the ticks)."""
    recorder = InputRecorder(model, tmp_path / "inputs.npz")
    recorder.save(ticks=0)
    proc = _run("--replay", str(tmp_path / "inputs.npz"), "--out", str(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "seed: 0 ticks (0 s simulated)" in proc.stdout
    assert "mean rates (Hz): {'a': 0.0, 'b': 0.0}" in proc.stdout


def test_a_duration_past_the_log_runs_the_log_and_says_so(
    model: Model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 0.1 s log under --duration 1 ran 0.1 s without a word."""
    from spikestream.cli import main

    log = tmp_path / "log.npz"
    log.write_bytes(_with(model))
    out = tmp_path / "o.npz"
    assert main(["run", str(SEED), "--replay", str(log), "--duration", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "the replay log is shorter than --duration: running its ticks" in err
    assert "log_ticks=100 duration_ticks=1000" in err
    assert int(np.load(out)["tick"][-1]) == 99
    assert (
        main(["run", str(SEED), "--replay", str(log), "--duration", "0.05", "--out", str(out)]) == 0
    )
    assert "shorter than --duration" not in capsys.readouterr().err
    assert (
        main(["run", str(SEED), "--replay", str(log), "--duration", "1e300", "--out", str(out)])
        == 0
    )
    assert "log_ticks=100 duration_ticks=1.000e+303\n" in capsys.readouterr().err


def test_run_refuses_a_log_of_another_build(
    model: Model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --replay`` checks the log against the build before it runs: a log of another
    seed would run other spike trains than the live run's, without a word."""
    from spikestream.cli import main

    log = write_npz(tmp_path / "log.npz", good_arrays(model) | {"seed": np.array(model.seed + 1)})
    out = tmp_path / "o.npz"
    assert main(["run", str(SEED), "--replay", str(log), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"with seed {model.seed + 1}; this build is 'seed' with seed {model.seed}" in err
    assert not out.exists()


def test_run_replays_the_logs_resets_into_the_state(model: Model, tmp_path: Path) -> None:
    """A reset in the log resets the simulation's state at its tick, not only the inputs'
    values: the replayed spikes are those of a run reset there, which differ from a run
    that was not."""
    from spikestream.cli import main

    log = write_npz(tmp_path / "log.npz", good_arrays(model))  # a reset at tick 20
    out = tmp_path / "o.npz"
    assert main(["run", str(SEED), "--replay", str(log), "--out", str(out), "--no-progress"]) == 0
    loaded = load_replay(log, load_network(SEED), limit=LIMIT)
    _, inputs, resets = replay_inputs(model, loaded)
    assert resets.tolist() == [20]
    reset = run_offline(build(load_network(SEED)), 100, inputs=inputs, resets=[20])
    kept = run_offline(build(load_network(SEED)), 100, inputs=inputs, resets=[])
    assert not np.array_equal(reset["a.spikes"], kept["a.spikes"])  # the check can fail
    with np.load(out) as got:
        np.testing.assert_array_equal(got["a.spikes"], reset["a.spikes"])
        np.testing.assert_array_equal(got["b.spikes"], reset["b.spikes"])


@pytest.mark.parametrize(
    ("restores", "duration", "warning"),
    [
        ([99], [], "before tick 99 (1 restore(s)"),
        ([100], [], None),
        ([30, 60], [], "before tick 30 (2 restore(s)"),
        ([50], ["--duration", "0.05"], None),
        ([49, 50], ["--duration", "0.05"], "before tick 49 (1 restore(s)"),
    ],
)
def test_run_warns_of_a_restore_only_within_the_ticks_it_replays(
    model: Model,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restores: list[int],
    duration: list[str],
    warning: str | None,
) -> None:
    """A restore before tick k changes the live run from k on; a replay of k ticks or fewer
    never reaches it, and warning of it there sent users looking for a divergence that
    their replay does not have. The warning names the first restore replayed, and counts
    those within the ticks replayed."""
    from spikestream.cli import main

    arrays = good_arrays(model) | {"restores": np.array(restores, np.int64)}
    log = write_npz(tmp_path / "log.npz", arrays)
    argv = ["run", str(SEED), "--replay", str(log), "--out", str(tmp_path / "o.npz"), *duration]
    assert main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err
    if warning is None:
        assert "restored a snapshot" not in err, err
    else:
        assert f"restored a snapshot {warning}" in err, err
