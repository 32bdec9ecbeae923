"""Flags the client commands (``feed``, ``monitor``, ``record``) share."""

from __future__ import annotations

import argparse


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """``--broker``, ``--net`` and ``--prefix``: where the service is and which network."""
    p.add_argument(
        "--broker",
        help="mqtt://[user:pass@]host[:port] (default: $SPIKESTREAM_BROKER or "
        "mqtt://127.0.0.1:1883)",
    )
    p.add_argument("--net", required=True, help="network name, e.g. seed")
    p.add_argument("--prefix", default="spikestream", help="topic prefix (default: spikestream)")


def add_probe_filter(p: argparse.ArgumentParser) -> None:
    """``--probe NAME`` (repeatable) into ``probes``: which probes a reader takes."""
    p.add_argument(
        "--probe",
        action="append",
        dest="probes",
        metavar="NAME",
        help="only this probe (repeat for more; default: all)",
    )
