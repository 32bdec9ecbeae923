"""``spikestream run``: the network offline, as fast as possible.

Only :func:`add_parser` runs for other commands, so this module imports nothing heavy at
the top: the builder, simulator and numba load when ``run`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from spikestream_client.logs import say

if TYPE_CHECKING:
    from spikestream.spec import NetworkSpec

log = logging.getLogger("spikestream.run")
#: Populations whose mean rate the closing line shows (the first ones declared).
RATES_SHOWN = 8


#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "run a network offline, as fast as possible, and save the result"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``run`` subcommand."""
    from spikestream.budget import DEFAULT_SHARE  # for the help text (no numpy)

    p = sub.add_parser(
        "run",
        help=SUMMARY,
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
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw a plot, in the format its suffix names (.png, .pdf, .svg, .jpg or "
        "any other matplotlib writes), read back from the .npz in chunks: at most 40 traces of "
        "20,000 points (min/max per bucket) and 2,000,000 spikes per panel, so its memory "
        "does not grow with the run's length",
    )
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
    p.add_argument(
        "--compress",
        action="store_true",
        help="deflate the .npz: a smaller file (spikes shrink ~10x) that takes several times "
        "longer to write than the run itself (default: uncompressed)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="print where the time went: start-up to the first tick, building, stepping "
        "(with recording), input signals and writing",
    )
    add_python_functions_flag(p)
    p.set_defaults(func=main)


def process_started() -> float | None:
    """Unix time at which this process started (10 ms resolution, from ``/proc``), or None
    where ``/proc`` is not available."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - age


class _LazyBar:
    """A tqdm progress bar that appears once a run has taken more than ``delay`` seconds,
    and only then imports tqdm (short runs never pay for it)."""

    def __init__(self, total: int, desc: str, delay: float = 1.0) -> None:
        self.total, self.desc = total, desc
        self.deadline = time.perf_counter() + delay
        self.bar: Any = None
        self.done = 0

    def update(self, k: int) -> None:
        """``k`` ticks are done."""
        if self.bar is None:
            if time.perf_counter() < self.deadline:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="tick", desc=self.desc, leave=False)
        self.bar.update(k - self.done)
        self.done = k

    def close(self) -> None:
        """Remove the bar, if it appeared."""
        if self.bar is not None:
            self.bar.close()


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw the progress bar: not with ``--no-progress``, and only on a
    terminal with text logs. Its carriage-return frames went into a piped or redirected
    stderr as garbage, and between ``--log-format json`` objects they broke the lines a
    log collector parses."""
    if args.no_progress or getattr(args, "log_format", "text") != "text":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def add_python_functions_flag(p: argparse.ArgumentParser) -> None:
    """``--allow-python-functions`` (``run`` and ``import``): the opt-in to code execution.
    ``serve`` derives the same flag from its setting."""
    from spikestream.flaghelp import ALLOW_PYTHON_FUNCTIONS_HELP

    p.add_argument(
        "--allow-python-functions",
        action="store_true",
        help=ALLOW_PYTHON_FUNCTIONS_HELP,
    )


def check_disk(what: str, out: Path, size: int, static: int = 0) -> None:
    """Refuse a run whose ``.npz`` cannot fit in the free space of ``out``'s folder: it
    would fail after hours, not at once. ``size``: bytes of its per-tick arrays
    (uncompressed; as much again in spool files while a run longer than one block
    streams); ``static``: bytes of the arrays written once (the built parameters: a dense
    connection's weights are ``pre.n * post.n`` float64, which a short run's per-tick
    arrays do not come near).

    Raises:
        ConfigError: one line naming the sizes and the folder.
    """
    import shutil

    from spikestream.budget import format_bytes
    from spikestream.errors import ConfigError

    folder = out.parent if str(out.parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the folder is missing: writing the file reports it
    written = size + static
    needed = 2 * size + static
    if needed > free:
        params = f", {format_bytes(static)} of it built parameters," if static else ""
        raise ConfigError(
            f"{what} would write about {format_bytes(written)}{params} to {str(out)!r} (and "
            f"need about {format_bytes(needed)} while it runs), more than the "
            f"{format_bytes(free)} free in {str(folder)!r}; shorten the run or write elsewhere"
        )


#: errno values of an OSError that mean the disk, not the program, refused a write.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


@contextlib.contextmanager
def disk_errors(flag: str, path: Path) -> Iterator[None]:
    """An OSError of :data:`DISK_ERRORS` (a full disk, a quota, a read-only file system)
    while writing ``path`` as one line naming the flag, the file and the reason, exit 2
    as other user errors, rather than a traceback after a long run.

    Raises:
        ConfigError: ``"<flag>: cannot write '<path>': <reason>"``.
    """
    from spikestream.errors import ConfigError

    try:
        yield
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        raise ConfigError(
            f"{flag}: cannot write {str(path)!r}: {err.strerror or err}; expected a "
            "writable folder with room for the file"
        ) from err


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def check_outputs(outputs: list[tuple[str, Path]], network: Path, replay: Path | None) -> None:
    """Refuse an output (``--out``, ``--plot``) that names what the run reads: the
    network file, the Nengo script given instead, the ``--replay`` log, or a file in the
    network's arrays folder (``<stem>.arrays``, written by ``spikestream import``). Each
    was overwritten without a word. Called before the network is loaded (a script is not
    run for nothing); :func:`check_array_outputs` checks the network's own files.

    Raises:
        ConfigError: naming the flag, both paths and what was expected.
    """
    from spikestream.errors import ConfigError
    from spikestream.nengo_import import is_model_script, split_source
    from spikestream_client.files import same_file

    source = split_source(str(network))[0] if is_model_script(network) else network
    what = "the Nengo script" if is_model_script(network) else "the network file"
    read = [(what, source)]
    if replay is not None:
        read.append(("the --replay log", replay))
    arrays = source.parent / f"{source.stem}.arrays"
    for flag, path in outputs:
        for name, src in read:
            if same_file(path, src):
                raise ConfigError(
                    f"{flag} {str(path)!r} is {name} {str(src)!r}, which the run reads; "
                    "expected a new file name"
                )
        if not is_model_script(network) and arrays.is_dir() and _is_inside(path, arrays):
            raise ConfigError(
                f"{flag} {str(path)!r} is inside {str(arrays)!r}, the arrays folder of the "
                f"network file {str(source)!r} (its files are the network's, rewritten by "
                "`spikestream import`); expected a file outside it"
            )
    if len(outputs) == 2 and same_file(outputs[0][1], outputs[1][1]):
        raise ConfigError(
            f"{outputs[0][0]} and {outputs[1][0]} both name {str(outputs[0][1])!r}; "
            "expected two files"
        )


def check_array_outputs(outputs: list[tuple[str, Path]], spec: NetworkSpec) -> None:
    """Refuse an output (``--out``, ``--plot``) that is a file the network reads
    (:func:`~spikestream.datafiles.files_read`): an array file of weights, encoders,
    decoders or samples.

    Raises:
        ConfigError: naming the flag, both paths and the key that reads the file.
    """
    from spikestream.datafiles import files_read
    from spikestream.errors import ConfigError
    from spikestream_client.files import same_file

    read = files_read(spec)
    for flag, path in outputs:
        for key, src in read:
            if same_file(path, src):
                raise ConfigError(
                    f"{flag} {str(path)!r} is {str(src)!r}, which the network reads "
                    f"({spec.source}: {key}); expected a new file name"
                )


#: Signals that end a run as SIGINT does, cleaning up the partial file and spool folder:
#: the default action killed the process in place and left both behind (959 MB seen).
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_exit() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise ``SystemExit(128 + signum)`` (the
    status a shell reports for a death by that signal), so every ``with`` and ``finally``
    on the way out runs: the ``.part`` file and the spool folder are deleted. A second
    signal while that cleanup runs is ignored rather than cutting it short (SIGKILL still
    ends the process). The previous handlers are restored after. Only the main thread may
    set handlers: elsewhere (a test calling ``main`` from a thread) nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        log.warning("stopping on a signal", extra={"signal": signal.Signals(signum).name})
        raise SystemExit(128 + signum)

    # A signal the process was started ignoring (nohup's SIGHUP) stays ignored.
    wanted = [sig for sig in EXIT_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    old = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def main(args: argparse.Namespace) -> int:
    """Build, run, save, optionally plot. Returns the exit code."""
    with signals_exit():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    from spikestream.budget import (
        check_budget,
        default_limit,
        estimate_run,
        format_count,
        parse_bytes,
        recording_bytes,
    )
    from spikestream.build import build
    from spikestream.errors import ConfigError
    from spikestream.nengo_import import load_network_or_model
    from spikestream.runtime.offline import (
        BLOCK_BYTES,
        LearningChange,
        Timings,
        run_to_file,
        ticks_for,
    )
    from spikestream.runtime.replay import check_build, load_replay, replay_block

    entered = time.perf_counter()
    outputs = [("--out", args.out)]
    if args.plot is not None:
        from spikestream_client.plotting import check_plot

        check_plot(args.plot)
        outputs.append(("--plot", args.plot))
    check_outputs(outputs, args.network, args.replay)
    # A model script's input functions are sampled over the whole run (at least 10 s).
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f"--duration must be a number of seconds > 0; got {args.duration}")
    duration = args.duration if args.duration is not None else 0
    # The flags are checked before the network loads: loading a model script runs it,
    # and a mistyped flag should not cost that (or its side effects) first.
    if args.duration is None and args.replay is None:
        raise ConfigError("--duration S is required (or --replay FILE)")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise ConfigError(f"--seed: {args.seed} is not allowed; expected an integer in [0, 2^63)")
    # A given but empty --memory-limit is refused, not taken for the default.
    limit_text = args.memory_limit
    if limit_text is None:
        limit_text = os.environ.get("SPIKESTREAM_MEMORY_LIMIT") or None
    named = "--memory-limit" if args.memory_limit is not None else "SPIKESTREAM_MEMORY_LIMIT"
    limit = parse_bytes(limit_text, key=named) if limit_text is not None else default_limit()
    spec = load_network_or_model(args.network, sample_duration=max(10.0, duration))
    check_array_outputs(outputs, spec)
    # The log is validated against this network's inputs, inflating at most the limit.
    replay = load_replay(args.replay, spec, limit=limit) if args.replay is not None else None
    if replay is not None:
        ticks = replay.ticks
        if args.duration is not None:
            wanted = ticks_for(args.duration, spec.network.dt)
            if wanted > ticks:  # said, not cut short without a word
                log.warning(
                    "the replay log is shorter than --duration: running its ticks",
                    # A number where one fits a log line: --duration 1e300 gave 304 digits.
                    extra={
                        "log_ticks": ticks,
                        "duration_ticks": wanted if wanted < 10**15 else format_count(wanted),
                    },
                )
            ticks = min(ticks, wanted)
        asked = f"running {args.network} for {format_count(ticks)} replayed ticks"
    else:
        assert args.duration is not None  # checked above
        ticks = ticks_for(args.duration, spec.network.dt)
        asked = f"running {args.network} for {args.duration:g} s ({format_count(ticks)} ticks)"
    # Before anything is built: a network or a recording too large for the machine is a
    # clear refusal, not a MemoryError halfway through. The recording streams to the file
    # in blocks of at most BLOCK_BYTES; a replay log is held whole, expanded per block.
    estimate = estimate_run(
        spec,
        ticks=ticks,
        dtype=args.dtype,
        block_bytes=BLOCK_BYTES,
        replay_bytes=replay.nbytes if replay is not None else None,
    )
    check_budget(asked, estimate, limit)
    check_disk(asked, args.out, recording_bytes(spec, ticks=ticks, dtype=args.dtype))
    model = build(
        spec,
        dtype=args.dtype,
        seed=args.seed,
        allow_python_functions=args.allow_python_functions,
    )
    # Again with the built parameters, which the file holds too (known only now).
    check_disk(
        asked,
        args.out,
        recording_bytes(spec, ticks=ticks, dtype=args.dtype),
        static=sum(a.nbytes for a in model.arrays().values()),
    )
    resets: list[int] = []
    learning: tuple[LearningChange, ...] = ()
    inputs = None  # the offline signals, computed block by block
    if replay is not None:
        check_build(model, replay)
        inputs = functools.partial(replay_block, model, replay)  # (start, stop) -> block
        resets = [int(r) for r in replay.resets]
        learning = replay.learning_changes()
        if (restored := replay.restores[replay.restores < ticks]).size:  # not in the log
            log.warning(
                "the live run restored a snapshot before tick %d (%d restore(s) in the "
                "ticks replayed); the log holds no snapshot, so this replay follows the "
                "live run exactly only up to that tick (and again after a reset)",
                int(restored[0]),
                restored.size,
            )
    built = time.perf_counter()
    timings = Timings()
    run = functools.partial(
        run_to_file,
        model,
        ticks,
        args.out,
        inputs=inputs,
        resets=resets,
        learning=learning,
        compress=args.compress,
        timings=timings,
    )
    with disk_errors("--out", args.out):
        if not show_progress(args):
            out = run()
        else:
            bar = _LazyBar(ticks, model.name)
            try:
                out = run(progress=bar.update)
            finally:
                bar.close()
    finished = time.perf_counter()
    elapsed = finished - built
    stepping = timings.stepping
    rates = {
        name: round(c / (max(ticks, 1) * model.populations[name].n) / model.dt, 1)
        for name, c in timings.counts.items()
    }
    shown = dict(list(rates.items())[:RATES_SHOWN])  # one line, however many populations
    more = f" and {len(rates) - len(shown)} more" if len(rates) > len(shown) else ""
    say(
        f"{model.name}: {ticks} ticks ({ticks * model.dt:g} s simulated) in {elapsed:.2f} s, "
        f"{stepping:.2f} s of it stepping ({ticks / max(stepping, 1e-9):,.0f} ticks/s); "
        f"mean rates (Hz): {shown}{more}",
        tool="run",
        stdout=True,
    )
    say(f"wrote {out}", tool="run", stdout=True)
    started = process_started()
    first = timings.first_tick - started if started is not None else float("nan")
    # For bench/wholeprocess.py, which knows when it started the process.
    log.debug(
        "timings",
        extra={
            "first_tick_unix": timings.first_tick,
            "first_tick_since_start": first,
            "first_tick_cpu": timings.first_tick_cpu,
            "load_network": built - entered,
            "simulator": timings.simulator,
            "stepping": stepping,
            "signals": timings.signals,
            "writing": timings.writing,
        },
    )
    if args.profile:
        say(
            "profile (s): "
            f"start-up to first tick {first:.3f} ({timings.first_tick_cpu:.3f} of CPU; "
            f"of which loading the network "
            f"{built - entered:.3f}, simulator and kernels {timings.simulator:.3f}); "
            f"stepping and recording {stepping:.3f}; input signals {timings.signals:.3f}; "
            f"writing {timings.writing:.3f}; total since start "
            f"{time.time() - started if started is not None else float('nan'):.3f}",
            tool="run",
            stdout=True,
        )
    if args.plot is not None:
        # Read back from the file in row chunks: memory bounded whatever the run's length.
        from spikestream_client.plotting import plot_run_file

        with disk_errors("--plot", args.plot):
            say(f"wrote {plot_run_file(out, args.plot)}", tool="run", stdout=True)
    return 0
