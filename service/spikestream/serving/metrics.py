"""Prometheus metrics for ``serve --metrics-port``.

A custom collector takes one :class:`~spikestream.serving.statistics.ServiceStatistics`
snapshot per service when Prometheus scrapes, and reads nothing else: the figures are the
ones the ``stats`` topic shows, counted once, and the tick thread does no extra work.

The HTTP server is a small one of the standard library's, not prometheus_client's: that
one had no socket timeout and no bound on its connections, so idle clients could take a
thread and a descriptor each until the process had none left.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from typing import IO, TYPE_CHECKING, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

import numpy as np
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from spikestream.errors import ConfigError
from spikestream.runtime.hostcpu import CpuShares
from spikestream.runtime.stats import WindowStatistics
from spikestream.serving.statistics import ServiceStatistics

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

#: Prometheus histogram buckets of tick lateness, seconds: the fine log buckets of the
#: pacer coarsened to a readable set.
LATENESS_EDGES = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1e-1)

#: Seconds a metrics connection has to send its whole request (request line and headers),
#: and each write of the answer may wait, before the connection is closed.
#: prometheus_client's own server had no timeout: idle sockets, or a request line without
#: a version (whose headers never came), each held a thread and a descriptor forever, and a
#: few hundred of them ran the process out of descriptors (the MQTT link could no longer
#: reconnect). A deadline per read was not enough either: a client sending a byte every
#: few seconds kept its slot for good. A scrape sends its request at once and reads its
#: answer as fast.
SOCKET_TIMEOUT = 5.0

#: Connections answered at once; one more is answered 503 and closed at once. It bounds the
#: threads and descriptors the endpoint can take, whatever its clients do (the timeout
#: alone does not: a client may keep opening connections). A Prometheus server or two, a
#: health check and a curl fit well within it.
MAX_CONNECTIONS = 16

#: Seconds the accept loop waits after accept() found no descriptor free (taken elsewhere
#: in the process): retrying at once spun a CPU, and the wait delays no scrape that could
#: have been answered.
ACCEPT_BACKOFF = 0.1

log = logging.getLogger("spikestream.serve")


class ServiceCollector(Collector):
    """Exports one service's statistics, labelled with the network name.

    Args:
        snapshot: takes a fresh snapshot (``Service.statistics``), called once per scrape.
    """

    def __init__(self, snapshot: Callable[[], ServiceStatistics]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from snapshot_metrics(self.snapshot())


def snapshot_metrics(s: ServiceStatistics) -> Iterator[Metric]:
    """The metric families of one snapshot."""
    net = s.net
    es = s.engine
    hist = s.lateness
    cumulative = np.cumsum(hist.counts)
    buckets: list[tuple[str, float]] = []
    for edge in LATENESS_EDGES:
        i = int(np.searchsorted(hist.upper_bounds, edge, side="right")) - 1
        buckets.append((repr(edge), float(cumulative[i]) if i >= 0 else 0.0))
    buckets.append(("+Inf", float(hist.count)))
    h = HistogramMetricFamily(
        "spikestream_tick_lateness_seconds",
        "How late each tick started after its deadline",
        labels=["net"],
    )
    h.add_metric([net], buckets, sum_value=hist.sum)
    yield h
    yield _gauge(
        "spikestream_realtime_factor",
        "Requested real-time factor",
        net,
        es.pacer.realtime_factor,
    )
    rf = es.pacer.realtime_factor_actual
    yield _gauge(
        "spikestream_realtime_factor_actual",
        "Simulated over wall time",
        net,
        0.0 if rf != rf else rf,
    )
    yield from _window_metrics(net, es.pacer.recent, es.work, s.host_cpu)
    yield _counter("spikestream_ticks", "Ticks run", net, es.pacer.ticks)
    yield _counter("spikestream_overruns", "Ticks that started late", net, es.pacer.overruns)
    yield _counter("spikestream_skipped_ticks", "Ticks skipped to realign", net, es.skipped_ticks)
    yield _counter("spikestream_realigns", "Backlogs catch-up gave up on", net, es.pacer.realigns)
    yield _counter("spikestream_slips", "Schedule moves under --overrun slip", net, es.pacer.slips)
    yield _counter(
        "spikestream_behind_seconds",
        "Simulated seconds the schedule dropped (realigns, slips, resumes)",
        net,
        es.pacer.behind,
    )
    yield _gauge("spikestream_paused", "1 while paused", net, float(es.paused))
    yield _gauge(
        "spikestream_tick_threads",
        "Threads that step each tick (2: the tick cut in two stages, --tick-threads)",
        net,
        float(s.tick_threads),
    )
    yield _gauge(
        "spikestream_spin_contended",
        "1 while the tick thread is kept waiting for a CPU and spins --busy-spin",
        net,
        float(s.spin_contended),
    )
    yield _counter(
        "spikestream_contended_ticks",
        "Ticks that waited with --busy-spin (the tick thread kept waiting for a CPU)",
        net,
        s.contended_ticks,
    )
    yield _counter(
        "spikestream_contended_spells", "Spells of CPU contention begun", net, s.contended_spells
    )
    yield _counter(
        "spikestream_takeovers",
        "Tick stages one tick thread ran for the other, late to begin them",
        net,
        s.takeovers,
    )
    yield _counter(
        "spikestream_early_ticks",
        "Ticks started before their deadlines because a new input had arrived",
        net,
        s.early_ticks,
    )
    yield _gauge(
        "spikestream_tick_thread_fifo_priority",
        "SCHED_FIFO priority of the tick thread (0: ordinary scheduling)",
        net,
        float(s.fifo_priority),
    )
    held = s.cpu_latency_held_us
    yield _gauge(
        "spikestream_cpu_latency_limit_us",
        "CPU wake-up latency limit this process holds, microseconds (-1: none)",
        net,
        float(held) if held is not None else -1.0,
    )
    frames = CounterMetricFamily("spikestream_frames", "Frames produced", labels=["net", "probe"])
    dropped = CounterMetricFamily(
        "spikestream_frames_dropped",
        "Frames dropped: by backpressure, or refused by the link (also in publish_failed)",
        labels=["net", "probe"],
    )
    depth = GaugeMetricFamily(
        "spikestream_queue_depth", "Frames waiting to be published", labels=["net", "probe"]
    )
    for probe, st in es.streams.items():
        frames.add_metric([net, probe], st.frames)
        dropped.add_metric([net, probe], st.dropped)
        depth.add_metric([net, probe], st.queued)
    yield from (frames, dropped, depth)
    accepted = CounterMetricFamily(
        "spikestream_inputs_accepted", "Input messages accepted", labels=["net", "input"]
    )
    stale = CounterMetricFamily(
        "spikestream_inputs_stale",
        "Inputs that fell back after their TTL",
        labels=["net", "input"],
    )
    expired = CounterMetricFamily(
        "spikestream_inputs_expired",
        "Input messages whose TTL or own expiry passed before any tick applied them",
        labels=["net", "input"],
    )
    superseded = CounterMetricFamily(
        "spikestream_inputs_superseded",
        "Input messages a newer one replaced before any tick applied them",
        labels=["net", "input"],
    )
    age = GaugeMetricFamily(
        "spikestream_input_age_seconds",
        "Seconds since the input's last value (+Inf before the first)",
        labels=["net", "input"],
    )
    stale_now = GaugeMetricFamily(
        "spikestream_input_stale",
        "1 while the input runs on its default (no value yet, or its TTL expired)",
        labels=["net", "input"],
    )
    for name, counts in es.inputs.items():
        accepted.add_metric([net, name], counts["accepted"])
        stale.add_metric([net, name], counts["stale"])
        expired.add_metric([net, name], counts["expired"])
        superseded.add_metric([net, name], counts["superseded"])
        fresh = s.freshness[name]
        age.add_metric([net, name], float("inf") if fresh.age is None else fresh.age)
        stale_now.add_metric([net, name], float(fresh.stale))
    yield from (accepted, stale, expired, superseded, age, stale_now)
    rejected = CounterMetricFamily(
        "spikestream_inputs_rejected",
        "Payloads rejected, by reason",
        labels=["net", "reason"],
    )
    for reason, count in s.rejected.items():
        rejected.add_metric([net, reason], count)
    yield rejected
    link = s.link
    yield _counter("spikestream_reconnects", "Reconnections to the broker", net, link.reconnects)
    yield _counter(
        "spikestream_publish_refused",
        "Publishes the broker refused (negative PUBACK)",
        net,
        link.publish_refused,
    )
    yield _counter(
        "spikestream_events_lost",
        "Events dropped before they could be queued for publishing (a queue overflowed)",
        net,
        s.events_lost,  # both sides, as the stats count them
    )
    yield _counter(
        "spikestream_snapshots_failed",
        "Acknowledged snapshots whose file could not be written",
        net,
        s.snapshots_failed,
    )
    yield _counter(
        "spikestream_snapshots_skipped",
        "Periodic snapshots skipped: the one before was still being written",
        net,
        s.snapshots_skipped,
    )
    yield _counter(
        "spikestream_failovers",
        "Moves to the next broker of the --broker list",
        net,
        link.failovers,
    )
    yield _counter(
        "spikestream_frames_resent",
        "Frames a lost connection had not written, or not had acknowledged, sent again first",
        net,
        link.resent,
    )
    yield _counter(
        "spikestream_messages_dropped_unread",
        "Incoming messages past every payload limit, dropped without being held",
        net,
        link.dropped_unread,
    )
    yield _counter(
        "spikestream_messages_too_large",
        "Messages not sent: past the Maximum Packet Size the broker named",
        net,
        link.publish_too_large,
    )
    yield _gauge(
        "spikestream_connected",
        "1 while connected to the broker",
        net,
        float(link.connected),
    )


class MultiCollector(Collector):
    """Merges the families of several services (one family per name, a label per net)."""

    def __init__(self, collectors: list[ServiceCollector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for collector in self.collectors:
            for family in collector.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


def _window_metrics(
    net: str,
    recent: tuple[WindowStatistics, ...],
    work: tuple[WindowStatistics, ...],
    host: tuple[CpuShares | None, ...],
) -> Iterator[Metric]:
    """Gauges over the last 1 s and 10 s (label ``window``), beside the since-start counters
    and histogram: they show an episode while it lasts. NaN when no tick ran in the window.
    ``work``: the ticks' work durations over the same windows; ``host``: the host's CPU
    shares over them (NaN where unknown)."""
    labels = ["net", "window"]
    rf = GaugeMetricFamily(
        "spikestream_window_realtime_factor_actual",
        "Simulated over wall time in the last window",
        labels=labels,
    )
    ticks = GaugeMetricFamily(
        "spikestream_window_ticks", "Ticks run in the last window", labels=labels
    )
    quantiles = GaugeMetricFamily(
        "spikestream_window_tick_lateness_seconds",
        "Tick lateness percentiles in the last window",
        labels=[*labels, "quantile"],
    )
    late_max = GaugeMetricFamily(
        "spikestream_window_tick_lateness_max_seconds",
        "Largest tick lateness in the last window",
        labels=labels,
    )
    share = GaugeMetricFamily(
        "spikestream_window_late_ticks_ratio",
        "Share of the last window's ticks later than the threshold (seconds)",
        labels=[*labels, "threshold"],
    )
    work_quantiles = GaugeMetricFamily(
        "spikestream_window_tick_work_seconds",
        "Percentiles of each tick's work (inputs and kernels) in the last window",
        labels=[*labels, "quantile"],
    )
    work_max = GaugeMetricFamily(
        "spikestream_window_tick_work_max_seconds",
        "Longest work of a tick in the last window",
        labels=labels,
    )
    cpu_busy = GaugeMetricFamily(
        "spikestream_window_cpu_busy_ratio",
        "Share (0..1) of all the host's CPU time spent running anything in the last window",
        labels=labels,
    )
    cpu_steal = GaugeMetricFamily(
        "spikestream_window_cpu_steal_ratio",
        "Share (0..1) of all the host's CPU time the hypervisor stole in the last window",
        labels=labels,
    )
    for w, busy, cpu in zip(recent, work, host, strict=True):
        window = f"{w.seconds:g}s"
        cpu_busy.add_metric([net, window], math.nan if cpu is None else cpu.busy)
        cpu_steal.add_metric([net, window], math.nan if cpu is None else cpu.steal)
        for q, value in (("0.5", busy.lateness.p50), ("0.99", busy.lateness.p99)):
            work_quantiles.add_metric([net, window, q], value)
        work_max.add_metric([net, window], busy.lateness.max)
        lat = w.lateness
        rf.add_metric([net, window], w.realtime_factor_actual)
        ticks.add_metric([net, window], float(w.ticks))
        for q, value in (("0.5", lat.p50), ("0.99", lat.p99), ("0.999", lat.p999)):
            quantiles.add_metric([net, window, q], value)
        late_max.add_metric([net, window], lat.max)
        for threshold in lat.thresholds:
            share.add_metric([net, window, repr(threshold)], w.late_share(threshold))
    yield from (rf, ticks, quantiles, late_max, share, work_quantiles, work_max)
    yield from (cpu_busy, cpu_steal)


def _gauge(name: str, doc: str, net: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=["net"])
    g.add_metric([net], value)
    return g


def _counter(name: str, doc: str, net: str, value: float) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=["net"])
    c.add_metric([net], value)
    return c


class _ServerHandler(ServerHandler):
    """wsgiref's response writer, logging through ``spikestream.serve`` instead of
    printing tracebacks to stderr."""

    def log_exception(self, exc_info: OptExcInfo) -> None:
        if isinstance(exc_info[1], OSError):
            return  # the client timed out, reset or went away mid-answer: its own affair
        log.error("metrics: scrape failed", exc_info=exc_info)


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes for a request that must have arrived whole by ``deadline``
    (``time.monotonic()`` seconds): each read waits only for what is left of it, so a
    client that trickles a byte at a time is closed as surely as a silent one."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive whole within the deadline")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Handler(WSGIRequestHandler):
    """One connection: one request, read within the server's socket timeout in all, and
    answered with each write waiting at most as long."""

    server: _MetricsHTTPServer

    def setup(self) -> None:
        super().setup()
        # A client that connects and says nothing, sends a request line and never its
        # headers, or sends them a byte at a time, is closed when the deadline passes
        # instead of holding a thread and a descriptor.
        timeout = self.server.socket_timeout
        self.connection.settimeout(timeout)  # the answer's writes: sendall's total wait
        self.rfile.close()  # the standard reader, replaced (closing it frees its socket ref)
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, time.monotonic() + timeout))

    def handle(self) -> None:
        """wsgiref's ``handle``, with :class:`_ServerHandler` as the response writer."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error was answered, or the client left
            return
        self.connection.settimeout(self.server.socket_timeout)  # for the answer's writes
        handler = _ServerHandler(
            cast("IO[bytes]", self.rfile),
            cast("IO[bytes]", self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref logs through it
        handler.run(self.server.app)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a line per scrape would drown the service's log."""


class _MetricsHTTPServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, at most ``max_connections`` of them at once.

    Args:
        address: ``(host, port)`` to bind, as ``socket.getaddrinfo`` resolved it.
        family: its address family (``AF_INET`` or ``AF_INET6``).
        app: the WSGI application that answers each request.
        socket_timeout: seconds a connection has to send its whole request, and each
            write of the answer may wait.
        max_connections: connections served at once; one more is answered 503 and closed.
    """

    daemon_threads = True  # a connection's thread never keeps the process alive at exit

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        app: WSGIApplication,
        socket_timeout: float,
        max_connections: int,
    ) -> None:
        self.address_family = family
        self.app = app
        self.socket_timeout = socket_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)  # binds: OSError if it cannot

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as err:
            if err.errno in _OUT_OF_DESCRIPTORS:
                # The connection stays queued, so the listening socket stays readable and
                # an immediate retry would spin a CPU until a descriptor is freed.
                time.sleep(ACCEPT_BACKOFF)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # closes the socket
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            return  # timed out, reset or gone (socketserver's default printed a traceback)
        log.error("metrics: connection from %s failed", client_address, exc_info=True)


_BUSY_BODY = b"too many connections, retry later\n"

#: The answer to a connection past ``max_connections``, sent without waiting.
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)

#: accept() errors of an exhausted resource (descriptors, or kernel memory for the socket):
#: the connection stays queued until some is freed.
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _refuse(request: socket.socket) -> None:
    """Answer 503 if the socket's send buffer takes it at once (a fresh connection's is
    empty), without ever blocking the accept loop."""
    with contextlib.suppress(OSError):
        request.send(_BUSY, socket.MSG_DONTWAIT)


def _head_as_get(app: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps the WSGI ``app`` to answer HEAD as GET without the body (prometheus_client
    answers it 405, which failed HEAD health checks)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "HEAD":
            return app(environ, start_response)
        answer: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return lambda data: None

        body = app({**environ, "REQUEST_METHOD": "GET"}, keep)
        try:
            length = sum(len(chunk) for chunk in body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        status, headers = answer
        start_response(status, [*headers, ("Content-Length", str(length))])
        return []

    return wrapped


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint."""

    def __init__(self, server: _MetricsHTTPServer, thread: threading.Thread, port: int) -> None:
        self._server = server
        self._thread = thread
        self.port = port

    def shutdown(self) -> None:
        """Stop serving: no new connection is accepted, the listening socket is closed.
        Connections being answered finish on their daemon threads (within the socket
        timeout)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_metrics(
    snapshots: list[Callable[[], ServiceStatistics]],
    host: str,
    port: int,
    *,
    socket_timeout: float = SOCKET_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    routes: tuple[str, str] = ("--metrics-host", "--metrics-port"),
) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one) for the services whose
    ``statistics`` methods are ``snapshots``.

    Args:
        routes: where ``host`` and ``port`` came from (a flag, a ``SPIKESTREAM_*``
            variable, the settings file, a default), named in a refusal.
        socket_timeout: seconds a connection has to send its whole request, and each
            write of the answer may wait, before the connection is closed.
        max_connections: connections served at once; one more is answered 503 and closed.

    Raises:
        ConfigError: ``host:port`` cannot be bound (not an address of this machine, a name
            that does not resolve, a port in use or reserved), naming both and the reason.
    """
    # Without describe(), the collectors are kept by the registry only with this: a
    # ``?name[]=`` filtered scrape otherwise found no collector and answered empty.
    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(MultiCollector([ServiceCollector(s) for s in snapshots]))
    try:
        # The family the host resolves to first (an IPv6 address needs AF_INET6), as
        # prometheus_client's own server chose it.
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server = _MetricsHTTPServer(
            (str(sockaddr[0]), port),
            family,
            _head_as_get(make_wsgi_app(registry)),
            socket_timeout,
            max_connections,
        )
    except OSError as err:  # socket.gaierror too: a host that does not resolve
        reason = err.strerror or str(err)
        raise ConfigError(
            f"metrics host {host!r} (from {routes[0]}) and port {port} (from {routes[1]}): "
            f"cannot serve metrics there: {reason}; expected an address of this machine and "
            "a free port"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread, server.server_address[1])
