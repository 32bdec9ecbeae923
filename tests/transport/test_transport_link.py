"""MqttLink against a real mosquitto started by the tests on a free port."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import socket
import sys
import time
from pathlib import Path

import pytest

from spikestream.errors import AuthError, ConfigError
from spikestream_client.transport import (
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    BrokerSpec,
    MqttLink,
    Will,
    load_broker_spec,
    parse_broker_url,
)
from spikestream_client.transport.packets import CONTROL_PACKET_LIMIT
from tests.brokers import Mosquitto, MosquittoFactory, make_test_pki
from tests.transport.support import Inbox, eventually, running

pytestmark = pytest.mark.broker

_ids = itertools.count()


def make_link(target: str | BrokerSpec, name: str, **options: object) -> MqttLink:
    """A link with test-friendly timings (fast backoff, short timeouts)."""
    spec = parse_broker_url(target) if isinstance(target, str) else target
    options.setdefault("backoff_min", 0.05)
    options.setdefault("backoff_max", 1.0)
    options.setdefault("connect_timeout", 3.0)
    client_id = f"{name}-{next(_ids)}"
    return MqttLink(spec, client_id=client_id, **options)  # type: ignore[arg-type]


def nodelay(sock: socket.socket | None) -> int:
    assert sock is not None, "link has no socket"
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_round_trip_mqtt5_with_properties(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("rt/#", qos=1)
    pub = make_link(mosquitto.url(), "pub")
    async with running(sub), running(pub):
        assert await pub.publish(
            "rt/a", b"\x81\xa1x\x01", qos=1, content_type="application/msgpack", expiry=60
        )
        assert await pub.publish("rt/b", b"plain")
        _, payload, meta = await inbox.wait_payload("rt/a", b"\x81\xa1x\x01")
        assert meta.content_type == "application/msgpack"
        assert meta.expiry is not None
        assert 55 <= meta.expiry <= 60
        assert meta.qos == 1
        assert meta.retain is False
        _, _, plain = await inbox.wait_payload("rt/b", b"plain")
        assert plain.content_type is None
        assert plain.expiry is None
        assert isinstance(payload, bytes)
        stats = pub.statistics()
        assert stats.protocol == "5"
        assert stats.connected
        assert stats.publish_ok == 2
        assert stats.publish_failed == 0
        assert sub.statistics().messages_in == 2
    assert not pub.connected
    assert pub.statistics().connected is False


async def test_forced_mqtt311_drops_properties(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sub", on_message=inbox)
    sub.subscribe("v3/#")
    pub = make_link(mosquitto.url() + "?protocol=3.1.1", "pub")
    async with running(sub), running(pub):
        assert pub.protocol == "3.1.1"
        assert await pub.publish("v3/x", b"1", content_type="text/plain", expiry=5)
        _, _, meta = await inbox.wait_payload("v3/x", b"1")
        assert meta.content_type is None
    # mosquitto logs its protocol enum: p2 = MQTT 3.1.1, p5 = MQTT 5.
    await eventually(lambda: mosquitto.count_in_log(f"as {pub._client_id} (p2,") == 1)
    await eventually(lambda: mosquitto.count_in_log(f"as {sub._client_id} (p5,") == 1)


async def test_tcp_nodelay_is_set_on_the_socket(mosquitto: Mosquitto) -> None:
    on = make_link(mosquitto.url(), "nodelay")
    off = make_link(mosquitto.url(), "delay", tcp_nodelay=False)
    async with running(on), running(off):
        assert nodelay(on._raw_socket()) != 0
        assert nodelay(off._raw_socket()) == 0


async def test_websocket_round_trip_with_nodelay(mosquitto_factory: MosquittoFactory) -> None:
    broker = mosquitto_factory(websockets=True)
    inbox = Inbox()
    link = make_link(broker.ws_url(), "ws", on_message=inbox)
    link.subscribe("ws/echo")
    async with running(link):
        assert await link.publish("ws/echo", b"over websockets", qos=1)
        await inbox.wait_payload("ws/echo", b"over websockets")
        assert nodelay(link._raw_socket()) != 0


async def test_subscribe_while_connected_and_after_reconnect(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    link = make_link(mosquitto.url(), "late-sub", on_message=inbox)
    async with running(link):
        link.subscribe("late/one")

        # The subscription is made by the link's own task; poll by publishing.
        async def arrived() -> None:
            while b"ping" not in inbox.payloads("late/one"):
                await link.publish("late/one", b"ping")
                await asyncio.sleep(0.05)

        async with asyncio.timeout(10):
            await arrived()


async def test_broker_killed_and_restarted_link_reconnects_and_resubscribes(
    mosquitto: Mosquitto,
) -> None:
    backoff_max = 1.0
    inbox = Inbox()
    # Seeded: decorrelated jitter may by chance stay near backoff_min for a dozen draws
    # (17 attempts in 2.5 s with one unseeded CI run); with this seed the delays grow
    # from 0.06 s to 0.48 s, about 6 attempts in the 2.5 s below.
    link = make_link(
        mosquitto.url(),
        "survivor",
        on_message=inbox,
        backoff_max=backoff_max,
        keepalive=5,
        rng=random.Random(1),
    )
    link.subscribe("survive/#", qos=1)
    hook_runs: list[float] = []

    async def hook() -> None:
        hook_runs.append(time.monotonic())

    link.add_connect_hook(hook)
    async with running(link):
        await eventually(lambda: len(hook_runs) == 1)
        mosquitto.kill()
        await eventually(lambda: not link.connected, within=5)
        attempts_before = link.statistics().connect_attempts
        await asyncio.sleep(2.5)  # down for a while: backoff grows to its cap, no busy loop
        attempts_down = link.statistics().connect_attempts - attempts_before
        assert 1 <= attempts_down <= 15, attempts_down

        mosquitto.start()  # same port
        took = await eventually(lambda: link.connected, within=backoff_max + 2.0)
        assert took <= backoff_max + 2.0

        publisher = make_link(mosquitto.url(), "after-restart")
        async with running(publisher):
            assert await publisher.publish("survive/x", b"after restart", qos=1)
        await inbox.wait_payload("survive/x", b"after restart")
        await eventually(lambda: len(hook_runs) == 2)
        stats = link.statistics()
        assert stats.connects == 2
        assert stats.reconnects == 1
        assert stats.last_error is not None


async def test_publish_while_disconnected_is_fast_and_false(free_port: int) -> None:
    # Nothing listens on free_port: the link keeps retrying in the background.
    link = make_link(f"mqtt://127.0.0.1:{free_port}", "lonely")
    async with running(link, connect_timeout=None):
        await eventually(lambda: link.statistics().last_error is not None)  # 1st attempt done
        for _ in range(3):
            start = time.perf_counter()
            ok = await link.publish("x/y", b"payload", qos=1)
            assert time.perf_counter() - start < 0.05
            assert ok is False
            assert link.publish_nowait("x/y", b"payload") is False
        stats = link.statistics()
        assert stats.publish_failed == 6
        assert stats.publish_ok == 0
        assert not stats.connected
        assert stats.last_error is not None
        assert "Connection refused" in stats.last_error
        assert await link.wait_connected(0.05) is False


async def test_outgoing_queue_is_bounded(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    sub = make_link(mosquitto.url(), "sink", on_message=inbox)
    sub.subscribe("burst/#")
    link = make_link(mosquitto.url(), "burst", max_queued_outgoing=5)
    async with running(sub), running(link):
        # No await between calls: nothing can be written yet, so the 6th is refused.
        accepted = [link.publish_nowait("burst/x", str(i).encode(), resend=True) for i in range(20)]
        assert accepted == [True] * 5 + [False] * 15
        assert not link.can_publish()
        # A full window of bulk data still leaves a reserve (16 here) for the rest
        # (statuses, events), which is bounded too.
        others = [link.publish_nowait("burst/y", str(i).encode()) for i in range(20)]
        assert others == [True] * 16 + [False] * 4
        await eventually(lambda: len(inbox.payloads("burst/x")) == 5)
        await eventually(lambda: len(inbox.payloads("burst/y")) == 16)
        assert link.publish_nowait("burst/x", b"room again", resend=True) is True
        await inbox.wait_payload("burst/x", b"room again")
        assert link.statistics().publish_failed == 19


async def test_callback_exception_is_logged_and_link_stays_up(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bytes] = []

    def fragile(topic: str, payload: bytes, meta: object) -> None:
        if payload == b"bad":
            raise ValueError("cannot decode")
        seen.append(payload)

    link = make_link(mosquitto.url(), "fragile", on_message=fragile)
    link.subscribe("fragile/#")
    async with running(link):
        assert await link.publish("fragile/x", b"bad")
        assert await link.publish("fragile/x", b"good")
        await eventually(lambda: seen == [b"good"])
        stats = link.statistics()
        assert stats.callback_errors == 1
        assert stats.connects == 1
        assert link.connected
    assert "on_message callback failed" in caplog.text


async def test_publish_refused_by_acl_returns_false_and_is_logged(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory(acl="topic readwrite allowed/#\n")
    inbox = Inbox()
    link = make_link(broker.url(), "acl", on_message=inbox)
    link.subscribe("allowed/#")
    with caplog.at_level(logging.ERROR, logger="spikestream.transport"):
        async with running(link):
            # MQTT 5 PUBACK carries "not authorised" (0x87); the link stays up.
            assert await link.publish("secret/x", b"no", qos=1) is False
            assert await link.publish("allowed/x", b"ok", qos=1) is True
            await inbox.wait_payload("allowed/x", b"ok")
            stats = link.statistics()
            assert stats.publish_failed == 1
            assert stats.connects == 1
            assert link.connected
    assert "refused a publish to 'secret/x'" in caplog.text
    last_error = link.statistics().last_error
    assert last_error is not None
    assert "secret/x" in last_error


# --- will and clean disconnect ---------------------------------------------------------

WILL_CHILD = """
import asyncio, sys
from spikestream_client.transport import MqttLink, Will, parse_broker_url

async def main() -> None:
    url, status, client_id = sys.argv[1:4]
    link = MqttLink(
        parse_broker_url(url),
        client_id=client_id,
        will=Will(status, b"offline", qos=1, retain=True),
        keepalive=30,
    )
    task = asyncio.create_task(link.run())
    if not await link.wait_connected(20):
        sys.exit(3)
    if not await link.publish(status, b"online", qos=1, retain=True):
        sys.exit(4)
    print("READY", flush=True)
    await task

asyncio.run(main())
"""


async def test_last_will_is_published_when_the_client_process_is_killed(
    mosquitto: Mosquitto,
) -> None:
    status = f"will/{next(_ids)}/status"
    inbox = Inbox()
    watcher = make_link(mosquitto.url(), "watcher", on_message=inbox)
    watcher.subscribe(status, qos=1)
    async with running(watcher):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WILL_CHILD,
            mosquitto.url(),
            status,
            "will-child",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            assert line.strip() == b"READY", line
            await inbox.wait_payload(status, b"online")
            proc.kill()  # SIGKILL: no DISCONNECT, the kernel just closes the socket
            await proc.wait()
            _, _, meta = await inbox.wait_payload(status, b"offline", within=10)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.communicate()
    # The will was retained: a newcomer sees "offline".
    late = Inbox()
    newcomer = make_link(mosquitto.url(), "newcomer", on_message=late)
    newcomer.subscribe(status, qos=1)
    async with running(newcomer):
        _, _, meta = await late.wait_payload(status, b"offline")
        assert meta.retain is True


@pytest.mark.parametrize("how", ["stop", "cancel"])
async def test_clean_stop_does_not_trigger_the_will(mosquitto: Mosquitto, how: str) -> None:
    status = f"clean/{next(_ids)}/status"
    inbox = Inbox()
    watcher = make_link(mosquitto.url(), "watcher", on_message=inbox)
    watcher.subscribe(status, qos=1)
    link = make_link(mosquitto.url(), "clean", will=Will(status, b"will-fired", qos=1))

    async def announce() -> None:
        await link.publish(status, b"online", qos=1, retain=True)

    link.add_connect_hook(announce)
    async with running(watcher):
        task = asyncio.create_task(link.run())
        try:
            await inbox.wait_payload(status, b"online")
            if how == "stop":
                # What the service does: say goodbye itself, then disconnect cleanly.
                assert await link.publish(status, b"offline", qos=1, retain=True)
                await link.stop()
                assert task.done()
                assert task.result() is None
            else:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        finally:
            task.cancel()
        client_id = link._client_id
        await eventually(lambda: mosquitto.count_in_log(f"Client {client_id} disconnected.") == 1)
        # Give a (wrongly) fired will time to arrive before checking it did not.
        await asyncio.sleep(0.5)
        assert b"will-fired" not in inbox.payloads(status)
        assert mosquitto.count_in_log(f"Client {client_id} closed its connection") == 0
        assert not link.connected


async def test_run_twice_is_refused(mosquitto: Mosquitto) -> None:
    link = make_link(mosquitto.url(), "twice")
    async with running(link):
        with pytest.raises(RuntimeError, match="already running"):
            await link.run()
    # ...but it can run again after a stop.
    async with running(link):
        assert link.statistics().connects == 2


async def test_stop_while_connecting_to_a_silent_peer_returns_promptly(
    mosquitto: Mosquitto,
) -> None:
    mosquitto.pause()  # accepts TCP (kernel backlog) but never answers CONNECT
    link = make_link(mosquitto.url(), "impatient", connect_timeout=30)
    task = asyncio.create_task(link.run())
    await eventually(lambda: link.statistics().connect_attempts == 1)
    await asyncio.sleep(0.2)
    start = time.monotonic()
    async with asyncio.timeout(5):
        await link.stop()
    assert time.monotonic() - start < 2.0
    assert task.done()
    assert task.result() is None


# --- half-open connections -------------------------------------------------------------


async def test_half_open_connection_is_detected_and_reconnected(mosquitto: Mosquitto) -> None:
    keepalive = 2
    link = make_link(mosquitto.url(), "halfopen", keepalive=keepalive, connect_timeout=2.0)
    async with running(link):
        mosquitto.pause()  # SIGSTOP: the TCP connection stays open, nothing answers
        detected = await eventually(lambda: not link.connected, within=3 * keepalive + 3)
        # Watchdog: declared dead half a keepalive after an unanswered PINGREQ, which
        # paho sends after a keepalive of silence (checked once per second).
        assert detected <= 1.5 * keepalive + 2.0
        await eventually(lambda: link.statistics().last_error is not None)
        last_error = link.statistics().last_error
        assert last_error is not None
        assert "PINGRESP" in last_error
        mosquitto.resume()
        await eventually(lambda: link.connected, within=10)
        assert link.statistics().reconnects == 1


async def test_a_socket_error_reconnects_instead_of_ending_the_link(mosquitto: Mosquitto) -> None:
    """aiomqtt records a failed socket read or write on its disconnect future without
    calling paho's on_disconnect; the link must treat that as a lost connection."""
    link = make_link(mosquitto.url(), "sockerr")
    async with running(link) as task:
        await eventually(lambda: link.connected)
        conn = link._conn
        assert conn is not None
        # What aiomqtt's socket callbacks do when the socket raises.
        conn._aiomqtt._disconnected.set_exception(ConnectionResetError("reset by test"))
        await eventually(lambda: link.statistics().reconnects == 1, within=10)
        await eventually(lambda: link.connected, within=10)
        assert not task.done()
        last_error = link.statistics().last_error
        assert last_error is not None
        assert "reset by test" in last_error


# --- authentication --------------------------------------------------------------------


async def test_correct_credentials_from_environment(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory(users={"alice": "correct horse"})
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    spec = load_broker_spec(broker.url(), {ENV_USERNAME: "alice", ENV_PASSWORD_FILE: str(secret)})
    inbox = Inbox()
    link = make_link(spec, "alice", on_message=inbox)
    link.subscribe("auth/#")
    async with running(link):
        assert await link.publish("auth/x", b"hi")
        await inbox.wait_payload("auth/x", b"hi")


async def test_wrong_password_gives_up_with_auth_error(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory(users={"alice": "correct horse"})
    link = make_link(
        broker.url("alice", "wrong-battery"),
        "intruder",
        backoff_min=0.2,
        backoff_max=0.4,
        max_auth_failures=3,
    )
    start = time.monotonic()
    with pytest.raises(AuthError, match=r"refused the login as user 'alice'.*giving up after 3"):
        async with asyncio.timeout(20):
            await link.run()
    elapsed = time.monotonic() - start
    assert elapsed >= 2 * 0.2  # two backoff sleeps between the three attempts
    stats = link.statistics()
    assert stats.auth_failures == 3
    assert stats.connect_attempts == 3
    assert stats.connects == 0
    # mosquitto logs the refusal just after sending it; poll for the line.
    await eventually(lambda: broker.count_in_log("disconnected, not authorised") == 3)
    assert "wrong-battery" not in caplog.text
    assert stats.last_error is not None
    assert "wrong-battery" not in stats.last_error


async def test_anonymous_refused_keeps_retrying_without_a_tight_loop(
    mosquitto_factory: MosquittoFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory(users={"alice": "pw"})  # anonymous off
    link = make_link(broker.url(), "anon", backoff_min=0.2, backoff_max=0.5, max_auth_failures=None)
    window = 2.5
    async with running(link, connect_timeout=None) as task:
        await asyncio.sleep(window)
        assert not task.done()
    stats = link.statistics()  # final: the link has stopped
    attempts = stats.connect_attempts
    assert 2 <= attempts <= window / 0.2 + 2
    # Every attempt but one cut short by the stop was refused. The broker refused each of
    # those and, at most, the cut-short one (whose CONNACK the link may not have read).
    assert attempts - 1 <= stats.auth_failures <= attempts
    refused = stats.auth_failures

    def broker_refusals() -> int:
        return broker.count_in_log("disconnected, not authorised")

    await eventually(lambda: broker_refusals() >= refused)
    assert broker_refusals() <= attempts
    assert "refused the anonymous login" in caplog.text
    assert isinstance(AuthError("x"), PermissionError)


# --- TLS -------------------------------------------------------------------------------


async def test_tls_with_pinned_ca_and_client_certificate(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    broker = mosquitto_factory(tls=pki, require_certificate=True)
    spec = parse_broker_url(
        broker.tls_url(), ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    inbox = Inbox()
    link = make_link(spec, "tls", on_message=inbox)
    link.subscribe("tls/#")
    async with running(link):
        assert await link.publish("tls/x", b"secure")
        await inbox.wait_payload("tls/x", b"secure")
        assert nodelay(link._raw_socket()) != 0


async def test_tls_with_the_wrong_ca_fails_verification(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    broker = mosquitto_factory(tls=pki)
    link = make_link(parse_broker_url(broker.tls_url(), ca_file=pki.other_ca), "tls-bad")
    async with running(link, connect_timeout=None):
        await eventually(lambda: link.statistics().last_error is not None)
        last_error = link.statistics().last_error
        assert last_error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in last_error
        assert not link.connected
    # The insecure flag (lab use only) skips verification.
    insecure = make_link(parse_broker_url(broker.tls_url("insecure=1")), "tls-insecure")
    async with running(insecure):
        assert insecure.connected


def test_missing_tls_files_are_a_config_error(tmp_path: Path) -> None:
    spec = parse_broker_url("mqtts://h", ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(ConfigError, match=r"cannot load TLS files \(ca=.*missing-ca\.pem\)"):
        MqttLink(spec, client_id="x")


# --- construction errors ---------------------------------------------------------------


def test_unresolved_spec_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a concrete broker URL, got 'auto'"):
        MqttLink(parse_broker_url("auto"), client_id="x")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"client_id": ""}, "client_id must be a non-empty string"),
        ({"keepalive": 0}, r"keepalive must be an integer in 1\.\.65535"),
        ({"backoff_min": 0}, "backoff_min must be > 0"),
        ({"backoff_min": 2.0, "backoff_max": 1.0}, r"backoff_max must be >= backoff_min \(2\.0\)"),
        ({"protocol": "4"}, "protocol must be None, 'auto', '5' or '3.1.1'"),
        ({"max_queued_outgoing": 0}, "max_queued_outgoing must be >= 1"),
        ({"max_auth_failures": 0}, "max_auth_failures must be None or >= 1"),
        ({"will": Will("s", b"x", qos=3)}, "will.qos must be 0, 1 or 2"),
    ],
)
def test_bad_link_options(options: dict[str, object], match: str) -> None:
    options.setdefault("client_id", "x")
    with pytest.raises(ConfigError, match=match):
        MqttLink(parse_broker_url("mqtt://h"), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a/#/b", "a#", "a/b+", "x\x00y"])
def test_bad_topic_filters(bad: str) -> None:
    link = MqttLink(parse_broker_url("mqtt://h"), client_id="x")
    with pytest.raises(ConfigError, match="MQTT topic filter must be"):
        link.subscribe(bad)
    with pytest.raises(ConfigError, match="qos must be 0, 1 or 2"):
        link.subscribe("ok/+/#", qos=3)


def test_statistics_is_a_frozen_snapshot() -> None:
    link = MqttLink(parse_broker_url("mqtt://h"), client_id="x")
    stats = link.statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.connects = 5  # type: ignore[misc]
    assert stats.protocol is None
    assert stats.connected is False


@pytest.mark.parametrize(
    ("content_type", "expiry"), [("application/msgpack", 5), ("text/plain", None), (None, 60)]
)
def test_publish_properties_are_packed_once_and_as_paho_packs_them(
    content_type: str | None, expiry: int | None
) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from spikestream_client.transport.aiomqtt_adapter import _PackedOnce

    reference = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    packed = _PackedOnce(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for props in (reference, packed):
        if content_type:
            props.ContentType = content_type
        if expiry is not None:
            props.MessageExpiryInterval = expiry
    packed.freeze()
    assert packed.pack() == reference.pack()  # type: ignore[no-untyped-call]
    # Packed once: later packs return the very same bytes object.
    assert packed.pack() is packed.pack()


@pytest.mark.slow
async def test_a_suback_for_more_filters_than_the_control_packet_limit_is_taken(
    mosquitto: Mosquitto,
) -> None:
    """A SUBACK holds a code per filter: the link takes one past CONTROL_PACKET_LIMIT
    when it asked for that many filters (the limit stops a hostile broker's SUBACK, not
    a client with many subscriptions)."""
    count = CONTROL_PACKET_LIMIT + 1000
    inbox = Inbox()
    link = make_link(mosquitto.url(), "many-filters", on_message=inbox)
    for i in range(count):
        link.subscribe(f"many/{i}")
    async with running(link):
        await eventually(lambda: link.connected)
        publisher = make_link(mosquitto.url(), "many-filters-pub")
        async with running(publisher):
            assert await publisher.publish(f"many/{count - 1}", b"last", qos=1)
        await inbox.wait_payload(f"many/{count - 1}", b"last")
    assert link.statistics().connects == 1


async def test_a_lost_connection_is_logged_with_its_reason_and_the_restore_too(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator reading the log after a broker hiccup must see why the connection was
    lost (one WARNING naming the cause) and that it came back with every subscription
    restored (one INFO line with the count): otherwise a silent loss of subscriptions
    and a healthy reconnect look the same."""
    caplog.set_level(logging.INFO, logger="spikestream.transport.link")
    link = make_link(mosquitto.url(), "loglost")
    link.subscribe("loglost/a")
    link.subscribe("loglost/b/#", qos=1)
    async with running(link):
        await eventually(lambda: link.connected)
        conn = link._conn
        assert conn is not None
        conn._aiomqtt._disconnected.set_exception(ConnectionResetError("reset by test"))
        await eventually(lambda: link.statistics().reconnects == 1, within=10)
        await eventually(lambda: "subscriptions restored" in caplog.text, within=10)
    lost = [
        r
        for r in caplog.records
        if r.getMessage().startswith(f"connection to {mosquitto.url()} lost")
    ]
    assert len(lost) == 1, caplog.text
    assert lost[0].levelno == logging.WARNING
    assert "reset by test" in lost[0].getMessage()
    assert f"reconnected to {mosquitto.url()} (reconnect #1), 2 subscriptions restored" in (
        caplog.text
    )


async def test_changing_the_qos_of_a_subscribed_filter_subscribes_it_again(
    mosquitto: Mosquitto,
) -> None:
    """``subscribe()`` again with another QoS must reach the broker on the live
    connection (the docstring: registering the same filter again changes its QoS),
    seen here in the QoS messages are delivered with."""
    inbox = Inbox()
    link = make_link(mosquitto.url(), "requos", on_message=inbox)
    link.subscribe("requos/#", qos=0)
    async with running(link):
        assert await link.publish("requos/a", b"at qos 0", qos=1)
        _, _, first = await inbox.wait_payload("requos/a", b"at qos 0")
        assert first.qos == 0
        link.subscribe("requos/#", qos=1)

        async def upgraded() -> None:
            for attempt in itertools.count():
                payload = f"try {attempt}".encode()
                assert await link.publish("requos/b", payload, qos=1)
                _, _, meta = await inbox.wait_payload("requos/b", payload)
                if meta.qos == 1:
                    return

        async with asyncio.timeout(5):
            await upgraded()


async def test_a_failing_connect_hook_is_logged_and_the_others_still_run(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """An ``on_connect`` hook that raises (a status publish with a bug) is logged; it
    must neither end the link nor keep the later hooks (the retained ``online``
    status) from running. Hooks run in registration order."""
    link = make_link(mosquitto.url(), "badhook")
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        msg = "hook bug"
        raise RuntimeError(msg)

    async def good() -> None:
        ran.append("good")

    link.add_connect_hook(broken)
    link.add_connect_hook(good)
    async with running(link) as task:
        await eventually(lambda: "good" in ran)
        assert ran == ["broken", "good"]  # registration order
        assert link.connected
        assert not task.done()
    assert "on_connect hook" in caplog.text
    assert "hook bug" in caplog.text
