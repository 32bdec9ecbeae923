"""The MQTT service: an :class:`~spikestream.runtime.engine.Engine` wired to a broker.

The service takes its settings as the :class:`~spikestream.serving.settings.ServeSettings`
model itself; events go through :mod:`spikestream.serving.events`, and
:meth:`Service.statistics` is the one snapshot the ``stats`` topic and the Prometheus
metrics read (:mod:`spikestream.serving.statistics`).

Threads and tasks:

* the engine's tick thread paces the simulator and fills frame buffers;
* on the event loop, under one ``TaskGroup``: the MQTT link (``mqtt-link``), the frame
  publisher (``publisher``), the statistics loop (``stats``) and the shutdown watcher.

Incoming messages are decoded on the event loop (cheap) and handed to the tick thread
through :class:`~spikestream.runtime.slots.InputSlot` and the command deque. Outgoing
frames are encoded on the event loop and handed to the link (``publish_frames``), which
never blocks (:mod:`spikestream.serving.frames_out`): while the broker is away frames wait
in the bounded per-probe queues, where drops are counted. On the compiled tick the engine's
wake-up descriptor calls the frame pump straight from the event loop's reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from spikestream import __version__
from spikestream.budget import LINK_MAX_QUEUED, default_limit, estimate_network
from spikestream.build import Model
from spikestream.errors import CodecError, SimulationError, SnapshotError, SpikestreamError
from spikestream.runtime.cpulatency import CpuLatencyRequest
from spikestream.runtime.engine import Engine
from spikestream.runtime.gil import yield_gil
from spikestream.runtime.pacer import WINDOWS
from spikestream.runtime.priority import lower_priority
from spikestream.runtime.slots import InputSlot
from spikestream.runtime.trace import LatencyTrace
from spikestream.serving.bridges import Bridges
from spikestream.serving.control import ControlDesk
from spikestream.serving.describe import describe_document
from spikestream.serving.events import EventQueue
from spikestream.serving.frames_out import FrameSender
from spikestream.serving.machine import HostSampler, log_contention
from spikestream.serving.settings import ServeSettings
from spikestream.serving.snapshots import SnapshotFolder, snapshot_layout, start_state
from spikestream.serving.statistics import Freshness, ServiceStatistics, stats_payload
from spikestream.serving.statusguard import StatusGuard
from spikestream_client.codec import (
    DEFAULT_MAX_CONTROL_BYTES,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Reply,
    check_response_topic,
    decode_input,
    dropped_unread,
    encode_describe,
    encode_event,
    topics,
)
from spikestream_client.logs import log_context
from spikestream_client.transport import (
    BrokerSpec,
    MessageMeta,
    MqttLink,
    Will,
    redacted_list,
)

log = logging.getLogger("spikestream.serve")

JSON = "application/json"


#: A payload ``t`` at or above this (Unix seconds, September 2001) is a wall-clock time
#: and is compared with the message expiry interval; smaller ones are signal times.
UNIX_TIME_FLOOR = 1e9
SETTLE_S = 3.0  # the most a stop waits for snapshot files under way to be written
FAILED_STOP_S = 5.0  # the most a failed run spends saying so and offline before it ends
NAME_SHOWN = 200  # characters of an unknown input's name an event and the log carry
_DESCRIBED = ("describe", "set", "learn")  # what publishes the document again (§7)


def _keep_gil(now: float | None = None) -> None:
    """:func:`~spikestream.runtime.gil.yield_gil`'s stand-in on the compiled tick path."""


async def _caught(part: Coroutine[Any, Any, None]) -> Exception | None:
    """Run one part of a service to its end; what it raised, if anything, is returned."""
    try:
        await part
    except Exception as err:
        return err
    return None


class Service:
    """One network served over one MQTT connection (to one broker of ``broker``, failed
    over in order when there are several).

    Args:
        model: the built network.
        broker: the broker, or the nodes of one clustered broker in failover order.
        settings: the ``serve`` settings (only those of one network are read here: not
            the broker, the networks' files or the process-wide ones).
        memory_limit: bytes this network may use (bounds ``set ticks_per_frame``); None:
            the default share of physical memory (:func:`spikestream.budget.default_limit`).
        cpu_latency: the CPU wake-up latency request the process holds, for the stats.
    """

    def __init__(
        self,
        model: Model,
        broker: BrokerSpec | Sequence[BrokerSpec],
        settings: ServeSettings,
        *,
        memory_limit: int | None = None,
        cpu_latency: CpuLatencyRequest | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.cpu_latency = cpu_latency
        #: The I/O thread's priority after ``--io-nice`` (set when serving starts).
        self.io_priority = "unchanged (not requested)"
        self.topics = topics(settings.prefix, model.name)
        self.broker = broker
        self._wake: asyncio.Event | None = None
        self._pump_again = False  # a _pump_later is scheduled (frames left after a slice)
        self._pump_failed: Exception | None = None  # what _pump raised in a loop callback
        self._loop: asyncio.AbstractEventLoop | None = None
        self.engine = Engine(
            model,
            notify=self._notify,
            memory_limit=memory_limit if memory_limit is not None else default_limit(),
            network_bytes=estimate_network(model.spec, dtype=model.dtype.name).total,
            **settings.engine_options(),
        )
        client_id = settings.client_id or f"spikestream-{model.name}-{os.getpid()}"
        self.link = MqttLink(
            broker,
            client_id=client_id,
            on_message=self._on_message,
            will=Will(self.topics.status, STATUS_OFFLINE, qos=1, retain=True),
            keepalive=settings.keepalive,
            backoff_min=settings.backoff_min,
            backoff_max=min(max(settings.backoff_max, settings.backoff_min), 600.0),
            max_queued_outgoing=LINK_MAX_QUEUED,  # counted by the memory budget
            # Past every payload accepted here: dropped unread (meta.oversize), not held.
            max_payload=max(settings.max_input_bytes, DEFAULT_MAX_CONTROL_BYTES),
        )
        self.link.subscribe(self.topics.inputs_filter, qos=0)
        # QoS 0: the link's sessions are clean, so a QoS 1 subscription would guarantee
        # nothing more (the broker drops unacknowledged deliveries with the session), while
        # on NATS it is a replicated JetStream consumer that must be created again on every
        # reconnect, which after a node loss waits for JetStream (4 s and more). Senders
        # still publish commands with QoS 1, acknowledged by the broker.
        self.link.subscribe(self.topics.control, qos=0)
        # Our own status: a live ``offline`` there while we are connected is untrue (see
        # StatusGuard), and is answered with ``online``.
        self.link.subscribe(self.topics.status, qos=0)
        self.link.add_connect_hook(self._on_connect)
        self.bridges = Bridges(
            self.link,
            self.topics,
            {n: (s.kind, s.shape) for n, s in self.engine.streams.items()},
            text_rate=settings.text_rate,
            ha_prefix=settings.ha_discovery,
            version=__version__,
        )
        if self.bridges.discovery is not None:
            self.link.add_connect_hook(self.bridges.on_connect)
        # Each input's topic, built once: an input is found with one dict lookup, before
        # anything else is compared (a topic the bridges claim stays theirs).
        self._input_topics: dict[str, tuple[str, InputSlot]] = {}
        self._input_head = f"{self.topics.base}/in/"
        for name, slot in self.engine.inputs.items():
            topic = self.topics.input(name)
            if not self.bridges.claims(topic):
                self._input_topics[topic] = (name, slot)
        self.snapshot_folder = SnapshotFolder(
            settings.snapshot_dir, model.name, snapshot_layout(self.engine)
        )
        # Events not yet published, oldest first, and those lost beyond the queue.
        self.events = EventQueue(model.name)
        self.rejected: dict[str, int] = {}
        self.control = ControlDesk(
            self.engine,
            self.snapshot_folder,
            # Nor to the Home Assistant topics we publish to.
            lambda topic: check_response_topic(settings.prefix, topic, self.bridges.prefixes),
            self.event,
            self.rejected,
        )
        self.retained_control = 0
        self.status_guard = StatusGuard(
            self.link, self.topics.status, self.event, lambda: self._stopping
        )
        self.started = time.time()
        # Text and discovery topics in use, shown in the describe document.
        self.describe_extras = self.bridges.describe_extras()
        self.replies_failed = 0
        self._stopping = False
        #: The host's CPU time over the stats windows (busy, stolen by the hypervisor),
        #: sampled by the event loop while serving.
        self.host = HostSampler(horizon=max(WINDOWS))
        self.trace: LatencyTrace | None = None
        if settings.trace_latency is not None:
            self.trace = LatencyTrace(list(self.engine.streams))
            self.engine.trace = self.trace
        # Hand the GIL to the tick thread in long stretches of I/O-side Python only on the
        # Python tick path, which needs it several times a tick (runtime/gil.py); for the
        # compiled tick they cost more than they save (docs/PERFORMANCE.md, bench/floor.py).
        self._yield_gil = yield_gil if self.engine.tick_path != "compiled" else _keep_gil
        self.frames = FrameSender(
            self.engine,
            self.link,
            {name: self.topics.out(name) for name in model.probes},  # validated once
            qos=settings.qos,
            expiry=settings.expiry,
            bridges=self.bridges,
            trace=self.trace,
            yield_gil=self._yield_gil,
            retry_later=self._wake_later,
        )

    # ------------------------------------------------------------------ threads -> loop

    def _notify(self) -> None:
        # Called from the tick thread.
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(wake.set)

    # ------------------------------------------------------------------ incoming

    def _on_message(self, topic: str, payload: bytes, meta: MessageMeta) -> None:
        handled = time.time() if self.trace is not None else 0.0
        self._yield_gil()  # a burst of messages must not keep the GIL from the tick thread
        known = self._input_topics.get(topic)
        if known is not None:
            self._on_input(*known, payload, meta, handled)
            return
        if topic == self.topics.control:
            if meta.retain:
                # A retained command was published before we subscribed (or before a
                # reconnect): acting on it would replay a stale pause or reset.
                self.retained_control += 1
                self.control.refuse(
                    None,
                    None,
                    "a retained control message is ignored; control acts only on live "
                    "messages (publish without the retain flag)",
                    kind="control_ignored",
                    reason="retained",
                    payload=payload[:64].decode("utf-8", "replace"),
                )
                return
            self.control.on_message(payload, meta)
            return
        if topic == self.topics.status:
            self.status_guard.on_status(payload, meta)
            return
        if self.bridges.on_message(topic, payload):
            return
        if topic.startswith(self._input_head):  # in/+ matched: a name no input has
            # Any name at all, empty or with spaces too; cut, so that a 64 KiB topic does
            # not travel whole into the event and the log.
            name = topic[len(self._input_head) :]
            name = name if len(name) <= NAME_SHOWN else name[: NAME_SHOWN - 1] + "…"
            self._reject(
                name,
                "unknown_input",
                f"no input named {name!r}; inputs: {', '.join(self.engine.inputs) or '(none)'}",
            )

    def _on_input(
        self, name: str, slot: InputSlot, payload: bytes, meta: MessageMeta, handled: float
    ) -> None:
        """A message on input ``name``'s topic: decode it and offer it to its slot."""
        limit = self.settings.max_input_bytes
        try:
            if meta.oversize is not None:  # the link dropped it unread
                raise dropped_unread("input", meta.oversize, limit)
            sample = decode_input(payload, slot.dim, max_bytes=limit)
        except CodecError as err:
            slot.reject()
            self._reject(name, getattr(err, "reason", "garbage"), str(err))
            return
        now = self.engine.clock.now()
        expires = None
        if meta.expiry is not None:
            left = float(meta.expiry)
            if sample.t is not None and sample.t >= UNIX_TIME_FLOOR and not meta.retain:
                # A live message spent next to no time in the broker, so its remaining
                # interval is the one it was sent with: it runs from the sender's clock.
                left -= max(0.0, time.time() - sample.t)
            if left <= 0:
                slot.reject()
                self._reject(
                    name,
                    "expired",
                    f"the value expired {-left:.3f} s before it arrived (message expiry "
                    f"interval {meta.expiry} s, t={sample.t})",
                )
                return
            expires = now + left
        # Stamped before the offer: the tick a new value arrives for may start, and apply
        # it, before this thread takes the next step.
        decoded = time.time() if self.trace is not None else 0.0
        slot.offer(sample.x, now, expires)
        if self.trace is not None:
            self.trace.received(float(sample.x[0]), decoded, handled)

    def _reject(self, name: str, reason: str, message: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.event(
            "input_rejected",
            input=name,
            reason=reason,
            error=message,
            rejected=self.rejected[reason],
        )

    # ------------------------------------------------------------------ outgoing

    def event(self, kind: str, *, reply: Reply | None = None, **fields: Any) -> None:
        """Publish an event (rate-limited per kind) on the events topic.

        While the link is down, or its window is full, the event waits in a bounded queue
        and goes out once online (:meth:`_flush_events`), so events raised while
        connecting (the refusal of a retained message, say) are not lost.

        ``reply``: the response topic and correlation data of an MQTT 5 request; the
        event also goes there at once (never rate-limited: the requester waits for it).
        """
        if reply is not None:
            self._respond(reply, encode_event(kind, net=self.model.name, **fields))
        if self.events.add(kind, time.monotonic(), fields):
            self._flush_events()

    def _respond(self, reply: Reply, payload: bytes) -> None:
        topic, correlation = reply
        if not self.link.publish_nowait(
            topic, payload, qos=1, content_type=JSON, correlation_data=correlation
        ):
            self.replies_failed += 1  # not connected, or the window is full

    def describe(self) -> dict[str, Any]:
        """The describe document of this network now (``docs/PROTOCOL.md`` section 7)."""
        return describe_document(
            self.engine,
            self.topics,
            session=max(1, self.link.statistics().connects),
            started=self.started,
            max_input_bytes=self.settings.max_input_bytes,
            extras=self.describe_extras,
        )

    def _publish_describe(self) -> None:
        """Publish the document again (retained), e.g. after a setting it shows changed.
        A failure is counted by the link (``publish_failed``); the retained document is
        published again at the next connection."""
        self.link.publish_nowait(
            self.topics.describe,
            encode_describe(self.describe()),
            qos=1,
            retain=True,
            content_type=JSON,
        )

    async def _refresh_retained(self) -> None:
        """Publish the describe document and status ``online`` again, retained, every
        ``--status-refresh`` seconds while connected and not stopping.

        A broker can be left holding an old retained copy that no live message corrects: a
        NATS cluster node restarted from its own stale replica of the retained-message
        stream, or one that applied two retained updates out of order, goes on handing
        ``offline`` to every new subscriber while the service is online through another
        node. The connect hook and the status guard speak only at a connection and on a
        live ``offline``; this bounds how long such a copy lasts. A publish the link
        refuses (window full) is counted there (``publish_failed``) and made again at the
        next interval.
        """
        interval = self.settings.status_refresh
        while True:
            await asyncio.sleep(interval)
            if self._stopping or not self.link.connected:
                continue  # stopping says offline; the next connection says online anyway
            self._publish_describe()  # the document first, as at a connection
            self.link.publish_nowait(self.topics.status, STATUS_ONLINE, qos=1, retain=True)

    def _flush_events(self) -> None:
        """Publish queued events, oldest first, while the link takes them (not connected,
        or the window is full: they wait for the next flush)."""
        topic, link = self.topics.events, self.link
        if not link.connected:
            # They wait for the connection; trying now would only count refusals in the
            # link's publish_failed at every wake-up while offline.
            return
        self.events.flush(lambda event: link.publish_nowait(topic, event, qos=0, content_type=JSON))

    async def _on_connect(self) -> None:
        # The description first: whoever sees ``online`` can already read what is served.
        await self.link.publish(
            self.topics.describe,
            encode_describe(self.describe()),
            qos=1,
            retain=True,
            content_type=JSON,
        )
        await self.link.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True)
        self._flush_events()  # what happened while connecting, before the online event
        self.event("online", connects=self.link.statistics().connects, tick=self.engine.sim.tick)
        if self._wake is not None:
            self._wake.set()  # flush what queued up while we were away

    def _drain(self) -> bool:
        """Hand what the tick thread produced to the link: events, snapshots, then a slice
        of frames (:meth:`FrameSender.send`). Returns True when frames are still queued and
        the link could take them (the caller yields to the loop and calls again)."""
        engine, link = self.engine, self.link
        batch = [engine.events.popleft() for _ in range(len(engine.events))]
        # One document before all the batch's describe/set/learn replies, not one each.
        if any(e["event"] == "control_ok" and e.get("cmd") in _DESCRIBED for e in batch):
            self._publish_describe()
        for ev in batch:
            self.event(ev["event"], **{k: v for k, v in ev.items() if k != "event"})
        while engine.snapshots:
            self.control.taken(*engine.snapshots.popleft())
        if self.events:
            self._flush_events()
            if self.events and link.connected:
                # The window is full: try again as it drains, even if no frame wakes us.
                self._wake_later(0.01)
        return self.frames.send()

    async def _publisher(self) -> None:
        # Woken by everything but the compiled tick's descriptor (which calls _pump
        # itself): the Python tick path, events, a full window draining, a reconnect.
        assert self._wake is not None
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            if self._pump_failed is not None:
                raise self._pump_failed  # as if it had failed here: the service stops
            self._pump()

    def _wake_later(self, delay: float) -> None:
        """Wake the publisher task after ``delay`` s (a full window drains meanwhile)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_later(delay, self._wake.set)

    def _pump(self) -> None:
        """Collect the ticks the tick thread finished into frames and hand them out (the
        event loop's thread; called straight from the wake-up descriptor's reader, not
        through an Event and a task switch, which cost a loop pass per tick)."""
        self._pump_again = False
        if self.trace is not None:
            self.frames.pump_began = time.time()
        self.engine.clear_notified()
        self.engine.collect()  # ticks a run of compiled ticks finished, into frames
        if self._drain():
            # More frames after a slice: go on at the next loop pass, after the socket
            # reader has run, so inputs that arrived meanwhile reach their slots before
            # the next slice of frames.
            self._pump_again = True
            asyncio.get_running_loop().call_soon(self._pump_later)

    def _pump_later(self) -> None:
        if self._pump_again:  # else a wake-up has pumped since
            self._pump_guarded()

    def _pump_guarded(self) -> None:
        """:meth:`_pump` from a loop callback: a failure there would only be logged, once
        per tick, so it is handed to the publisher task, which raises it."""
        if self._pump_failed is not None:
            return
        try:
            self._pump()
        except Exception as err:
            self._pump_failed = err
            assert self._wake is not None
            self._wake.set()

    async def _stats(self) -> None:
        topic = self.topics.stats
        last_log = 0.0
        contended = False
        while True:
            await asyncio.sleep(self.settings.stats_interval)
            stats = stats_payload(self.statistics())
            try:
                payload = encode_event("stats", **stats)
            except CodecError as err:  # a figure not JSON (not finite): say so, go on ticking
                log.error("stats not published", extra={"error": str(err)})
            else:
                self.link.publish_nowait(topic, payload, content_type=JSON)
            # The tail of a burst of suppressed events, once its kind has gone quiet.
            if self.events.settle(time.monotonic()):
                self._flush_events()
            if stats["spin_contended"] != contended:
                contended = stats["spin_contended"]
                log_contention(contended, stats, self.settings.spin, self.settings.busy_spin)
            now = time.monotonic()
            if now - last_log >= 10.0:
                last_log = now
                log.info(
                    "running",
                    extra={
                        k: stats[k]
                        for k in (
                            "tick",
                            "realtime_factor_actual",
                            "late_p99_ms",
                            "late_max_ms",
                            "dropped",
                        )
                    },
                )
            if self.engine.failure is not None:
                raise SpikestreamError(f"tick thread failed: {self.engine.failure}")

    def statistics(self) -> ServiceStatistics:
        """One snapshot of everything this service counts: what the ``stats`` topic
        (:func:`~spikestream.serving.statistics.stats_payload`) and the Prometheus metrics
        show. Any thread; input ages are read here, off the tick path."""
        engine = self.engine
        now = engine.clock.now()
        es = engine.statistics()
        freshness = {}
        for name in es.inputs:
            age, stale = engine.inputs[name].freshness(now)
            freshness[name] = Freshness(age, stale)
        held = self.cpu_latency
        contended, busy_ticks, spells, takeovers, early = engine.loop_counts()
        return ServiceStatistics(
            net=self.model.name,
            engine=es,
            link=self.link.statistics(),
            lateness=engine.pacer.lateness_histogram(),
            scheduling=engine.realtime_priority,
            tick_slice=engine.tick_slice_granted,
            tick_path=engine.tick_path,
            frame_encoder=self.frames.encoder,
            tick_threads=engine.tick_threads,
            fifo_priority=engine.fifo_priority,
            spin_contended=contended,
            contended_ticks=busy_ticks,
            contended_spells=spells,
            takeovers=takeovers,
            early_ticks=early,
            cpu_latency="not requested" if held is None else held.description,
            cpu_latency_held_us=held.microseconds if held is not None and held.held else None,
            freshness=freshness,
            rejected=self.rejected_counts(),
            retained_control=self.retained_control,
            status_reasserted=self.status_guard.reasserted,
            events_pending=len(self.events),
            # Lost between the tick thread and here (its deque overflowed) or beyond the
            # pending queue.
            events_lost=self.events.lost + es.events_dropped,
            replies_failed=self.replies_failed,
            snapshots_failed=self.control.snapshots_failed,
            snapshots_skipped=self.control.periodic_skipped,
            bridges=self.bridges.statistics(),
            host_cpu=tuple(self.host.cpu.shares(w.seconds) for w in es.pacer.recent),
        )

    def rejected_counts(self) -> dict[str, int]:
        """Refusals by reason. ``control`` counts every refused control message: refused
        at decoding or at the edge (counted here) or by the tick thread (counted there)."""
        out = dict(self.rejected)
        engine = self.engine
        control = out.get("control", 0) + engine.commands_rejected + engine.commands_overflow
        if control:
            out["control"] = control
        return out

    def latest_snapshot(self) -> Path:
        """Where periodic snapshots of this network go (and ``--resume`` looks)."""
        return self.snapshot_folder.path / f"{self.model.name}-latest.npz"

    async def _snapshots(self) -> None:
        assert self.settings.snapshot_every is not None
        while True:
            await asyncio.sleep(self.settings.snapshot_every)
            self.control.periodic(self.latest_snapshot())

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then publish ``offline`` and disconnect cleanly.

        Every line logged meanwhile names the network (``net``), the tick thread's and the
        link's included: one process may serve several networks."""
        with log_context(net=self.model.name):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.settings.snapshot_every is not None:
            self.snapshot_folder.create()
        await self._start_from_snapshot()
        self.engine.start()
        # After the tick thread has started, so that it keeps its own nice value.
        self.io_priority = lower_priority(self.settings.io_nice)
        if (fd := self.engine.wake_fd) is not None:
            self._loop.add_reader(fd, self._pump_guarded)
        self.host.start(self._loop)
        log.info(
            "serving",
            extra={
                "net": self.model.name,
                "broker": redacted_list(self.link.specs),
                "topics": f"{self.topics.base}/{{in,out,status,describe,control,events,stats}}",
                "dt": self.model.dt,
                "realtime_factor": self.settings.realtime_factor,
            },
        )
        try:
            async with asyncio.TaskGroup() as tg:
                # A part's failure comes back as its result: raised in the group, it would
                # cancel the link with it, before offline could be said (_shutdown_failed).
                link_task = tg.create_task(_caught(self.link.run()), name="mqtt-link")
                parts = {"publisher": self._publisher(), "stats": self._stats()}
                if self.settings.status_refresh > 0:
                    parts["refresh"] = self._refresh_retained()
                if self.settings.snapshot_every is not None:
                    parts["snapshots"] = self._snapshots()
                if self.bridges.enabled:
                    parts["text"] = self.bridges.run()
                tasks = [tg.create_task(_caught(c), name=name) for name, c in parts.items()]
                stopper = tg.create_task(stop.wait(), name="shutdown")
                done, _ = await asyncio.wait(
                    {link_task, stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if isinstance(err := task.result(), Exception):
                        await self._shutdown_failed(err)
                        raise err
                await self._shutdown()
                for task in tasks:
                    task.cancel()
        finally:
            self.host.stop()
            if (fd := self.engine.wake_fd) is not None:
                self._loop.remove_reader(fd)
            self.engine.stop()
            self.engine.close()
            if self.trace is not None and self.settings.trace_latency is not None:
                self.trace.save(self.settings.trace_latency)

    async def _start_from_snapshot(self) -> None:
        """``--restore FILE``, or ``--resume`` from the latest periodic snapshot
        (:func:`~spikestream.serving.snapshots.start_state`)."""
        found = await asyncio.to_thread(
            start_state,
            self.snapshot_folder,
            self.settings.restore,
            self.latest_snapshot() if self.settings.resume else None,
        )
        if found is not None:
            path, state = found
            try:
                self.engine.sim.set_state(state)
            except SimulationError as err:  # values out of range: say which file
                raise SnapshotError(f"snapshot {str(path)!r} refused: {err}") from None
            self.engine.resume_counters(state, time.time())
            if self.engine.input_log is not None:  # its replay starts elsewhere: said
                self.engine.input_log.mark("restore", self.engine.executed)
            log.info("restored", extra={"path": str(path), "tick": self.engine.sim.tick})

    async def _shutdown_failed(self, err: BaseException) -> None:
        """A task of the service failed and the run ends with ``err``: say so on the
        events topic (the tick thread's own failure has said ``engine_failed``), then stop
        as :meth:`_shutdown` does, ``offline`` included, within ``FAILED_STOP_S``: a
        clean disconnect sends no will, so without it the retained status would stay
        ``online`` for a service that is gone."""
        if self.engine.failure is None:
            self.event("service_failed", error=f"{type(err).__name__}: {err}")
        with contextlib.suppress(Exception, TimeoutError):
            await asyncio.wait_for(self._shutdown(), FAILED_STOP_S)

    async def _shutdown(self) -> None:
        self._stopping = True
        self.control.stopping = True  # control arriving from now on is refused, answered
        await asyncio.to_thread(self.engine.stop)
        try:
            self._drain()
            # Snapshots and restores under way say how they ended before offline.
            await self.control.settle(SETTLE_S)
            self._drain()
        except Exception:  # the publisher's own failure, again: offline must still go out
            log.exception("the last frames could not be sent")
        if self.link.connected:
            await self.link.publish(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
        await self.link.stop()
        stats = stats_payload(self.statistics())
        log.info("stopped", extra={k: stats[k] for k in ("tick", "dropped", "late_max_ms")})
