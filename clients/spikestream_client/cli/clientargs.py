"""Flags the client commands (``feed``, ``monitor``, ``record``) share."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from spikestream_client.errors import ConfigError


class _BrokerList(argparse.Action):
    """``--broker`` may be repeated; the URLs are joined into one comma-separated list
    (the form ``$SPIKESTREAM_BROKER`` and the client library take)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        previous = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, str(values) if previous is None else f"{previous},{values}")


def add_connection_args(p: argparse.ArgumentParser, *, net: bool = True) -> None:
    """``--broker``, ``--net`` (unless ``net`` is False) and ``--prefix``: where the
    service is and which network."""
    p.add_argument(
        "--broker",
        action=_BrokerList,
        metavar="URL",
        help="mqtt://[user:pass@]host[:port], mqtts://… (TLS: a private CA, a client "
        "certificate as query parameters, ?ca=FILE&cert=FILE&key=FILE), ws://, wss:// "
        "(default: $SPIKESTREAM_BROKER or mqtt://127.0.0.1:1883); repeat it, or separate "
        "URLs with commas, to name the nodes of a clustered broker (the first that answers "
        "is used, the next on losing it)",
    )
    if net:
        p.add_argument("--net", required=True, help="network name, e.g. seed")
    p.add_argument("--prefix", default="spikestream", help="topic prefix (default: spikestream)")


def _seconds(text: str) -> float:
    """A ``--wait-net`` value: a finite number of seconds >= 0. ``nan`` never reached its
    deadline, so a user the broker does not let sync (a read-only ACL) waited for ever
    instead of hearing "no network"; ``-1`` was taken and said as "within -1 s"."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def add_find_args(p: argparse.ArgumentParser, *, skippable: bool = False) -> None:
    """``--wait-net S`` (and ``--no-check``): how long a tool waits for the network's
    retained ``describe``/``status`` before it fails with one line."""
    p.add_argument(
        "--wait-net",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="seconds to wait for the network's retained describe/status before failing "
        "with 'no network NET' (default: 3)",
    )
    if skippable:
        p.add_argument(
            "--no-check",
            action="store_true",
            help="do not check that NET exists (a network that starts later, or a user the "
            "broker lets write but not read)",
        )


def add_probe_filter(p: argparse.ArgumentParser) -> None:
    """``--probe NAME`` (repeatable) into ``probes``: which probes a reader takes."""
    p.add_argument(
        "--probe",
        action="append",
        dest="probes",
        metavar="NAME",
        help="only this probe (repeat for more; default: all)",
    )


def mib_bytes(flag: str, mib: float) -> int:
    """The value ``mib`` of the MiB-valued ``flag`` (e.g. ``--max-mib``) in bytes, rounded
    down.

    Raises:
        ConfigError: Not finite, or under one byte (1e-9 MiB rounded to 0 bytes, and the
            refusal did not say which value it refused).
    """
    size = int(mib * 2**20) if math.isfinite(mib) else 0
    if size < 1:
        raise ConfigError(
            f"{flag} must be a finite number of MiB > 0, at least one byte "
            f"({2**-20:.3g} MiB), got {mib!r}"
        )
    return size
