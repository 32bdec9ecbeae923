"""``spikestream ls``: list the networks on a broker with their status, inputs and probes.

A thin argparse wrapper; the work is done by :mod:`spikestream_client.ls`, imported only
when the command runs.
"""

from __future__ import annotations

import argparse

from spikestream_client.cli.clientargs import add_connection_args

#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "list the networks on a broker: status, inputs and probes"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``ls`` subcommand."""
    p = sub.add_parser(
        "ls",
        help=SUMMARY,
        description=(
            "List every network whose service published a retained describe document or "
            "status on the broker: its status (online/offline), session, tick length, "
            "inputs (name[dim]) and probes (name(kind shape)). Exit status 1 when there "
            "is none."
        ),
        epilog="examples:\n  spikestream ls\n  spikestream ls --broker mqtt://pi.local --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_args(p, net=False)
    p.add_argument(
        "--wait",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the retained messages at most (default: 3)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON array: net, status, describe document"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``ls``; returns the exit code."""
    from spikestream_client.ls import LsOptions
    from spikestream_client.ls import main as ls_main

    return ls_main(
        LsOptions(broker=args.broker, prefix=args.prefix, wait=args.wait, json=args.json)
    )
