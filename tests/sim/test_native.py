"""The C program interpreter (spikestream.sim._native) computes exactly what numba's does.

The extension is part of every install that had a C compiler, and CI's does: these tests
require it rather than skip without it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import Model, build
from spikestream.errors import SimulationError
from spikestream.runtime.offline import input_signals
from spikestream.sim import Simulator, native, opcodes
from spikestream.sim.native import program_args
from spikestream.sim.program import _Segment, address_table
from spikestream.spec import load_network, parse_network
from tests.sim import record_blocks

ROOT = Path(__file__).parents[2]
SEED = ROOT / "examples" / "seed.toml"
SOURCE = ROOT / "service" / "spikestream" / "sim" / "_native.c"


def test_the_extension_is_built_and_chosen_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    assert native.extension() is not None, "spikestream.sim._native was not built"
    assert native.runner() == "c"
    assert Simulator(build(load_network(SEED))).runner == "c"


def test_the_environment_chooses_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV, "numba")
    assert Simulator(build(load_network(SEED))).runner == "numba"
    monkeypatch.setenv(native.ENV, " C ")
    assert native.runner() == "c"
    monkeypatch.setenv(native.ENV, "fortran")
    with pytest.raises(SimulationError, match=r"SPIKESTREAM_PROGRAMS='fortran'.*auto, c or numba"):
        native.runner()


def test_the_c_source_uses_the_python_opcodes() -> None:
    """_native.c repeats the program format's numbers; both must agree."""
    defines = dict(re.findall(r"^#define (\w+) (\d+)$", SOURCE.read_text(), re.MULTILINE))
    expected = {
        name: getattr(opcodes, name)
        for name in dir(opcodes)
        if (name.startswith("OP_") and name not in ("PLAIN_OP",)) or name == "PROGRAM_COLUMNS"
    }
    expected |= {f"T_{n}": getattr(opcodes, n) for n in ("ADDRESS", "ROWS", "COLS")}
    for n in ("DT", "TAU_RC", "TAU_REF", "MIN_VOLTAGE", "FULL", "ZERO", "ONE", "NEG_TAU_RC"):
        expected[f"C_{n}"] = getattr(opcodes, n)
    assert len(expected) == 15 + 1 + 3 + 8
    assert {k: int(defines[k]) for k in expected} == expected


def _network(dtype: str, timing: str, weights_dtype: str | None = None) -> Model:
    """Every op kind a program holds: LIF with bias/encoders/currents, event-driven
    weights, factored (decoded) connections with d = 16 (two sweeps of eight rows) and
    d = 3 (the remainder loop), an input connection, and every probe kind."""
    return build(
        parse_network(
            {
                "network": {
                    "seed": 21,
                    "dtype": dtype,
                    "timing": timing,
                    "weights_dtype": weights_dtype,
                },
                "populations": {
                    "a": {"n": 120, "dim": 3, "initial_voltage": 0.5},
                    "b": {"n": 400, "dim": 16, "min_voltage": -0.5},
                    "c": {"n": 300, "dim": 3},
                    "d": {"n": 60, "radius": 2.0},
                },
                "inputs": {
                    "u": {"dim": 3, "target": "a", "signal": "sin"},
                    "w": {"dim": 3, "target": "c", "signal": {"kind": "constant", "value": 0.3}},
                    "v": {"dim": 1, "signal": "sin"},
                },
                "connections": [
                    {
                        "pre": "a",
                        "post": "b",
                        "function": "x",
                        "transform": [[1, 0, 0]] * 16,
                        "synapse": 0.005,
                    },
                    {
                        "pre": "b",
                        "post": "c",
                        "function": "x",
                        "transform": [[0.1] * 16] * 3,
                        "synapse": 0.01,
                    },
                    {"pre": "c", "post": "d", "weights": {"std": 0.004}, "synapse": 0.01},
                    {"pre": "d", "post": "a", "weights": {"std": 0.002}, "synapse": 0.02},
                    {"pre": "v", "post": "d", "synapse": 0.005, "transform": [[1.5]]},
                ],
                "probes": {
                    "sb": {"target": "b", "kind": "spikes"},
                    "fa": {"target": "a", "kind": "filtered", "synapse": 0.02},
                    "vd": {"target": "d", "kind": "voltage"},
                    "yc": {"target": "c", "kind": "decoded", "synapse": 0.01},
                    "pu": {"target": "u", "kind": "input"},
                },
            }
        )
    )


def _record(
    model: Model, runner: str, ticks: int, monkeypatch: pytest.MonkeyPatch, *, block: bool
) -> dict[str, np.ndarray]:
    """Every probe, every population's spikes and the final state, with ``runner``
    running the programs: in blocks of ticks (``block``), or one tick per call as the
    live service steps."""
    monkeypatch.setenv(native.ENV, runner)
    sim = Simulator(model)
    assert sim.compiled
    assert sim.runner == runner
    if block:
        return {**record_blocks(sim, ticks, progress_every=700), **sim.state()}
    signals = input_signals(model, ticks)
    views = {n: sim.probe(n) for n in model.probes}
    views |= {f"{p}.spikes": sim.spiked(p) for p in model.populations}
    rows: dict[str, list[np.ndarray]] = {key: [] for key in views}
    for k in range(ticks):
        for name, values in signals.items():
            sim.set_input(name, values[k])
        sim.step()
        for key, view in views.items():
            rows[key].append(view.copy())
    return {**{key: np.array(r) for key, r in rows.items()}, **sim.state()}


@pytest.mark.parametrize(
    ("dtype", "timing", "block"),
    [
        ("float64", "spikestream", True),
        ("float32", "spikestream", True),
        ("float64", "nengo", True),
        ("float32", "spikestream", False),
    ],
)
def test_c_and_numba_record_the_same_bits(
    dtype: str, timing: str, block: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _network(dtype, timing)
    ticks = 1500 if block else 400
    c = _record(model, "c", ticks, monkeypatch, block=block)
    jit = _record(model, "numba", ticks, monkeypatch, block=block)
    assert c.keys() == jit.keys()
    # The run is not trivial: every population spikes, the decoded probe moves.
    for p in "abcd":
        assert c[f"{p}.spikes"].sum() > ticks / 10, p
    assert np.abs(c["yc"]).max() > 0.05
    for key in c:
        assert c[key].dtype == jit[key].dtype, key
        np.testing.assert_array_equal(c[key], jit[key], err_msg=key)


@pytest.mark.parametrize(
    ("dtype", "simd", "block"),
    [
        ("float32", True, True),
        ("float32", False, True),
        ("float64", True, True),
        ("float32", True, False),
    ],
)
def test_half_precision_weights_in_c_are_the_rounded_matrices_in_numba(
    dtype: str, simd: bool, block: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C extension reads float16 copies (F16C, or portable C) where numba reads the
    state-dtype matrices holding the same rounded values: the same bits either way."""
    ext = native.extension()
    assert ext is not None
    available = ext.use_simd(True)  # where the CPU lacks AVX2 or F16C, both runs are portable
    assert ext.use_simd(simd) == (simd and available)
    try:
        model = _network(dtype, "spikestream", "float16")
        ticks = 1500 if block else 400
        monkeypatch.setenv(native.ENV, "c")
        sim = Simulator(model)
        codes = set(sim._ops[0]._tick.program[:, 0].tolist())  # type: ignore[union-attr]
        half_ops = {opcodes.OP_ENCODE_H, opcodes.OP_EVENTS_H, opcodes.OP_DECODED_H}
        assert half_ops | {opcodes.OP_LOWPASS_DECODED_H} <= codes
        assert not codes & set(opcodes.PLAIN_OP.values())  # every matrix read is half
        plain = Simulator(_network(dtype, "spikestream"))
        assert sim.footprint().matrix_bytes * 4 == plain.footprint().matrix_bytes * (
            2 if dtype == "float32" else 1
        )
        c = _record(model, "c", ticks, monkeypatch, block=block)
        jit = _record(model, "numba", ticks, monkeypatch, block=block)
    finally:
        ext.use_simd(True)
    for p in "abcd":
        assert c[f"{p}.spikes"].sum() > ticks / 10, p
    assert np.abs(c["yc"]).max() > 0.05
    for key in c:
        np.testing.assert_array_equal(c[key], jit[key], err_msg=key)


def test_every_float16_widens_exactly_with_and_without_simd() -> None:
    """All 65,536 float16 bit patterns as one row of an EVENTS_H matrix (scale 1), added
    to zeros, give numpy's float16 -> float32 conversion on both paths (F16C in chunks,
    and portable C): every finite value and infinity bit for bit (-0 + 0 is +0), and NaN
    for NaN (arithmetic quiets a signalling NaN; weights are finite)."""
    ext = native.extension()
    assert ext is not None
    available = ext.use_simd(True)
    bits = np.arange(65536, dtype=np.uint16)
    row = bits.view(np.float16).reshape(1, -1).copy()
    with np.errstate(invalid="ignore"):  # the signalling NaNs
        expected = row[0].astype(np.float32) + np.float32(0.0)
    nan = np.isnan(expected)
    assert nan.sum() == 2 * 1023  # both signs, every nonzero mantissa
    try:
        for simd in (True, False):
            assert ext.use_simd(simd) == (simd and available)
            z = np.zeros(65536, np.float32)
            spikers = np.zeros(1, np.intp)
            arrays = [z, row, spikers]
            program = np.zeros((1, opcodes.PROGRAM_COLUMNS), np.int64)
            program[0, :6] = [opcodes.OP_EVENTS_H, 0, 1, 2, 0, 0]
            scalars = np.zeros((1, 8), np.float32)
            scalars[0, 2] = 1.0  # a = 0, scale = 1
            counts = np.ones(1, np.int64)
            args = native.program_args(program, address_table(arrays), scalars, counts)
            ext.check_program(*args, 0, 1)
            ext.run_program(*args, 0, 1)
            np.testing.assert_array_equal(np.isnan(z), nan)
            np.testing.assert_array_equal(z[~nan].view(np.uint32), expected[~nan].view(np.uint32))
    finally:
        ext.use_simd(True)


def test_the_seed_example_is_bit_for_bit_the_golden_trajectory_in_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    golden = np.load(ROOT / "tests" / "sim" / "golden_seed.npz")
    model = build(load_network(SEED))
    ticks = golden["a"].size * 8 // model.populations["a"].n
    monkeypatch.delenv(native.ENV, raising=False)
    sim = Simulator(model)
    assert sim.runner == "c"
    spikes = {p: np.zeros((ticks, model.populations[p].n), bool) for p in ("a", "b")}
    sim.run(ticks, inputs=input_signals(model, ticks), record_spikes=spikes)
    np.testing.assert_array_equal(np.packbits(spikes["a"]), golden["a"])
    np.testing.assert_array_equal(np.packbits(spikes["b"]), golden["b"])


class _Bad:
    """A one-op program over real arrays, to break one field at a time."""

    def __init__(self) -> None:
        self.x = np.zeros(4)
        self.block = np.zeros((10, 4))
        self.table = address_table([self.x, self.block])
        self.program = np.zeros((1, opcodes.PROGRAM_COLUMNS), np.int64)
        self.program[0, :3] = (opcodes.OP_FEED, 0, 1)
        self.scalars = np.zeros((1, 8))
        self.counts = np.zeros(1, np.int64)

    def run(self, start: int, stop: int) -> None:
        """Check the program, as its builder does, then run it."""
        ext = native.extension()
        assert ext is not None
        args = program_args(self.program, self.table, self.scalars, self.counts)
        ext.check_program(*args, start, stop)
        ext.run_program(*args, start, stop)


def test_a_well_formed_program_runs() -> None:
    bad = _Bad()
    bad.block[:] = np.arange(40).reshape(10, 4)
    bad.run(0, 10)
    np.testing.assert_array_equal(bad.x, [36, 37, 38, 39])


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda b: b.program.__setitem__((0, 0), 99), "unknown opcode 99"),
        (lambda b: b.program.__setitem__((0, 2), 2), r"names array 2; expected 0 <= slot < 2"),
        (lambda b: b.program.__setitem__((0, 1), -1), r"names array -1"),
        (lambda b: b.table.__setitem__((0, 1), 5), "shapes do not fit"),
        (
            lambda b: b.program.__setitem__(0, [opcodes.OP_LIF, 0, 0, 0, 0, 0, 0, 0, 3, 0]),
            "constants row 3",
        ),
        (
            lambda b: b.program.__setitem__(0, [opcodes.OP_EVENTS, 0, 1, 0, 7, 0, 0, 0, 0, 0]),
            "count slot 7",
        ),
    ],
)
def test_a_malformed_program_is_refused_before_any_tick(breakage, message) -> None:  # type: ignore[no-untyped-def]
    bad = _Bad()
    bad.block[:] = 1.0
    breakage(bad)
    with pytest.raises(ValueError, match=message):
        bad.run(0, 10)
    assert not bad.x.any()


def test_ticks_beyond_a_fed_block_are_refused() -> None:
    bad = _Bad()
    with pytest.raises(ValueError, match="exceed a fed or recorded block"):
        bad.run(0, 11)
    with pytest.raises(ValueError, match="expected 0 <= start <= stop"):
        bad.run(5, 4)
    with pytest.raises(TypeError, match="start: expected an int; got str"):
        native.extension().run_program(*[0] * 9, "0", 1)  # type: ignore[union-attr]


def test_the_ticks_run_without_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one C call steps a long block of ticks, another Python thread keeps running.
    With the GIL held it would get no turn at all during the call, only before and after
    it (a switch interval each)."""
    monkeypatch.delenv(native.ENV, raising=False)
    model = _network("float32", "spikestream")
    sim = Simulator(model)
    signals = input_signals(model, 2000)
    start = time.perf_counter()
    sim.run(2000, inputs=signals)
    per_tick = (time.perf_counter() - start) / 2000
    ticks = int(0.4 / max(per_tick, 1e-7))  # one call of about 0.4 s
    signals = input_signals(model, ticks)
    # The spin rate of this thread alone, to state the bound in seconds of spinning.
    spins, until = 0, time.perf_counter() + 0.05
    while time.perf_counter() < until:
        spins += 1
    rate = spins / 0.05
    thread = threading.Thread(
        target=sim.run, args=(ticks,), kwargs={"inputs": signals, "progress_every": ticks}
    )
    spins = 0
    thread.start()
    while thread.is_alive():
        spins += 1
    thread.join()
    # At least 0.04 s worth of spinning during a 0.4 s call; holding the GIL would leave
    # two switch intervals' worth (10 ms by default). (0.1 s failed once on a busy 2-vCPU
    # VM at 0.092 s: the two threads share the cores with the rest of the machine.)
    assert spins > 0.04 * rate, (spins, rate)


@pytest.mark.parametrize(
    ("half", "simd"),
    [(False, True), (True, True), (True, False)],
    ids=["plain", "f16c", "portable"],
)
def test_spike_counts_beyond_the_spikers_array_read_nothing_outside_it(
    half: bool, simd: bool
) -> None:
    """The count of an op comes from another op (or Python): the C side clamps it to the
    spikers array and skips indices outside the weight rows, on every path that adds
    rows (the float16 one in blocks of 32 and 8 columns and a scalar tail: 45 columns).
    The 20 rows sit between sentinel rows, so reading row -1 or row 20 shows; there are
    more spikers than the prefetch distance, so its bounds are exercised too."""
    dtype = np.float32 if half else np.float64
    z = np.zeros(45, dtype)
    block = np.ones((22, 45), np.float16 if half else np.float64)
    block[0] = block[21] = 1000.0  # sentinels around the matrix's 20 rows
    weights = block[1:21]
    spikers = np.array([1, 20, -1, 99, *range(2, 17), 0], np.int64)  # 20, -1, 99: no such row
    table = address_table([z, weights, spikers])
    program = np.zeros((1, opcodes.PROGRAM_COLUMNS), np.int64)
    program[0, :6] = (opcodes.OP_EVENTS_H if half else opcodes.OP_EVENTS, 0, 1, 2, 0, 0)
    scalars = np.zeros((1, 8), dtype)
    scalars[0, 0] = 1.0  # a: z = a * z + the rows
    scalars[0, 2] = 1.0  # the float16 rows' scale (unread by the plain op)
    counts = np.array([99], np.int64)  # more than the 20 entries of spikers
    ext = native.extension()
    assert ext is not None
    available = ext.use_simd(True)
    try:
        assert ext.use_simd(simd) == (simd and available)
        args = program_args(program, table, scalars, counts)
        ext.check_program(*args, 0, 1)
        ext.run_program(*args, 0, 1)
    finally:
        ext.use_simd(True)
    np.testing.assert_array_equal(z, np.full(45, 17.0))  # the 17 rows that exist, once each


def test_a_negative_shape_in_the_table_is_refused() -> None:
    bad = _Bad()
    bad.table[0, 2] = -3
    with pytest.raises(ValueError, match="negative shape"):
        bad.run(0, 1)


def test_a_fused_run_imports_no_numba() -> None:
    """Start-up: a network made only of fusable ops never loads numba (about half a
    second per process) when the C extension runs its programs."""
    code = (
        "import sys\n"
        "from spikestream.build import build\n"
        "from spikestream.sim import Simulator\n"
        "from spikestream.spec import load_network\n"
        f"sim = Simulator(build(load_network({str(SEED)!r})))\n"
        "sim.run(100)\n"
        "assert sim.runner == 'c', sim.runner\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_a_block_run_beyond_its_blocks_is_refused() -> None:
    """The program was checked for blocks of its rows once, at build time; a call asking
    for more ticks is refused before it reaches the C side."""
    sim = Simulator(build(load_network(SEED)))
    segment = sim._ops[0]
    assert isinstance(segment, _Segment)
    dest = np.zeros((5, *sim.probe("u").shape), sim.probe("u").dtype)
    block = segment.compile(records=[(sim.probe("u"), dest)])
    assert block.rows == 5
    block.run(0, 5)
    with pytest.raises(SimulationError, match="ticks up to 6; the fed and recorded blocks hold 5"):
        block.run(0, 6)


def test_argument_errors_say_what_was_wrong_and_pass_other_exceptions_on() -> None:
    ext = native.extension()
    assert ext is not None
    with pytest.raises(
        ValueError,
        match=r"frames: expected an int in \[-2\*\*63, 2\*\*63\); got 18446744073709551616",
    ):
        ext.stream_count(0, 2**64)
    with pytest.raises(ValueError, match="deadline: expected a float64; got an int beyond"):
        ext.sleep_until(10**400, 0.0)

    class Failing:
        def __index__(self) -> int:
            raise MemoryError("from __index__")

    with pytest.raises(MemoryError, match="from __index__"):  # not reworded as a TypeError
        ext.ring_done(Failing(), 0)
    # A null loop address is refused, not read (it was, by these two).
    with pytest.raises(ValueError, match="ring_take: a malformed loop array"):
        ext.ring_take(0)
    with pytest.raises(ValueError, match="ring_done: a malformed loop array"):
        ext.ring_done(0, 0)
