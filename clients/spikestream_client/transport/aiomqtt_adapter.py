"""The one module that talks to aiomqtt and paho-mqtt: a single MQTT connection.

Everything else in spikestream reaches the broker through :class:`Connection` (and
:class:`PropertiesCache`); no other module imports aiomqtt or paho,
so no other module can lean on their private names
(``tests/transport/test_private_names.py`` enforces both).

aiomqtt's public API is used where the real-time budget allows: connect and clean
disconnect (``async with``), subscribe, the ``socket_options`` and ``tls_context``
arguments. Callbacks are paho's public ``on_*`` properties, wrapped or replaced on
the paho client aiomqtt creates, so that incoming messages reach the link's sync
callback directly and publish completion is tracked without a task or an await per
message (a service publishes thousands of frames a second; aiomqtt's ``publish()``
awaits each one). Publishing is paho's public ``publish()``.

What has no public API, and why it is still needed, is listed in
:data:`~spikestream_client.transport.private_names.PRIVATE_NAMES` (re-exported here);
:data:`VERIFIED_WITH` records the versions it was checked against (and
``clients/pyproject.toml`` pins the ranges to match).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from spikestream_client.aio import First, first_of
from spikestream_client.transport.batch import Batch, Heads, whole
from spikestream_client.transport.packets import (
    DRAIN_CHUNK,
    HEAD_KEEP,
    HEAD_ROOM,
    bare_publish,
    control_refusal,
    cork,
    take_publish,
    unread_key,
)
from spikestream_client.transport.private_names import PRIVATE_NAMES, VERIFIED_WITH, PrivateName
from spikestream_client.transport.tls import collecting_sockets, track
from spikestream_client.transport.values import (
    ConnectFailure,
    MessageMeta,
    ProtocolName,
    SubscribeFailure,
    Will,
)
from spikestream_client.transport.writer import writer_registration

__all__ = [
    "PRIVATE_NAMES",
    "VERIFIED_WITH",
    "ConnectFailure",
    "Connection",
    "PrivateName",
    "PropertiesCache",
    "SubscribeFailure",
]

# MQTT 5 reason codes at and above this are failures (paho maps 3.1.1 codes onto them).
_FAILURE = 0x80
#: What paho's on_disconnect says of a packet it could not take (MQTT_ERR_PROTOCOL).
_PROTOCOL_ERROR = ReasonCode(PacketTypes.DISCONNECT, "Protocol error")
_VERSIONS = {"5": aiomqtt.ProtocolVersion.V5, "3.1.1": aiomqtt.ProtocolVersion.V311}


class _PackedOnce(Properties):
    """PUBLISH properties that serialise themselves once.

    paho packs a message's properties on every publish, in Python: ~26 µs per message,
    measured with cProfile on a service publishing 4,500 frames/s, a third of what the
    I/O thread spends per frame. The link publishes a handful of fixed property sets, so
    each is packed when it is made and the bytes are reused.
    """

    def freeze(self) -> None:
        """Pack now; later ``pack()`` calls return these bytes. Set no property after."""
        # Properties.__setattr__ only accepts MQTT property names.
        object.__setattr__(self, "_packed", super().pack())  # type: ignore[no-untyped-call]

    def pack(self) -> bytes:
        packed = self.__dict__.get("_packed")
        if packed is None:
            return super().pack()  # type: ignore[no-untyped-call,no-any-return]
        return packed  # type: ignore[no-any-return]


class PropertiesCache:
    """MQTT 5 PUBLISH properties per ``(content_type, expiry)``, each packed once.

    Owned by the link and shared by its successive connections; bounded (callers use a
    handful of combinations).
    """

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._cache: dict[tuple[str | None, int | None], _PackedOnce] = {}

    def packed(self, content_type: str | None, expiry: int | None) -> bytes:
        """The bytes of :meth:`get`'s properties, as they go into a PUBLISH packet."""
        return self.get(content_type, expiry).pack()  # type: ignore[no-untyped-call,no-any-return]

    def get(self, content_type: str | None, expiry: int | None) -> Properties:
        """The frozen properties for this content type (or none) and expiry (seconds)."""
        key = (content_type, expiry)
        props = self._cache.get(key)
        if props is None:
            props = _PackedOnce(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if content_type:
                props.ContentType = content_type
            if expiry is not None:
                props.MessageExpiryInterval = int(expiry)
            props.freeze()
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[key] = props
        return props


#: ``on_message(topic, payload, meta)``, ``on_published(mid, accepted)``,
#: ``on_written(mids)``, ``on_lost(reason)``: all called on the event loop thread.
MessageSink = Callable[[str, bytes, MessageMeta], None]
PublishedSink = Callable[[int, bool], None]
WrittenSink = Callable[[list[int]], None]
LostSink = Callable[[str], None]


class Connection:
    """One MQTT connection attempt and, if it succeeds, its session.

    Create one per attempt (a connection is not reusable), on the event loop thread;
    every method must be called from that thread.

    Args:
        host: Broker host name or address.
        port: Broker TCP port.
        username: Login name, or ``None`` for anonymous.
        password: Password in clear (never logged), or ``None``.
        client_id: MQTT client identifier.
        protocol: ``"5"`` or ``"3.1.1"``.
        will: Last will, or ``None``.
        transport: ``"tcp"`` or ``"websockets"``.
        ws_path: WebSocket HTTP path (``websockets`` only).
        tls: The TLS context (``transport.tls.tls_context``), or ``None`` for plain TCP.
        keepalive: MQTT keepalive in seconds.
        connect_timeout: Seconds allowed for the TCP connect and then for CONNACK.
        tcp_nodelay: Set ``TCP_NODELAY`` on the socket (also under ws://).
        max_payload: A PUBLISH past this plus ``HEAD_ROOM`` is dropped unread (see
            ``MqttLink``).
        properties: The link's cache of PUBLISH properties.
        logger: Where aiomqtt and paho log their packet-level lines.
        on_message: Called for every incoming message.
        on_published: Called when a published message was written (QoS 0) or
            acknowledged (QoS 1/2); ``accepted`` is ``False`` for a negative PUBACK.
        on_written: Called with the ids of a :meth:`write_batch`'s packed QoS 0
            messages, in order, once they are written whole (one call for many, where
            ``on_published(mid, True)`` each would cost a call per frame).
        on_lost: Called once, synchronously, when the connection ends (lost, aborted or
            closed), before anything else can run on it.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        client_id: str,
        protocol: ProtocolName,
        will: Will | None,
        transport: str,
        ws_path: str | None,
        tls: ssl.SSLContext | None,
        keepalive: int,
        connect_timeout: float,
        tcp_nodelay: bool,
        max_payload: int,
        properties: PropertiesCache,
        logger: logging.Logger,
        on_message: MessageSink,
        on_published: PublishedSink,
        on_written: WrittenSink,
        on_lost: LostSink,
    ) -> None:
        self._v5 = protocol == "5"
        self._tcp_nodelay = tcp_nodelay
        self._max_packet = max_payload + HEAD_ROOM
        # A PUBLISH past the limit that paho itself handles once made bare (QoS 1 and 2):
        # the message's size (its remaining length), by packet id for QoS 2 (delivered
        # on PUBREL), else under -1, for _paho_message to pass on as meta.oversize with
        # an empty payload.
        self._unread: dict[int, int] = {}
        # Topic filters whose SUBACK is awaited: one more byte each that it may hold.
        self._filters_pending = 0
        self._connect_timeout = connect_timeout
        self._properties = properties
        self._on_message = on_message
        self._on_published = on_published
        self._on_written = on_written
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        #: Set when the connection ended; :attr:`lost_reason` says why.
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        #: Whether TCP (and TLS/WebSocket) connected, i.e. paho's connect() returned.
        self.tcp_connected = False
        # Set when paho's blocking connect() (run by aiomqtt in an executor thread)
        # returns, so cleanup after a cancelled connect can wait for the socket to exist.
        self._connect_returned = threading.Event()
        self._connack_seen = False
        # What the socket said when a read failed (a reset, a TLS alert, a timeout): paho
        # reports every such loss alike, and logs the cause at a level we keep quiet.
        self._read_error: str | None = None
        #: The broker's Maximum Packet Size from its CONNACK (MQTT 5), or None: unknown.
        self.broker_max_packet: int | None = None
        self._closed_early = asyncio.Event()
        self._closed_early_reason = ""
        self._holding_writes = False  # inside write_batch()
        self._held_write: tuple[paho.Client, Any, Any] | None = None
        self._register_write: Any = None  # asks the event loop for a writable socket
        self._batch = Batch()  # QoS 0 PUBLISH packets packed inside write_batch()
        # Each topic's PUBLISH head, packed once (frames go to a few topics, over and over).
        self._heads = Heads(properties.packed if self._v5 else None)
        # paho's mid of a queued batch -> the ids of its messages and where each ends
        self._batched: dict[int, tuple[list[int], list[int]]] = {}
        options: tuple[tuple[int, int, int], ...] = (
            ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),) if tcp_nodelay else ()
        )
        self._aiomqtt = aiomqtt.Client(
            hostname=host,
            port=port,
            username=username,
            password=password,
            logger=logger,
            identifier=client_id,
            protocol=_VERSIONS[protocol],
            will=None
            if will is None
            else aiomqtt.Will(
                topic=will.topic, payload=will.payload, qos=will.qos, retain=will.retain
            ),
            transport="websockets" if transport == "websockets" else "tcp",
            timeout=connect_timeout,
            keepalive=keepalive,
            tls_context=tls,
            socket_options=options,
            websocket_path=ws_path,
        )
        self._paho: paho.Client = self._aiomqtt._client
        self._paho.connect_timeout = connect_timeout
        self._hook_paho()

    # ------------------------------------------------------------------ hooks
    def _hook_paho(self) -> None:
        mqtt = self._paho
        # Replace aiomqtt's message queue and publish bookkeeping (we use neither its
        # message iterator nor its publish()): straight to the link, no task, no await.
        mqtt.on_message = self._paho_message
        mqtt.on_publish = self._paho_published
        # Wrap (not replace) aiomqtt's connect/disconnect handling: it still resolves
        # the futures its ``async with`` waits on.
        aiomqtt_on_connect: Any = mqtt.on_connect
        aiomqtt_on_disconnect: Any = mqtt.on_disconnect

        def on_connect(*args: Any) -> None:
            self._connack_seen = True
            # (client, userdata, flags, reason code, properties): a broker that sends
            # no packet bigger than it takes says so here; it disconnects on one.
            limit = getattr(args[4], "MaximumPacketSize", None) if len(args) > 4 else None
            self.broker_max_packet = limit if isinstance(limit, int) and limit > 0 else None
            if aiomqtt_on_connect is not None:
                aiomqtt_on_connect(*args)

        def on_disconnect(
            client: paho.Client,
            userdata: Any,
            flags: paho.DisconnectFlags,
            reason_code: ReasonCode,
            properties: Properties | None = None,
        ) -> None:
            if flags.is_disconnect_packet_from_server:
                reason = f"broker sent DISCONNECT: {reason_code}"
            elif reason_code.value == 0:
                reason = "closed by us"
            elif reason_code == _PROTOCOL_ERROR:  # a packet paho could not take
                reason = "the broker sent a malformed or unexpected packet (a protocol error)"
            elif self._read_error is not None:
                reason = f"socket error: {self._read_error}"
            else:
                reason = "socket closed or keepalive expired"
            self._in_loop(self._disconnected, reason)
            if aiomqtt_on_disconnect is not None:
                aiomqtt_on_disconnect(client, userdata, flags, reason_code, properties)

        mqtt.on_connect = on_connect
        mqtt.on_disconnect = on_disconnect

        # A QoS 0 PUBLISH, which is what sensors, the input path and the service's frames
        # are, goes straight to the link (read_publish_qos0 reads the properties the link
        # passes on). paho's own handling builds property objects and an MQTTMessage,
        # matches the topic against per-topic callbacks (none are registered here) and
        # takes two locks: most of the Python time between a readable socket and the
        # link's callback. Everything else (QoS 1/2, other properties, malformed packets)
        # is paho's, in full. (paho's debug line "Received PUBLISH" is not written for
        # the messages read here.)
        paho_publish = mqtt._handle_publish
        sink, v5, limit, unread = self._on_message, self._v5, self._max_packet, self._unread

        def handle_publish() -> MQTTErrorCode:
            packet = mqtt._in_packet
            first, size = packet["command"], packet["remaining_length"]
            unread_size = size if size > limit else None  # dropped unread (sock_recv)
            if unread_size is not None:
                # What is left of it, its topic and packet id, is handed on bare: its
                # properties may have been cut with the rest (MQTT 5 allows a block far
                # longer than HEAD_ROOM), and paho must still parse it to acknowledge it.
                packet["packet"] = bare_publish(first, packet["packet"], v5)
            packet["packet"], read = take_publish(first, packet["packet"], v5)
            if read is not None:
                topic, payload, meta = read
                if unread_size is not None:
                    payload, meta = b"", meta.dropped(unread_size)
                sink(topic, payload, meta)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if unread_size is None:
                return paho_publish()
            key = unread_key(first, packet["packet"])
            unread[key] = unread_size
            try:
                return paho_publish()  # acknowledges; _paho_message passes it on
            finally:
                if key == -1:  # delivered now, or never (a malformed packet)
                    unread.pop(key, None)

        mqtt._handle_publish = handle_publish  # type: ignore[method-assign]

        # paho reads a packet's whole body before handling it, asking the socket for all
        # of it at once: up to the broker's limit (256 MiB on mosquitto) held per
        # connection. Past the link's limit, a PUBLISH's body is asked for in chunks and
        # all but its head (topic, packet id) dropped as it comes. Other packets come
        # from the broker itself and are paho's, in full, up to CONTROL_PACKET_LIMIT (a
        # SUBACK one more byte per filter it answers): past it the connection is dropped
        # before paho reads the body.
        paho_recv = mqtt._sock_recv

        def sock_recv(bufsize: int) -> bytes:
            packet = mqtt._in_packet
            if packet["have_remaining"]:
                kind, size = packet["command"] >> 4, packet["remaining_length"]
                if kind == 3:
                    if size > limit:
                        del packet["packet"][HEAD_KEEP:]
                        bufsize = min(bufsize, DRAIN_CHUNK)
                elif reason := control_refusal(packet["command"], size, self._filters_pending):
                    self._disconnected(reason)
                    raise ConnectionAbortedError(reason)  # paho: connection lost
            try:
                return paho_recv(bufsize)
            except BlockingIOError:
                raise  # nothing to read yet
            except OSError as exc:
                self._read_error = str(exc) or type(exc).__name__
                raise

        mqtt._sock_recv = sock_recv  # type: ignore[method-assign]

        # Inside write_batch(), hold paho's request for a writable-socket callback: the
        # batch is written at its end, in one go (see write_batch). aiomqtt registers the
        # writer through call_soon_threadsafe, a self-pipe write and a loop pass per batch.
        # The registration is this adapter's own, for the current socket only (writer.py).
        register = writer_registration(self._loop, mqtt, self.abort)

        def on_register_write(client: paho.Client, userdata: Any, sock: Any) -> None:
            if self._holding_writes:
                self._held_write = (client, userdata, sock)
            else:
                register(client, userdata, sock)

        self._register_write = register
        mqtt.on_socket_register_write = on_register_write

        # paho leaks the socket when the TLS or WebSocket handshake inside connect()
        # fails (it is never stored in paho's _sock): record every socket created in the
        # connecting thread during connect() and close the orphans.
        create_tcp = mqtt._create_socket_connection

        def tracked_tcp() -> socket.socket:
            return track(create_tcp())

        mqtt._create_socket_connection = tracked_tcp  # type: ignore[method-assign]
        connect = mqtt.connect

        def tracked_connect(*args: Any, **kwargs: Any) -> MQTTErrorCode:
            try:
                with collecting_sockets() as created:
                    try:
                        rc = connect(*args, **kwargs)
                    except BaseException:
                        if mqtt.socket() is None:
                            for sock in created:
                                sock.close()
                        raise
                self.tcp_connected = True
                return rc
            finally:
                self._connect_returned.set()

        mqtt.connect = tracked_connect  # type: ignore[method-assign]

    def _in_loop(self, fn: Callable[[str], None], arg: str) -> None:
        # paho calls back from aiomqtt's executor thread during connect().
        if threading.get_ident() == self._loop_thread:
            fn(arg)
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(fn, arg)

    def _disconnected(self, reason: str) -> None:
        if self.tcp_connected and not self.lost.is_set() and not self._connack_seen:
            # aiomqtt ignores a disconnect before CONNACK and would wait for its
            # timeout; connect() races this event, so fail it at once.
            self._closed_early_reason = reason
            self._closed_early.set()
        self._mark_lost(reason)

    def _paho_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        props = getattr(message, "properties", None)
        if props is None:
            meta = MessageMeta(message.qos, bool(message.retain))
        else:
            correlation = getattr(props, "CorrelationData", None)
            meta = MessageMeta(
                message.qos,
                bool(message.retain),
                getattr(props, "ContentType", None),
                getattr(props, "MessageExpiryInterval", None),
                getattr(props, "ResponseTopic", None),
                None if correlation is None else bytes(correlation),
            )
        payload = message.payload
        if self._unread:  # one was dropped unread (see handle_publish)
            key = message.mid if message.qos == 2 else -1
            if (size := self._unread.pop(key, None)) is not None:
                payload, meta = b"", meta.dropped(size)
        if not isinstance(payload, bytes):  # paho may hand out a bytearray slice
            payload = bytes(payload)
        self._on_message(message.topic, payload, meta)

    def _paho_published(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        batch = self._batched.pop(mid, None)
        if batch is None:
            self._on_published(mid, reason_code.value < _FAILURE)
            return
        self._on_written(batch[0])  # a write_batch()'s packets, written at last

    def _confirm_written_part(self) -> None:
        """The connection ended with a batch partly written: its messages written whole
        were sent as surely as any written QoS 0 message, so confirm them (a resend would
        repeat them); the rest count as unsent."""
        for packet in self._paho._out_packet:
            batch = self._batched.pop(packet["mid"], None)
            if batch is None or packet["command"] != 0x30:
                continue
            mids, ends = batch
            self._on_written(mids[: whole(ends, packet["pos"])])

    # ------------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        """Connect: TCP (+TLS/WebSocket), CONNECT, wait for CONNACK.

        On any failure or cancellation the socket is closed before this returns.

        Raises:
            ConnectFailure: Refused, timed out, closed before CONNACK, unreachable.
        """
        try:
            won = await first_of(self._aiomqtt.__aenter__(), self._closed_early.wait())
        except BaseException as exc:
            await self._discard()
            if isinstance(exc, aiomqtt.MqttError):
                raise self._failure(exc) from exc
            raise
        if not isinstance(won, First):  # the broker hung up before CONNACK
            await self._discard()
            raise ConnectFailure(
                self._closed_early_reason,
                code=None,
                closed_before_connack=True,
                tcp_connected=True,
            )
        if not self._connect_returned.is_set():  # pragma: no cover - an aiomqtt change
            self.abort("connect bypassed paho's connect()")
            msg = (
                "aiomqtt no longer connects through paho's Client.connect(), which the link "
                f"hooks (verified with {VERIFIED_WITH}); see aiomqtt_adapter.py"
            )
            raise RuntimeError(msg)
        if self._tcp_nodelay:
            # aiomqtt applies socket options only to plain sockets; reach through paho's
            # WebSocket wrapper so that ws:// gets TCP_NODELAY too.
            raw = self.raw_socket()
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _failure(self, exc: aiomqtt.MqttError) -> ConnectFailure:
        if isinstance(exc, aiomqtt.MqttCodeError):  # only a negative CONNACK, here
            rc = exc.rc
            code = rc.value if isinstance(rc, ReasonCode) else rc
            return ConnectFailure(
                str(rc),
                code=int(code) if code is not None else None,
                closed_before_connack=False,
                tcp_connected=True,
            )
        return ConnectFailure(
            str(exc), code=None, closed_before_connack=False, tcp_connected=self.tcp_connected
        )

    async def _discard(self) -> None:
        """Close a connection whose connect failed or was cancelled, without leaking."""
        if not self._connect_returned.is_set():
            # Cancelled while aiomqtt's executor thread is still inside paho.connect():
            # wait for it (bounded by the TCP connect timeout) so its socket can be
            # closed here rather than leak.
            await asyncio.to_thread(self._connect_returned.wait, self._connect_timeout + 1.0)
            # Let the socket-open callbacks it scheduled on the loop run first.
            await asyncio.sleep(0)
        self.abort("connect failed")

    async def wait_ended(self) -> None:
        """Return when the connection is lost or its socket failed (not on close).

        Never raises for the connection's own failure: a socket error that aiomqtt records
        on its disconnect future (paho's ``on_disconnect`` is not called then) ends the
        wait like a loss, and :meth:`end_reason` says why, so the link reconnects.
        """
        # asyncio.wait completes when the future does, whatever it ended with, and does
        # not cancel the future it waits on.
        broken = asyncio.wait({self._aiomqtt._disconnected})
        await first_of(self.lost.wait(), broken)

    def end_reason(self) -> str | None:
        """Why the connection ended, or ``None`` while it is up."""
        if self.lost.is_set():
            return self.lost_reason or "connection lost"
        broken = self._aiomqtt._disconnected
        if broken.done():
            if not broken.cancelled() and broken.exception() is not None:
                return f"socket error: {broken.exception()}"
            return "socket error"
        return None

    async def close(self, timeout: float) -> str | None:  # noqa: ASYNC109
        """Clean MQTT DISCONNECT (bounded by ``timeout`` seconds), then close the fd.

        Returns:
            Why the clean disconnect failed, or ``None``.
        """
        problem = None
        if not self.lost.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._aiomqtt.__aexit__(None, None, None)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                problem = str(exc) or type(exc).__name__
        self.abort("closed")
        return problem

    def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        if self._batched:
            self._confirm_written_part()
        self.lost_reason = reason
        self.lost.set()
        self._on_lost(reason)

    def abort(self, reason: str) -> None:
        """Close the socket without an MQTT DISCONNECT (the broker will send the will).

        Idempotent; marks the connection lost with ``reason`` if it was not already.
        """
        self._mark_lost(reason)
        # paho's _sock_close unregisters the reader/writer through aiomqtt's callbacks
        # and closes the fd; idempotent.
        self._paho._sock_close()
        disconnected = self._aiomqtt._disconnected
        if disconnected.done():
            if not disconnected.cancelled():
                disconnected.exception()  # mark retrieved: no "never retrieved" log
        else:
            disconnected.set_result(None)

    # ------------------------------------------------------------------ traffic
    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        content_type: str | None,
        expiry: int | None,
        correlation_data: bytes | None,
    ) -> int | None:
        """Queue one message in paho (never blocks, never writes here).

        The MQTT 5 properties are dropped on a 3.1.1 connection.

        Returns:
            The message id (``on_published`` reports it later), or ``None`` if paho
            refused it (not connected).

        Raises:
            ValueError: Invalid topic or QoS (a programming error).
        """
        if self._holding_writes:
            if qos == 0 and correlation_data is None and type(payload) is bytes:
                return self._pack(topic, payload, retain, content_type, expiry)
            self._queue_batch()  # keep the order: the packed messages go first
        properties = None
        if self._v5:
            if correlation_data is not None:
                # Different for every reply: packed per message, never cached.
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                if content_type:
                    properties.ContentType = content_type
                if expiry is not None:
                    properties.MessageExpiryInterval = int(expiry)
                properties.CorrelationData = correlation_data
            elif content_type or expiry is not None:
                properties = self._properties.get(content_type, expiry)
        info = self._paho.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        # With aiomqtt's socket callbacks paho never writes inside publish(): the bytes
        # go out on the next writable event, and on_published reports this mid then.
        return info.mid

    def publish_frames(
        self,
        messages: Sequence[tuple[str, bytes]],
        content_type: str | None,
        expiry: int | None,
        mids: list[int],
    ) -> None:
        """Queue QoS 0 messages without retain, in order, as :meth:`publish` each would,
        appending each one's id to ``mids`` as it is queued (so that, should one raise,
        the caller still knows which went before it). Stops at the first that paho
        refuses (not connected): ``mids`` is then shorter than ``messages``.

        Inside :meth:`write_batch` (the case it is for: a slice of frames) each is
        packed straight into the batch, with no call per message besides the packing.

        Raises:
            ValueError: An invalid topic, or a message longer than MQTT allows (the
                messages before it are queued, and in ``mids``).
        """
        # Packed here inside a batch; paho takes the rest (and payloads it converts).
        packing = self._holding_writes and self._paho.socket() is not None
        head_of, add, next_mid = self._heads.get, self._batch.add, self._paho._mid_generate
        for topic, payload in messages:
            if packing and type(payload) is bytes:
                head = head_of(topic, False, content_type, expiry)  # checked before an id
                mid = next_mid()
                add(head, payload, mid)
            else:
                queued = self.publish(topic, payload, 0, False, content_type, expiry, None)
                if queued is None:
                    return
                mid = queued
            mids.append(mid)

    async def subscribe(
        self,
        wanted: Sequence[tuple[str, int]],
        timeout: float,  # noqa: ASYNC109
    ) -> list[tuple[int, str]]:
        """Subscribe to ``(filter, qos)`` pairs and wait for the SUBACK.

        Returns:
            Per filter, the granted QoS or failure reason code (``>= 0x80``: refused)
            and its text.

        Raises:
            SubscribeFailure: No SUBACK within ``timeout`` seconds, or not connected.
        """
        self._filters_pending += len(wanted)
        try:
            codes = await self._aiomqtt.subscribe(list(wanted), timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise SubscribeFailure(str(exc)) from exc
        finally:
            self._filters_pending -= len(wanted)
        granted: Sequence[int | ReasonCode] = codes
        return [
            (code.value, str(code)) if isinstance(code, ReasonCode) else (code, str(code))
            for code in granted
        ]

    # ------------------------------------------------------------------ liveness
    @property
    def keepalive(self) -> float:
        """The keepalive in force, seconds (an MQTT 5 broker may have changed it)."""
        return float(self._paho.keepalive)

    def ping_sent_at(self) -> float:
        """When the PINGREQ still unanswered was sent (``time.monotonic``), or 0.0."""
        return float(self._paho._ping_t or 0.0)

    @contextlib.contextmanager
    def write_batch(self) -> Iterator[None]:
        """Publish several messages, then write them together (event loop thread).

        Inside the block, :meth:`publish` packs QoS 0 messages without correlation data
        itself, into one buffer that paho gets as a single packet at the end (paho's own
        ``publish()`` and its per-packet write cost about 40 % of the I/O thread's time
        per frame); other messages go through paho as always, after the buffer so far.
        The socket is not handed to the event loop's writer inside the block; at its end
        the batch goes straight to a plain TCP socket when paho holds nothing else
        (:meth:`_write_batch_now`), and otherwise everything queued is written at once
        (with ``TCP_CORK`` set when paho holds other packets besides the batch), so a
        tick's frames leave in one TCP segment (one trip through the kernel's TCP stack
        and one wake-up of the broker) instead of one per frame. Each message of the
        batch is reported written (``on_written``, with the others written with it) once it is
        written whole, and
        lost with the connection as any unwritten QoS 0 message is. Whatever
        the socket cannot take now is left to the event loop's writer, as outside a batch.
        A write that fails ends the connection as a failed write on the event loop's
        writer would.
        """
        if self._holding_writes:  # nested: the outer block writes
            yield
            return
        self._holding_writes = True
        try:
            yield
        finally:
            if not self._write_batch_now():
                self._queue_batch()  # asks for the writer, which is held: written below
            self._holding_writes = False
            held, self._held_write = self._held_write, None
            if held is not None:
                self._write_held(held)

    def _pack(
        self,
        topic: str,
        payload: bytes,
        retain: bool,
        content_type: str | None,
        expiry: int | None,
    ) -> int | None:
        """Pack a QoS 0 PUBLISH into the batch, as paho's ``publish()`` would have
        packed it (MQTT 5 section 3.3, 3.1.1 section 3.3); its message id, or None when
        not connected. Everything is checked before the packet joins the batch, so a
        refused message leaves the batch as it was."""
        if self._paho.socket() is None:
            return None
        head = self._heads.get(topic, retain, content_type, expiry)
        mid = self._paho._mid_generate()
        self._batch.add(head, payload, mid)
        return mid

    def _write_batch_now(self) -> bool:
        """Write the packed batch straight to the socket when nothing else waits in paho
        and the socket is plain TCP (the common case: one tick's frames). Returns True
        when all of it went out and was reported written; otherwise the rest stays in
        the batch for paho and the event loop's writer (as :meth:`_queue_batch`).

        paho's own write of the same bytes costs about a fifth of the I/O thread's time
        per frame: its packet bookkeeping and a PUBACK reason code and properties built
        for each written QoS 0 packet's callback, then the writer's unregistration.
        paho's clock of the last packet out is not advanced, so it sends a PINGREQ each
        keepalive even while frames flow: a liveness probe more, never one less."""
        batch = self._batch
        if not batch.mids or self._paho._out_packet:
            return False  # nothing packed, or paho holds packets that must go first
        sock = self._paho.socket()
        if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
            return False  # TLS and WebSocket frame the bytes themselves: paho writes
        try:
            sent = sock.send(batch.data)
        except OSError:  # full (paho waits for room), or failed (paho's write ends it)
            return False
        # The socket took part of it, or all: paho writes the rest when it has room.
        written = batch.sent(sent)
        if written:  # after the batch is settled: a callback may publish
            self._on_written(written)
        return not batch.mids

    def _queue_batch(self) -> None:
        """Hand the packed messages to paho as one packet (written in order with the
        rest; paho reports it written once, under the last message's id)."""
        if not self._batch.mids:
            return
        packet, mids, ends = self._batch.take()
        mid = mids[-1]
        self._batched[mid] = (mids, ends)
        rc = self._paho._packet_queue(0x30, packet, mid, 0, paho.MQTTMessageInfo(mid))
        if rc != paho.MQTT_ERR_SUCCESS:  # pragma: no cover - paho queues unconditionally
            del self._batched[mid]

    def _write_held(self, held: tuple[paho.Client, Any, Any]) -> None:
        # TCP_CORK joins several writes into full segments. A batch alone on a plain TCP
        # socket is one packet and one send(), and corking it would only cost two system
        # calls per tick; over TLS (or a WebSocket) one packet can still be several
        # writes, one per record or frame, so those stay corked.
        sock = self._paho.socket()
        alone = len(self._paho._out_packet) <= 1
        plain = isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)
        raw = None if alone and plain else self.raw_socket()
        corked = raw is not None and cork(raw, True)
        try:
            self._paho.loop_write()
        except Exception as exc:  # as aiomqtt's writer callback does
            self.abort(f"socket error: {exc}")
            return
        finally:
            if corked and raw is not None:
                cork(raw, False)
        sock = self._paho.socket()
        register = self._register_write
        if (
            register is not None
            and sock is not None
            and sock is held[2]
            and self._paho.want_write()
        ):
            # The socket is full: paho still counts its writer as registered (it asked
            # inside the batch), so register it with the event loop now. (A failed write
            # closes the socket inside loop_write: then there is nothing to register.)
            register(*held)

    def raw_socket(self) -> socket.socket | None:
        """The TCP socket under this connection (also under ws://), or ``None``."""
        sock = self._paho.socket()
        raw = getattr(sock, "_socket", sock)  # paho's WebSocket wrapper keeps it here
        return raw if isinstance(raw, socket.socket) else None
