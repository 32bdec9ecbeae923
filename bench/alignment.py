"""Cache-line-aligned arrays against numpy's own placement, side by side in one process.

The simulator allocates every matrix and per-neuron array a tick reads on a 64-byte
cache line (``spikestream.sim.arrays.aligned``). numpy's allocator only promises 16
bytes: most of a 150k chain's matrices started 16, 32 or 48 bytes past a line, and then
every 64-byte decoder row an event-driven kernel adds for a spiker (about 84 spikers per
1000-neuron population per tick) spans two lines, two misses instead of one.

This builds the capacity benchmark's decoded chain (1000-neuron, d = 16 populations,
``bench/capacity.py``) twice from the same network file: once as the simulator
allocates it, and once with the arrays placed as numpy places them (``np.zeros`` and
``np.ascontiguousarray``, as the builder did before). Both are stepped by the C
extension (the bench stops if the simulator chose another runner) on this thread,
alternately in blocks of ``--block`` ticks, so the host's drift (this VM's shared L3 and
memory system change speed from minute to minute) falls on both alike. Each block
starts with the other chain's arrays in the caches. Reported: each layout's median
ticks per second, the median of the per-round ratios (and their range), and whether
both chains ended in the same state, bit for bit (``Simulator.state``).

A 150k float32 chain reads about 25 MB per tick, more than this VM keeps of the host's
shared 32 MiB L3; a 60k chain (``--pops 60``, about 10 MB) is the contrast.

Usage: ``python bench/alignment.py [--pops 150] [--rounds 30] [--block 200] [--weights float16]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spikestream.sim.ops as ops
from capacity import N, chain_dict
from spikestream.build import build
from spikestream.sim import Simulator
from spikestream.sim.arrays import CACHE_LINE
from spikestream.spec import parse_network


def numpy_placed(values: npt.ArrayLike, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A C-contiguous copy where numpy's allocator puts it (16-byte aligned)."""
    return np.ascontiguousarray(values, dtype)


def build_chain(net: Any, placed_by_numpy: bool) -> Simulator:
    """The chain built with the simulator's placement, or with numpy's."""
    if not placed_by_numpy:
        return Simulator(build(net))
    saved = ops.aligned, ops.aligned_zeros
    ops.aligned, ops.aligned_zeros = numpy_placed, np.zeros  # type: ignore[assignment]
    try:
        return Simulator(build(net))
    finally:
        ops.aligned, ops.aligned_zeros = saved


def off_line(sim: Simulator) -> str:
    """How many of the chain's 2-D arrays start off a cache line, of how many."""
    from spikestream.sim.program import _Segment

    mats = [a for op in sim._ops if isinstance(op, _Segment) for a in op.arrays if a.ndim == 2]
    return f"{sum(a.ctypes.data % CACHE_LINE != 0 for a in mats)} of {len(mats)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pops", type=int, default=150, help="populations in the chain")
    parser.add_argument("--rounds", type=int, default=30, help="alternations")
    parser.add_argument("--block", type=int, default=200, help="ticks per chain per round")
    parser.add_argument("--weights", default=None, help="weights_dtype (e.g. float16)")
    args = parser.parse_args()
    net = parse_network(chain_dict(args.pops, "float32", args.weights))
    layouts = {
        "numpy": build_chain(net, placed_by_numpy=True),
        "aligned": build_chain(net, placed_by_numpy=False),
    }
    for sim in layouts.values():
        if sim.native_program() is None:
            sys.exit("the C extension does not run this chain's tick: nothing to compare")
    rates: dict[str, list[float]] = {k: [] for k in layouts}
    with threadpool_limits(1):
        for sim in layouts.values():
            sim.run(args.block)
        for r in range(args.rounds):
            for name in ("aligned", "numpy") if r % 2 else ("numpy", "aligned"):
                t0 = time.perf_counter()
                layouts[name].run(args.block)
                rates[name].append(args.block / (time.perf_counter() - t0))
    a, b = np.array(rates["aligned"]), np.array(rates["numpy"])
    ratio = a / b
    mine, theirs = layouts["aligned"].state(), layouts["numpy"].state()
    same = mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    print(
        f"{args.pops * N:,} neurons ({args.weights or 'float32'} weights), {args.rounds} "
        f"rounds of {args.block} ticks: matrices off a line: aligned "
        f"{off_line(layouts['aligned'])}, numpy {off_line(layouts['numpy'])}"
    )
    print(
        f"  aligned {np.median(a):,.0f} ticks/s, numpy-placed {np.median(b):,.0f}; "
        f"aligned / numpy per round: median {np.median(ratio):.3f} "
        f"(range {ratio.min():.3f}-{ratio.max():.3f}); same state, bit for bit: {same}"
    )


if __name__ == "__main__":
    main()
