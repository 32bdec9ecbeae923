#!/usr/bin/env python3
"""Health check for ``spikestream serve``: healthy when every network it serves is
connected to its broker and ticking.

It reads the Prometheus endpoint the service opens with ``--metrics-port`` twice, half a
second apart, and exits 0 when, for every network, ``spikestream_connected`` is 1 and
``spikestream_ticks_total`` went up (or ``spikestream_paused`` is 1); otherwise it exits
1 and prints why. Standard library only, so it runs in the slim image as it is.

With ``--ticking-only`` the broker connection is not checked: that is the liveness
question (restarting a process whose broker is down does not help; it reconnects by
itself), where the default is the readiness and health question.

Used by the Dockerfile's HEALTHCHECK, the compose file and the Kubernetes probes::

    spikestream-healthcheck                    # http://127.0.0.1:$SPIKESTREAM_METRICS_PORT
    spikestream-healthcheck --ticking-only     # liveness
    spikestream-healthcheck --port 9100 --host 10.0.0.7
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.error
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


def check(
    url: str, *, connected: bool = True, interval: float = 0.5, timeout: float = 2.0
) -> list[str]:
    """What is wrong with the service behind ``url`` (empty when healthy). With
    ``connected=False`` only ticking is checked."""
    first = scrape(url, timeout)
    time.sleep(interval)
    second = scrape(url, timeout)
    nets = sorted(net for metric, net in second if metric == "spikestream_connected")
    if not nets:
        return [f"{url} reports no network"]
    problems = []
    for net in nets:
        if connected and second[("spikestream_connected", net)] != 1.0:
            problems.append(f"{net}: not connected to the broker")
        paused = second.get(("spikestream_paused", net), 0.0) == 1.0
        before = first.get(("spikestream_ticks_total", net), 0.0)
        after = second.get(("spikestream_ticks_total", net), 0.0)
        if not paused and after <= before:
            problems.append(f"{net}: not ticking (ticks {before:.0f} -> {after:.0f})")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when healthy, 1 otherwise (with the reasons on stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="metrics address (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SPIKESTREAM_METRICS_PORT", "9100")),
        help="metrics port (default: $SPIKESTREAM_METRICS_PORT or 9100)",
    )
    parser.add_argument(
        "--ticking-only",
        action="store_true",
        help="do not require the broker connection (liveness)",
    )
    args = parser.parse_args(argv)
    url = f"http://{args.host}:{args.port}/metrics"
    try:
        problems = check(url, connected=not args.ticking_only)
    except (OSError, urllib.error.URLError) as err:
        problems = [f"cannot read {url}: {err}"]
    if problems:
        print("unhealthy: " + "; ".join(problems))
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
