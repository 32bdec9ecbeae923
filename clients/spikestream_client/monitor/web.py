"""``spikestream monitor --web PORT``: the monitor in a browser.

One ``websockets`` server does both jobs on one port: plain HTTP GETs receive the page
(``/``, ``/monitor.js``, ``/monitor.css`` from the package's ``web/`` folder, no CDN),
and ``/ws`` upgrades to a WebSocket that streams compact JSON.

The Python side decodes every frame with :mod:`spikestream_client.codec` (through
:class:`~spikestream_client.client.SpikestreamClient`, connected by :mod:`.session`, as
the terminal view is) and, about 20 times a second,
sends each page one **batch**: per probe, the spikes that arrived (absolute ticks and
neuron ids), value rows decimated to about 250 per second (first 8 components), and the
tick ranges the frames covered, so the page can shade gaps. About 5 times a second a
**summary** follows (:class:`~spikestream_client.monitor.aggregate.Snapshot` as JSON): status,
stats, real-time factor, lateness, drops and gaps. Message formats::

    {"type": "hello", "net": "seed", "window": 2.0, "version": 1}
    {"type": "batch", "wall": 1.7e9, "skipped": 0, "probes": {
        "a_spikes": {"kind": "spikes", "n": 50, "dt": 0.001, "base": 1200,
                     "t": [0, 0, 3], "i": [4, 17, 9], "cov": [[1200, 1250]], "thinned": 0},
        "u": {"kind": "values", "shape": [1], "dt": 0.001, "base": 1200,
              "t": [0, 4, 8], "v": [[0.1], [0.12], [0.13]], "cov": [[1200, 1250]]}}}
    {"type": "summary", "service": {...}, "probes": [{...}, ...],
     "inputs": [{"name": "u", "age_ms": 12.5, "stale": false}, ...], "inputs_hidden": 0,
     "ignored_probes": 0, "ignored_frames": 0, "shortened": 0, "limits": ""}

A page that reads too slowly loses whole batches (counted in ``skipped``), never stalls
the bridge: each page has a small queue of its own (each message is encoded once, for
all pages). A page that stops reading is dropped (``SEND_TIMEOUT_S``), and at most
``MAX_PAGES`` are served at once. Only the probes the model shows are forwarded (at
most ``MAX_PROBES``, the first to arrive): the page makes a panel per probe, so invented
probe names would otherwise add panels to it without end; the ones left out are counted
in the summary (``ignored_probes``) and said on the page (``limits``).

Only this monitor's own pages are served (:class:`WebAccess`): a request whose ``Host``
header is not one of the monitor's addresses (localhost names, the bound address, at
the bound port) gets 403, which defeats DNS rebinding, and so does a WebSocket whose
``Origin`` is another site's, which stops any web page the user has open from reading
the stream. ``--web-allow-origin URL`` adds addresses (a LAN name, a reverse proxy).
A request without exactly one ``Host`` gets 400, one with several ``Origin`` 403. A
connection that closes, or sends something other than HTTP, before a complete request is
routine on an open port: it costs one DEBUG line, not an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from spikestream_client.aio import First, first_of
from spikestream_client.client import SpikestreamClient
from spikestream_client.codec import Frame, SpikeFrame, ValueFrame
from spikestream_client.errors import ConfigError
from spikestream_client.logs import report
from spikestream_client.monitor.aggregate import (
    MAX_PROBES,
    RECENT_KEYS,
    RECENT_WINDOWS,
    MonitorModel,
    Snapshot,
    finite_float,
    limits_text,
    recent_stat,
)
from spikestream_client.monitor.session import (
    MonitorOptions,
    open_session,
    refresh_model,
)
from spikestream_client.monitor.spikecounts import newest_spikes, spike_count
from spikestream_client.monitor.webgate import (
    LOCAL_NAMES,
    WILDCARDS,
    HandshakeLog,
    MethodGate,
    WebAccess,
    parse_origin,
)
from spikestream_client.safetext import printable
from spikestream_client.tool import interruptible_sleep, subscribe_frames

__all__ = [
    "ASSETS",
    "LOCAL_NAMES",
    "MAX_PAGES",
    "SEND_TIMEOUT_S",
    "WEB_DIR",
    "WebAccess",
    "WebBridge",
    "check_web_options",
    "parse_origin",
    "run_web",
    "serve_web",
    "snapshot_json",
    "start_web_server",
]

log = logging.getLogger("spikestream_client.web")

PROTOCOL_VERSION: Final = 1
ASSETS: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/monitor.js": ("monitor.js", "text/javascript; charset=utf-8"),
    "/monitor.css": ("monitor.css", "text/css; charset=utf-8"),
}
"""URL path -> (file in ``spikestream_client/web/``, content type)."""
SEND_TIMEOUT_S: Final = 5.0
"""Seconds one message may wait for a page's socket before the page is dropped: a page
that stops reading (a frozen tab, a stuck proxy) would otherwise keep its connection, fd
and a full kernel send queue (about 4 MB) forever, as websockets' keepalive ping queues
behind the full buffer. A live page reconnects on its own; a slow one loses batches."""
MAX_PAGES: Final = 32
"""Most pages (``/ws`` connections) served at once; further upgrades get 503. Each costs
a queue, a copy of every message and a socket with its buffers: without a bound any
local process could open pages until the monitor and its own MQTT link starve."""
_STATS_KEYS: Final = (
    "tick",
    "t",
    "paused",
    "spin_contended",
    "realtime_factor",
    "realtime_factor_actual",
    "late_p50_ms",
    "late_p99_ms",
    "late_max_ms",
    "overruns",
    "skipped_ticks",
    "behind_ms",
    "dropped",
    "connects",
)


WEB_DIR: Final = Path(__file__).parent.parent / "web"
"""The page's files (``spikestream_client/web/``, shipped as package data)."""


def _asset(name: str) -> bytes:
    return (WEB_DIR / name).read_bytes()


def _clean(x: float) -> float | None:
    """JSON has no NaN/inf: send null."""
    return x if math.isfinite(x) else None


def _scalar(value: object) -> bool | int | float | str | None:
    """A stats or event value from the bus as a JSON scalar the page can show: finite
    numbers, booleans, strings (cut to 200 characters); anything else is null.

    JSON from the bus may hold ``1e999`` (parsed as inf), lists or objects where the
    page expects a number; ``json.dumps(allow_nan=False)`` would raise on the first. An
    integer no float holds (400 digits) is null too: the page reads numbers as doubles,
    so it would arrive as Infinity."""
    if value is None or type(value) is bool:
        return value
    if type(value) is int:
        return value if finite_float(value) is not None else None
    if type(value) is float:
        return _clean(value)
    if type(value) is str:
        return value[:_TEXT_CHARS]
    return None


_TEXT_CHARS: Final = 200
_MAX_VALUE_ROWS: Final = 8192
"""Most decimated value rows per probe per batch (each frame's last row comes on top):
a frame may claim millions of ticks, and the rows are built in Python on the event loop."""


def _text(value: str | None) -> str | None:
    """A string from the bus cut to 200 characters, as :func:`_scalar` cuts them."""
    return None if value is None else value[:_TEXT_CHARS]


def _event_json(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of an event the page shows, as JSON scalars."""
    return {k: _scalar(event.get(k)) for k in ("event", "error", "input", "cmd")}


def _ranges(frames: Iterable[Frame]) -> list[list[int]]:
    """Merged ``[start, end)`` tick ranges covered by ``frames``."""
    out: list[list[int]] = []
    for f in frames:
        start, end = f.header.tick, f.header.tick + f.header.ticks
        if out and out[-1][0] <= start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The JSON summary of ``snap`` for the page (no arrays but the latest values)."""
    svc = snap.service
    stats = None
    if svc.stats is not None:
        stats = {k: _scalar(svc.stats.get(k)) for k in _STATS_KEYS}
        # The recent windows, flattened (window_1s_late_p99_ms, ...) as scalars too.
        for window in RECENT_WINDOWS:
            for key in RECENT_KEYS:
                stats[f"{window}_{key}"] = _scalar(recent_stat(svc.stats, window, key))
    return {
        "type": "summary",
        "net": snap.net,
        "wall": snap.wall,
        "service": {
            "status": _text(svc.status),
            "connected": svc.connected,
            "stats": stats,
            "stats_age": None if svc.stats_age is None else _clean(svc.stats_age),
            "rtf_frames": _clean(svc.rtf_frames),
            "late_max_frames": _clean(svc.late_max_frames),
            "gaps": svc.gaps,
            "missing": svc.missing,
            "dropped": svc.dropped,
            "events": {_text(k): v for k, v in svc.events.items()},
            "last_event": _event_json(svc.last_events[-1]) if svc.last_events else None,
        },
        "probes": [
            {
                "name": p.name,
                "kind": p.kind,
                "size": list(p.size) if isinstance(p.size, tuple) else p.size,
                "frames": p.frames,
                "fps": _clean(p.fps),
                "rate": _clean(p.rate),
                "gaps": p.gaps,
                "missing": p.missing,
                "dropped": p.dropped,
                "late_max": _clean(p.late_max),
                "lag": _clean(p.lag),
                "covered": _clean(p.covered),
                "latest": [_clean(v) for v in p.latest.tolist()],
            }
            for p in snap.probes
        ],
        # Each input's freshness from the latest stats, already checked by the model:
        # age_ms is a finite number >= 0 or null, stale a boolean or null.
        "inputs": [{"name": i.name, "age_ms": i.age_ms, "stale": i.stale} for i in snap.inputs],
        "inputs_hidden": snap.inputs_hidden,
        # What the model leaves out (its bounds), for the page to say.
        "ignored_probes": snap.ignored_probes,
        "ignored_frames": snap.ignored_frames,
        "shortened": snap.shortened,
        "limits": limits_text(snap),
    }


class _Peer:
    """One connected page: a small queue of pending messages of its own.

    The queue holds the encoded text shared by all pages, and whether it is a batch: a
    batch gets this page's ``skipped`` count spliced in when it is taken for sending."""

    def __init__(self, limit: int) -> None:
        self.queue: deque[tuple[str, bool]] = deque()
        self.limit = limit
        self.skipped = 0
        self.ready = asyncio.Event()

    def offer(self, text: str, batch: bool) -> None:
        """Queue the encoded JSON object ``text``; the oldest goes when the queue is full."""
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.skipped += 1
        self.queue.append((text, batch))
        self.ready.set()

    def take(self) -> str:
        """The oldest queued message as this page receives it."""
        text, batch = self.queue.popleft()
        if not batch:
            return text
        # ``{"skipped":N,`` + the rest of the object: a copy of the text, not a second
        # encoding; the page reads ``msg.skipped`` whatever the order of the keys.
        return f'{{"skipped":{self.skipped},{text[1:]}'


@dataclass
class _Pending:
    frames: list[Frame]
    overflow: int = 0


class WebBridge:
    """Collects frames between batches and streams them to every connected page.

    Args:
        net: Network name (sent in the hello).
        window: Seconds the page shows.
        value_rate: Value rows per second forwarded per probe (decimated by tick).
        max_spikes: Most spikes forwarded per probe per batch (the most recent win;
            the rest are counted as ``thinned``).
        max_frames: Most frames held per probe between batches.
        shows: Whether a probe is shown (:meth:`MonitorModel.shows`, which sees each
            frame first); frames of other probes are not forwarded. None: forward the
            first ``MAX_PROBES`` probes of each batch.
        send_timeout: Seconds one message may wait for a page's socket before the page
            is dropped (:data:`SEND_TIMEOUT_S`).
        max_pages: Most pages served at once (:data:`MAX_PAGES`).
    """

    def __init__(
        self,
        net: str,
        *,
        window: float = 2.0,
        value_rate: float = 250.0,
        max_spikes: int = 20000,
        max_frames: int = 4096,
        shows: Callable[[str], bool] | None = None,
        send_timeout: float = SEND_TIMEOUT_S,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.net = net
        self.send_timeout = send_timeout
        self.max_pages = max_pages
        self.shows = shows
        self.window = window
        self.value_rate = value_rate
        self.max_spikes = max_spikes
        self.max_frames = max_frames
        self.peers: set[_Peer] = set()
        self._pending: dict[str, _Pending] = {}
        self.batches = 0
        self.spikes_sent = 0
        self.access: WebAccess | None = None
        """Set once the server listens; until then every request is refused."""
        self.refused = 0
        """Requests refused for a foreign, missing or repeated ``Host`` or ``Origin``, or
        for a method other than GET."""
        self.stalled = 0
        """Pages dropped because a message waited ``send_timeout`` for their socket."""
        self.over_cap = 0
        """Pages refused because ``max_pages`` were open."""

    def on_frame(self, frame: Frame) -> None:
        """Hold ``frame`` for the next batch (O(1))."""
        pending = self._pending.get(frame.header.probe)
        if pending is None:
            if self.shows is not None and not self.shows(frame.header.probe):
                return  # the model counts it, and the summary says so
            if len(self._pending) >= MAX_PROBES:
                return  # a flood of invented probe names; the model counts them
            pending = self._pending[frame.header.probe] = _Pending([])
        if len(pending.frames) >= self.max_frames:
            pending.frames.pop(0)
            pending.overflow += 1
        pending.frames.append(frame)

    def hello(self) -> str:
        """The first message a page receives."""
        return json.dumps(
            {"type": "hello", "net": self.net, "window": self.window, "version": PROTOCOL_VERSION}
        )

    def batch(self) -> dict[str, Any] | None:
        """Everything that arrived since the last batch, or None if nothing did."""
        pending, self._pending = self._pending, {}
        probes: dict[str, Any] = {}
        for name, held in pending.items():
            last = held.frames[-1]
            frames = [f for f in held.frames if f.kind == last.kind]
            if isinstance(last, SpikeFrame):
                probes[name] = self._spikes([f for f in frames if isinstance(f, SpikeFrame)])
            else:
                probes[name] = self._values([f for f in frames if isinstance(f, ValueFrame)])
            probes[name]["overflow"] = held.overflow
        if not probes:
            return None
        self.batches += 1
        return {"type": "batch", "wall": time.time(), "probes": probes}

    def _spikes(self, frames: list[SpikeFrame]) -> dict[str, Any]:
        last = frames[-1]
        base = frames[0].header.tick
        ticks: list[npt.NDArray[np.int64]] = []
        neurons: list[npt.NDArray[np.int64]] = []
        # Newest first, and only as many spikes as are sent: expanding every frame and
        # thinning afterwards made one all-ones 16 MiB bitmask frame cost GiBs. The rest
        # are counted (without expanding them) as `thinned`.
        room = self.max_spikes
        total = 0
        for f in reversed(frames):
            total += spike_count(f)
            if room > 0:
                off, idx = newest_spikes(f, room)
                ticks.append(off + (f.header.tick - base))
                neurons.append(idx)
                room -= off.size
        empty = np.zeros(0, np.int64)
        t = np.concatenate(ticks[::-1]) if ticks else empty
        i = np.concatenate(neurons[::-1]) if neurons else empty
        thinned = total - int(t.size)
        self.spikes_sent += int(t.size)
        return {
            "kind": "spikes",
            "n": last.n,
            "dt": last.header.dt,
            "base": base,
            "t": t.tolist(),
            "i": i.tolist(),
            "cov": _ranges(frames),
            "thinned": thinned,
        }

    def _values(self, frames: list[ValueFrame]) -> dict[str, Any]:
        last = frames[-1]
        base = frames[0].header.tick
        dt = last.header.dt
        stride = max(1, round(1.0 / (dt * self.value_rate)))
        total = sum(f.header.ticks for f in frames)
        stride = max(stride, -(-total // _MAX_VALUE_ROWS))  # ceil: at most so many rows
        ticks: list[int] = []
        rows: list[list[float | None]] = []
        for f in frames:
            h = f.header
            data = f.data.reshape(h.ticks, -1)[:, :8]
            first = (-h.tick) % stride
            for k in range(first, h.ticks, stride):
                ticks.append(h.tick + k - base)
                rows.append([_clean(v) for v in data[k].tolist()])
            # Always send each frame's last row, so a slow signal still updates promptly.
            if h.ticks and (h.ticks - 1 - first) % stride:
                ticks.append(h.tick + h.ticks - 1 - base)
                rows.append([_clean(v) for v in data[-1].tolist()])
        return {
            "kind": "values",
            "shape": list(last.shape),
            "dt": dt,
            "base": base,
            "t": ticks,
            "v": rows,
            "cov": _ranges(frames),
        }

    def broadcast(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for every page (each page's ``skipped`` count rides along).

        The message is JSON-encoded once, whatever the number of pages: encoding it per
        page took 205 ms of each 50 ms period with 1000 pages. A batch's ``skipped`` is
        spliced into the shared text as it is sent to each page (:meth:`_Peer.take`)."""
        if not self.peers:
            return
        batch = message["type"] == "batch"
        body = {k: v for k, v in message.items() if k != "skipped"} if batch else message
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        for peer in self.peers:
            peer.offer(text, batch)

    # ------------------------------------------------------------------ serving
    async def handler(self, ws: ServerConnection) -> None:
        """One page's WebSocket: hello, then batches and summaries until it goes away,
        or until one message has waited ``send_timeout`` seconds for its socket."""
        peer = _Peer(limit=16)
        self.peers.add(peer)
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            await self._send(ws, self.hello())
            while True:
                # ``closed`` is waited on every pass, so it is shielded from the race.
                got = await first_of(peer.ready.wait(), asyncio.shield(closed))
                if not isinstance(got, First):  # the page went away, or the server stops
                    return
                peer.ready.clear()
                while peer.queue:
                    await self._send(ws, peer.take())
        except ConnectionClosed:
            pass
        except TimeoutError:
            # The page stopped reading: a close handshake would queue behind the full
            # buffer too, so the transport goes now (the fd and kernel queue with it).
            ws.transport.abort()
            self.stalled += 1
            if self.stalled == 1 or self.stalled % 100 == 0:
                log.warning(
                    "web monitor: dropped a page that read nothing for %.1f s (%d so far)",
                    self.send_timeout,
                    self.stalled,
                )
        finally:
            closed.cancel()
            self.peers.discard(peer)

    async def _send(self, ws: ServerConnection, text: str) -> None:
        """Send ``text`` within ``send_timeout`` seconds, or raise TimeoutError."""
        await asyncio.wait_for(ws.send(text), self.send_timeout)

    def _refuse(self, connection: ServerConnection, what: str, values: list[str]) -> Response:
        """Refuse a request for its ``what`` headers ``values`` (missing, repeated or
        foreign)."""
        self.refused += 1
        if len(values) == 1:
            status = HTTPStatus.FORBIDDEN
            reason = f"{what} {printable(values[0], 100)!r}"
            hint = "; allow it with --web-allow-origin URL"
            text = f"forbidden: the {what} header does not name this monitor\n"
        else:
            # RFC 9110/9112: a request needs exactly one Host (400 otherwise); a browser
            # sends at most one Origin. Which of several would a proxy have checked?
            status = HTTPStatus.BAD_REQUEST if what == "Host" else HTTPStatus.FORBIDDEN
            reason = f"{len(values)} {what} headers"
            hint = ""
            text = f"{status.phrase.lower()}: {reason}, expected one\n"
        self._log_refusal(reason, hint)
        return connection.respond(status, text)

    def refuse_method(self, method: str) -> None:
        """Count a request answered 405 for its ``method`` (:mod:`.webgate`)."""
        self.refused += 1
        self._log_refusal(f"method {method}", "")

    def _log_refusal(self, reason: str, hint: str) -> None:
        """Log the first refusal and every 100th."""
        if self.refused == 1 or self.refused % 100 == 0:
            log.warning(
                "web monitor: refused a request with %s (%d refused so far)%s",
                reason,
                self.refused,
                hint,
            )

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Check ``Host`` and ``Origin``; serve the page's files; let ``/ws`` through to
        the WebSocket handshake while fewer than ``max_pages`` pages are open."""
        access = self.access
        # get_all, not get: get raises MultipleValuesError on a repeated header.
        hosts = request.headers.get_all("Host")
        if access is None or len(hosts) != 1 or not access.host_ok(hosts[0]):
            return self._refuse(connection, "Host", hosts)
        origins = request.headers.get_all("Origin")
        if len(origins) > 1 or not access.origin_ok(origins[0] if origins else None):
            return self._refuse(connection, "Origin", origins)
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            # Enough as a bound: nothing is awaited between this check and the handler
            # adding its page (websockets writes the 101 without waiting), so pages
            # opened together cannot overshoot it.
            if len(self.peers) >= self.max_pages:
                self.over_cap += 1
                if self.over_cap == 1 or self.over_cap % 100 == 0:
                    log.warning("web monitor: %d pages open, refused one", self.max_pages)
                text = f"too many pages: at most {self.max_pages} are served at once\n"
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, text)
            return None
        asset = ASSETS.get(path)
        if asset is None:
            # The path may hold any byte (as a surrogate escape), which cannot be encoded
            # in the answer: only its printable characters are echoed.
            text = f"no such page: {printable(path, 100)}\n"
            return connection.respond(HTTPStatus.NOT_FOUND, text)
        name, content_type = asset
        body = _asset(name)
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ]
        )
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)


def _port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise ConfigError("the web monitor's server has no listening socket")


#: Time bins of the model behind the page: the summary sends none of the model's binned
#: arrays (the page draws from the batches), so any count in 4..400 serves.
_MODEL_BINS: Final = 30


async def run_web(options: MonitorOptions, stop: asyncio.Event) -> int:
    """Connect (:func:`~.session.open_session`) and serve the browser monitor; returns the
    exit code."""
    check_web_options(options)  # the flags alone, before the broker is reached
    async with open_session(options, bins=options.bins or _MODEL_BINS) as (client, model):
        return await serve_web(client, model, options, stop)


def check_web_options(options: MonitorOptions) -> int:
    """Refuse a ``--web`` port or a ``--web-allow-origin`` no server can use; returns the
    port.

    :func:`run_web` calls it before it connects: checked only once the broker had been
    reached and the network found, a bad flag was said after ten seconds of retries (as a
    broker that cannot be reached) when no broker answered.

    Raises:
        ConfigError: The message names the flag and what arrived.
    """
    if options.web is None or not 0 <= options.web <= 65535:
        raise ConfigError(f"--web must be a TCP port in 0..65535, got {options.web}")
    for url in options.web_allow_origins:
        parse_origin(url)  # a bad flag fails before anything listens
    return options.web


async def serve_web(
    client: SpikestreamClient, model: MonitorModel, options: MonitorOptions, stop: asyncio.Event
) -> int:
    """Serve the browser monitor for ``options.net`` until stopped or ``options.duration``.

    Prints ``web monitor: http://HOST:PORT/`` (the real port when ``--web 0``) on stdout.
    """
    web_port = check_web_options(options)
    # The model was subscribed first (open_session), so it has seen each frame, and
    # decided whether its probe is shown, before the bridge does.
    bridge = WebBridge(options.net, window=max(options.window, 2.0), shows=model.shows)
    subscribe_frames(client, options.net, options.probes, bridge.on_frame)
    server = await start_web_server(bridge, options.host, web_port, options.web_allow_origins)
    try:
        port = _port(server)
        shown = f"[{options.host}]" if ":" in options.host else options.host
        report("web monitor", f"http://{shown}:{port}/", stdout=True)
        if options.host.strip("[]") in WILDCARDS and not options.web_allow_origins:
            report(
                "web monitor",
                "listening on all addresses, but only pages opened as localhost are served; "
                f"add --web-allow-origin http://NAME:{port} for each name or address the page "
                "is opened by",
                level=logging.WARNING,
            )
        started = time.monotonic()
        period = 0.05
        beat = 0
        while not stop.is_set():
            refresh_model(client, model, options.net)
            message = bridge.batch()
            if message is not None:
                bridge.broadcast(message)
            if beat % 4 == 0:
                bridge.broadcast(snapshot_json(model.snapshot()))
            beat += 1
            elapsed = time.monotonic() - started
            if options.duration is not None and elapsed >= options.duration:
                break
            if await interruptible_sleep(stop, period - elapsed % period):
                break
    finally:
        server.close()
        await server.wait_closed()
    report(
        "web monitor",
        f"sent {bridge.batches} batches, {bridge.spikes_sent} spikes; refused "
        f"{bridge.refused} requests; dropped {bridge.stalled} pages that stopped reading, "
        f"refused {bridge.over_cap} over {bridge.max_pages} pages",
    )
    return 0


def _gate_for(bridge: WebBridge) -> type[MethodGate]:
    """The server connection class that answers other methods than GET with 405 and
    counts each in ``bridge.refused``."""

    class Gate(MethodGate):
        def refused(self, method: str) -> None:
            bridge.refuse_method(method)

    return Gate


async def start_web_server(
    bridge: WebBridge, host: str, port: int, allow_origins: Sequence[str] = ()
) -> Server:
    """Listen on ``host:port`` (0: any free port) for ``bridge``'s pages and WebSocket.

    Requests are refused until the server listens and ``bridge.access`` names its real
    address and port.

    Raises:
        ConfigError: The address cannot be bound, or an origin in ``allow_origins`` is
            malformed.
    """
    try:
        server = await serve(
            bridge.handler,
            host,
            port,
            process_request=bridge.process_request,
            create_connection=_gate_for(bridge),
            compression=None,
            max_size=65536,
            logger=HandshakeLog(log, {}),
        )
    except OSError as err:
        msg = f"cannot serve the web monitor on {host}:{port}: {err}"
        raise ConfigError(msg) from None
    try:
        bridge.access = WebAccess(host, _port(server), allow_origins)
    except ConfigError:
        server.close()
        await server.wait_closed()
        raise
    return server
