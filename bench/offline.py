"""spikestream vs the Nengo reference simulator, offline, side by side in one process.

Run from the repository root::

    python bench/offline.py                 # full run (~1 minute on a quiet machine)
    python bench/offline.py --quick         # smoke check (~15 s)
    python bench/offline.py --networks seed,dense4096 --repeats 7
    python bench/offline.py --backends numba,numpy   # a column pair per Simulator backend

What is measured (see bench/README.md):

* The networks of :mod:`networks` are built once by spikestream; Nengo gets the *same*
  gains, biases, encoders and weights, so both do the same work on the same numbers.
* Timed: the pure simulation loop, no probes on either side. Nengo:
  ``sim.run_steps(ticks)``; spikestream: ``Simulator.run(ticks, inputs=...)`` (the offline
  path, one ``copyto`` of the input per tick; Nengo calls ``np.sin`` in its input node), with
  the Simulator's default backend unless ``--backends`` names others.
* Every repeat resets both simulators and runs the same window of simulated time, so the
  sides do identical work and the event-driven cost of spikestream is the same each repeat.
  The simulators run interleaved (nengo, spikestream float64, spikestream float32 for each
  backend, rotating the order each repeat) so the ratios are taken side by side on this
  noisy 2-core machine.
* BLAS is held to one thread on both sides (``threadpool_limits(1, "blas")``), and the
  garbage collector is paused during each timed run (on both sides).
* Reported ticks/s is the best of the repeats; the ratio is that of the bests. The JSON also
  has every repeat, the medians and the median of the per-repeat (paired) ratios.

Before timing, an equivalence check runs the seed network in both simulators for 1 s with the
same parameters: population ``a`` (fed directly by the input) must match spike for spike;
``b`` is compared by rates only, because Nengo delays every filtered connection by one tick
and spikestream does not (DESIGN.md §2).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import inspect
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from networks import (
    NETWORKS,
    BenchNetwork,
    import_nengo,
    input_values,
    nengo_network,
    nengo_simulator,
    seed_spec,
)
from spikestream.build import Model, build
from spikestream.sim import Simulator, decay
from spikestream.sim.kernels import LIFParams, lif_step

RESULTS = Path(__file__).resolve().parent / "results" / "offline.json"
DTYPES = ("float64", "float32")
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------- helpers


def as_float32(model: Model) -> Model:
    """The same built network (shared parameter arrays) simulated in float32."""
    return dataclasses.replace(model, dtype=np.dtype("float32"))


def default_backend() -> str | None:
    """The ``backend`` argument ``Simulator`` defaults to, or None if it has none."""
    param = inspect.signature(Simulator).parameters.get("backend")
    return None if param is None else str(param.default)


def make_simulator(model: Model, backend: str | None) -> Simulator:
    """``Simulator(model)``, with ``backend=`` when one is named."""
    options: dict[str, Any] = {} if backend is None else {"backend": backend}
    return Simulator(model, **options)


def variant_key(backend: str | None, dtype: str) -> str:
    """Result key of a spikestream variant: ``"float64"`` or ``"float64 numba"``."""
    return dtype if backend is None else f"{dtype} {backend}"


def spikestream_spikes(
    model: Model, ticks: int, backend: str | None = None
) -> dict[str, BoolArray]:
    """Run ``model`` for ``ticks`` ticks from rest; per population, spikes ``(ticks, n)``."""
    sim = make_simulator(model, backend)
    rec = {name: np.zeros((ticks, p.n), np.bool_) for name, p in model.populations.items()}
    sim.run(ticks, inputs=input_values(model, ticks), record_spikes=rec)
    return rec


def population_stats(spikes: BoolArray, dt: float) -> dict[str, float]:
    """Firing fraction per tick, mean rate (Hz) and the fractions of silent neurons and of
    neurons above 400 Hz (the top of the max-rate range) in a ``(ticks, n)`` spike array."""
    rates = spikes.mean(axis=0) / dt
    return {
        "firing_fraction": float(spikes.mean()),
        "mean_rate_hz": float(rates.mean()),
        "silent_fraction": float(np.mean(rates == 0)),
        "above_400hz_fraction": float(np.mean(rates > 400.0)),
    }


# --------------------------------------------------------------------------- equivalence


def delayed_post_spikes(model: Model, pre_spikes: BoolArray) -> BoolArray:
    """The post population of the model's single dense connection, recomputed from the
    given pre spikes with Nengo's one-tick delay on the filtered current.

    Uses spikestream's own ``lif_step`` kernel and lowpass: the post population at tick ``k``
    sees ``J = bias + y[k - 1]`` with ``y[k] = a y[k - 1] + (1 - a) W.T s[k] / dt``. If Nengo
    matches this, the delay is the only difference between the two simulators on ``b``.
    """
    (c,) = model.connections
    assert c.weights is not None
    post, dt = model.populations[c.post], model.dt
    n = post.n
    params = LIFParams.make(dt, post.tau_rc, post.tau_ref, post.min_voltage, np.float64)
    v, ref, J, s01, tmp, tmp2 = (np.zeros(n) for _ in range(6))
    spiked = np.zeros(n, np.bool_)
    a = decay(c.synapse, dt)
    w = c.weights * ((1.0 - a) / dt)
    y = np.zeros(n)
    out = np.zeros((pre_spikes.shape[0], n), np.bool_)
    for k, s in enumerate(pre_spikes):
        np.add(post.bias, y, out=J)
        lif_step(J, v, ref, spiked, s01, tmp, tmp2, params)
        out[k] = spiked
        y = a * y + s.astype(np.float64) @ w
    return out


def equivalence_check(backends: Sequence[str | None], ticks: int = 1000) -> dict[str, Any]:
    """Run the seed network for ``ticks`` ticks in Nengo and in spikestream (each backend,
    float64 and float32) with identical parameters and compare the spikes.

    Returns:
        For ``a``: the fraction of identical (tick, neuron) entries and the spike counts.
        For ``b``: spike counts, mean absolute per-neuron rate difference (Hz) and the
        correlation of per-neuron rates; Nengo's extra one-tick delay on the filtered
        connection rules out a spike-for-spike comparison.
    """
    model = build(seed_spec())
    net, probes = nengo_network(model, probe_spikes=True)
    with nengo_simulator(net) as sim:
        sim.run_steps(ticks)
        ng = {name: sim.data[p] > 0 for name, p in probes.items()}
    out: dict[str, Any] = {"ticks": ticks, "dt": model.dt, "variants": {}}
    variants = [
        (variant_key(b, d), b, model if d == "float64" else as_float32(model))
        for b in backends
        for d in DTYPES
    ]
    for label, backend, m in variants:
        ss = spikestream_spikes(m, ticks, backend)
        a_ss, a_ng, b_ss, b_ng = ss["a"], ng["a"], ss["b"], ng["b"]
        mismatch = np.flatnonzero(np.any(a_ss != a_ng, axis=1))
        rb_ss, rb_ng = b_ss.mean(0) / model.dt, b_ng.mean(0) / model.dt
        b_delayed = delayed_post_spikes(model, a_ss)
        out["variants"][label] = {
            "a_identical_fraction": float(np.mean(a_ss == a_ng)),
            "a_spikes_identical_fraction": float(np.sum(a_ss & a_ng) / max(1, np.sum(a_ss | a_ng))),
            "a_first_mismatch_tick": int(mismatch[0]) if mismatch.size else None,
            "a_spikes": [int(a_ss.sum()), int(a_ng.sum())],
            "b_spikes": [int(b_ss.sum()), int(b_ng.sum())],
            "b_rate_mean_abs_diff_hz": float(np.mean(np.abs(rb_ss - rb_ng))),
            "b_rate_correlation": float(np.corrcoef(rb_ss, rb_ng)[0, 1]),
            "b_identical_fraction": float(np.mean(b_ss == b_ng)),
            "b_delayed_reference_identical_fraction": float(np.mean(b_delayed == b_ng)),
        }
    return out


def print_equivalence(eq: dict[str, Any]) -> None:
    """Print the equivalence check as a short report."""
    print(f"## Equivalence check: seed network, {eq['ticks']} ticks, same parameters\n")
    for label, r in eq["variants"].items():
        first = r["a_first_mismatch_tick"]
        print(
            f"- spikestream {label} vs nengo, population a (input-driven, exact): "
            f"{r['a_identical_fraction']:.4%} of (tick, neuron) entries identical, "
            f"{r['a_spikes_identical_fraction']:.4%} of spikes shared, spikes "
            f"{r['a_spikes'][0]} vs {r['a_spikes'][1]}, first differing tick: "
            f"{'none' if first is None else first}"
        )
        print(
            f"- spikestream {label} vs nengo, population b (statistical; Nengo adds a one-tick "
            f"delay on the filtered a→b connection): spikes {r['b_spikes'][0]} vs "
            f"{r['b_spikes'][1]}, per-neuron rate |Δ| mean {r['b_rate_mean_abs_diff_hz']:.2f} "
            f"Hz, rate correlation {r['b_rate_correlation']:.4f} "
            f"({r['b_identical_fraction']:.2%} of entries identical); spikestream's kernels "
            f"with the one-tick delay added reproduce Nengo's b on "
            f"{r['b_delayed_reference_identical_fraction']:.4%} of entries"
        )
    print()


# --------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Side:
    """One simulator under test: ``reset`` (untimed) and ``run`` (timed) for the window."""

    name: str
    reset: Callable[[], None]
    run: Callable[[], None]


def time_once(side: Side) -> float:
    """Reset, then time one run of the window with the garbage collector paused (seconds)."""
    side.reset()
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        side.run()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def bench_network(
    bn: BenchNetwork, ticks: int, repeats: int, backends: Sequence[str | None]
) -> dict[str, Any]:
    """Time ``bn`` in Nengo and in spikestream (each backend, float64 and float32),
    interleaved.

    Returns:
        A JSON-ready record: ticks/s per side per repeat, best and median, the ratios, and
        the activity of every population over the timed window.
    """
    t_build = time.perf_counter()
    model = build(bn.make_spec())
    feeds = input_values(model, ticks)
    net, _ = nengo_network(model)
    ng = nengo_simulator(net)
    sides = [Side("nengo", ng.reset, lambda: ng.run_steps(ticks))]
    for backend in backends:
        for dtype in DTYPES:
            sim = make_simulator(model if dtype == "float64" else as_float32(model), backend)
            sides.append(
                Side(
                    variant_key(backend, dtype),
                    sim.reset,
                    functools.partial(sim.run, ticks, inputs=feeds),
                )
            )
    build_s = time.perf_counter() - t_build
    for side in sides:  # warm-up (and numba compilation): one untimed window each
        time_once(side)
    rates: dict[str, list[float]] = {s.name: [] for s in sides}
    for i in range(repeats):
        shift = i % len(sides)
        for side in sides[shift:] + sides[:shift]:
            rates[side.name].append(ticks / time_once(side))
    ng.close()

    spikes = spikestream_spikes(model, ticks, backends[0])
    pops = {name: population_stats(s, model.dt) for name, s in spikes.items()}
    pre = sorted({c.pre for c in model.connections}, key=list(model.populations).index)
    best = {k: max(v) for k, v in rates.items()}
    median = {k: statistics.median(v) for k, v in rates.items()}
    ours = [s.name for s in sides[1:]]
    paired = {
        k: statistics.median(r / n for r, n in zip(rates[k], rates["nengo"], strict=True))
        for k in ours
    }
    return {
        "network": bn.key,
        "title": bn.title,
        "neurons": sum(p.n for p in model.populations.values()),
        "synapses": sum(c.weights.size for c in model.connections if c.weights is not None),
        "ticks_per_repeat": ticks,
        "repeats": repeats,
        "build_seconds": build_s,
        "backends": list(backends),
        "ticks_per_s": rates,
        "best_ticks_per_s": best,
        "median_ticks_per_s": median,
        "ratio_best": {k: best[k] / best["nengo"] for k in ours},
        "ratio_paired_median": paired,
        "pre_firing_fraction": float(np.mean([pops[p]["firing_fraction"] for p in pre])),
        "populations": pops,
    }


# --------------------------------------------------------------------------- report


def markdown_table(results: Sequence[dict[str, Any]], backends: Sequence[str | None]) -> str:
    """The results as a Markdown table (best ticks/s, ratio of bests)."""
    head = ["Network", "Neurons", "Nengo ticks/s"]
    align = ["---", "---:", "---:"]
    for b in backends:
        tag = "" if b is None or len(backends) == 1 else f" ({b})"
        for short in ("f64", "f32"):
            head += [f"spikestream {short}{tag} ticks/s", f"{short}{tag} / Nengo"]
            align += ["---:", "---:"]
    head.append("Pre firing / tick")
    align.append("---:")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for r in results:
        best, ratio = r["best_ticks_per_s"], r["ratio_best"]
        cells = [r["title"], f"{r['neurons']:,}", f"{best['nengo']:,.0f}"]
        for b in backends:
            for d in DTYPES:
                k = variant_key(b, d)
                cells += [f"{best[k]:,.0f}", f"{ratio[k]:.2f}×"]
        cells.append(f"{r['pre_firing_fraction']:.1%}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Versions and BLAS setup, stored with the results."""
    nengo = import_nengo()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nengo": nengo.__version__,
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(
        description="spikestream vs Nengo, offline ticks/s on equivalent networks.",
    )
    p.add_argument("--quick", action="store_true", help="short runs: a smoke check")
    p.add_argument(
        "--networks",
        default=",".join(NETWORKS),
        help=f"comma-separated subset of: {', '.join(NETWORKS)} (default: all)",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per simulator (default 5; 2 quick)"
    )
    p.add_argument(
        "--ticks-scale",
        type=float,
        default=1.0,
        help="multiply every network's ticks per repeat by this factor",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    p.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    p.add_argument(
        "--backends",
        default=None,
        help="comma-separated Simulator backends to time, e.g. numba,numpy (default: the "
        "Simulator's default backend)",
    )
    args = p.parse_args(argv)
    default = default_backend()
    if args.backends is None:
        args.backend_list = [default]
    elif default is None:
        p.error("this Simulator has no backend argument; drop --backends")
    else:
        args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    keys = [k.strip() for k in args.networks.split(",") if k.strip()]
    unknown = [k for k in keys if k not in NETWORKS]
    if unknown or not keys:
        p.error(f"unknown network(s) {unknown}; expected some of: {', '.join(NETWORKS)}")
    args.keys = keys
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1; got {args.repeats}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the equivalence check and the benchmarks; print and save the results."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    results: list[dict[str, Any]] = []
    with threadpool_limits(limits=1, user_api="blas"):
        env = environment()
        print(
            f"# spikestream vs Nengo {env['nengo']} (numpy {env['numpy']}, "
            f"{env['cpus']} CPUs, BLAS threads: 1)\n"
        )
        backends: list[str | None] = args.backend_list
        print(f"spikestream backend(s): {', '.join(str(b) for b in backends)}\n")
        eq = None if args.no_check else equivalence_check(backends)
        if eq is not None:
            print_equivalence(eq)
        for key in args.keys:
            bn = NETWORKS[key]
            ticks = max(1, round((bn.quick_ticks if args.quick else bn.ticks) * args.ticks_scale))
            r = bench_network(bn, ticks, args.repeats, backends)
            results.append(r)
            b, q = r["best_ticks_per_s"], r["ratio_paired_median"]
            ours = ", ".join(f"{k} {b[k]:,.0f} ({q[k]:.2f}×)" for k in q)
            print(
                f"{bn.title}: {ticks} ticks × {args.repeats}: nengo {b['nengo']:,.0f}, {ours} "
                f"ticks/s (paired median ratios); pre firing "
                f"{r['pre_firing_fraction']:.1%}/tick; build {r['build_seconds']:.1f} s",
                flush=True,
            )
    table = markdown_table(results, backends)
    print(
        "\nBest of",
        args.repeats,
        "repeats, ticks/s (higher is better); ratio = spikestream /"
        " Nengo. Nengo has no float32 mode: both ratios are against Nengo float64.\n",
    )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "quick": args.quick,
        "backends": backends,
        "equivalence": eq,
        "results": results,
        "table": table,
        "seconds": time.perf_counter() - t_start,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} ({payload['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
