"""The error client of ``examples/learn.toml``: reads the probes, publishes the error.

PES needs an error signal to learn from. For ``learn.toml`` the connection ``a -> b``
should pass ``u`` through, so the error is ``y - u``: this client subscribes to the frames
of the probes ``y`` (the decoded output) and ``u`` (the input), and publishes their
difference on the error input ``err`` at ``--rate`` Hz. ``err`` has a TTL of 0.2 s, so
learning stops by itself when this client stops.

    bash .ci/setup
    .venv/bin/spikestream serve examples/learn.toml &
    .venv/bin/spikestream feed --net learn --input u sin --freq 0.5 &
    .venv/bin/python examples/learn_error.py --duration 20

It prints one JSON line per second (the mean |y - u| over that second; it falls as the
connection learns) and a summary at the end: the mean |y - u| over the first and the last
``--window`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

from spikestream_client import Frame, SpikestreamClient, SpikestreamError, ValueFrame


async def run(args: argparse.Namespace) -> dict[str, object]:
    latest: dict[str, float] = {}
    errors: list[tuple[float, float]] = []  # (seconds since start, |y - u|) of each sent
    unsent = 0

    def on_frame(frame: Frame) -> None:
        # A callback, not a queue: the loop below wants the newest value, not each one.
        if isinstance(frame, ValueFrame) and frame.header.ticks > 0:
            latest[frame.header.probe] = float(frame.data[-1].reshape(-1)[0])

    async with SpikestreamClient(args.broker, prefix=args.prefix, role="learn-error") as client:
        for probe in (args.target, args.output):
            client.on_frame(args.net, probe, on_frame)
        start = time.monotonic()
        period = 1.0 / args.rate
        deadline = start
        reported = 0
        while args.duration is None or time.monotonic() - start < args.duration:
            deadline += period
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            if args.target not in latest or args.output not in latest:
                continue  # no frames yet: send nothing rather than a made-up error
            error = latest[args.output] - latest[args.target]
            # Not awaited: a value the link cannot queue now is stale by the next one.
            if not client.publish_input_nowait(args.net, args.error, error):
                unsent += 1  # not connected, or the link's queue is full: not published
                continue
            now = time.monotonic() - start
            errors.append((now, abs(error)))
            if not args.quiet and int(now) > reported:
                reported = int(now)
                second = float(np.mean([e for t, e in errors if t >= now - 1.0]))
                print(json.dumps({"t": reported, "abs_error": round(second, 4)}))
        # Frames on the probes' topics that failed to decode or validate: counted by the
        # client, never fatal.
        refused = client.statistics().frames_refused
    w = args.window
    first = [e for t, e in errors if t < errors[0][0] + w] if errors else []
    last = [e for t, e in errors if t > errors[-1][0] - w] if errors else []
    return {
        "published": len(errors),
        "window_s": w,
        "abs_error_first": round(float(np.mean(first)), 4) if first else None,
        "abs_error_last": round(float(np.mean(last)), 4) if last else None,
        "not_frames": refused,
        "unsent": unsent,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[user:pass@]host:port")
    p.add_argument("--prefix", default="spikestream", help="topic prefix (spikestream)")
    p.add_argument("--net", default="learn", help="network name (learn)")
    p.add_argument("--target", default="u", help="probe with the value to learn (u)")
    p.add_argument("--output", default="y", help="probe with the learned output (y)")
    p.add_argument("--error", default="err", help="error input of the PES rule (err)")
    p.add_argument("--rate", type=float, default=50.0, help="error messages per second (50)")
    p.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    p.add_argument(
        "--window",
        type=float,
        default=2.0,
        help="seconds at the start and at the end averaged in the summary (2; a whole "
        "period of the input makes the two comparable)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    args = p.parse_args(argv)
    if not 0 < args.rate <= 1000:
        p.error(f"--rate must be in (0, 1000] Hz; got {args.rate}")
    if not 0 < args.window < 3600:
        p.error(f"--window must be in (0, 3600) s; got {args.window}")
    try:
        summary = asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except SpikestreamError as err:  # no broker, refused credentials, a bad URL
        print(f"learn_error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
