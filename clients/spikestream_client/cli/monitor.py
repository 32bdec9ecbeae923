"""``spikestream monitor``: a live view of a running network, in the terminal or a browser.

A thin argparse wrapper; the work is done by :mod:`spikestream_client.monitor` (its
``terminal`` view, or ``web`` for ``--web``), imported only when the command runs.
"""

from __future__ import annotations

import argparse

from spikestream_client.cli.clientargs import add_connection_args, add_find_args, add_probe_filter

#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "live view of a running network: rates, rasters, values, lateness, gaps"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``monitor`` subcommand."""
    p = sub.add_parser(
        "monitor",
        help=SUMMARY,
        description=(
            "Watch network NET live: per spike probe the mean firing rate, a sparkline of "
            "the population rate and a small raster of the last --window seconds; per value "
            "probe the latest values and a trace; the service's status, real-time factor, "
            "tick lateness and drops (from its stats and from the frames) and frame gaps. "
            "The display is redrawn --refresh times per second from aggregates, so it keeps "
            "up with thousands of frames per second. --web PORT serves the same view to a "
            "browser instead, with a live spike raster and value traces."
        ),
        epilog=(
            "examples:\n"
            "  spikestream monitor --net seed\n"
            "  spikestream monitor --net seed --duration 5      # then print the last view\n"
            "  spikestream monitor --net seed --once            # one view after --window s\n"
            "  spikestream monitor --net seed --web 8080        # http://127.0.0.1:8080/"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_args(p)
    add_find_args(p)
    add_probe_filter(p)
    p.add_argument(
        "--window", type=float, default=1.0, metavar="S", help="seconds of history shown (1)"
    )
    p.add_argument("--refresh", type=float, default=10.0, help="redraws per second, 0.1..60 (10)")
    p.add_argument(
        "--bins", type=int, help="time bins across the window (default: fits the terminal, <= 30)"
    )
    p.add_argument("--raster-rows", type=int, default=4, help="neuron groups per raster (4)")
    p.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds and leave the last view"
    )
    p.add_argument(
        "--once", action="store_true", help="print one view after a window of data, then exit"
    )
    p.add_argument(
        "--width",
        type=int,
        help="terminal width in columns, 40..1000 (default: detected; 180 if piped)",
    )
    p.add_argument(
        "--web", type=int, metavar="PORT", help="serve the browser view on PORT (0: any free port)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address for --web to bind (default: 127.0.0.1)"
    )
    p.add_argument(
        "--web-allow-origin",
        action="append",
        default=[],
        dest="web_allow_origins",
        metavar="URL",
        help=(
            "also serve pages opened as URL, e.g. http://pi.local:8080 (repeatable). By "
            "default --web answers only requests whose Host header is localhost, "
            "127.0.0.1, [::1] or the --host address at its own port, and WebSockets "
            "from those origins; others get 403 (defence against DNS rebinding and "
            "against other web pages reading the stream)"
        ),
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the monitor; returns the exit code."""
    from spikestream_client.monitor import MonitorOptions
    from spikestream_client.monitor import main as monitor_main

    return monitor_main(
        MonitorOptions(
            net=args.net,
            broker=args.broker,
            prefix=args.prefix,
            probes=args.probes,
            window=args.window,
            refresh=args.refresh,
            bins=args.bins,
            raster_rows=args.raster_rows,
            duration=args.duration,
            once=args.once,
            web=args.web,
            host=args.host,
            web_allow_origins=args.web_allow_origins,
            width=args.width,
            wait_net=args.wait_net,
        )
    )
