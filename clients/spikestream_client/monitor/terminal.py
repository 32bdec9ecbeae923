"""``spikestream monitor``: the live terminal view of a running network (rich).

Frames are decoded as they arrive and handed to a :class:`~.aggregate.MonitorModel`,
which only counts and appends; about ten times a second the model folds what arrived
into its windows and the view is redrawn from the resulting
:class:`~.aggregate.Snapshot`. Frames never wait in a queue for the display, so the
monitor keeps up with thousands of frames per second.

The connection and the model come from :mod:`.session`; ``--web PORT`` serves the
browser view instead (:mod:`.web`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from spikestream_client.client import SpikestreamClient
from spikestream_client.monitor.aggregate import (
    RECENT_KEYS,
    RECENT_WINDOWS,
    InputSnapshot,
    MonitorModel,
    ProbeSnapshot,
    Snapshot,
    finite_float,
    limits_text,
    recent_stat,
)
from spikestream_client.monitor.session import MonitorOptions, open_session, refresh_model
from spikestream_client.safetext import printable, safe_text
from spikestream_client.tool import interruptible_sleep

__all__ = ["auto_bins", "render", "run_terminal", "sparkline"]

SPARK: Final = "▁▂▃▄▅▆▇█"
SHADES: Final = " ░▒▓█"
NO_DATA: Final = "·"


def sparkline(values: npt.NDArray[np.float64], low: float = 0.0, high: float | None = None) -> str:
    """One character per value, ``▁`` at ``low`` to ``█`` at ``high`` (default: the
    maximum); NaN (no data) shows as ``·``."""
    finite = np.isfinite(values)
    if not finite.any():
        return NO_DATA * len(values)
    top = float(np.nanmax(values)) if high is None else high
    span = top - low
    out = []
    for v, ok in zip(values.tolist(), finite.tolist(), strict=True):
        if not ok:
            out.append(NO_DATA)
        elif span <= 0:
            out.append(SPARK[0])
        else:
            level = int((v - low) / span * (len(SPARK) - 1) + 0.5)
            out.append(SPARK[min(max(level, 0), len(SPARK) - 1)])
    return "".join(out)


def _raster(raster: npt.NDArray[np.float64]) -> str:
    """Rows of shade characters, darker for higher rates; ``·`` where no data."""
    if raster.size == 0:
        return ""
    finite = np.isfinite(raster)
    top = float(raster[finite].max()) if finite.any() else 0.0
    lines = []
    for row, ok in zip(raster, finite, strict=True):
        chars = []
        for v, good in zip(row.tolist(), ok.tolist(), strict=True):
            if not good:
                chars.append(NO_DATA)
            elif top <= 0 or v <= 0:
                chars.append(SHADES[0])
            else:
                chars.append(SHADES[1 + min(int(v / top * (len(SHADES) - 1)), len(SHADES) - 2)])
        lines.append("".join(chars))
    return "\n".join(lines)


def _num(x: object, fmt: str = "{:.1f}", none: str = "-") -> str:
    # Stats come from the bus as JSON: anything but a finite number (a string, inf, an
    # integer of 400 digits that no float holds) shows as `none`.
    value = finite_float(x)
    return none if value is None else fmt.format(value)


def _ms(x: float) -> str:
    return _num(x * 1e3, "{:.1f}")


def _status_text(status: str | None) -> Text:
    if status == "online":
        return Text("● online", style="bold green")
    if status == "offline":
        return Text("● offline", style="bold red")
    return safe_text(f"● {status or 'unknown'}", "yellow", limit=60)


def _stat(stats: dict[str, Any], key: str) -> str:
    """A stats value for display: numbers as they are, anything else made printable."""
    value = stats.get(key, "-")
    return str(value) if type(value) is int else printable(value, 30)


def _recent(stats: dict[str, Any]) -> str:
    """The last 1 s and 10 s: what is happening now, beside the since-start line."""
    parts = []
    for window in RECENT_WINDOWS:
        rf, p99, late_max, over, work, steal = (recent_stat(stats, window, k) for k in RECENT_KEYS)
        # Host steal: on a VM, late ticks beside it were the hypervisor's doing.
        parts.append(
            f"{window.removeprefix('window_')}: RTF {_num(rf, '{:.3f}')}  "
            f"late p99 {_num(p99, '{:.2f}')} ms  max {_num(late_max, '{:.2f}')} ms  "
            f"> 1 ms {_num(over, '{:.3f}')} %  work p99 {_num(work, '{:.3f}')} ms  "
            f"steal {_num(steal, '{:.1f}')} %"
        )
    return "   ".join(parts)


def _header(snap: Snapshot, broker: str) -> Table:
    svc = snap.service
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    link = Text("connected", style="green") if svc.connected else Text("reconnecting", "red")
    # Every string from the bus goes in as Text (never parsed as markup) after
    # printable() has removed escape sequences and control characters.
    top = Text.assemble(
        ("net ", "dim"), safe_text(snap.net, "bold"), "  ", _status_text(svc.status), "  ",
        ("link ", "dim"), link, ("  broker ", "dim"), safe_text(broker),
    )  # fmt: skip
    grid.add_row("spikestream", top)
    st = svc.stats
    if st is not None:
        paused = ("  PAUSED", "bold yellow") if st.get("paused") else ""
        # The tick thread waits for a CPU (busy neighbours): why ticks run late, if they do.
        busy = ("  CPU CONTENDED", "yellow") if st.get("spin_contended") is True else ""
        # Schedule dropped since start (realigns, slips, resumes): how far simulated time
        # has fallen behind the wall clock's grid, for good.
        lost = finite_float(st.get("behind_ms"))
        # From 0.001 ms; inf, or a number no float holds, shows nothing.
        shown = lost is not None and lost >= 0.0005
        behind = (_num(lost, "  BEHIND {:.3f} ms", "") if shown else "", "yellow")
        stale = svc.stats_age is not None and svc.stats_age >= 3
        age = f" (stale {svc.stats_age:.0f} s)" if stale else ""
        line = (
            f"tick {_stat(st, 'tick')}  t {_num(st.get('t'), '{:.3f}')} s  "
            f"RTF {_num(st.get('realtime_factor_actual'), '{:.3f}')}  "
            f"late p99 {_num(st.get('late_p99_ms'), '{:.2f}')} ms  "
            f"max {_num(st.get('late_max_ms'), '{:.2f}')} ms  "
            f"overruns {_stat(st, 'overruns')}  dropped {_stat(st, 'dropped')}"
        )
        grid.add_row("service", Text.assemble(line, paused, busy, behind, age))
        grid.add_row("recent", Text(_recent(st)))
    else:
        grid.add_row("service", Text("no stats yet", style="dim"))
    gap_style = "bold red" if svc.gaps else "green"
    grid.add_row(
        "frames",
        Text.assemble(
            f"RTF {_num(svc.rtf_frames, '{:.3f}')}  late max {_ms(svc.late_max_frames)} ms  ",
            (f"gaps {svc.gaps} ({svc.missing} frames missing)", gap_style),
            f"  dropped {svc.dropped}",
        ),
    )
    # Probes past the model's bounds: counted and said, never left out silently.
    limits = limits_text(snap)
    if limits:
        grid.add_row("limits", Text(limits, style="yellow"))
    if svc.events:
        counts = "  ".join(f"{printable(k, 40)}×{v}" for k, v in sorted(svc.events.items()))
        last = svc.last_events[-1] if svc.last_events else {}
        detail = last.get("error") or last.get("input") or last.get("cmd") or ""
        kind = printable(last.get("event", ""), 40)
        grid.add_row("events", safe_text(f"{counts}  last: {kind} {printable(detail, 80)}"))
    return grid


def _common(p: ProbeSnapshot) -> list[RenderableType]:
    gaps = Text(f"{p.gaps}/{p.missing}", style="bold red" if p.gaps else "")
    return [_num(p.fps, "{:.0f}"), gaps, str(p.dropped), _ms(p.late_max), _ms(p.lag)]


def _stat_columns(table: Table) -> None:
    for name in ("fps", "gaps/miss", "dropped", "late ms", "lag ms"):
        table.add_column(name, justify="right", no_wrap=True)


def _spike_table(probes: list[ProbeSnapshot], window: float) -> Table:
    table = Table(title=f"spike probes (last {window:g} s)", title_justify="left", expand=False)
    table.add_column("probe", no_wrap=True, min_width=max(len(printable(p.name)) for p in probes))
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("rate Hz", justify="right", no_wrap=True)
    table.add_column("population rate", no_wrap=True)
    table.add_column("raster (neuron groups)", no_wrap=True)
    _stat_columns(table)
    for p in probes:
        table.add_row(
            safe_text(p.name),
            str(p.size),
            _num(p.rate),
            sparkline(p.rates),
            _raster(p.raster),
            *_common(p),
        )
    return table


def _value_table(probes: list[ProbeSnapshot], window: float) -> Table:
    table = Table(title=f"value probes (last {window:g} s)", title_justify="left", expand=False)
    table.add_column("probe", no_wrap=True, min_width=max(len(printable(p.name)) for p in probes))
    table.add_column("shape", justify="right", no_wrap=True)
    # One number per line: a column too narrow for a row of numbers must never cut one in
    # the middle of its digits.
    table.add_column("latest", justify="right", no_wrap=True)
    table.add_column("range", justify="right", no_wrap=True)
    table.add_column("trace [0]", no_wrap=True)
    _stat_columns(table)
    for p in probes:
        latest = "\n".join(f"{v:+.3f}" for v in p.latest[:4].tolist())
        size = math.prod(p.size) if isinstance(p.size, tuple) else p.size
        if size > 4:
            latest += "\n…"
        table.add_row(
            safe_text(p.name),
            str(p.size),
            latest,
            f"{_num(p.low, '{:+.2f}')}\n{_num(p.high, '{:+.2f}')}",
            sparkline(p.trace, low=p.low, high=p.high) if math.isfinite(p.low) else NO_DATA,
            *_common(p),
        )
    return table


def _input_state(item: InputSnapshot) -> Text:
    if item.stale is None:
        return Text("-")
    return Text("STALE", style="bold red") if item.stale else Text("fresh", style="green")


def _input_table(snap: Snapshot) -> Table:
    """Each input's age and whether it runs on its default, from the latest stats."""
    table = Table(title="inputs (latest stats)", title_justify="left", expand=False)
    table.add_column("input", no_wrap=True, max_width=60)
    table.add_column("age ms", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for item in snap.inputs:
        table.add_row(safe_text(item.name, limit=60), _num(item.age_ms), _input_state(item))
    if snap.inputs_hidden:
        table.caption = f"{snap.inputs_hidden} more inputs not shown"
        table.caption_justify = "left"
    return table


def render(snap: Snapshot, broker: str = "") -> RenderableType:
    """The whole terminal view of ``snap``."""
    spikes = [p for p in snap.probes if p.kind == "spikes"]
    values = [p for p in snap.probes if p.kind == "values"]
    parts: list[RenderableType] = [_header(snap, broker)]
    if spikes:
        parts.append(_spike_table(spikes, snap.window))
    if values:
        parts.append(_value_table(values, snap.window))
    if snap.inputs:
        parts.append(_input_table(snap))
    if not snap.probes:
        parts.append(Text("waiting for frames…", style="dim"))
    return Group(*parts)


def auto_bins(width: int) -> int:
    """Time bins per sparkline/raster so that the spike table fits ``width`` columns
    (its other columns and borders take about 96), between 8 and 30."""
    return max(8, min(30, (width - 96) // 2))


async def run_terminal(options: MonitorOptions, stop: asyncio.Event) -> int:
    """Run the terminal view until ``--duration``, ``--once`` or Ctrl-C; returns the exit
    code."""
    console = Console(width=options.width)
    if not console.is_terminal and options.width is None:
        console = Console(width=180)
    async with open_session(options, bins=options.bins or auto_bins(console.width)) as (
        client,
        model,
    ):
        broker = client.broker.redacted()
        started = time.monotonic()
        period = 1.0 / options.refresh
        if options.once:
            await _settle(client, model, options, stop, started)
            refresh_model(client, model, options.net)
            console.print(render(model.snapshot(), broker))
            return 0
        quiet = logging.getLogger("spikestream.transport")
        level = quiet.level
        if console.is_terminal:
            quiet.setLevel(logging.ERROR)  # link chatter would tear the live display
        try:
            with Live(console=console, auto_refresh=False, screen=False) as live:
                while True:
                    refresh_model(client, model, options.net)
                    live.update(render(model.snapshot(), broker), refresh=True)
                    elapsed = time.monotonic() - started
                    if options.duration is not None and elapsed >= options.duration:
                        break
                    wait = period - (elapsed % period)
                    if options.duration is not None:
                        wait = min(wait, options.duration - elapsed)
                    if await interruptible_sleep(stop, wait):
                        break
        finally:
            quiet.setLevel(level)
    return 0


async def _settle(
    client: SpikestreamClient,
    model: MonitorModel,
    options: MonitorOptions,
    stop: asyncio.Event,
    started: float,
) -> None:
    """For ``--once``: wait until a window of frames and a stats message (the service
    line and the inputs' ages) have arrived, at most window + 5 s."""
    limit = started + options.window + 5.0
    first: float | None = None
    while time.monotonic() < limit and not stop.is_set():
        if model.frames and first is None:
            first = time.monotonic()
        if first is not None and time.monotonic() - first >= options.window:
            snap = model.snapshot()
            if model.stats is not None and all(p.covered > 0.5 for p in snap.probes):
                return
        await interruptible_sleep(stop, 0.05)
