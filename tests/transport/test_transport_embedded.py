"""The embedded amqtt broker, the MQTT 5 -> 3.1.1 fallback, and ``auto`` broker choice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from spikestream.errors import TransportError
from spikestream.transport import EmbeddedBroker, broker_answers, resolve_broker
from spikestream_client.transport import BrokerSpec, MqttLink, Will, parse_broker_url
from tests.brokers import Mosquitto
from tests.transport.support import Inbox, eventually, running

_ids = itertools.count()


def make_link(spec: BrokerSpec, name: str, **options: object) -> MqttLink:
    options.setdefault("backoff_min", 0.05)
    options.setdefault("backoff_max", 1.0)
    options.setdefault("connect_timeout", 3.0)
    return MqttLink(spec, client_id=f"{name}-{next(_ids)}", **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def tcp_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A throw-away TCP server on 127.0.0.1; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_embedded_round_trip_and_port_zero() -> None:
    async with EmbeddedBroker() as broker:
        assert broker.port > 0
        spec = broker.spec()
        assert (spec.host, spec.port, spec.protocol) == ("127.0.0.1", broker.port, "3.1.1")
        inbox = Inbox()
        link = make_link(spec, "emb", on_message=inbox, will=Will("emb/status", b"offline"))
        link.subscribe("emb/#", qos=1)
        async with running(link):
            assert link.protocol == "3.1.1"
            assert await link.publish("emb/x", b"hello", qos=1, content_type="ignored/on-v3")
            assert await link.publish("emb/y", b"qos0")
            _, _, meta = await inbox.wait_payload("emb/x", b"hello")
            assert meta.content_type is None
            await inbox.wait_payload("emb/y", b"qos0")
    assert not broker.running
    with pytest.raises(RuntimeError, match="only after start"):
        _ = broker.port


async def test_the_embedded_broker_keeps_amqtt_quiet_below_errors(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """amqtt logs each connection and subscription at INFO (and transitions each state
    change): under ``--log-level info`` that buried the service's own lines. Its loggers
    are raised to ERROR unless they were already set higher."""
    for name in ("amqtt", "transitions"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    async with EmbeddedBroker() as broker:
        link = make_link(parse_broker_url(f"mqtt://127.0.0.1:{broker.port}"), "quiet")
        async with running(link):
            assert await link.publish("quiet/x", b"1", qos=1)
    noisy = [r for r in caplog.records if r.name.split(".")[0] in ("amqtt", "transitions")]
    assert not [r for r in noisy if r.levelno < logging.ERROR], noisy[:3]
    assert logging.getLogger("amqtt").level == logging.ERROR


async def test_link_falls_back_to_mqtt311_when_v5_is_refused() -> None:
    async with EmbeddedBroker() as broker:
        # A plain URL, no protocol hint: MQTT 5 is tried first and refused by amqtt.
        spec = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}")
        link = make_link(spec, "fallback")
        start = time.monotonic()
        async with running(link):
            assert time.monotonic() - start < 2.0
            assert link.protocol == "3.1.1"
            assert link.statistics().connect_attempts == 1
            assert await link.publish("fb/x", b"1", qos=1)


async def test_a_broker_that_refused_mqtt5_gets_mqtt311_on_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Once MQTT 5 was refused and 3.1.1 worked, a reconnect to the same broker goes
    # straight to 3.1.1: no second refused MQTT 5 CONNECT.
    caplog.set_level(logging.INFO, logger="spikestream.transport.link")

    def fallbacks() -> int:
        return sum("falling back to MQTT 3.1.1" in r.getMessage() for r in caplog.records)

    async with EmbeddedBroker() as broker:
        spec = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}")
        link = make_link(spec, "fallback-again", backoff_max=0.2)
        async with running(link):
            assert link.protocol == "3.1.1"
            assert fallbacks() == 1
            raw = link._raw_socket()
            assert raw is not None
            raw.shutdown(socket.SHUT_RDWR)  # the connection is lost; the link reconnects
            await eventually(lambda: link.statistics().connects == 2 and link.connected)
            assert link.protocol == "3.1.1"
            assert fallbacks() == 1
            assert await link.publish("fb/again", b"2", qos=1)


async def test_fallback_also_when_v5_connect_hangs() -> None:
    # amqtt mis-parses an MQTT 5 CONNECT carrying a will and waits for more bytes: the
    # link gives up after connect_timeout and retries the same attempt with 3.1.1.
    async with EmbeddedBroker() as broker:
        spec = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}")
        link = make_link(spec, "hang", will=Will("hang/status", b"offline"), connect_timeout=1.0)
        async with running(link):
            assert link.protocol == "3.1.1"
            assert link.statistics().connect_attempts == 1


async def test_forced_mqtt5_against_amqtt_fails_clearly() -> None:
    async with EmbeddedBroker() as broker:
        spec = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}?protocol=5")
        link = make_link(spec, "v5only")
        async with running(link, connect_timeout=None):
            await eventually(lambda: link.statistics().last_error is not None)
            last_error = link.statistics().last_error
            assert last_error is not None
            assert "refused MQTT 5" in last_error
            assert not link.connected


async def test_embedded_on_a_taken_port_raises_transport_error(mosquitto: Mosquitto) -> None:
    with pytest.raises(
        TransportError, match=f"cannot start the embedded MQTT broker on 127.0.0.1:{mosquitto.port}"
    ):
        async with EmbeddedBroker(port=mosquitto.port):
            pass


# --- broker_answers -------------------------------------------------------------------


async def test_broker_answers(mosquitto: Mosquitto, free_port: int) -> None:
    assert await broker_answers("127.0.0.1", mosquitto.port, 2.0) is True
    async with EmbeddedBroker() as broker:
        assert await broker_answers("127.0.0.1", broker.port, 2.0) is True
    assert await broker_answers("127.0.0.1", free_port, 0.5) is False


async def test_broker_answers_false_for_non_mqtt_servers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()  # never answers, waits for the client to hang up
        writer.close()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async with tcp_server(silent) as port:
        start = time.monotonic()
        assert await broker_answers("127.0.0.1", port, 0.3) is False
        assert time.monotonic() - start < 2.0
    async with tcp_server(http) as port:
        assert await broker_answers("127.0.0.1", port, 1.0) is False


@pytest.mark.parametrize(
    ("reply", "answers"),
    [
        (b"\x20\x02\x00\x05", True),  # CONNACK "not authorised": a broker is there
        (b"\x20\x02\x01\x00", True),  # CONNACK, session present
        (b"\x20\x03\x00\x00", False),  # 0x20 but the wrong remaining length
        (b"\x20\x00\x00\x00", False),
        (b"\x21\x02\x00\x00", False),  # not a CONNACK's first byte
        (b"\x20\x02", False),  # cut short
    ],
)
async def test_broker_answers_only_for_a_whole_connack(reply: bytes, answers: bool) -> None:
    """Something that accepts TCP and sends four bytes starting 0x20 is not yet a broker:
    ``auto`` would take it for one and never start the embedded broker."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)  # the CONNECT
        writer.write(reply)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            await reader.read()  # until the probe hangs up
        writer.close()

    async with tcp_server(peer) as port:
        assert await broker_answers("127.0.0.1", port, 1.0) is answers


# --- resolve_broker -------------------------------------------------------------------


async def test_resolve_url_passes_through() -> None:
    spec = parse_broker_url("mqtt://example.invalid:1999")
    async with resolve_broker(spec) as concrete:
        assert concrete is spec


async def test_auto_uses_the_broker_that_answers(mosquitto: Mosquitto) -> None:
    auto = parse_broker_url("auto")
    async with resolve_broker(auto, auto_port=mosquitto.port) as concrete:
        assert concrete.kind == "url"
        assert (concrete.host, concrete.port) == ("127.0.0.1", mosquitto.port)
        link = make_link(concrete, "auto-live")
        async with running(link):
            assert link.protocol == "5"  # it is mosquitto, not amqtt


async def test_auto_starts_embedded_when_nothing_answers(free_port: int) -> None:
    auto = dataclasses.replace(parse_broker_url("auto"), port=free_port)
    async with resolve_broker(auto, probe_timeout=0.5) as concrete:
        assert concrete.kind == "url"
        assert concrete.port == free_port  # the port nobody answered on: default URLs work
        assert concrete.protocol == "3.1.1"
        link = make_link(concrete, "auto-embedded")
        async with running(link):
            assert await link.publish("auto/x", b"1", qos=1)
        port = concrete.port
    assert await broker_answers("127.0.0.1", port, 0.5) is False  # stopped on exit


async def test_auto_falls_back_to_a_free_port_when_its_port_is_taken() -> None:
    # Something that is not an MQTT broker holds the port: it does not answer CONNECT.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    taken = server.sockets[0].getsockname()[1]
    try:
        auto = dataclasses.replace(parse_broker_url("auto"), port=taken)
        async with resolve_broker(auto, probe_timeout=0.5) as concrete:
            assert concrete.port not in (taken, 0)
            link = make_link(concrete, "auto-fallback")
            async with running(link):
                assert link.connected
    finally:
        server.close()
        await server.wait_closed()


async def test_embedded_keyword_carries_credentials() -> None:
    spec = parse_broker_url("embedded").with_credentials("svc", "pw")
    async with resolve_broker(spec) as concrete:
        assert concrete.username == "svc"
        assert concrete.password_value() == "pw"
        link = make_link(concrete, "emb-cred")
        async with running(link):
            assert link.connected


# --- bounds, logging and the probe's packets ---------------------------------------------


@pytest.mark.parametrize("port", [-1, 65536])
def test_embedded_port_out_of_range_is_refused_naming_it(port: int) -> None:
    """A TCP port is 0..65535 (0: any free one); anything else is refused up front, not
    left to amqtt's bind to fail on."""
    with pytest.raises(ValueError, match=rf"0\.\.65535, got {port}$"):
        EmbeddedBroker(port=port)


async def test_a_quieter_threshold_set_before_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker only raises amqtt's threshold: one already above ERROR (an operator
    silencing it entirely) is not lowered."""
    monkeypatch.setattr(logging.getLogger("amqtt"), "level", logging.CRITICAL)
    async with EmbeddedBroker():
        assert logging.getLogger("amqtt").level == logging.CRITICAL


def test_the_probe_connect_keeps_to_a_one_byte_remaining_length() -> None:
    """The probe's CONNECT writes its remaining length as one byte, which MQTT allows
    only up to 127: a longer body is refused, not sent with a corrupt header."""
    from spikestream.transport.embedded import _connect_packet

    longest = _connect_packet("c" * 115)  # 10 + 2 + 115 = 127 bytes of body
    assert longest[:2] == bytes((0x10, 127))
    assert len(longest) == 129
    with pytest.raises(ValueError, match="too long"):
        _connect_packet("c" * 116)


async def test_the_probe_disconnects_cleanly(mosquitto: Mosquitto) -> None:
    """A probe that was let in sends DISCONNECT before closing: the broker sees a clean
    end, not a lost client (which it logs as such and would publish a will for)."""
    assert await broker_answers("127.0.0.1", mosquitto.port, 2.0) is True

    def probe_lines() -> list[str]:
        return [line for line in mosquitto.log_text().splitlines() if "spikestream-probe-" in line]

    await eventually(
        lambda: any("disconnect" in line or "closed" in line for line in probe_lines())
    )
    ends = [line for line in probe_lines() if "New client" not in line]
    assert any(line.endswith("disconnected.") for line in ends), ends
    assert not any("closed its connection" in line for line in ends), ends
    # Clean session (c1): the broker keeps no session behind for the random client id.
    (connected,) = [line for line in probe_lines() if "New client" in line]
    assert "c1," in connected, connected


# --- resolve_broker: the keywords' options ----------------------------------------------


async def test_auto_carries_credentials_to_the_broker_that_answers(mosquitto: Mosquitto) -> None:
    """``auto`` with a user and password keeps them when a broker answers, as it does for
    the embedded one: a broker that wants them would refuse the service otherwise."""
    auto = parse_broker_url("auto").with_credentials("svc", "pw")
    async with resolve_broker(auto, auto_port=mosquitto.port) as concrete:
        assert concrete.port == mosquitto.port
        assert (concrete.username, concrete.password_value()) == ("svc", "pw")


async def test_auto_probes_the_host_it_is_given(mosquitto: Mosquitto) -> None:
    """``auto_host`` replaces the spec's host for the probe (and for the URL used)."""
    auto = dataclasses.replace(parse_broker_url("auto"), host="192.0.2.1")  # TEST-NET-1
    async with resolve_broker(
        auto, auto_host="127.0.0.1", auto_port=mosquitto.port, probe_timeout=1.0
    ) as concrete:
        assert (concrete.host, concrete.port) == ("127.0.0.1", mosquitto.port)


async def test_embedded_takes_the_port_its_spec_names(free_port: int) -> None:
    """An ``embedded`` spec with a port binds that port (0: any free one)."""
    spec = dataclasses.replace(parse_broker_url("embedded"), port=free_port)
    async with resolve_broker(spec) as concrete:
        assert concrete.port == free_port
        assert await broker_answers("127.0.0.1", free_port, 2.0) is True


async def test_a_peer_that_hangs_up_mid_connack_is_no_broker() -> None:
    """Two bytes of a CONNACK and then the end of the stream: no broker (``auto`` then
    starts the embedded one), not an IncompleteReadError out of the probe."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)  # the CONNECT
        writer.write(b"\x20\x02")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async with tcp_server(peer) as port:
        assert await broker_answers("127.0.0.1", port, 5.0) is False


async def test_the_embedded_broker_binds_and_names_the_host_it_is_given() -> None:
    """``host`` is where it listens and what its spec names; loopback's 127.0.0.2 is not
    127.0.0.1."""
    async with EmbeddedBroker(host="127.0.0.2") as broker:
        assert broker.spec().host == "127.0.0.2"
        assert await broker_answers("127.0.0.2", broker.port, 2.0) is True
        assert await broker_answers("127.0.0.1", broker.port, 0.5) is False
