"""``spikestream import``: a Nengo model script as a network file."""

from __future__ import annotations

import argparse
from pathlib import Path

from spikestream_client.logs import say

WARNING = (
    "Importing RUNS the script (it is Python code, executed with your rights): import only "
    "models you trust, as you would run them with python."
)


#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "import a Nengo model (a Python script) as a network file"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``import`` subcommand."""
    # Imported here, as in main(): the list of commands needs only SUMMARY.
    from spikestream.nengo_import import DEFAULT_VARIABLE

    p = sub.add_parser(
        "import",
        help=SUMMARY,
        description=(
            "Load MODEL.py, take its nengo.Network (the variable "
            f"{DEFAULT_VARIABLE!r}, or NAME), build it with Nengo's own builder and write "
            "an equivalent network file plus .npy side files (OUT's stem + '.arrays/'). "
            f"{WARNING} Needs Nengo 4: pip install 'nengo>=4,<5' (the .venv that make sets "
            "up has it). The supported subset "
            "is in docs/NENGO.md; anything else is refused, naming the object."
        ),
        epilog=WARNING,
    )
    p.add_argument(
        "model", metavar="MODEL.py[:NAME]", help="the script, and the variable holding the network"
    )
    p.add_argument("--out", type=Path, required=True, metavar="NET.toml", help="network file")
    p.add_argument(
        "--dt", type=float, default=0.001, metavar="S", help="tick length (default: 0.001 s)"
    )
    p.add_argument(
        "--timing",
        choices=("nengo", "spikestream"),
        default="nengo",
        help="nengo (default): every filtered connection delays one tick, as in Nengo, so "
        "spike trains match Nengo's; spikestream: only connections closing a cycle do",
    )
    p.add_argument(
        "--sample-duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds of each function-of-t input node sampled as its offline signal "
        "(held at the last sample afterwards; default: 10)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Import and report. Returns the exit code."""
    from spikestream.errors import ConfigError
    from spikestream.nengo_import import import_model

    # Absolute now: the script runs in between and may change folder (import_model puts
    # the folder back, but --out names the file the user meant when they typed it).
    out = Path(args.out).absolute()
    existing = next(p for p in out.parents if p.exists() or p == p.parent)
    if existing.is_dir() and existing != out.parent:  # one that is a file: said later
        # As run and record refuse theirs: a mistyped folder was made, silently.
        raise ConfigError(
            f"--out {str(args.out)!r}: folder {str(out.parent)!r} does not exist; expected a "
            "path in an existing folder"
        )
    spec = import_model(
        args.model,
        out,
        dt=args.dt,
        sample_duration=args.sample_duration,
        timing=args.timing,
    )
    say(
        f"wrote {args.out} ({spec.name}: {len(spec.populations)} population(s), "
        f"{len(spec.inputs)} input(s), {len(spec.connections)} connection(s), "
        f"{len(spec.probes)} probe(s); timing = {spec.network.timing!r})",
        tool="import",
        stdout=True,
    )
    return 0
