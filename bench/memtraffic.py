"""Memory traffic per tick against this machine's memory bandwidth, measured in one run.

For decoded chains of 1000-neuron, 16-D populations (the capacity benchmark's network),
in float64 and float32, this reports:

- **bytes per tick**: every array the compiled tick references, read once
  (:meth:`Simulator.footprint`): folded encoders and decoders (2-D) and per-neuron state
  (1-D). Decoders are event-driven, read only in the rows of neurons that spiked, so this
  is an upper bound on what a tick reads;
- **ticks/s** of the simulator alone (``Simulator.run``, no recording), best of
  ``--repeats``;
- **achieved GB/s** = bytes per tick x ticks/s (an upper bound, as above);
- the machine's **read bandwidth** measured with numpy at the same working-set size (a
  network of 10 MB sits in the 32 MiB L3 here; 100 MB does not) and from DRAM (512 MiB),
  interleaved with the chains.

float32 storage halves the bytes; its fidelity against float64 is checked by the
offline tests (``tests/runtime/test_offline.py``) and ``tests/sim/test_jit.py``. The third
row of each chain is float32 with half-precision weights (``network.weights_dtype =
"float16"``), which halves the matrices again; its fidelity is checked by
``tests/sim/test_weights.py``, and its bits against the rounded matrices by
``tests/sim/test_native.py``.

Usage: ``python bench/memtraffic.py [--pops 10,50,100,150] [--ticks 2000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import N, chain_dict
from spikestream.build import build
from spikestream.sim import Simulator
from spikestream.spec import parse_network


def read_bandwidth(nbytes: int, seconds: float = 0.3) -> float:
    """Bytes/s numpy reads from a float64 array of ``nbytes`` summed over and over (the
    best pass of those that fit in ``seconds``)."""
    a = np.ones(max(1, nbytes // 8))
    a.sum()  # touch every page first
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or best == float("inf"):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def ticks_per_second(sim: Simulator, ticks: int, repeats: int) -> float:
    """Best of ``repeats`` runs of ``ticks`` ticks, after a warm-up."""
    sim.run(200)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sim.run(ticks)
        best = min(best, time.perf_counter() - t)
    return ticks / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pops", default="10,50,100,150", help="chain lengths (comma list)")
    parser.add_argument("--ticks", type=int, default=2000, help="ticks per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    args = parser.parse_args()
    dram = read_bandwidth(512 << 20, 1.0)
    print(f"DRAM read bandwidth (512 MiB, numpy sum): {dram / 1e9:.1f} GB/s")
    print(
        "pops  neurons  dtype    MB/tick  (2-D / 1-D)   ticks/s   GB/s achieved  "
        "read GB/s at that size  share"
    )
    with threadpool_limits(1):
        for pops in [int(p) for p in args.pops.split(",")]:
            rates = {}
            for dtype, weights in (("float64", None), ("float32", None), ("float32", "float16")):
                label = dtype if weights is None else "f32+f16w"
                sim = Simulator(build(parse_network(chain_dict(pops, dtype, weights))))
                fp = sim.footprint()
                rate = ticks_per_second(sim, args.ticks, args.repeats)
                same_size = read_bandwidth(fp.total)
                achieved = fp.total * rate
                rates[label] = rate
                print(
                    f"{pops:4d} {pops * N:8,d}  {label:8s}{fp.total / 1e6:7.2f}  "
                    f"({fp.matrix_bytes / 1e6:.2f} / {fp.vector_bytes / 1e6:.2f})  "
                    f"{rate:9,.0f}   {achieved / 1e9:8.2f}        {same_size / 1e9:8.1f}"
                    f"         {achieved / same_size:5.0%}"
                )
            print(
                f"      float32 / float64 speed: {rates['float32'] / rates['float64']:.2f}x; "
                f"float16 weights / float32: {rates['f32+f16w'] / rates['float32']:.2f}x"
            )
    print(f"DRAM read bandwidth again: {read_bandwidth(512 << 20, 1.0) / 1e9:.1f} GB/s")


if __name__ == "__main__":
    main()
