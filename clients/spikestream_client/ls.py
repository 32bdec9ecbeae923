"""``spikestream ls``: the networks on a broker, from their retained describe and status.

Every service publishes ``<prefix>/<net>/describe`` and ``<prefix>/<net>/status``
retained, so one subscription to each wildcard and one round trip (the client's
:meth:`~spikestream_client.client.SpikestreamClient.sync`) collect them all, without
waiting for frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from spikestream_client.client import SpikestreamClient
from spikestream_client.codec import Description
from spikestream_client.errors import ConfigError
from spikestream_client.logs import report
from spikestream_client.safetext import printable
from spikestream_client.tool import run_tool

__all__ = ["LsOptions", "NetworkListing", "list_networks", "main", "render"]


@dataclass
class LsOptions:
    """Everything ``spikestream ls`` needs (see its ``--help``)."""

    broker: str | None = None
    prefix: str = "spikestream"
    wait: float = 3.0
    json: bool = False


@dataclass(frozen=True)
class NetworkListing:
    """One network on the broker.

    Attributes:
        net: Its name.
        status: ``online``, ``offline``, None (no status retained) or other text.
        description: Its describe document, or None (a service older than it).
    """

    net: str
    status: str | None
    description: Description | None


async def list_networks(client: SpikestreamClient, wait: float = 3.0) -> list[NetworkListing]:
    """Every network with a retained describe or status on ``client``'s broker, by name.

    Args:
        client: A started client.
        wait: Seconds to wait for the broker's retained messages at most.
    """
    client.watch_networks()
    if not await client.sync(wait):
        await asyncio.sleep(wait)  # cannot sync (an ACL): give the retained messages time
    described = client.descriptions()
    statuses = client.statuses()
    return [
        NetworkListing(net, statuses.get(net), described.get(net))
        for net in sorted({*described, *statuses})
    ]


def _inputs(d: Description) -> str:
    return " ".join(f"{n}[{i.dim}]" for n, i in d.inputs.items()) or "-"


def _probes(d: Description) -> str:
    return (
        " ".join(
            f"{n}({p.kind} {'x'.join(map(str, p.shape)) or 'scalar'})" for n, p in d.probes.items()
        )
        or "-"
    )


def render(listing: list[NetworkListing]) -> str:
    """The listing as a text table: one network per line."""
    rows = [("NET", "STATUS", "SESSION", "DT", "INPUTS", "PROBES")]
    for item in listing:
        d = item.description
        rows.append(
            (
                printable(item.net, 64),  # a name by the rule, checked on arrival
                printable(item.status or "-", 20),
                str(d.session) if d else "-",
                f"{d.dt:g}" if d else "-",
                _inputs(d) if d else "(no describe)",
                _probes(d) if d else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    )


def _as_json(listing: list[NetworkListing]) -> list[dict[str, Any]]:
    return [
        {
            "net": item.net,
            "status": item.status,
            "describe": item.description.document if item.description else None,
        }
        for item in listing
    ]


async def run(options: LsOptions) -> int:
    """List the networks; exit status 1 when the broker has none."""
    if not options.wait > 0 or options.wait == float("inf"):
        raise ConfigError(f"--wait must be a number of seconds > 0, got {options.wait}")
    async with SpikestreamClient(options.broker, prefix=options.prefix, role="ls") as client:
        listing = await list_networks(client, options.wait)
        where = client.broker.redacted()
        refused = client.statistics().decode_errors
    if options.json:
        print(json.dumps(_as_json(listing), separators=(",", ":")))
    elif listing:
        print(render(listing))
    if refused:
        # The client logs only the first refusal (and every 1000th): say how many there were.
        report(
            "spikestream ls",
            f"{refused} retained message{'s' if refused != 1 else ''} under "
            f"{options.prefix}/ refused (undecodable, "
            "invalid or past the size limit; the first is logged)",
            level=logging.WARNING,
        )
    if not listing:
        # A warning: under --log-level warning it still explains the exit status 1.
        report(
            "spikestream ls",
            f"no networks under {options.prefix}/ on {where}",
            level=logging.WARNING,
        )
        return 1
    return 0


def main(options: LsOptions) -> int:
    """Run ``ls``; returns the exit code."""
    return run_tool(lambda stop: run(options))
