"""``spikestream record``: save what a running service publishes to an ``.npz`` file.

The tool: its MQTT connection, its timing and its lines. What becomes of the frames (the
file's layout, the rows, gaps and segments, the frames skipped and why, the memory
budget) is :mod:`spikestream_client.recorder`'s, whose doc says it all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spikestream_client.client import SpikestreamClient
from spikestream_client.codec import topics
from spikestream_client.errors import ConfigError
from spikestream_client.files import same_file
from spikestream_client.logs import report
from spikestream_client.npz import save_npz
from spikestream_client.recorder import (
    DEFAULT_MAX_RECORD_BYTES,
    EXIT_CUT_SHORT,
    Recorder,
    plot_arrays,
)
from spikestream_client.tool import find_network, interruptible_sleep, run_tool, subscribe_frames

__all__ = ["RecordOptions", "main", "run"]


@dataclass
class RecordOptions:
    """Everything ``spikestream record`` needs (see its ``--help``)."""

    net: str
    out: Path
    broker: str | None = None
    prefix: str = "spikestream"
    duration: float | None = None
    plot: Path | None = None
    probes: Sequence[str] | None = None
    quiet: bool = False
    wait_net: float = 3.0
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES


def _say(options: RecordOptions, text: str) -> None:
    if not options.quiet:
        report("record", text)


async def run(options: RecordOptions, stop: asyncio.Event) -> int:
    """Record until ``--duration`` or Ctrl-C/SIGTERM, then write the file(s)."""
    if options.duration is not None and not (
        math.isfinite(options.duration) and options.duration > 0
    ):
        raise ConfigError(f"--duration must be > 0 seconds, got {options.duration}")
    if not options.out.parent.is_dir():
        raise ConfigError(
            f"cannot write {str(options.out)!r}: folder {str(options.out.parent)!r} does not exist"
        )
    if options.out.exists() and not options.out.is_file():
        # The writer refuses it too, but only once the recording is done (and lost).
        raise ConfigError(
            f"cannot write {str(options.out)!r}: it exists and is not a regular file (a "
            "device, FIFO, socket or folder); expected a path for an .npz file"
        )
    if options.plot is not None:
        from spikestream_client.plotting import check_plot

        check_plot(options.plot)  # an unknown suffix was a traceback after the recording
        if same_file(options.plot, options.out):
            # The plot was drawn over the file just written: the recording was lost.
            raise ConfigError(
                f"--out and --plot both name {str(options.out)!r}; expected two files"
            )
    if options.max_bytes < 1:
        raise ConfigError(
            "--max-mib must be a finite number of MiB > 0, at least one byte; "
            f"got {options.max_bytes} bytes"
        )
    recorder = Recorder(
        options.net,
        set(options.probes) if options.probes else None,
        max_bytes=options.max_bytes,
        warn=lambda line: _say(options, line),
    )
    async with SpikestreamClient(options.broker, prefix=options.prefix, role="record") as client:
        recorder.description = await find_network(
            client, options.net, options.wait_net, options.probes
        )
        subscribe_frames(client, options.net, options.probes, recorder.on_frame)
        client.on_stats(options.net, recorder.on_stats)
        watcher = client.status(options.net)
        recorder.started = time.time()
        length = "until Ctrl-C" if options.duration is None else f"for {options.duration:g} s"
        outs = topics(options.prefix, options.net).outs_filter
        _say(options, f"recording {outs} {length} -> {options.out}")
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            left = None if options.duration is None else options.duration - elapsed
            if left is not None and left <= 0:
                break
            if await interruptible_sleep(stop, 1.0 if left is None else min(1.0, left)):
                break
            recorder.on_status(watcher.current)
            skipped = recorder.skipped_total
            _say(
                options,
                f"{recorder.frames} frames, {recorder.tracker.missing} lost"
                + (f", {skipped} skipped" if skipped else ""),
            )
            if recorder.over_budget:
                break  # nothing more can be recorded; write what was

        recorder.on_status(watcher.current)
        recorder.refused = client.statistics().frames_refused
    arrays = recorder.arrays()
    save_npz(options.out, arrays, compress=True)
    ticks = int(arrays["t"].shape[0])
    lost = int(arrays["gaps"].sum())
    segments = int(json.loads(str(arrays["meta"]))["segments"])
    # Segments, restarts and skipped frames always: a forged copy, restart or frame of
    # the wrong shape must not pass unnoticed behind "0 frames lost".
    _say(
        options,
        f"wrote {options.out}: {ticks} ticks ({ticks * float(arrays['dt']):.3f} s) of "
        f"{len(recorder.segments)} probes from {recorder.frames} frames; "
        f"{recorder.tracker.missing} frames lost, {lost} ticks with gaps, "
        f"{segments} segments, {recorder.tracker.restarts} restarts, "
        f"{recorder.skipped_total} frames skipped, {recorder.refused} frames refused",
    )
    if recorder.refused:
        # Said even with --quiet: the client logs only the first refusal and every 1000th.
        outs = topics(options.prefix, options.net).outs_filter
        report(
            "record",
            f"{recorder.refused} frames on {outs} refused (undecodable, retained or past the "
            "size limit; the first is logged)",
            level=logging.WARNING,
        )
    if recorder.over_budget or recorder.skipped:
        # Said even with --quiet: frames that came are not in the file (and why).
        report("record", recorder.skipped_text(), level=logging.WARNING)
    if recorder.narrow:  # said even with --quiet, and in the exit code
        report("record", f"incomplete: {recorder.narrow_text()}", level=logging.WARNING)
    if options.plot is not None:
        from spikestream_client.plotting import plot_run

        plot_run(plot_arrays(arrays), options.plot, title=f"{options.net} (recorded)")
        _say(options, f"wrote {options.plot}")
    return EXIT_CUT_SHORT if recorder.over_budget or recorder.narrow else 0


def main(options: RecordOptions) -> int:
    """Run the recorder; returns the exit code."""
    return run_tool(lambda stop: run(options, stop))
