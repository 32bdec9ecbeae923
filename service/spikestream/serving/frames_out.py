"""Frames out: from the engine's per-probe queues to the MQTT link, on the event loop.

:class:`FrameSender` takes completed frames round-robin over the probes, one frame of each
probe with frames queued at a time (a round), as many as the link's outgoing window takes
(under backpressure the probes take turns, so none is starved by the probes before it),
encodes each
(:class:`~spikestream.serving.framecodec.ProbeEncoder`: the client codec's bytes, written
in C; a frame no bridge or trace has to see is taken, encoded and given back in one step,
:meth:`~spikestream.runtime.streams.ProbeStream.take_encoded`) and hands the round to the
link in one ``publish_frames`` call (QoS 0; at QoS 1 and 2 one ``publish_nowait`` per
frame), which never blocks. It works in slices of at most :data:`DRAIN_SLICE` seconds, so
that input messages, which the event loop reads between slices, never wait behind a long
run of frame encoding; and it takes a frame out of its queue only while the link's window
has room, so a frame that cannot go out stays in its bounded queue, where a drop is
counted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy.typing as npt

from spikestream.runtime.engine import Engine
from spikestream.runtime.streams import ProbeStream
from spikestream.runtime.trace import LatencyTrace
from spikestream.serving.bridges import Bridges
from spikestream.serving.framecodec import ProbeEncoder
from spikestream_client.transport import MqttLink

log = logging.getLogger("spikestream.serve")

__all__ = ["DRAIN_SLICE", "MSGPACK", "FrameSender"]

MSGPACK = "application/msgpack"

#: A probe's encode function (:meth:`ProbeEncoder.encode_rows`).
Encode = Callable[[int, int, int, float, float, float, int, npt.NDArray[Any]], bytes]

#: Longest stretch (s) of frame encoding and publishing before the I/O thread's event
#: loop reads the socket again (inputs wait at most about this long behind output).
DRAIN_SLICE = 0.0005


class FrameSender:
    """Hands one network's completed frames to the link (the event loop's thread).

    Args:
        engine: the network's engine (its probe streams and model).
        link: the MQTT link.
        topics: each probe's frame topic.
        qos: the frames' QoS.
        expiry: the frames' message expiry interval (s), or None.
        bridges: the text and discovery bridges, shown every frame's values.
        trace: the debug latency trace, or None.
        yield_gil: called once per round of frames (hands the GIL to the tick thread on
            the Python tick path; a no-op on the compiled one).
        retry_later: called with a delay (s) when the link's window is full: it must
            call :meth:`send` again after that delay.
    """

    def __init__(
        self,
        engine: Engine,
        link: MqttLink,
        topics: dict[str, str],
        *,
        qos: int,
        expiry: int | None,
        bridges: Bridges,
        trace: LatencyTrace | None,
        yield_gil: Callable[[], None],
        retry_later: Callable[[float], None],
    ) -> None:
        self.engine = engine
        self.link = link
        self.topics = topics
        self.qos = qos
        self.expiry = expiry
        self.bridges = bridges
        self.trace = trace
        self.yield_gil = yield_gil
        self.retry_later = retry_later
        self._encoders = {
            name: ProbeEncoder(engine.model.name, name, engine.model.dt, s.kind, s.shape)
            for name, s in engine.streams.items()
        }
        #: ``compiled`` or ``python (<why>)``: what encodes the frames (for statistics).
        self.encoder = (
            "compiled"
            if all(e.compiled for e in self._encoders.values())
            else "python (the C extension spikestream.serving._frames is not built)"
        )
        #: When the pump that sends now began (``time.time()``; with ``trace`` only).
        self.pump_began = math.nan
        # Each stream's topic, encode function and whether the bridges see its rows,
        # looked up once (a frame's own Python is what the I/O thread pays 5,000 times
        # a second).
        text = bridges.text is not None
        self._order: list[ProbeStream] = list(engine.streams.values())
        # (probe, the broker's limit) of too large frames logged
        self._too_large: set[tuple[str, int | None]] = set()
        self._outlets: dict[ProbeStream, tuple[str, Encode, bool]] = {
            s: (topics[name], self._encoders[name].encode_rows, text and s.kind == "values")
            for name, s in engine.streams.items()
        }

    def send(self) -> bool:
        """Send queued frames: one round (a frame of each probe), then more while
        :data:`DRAIN_SLICE` seconds have not passed. Returns True when frames are still
        queued and the link could take them (the caller yields to the event loop, then
        calls again)."""
        link = self.link
        if not link.connected:
            return False  # frames wait in the bounded queues; drops there are counted
        # Round-robin over the probes, one frame each, as many as the link's outgoing
        # window has room for: frames that cannot go out now stay in their bounded queues
        # (where a drop is counted) instead of being taken out and refused.
        pending = [s for s in self._order if s.queued()]
        if not pending:
            return False
        # The slice's frames leave in one write at its end, not one per frame.
        with link.write_batch():
            return self._slice(pending)

    def _slice(self, pending: list[ProbeStream]) -> bool:
        link = self.link
        until = time.perf_counter() + DRAIN_SLICE
        while pending:
            room = link.room()
            if room <= 0:
                self.retry_later(0.001)  # the window drains as paho writes
                return False
            self.yield_gil()
            if room < len(pending):
                # The window takes only some: they go, the rest go first next round.
                served = pending[:room]
                self._take_turns(served)
                pending = pending[room:] + self._round(served)
            else:
                pending = self._round(pending)
            # Checked after a round, not before: a thread preempted between taking the
            # time and its first round would otherwise give up a slice having sent nothing.
            if pending and time.perf_counter() >= until:
                return True  # let the loop read inputs, then go on
        return False

    def _take_turns(self, served: list[ProbeStream]) -> None:
        """Move the probes just served to the back of the order: with a window too small
        for a round, the probes after them go first in the next round and the next
        :meth:`send`. Before, each round began with the first probe, and under lasting
        backpressure the last probes had every frame refused."""
        done = set(served)
        self._order = [s for s in self._order if s not in done] + served

    def _round(self, pending: list[ProbeStream]) -> list[ProbeStream]:
        """Take and encode one frame of each probe in ``pending``, each buffer given back
        at once, and hand them to the link together (QoS 0: in one call). Returns the
        probes with frames still queued. A frame the link refuses is counted dropped on
        its probe; a frame that fails to encode (a programming error, raised once the
        frames before it are handed over) is counted by its probe, and the next probes'
        frames stay queued."""
        trace, outlets = self.trace, self._outlets
        messages: list[tuple[str, bytes]] = []
        streams: list[ProbeStream] = []
        still: list[ProbeStream] = []
        taken: list[float] = []  # with a trace: when each frame was taken, and its seq
        seqs: list[int] = []
        failure: BaseException | None = None
        for stream in pending:
            topic, encode, observed = outlets[stream]
            try:
                if trace is None and not observed:
                    # One step: take, encode from the buffer's first rows, give it back.
                    payload = stream.take_encoded(encode)
                else:
                    payload = self._take_watched(stream, encode, observed, taken, seqs)
            except BaseException as exc:  # raised again below, once the frames before it are out
                failure = exc
                break
            if payload is None:
                continue
            messages.append((topic, payload))
            streams.append(stream)
            if stream.queued():
                still.append(stream)
        try:
            handed = self._hand_over(streams, messages)
        except Exception as exc:
            if failure is not None:
                raise exc from failure
            raise
        if trace is not None:
            now = time.time()
            for i in handed:
                trace.published(streams[i].name, seqs[i], taken[i], now, self.pump_began)
        if failure is not None:
            raise failure
        return still

    def _take_watched(
        self,
        stream: ProbeStream,
        encode: Encode,
        observed: bool,
        taken: list[float],
        seqs: list[int],
    ) -> bytes | None:
        """One frame of ``stream`` encoded (:meth:`ProbeStream.take_encoded`), its rows
        shown to the bridges (``observed``) and, with a trace, when it was taken and its
        seq appended to ``taken`` and ``seqs``; None when none is queued."""
        observe = self.bridges.observe if observed else None

        def watched(*header: Any) -> tuple[bytes, int, float]:
            # header: seq, tick, ticks, t, wall, late_max, dropped, then the buffer.
            at = time.time()
            if observe is not None:  # the buffer's first ``ticks`` rows, where they are
                observe(stream.name, stream.kind, header[7][: header[2]])
            return encode(*header), header[0], at

        got = stream.take_encoded(watched)
        if got is None:
            return None
        payload, seq, at = got
        if self.trace is not None:
            taken.append(at)
            seqs.append(seq)
        return payload

    def _fitting(
        self, streams: list[ProbeStream], messages: list[tuple[str, bytes]]
    ) -> list[tuple[int, int]]:
        """The runs ``[start, stop)`` of ``messages`` whose packets the broker takes: one
        past the Maximum Packet Size it named would close the connection, and be sent
        again first on the next. Each left out is counted by the link
        (``publish_too_large``) and logged here once per probe; the caller counts it
        dropped, as any frame not handed over."""
        link = self.link
        if link.packet_limit is None:
            return [(0, len(messages))]
        runs: list[tuple[int, int]] = []
        start = 0
        for i, (topic, payload) in enumerate(messages):
            if not link.fits(topic, len(payload), content_type=MSGPACK, expiry=self.expiry):
                runs.append((start, i))
                start = i + 1
                name = streams[i].name
                if (name, link.packet_limit) not in self._too_large:  # once per broker limit
                    self._too_large.add((name, link.packet_limit))
                    log.warning(
                        "probe %r: a frame of %d bytes does not fit the %d-byte packets "
                        "the broker takes; such frames are dropped (counted in the frames' "
                        "dropped): lower ticks_per_frame",
                        name,
                        len(payload),
                        link.packet_limit,
                    )
        runs.append((start, len(messages)))
        return [(a, b) for a, b in runs if b > a]

    def _hand_over(
        self, streams: list[ProbeStream], messages: list[tuple[str, bytes]]
    ) -> list[int]:
        """Hand encoded frames (``messages[i]`` of ``streams[i]``) to the link; the
        indices of those it took. Each frame it did not take is counted dropped on its
        probe."""
        link = self.link
        handed: list[int] = []
        try:
            if self.qos == 0:
                for start, stop in self._fitting(streams, messages):
                    # Every run is handed over: one the link refuses is counted there too.
                    part = messages if stop - start == len(messages) else messages[start:stop]
                    sent = link.publish_frames(part, content_type=MSGPACK, expiry=self.expiry)
                    handed.extend(range(start, start + sent))
            else:
                for i, (topic, payload) in enumerate(messages):
                    if link.publish_nowait(
                        topic,
                        payload,
                        qos=self.qos,
                        content_type=MSGPACK,
                        expiry=self.expiry,
                        resend=True,  # a lost connection's unsent frames go on the next one
                    ):
                        handed.append(i)
        finally:
            # Refused: the connection dropped between room() and now, or other messages
            # (a bridge's) filled the window within the round (the link counts each in
            # publish_failed). Should the link raise (a programming error: an invalid
            # topic, a frame too large for MQTT), the whole round counts, the frames it
            # queued before the error too: counted once too often, never lost silently.
            if len(handed) < len(messages):
                took = set(handed)
                for i, stream in enumerate(streams):
                    if i not in took:
                        stream.count_dropped()
        return handed
