"""The incoming side of a :class:`~spikestream_client.client.SpikestreamClient`: route each
MQTT message by its topic, decode it once, and hand it to every consumer of that topic.

Messages are handled on the event loop as they arrive (the link's callback). A message
nobody consumes is dropped before decoding and counted; a payload that fails to decode is
counted and logged (the first and every 1000th), never raised: the bus is hostile, the
client keeps going. The :class:`Dispatcher` holds every consumer the client registered
and the state the messages update (status watchers, the last stats, the retained
``describe`` documents, the futures of pending control replies and syncs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from spikestream_client.codec import (
    DEFAULT_MAX_FRAME_BYTES,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Description,
    decode_describe,
    decode_event,
    dropped_unread,
    topics,
    wildcard,
)
from spikestream_client.errors import CodecError
from spikestream_client.names import NAME_RULE, SYNC_LEVEL, is_name
from spikestream_client.streams import EventCallback, FrameCallback, StatusWatcher
from spikestream_client.transport import MessageMeta

__all__ = ["QOS_DATA", "QOS_RARE", "Dispatcher"]

log = logging.getLogger("spikestream_client")

QOS_DATA: Final = 0
"""QoS of the frame and stats subscriptions: real-time data, published at QoS 0."""
QOS_RARE: Final = 1
"""QoS of status, events, describe and sync: rare messages, worth the acknowledgement."""

STATUS_TEXT: Final = {STATUS_ONLINE: "online", STATUS_OFFLINE: "offline"}
STATUS_CHARS: Final = 200
"""Most characters of a status text kept (a status other than online/offline)."""
_MAX_ROUTES: Final = 4096
_MAX_NETWORKS: Final = 4096  # networks remembered by watch_networks (bounded memory)
DESCRIBED_BYTES: Final = 16 * 2**20
"""Most bytes of describe documents (as they arrived) a watching client holds decoded,
about 20 times that in memory for one of long lists: thousands of ordinary networks (a
few KiB each), or 16 of the largest (1 MiB, :data:`DEFAULT_MAX_DESCRIBE_BYTES`)."""


class Dispatcher:
    """Routes, decodes and fans out the messages of one client's connection.

    Args:
        prefix: The services' topic prefix (validated by the client).

    The client registers consumers in :attr:`frame_sinks`, :attr:`event_sinks`,
    :attr:`stats_sinks` and :attr:`status` and subscribes to what :meth:`filters` lists;
    :meth:`on_message` is the link's message callback.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # (net, probe or None) -> callbacks; net -> callbacks for the other topics.
        self.frame_sinks: dict[tuple[str, str | None], list[FrameCallback]] = {}
        self.event_sinks: dict[str, list[EventCallback]] = {}
        self.stats_sinks: dict[str, list[EventCallback]] = {}
        self.status: dict[str, StatusWatcher] = {}
        self.latest_stats: dict[str, dict[str, Any]] = {}
        # Control request id -> the future of its reply; sync topic -> its future.
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.sync_waiters: dict[str, asyncio.Future[None]] = {}
        # Every network's retained describe document and status, once watching (the
        # client's watch_networks() subscribed to them).
        self.watching = False
        self.descriptions: dict[str, Description] = {}
        self.described_bytes = 0  # the payload bytes of those held, and each one's
        self._described_bytes: dict[str, int] = {}
        self.descriptions_dropped = 0
        self.seen_status: dict[str, str | None] = {}
        self._routes: dict[str, tuple[str, str, str | None]] = {}
        self.messages = 0
        self.frames = 0
        self.decode_errors = 0
        self.frames_refused = 0  # of decode_errors: on an out/ topic (see ClientStatistics)
        self.unrouted = 0
        # Copies of one frame: a broker may send one per matching subscription, and a
        # probe's own consumer beside the network's every-probe one subscribes out/<probe>
        # and out/+ (each frame came twice to both). Only kept for such probes.
        self.frames_duplicate = 0
        self._last_payload: dict[tuple[str, str | None], bytes] = {}
        self.callback_errors = 0

    def filters(self) -> list[tuple[str, int]]:
        """``(topic filter, QoS)`` of every subscription the consumers need."""
        out: list[tuple[str, int]] = []
        for net, probe in self.frame_sinks:
            t = topics(self.prefix, net)
            out.append((t.outs_filter if probe is None else t.out(probe), QOS_DATA))
        out += [(topics(self.prefix, net).events, QOS_RARE) for net in self.event_sinks]
        out += [(topics(self.prefix, net).stats, QOS_DATA) for net in self.stats_sinks]
        out += [(topics(self.prefix, net).status, QOS_RARE) for net in self.status]
        if self.watching:
            out += [(wildcard(self.prefix, leaf), QOS_RARE) for leaf in ("describe", "status")]
        return out

    def sync_topic(self, token: str, n: int) -> str:
        """``<prefix>/_sync/<token>/<n>``: a private topic of the client's :meth:`sync`
        (routed back to :attr:`sync_waiters`)."""
        return f"{self.prefix}/{SYNC_LEVEL}/{token}/{n}"

    def close(self, error: BaseException) -> None:
        """End the status watchers and fail every pending reply and sync with ``error``."""
        for watcher in self.status.values():
            watcher._close()
        waiters: list[asyncio.Future[Any]] = [*self.replies.values()]
        waiters += self.sync_waiters.values()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(error)
                fut.exception()  # retrieved: no "never retrieved" warning if nobody awaits

    def _route(self, topic: str) -> tuple[str, str, str | None] | None:
        """``(net, what, probe)`` for a topic under our prefix; what is out/status/events/
        stats/sync."""
        route = self._routes.get(topic)
        if route is not None:
            return route
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if parts[0] == SYNC_LEVEL:
            return ("", "sync", None)
        if len(parts) == 3 and parts[1] == "out":
            route = (parts[0], "out", parts[2])
        elif len(parts) == 2 and parts[1] in ("status", "events", "stats", "describe"):
            route = (parts[0], parts[1], None)
        else:
            return None
        if not is_name(route[0]) or (route[2] is not None and not is_name(route[2])):
            # No service has such a name (the rule every network and probe follows), and
            # it would reach terminals and pages (ls printed a bidi override raw).
            return (route[0], "badname", route[2])
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[topic] = route
        return route

    def on_message(self, topic: str, payload: bytes, meta: MessageMeta) -> None:
        """The link's message callback: route, decode once, fan out (never raises for
        what arrives)."""
        self.messages += 1
        route = self._route(topic)
        if route is None:
            self.unrouted += 1
            return
        net, what, probe = route
        if meta.oversize is not None and what != "sync":  # dropped unread by the link
            if what == "out":
                self.frames_refused += 1
            self._decode_error(
                f"message on {topic!r:.80}",
                dropped_unread("a", meta.oversize, DEFAULT_MAX_FRAME_BYTES),
            )
            return
        if what == "badname":
            self._decode_error(
                f"message on {topic!r:.80}",
                CodecError(f"the topic's network or probe name breaks the rule: {NAME_RULE}"),
            )
        elif what == "out":
            if meta.retain:  # a service never retains frames: an old or forged copy
                self.frames_refused += 1
                self._decode_error(
                    f"frame on {net!r:.80}/out/{probe!r:.80}",
                    CodecError("a retained frame is ignored: a service never retains frames"),
                )
                return
            self._on_frame(net, probe, payload)
        elif what == "status":
            watcher = self.status.get(net)
            text = _status_text(payload)
            if watcher is not None:
                watcher._set(text)
            if self.watching and (net in self.seen_status or len(self.seen_status) < _MAX_NETWORKS):
                self.seen_status[net] = text
        elif what == "describe":
            self._on_describe(net, payload)
        elif what == "sync":
            fut = self.sync_waiters.get(topic)
            if fut is not None and not fut.done():
                fut.set_result(None)
        else:
            self._on_json(net, what, payload)

    def forget_statuses(self) -> None:
        """The connection was lost: every watched status is unknown until sent again (a
        restarted broker holds no retained status; the old ``online`` would be believed
        while the service is still reconnecting, and values published then are lost)."""
        for watcher in self.status.values():
            watcher._forget()

    def _on_frame(self, net: str, probe: str | None, payload: bytes) -> None:
        one = self.frame_sinks.get((net, probe))
        every = self.frame_sinks.get((net, None))
        if not one and not every:
            self.unrouted += 1
            return
        if one and every:  # two subscriptions match: a frame may come once per each
            if self._last_payload.get((net, probe)) == payload:
                self.frames_duplicate += 1  # its seq and tick make a frame's bytes unique
                return
            self._last_payload[(net, probe)] = payload
        # Imported here, not at the top: the frame decoder needs numpy, which a tool that
        # only lists or controls networks never loads (a dict lookup once it is loaded).
        from spikestream_client.codec.frames import decode_frame

        try:
            frame = decode_frame(payload)
            h = frame.header
            if h.net != net or h.probe != probe:
                # Consumers key their views on the header; a frame must not be able to
                # pose as another probe's (or network's) by lying about its name.
                msg = (
                    f"frame header names net {h.net!r}, probe {h.probe!r} but arrived on "
                    f"net {net!r:.80}, probe {probe!r:.80}"
                )
                raise CodecError(msg)
        except CodecError as err:
            self.frames_refused += 1
            # repr: topic levels come from the bus and may hold terminal escapes.
            self._decode_error(f"frame on {net!r:.80}/out/{probe!r:.80}", err)
            return
        self.frames += 1
        for sinks in (one, every):
            if sinks:
                for sink in list(sinks):
                    try:
                        sink(frame)
                    except Exception:
                        self._callback_failed()

    def _on_describe(self, net: str, payload: bytes) -> None:
        if not self.watching:
            self.unrouted += 1
            return
        if not payload:  # an empty retained message clears it
            self.descriptions.pop(net, None)
            self.described_bytes -= self._described_bytes.pop(net, 0)
            return
        try:
            found = decode_describe(payload, prefix=self.prefix)
            if found.net != net:
                msg = f"the document names net {found.net!r} but arrived on {net!r:.80}"
                raise CodecError(msg)
        except CodecError as err:
            self._decode_error(f"describe of {net!r:.80}", err)
            return
        # Bounded in number and in bytes: a 1 MiB document decodes to about 20 MB.
        old = self._described_bytes.pop(net, 0)
        if (net in self.descriptions or len(self.descriptions) < _MAX_NETWORKS) and (
            self.described_bytes - old + len(payload) <= DESCRIBED_BYTES
        ):
            self.descriptions[net] = found
            self._described_bytes[net] = len(payload)
            self.described_bytes += len(payload) - old
        else:
            if net in self.descriptions:
                self._described_bytes[net] = old  # the one held stays
            # (a network never held leaves no entry: refused names cannot pile up)
            self.descriptions_dropped += 1
            if self.descriptions_dropped == 1 or self.descriptions_dropped % 1000 == 0:
                log.warning(
                    "describe of %r not kept: %d documents of %d bytes held, at most %d "
                    "networks and %d bytes (%d not kept so far)",
                    net,
                    len(self.descriptions),
                    self.described_bytes,
                    _MAX_NETWORKS,
                    DESCRIBED_BYTES,
                    self.descriptions_dropped,
                )

    def _on_json(self, net: str, what: str, payload: bytes) -> None:
        sinks = (self.event_sinks if what == "events" else self.stats_sinks).get(net)
        if not sinks:
            self.unrouted += 1
            return
        try:
            obj = decode_event(payload)
        except CodecError as err:
            self._decode_error(f"{what} of {net!r:.80}", err)
            return
        if what == "stats":
            self.latest_stats[net] = obj
        else:
            request = obj.get("id")
            if isinstance(request, str) and obj.get("event") in ("control_ok", "control_rejected"):
                fut = self.replies.get(request)
                if fut is not None and not fut.done():
                    fut.set_result(obj)
        for sink in list(sinks):
            try:
                sink(obj)
            except Exception:
                self._callback_failed()

    def _decode_error(self, what: str, err: CodecError) -> None:
        self.decode_errors += 1
        if self.decode_errors == 1 or self.decode_errors % 1000 == 0:
            log.warning("cannot decode %s (%d so far): %s", what, self.decode_errors, err)

    def _callback_failed(self) -> None:
        self.callback_errors += 1
        if self.callback_errors == 1 or self.callback_errors % 1000 == 0:
            log.exception("a client callback failed (%d so far)", self.callback_errors)


def _status_text(payload: bytes) -> str | None:
    known = STATUS_TEXT.get(payload)
    if known is not None:
        return known
    # Anyone who may publish on the status topic chooses this text, and it reaches
    # terminals and web pages: at most STATUS_CHARS characters of it are kept (decoding
    # only the bytes that can hold them), as every other string from the bus is cut.
    text = payload[: 4 * STATUS_CHARS].decode("utf-8", "replace").strip()[:STATUS_CHARS]
    return text or None  # an empty retained payload clears the status
