"""A live tick's program split in two stages, for two threads (``serve --tick-threads 2``).

A decoded chain's populations depend on each other within a tick (each steps on the
current its predecessor decoded in the same tick), so a tick cannot be shared between two
cores op by op without a barrier per op. It can be pipelined: the tick thread runs the
first stage of tick k (the ops before a cut), hands the tick over, and a helper thread runs
the second stage while the tick thread waits for tick k+1 and starts its first stage
(``_native_stages.h``). Each core then streams half the weights, from a cache of its
own where the machine has one per core.

:func:`plan` chooses the cut and rewrites the second stage so it can run beside the first
stage of the next tick:

- no array (or spike count) may be written by both stages, and the first stage may not read
  what the second writes (a cycle across the cut): the first stage of tick k+1 would race
  the second of tick k. Cuts that break either rule are skipped;
- what the second stage reads of the first's writes (the input current at the cut, a spike
  count, an input's value) is **latched**: copied, at the start of the second stage, into
  arrays of its own that its ops read instead. Then the first stage of the next tick may
  overwrite the originals as soon as the latch is done.

Every op computes what it computes in one stage, on the same values, so the ticks are the
same bits (``tests/runtime/test_tick_runs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spikestream.sim.arrays import aligned_zeros
from spikestream.sim.opcodes import (
    COUNT_READ,
    COUNT_WRITE,
    EVENT_WEIGHTS,
    PLAIN_OP,
    READS,
    SLOT_COLUMNS,
    WRITES,
)
from spikestream.sim.program import _Compiled, address_table

#: The smaller stage must hold at least this share of the tick's estimated cost; below it,
#: a second thread would hand over more than it takes off the tick thread.
MIN_SHARE = 0.25
#: An event-driven weight matrix counts as this fraction of its bytes (only the rows of
#: the neurons that spiked are read: a few percent of them per tick).
EVENT_FRACTION = 0.05

# Keys of the access sets: table slots as themselves, spike-count slots as ~slot (< 0).


def _count_key(slot: int) -> int:
    return ~slot


@dataclass
class TwoStages:
    """A program cut in two, ready for ``run_ticks``' two-stage loop.

    Attributes:
        first: int64 ``(ops, 10)``: the rows before the cut, unchanged.
        second: int64 ``(ops, 10)``: the rows after it, latched slots renamed.
        table: int64 ``(arrays, 3)``: the program's address table, then the latches'.
        counts: int64 ``(slots,)``: spike counts, then the latched counts.
        scalars: the program's constants (as the whole program's).
        latches: int64 ``(n, 3)``: source address, destination address, bytes.
        written_second: the arrays the second stage writes (what it copies into ring rows).
        cut: the index of the first row of the second stage in the whole program.
        shares: each stage's share of the estimated cost.
    """

    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    table: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    scalars: npt.NDArray[np.floating]
    latches: npt.NDArray[np.int64]
    written_second: list[npt.NDArray[np.generic]]
    cut: int
    shares: tuple[float, float]
    _keep: list[npt.NDArray[np.generic]] = field(default_factory=list, repr=False)

    def writes_second(self, address: int, nbytes: int) -> bool:
        """Whether the bytes at ``address`` (``nbytes`` long) lie in an array the second
        stage writes: a ring copy of them is the helper's to make."""
        for arr in self.written_second:
            start = int(arr.ctypes.data)
            if start <= address and address + nbytes <= start + arr.nbytes:
                return True
        return False


def _accesses(row: npt.NDArray[np.int64]) -> tuple[set[int], set[int]]:
    """The keys one program row reads and writes."""
    code = PLAIN_OP.get(int(row[0]), int(row[0]))
    reads = {int(row[c]) for c in READS[code]}
    writes = {int(row[c]) for c in WRITES[code]}
    if code in COUNT_READ:
        reads.add(_count_key(int(row[COUNT_READ[code]])))
    if code in COUNT_WRITE:
        writes.add(_count_key(int(row[COUNT_WRITE[code]])))
    return reads, writes


def _cost(row: npt.NDArray[np.int64], arrays: Sequence[npt.NDArray[np.generic]]) -> float:
    """An estimate of one row's time: the bytes of the arrays it touches, event-driven
    weights at EVENT_FRACTION of theirs."""
    code = PLAIN_OP.get(int(row[0]), int(row[0]))
    events = EVENT_WEIGHTS.get(code, ())
    return float(
        sum(
            arrays[int(row[c])].nbytes * (EVENT_FRACTION if c in events else 1.0)
            for c in SLOT_COLUMNS[code]
        )
    )


def plan(
    compiled: _Compiled,
    written_before: Sequence[npt.NDArray[np.generic]] = (),
    min_share: float = MIN_SHARE,
) -> TwoStages | None:
    """The most even cut of ``compiled``'s program into two stages, or None when no cut
    gives the smaller stage ``min_share`` of the cost or every cut breaks a rule above.

    ``written_before``: arrays written before the first stage on the tick thread (each
    input's array, written by the mailboxes), latched like the first stage's writes.
    """
    program = compiled.program
    arrays = compiled.arrays
    n = len(program)
    if n < 2:
        return None
    access = [_accesses(row) for row in program]
    # A spike count read before any op of the tick writes it would carry over from the
    # previous tick; the two stages keep separate copies of latched counts, so refuse.
    written: set[int] = set()
    for reads, writes in access:
        if any(k < 0 and k not in written for k in reads):
            return None
        written |= writes
    slot_of = {id(a): s for s, a in enumerate(arrays)}
    before = {slot_of[id(a)] for a in written_before if id(a) in slot_of}
    costs = np.array([_cost(row, arrays) for row in program])
    total = float(costs.sum())
    if total <= 0:
        return None
    prefix = np.cumsum(costs)
    # Cuts by evenness; the first that keeps the rules wins.
    for cut in sorted(range(1, n), key=lambda c: abs(2 * prefix[c - 1] - total)):
        share = float(prefix[cut - 1]) / total
        if min(share, 1 - share) < min_share:
            break
        r1: set[int] = set()
        w1: set[int] = set(before)
        r2: set[int] = set()
        w2: set[int] = set()
        for reads, writes in access[:cut]:
            r1 |= reads
            w1 |= writes
        for reads, writes in access[cut:]:
            r2 |= reads
            w2 |= writes
        if w1 & w2 or r1 & w2:
            continue
        return _build(compiled, cut, sorted(w1 & r2), w2, (share, 1 - share))
    return None


def _build(
    compiled: _Compiled,
    cut: int,
    forward: list[int],
    w2: set[int],
    shares: tuple[float, float],
) -> TwoStages:
    arrays = list(compiled.arrays)
    n_counts = len(compiled.counts)
    counts = np.zeros(n_counts + sum(1 for k in forward if k < 0), np.int64)
    keep: list[npt.NDArray[np.generic]] = []
    latches: list[tuple[int, int, int]] = []
    rename: dict[int, int] = {}  # slot -> latched slot
    rename_count: dict[int, int] = {}
    for key in forward:
        if key >= 0:
            source = arrays[key]
            copy = aligned_zeros(source.shape, source.dtype)  # on a line, as the source
            keep.append(copy)
            rename[key] = len(arrays)
            arrays.append(copy)
            latches.append((int(source.ctypes.data), int(copy.ctypes.data), source.nbytes))
        else:
            slot = ~key
            new = n_counts + len(rename_count)
            rename_count[slot] = new
            latches.append(
                (
                    int(counts.ctypes.data) + 8 * slot,
                    int(counts.ctypes.data) + 8 * new,
                    8,
                )
            )
    second = compiled.program[cut:].copy()
    for row in second:
        code = PLAIN_OP.get(int(row[0]), int(row[0]))
        for c in READS[code]:
            # A latched array is one the second stage only reads (it writes none of the
            # first's), so every column naming it is a read.
            row[c] = rename.get(int(row[c]), int(row[c]))
        if code in COUNT_READ:
            c = COUNT_READ[code]
            row[c] = rename_count.get(int(row[c]), int(row[c]))
    table = address_table(arrays)
    return TwoStages(
        first=compiled.program[:cut].copy(),
        second=second,
        table=table,
        counts=counts,
        scalars=compiled.scalars,
        latches=np.array(latches, np.int64).reshape(-1, 3),
        written_second=[compiled.arrays[k] for k in sorted(w2) if k >= 0],
        cut=cut,
        shares=shares,
        _keep=[*keep, *compiled.arrays],
    )
