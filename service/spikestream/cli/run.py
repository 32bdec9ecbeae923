"""``spikestream run``: the network offline, as fast as possible."""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

from spikestream.budget import (
    DEFAULT_SHARE,
    check_budget,
    default_limit,
    estimate_run,
    format_count,
    parse_bytes,
)
from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.nengo_import import load_network_or_model
from spikestream.runtime.offline import input_signals, run_offline, save_npz, ticks_for
from spikestream.runtime.replay import load_replay, replay_inputs, replay_ticks

log = logging.getLogger("spikestream.run")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a network offline, as fast as possible, and save the result",
        description=(
            "Run NETWORK offline as fast as possible, feeding each input its offline signal "
            "(or a replayed live log), and write every population's spikes, every probe, "
            "the inputs and the built parameters to an .npz file."
        ),
    )
    p.add_argument(
        "network",
        type=Path,
        help="network file (TOML), e.g. examples/seed.toml, or a Nengo model MODEL.py[:NAME] "
        "(imported as by `spikestream import`, which runs the script)",
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="simulated seconds to run (required unless --replay gives the length)",
    )
    p.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="feed the inputs recorded by `serve --log-inputs FILE`, tick for tick, to "
        "reproduce that live run's spike trains exactly",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz", help="output file")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw a PNG plot")
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        help="number type of the state (default: the file's network.dtype, float64)",
    )
    p.add_argument("--seed", type=int, help="override the network file's random seed (>= 0)")
    p.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="refuse to run when the network and its recording would allocate more than "
        "SIZE bytes (e.g. 2GiB, 512MiB, 1.5GB; also SPIKESTREAM_MEMORY_LIMIT). Default: "
        f"{DEFAULT_SHARE * 100:.0f}%% of physical memory (or of the container's limit)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on long runs")
    add_python_functions_flag(p)
    p.set_defaults(func=main)


def add_python_functions_flag(p: argparse.ArgumentParser) -> None:
    """``--allow-python-functions`` (``run`` and ``serve``): the opt-in to code execution."""
    p.add_argument(
        "--allow-python-functions",
        action="store_true",
        help='let a decoded connection\'s function = "module:attr" import that module and '
        "call it: this runs Python code named in the network file, so use it only with files "
        "you trust (default: refused, and only expressions in x are evaluated)",
    )


def main(args: argparse.Namespace) -> int:
    """Build, run, save, optionally plot. Returns the exit code."""
    # A model script's input functions are sampled over the whole run (at least 10 s).
    duration = args.duration if args.duration is not None and math.isfinite(args.duration) else 0
    spec = load_network_or_model(args.network, sample_duration=max(10.0, duration))
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise ConfigError(f"--seed: {args.seed} is not allowed; expected an integer in [0, 2^63)")
    limit_text = args.memory_limit or os.environ.get("SPIKESTREAM_MEMORY_LIMIT")
    limit = parse_bytes(limit_text) if limit_text else default_limit()
    replay = load_replay(args.replay) if args.replay is not None else None
    if replay is not None:
        ticks = replay_ticks(replay, args.replay)
        if args.duration is not None:
            ticks = min(ticks, ticks_for(args.duration, spec.network.dt))
        asked = f"running {args.network} for {format_count(ticks)} replayed ticks"
    elif args.duration is None:
        raise ConfigError("--duration S is required (or --replay FILE)")
    else:
        ticks = ticks_for(args.duration, spec.network.dt)
        asked = f"running {args.network} for {args.duration:g} s ({format_count(ticks)} ticks)"
    # Before anything is built: a network or a recording too large for the machine is a
    # clear refusal, not a MemoryError halfway through.
    check_budget(asked, estimate_run(spec, ticks=ticks, dtype=args.dtype), limit)
    model = build(
        spec,
        dtype=args.dtype,
        seed=args.seed,
        allow_python_functions=args.allow_python_functions,
    )
    resets: list[int] = []
    if replay is not None:
        ticks_logged, inputs, reset_ticks = replay_inputs(model, replay)
        resets = [int(r) for r in reset_ticks]
        ticks = min(ticks, ticks_logged)
    else:
        inputs = input_signals(model, ticks)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if args.no_progress:
        arrays = run_offline(model, ticks, inputs=inputs, resets=resets, timings=timings)
    else:
        from tqdm import tqdm

        # delay=1: the bar appears only on runs that take more than a second.
        with tqdm(total=ticks, unit="tick", delay=1.0, desc=model.name, leave=False) as bar:
            done = [0]

            def progress(k: int) -> None:
                bar.update(k - done[0])
                done[0] = k

            arrays = run_offline(model, ticks, inputs=inputs, resets=resets, progress=progress)
    elapsed = time.perf_counter() - started
    stepping = timings.get("stepping", elapsed)
    out = save_npz(args.out, arrays)
    rates = {
        name: round(float(arrays[f"{name}.spikes"].mean()) / model.dt, 1)
        for name in model.populations
    }
    print(
        f"{model.name}: {ticks} ticks ({ticks * model.dt:g} s simulated) in {elapsed:.2f} s, "
        f"{stepping:.2f} s of it stepping ({ticks / max(stepping, 1e-9):,.0f} ticks/s); "
        f"mean rates (Hz): {rates}"
    )
    print(f"wrote {out}")
    if args.plot is not None:
        from spikestream.plotting import plot_run

        print(f"wrote {plot_run(arrays, args.plot)}")
    return 0
