"""Where a spikestream tick spends its time: wall time per compiled op of the Simulator.

Run from the repository root::

    python bench/profile_ops.py                       # every bench network, float64
    python bench/profile_ops.py --networks seed --dtype float32 --ticks 20000

``Simulator`` compiles a tick into a list of closures (``Simulator._ops``: one per population
step, one per connection, one per probe op). This script runs the same windows as
``bench/offline.py`` (same networks, inputs and BLAS limit) but times each op separately with
``time.perf_counter`` (about 0.1 µs of overhead per op and tick, included in the numbers),
and names it by population or connection.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from networks import NETWORKS, input_values
from spikestream.build import Model, build
from spikestream.sim import Simulator


def op_labels(model: Model) -> list[str]:
    """Labels of ``Simulator._ops`` in the order ``spikestream.sim.ops`` compiles them
    (a population, then its outgoing connections). Bench networks have no probes."""
    labels: list[str] = []
    for name in model.order:
        labels.append(f"pop {name}")
        labels += [f"conn {c.name}" for c in model.connections if c.pre == name]
    return labels


def make_simulator(model: Model, backend: str | None, *, fuse: bool = True) -> Simulator:
    """``Simulator(model)``, with ``backend=`` when one is named. ``fuse=False`` keeps one
    op per population and connection (a fused segment would be timed as one op)."""
    options: dict[str, Any] = {"fuse": fuse}
    if backend is not None:
        options["backend"] = backend
    return Simulator(model, **options)


def profile(model: Model, ticks: int, backend: str | None = None) -> tuple[dict[str, float], float]:
    """Mean µs per tick of each op and the mean µs per tick of ``Simulator.run`` without
    instrumentation."""
    sim = make_simulator(model, backend, fuse=False)
    ops: list[Callable[[], None]] = list(sim._ops)
    labels = op_labels(model)
    if len(labels) != len(ops):
        raise RuntimeError(f"expected {len(labels)} ops, found {len(ops)}")
    feeds = input_values(model, ticks)
    ((name, values),) = feeds.items()
    x = sim.inputs[name]
    totals = np.zeros(len(ops))
    clock = time.perf_counter
    for k in range(ticks):
        np.copyto(x, values[k])
        for i, op in enumerate(ops):
            t0 = clock()
            op()
            totals[i] += clock() - t0
    sim = make_simulator(model, backend)  # as the service runs it: fused where possible
    t0 = clock()
    sim.run(ticks, inputs=feeds)
    plain = (clock() - t0) / ticks * 1e6
    per_op = {label: float(1e6 * t / ticks) for label, t in zip(labels, totals, strict=True)}
    return per_op, plain


def main(argv: Sequence[str] | None = None) -> int:
    """Print a per-op breakdown for each selected network."""
    p = argparse.ArgumentParser(description="Per-op time of a spikestream tick.")
    p.add_argument("--networks", default=",".join(NETWORKS))
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--ticks", type=int, default=None, help="default: the bench's window")
    p.add_argument("--backend", default=None, help="Simulator backend (default: its default)")
    args = p.parse_args(argv)
    with threadpool_limits(limits=1, user_api="blas"):
        for key in args.networks.split(","):
            bn = NETWORKS[key]
            model = build(bn.make_spec(), dtype=args.dtype)
            ticks = args.ticks or bn.ticks
            profile(model, min(ticks, 50), args.backend)  # warm-up (and JIT compilation)
            per_op, plain = profile(model, ticks, args.backend)
            total = sum(per_op.values())
            head = f"{bn.title}, {args.dtype}, backend {args.backend or 'default'}, {ticks} ticks"
            print(f"\n## {head}: {plain:.1f} µs/tick uninstrumented")
            rows = sorted(per_op.items(), key=lambda kv: -kv[1])
            for label, us in rows[:8]:
                print(f"  {label:<16} {us:9.1f} µs  {us / total:6.1%}")
            if len(rows) > 8:
                rest = sum(us for _, us in rows[8:])
                print(f"  {len(rows) - 8} more ops    {rest:9.1f} µs  {rest / total:6.1%}")
            pops = sum(us for label, us in per_op.items() if label.startswith("pop"))
            print(f"  all populations {pops:9.1f} µs, all connections {total - pops:9.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
