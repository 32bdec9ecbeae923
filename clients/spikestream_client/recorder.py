"""The recorder behind ``spikestream record``: frames as they arrive, to the arrays of an
``.npz`` file (the tool itself, its MQTT connection and its lines: :mod:`.record`).

The file follows the layout of ``spikestream run`` (``docs/NPZ.md``), written by the same
module (:mod:`spikestream_client.npz`), as far as frames allow. The recorder only sees
probes, not the simulator, so:

* each probe is stored under its **probe name**, one row per tick: spike probes as
  ``(ticks, n)`` uint8 0/1, value probes as ``(ticks, *shape)`` in the network's dtype
  (``dtype``: as ``run`` stores them; the service's ``describe`` document names it, and
  the float32 frames convert exactly; float32 without a document); there are no
  ``<pop>.spikes`` or build arrays (a spike frame does not say which population its
  probe targets);
* ``t``: ``(ticks,)`` simulated time at the end of each tick, ``(tick + 1) * dt``;
  ``tick``: ``(ticks,)`` the service's tick index of each row;
* ``gaps``: ``(ticks,)`` bool, True where any probe has no data for that tick (its frame
  was lost); ``<probe>.gaps`` the same per probe. Lost value rows are NaN, lost spike
  rows 0;
* ``segment``: ``(ticks,)`` int32, incremented each time the service's ticks went back
  (a ``reset``, ``restore`` or restart) or jumped more than 100,000 ticks ahead (a
  ``restore``); rows of a later segment follow those of the earlier one. Smaller forward
  jumps (lost frames, ticks skipped by ``--overrun skip``) are rows marked in ``gaps``;
* ``dt``, ``network``, ``dtype``; ``meta``: JSON with the keys ``run`` writes too
  (:data:`~spikestream_client.npz.COMMON_META`), ``probes`` mapping each probe to its
  kind in the network file (``spikes``, ``filtered``, ``decoded``, ``voltage``,
  ``input``) as the service's ``describe`` document gives it (without one, an older
  service: ``spikes``, ``input`` for a value probe named after one of the inputs listed
  in its stats, else ``values``), the document itself under ``describe``, plus what the
  recording saw: frames, lost frames and gaps per probe, segments, the last stats
  message and status.

Rows run from the first tick that every probe covered to the last tick every probe
covered, so joining mid-frame or stopping mid-frame does not count as loss. Anyone who
may publish on ``out/+`` can add a probe, though, and one stray or forged frame far from
the others' ticks would leave few ticks common to all, or none: so when the common
ticks of a segment are fewer than half of the longest probe's span, the probes that
delivered fewer than half as many frames as the busiest are left out of the rule (their
rows outside the span are gaps; a span cannot tell, since one forged frame may claim
100,000 ticks), the rows run over the ticks the others have in common (all of them, if
even those do not overlap), and :meth:`Recorder.narrow_text` names the probes;
``record`` says so and exits with 3. When no probe is left out the rule stands, unless
it leaves no row at all: then the rows cover every probe's ticks, said the same way.

The arrays are built at the end, while the frames are still held, and the size of both
follows from the frames, which come from the bus: a frame that would take the arrays
(``rows × (bytes per row of every probe)``, counting gap rows) plus the frames held
(payload bytes and about 1 KiB each) past ``max_bytes`` (1 GiB by default) ends the
recording there. It and every later frame are counted in ``Recorder.over_budget`` and
reported, and the file holds what was recorded before it.

Frames come from anyone who may publish on ``out/+``, so a frame is skipped, counted per
probe and reason (:meth:`Recorder.skipped_text`, ``meta.skipped_frames``, the summary
line, and a warning the first time for each probe and reason) when:

* its probe is named like one of the file's own keys;
* its kind or shape (``n`` of a spike probe) differs from the probe's entry in the
  network's ``describe`` document, or its ``dt`` from the document's: the file would
  contradict its own ``meta`` (and ``--plot`` choke on it). Without a document, or for
  a probe the document does not list, the probe's first frame sets its kind, ``dt`` and
  ``n`` or shape, and frames that change them are skipped;
* its ``seq`` went back (a frame with its ``seq`` already recorded, or below the next one
  expected) and it is not a restart. The service numbers ``seq`` from 0 in each new
  process and never goes back within one (a ``reset`` or ``restore`` moves ``tick``
  while ``seq`` goes on; ``--resume`` continues ``seq`` past anything the previous
  process could have sent). A restarted process also starts its ticks again (from 0,
  or a snapshot's tick), so a ``seq`` that went back is a restart only when the frame's
  ``tick`` is before the probe's last frame and its ``wall`` later than every recorded
  frame of the probe: it opens a new segment. Anything else is a copy (a broker's
  redelivery, a replay, a forgery) or a late frame. (A service restarted after
  publishing only one frame, at the tick it starts from again, is taken for a copy:
  its first frame is skipped, the next ones are kept);
* its ticks overlap ticks already recorded in the probe's current segment: rows are
  never written twice, so a conflicting copy cannot replace what was recorded first.
  (Ticks going back before the probe's last frame open a new segment instead: a
  ``reset``, ``restore`` or restart.)

Restarts and segments are counted in the summary line too: a publisher can still forge
what looks like a reset or a restart, but never silently.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import Description, Frame, SpikeFrame, ValueFrame
from spikestream_client.errors import ConfigError
from spikestream_client.gaps import Gap, GapTracker
from spikestream_client.npz import (
    COMMON_KEYS,
    TICK_DTYPE,
    WIRE_DTYPE,
    header_arrays,
    layout_meta,
    time_of,
    value_dtype,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "EXIT_CUT_SHORT",
    "RESERVED",
    "NarrowSpan",
    "Recorder",
    "plot_arrays",
]

AnyArray = npt.NDArray[Any]
_MAX_GAPS_IN_META: Final = 1000
DEFAULT_MAX_RECORD_BYTES: Final = 2**30
"""Default bound of the recording's arrays plus the frames held to build them, in bytes
(1 GiB); see the module doc."""
#: ``record``'s exit code when the recording is incomplete: the budget ended it early, or
#: the probes' tick spans barely overlapped (what was recorded is written all the same).
EXIT_CUT_SHORT: Final = 3
_FRAME_OVERHEAD: Final = 1024
"""Bytes a held frame costs besides its payload arrays (measured about 700: the frame,
header and array objects, the bytes they keep alive, its list slot and ``seq`` entry)."""
# Why a frame was skipped, as skipped_text() says it.
_RESERVED_NAME: Final = "its name is one of the file's own keys"
_CHANGED_KIND: Final = "it changed kind or dt mid-recording"
_CHANGED_SIZE: Final = "its n or shape differs from the probe's first frame"
_REPEATED_SEQ: Final = "a frame with its seq was already recorded: a copy or a replay"
_LATE_SEQ: Final = (
    "its seq went back but it is no restart (its ticks did not go back before the probe's "
    "last frame, or its wall is not later): a late frame or a replay"
)
_OVERLAP: Final = (
    "its ticks were already recorded in the probe's current segment: a conflicting copy"
)
_UNDESCRIBED: Final = "its kind, shape or dt differs from the network's describe document"
_SHOWN_PROBES: Final = 5
_MAX_WARNINGS: Final = 20
#: Probes and reasons counted apart among skipped frames, at most; frames of further
#: probes are counted under :data:`OTHER_PROBES` (a hostile publisher inventing a probe
#: name per frame grew the counts without bound, outside ``--max-mib``).
MAX_SKIP_KEYS: Final = 1000
#: The ``meta.skipped_frames`` key of the probes past :data:`MAX_SKIP_KEYS` (no probe's
#: name: the naming rule allows no parenthesis or space).
OTHER_PROBES: Final = "(other probes)"
"""Warnings :class:`Recorder` gives while recording (one per probe and reason); past
them one line says the rest are only counted: a flood of invented probe names must not
flood the terminal."""
# The network file's probe kinds (a describe document's ``source``) each frame kind can
# carry: meta must never call a values array ``spikes`` (plots read it), nor the reverse.
_SOURCES: Final = {"spikes": ("spikes",), "values": ("filtered", "decoded", "voltage", "input")}
# Per row, whatever the probes: t (float64), tick (int64), segment (int32), gaps (bool).
_ROW_BYTES: Final = 8 + 8 + 4 + 1
RESERVED: Final = frozenset({*COMMON_KEYS, "segment", "gaps"})
"""Keys of the file itself: a probe with one of these names cannot be stored under it
(its frames are skipped and counted in ``skipped_frames``, never written over ``t``)."""


@dataclass
class _Segment:
    """One probe's frames between two tick rewinds."""

    frames: list[Frame] = field(default_factory=list)
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class NarrowSpan:
    """A segment whose probes' tick spans barely overlapped (see the module doc).

    Attributes:
        segment: Segment index.
        common: Ticks every probe covered.
        longest: Ticks of the longest probe span.
        kept: ``(lo, hi)``: the tick range the rows cover.
        left_out: ``{probe: (start, end)}``: the probes the rule left out, with their
            tick spans.
    """

    segment: int
    common: int
    longest: int
    kept: tuple[int, int]
    left_out: dict[str, tuple[int, int]]


def _payload_bytes(frame: Frame) -> int:
    """Bytes of the payload arrays ``frame`` keeps alive."""
    if isinstance(frame, ValueFrame):
        return int(frame.data.nbytes)
    # The wire arrays are read-only views of the payload: their sizes are what holding
    # the frame costs.
    parts = frame.wire()
    return sum(int(a.nbytes) for a in parts if a is not None)


def _common(present: Mapping[str, _Segment], first: bool, last: bool) -> tuple[int, int]:
    """``(lo, hi)``: the rows of one segment index (see the module doc): from the latest
    start in the first segment (else the earliest), to the earliest end in the last
    segment (else the latest)."""
    starts = [s.start for s in present.values()]
    ends = [s.end for s in present.values()]
    lo = max(starts) if first else min(starts)
    hi = min(ends) if last else max(ends)
    return lo, max(lo, hi)


class Recorder:
    """Collects one network's frames and turns them into the ``.npz`` arrays.

    Feed it with :meth:`on_frame`, :meth:`on_stats` and :meth:`on_status` (the client
    callbacks); call :meth:`arrays` at the end.

    Args:
        net: Network name.
        probes: Only these probes (None: all).
        max_jump: A forward jump of more than this many ticks between frames of a probe
            starts a new segment instead of being recorded as missing rows.
        max_bytes: Bound of the arrays :meth:`arrays` builds (gap rows included) plus
            the frames held until then, in bytes; the first frame beyond it ends the
            recording (see the module doc).
        warn: Called with one line (no prefix, no newline) the first time frames of a
            probe are skipped for a reason, at most :data:`_MAX_WARNINGS` times
            (None: silent; the counts are kept all the same).
    """

    def __init__(
        self,
        net: str,
        probes: set[str] | None = None,
        *,
        max_jump: int = 100_000,
        max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.net = net
        self.warn = warn
        self._warnings = 0
        self.max_jump = max_jump
        self.max_bytes = max_bytes
        # [lo, hi) tick span of each segment index over all probes, their summed length
        # (at least the rows arrays() makes) and the bytes of one row: kept per frame in
        # O(1), so the budget holds for the total, not only per gap (max_jump).
        self._spans: list[list[int]] = []
        self._rows_bound = 0
        self._row_bytes: dict[str, int] = {}
        self._held_bytes = 0  # payload bytes of the frames held, plus their overhead
        self.over_budget = 0
        """Frames not recorded because the arrays and the frames held would have exceeded
        ``max_bytes``."""
        # Per probe: the n or shape of its first frame, the seqs recorded since the
        # service (re)started, and the latest wall among them.
        self._size: dict[str, int | tuple[int, ...]] = {}
        self._seqs: dict[str, set[int]] = {}
        self._wall: dict[str, float] = {}
        self.narrow: list[NarrowSpan] = []
        """Segments whose probes' spans barely overlapped, found by :meth:`arrays`."""
        self.only = probes
        self.segments: dict[str, list[_Segment]] = {}
        self.kinds: dict[str, str] = {}
        self.tracker = GapTracker()
        self.gaps: list[Gap] = []
        self.missing: Counter[str] = Counter()
        self.frames = 0
        self.refused = 0  # frames the client refused before they came here (run() sets it)
        self.skip_reasons: Counter[tuple[str, str]] = Counter()
        """Frames skipped per ``(probe, reason)``."""
        self.stats: dict[str, Any] | None = None
        self.inputs: set[str] = set()
        self.status: str | None = None
        self.dt: float | None = None
        self.description: Description | None = None
        self.started = time.time()

    def on_frame(self, frame: Frame) -> None:
        """Keep one frame (cheap: the arrays are built at the end), or skip and count it
        (see the module doc)."""
        h = frame.header
        if self.only is not None and h.probe not in self.only:
            return
        if h.probe in RESERVED:
            self._skip(frame, _RESERVED_NAME)
            return
        size = frame.n if isinstance(frame, SpikeFrame) else frame.shape
        shape = (size,) if isinstance(size, int) else size
        described = self.description.probes.get(h.probe) if self.description else None
        if (described is not None and (frame.kind, shape) != (described.kind, described.shape)) or (
            self.description is not None and h.dt != self.description.dt
        ):
            # The document is what the service says it publishes: a frame that disagrees
            # is not the service's, and stored it would contradict meta (and the plot).
            self._skip(frame, _UNDESCRIBED, self._described_text(h.probe))
            return
        # Nothing is kept of a probe until one of its frames is: frames refused (past the
        # budget, say) under ever new invented names must not grow these maps.
        kind = self.kinds.get(h.probe, frame.kind)
        if kind != frame.kind or (self.dt is not None and h.dt != self.dt):
            self._skip(frame, _CHANGED_KIND)  # a probe cannot change kind or dt
            return
        if self._size.get(h.probe, size) != size:
            self._skip(frame, _CHANGED_SIZE)  # its rows would not fit the probe's array
            return
        seqs = self._seqs.get(h.probe, set())
        segments = self.segments.get(h.probe, [])
        last = segments[-1] if segments else None
        # Ticks went back before the probe's last frame (reset, restore, restart), or
        # jumped so far ahead (restore of a later snapshot) that filling the hole with
        # "no data" rows would waste memory: a new segment.
        back = last is not None and h.tick < last.frames[-1].header.tick
        new = last is None or back or h.tick - last.end > self.max_jump
        expected = self.tracker.expected(h.net, h.probe)
        restart = False
        if h.seq in seqs or (expected is not None and h.seq < expected):
            # Within one service process seq never goes back (a reset or restore moves
            # tick only, --resume continues seq): a seq that did is a new process only if
            # its ticks started again too and it came later than every recorded frame.
            # Anything else (a broker's redelivery, a replay, a copy with a later wall
            # and other rows) would hold rows twice or replace the real ones.
            if not (back and h.wall > self._wall[h.probe]):
                self._skip(frame, _REPEATED_SEQ if h.seq in seqs else _LATE_SEQ)
                return
            restart = True
        elif last is not None and not new and h.tick < last.end:
            if h.seq != expected:
                # Ticks this segment already holds, from a frame out of sequence:
                # whichever frame came first keeps them.
                self._skip(frame, _OVERLAP)
                return
            # The next frame in sequence, its ticks back inside the last frame's: a reset
            # or restore, which flushes a partial frame from where it began (a restore at
            # tick 1900 of a snapshot of tick 1500, with frames of 1000 ticks). A new
            # segment; recorded rows are still never written twice.
            new = True
        if self.over_budget or not self._fits(frame, len(segments) - (not new)):
            self.over_budget += 1  # the recording ends at the first frame beyond it
            return
        if restart:
            seqs.clear()  # the new process numbers its frames from 0 again
        self.dt = h.dt
        gap = self.tracker.check(h)
        if gap is not None:
            self.gaps.append(gap)
            self.missing[h.probe] += gap.missing
        segments = self.segments.setdefault(h.probe, segments)
        if new:
            segments.append(_Segment(start=h.tick, end=h.tick))
        segment = segments[-1]
        segment.frames.append(frame)
        segment.start = min(segment.start, h.tick)
        segment.end = max(segment.end, h.tick + h.ticks)
        self._size.setdefault(h.probe, size)
        self.kinds.setdefault(h.probe, kind)
        self._seqs.setdefault(h.probe, seqs).add(h.seq)
        self._wall[h.probe] = max(h.wall, self._wall.get(h.probe, h.wall))
        self.frames += 1

    def _described_text(self, probe: str) -> str:
        """What the describe document says of ``probe`` (for a warning)."""
        assert self.description is not None
        info = self.description.probes.get(probe)
        what = f"kind {info.kind}, shape {list(info.shape)}, " if info is not None else ""
        return f"described: {what}dt {self.description.dt:g}"

    @property
    def skipped(self) -> Counter[str]:
        """Frames skipped per probe (``meta.skipped_frames``); why: :attr:`skip_reasons`."""
        out: Counter[str] = Counter()
        for (probe, _), count in self.skip_reasons.items():
            out[probe] += count
        return out

    @property
    def skipped_total(self) -> int:
        """Frames skipped, over all probes and reasons."""
        return sum(self.skip_reasons.values())

    def _skip(self, frame: Frame, reason: str, detail: str = "") -> None:
        """Count ``frame`` as skipped for ``reason``; warn the first time for its probe
        and reason (``detail``: what to add to that warning)."""
        h = frame.header
        key = (h.probe, reason)
        if key not in self.skip_reasons and len(self.skip_reasons) >= MAX_SKIP_KEYS:
            key = (OTHER_PROBES, reason)
        first = key not in self.skip_reasons
        self.skip_reasons[key] += 1
        if not first or self.warn is None or self._warnings > _MAX_WARNINGS:
            return
        self._warnings += 1
        if self._warnings > _MAX_WARNINGS:
            self.warn(
                "more probes' frames are being skipped; further warnings are not shown "
                "(the counts are, at the end)"
            )
            return
        shape = f"n {frame.n}" if isinstance(frame, SpikeFrame) else f"shape {list(frame.shape)}"
        self.warn(
            f"skipping frames of probe {h.probe!r}: {reason} (first: seq {h.seq}, tick "
            f"{h.tick}, kind {frame.kind}, {shape}, dt {h.dt:g}"
            f"{'; ' + detail if detail else ''})"
        )

    def _fits(self, frame: Frame, index: int) -> bool:
        """Whether the arrays plus the frames held stay within ``max_bytes`` with ``frame``
        in segment index ``index``; if so, the spans, row sizes and held bytes are
        updated to include it."""
        h = frame.header
        # Spikes: uint8 0/1 per neuron; values: float64 at most (the network's dtype).
        width = frame.n if isinstance(frame, SpikeFrame) else 8 * math.prod(frame.shape)
        row_bytes = self._row_bytes.get(h.probe, width + 1)  # + the probe's gaps mask
        spans = self._spans
        lo, hi = spans[index] if index < len(spans) else (h.tick, h.tick)
        lo, hi = min(lo, h.tick), max(hi, h.tick + h.ticks)
        old = spans[index][1] - spans[index][0] if index < len(spans) else 0
        rows = self._rows_bound - old + (hi - lo)
        per_row = _ROW_BYTES + sum(self._row_bytes.values())
        per_row += 0 if h.probe in self._row_bytes else row_bytes
        # The frames are held until the arrays are built: repeated or overlapping frames
        # add no rows but cost their payload all the same.
        held = self._held_bytes + _payload_bytes(frame) + _FRAME_OVERHEAD
        if rows * per_row + held > self.max_bytes:
            return False
        if index < len(spans):
            spans[index] = [lo, hi]
        else:
            spans.append([lo, hi])
        self._rows_bound = rows
        self._row_bytes[h.probe] = row_bytes
        self._held_bytes = held
        return True

    def skipped_text(self) -> str:
        """The skipped frames in words (empty if none): at most :data:`_MAX_WARNINGS`
        probes and reasons named, the rest counted."""
        items = sorted(self.skip_reasons.items())
        parts = [
            f"{count} frames of probe {probe!r} skipped ({why})"
            for (probe, why), count in items[:_MAX_WARNINGS]
        ]
        if len(items) > _MAX_WARNINGS:
            # Said even with --quiet: 10,000 invented probe names made a 1 MB line.
            rest = items[_MAX_WARNINGS:]
            parts.append(
                f"{sum(count for _, count in rest)} more frames skipped, of {len(rest)} more "
                "probes or reasons (meta.skipped_frames counts each probe)"
            )
        if self.over_budget:
            parts.append(
                f"recording ended early: {self.over_budget} frames not recorded because "
                f"the arrays (rows × probe widths) and the frames held would have exceeded "
                f"{self.max_bytes} bytes"
            )
        return "; ".join(parts)

    def narrow_text(self) -> str:
        """The segments whose probes' spans barely overlapped, in words (empty if none)."""
        parts = []
        for n in self.narrow:
            out = [f"probe {p!r} (ticks {lo} to {hi})" for p, (lo, hi) in n.left_out.items()]
            if len(out) > _SHOWN_PROBES:
                out[_SHOWN_PROBES:] = [f"{len(out) - _SHOWN_PROBES} more"]
            who = f"left out of the common span: {', '.join(out)}; " if out else ""
            parts.append(
                f"segment {n.segment}: the probes' tick spans barely overlap (every probe "
                f"covered {n.common} ticks, the longest span is {n.longest}); {who}rows "
                f"kept: ticks {n.kept[0]} to {n.kept[1]}, where a probe without data is "
                "marked in <probe>.gaps (a stray or forged frame? --probe records only "
                "the probes named)"
            )
        return "; ".join(parts)

    def on_stats(self, stats: dict[str, Any]) -> None:
        """Remember the latest stats (and the input names it lists)."""
        self.stats = stats
        inputs = stats.get("inputs")
        if isinstance(inputs, dict):
            # The latest message's names only: accumulating them would let a stream of
            # invented stats grow this set without bound.
            self.inputs = {str(k) for k in inputs}

    def on_status(self, status: str | None) -> None:
        """Remember the latest status."""
        self.status = status

    def kind_of(self, probe: str) -> str:
        """The probe's kind in the network file (``meta.probes``): the describe document's
        ``source`` when it fits the probe's frame kind (the document's, which the stored
        frames match; the frames' for a probe it does not list), else ``spikes``, or
        ``input`` for a value probe named like an input (of the document or the stats),
        else ``values``."""
        document = self.description.document if self.description else {}
        entries = document.get("probes")
        entry = entries.get(probe) if isinstance(entries, dict) else None
        source = entry.get("source") if isinstance(entry, dict) else None
        info = self.description.probes.get(probe) if self.description else None
        kind = info.kind if info is not None else self.kinds[probe]
        if source in _SOURCES[kind]:
            return str(source)
        if kind == "spikes":
            return "spikes"
        inputs = self.inputs | set(self.description.inputs if self.description else ())
        return "input" if probe in inputs else "values"

    def _bounds(self) -> list[tuple[int, int]]:
        """``[(lo, hi)]`` tick range of each segment (see the module doc); the segments
        whose probes barely overlap go to :attr:`narrow`."""
        count = max(len(s) for s in self.segments.values())
        bounds = []
        self.narrow = []
        for e in range(count):
            present = {p: s[e] for p, s in sorted(self.segments.items()) if len(s) > e}
            first, last = e == 0, e == count - 1
            lo, hi = _common(present, first, last)
            longest = max(s.end - s.start for s in present.values())
            busiest = max(len(s.frames) for s in present.values())
            # At least half as many frames as the busiest probe: a tick span cannot tell
            # which probe strayed (one forged frame may claim 100,000 ticks).
            major = {p: s for p, s in present.items() if 2 * len(s.frames) >= busiest}
            if 2 * (hi - lo) < longest and len(major) < len(present):
                # A probe far from the rest (a stray or forged frame) must not empty or
                # shrink the recording: the rule holds for the others, and if even those
                # miss each other, the rows cover them all.
                common, (lo, hi) = hi - lo, _common(major, first, last)
                if hi == lo:
                    lo, hi = _common(major, first=False, last=False)
                left = {p: (s.start, s.end) for p, s in present.items() if p not in major}
                self.narrow.append(NarrowSpan(e, common, longest, (lo, hi), left))
            elif hi == lo and len(present) > 1:
                # Probes of like weight that never meet: rows for all of their ticks.
                lo, hi = _common(present, first=False, last=False)
                self.narrow.append(NarrowSpan(e, 0, longest, (lo, hi), {}))
            bounds.append((lo, hi))
        return bounds

    def arrays(self) -> dict[str, AnyArray]:
        """The recording in the ``.npz`` layout (see the module doc).

        Raises:
            ConfigError: Nothing was recorded.
        """
        if not self.segments or self.dt is None:
            if self.skipped or self.over_budget:
                raise ConfigError(
                    f"no frames could be recorded from network {self.net!r}: {self.skipped_text()}"
                )
            raise ConfigError(
                f"no frames were received from network {self.net!r}; is the service running "
                "and publishing on this broker and prefix?"
            )
        dt = self.dt
        bounds = self._bounds()
        offsets = np.cumsum([0] + [hi - lo for lo, hi in bounds])
        rows = int(offsets[-1])
        tick = np.concatenate(
            [np.arange(lo, hi, dtype=TICK_DTYPE) for lo, hi in bounds] or [np.zeros(0, TICK_DTYPE)]
        )
        segment = np.repeat(
            np.arange(len(bounds), dtype=np.int32), [hi - lo for lo, hi in bounds]
        ).astype(np.int32)
        out: dict[str, AnyArray] = {}
        any_gap = np.zeros(rows, dtype=bool)
        for probe in sorted(self.segments):
            data, covered = self._fill(probe, bounds, offsets, rows)
            out[probe] = data
            out[f"{probe}.gaps"] = ~covered
            any_gap |= ~covered
        out["t"] = time_of(tick, dt)
        out["tick"] = tick
        out["segment"] = segment
        out["gaps"] = any_gap
        out.update(header_arrays(self.meta(rows, tick, len(bounds))))
        return out

    def _fill(
        self,
        probe: str,
        bounds: list[tuple[int, int]],
        offsets: npt.NDArray[np.int64],
        rows: int,
    ) -> tuple[AnyArray, npt.NDArray[np.bool_]]:
        segments = self.segments[probe]
        first = segments[0].frames[0]
        covered = np.zeros(rows, dtype=bool)
        if isinstance(first, SpikeFrame):
            data: AnyArray = np.zeros((rows, first.n), dtype=np.uint8)
        else:
            data = np.full((rows, *first.shape), np.nan, dtype=value_dtype(self.dtype))
        for e, seg in enumerate(segments):
            lo, hi = bounds[e]
            base = int(offsets[e])
            for f in seg.frames:
                h = f.header
                a, b = max(h.tick, lo), min(h.tick + h.ticks, hi)
                if a >= b:
                    continue
                rows_slice = slice(base + a - lo, base + b - lo)
                src = slice(a - h.tick, b - h.tick)
                # on_frame kept only frames of the first frame's kind and n or shape.
                data[rows_slice] = f.spikes[src] if isinstance(f, SpikeFrame) else f.data[src]
                covered[rows_slice] = True
        return data, covered

    @property
    def dtype(self) -> str:
        """The network's dtype, from the describe document (``float32``, what frames
        carry, without one); value probes are stored in it (``docs/NPZ.md``)."""
        named = self.description.document.get("dtype") if self.description else None
        return value_dtype(named).name if named is not None else WIRE_DTYPE

    def meta(self, rows: int, tick: npt.NDArray[np.int64], segments: int) -> dict[str, Any]:
        """The ``meta`` JSON object (``docs/NPZ.md``)."""
        assert self.dt is not None
        probes = {p: self.kind_of(p) for p in sorted(self.segments)}
        return layout_meta(
            network=self.net,
            dt=self.dt,
            dtype=self.dtype,
            populations=[],
            inputs=[p for p, k in probes.items() if k == "input"],
            probes=probes,
            source="record",
            ticks=rows,
            first_tick=int(tick[0]) if rows else None,
            last_tick=int(tick[-1]) if rows else None,
            segments=segments,
            frames={p: sum(len(s.frames) for s in segs) for p, segs in self.segments.items()},
            lost_frames=dict(self.missing),
            gaps=[
                {
                    "probe": g.probe,
                    "expected": g.expected,
                    "got": g.got,
                    "kind": g.kind,
                    "tick": g.tick,
                }
                for g in self.gaps[:_MAX_GAPS_IN_META]
            ],
            restarts=self.tracker.restarts,
            skipped_frames=dict(self.skipped),
            refused_frames=self.refused,
            status=self.status,
            stats=self.stats,
            describe=self.description.document if self.description else None,
            recorded=[self.started, time.time()],
        )


def plot_arrays(arrays: Mapping[str, AnyArray]) -> dict[str, AnyArray]:
    """``arrays`` adapted for :func:`spikestream_client.plotting.plot_run`: spike probes are
    drawn as rasters (aliased as ``<probe>.spikes``) and ``values`` probes as traces
    (frames do not say whether a value probe is filtered, decoded or a voltage)."""
    meta = json.loads(str(arrays["meta"]))
    kinds: dict[str, str] = meta["probes"]
    view = dict(arrays)
    spikes = [p for p, k in kinds.items() if k == "spikes"]
    for probe in spikes:
        view[f"{probe}.spikes"] = arrays[probe]
    plot_meta = dict(meta)
    plot_meta["populations"] = spikes
    plot_meta["probes"] = dict(kinds)
    view["meta"] = np.array(json.dumps(plot_meta))
    return view
