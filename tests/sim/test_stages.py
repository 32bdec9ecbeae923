"""The cut of a tick's program into two stages (spikestream.sim.stages).

The two stages' results against one stage's, bit for bit, are in
tests/runtime/test_tick_runs.py (they need the live loop that runs them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.build import build
from spikestream.sim import Simulator, opcodes
from spikestream.sim.program import _Segment
from spikestream.sim.stages import MIN_SHARE, TwoStages, plan
from spikestream.spec import load_network, parse_network

ROOT = Path(__file__).parents[2]


def chain(pops: int, n: int = 50, weights_dtype: str | None = None) -> dict[str, Any]:
    """A decoded chain: p0 -> p1 -> ... (each fed by its predecessor in the same tick)."""
    return {
        "network": {"name": "chain", "seed": 3, "dtype": "float32", "weights_dtype": weights_dtype},
        "populations": {f"p{i}": {"n": n, "dim": 2} for i in range(pops)},
        "inputs": {"u": {"dim": 2, "target": "p0", "default": [0.3, -0.2]}},
        "connections": [
            {"pre": f"p{i}", "post": f"p{i + 1}", "function": "x", "synapse": 0.005}
            for i in range(pops - 1)
        ],
        "probes": {
            "out": {"target": f"p{pops - 1}", "kind": "decoded", "synapse": 0.01},
            "spikes": {"target": f"p{pops - 1}", "kind": "spikes"},
        },
    }


def _compiled(sim: Simulator):  # type: ignore[no-untyped-def]
    op = sim._ops[0]
    assert isinstance(op, _Segment)
    return op._tick


def _access(row: np.ndarray, table: np.ndarray) -> tuple[set[int], set[int]]:
    """Addresses a row reads and writes, spike counts as ('count', slot)."""
    code = opcodes.PLAIN_OP.get(int(row[0]), int(row[0]))
    reads: set[Any] = {int(table[row[c], opcodes.ADDRESS]) for c in opcodes.READS[code]}
    writes: set[Any] = {int(table[row[c], opcodes.ADDRESS]) for c in opcodes.WRITES[code]}
    if code in opcodes.COUNT_READ:
        reads.add(("count", int(row[opcodes.COUNT_READ[code]])))
    if code in opcodes.COUNT_WRITE:
        writes.add(("count", int(row[opcodes.COUNT_WRITE[code]])))
    return reads, writes


def test_every_operand_is_read_or_written() -> None:
    """The split's access sets cover every slot column of every op, so no array an op
    touches escapes the rules."""
    for code, columns in opcodes.SLOT_COLUMNS.items():
        assert set(opcodes.READS[code]) | set(opcodes.WRITES[code]) == set(columns), code
    assert set(opcodes.COUNT_WRITE) == {opcodes.OP_LIF}


@pytest.mark.parametrize("weights", [None, "float16"])
def test_a_chain_is_cut_evenly_and_the_second_stage_reads_only_latches_of_the_first(
    weights: str | None,
) -> None:
    sim = Simulator(build(parse_network(chain(8, weights_dtype=weights))))
    stages = sim.two_stages([sim.inputs["u"]])
    assert isinstance(stages, TwoStages)
    compiled = _compiled(sim)
    assert stages.cut == len(stages.first)
    assert len(stages.first) + len(stages.second) == len(compiled.program)
    assert 0.4 <= stages.shares[0] <= 0.6
    assert sum(stages.shares) == pytest.approx(1.0)
    # The first stage is the program's head, unchanged; the second its tail with only
    # operand slots renamed (to latches, appended to the table).
    np.testing.assert_array_equal(stages.first, compiled.program[: stages.cut])
    tail = compiled.program[stages.cut :]
    np.testing.assert_array_equal(stages.second[:, 0], tail[:, 0])
    renamed = np.argwhere(stages.second != tail)
    assert len(renamed)
    for r, c in renamed:
        code = opcodes.PLAIN_OP.get(int(tail[r, 0]), int(tail[r, 0]))
        if c == opcodes.COUNT_READ.get(code):
            assert stages.second[r, c] >= len(compiled.counts)
        else:
            assert c in opcodes.READS[code]
            assert stages.second[r, c] >= len(compiled.table)
    table = stages.table
    np.testing.assert_array_equal(table[: len(compiled.table)], compiled.table)
    r1: set[Any] = set()
    w1: set[Any] = {int(sim.inputs["u"].ctypes.data)}
    r2: set[Any] = set()
    w2: set[Any] = set()
    for row in stages.first:
        reads, writes = _access(row, table)
        r1 |= reads
        w1 |= writes
    for row in stages.second:
        reads, writes = _access(row, table)
        r2 |= reads
        w2 |= writes
    # No array written by both; none the first reads after the second writes it; the
    # second reads nothing the first writes: it reads the latched copies instead.
    assert not w1 & w2
    assert not r1 & w2
    assert not w1 & r2
    # Each latch copies an array (or count) the first stage writes into one the second
    # reads, of the same size.
    counts = int(stages.counts.ctypes.data)
    for source, dest, nbytes in stages.latches.tolist():
        if nbytes == 8 and counts <= source < counts + stages.counts.nbytes:
            assert ("count", (source - counts) // 8) in w1
            assert ("count", (dest - counts) // 8) in r2
        else:
            assert source in w1
            assert dest in r2
            row = int(np.nonzero(table[:, opcodes.ADDRESS] == dest)[0][0])
            assert row >= len(compiled.table)


def test_the_arrays_the_second_stage_writes_are_the_ones_its_thread_copies() -> None:
    sim = Simulator(build(parse_network(chain(6))))
    stages = sim.two_stages([sim.inputs["u"]])
    assert stages is not None
    last = sim.probe("spikes")  # the last population's: in the second stage
    assert stages.writes_second(int(last.ctypes.data), last.nbytes)
    inputs = sim.inputs["u"]  # written by the mailboxes, before the first stage
    assert not stages.writes_second(int(inputs.ctypes.data), inputs.nbytes)
    # Bytes running past the end of an array are not inside it.
    assert not stages.writes_second(int(last.ctypes.data), last.nbytes + 1)


def test_an_input_the_second_stage_reads_is_latched_not_read_live() -> None:
    """The mailboxes write an input before each tick's first stage, while the helper may
    still be running the previous tick's second stage: an input the second stage reads
    (here ``w``, encoded into the chain's last population) must reach it through a latch,
    or that stage would read the next tick's value half-written."""
    doc = chain(8)
    doc["inputs"]["w"] = {"dim": 2, "target": "p7", "default": [0.1, 0.4]}
    sim = Simulator(build(parse_network(doc)))
    w = sim.inputs["w"]
    stages = sim.two_stages([sim.inputs["u"], w])
    assert isinstance(stages, TwoStages)
    table = stages.table
    live = int(w.ctypes.data)
    reads_first: set[Any] = set()
    for row in stages.first:
        reads_first |= _access(row, table)[0]
    assert live not in reads_first  # p7 and its encoding are in the second stage
    reads_second: set[Any] = set()
    for row in stages.second:
        reads_second |= _access(row, table)[0]
    assert live not in reads_second
    (latch,) = [t for t in stages.latches.tolist() if t[0] == live]
    assert latch[1] in reads_second
    assert latch[2] == w.nbytes


def test_a_spike_count_the_cut_separates_from_its_reader_is_latched() -> None:
    """Here the even cut falls between p0's step (which writes its spike count) and p0's
    decoded connection (which reads it): the second stage must read a latched copy of
    the count, copied from p0's slot, or the next tick's first stage would overwrite the
    count it is reading."""
    doc: dict[str, Any] = {
        "network": {"seed": 3, "dtype": "float32"},
        "populations": {
            "p0": {"n": 400, "dim": 2},
            "p1": {"n": 200, "dim": 2},
            "p2": {"n": 50, "dim": 2},
        },
        "inputs": {"u": {"dim": 2, "target": "p0"}},
        "connections": [
            {"pre": "p0", "post": "p1", "function": "x", "synapse": 0.005},
            {"pre": "p1", "post": "p2", "function": "x", "synapse": 0.005},
        ],
    }
    sim = Simulator(build(parse_network(doc)))
    stages = sim.two_stages([sim.inputs["u"]])
    assert isinstance(stages, TwoStages)
    compiled = _compiled(sim)
    table = stages.table
    written_first: set[Any] = set()
    for row in stages.first:
        written_first |= _access(row, table)[1]
    crossing = []
    tail = compiled.program[stages.cut :]
    for original, renamed in zip(tail, stages.second, strict=True):
        code = opcodes.PLAIN_OP.get(int(original[0]), int(original[0]))
        if code in opcodes.COUNT_READ:
            col = opcodes.COUNT_READ[code]
            if ("count", int(original[col])) in written_first:
                crossing.append((int(original[col]), int(renamed[col])))
    assert crossing  # the cut does separate a count from its reader
    base = int(stages.counts.ctypes.data)
    latched = {
        ((source - base) // 8, (dest - base) // 8)
        for source, dest, nbytes in stages.latches.tolist()
        if nbytes == 8 and base <= source < base + stages.counts.nbytes
    }
    for slot, read in crossing:
        assert read >= len(compiled.counts)  # a latch's slot, not the live count
        assert (slot, read) in latched


def test_a_cut_inside_a_cycle_is_refused() -> None:
    """The integrator: b's recurrent connection is read by b's input sum (row 6) and
    written by its decoded op (row 8), after b's step (row 7), the heaviest op. The even
    cuts, at rows 7 and 8, would make the next tick's first stage read what this tick's
    second is writing; the one safe cut left, before b (row 4), gives the first stage
    less than MIN_SHARE: no two stages."""
    sim = Simulator(build(load_network(ROOT / "examples" / "integrator.toml")))
    compiled = _compiled(sim)
    codes = [int(r[0]) for r in compiled.program]
    assert codes[6:9] == [opcodes.OP_ADD, opcodes.OP_LIF, opcodes.OP_DECODED]
    assert compiled.program[6, 2] == compiled.program[8, 6]  # the recurrent value
    assert sim.two_stages([sim.inputs["u"]]) is None
    loose = plan(compiled, [sim.inputs["u"]], min_share=0.0)
    assert loose is not None
    assert loose.cut == 4
    assert loose.shares[0] < MIN_SHARE


def test_no_cut_is_made_below_the_minimum_share() -> None:
    compiled = _compiled(Simulator(build(parse_network(chain(6)))))
    best = plan(compiled)
    assert best is not None
    assert min(best.shares) >= MIN_SHARE
    # No cut can leave the smaller stage more than half.
    assert plan(compiled, min_share=0.51) is None
