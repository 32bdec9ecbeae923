"""Gap detection from the per-probe frame counter ``seq``.

The service numbers the frames of each probe from 0 and never restarts the count while its
process lives (``docs/PROTOCOL.md``). A jump forward therefore means frames were lost
(dropped by the broker, the network or this client's own bounded queue); a jump backwards
means the service process restarted. This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from spikestream_client.codec import FrameHeader

__all__ = ["Gap", "GapKind", "GapTracker"]

GapKind = Literal["lost", "restart"]
"""``lost``: ``seq`` jumped forward; ``restart``: ``seq`` went back (a new service process)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A discontinuity in one probe's frame sequence.

    Attributes:
        net: Network name.
        probe: Probe name.
        expected: The ``seq`` that should have come next.
        got: The ``seq`` that came instead.
        kind: ``"lost"`` (``got > expected``) or ``"restart"`` (``got < expected``).
        tick: ``tick`` of the frame that revealed the gap (first tick after it).
        wall: ``wall`` of that frame (Unix seconds).
        local: Of the missing frames, how many this client dropped itself because its
            queue was full (the rest were lost before reaching the client).
    """

    net: str
    probe: str
    expected: int
    got: int
    kind: GapKind
    tick: int
    wall: float
    local: int = 0

    @property
    def missing(self) -> int:
        """Number of frames lost (``got - expected``); 0 for a restart."""
        return self.got - self.expected if self.kind == "lost" else 0


class GapTracker:
    """Checks ``seq`` continuity per ``(net, probe)``.

    Feed every frame header in arrival order to :meth:`check`; it returns a :class:`Gap`
    when the sequence is broken and keeps totals in :attr:`gaps`, :attr:`missing` and
    :attr:`restarts`. The first frame of a probe never counts as a gap (a client joins a
    running stream at an arbitrary ``seq``).
    """

    __slots__ = ("_next", "gaps", "missing", "restarts")

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}
        self.gaps = 0
        """Number of forward jumps seen."""
        self.missing = 0
        """Total frames missing over all forward jumps."""
        self.restarts = 0
        """Number of backward jumps (service restarts) seen."""

    def check(self, header: FrameHeader, local: int = 0) -> Gap | None:
        """Record ``header`` and return the gap it reveals, if any.

        Args:
            header: The header of the frame that just arrived.
            local: Frames of this probe the caller dropped since the previous call for it
                (copied into :attr:`Gap.local`).
        """
        key = (header.net, header.probe)
        expected = self._next.get(key)
        self._next[key] = header.seq + 1
        if expected is None or header.seq == expected:
            return None
        if header.seq > expected:
            kind: GapKind = "lost"
            self.gaps += 1
            self.missing += header.seq - expected
        else:
            kind = "restart"
            self.restarts += 1
        return Gap(
            net=header.net,
            probe=header.probe,
            expected=expected,
            got=header.seq,
            kind=kind,
            tick=header.tick,
            wall=header.wall,
            local=min(local, max(header.seq - expected, 0)),
        )

    def expected(self, net: str, probe: str) -> int | None:
        """The ``seq`` expected next for ``probe``, or None before its first frame."""
        return self._next.get((net, probe))

    def reset(self) -> None:
        """Forget every probe (the next frame of each starts afresh) and zero the totals."""
        self._next.clear()
        self.gaps = self.missing = self.restarts = 0
