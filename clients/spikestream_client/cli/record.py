"""``spikestream record``: save what a running service publishes to an ``.npz`` file.

A thin argparse wrapper; the work is done by :mod:`spikestream_client.record`, imported
only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spikestream_client.cli.clientargs import (
    add_connection_args,
    add_find_args,
    add_probe_filter,
    mib_bytes,
)

#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "record a running network's probes to an .npz file (and a plot)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``record`` subcommand."""
    p = sub.add_parser(
        "record",
        help=SUMMARY,
        description=(
            "Subscribe to every probe of network NET (and its stats and status) for "
            "--duration seconds or until Ctrl-C/SIGTERM, then write what arrived in the "
            ".npz layout of 'spikestream run': one (ticks, ...) array per probe, named "
            "after the probe (spike probes as 0/1 uint8), aligned on the service's tick, "
            "with t, tick, a per-tick 'gaps' mask for lost frames and a meta JSON. "
            "Stopping early keeps what was recorded."
        ),
        epilog=(
            "example:\n  spikestream record --net seed --duration 10 --out live.npz --plot live.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_args(p)
    p.add_argument(
        "--duration", type=float, metavar="S", help="seconds to record (default: until stopped)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz", help="output file")
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw a plot, in the format its suffix names (.png, .pdf, .svg, .jpg or any "
        "other matplotlib writes); checked before recording",
    )
    add_probe_filter(p)
    add_find_args(p)
    p.add_argument(
        "--max-mib",
        type=float,
        default=1024.0,
        metavar="N",
        help="the recording's arrays and the frames it holds until the end may take at "
        "most N MiB, at least one byte (default 1024): past it the recording ends early, "
        "writes what it has, says so and exits with 3",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the recorder; returns the exit code."""
    from spikestream_client.record import RecordOptions
    from spikestream_client.record import main as record_main

    return record_main(
        RecordOptions(
            net=args.net,
            out=args.out,
            broker=args.broker,
            prefix=args.prefix,
            duration=args.duration,
            plot=args.plot,
            probes=args.probes,
            quiet=args.quiet,
            wait_net=args.wait_net,
            max_bytes=mib_bytes("--max-mib", args.max_mib),
        )
    )
