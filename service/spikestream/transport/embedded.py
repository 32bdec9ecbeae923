"""An in-process MQTT broker (amqtt) and the ``auto`` broker choice.

:class:`EmbeddedBroker` runs amqtt on 127.0.0.1 inside the service's event loop, so a
laptop demo needs no mosquitto. amqtt speaks MQTT 3.1.1 only; :class:`~.link.MqttLink`
notices the refusal of MQTT 5 and falls back on its own. It is a convenience broker:
for real deployments (TCP_NODELAY, throughput, persistence) use mosquitto.

:func:`resolve_broker` turns the keywords ``embedded`` and ``auto`` into a concrete
``mqtt://`` :class:`~.urls.BrokerSpec`, starting and later stopping the embedded broker
when needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from spikestream.errors import TransportError
from spikestream_client.transport.urls import BrokerSpec

__all__ = ["EmbeddedBroker", "broker_answers", "resolve_broker"]

_log = logging.getLogger("spikestream.transport.embedded")

# amqtt logs every connection, state transition and refused client at INFO/WARNING
# (and the `transitions` state machine library it uses logs at INFO). That would drown
# the service's own structured logs, so the embedded broker raises those loggers'
# thresholds while it runs.
_NOISY_LOGGERS = ("amqtt", "transitions")


class EmbeddedBroker:
    """An amqtt broker listening on ``host:port`` (MQTT 3.1.1, anonymous, no persistence).

    Use as an async context manager::

        async with EmbeddedBroker() as broker:
            spec = broker.spec()        # mqtt://127.0.0.1:<port>

    Args:
        host: Address to bind; loopback by default so nothing is exposed.
        port: TCP port; ``0`` picks a free one (read it back from :attr:`port`).
        log_level: Threshold applied to amqtt's loggers while running (``ERROR`` by
            default keeps real failures visible and the per-connection chatter out).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, log_level: int = logging.ERROR):
        if not 0 <= port <= 65535:
            msg = f"embedded broker port must be in 0..65535, got {port}"
            raise ValueError(msg)
        self._host = host
        self._requested_port = port
        self._log_level = log_level
        self._broker: Any = None  # amqtt.broker.Broker; amqtt ships no type hints
        self._port: int | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return self._host

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when 0 was requested).

        Raises:
            RuntimeError: The broker is not running.
        """
        if self._port is None:
            msg = "embedded broker is not running; its port is known only after start()"
            raise RuntimeError(msg)
        return self._port

    @property
    def running(self) -> bool:
        """Whether :meth:`start` succeeded and :meth:`stop` has not run yet."""
        return self._broker is not None

    def spec(self) -> BrokerSpec:
        """The ``mqtt://host:port?protocol=3.1.1`` spec for clients of this broker.

        MQTT 3.1.1 is pinned: amqtt does not speak 5 and, given an MQTT 5 CONNECT with
        a will, waits for bytes that never come instead of refusing it.
        """
        return BrokerSpec(
            kind="url", scheme="mqtt", host=self._host, port=self.port, protocol="3.1.1"
        )

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            TransportError: The port is taken or amqtt failed to start.
        """
        if self._broker is not None:
            return
        for name in _NOISY_LOGGERS:
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() < self._log_level:
                logger.setLevel(self._log_level)
        # Imported here: amqtt pulls in websockets, transitions, pwdlib... which the
        # service does not need unless the embedded broker is actually used.
        from amqtt.broker import Broker

        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self._host}:{self._requested_port}"},
            },
            # Only anonymous auth: the default plugin set adds $SYS publishing every
            # 20 s and packet/event loggers, all unwanted here.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config)
        try:
            await broker.start()
        except Exception as exc:
            msg = (
                f"cannot start the embedded MQTT broker on {self._host}:{self._requested_port}: "
                f"{exc}"
            )
            raise TransportError(msg) from exc
        self._broker = broker
        self._port = _bound_port(broker, self._requested_port)
        _log.info("embedded MQTT broker listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Close all client connections and the listener. Idempotent."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            await broker.shutdown()
        finally:
            _log.info("embedded MQTT broker on %s:%s stopped", self._host, self._port)
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _bound_port(broker: Any, requested: int) -> int:
    if requested:
        return requested
    # amqtt does not expose the bound port, so read it from its asyncio server.
    try:
        server = broker._servers["default"].instance
        port = server.sockets[0].getsockname()[1]
    except (AttributeError, KeyError, IndexError) as exc:
        msg = "cannot find the port the embedded broker bound to (amqtt internals changed?)"
        raise TransportError(msg) from exc
    return int(port)


def _connect_packet(client_id: str, keepalive: int = 5) -> bytes:
    """An MQTT 3.1.1 CONNECT with clean session and no credentials."""
    cid = client_id.encode("utf-8")
    variable = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)
    payload = struct.pack("!H", len(cid)) + cid
    body = variable + payload
    if len(body) > 127:  # keeps the remaining-length encoding to one byte
        msg = "probe client id too long"
        raise ValueError(msg)
    return bytes((0x10, len(body))) + body


# The timeout is part of the contract (a probe must be quick), hence the parameter.
async def broker_answers(host: str, port: int, timeout: float = 1.0) -> bool:  # noqa: ASYNC109
    """Whether an MQTT broker answers on ``host:port`` within ``timeout`` seconds.

    Opens a TCP connection, sends an MQTT 3.1.1 CONNECT and waits for a CONNACK. Any
    CONNACK counts, even "not authorised": a broker is there, credentials are the link's
    business. Something that accepts TCP but does not speak MQTT counts as no broker.
    """
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(_connect_packet(f"spikestream-probe-{secrets.token_hex(4)}"))
            await writer.drain()
            connack = await reader.readexactly(4)
            if connack[0] != 0x20 or connack[1] != 0x02:
                return False
            if connack[3] == 0:
                writer.write(b"\xe0\x00")  # DISCONNECT: leave no session or will behind
                await writer.drain()
            return True
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await writer.wait_closed()


@contextlib.asynccontextmanager
async def resolve_broker(
    spec: BrokerSpec,
    *,
    auto_host: str | None = None,
    auto_port: int | None = None,
    probe_timeout: float = 1.0,
) -> AsyncIterator[BrokerSpec]:
    """Yield a concrete ``url`` spec for ``spec``, running an embedded broker if needed.

    - ``url`` specs are yielded unchanged.
    - ``embedded`` starts an :class:`EmbeddedBroker` on 127.0.0.1 (port from the spec,
      0 = any free port) for the duration of the ``async with`` block.
    - ``auto`` probes ``auto_host:auto_port`` (default: the spec's, 127.0.0.1:1883) with
      :func:`broker_answers`; if a broker answers within ``probe_timeout`` seconds it is
      used, otherwise the embedded broker is started on 127.0.0.1 at that same port (so
      clients with the default URL find it), or at any free port if it cannot be bound.

    Credentials on the spec are carried over to the yielded spec.
    """
    if spec.kind == "url":
        yield spec
        return
    port = 0
    if spec.kind == "auto":
        host = spec.host if auto_host is None else auto_host
        port = spec.port if auto_port is None else auto_port
        if await broker_answers(host, port, probe_timeout):
            _log.info("auto broker: using the broker that answers on %s:%d", host, port)
            yield BrokerSpec(
                kind="url",
                scheme="mqtt",
                host=host,
                port=port,
                username=spec.username,
                password=spec.password,
            )
            return
        _log.info("auto broker: nothing answers on %s:%d; starting the embedded one", host, port)
    # For ``auto``, the embedded broker takes the port nobody answered on (1883 by default),
    # so clients started with the default URL find it; if that port cannot be bound (it is
    # used by something that is not an MQTT broker), any free port will do.
    embedded_port = spec.port if spec.kind == "embedded" else port
    broker = EmbeddedBroker(port=embedded_port)
    try:
        await broker.start()
    except TransportError:
        if embedded_port == 0:
            raise
        _log.info("port %d is taken; the embedded broker takes a free port", embedded_port)
        broker = EmbeddedBroker(port=0)
    async with broker:
        concrete = broker.spec()
        if spec.username is not None:
            concrete = concrete.with_credentials(spec.username, spec.password_value())
        yield concrete
