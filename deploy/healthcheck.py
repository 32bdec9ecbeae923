#!/usr/bin/env python3
"""Health check for ``spikestream serve``: healthy when every network it serves is
connected to its broker and ticking.

It reads the Prometheus endpoint the service opens with ``--metrics-port``, then again
every 0.1 s until every network's ``spikestream_ticks_total`` went up (or
``spikestream_paused`` is 1), for at most ``--within`` seconds (3), and exits 0 when, for
every network, ``spikestream_connected`` is 1 and it ticked; otherwise it exits 1 and
prints why. A network ticking slower than once in ``--within`` seconds (``dt`` over its
real-time factor: ``set realtime_factor 0.0003`` at 1 ms ticks) needs a longer one, and a
probe timeout longer still. Two scrapes a fixed half second apart called a network that
ticks once a second (``realtime_factor 0.001``) dead in turn, and three misses in a row
restart a Kubernetes pod. Standard library only, so it
runs in the slim image as it is.

With ``--ticking-only`` the broker connection is not checked: that is the liveness
question (restarting a process whose broker is down does not help; it reconnects by
itself), where the default is the readiness and health question.

Used by the Dockerfile's HEALTHCHECK, the compose file and the Kubernetes probes::

    spikestream-healthcheck                    # http://$SPIKESTREAM_METRICS_HOST:$SPIKESTREAM_METRICS_PORT
    spikestream-healthcheck --ticking-only     # liveness
    spikestream-healthcheck --port 9100 --host 10.0.0.7
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import time
import urllib.request

SAMPLE = re.compile(r'^(spikestream_[a-z_]+)\{net="([^"]*)"\} (\S+)$')


def scrape(url: str, timeout: float) -> dict[tuple[str, str], float]:
    """The per-network samples of the endpoint: ``{(metric, net): value}``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode("utf-8", "replace")
    samples: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is not None:
            samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


def _stuck(
    first: dict[tuple[str, str], float], last: dict[tuple[str, str], float], net: str
) -> str | None:
    """Why ``net`` has not ticked between two scrapes, or None when it has (or is paused)."""
    if last.get(("spikestream_paused", net), 0.0) == 1.0:
        return None
    before = first.get(("spikestream_ticks_total", net), 0.0)
    after = last.get(("spikestream_ticks_total", net), 0.0)
    return None if after > before else f"{net}: not ticking (ticks {before:.0f} -> {after:.0f})"


def check(
    url: str,
    *,
    connected: bool = True,
    within: float = 3.0,
    poll: float = 0.1,
    timeout: float = 2.0,
) -> list[str]:
    """What is wrong with the service behind ``url`` (empty when healthy): scraped every
    ``poll`` seconds until every network ticked, for at most ``within`` seconds. With
    ``connected=False`` only ticking is checked."""
    first = scrape(url, timeout)
    deadline = time.monotonic() + within
    while True:
        time.sleep(poll)
        last = scrape(url, timeout)
        nets = sorted(net for metric, net in last if metric == "spikestream_connected")
        stuck = [why for net in nets if (why := _stuck(first, last, net)) is not None]
        if not stuck or time.monotonic() >= deadline:
            break
    if not nets:
        return [f"{url} reports no network"]
    problems = [
        f"{net}: not connected to the broker"
        for net in nets
        if connected and last[("spikestream_connected", net)] != 1.0
    ]
    return problems + stuck


#: Addresses the service binds to listen on every interface: checked on loopback.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}


def default_host() -> str:
    """The address the service's metrics listen on, from ``SPIKESTREAM_METRICS_HOST`` as
    ``serve`` reads it (a wildcard address is reached on loopback), else 127.0.0.1."""
    host = os.environ.get("SPIKESTREAM_METRICS_HOST", "").strip()
    return WILDCARDS.get(host, host)


def port_number(text: str) -> int:
    """A TCP port, 1..65535.

    Raises:
        argparse.ArgumentTypeError: saying what was expected and what arrived (argparse
            makes it one line naming the flag).
    """
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port, 1 to 65535; got {text!r:.40}")
    return port


def endpoint(host: str, port: int) -> str:
    """The metrics URL; an IPv6 address goes in brackets (``http://::1:9100`` is no URL)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/metrics"


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when healthy, 1 otherwise (with the reasons on stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0].replace("\n", " "))
    parser.add_argument(
        "--host",
        help="metrics address (default: $SPIKESTREAM_METRICS_HOST, a wildcard such as 0.0.0.0 "
        "read as loopback, or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        help="metrics port, 1 to 65535 (default: $SPIKESTREAM_METRICS_PORT or 9100)",
    )
    parser.add_argument(
        "--ticking-only",
        action="store_true",
        help="do not require the broker connection (liveness)",
    )
    parser.add_argument(
        "--within",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long each network may take to tick once (3); a slow network (dt over its "
        "real-time factor) needs more, and the probe's timeout more still",
    )
    args = parser.parse_args(argv)
    if not 0 < args.within <= 3600:
        parser.error(f"--within must be in (0, 3600] seconds, got {args.within:g}")
    if args.port is None:
        # Read here, not as the flag's default: a bad variable was a traceback at start.
        text = os.environ.get("SPIKESTREAM_METRICS_PORT", "").strip() or "9100"
        try:
            args.port = port_number(text)
        except argparse.ArgumentTypeError:
            parser.error(
                f"SPIKESTREAM_METRICS_PORT: {text!r:.40} is not a port; expected 1 to 65535"
            )
    url = endpoint(args.host if args.host is not None else default_host(), args.port)
    try:
        problems = check(url, connected=not args.ticking_only, within=args.within)
    except (OSError, ValueError, http.client.HTTPException) as err:
        # Unreachable, not HTTP (BadStatusLine), or a page whose samples are not numbers.
        # The reason may quote the peer's bytes: one printable line, cut short.
        reason = "".join(c if c.isprintable() else " " for c in str(err)).strip()
        problems = [f"cannot read {url}: {reason:.200}"]
    if problems:
        print("unhealthy: " + "; ".join(problems))
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
