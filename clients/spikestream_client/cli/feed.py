"""``spikestream feed``: publish a signal to an input of a running service.

A thin argparse wrapper; the work is done by :mod:`spikestream_client.feed`, imported
only when the command runs.
"""

from __future__ import annotations

import argparse

from spikestream_client.cli.clientargs import add_connection_args, add_find_args, mib_bytes


def _vector(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or comma-separated numbers, got {text!r}"
        ) from None


#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "publish a signal (sin, square, constant, noise, a file, stdin) to an input"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``feed`` subcommand."""
    p = sub.add_parser(
        "feed",
        help=SUMMARY,
        description=(
            "Publish SIGNAL to input NAME of network NET, on <prefix>/<net>/in/<name>, at "
            "--rate messages per second on absolute deadlines (no drift), for --duration "
            "seconds or until Ctrl-C/SIGTERM. SIGNAL is sin, square, constant, noise, stdin "
            "(one value or vector per line), or a .npy/.csv file replayed in time (a CSV "
            "whose header starts with t or time plays its rows at those times, at most "
            "--rate per second)."
        ),
        epilog=(
            "examples:\n"
            "  spikestream feed --net seed --input u sin --freq 0.5 --amp 0.8\n"
            "  spikestream feed --net seed --input u constant --value 0.3 --duration 5\n"
            "  spikestream feed --net seed --input u recording.csv --loop\n"
            "  sensor-reader | spikestream feed --net seed --input u stdin"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "signal",
        metavar="SIGNAL",
        help="sin | square | constant | noise | stdin | FILE (a .npy or .csv file of at "
        "most 64 MiB, or --max-mib, read whole before the feed starts)",
    )
    add_connection_args(p)
    add_find_args(p, skippable=True)
    p.add_argument("--input", required=True, metavar="NAME", help="input name, e.g. u")
    p.add_argument(
        "--rate",
        type=float,
        help="messages per second, at most 1000 (default: 100); a timed CSV plays its "
        "rows at their times, and --rate (default there: 1000) caps how many go out per "
        "second: rows due closer together go out one per 1/rate, the newest due, the "
        "others counted as skipped",
    )
    p.add_argument(
        "--duration", type=float, metavar="S", help="seconds to run (default: until stopped)"
    )
    p.add_argument("--freq", type=float, default=1.0, help="sin/square frequency in Hz (1)")
    p.add_argument("--amp", type=float, default=1.0, help="amplitude; std for noise (1)")
    p.add_argument("--offset", type=float, default=0.0, help="added to sin/square/noise (0)")
    p.add_argument("--value", type=_vector, metavar="X[,Y...]", help="constant value (or vector)")
    p.add_argument("--duty", type=float, default=0.5, help="square: fraction high (0.5)")
    p.add_argument("--seed", type=int, default=0, help="noise: random seed, >= 0 (0)")
    p.add_argument(
        "--max-mib",
        type=float,
        # feed_sources.MAX_SIGNAL_FILE_BYTES in MiB, not imported: the parser is built
        # without numpy (a test holds the two equal).
        default=64.0,
        metavar="N",
        help="the largest signal FILE read, in MiB (default 64); its samples are held in "
        "memory whole, as float64: up to 4x the file from a CSV, 8x from a .npy of "
        "one-byte values",
    )
    p.add_argument(
        "--dim",
        type=int,
        help="vector size for generated signals; stdin: expected values per line; at "
        "most 7279, the most one message of 64 KiB holds (default: the input's dim from "
        "the network's describe document; else 1, and for stdin the first line)",
    )
    p.add_argument(
        "--loop",
        action="store_true",
        help="files: start again at the end (a timed CSV's times must not all be equal)",
    )
    p.add_argument(
        "--timestamp",
        choices=("none", "wall", "signal"),
        default="none",
        help="send {t, x} maps with t = Unix time (wall) or signal time (signal); "
        "default: bare values",
    )
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=0, help="MQTT QoS (0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no start line or summary")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the feed; returns the exit code."""
    from spikestream_client.feed import FeedOptions, check_options
    from spikestream_client.feed import main as feed_main

    options = FeedOptions(
        net=args.net,
        input=args.input,
        signal=args.signal,
        broker=args.broker,
        prefix=args.prefix,
        rate=args.rate,
        duration=args.duration,
        freq=args.freq,
        amp=args.amp,
        offset=args.offset,
        value=args.value,
        duty=args.duty,
        seed=args.seed,
        dim=args.dim,
        loop=args.loop,
        timestamp=args.timestamp,
        qos=args.qos,
        quiet=args.quiet,
        wait_net=None if args.no_check else args.wait_net,
        max_file_bytes=mib_bytes("--max-mib", args.max_mib),
    )
    check_options(options)  # the flags alone: before any file is read or broker reached
    return feed_main(options)
