"""Whole processes, as a user times them: ``spikestream run`` against the same network as a
Nengo script, each started fresh, writing its results to disk.

Run from the repository root (nengo installed: ``pip install -e '.[bench]'``)::

    python bench/wholeprocess.py                       # seed, dense1000, chain10; 5 pairs
    python bench/wholeprocess.py --networks seed --pairs 9

Per network (``examples/<key>.toml``, run for the duration in :data:`NETWORKS`):

* **spikestream**: ``spikestream run NETWORK --duration S --out FILE --no-progress`` (the
  console script, default uncompressed ``.npz``), plus ``--profile`` and a debug log line
  that give the process's own split: start-up to the first tick, stepping with
  recording, input signals and writing.
* **Nengo**: ``bench/nengo_run.py`` (numpy and nengo only), building the same network from
  the built spikestream model's own gains, biases, encoders and weights (exported once to a
  parameters file), with the same probes: every population's spikes, each probe of the
  network file, the inputs and ``t``, saved with ``np.savez`` (uncompressed).
* **Floors**, for the start-up figures: ``python -c pass`` (the interpreter), and a
  script that imports numba and calls one cached ``njit`` function (what any numba
  program pays before its first compiled call).

The commands run interleaved, ``--pairs`` times, their order rotating each round, after
one untimed round (numba's cache and the page cache warm). Reported: medians of wall time
from ``Popen`` to exit, and the median of the per-round ratios Nengo / spikestream. The
first tick is measured from outside: the time the process logs after its first tick,
minus the time just before ``Popen``.

Then, in this process, the recording overhead: the seed network stepping 60 s of ticks
with its five probes and every population's spikes recorded (as ``run`` does), against the
same network without probes and recording nothing, interleaved, median of ``--pairs``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from networks import seed_spec  # noqa: E402
from spikestream.build import Model, build  # noqa: E402
from spikestream.runtime.offline import input_signals, ticks_for  # noqa: E402
from spikestream.sim import Simulator  # noqa: E402
from spikestream.spec import ConstantSignal, SinSignal, load_network  # noqa: E402

#: key -> (title, simulated seconds)
NETWORKS: dict[str, tuple[str, float]] = {
    "seed": ("seed (50 → 40), 5 probes", 60.0),
    "dense1000": ("1000 → 1000 dense, 3 probes", 10.0),
    "chain10": ("10 × 1000 decoded chain, d = 16, 3 probes", 5.0),
}
RESULTS = ROOT / "bench" / "results" / "wholeprocess.json"
FLOOR_SCRIPT = """import numba

@numba.njit(cache=True)
def f(x):
    return x + 1

f(1)
"""


def nengo_params(model: Model, ticks: int) -> dict[str, Any]:
    """The built network as plain arrays plus a JSON ``spec``, for ``nengo_run.py``."""
    arrays: dict[str, Any] = {}
    spec: dict[str, Any] = {"dt": model.dt, "ticks": ticks, "seed": model.seed}
    spec["populations"] = {}
    for name, p in model.populations.items():
        spec["populations"][name] = {
            "n": p.n,
            "dim": p.dim,
            "tau_rc": p.tau_rc,
            "tau_ref": p.tau_ref,
            "min_voltage": p.min_voltage,
        }
        arrays[f"{name}.gain"], arrays[f"{name}.bias"] = p.gain, p.bias
        arrays[f"{name}.encoders"] = p.encoders
    spec["inputs"] = {}
    for name, inp in model.inputs.items():
        sig = model.spec.inputs[name].signal
        if isinstance(sig, SinSignal) and (sig.amp, sig.angular, sig.phase, sig.offset) == (
            1.0,
            1.0,
            0.0,
            0.0,
        ):
            spec["inputs"][name] = {"kind": "sin", "target": inp.target, "dim": inp.dim}
        elif isinstance(sig, ConstantSignal):
            spec["inputs"][name] = {
                "kind": "constant",
                "target": inp.target,
                "dim": inp.dim,
                "value": sig.value,
            }
        else:
            raise ValueError(f"input {name!r}: only sin(t) and constants are mirrored")
    spec["connections"] = []
    for k, c in enumerate(model.connections):
        if c.decoded:
            if c.transform is None or not np.array_equal(c.transform, np.eye(c.transform.shape[0])):
                raise ValueError(f"connection {c.name!r}: only identity functions are mirrored")
            spec["connections"].append(
                {"kind": "decoded", "pre": c.pre, "post": c.post, "synapse": c.synapse}
            )
        else:
            arrays[f"conn{k}.weights"] = c.weights
            spec["connections"].append(
                {"kind": "weights", "pre": c.pre, "post": c.post, "synapse": c.synapse}
            )
    spec["probes"] = {
        name: {"kind": p.kind, "target": p.target, "synapse": p.synapse}
        for name, p in model.probes.items()
    }
    arrays["spec"] = np.array(json.dumps(spec))
    return arrays


def spikestream_command() -> list[str]:
    """The console script next to this interpreter (what a user types), else ``-m``."""
    script = Path(sys.executable).parent / "spikestream"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spikestream"]


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cpu: list[float] | None = None) -> tuple[float, float, str, str]:
    """Run ``cmd``; return (Unix time just before Popen, wall seconds, stdout, stderr).
    With ``cpu``, append the process's CPU seconds (less hurt than wall time when other
    work shares the cores)."""
    spawn = time.time()
    before = children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if cpu is not None:
        cpu.append(children_cpu() - before)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return spawn, wall, proc.stdout, proc.stderr


def spikestream_split(spawn: float, stderr: str) -> dict[str, float]:
    """The ``timings`` debug log line of ``run``, with the first tick measured from spawn."""
    for line in stderr.splitlines():
        if line.startswith("{") and '"timings"' in line:
            entry = json.loads(line)
            return {
                "first_tick": entry["first_tick_unix"] - spawn,
                "first_tick_in_process": entry["first_tick_since_start"],
                "first_tick_cpu": entry["first_tick_cpu"],
                "load_network": entry["load_network"],
                "simulator": entry["simulator"],
                "stepping": entry["stepping"],
                "signals": entry["signals"],
                "writing": entry["writing"],
            }
    raise RuntimeError(f"no timings line in spikestream's log:\n{stderr[-2000:]}")


def bench_network(key: str, pairs: int, tmp: Path) -> dict[str, Any]:
    """Interleaved whole-process runs of one network."""
    title, duration = NETWORKS[key]
    toml = ROOT / "examples" / f"{key}.toml"
    model = build(load_network(toml))
    ticks = ticks_for(duration, model.dt)
    params = tmp / f"{key}.params.npz"
    np.savez(params, **nengo_params(model, ticks))
    ours_out, nengo_out = tmp / f"{key}.spikestream.npz", tmp / f"{key}.nengo.npz"
    ours = [
        *spikestream_command(),
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "run",
        str(toml),
        "--duration",
        str(duration),
        "--out",
        str(ours_out),
        "--no-progress",
    ]
    nengo = [sys.executable, str(ROOT / "bench" / "nengo_run.py"), str(params), str(nengo_out)]
    rows: list[dict[str, Any]] = []
    for r in range(pairs + 1):  # round 0 is the untimed warm-up
        order = ["spikestream", "nengo"] if r % 2 else ["nengo", "spikestream"]
        row: dict[str, Any] = {}
        for side in order:
            cpu: list[float] = []
            spawn, wall, out, err = timed(ours if side == "spikestream" else nengo, cpu)
            row[side] = wall
            row[f"{side}_cpu"] = cpu[0]
            if side == "spikestream":
                row["split"] = spikestream_split(spawn, err)
            else:
                row["nengo_split"] = json.loads(out.strip().splitlines()[-1])
        if r > 0:
            rows.append(row)
            print(
                f"  {key} round {r}: spikestream {row['spikestream']:.2f} s, nengo "
                f"{row['nengo']:.2f} s, first tick {row['split']['first_tick']:.3f} s",
                flush=True,
            )
    size = {k: p.stat().st_size for k, p in (("spikestream", ours_out), ("nengo", nengo_out))}
    check = compare_outputs(ours_out, nengo_out, model)

    def med(f: Any) -> float:
        return float(statistics.median(f(row) for row in rows))

    return {
        "key": key,
        "title": title,
        "duration": duration,
        "ticks": ticks,
        "neurons": sum(p.n for p in model.populations.values()),
        "rounds": rows,
        "median_spikestream": med(lambda r: r["spikestream"]),
        "median_nengo": med(lambda r: r["nengo"]),
        "median_ratio": med(lambda r: r["nengo"] / r["spikestream"]),
        "median_cpu_spikestream": med(lambda r: r["spikestream_cpu"]),
        "median_cpu_nengo": med(lambda r: r["nengo_cpu"]),
        "median_cpu_ratio": med(lambda r: r["nengo_cpu"] / r["spikestream_cpu"]),
        "median_split": {k: med(lambda r, k=k: r["split"][k]) for k in rows[0]["split"]},
        "median_nengo_split": {
            k: med(lambda r, k=k: r["nengo_split"][k]) for k in rows[0]["nengo_split"]
        },
        "file_bytes": size,
        "check": check,
    }


def compare_outputs(ours: Path, theirs: Path, model: Model) -> dict[str, Any]:
    """Both files hold the same per-tick arrays; spike rates per population, side by side
    (Nengo delays filtered connections by a tick and solves its own decoders, so only the
    directly driven populations can match spike for spike)."""
    a, b = np.load(ours), np.load(theirs)
    missing = sorted(k for k in b.files if k not in a.files)
    rates = {
        name: (
            float(a[f"{name}.spikes"].mean() / model.dt),
            float(b[f"{name}.spikes"].mean() / model.dt),
        )
        for name in model.populations
    }
    return {"missing_in_spikestream": missing, "mean_rates_hz": rates}


def bench_floors(pairs: int, tmp: Path) -> dict[str, float]:
    """Median wall and CPU time of an empty interpreter and of the numba floor script."""
    script = tmp / "floor.py"
    script.write_text(FLOOR_SCRIPT)
    cmds = {"python": [sys.executable, "-c", "pass"], "numba": [sys.executable, str(script)]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    for r in range(pairs + 1):
        for k, cmd in cmds.items():
            cpu: list[float] = []
            wall = timed(cmd, cpu)[1]
            if r:
                times[k].append(wall)
                cpus[k].append(cpu[0])
    out = {k: float(statistics.median(v)) for k, v in times.items()}
    out.update({f"{k}_cpu": float(statistics.median(v)) for k, v in cpus.items()})
    return out


def recording_overhead(pairs: int) -> dict[str, float]:
    """Seed network, 60 s of ticks: stepping with its probes and spikes recorded, against
    stepping without probes and recording nothing (median ticks/s, and their ratio)."""
    full = build(load_network(ROOT / "examples" / "seed.toml"))
    bare = build(seed_spec())
    ticks = 60_000
    inputs = input_signals(full, ticks)
    sims = {"recorded": Simulator(full), "bare": Simulator(bare)}
    rec = {
        name: np.zeros(
            (ticks, *sims["recorded"].probe(name).shape), sims["recorded"].probe(name).dtype
        )
        for name in full.probes
    }
    spikes = {name: np.zeros((ticks, p.n), np.bool_) for name, p in full.populations.items()}
    rates: dict[str, list[float]] = {k: [] for k in sims}
    for r in range(pairs + 1):
        for k in sorted(sims, reverse=bool(r % 2)):
            sim = sims[k]
            sim.reset()
            started = time.perf_counter()
            if k == "recorded":
                sim.run(ticks, inputs=inputs, record=rec, record_spikes=spikes)
            else:
                sim.run(ticks, inputs=inputs)
            if r:
                rates[k].append(ticks / (time.perf_counter() - started))
    med = {k: float(statistics.median(v)) for k, v in rates.items()}
    ratios = [a / b for a, b in zip(rates["recorded"], rates["bare"], strict=True)]
    return {
        "recorded_ticks_per_s": med["recorded"],
        "bare_ticks_per_s": med["bare"],
        "ratio": float(statistics.median(ratios)),
    }


def main(argv: list[str] | None = None) -> int:
    """Run everything; print a table and write the JSON."""
    p = argparse.ArgumentParser(description="Whole-process spikestream run vs a Nengo script.")
    p.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated keys")
    p.add_argument("--pairs", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = p.parse_args(argv)
    keys = [k for k in args.networks.split(",") if k]
    unknown = [k for k in keys if k not in NETWORKS]
    if unknown:
        p.error(f"unknown networks {unknown}; expected some of {list(NETWORKS)}")
    tmp = Path(tempfile.mkdtemp(prefix="wholeprocess."))
    try:
        started = time.time()
        env = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        print(f"# whole processes, {args.pairs} interleaved rounds; load {env['load_before']}")
        floors = bench_floors(args.pairs, tmp)
        py, nb = floors["python"], floors["numba"]
        print(
            f"floors: python {py:.3f} s ({floors['python_cpu']:.3f} CPU), numba + one cached "
            f"call {nb:.3f} s ({floors['numba_cpu']:.3f} CPU)"
        )
        results = [bench_network(k, args.pairs, tmp) for k in keys]
        overhead = recording_overhead(args.pairs)
        env["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    columns = ["Network", "Simulated", "spikestream run", "Nengo script", "Nengo / ours"]
    print("\n| " + " | ".join([*columns, "CPU Nengo / ours", "first tick (CPU)"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        split = r["median_split"]
        print(
            f"| {r['title']} | {r['duration']:g} s | {r['median_spikestream']:.2f} s | "
            f"{r['median_nengo']:.2f} s | **{r['median_ratio']:.1f}×** | "
            f"{r['median_cpu_ratio']:.1f}× | {split['first_tick']:.3f} s "
            f"({split['first_tick_cpu']:.3f} s) |"
        )
    print("\nspikestream split (medians, s):")
    for r in results:
        s = r["median_split"]
        print(
            f"  {r['key']}: first tick {s['first_tick']:.3f} ({s['first_tick_cpu']:.3f} CPU; "
            f"network {s['load_network']:.3f}, "
            f"simulator {s['simulator']:.3f}), stepping+recording {s['stepping']:.3f}, "
            f"signals {s['signals']:.3f}, writing {s['writing']:.3f}; "
            f"nengo {json.dumps({k: round(v, 3) for k, v in r['median_nengo_split'].items()})}"
        )
        print(f"    mean rates (spikestream, nengo): {r['check']['mean_rates_hz']}")
    print(
        f"\nrecording (seed, in process): {overhead['recorded_ticks_per_s']:,.0f} ticks/s with "
        f"probes, {overhead['bare_ticks_per_s']:,.0f} without: {overhead['ratio']:.0%} of the "
        "speed without"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "floors": floors,
        "results": results,
        "recording": overhead,
        "seconds": time.time() - started,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
