"""The client library against a real mosquitto and a running ``spikestream serve``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream.errors import ConfigError, TransportError
from spikestream_client import (
    ControlRejected,
    ControlTimeout,
    Frame,
    Gap,
    NetworkNotFound,
    ProbeNotFound,
    SpikestreamClient,
    client_broker_spec,
    client_broker_specs,
)
from spikestream_client.codec import (
    DEFAULT_MAX_FRAME_BYTES,
    PayloadRejected,
    SpikeFrame,
    ValueFrame,
)
from tests.brokers import Mosquitto, free_port
from tests.clients.conftest import SeedService, wait_online
from tests.clients.frames import HTML_NAME, TERMINAL_NAME, header, regular_spikes, spike_payload
from tests.conftest import MosquittoFactory
from tests.serving import NODELAY, SEED, ServeProcess
from tests.transport.support import eventually

pytestmark = pytest.mark.broker


async def until(stream: AsyncIterator[Frame], pred: object, within: float = 10.0) -> Frame:
    """The first frame from ``stream`` for which ``pred(frame)`` is true."""
    assert callable(pred)
    async with asyncio.timeout(within):
        async for frame in stream:
            if pred(frame):
                return frame
    raise AssertionError("stream ended")


async def test_frames_are_decoded_and_contiguous(seed_service: SeedService) -> None:
    async with SpikestreamClient(seed_service.url) as client:
        await client.status("seed").wait_for("online", timeout=5)
        stream = client.frames("seed", "a_spikes")
        frames: list[Frame] = []
        async with asyncio.timeout(10):
            async for frame in stream:
                frames.append(frame)
                if len(frames) == 30:
                    break
    assert all(isinstance(f, SpikeFrame) for f in frames)
    seqs = [f.header.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + 30)), "frames must arrive contiguous"
    for prev, cur in itertools.pairwise(frames):
        assert cur.header.tick == prev.header.tick + prev.header.ticks
    first = frames[0]
    assert isinstance(first, SpikeFrame)
    assert first.spikes.shape == (first.header.ticks, 50)
    assert sum(int(f.spikes.sum()) for f in frames if isinstance(f, SpikeFrame)) > 0
    assert (stream.gap_count, stream.missing, stream.overflowed) == (0, 0, 0)
    assert not stream.gaps


async def test_all_probes_of_a_network(seed_service: SeedService) -> None:
    async with SpikestreamClient(seed_service.url) as client:
        stream = client.frames("seed")
        kinds: dict[str, str] = {}
        async with asyncio.timeout(10):
            async for frame in stream:
                kinds[frame.header.probe] = frame.kind
                if len(kinds) == 5:
                    break
        stats = client.stats("seed")
        latest = await stats.get(timeout=5)
    assert kinds == {
        "a_spikes": "spikes",
        "b_spikes": "spikes",
        "a_filtered": "values",
        "b_filtered": "values",
        "u": "values",
    }
    assert latest["event"] == "stats"
    assert latest["tick"] > 0
    assert 0.5 < latest["realtime_factor_actual"] < 1.5
    assert stream.gap_count == 0


async def test_a_probe_stream_beside_an_every_probe_consumer_gets_each_frame_once(
    seed_service: SeedService,
) -> None:
    """``frames("seed", "u")`` beside ``on_frame("seed", None, ...)`` subscribes
    ``out/u`` and ``out/+``, and mosquitto sends a copy per matching subscription: each
    frame of ``u`` reached both consumers twice, and the stream reported a ``restart``
    gap at every second copy. Each consumer now gets each frame once; the copies are
    counted in ``frames_duplicate``."""
    async with SpikestreamClient(seed_service.url) as client:
        every: list[int] = []
        client.on_frame(
            "seed", None, lambda f: every.append(f.header.seq) if f.header.probe == "u" else None
        )
        stream = client.frames("seed", "u", gaps=True)
        await client.sync()
        seen: list[int] = []
        async with asyncio.timeout(10):
            async for item in stream:
                assert not isinstance(item, Gap), item
                seen.append(item.header.seq)
                if len(seen) == 40:
                    break
        duplicates = client.statistics().frames_duplicate
    assert seen == list(range(seen[0], seen[0] + 40))
    assert len(every) == len(set(every)) >= 30
    assert duplicates >= 30  # the broker did send the copies: they were dropped


async def _publisher(broker: Mosquitto) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY)


async def test_injected_gap_is_detected(mosquitto: Mosquitto) -> None:
    """Hand-crafted frames with seq 0, 1, 2, 5, 6 and then 0 (a restarted service)."""
    spikes = regular_spikes(0, 10, 8, 3)
    seqs = [0, 1, 2, 5, 6, 0]
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        stream = client.frames("fake", "p", gaps=True)
        assert await client.sync(timeout=5)
        for seq in seqs:
            payload = spike_payload(header("p", seq, 10 * seq), spikes)
            await pub.publish("spikestream/fake/out/p", payload, qos=1)
        items: list[Frame | Gap] = []
        async with asyncio.timeout(10):
            async for item in stream:
                items.append(item)
                if len(items) == len(seqs) + 2:
                    break
    kinds = [("gap", i.kind) if isinstance(i, Gap) else ("frame", i.header.seq) for i in items]
    assert kinds == [
        ("frame", 0),
        ("frame", 1),
        ("frame", 2),
        ("gap", "lost"),
        ("frame", 5),
        ("frame", 6),
        ("gap", "restart"),
        ("frame", 0),
    ]
    lost = items[3]
    assert isinstance(lost, Gap)
    assert (lost.expected, lost.got, lost.missing, lost.local) == (3, 5, 2, 0)
    assert (lost.net, lost.probe, lost.tick) == ("fake", "p", 50)
    assert (stream.gap_count, stream.missing, stream.restarts) == (1, 2, 1)
    assert [g.kind for g in stream.gaps] == ["lost", "restart"]


async def test_queue_overflow_drops_oldest_and_reports_it(mosquitto: Mosquitto) -> None:
    spikes = regular_spikes(0, 10, 4, 2)
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        stream = client.frames("fake", "p", maxsize=2)
        assert await client.sync(timeout=5)
        await pub.publish("spikestream/fake/out/p", spike_payload(header("p", 0, 0), spikes))
        first = await stream.get(timeout=5)
        assert first.header.seq == 0
        for seq in range(1, 6):
            await pub.publish("spikestream/fake/out/p", spike_payload(header("p", seq, 0), spikes))
        await client.sync(timeout=5)  # a round trip: all five have been delivered by now
        rest = [await stream.get(timeout=5), await stream.get(timeout=5)]
    assert [f.header.seq for f in rest] == [4, 5]
    assert stream.overflowed == 3
    (gap,) = stream.gaps
    assert (gap.expected, gap.got, gap.missing, gap.local) == (1, 4, 3, 3)


async def test_undecodable_frames_are_counted_not_fatal(mosquitto: Mosquitto) -> None:
    spikes = regular_spikes(0, 10, 4, 2)
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        stream = client.frames("fake", "p")
        assert await client.sync(timeout=5)
        await pub.publish("spikestream/fake/out/p", b"\x81\xa1v\x09")  # schema v9
        await pub.publish("spikestream/fake/out/p", spike_payload(header("p", 7, 70), spikes))
        frame = await stream.get(timeout=5)
    assert frame.header.seq == 7
    assert client.statistics().decode_errors == 1


async def test_a_describe_past_the_links_limit_is_counted_and_clears_nothing(
    seed_service: SeedService,
) -> None:
    """Past 16 MiB (plus room for the topic), the link drops a message unread and passes
    it on empty, marked: an empty describe document clears the network, a dropped one
    must not; it is counted as a decode error instead."""
    async with (
        SpikestreamClient(seed_service.url) as client,
        await _publisher(seed_service.broker) as pub,
    ):
        client.watch_networks()
        assert await client.find_network("seed", timeout=5) is not None
        big = b"\x00" * (DEFAULT_MAX_FRAME_BYTES + 2**18)
        await pub.publish("spikestream/seed/describe", big, qos=1)
        assert await client.sync(timeout=10)
        assert "seed" in client.descriptions()
        assert client.statistics().decode_errors == 1
        assert client.statistics().dropped_unread == 1  # never held whole


async def test_frames_with_hostile_or_mismatched_names_are_rejected_and_counted(
    mosquitto: Mosquitto,
) -> None:
    """The codec refuses header names that break the naming rule, and the client refuses
    a frame whose header names another probe or network than its topic: each is
    counted as a decode error, none reaches a consumer, the client goes on."""
    spikes = regular_spikes(0, 10, 4, 2)
    rejected = [
        ("spikestream/fake/out/p", header(HTML_NAME, 0, 0)),  # name rule
        ("spikestream/fake/out/p", header(TERMINAL_NAME, 1, 10)),  # name rule
        ("spikestream/fake/out/p", header("p", 2, 20, net="a b")),  # name rule, net
        (f"spikestream/fake/out/{HTML_NAME}", header(HTML_NAME, 3, 30)),  # topic too
        ("spikestream/fake/out/p", header("q", 4, 40)),  # poses as probe q
        ("spikestream/fake/out/p", header("p", 5, 50, net="other")),  # as network other
    ]
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        stream = client.frames("fake")
        assert await client.sync(timeout=5)
        for topic, h in rejected:
            await pub.publish(topic, spike_payload(h, spikes), qos=1)
        await pub.publish(
            "spikestream/fake/out/p", spike_payload(header("p", 7, 70), spikes), qos=1
        )
        frame = await stream.get(timeout=5)
        assert (frame.header.probe, frame.header.seq) == ("p", 7)
        # Messages on other topics may trail the valid frame.
        await eventually(lambda: client.statistics().decode_errors >= len(rejected), 5)
        await asyncio.sleep(0.1)
        assert len(stream) == 0
        stats = client.statistics()
    assert stats.decode_errors == len(rejected)
    assert stats.frames == 1


async def test_control_commands_and_replies(seed_service: SeedService) -> None:
    async with SpikestreamClient(seed_service.url) as client:
        stats = client.stats("seed")
        reply = await client.pause("seed")
        try:
            assert reply.ok
            assert reply.event["event"] == "control_ok"
            assert reply.event["paused"] is True
            assert reply.event["id"] == reply.id
            async with asyncio.timeout(5):
                async for message in stats:
                    if message["paused"]:
                        break
        finally:
            resumed = await client.resume("seed")
        assert resumed.event["paused"] is False
        changed = await client.set("seed", "realtime_factor", 1.0)
        assert changed.event["realtime_factor"] == 1.0
        # Text is typed as the text form types it: "2e0" is a number, not a refused string.
        changed = await client.set("seed", "realtime_factor", " 2e0 ")
        assert changed.event["realtime_factor"] == 2.0
        changed = await client.set("seed", "realtime_factor", "1")
        assert changed.event["realtime_factor"] == 1.0
        changed = await client.control("seed", "set", "realtime_factor", "1.5")  # alike
        assert changed.event["realtime_factor"] == 1.5
        await client.set("seed", "realtime_factor", 1.0)
        with pytest.raises(PayloadRejected, match="must be finite"):
            await client.set("seed", "realtime_factor", "inf")
        # learn's switch is its value; given where the key goes, the refusal says so ...
        with pytest.raises(PayloadRejected, match=r"'learn' takes no key .* on/off is the value"):
            await client.control("seed", "learn", "off")
        # ... and learn() puts it there: the seed has nothing to learn, so the service
        # itself refuses it (not the client's check).
        with pytest.raises(ControlRejected, match="no learning connection") as learn:
            await client.learn("seed", "off")
        assert learn.value.reply.cmd == "learn"
        # A key outside the control schema is refused before it is sent ...
        with pytest.raises(PayloadRejected, match="cannot set 'bogus'; settable keys"):
            await client.set("seed", "bogus", 3.0)
        # ... a command only the service can refuse comes back as its reply.
        with pytest.raises(ControlRejected, match="no learning connection") as info:
            await client.set("seed", "learning", True)
        assert info.value.reply.event["event"] == "control_rejected"
        assert await client.control("seed", "status", wait=False) is None
        status = await client.control("seed", "status")
        assert status.event["paused"] is False
        assert status.event["tick"] > 0


async def test_inputs_reach_the_service(seed_service: SeedService) -> None:
    """The ``u`` probe carries the input value of every tick."""
    async with SpikestreamClient(seed_service.url) as client:
        u = client.frames("seed", "u")
        events = client.events("seed")
        await client.sync()

        def all_equal(value: float) -> object:
            def pred(f: Frame) -> bool:
                return isinstance(f, ValueFrame) and bool(np.all(f.data == np.float32(value)))

            return pred

        for _ in range(3):  # the service keeps the latest value; one message is enough
            assert await client.publish_input("seed", "u", 0.25)
        await until(u, all_equal(0.25))
        assert client.publish_input_nowait("seed", "u", [-0.5], t=12.5)
        await until(u, all_equal(-0.5))
        assert await client.publish_input("seed", "u", np.array([0.75]), t=13.0, qos=1)
        await until(u, all_equal(0.75))
        assert await client.publish_input("seed", "u", [1.0, 2.0])  # u has dim 1
        async with asyncio.timeout(10):
            async for event in events:
                if event["event"] == "input_rejected":
                    break
        assert event["input"] == "u"
        assert event["reason"] == "dimension"
        assert await client.publish_input("seed", "u", 0.0)


async def test_status_watcher_follows_the_service(mosquitto: Mosquitto, tmp_path: Path) -> None:
    serve = ServeProcess(SEED, mosquitto.url(), workdir=tmp_path).start()
    try:
        await wait_online(mosquitto.url(), "seed", serve)
        async with SpikestreamClient(mosquitto.url()) as client:
            watcher = client.status("seed")
            changes = aiter(watcher)
            async with asyncio.timeout(10):
                assert await anext(changes) == "online"
            assert watcher.online
            serve.signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                assert await anext(changes) == "offline"
            assert watcher.current == "offline"
            assert watcher.since is not None
        # Already signalled: wait for the exit instead of signalling again, since a second
        # SIGTERM after the loop has closed (a slow interpreter shutdown) ends the
        # process with the default action.
        assert await asyncio.to_thread(serve.wait) == 0
    finally:
        serve.kill()


async def test_a_lost_connection_makes_the_status_unknown_until_it_is_sent_again(
    mosquitto: Mosquitto,
) -> None:
    """A restarted broker holds no retained status, and the service may still be in its
    backoff: the watcher kept ``online`` through the restart, so a loop that checked it
    published values the broker dropped (no one subscribed). From a lost connection the
    status is unknown (None) until the broker sends one again."""
    publisher = await _publisher(mosquitto)
    async with publisher:
        await publisher.publish("spikestream/seed/status", b"online", qos=1, retain=True)
    async with SpikestreamClient(mosquitto.url()) as client:
        watcher = client.status("seed")
        await watcher.wait_for("online", timeout=10)
        await asyncio.to_thread(mosquitto.restart)  # comes back holding no retained status
        await eventually(lambda: watcher.current is None)
        await client.wait_connected(10)
        await client.sync()
        assert watcher.current is None  # nothing retained: unknown, not the old online
        async with await _publisher(mosquitto) as again:
            await again.publish("spikestream/seed/status", b"online", qos=1, retain=True)
        await watcher.wait_for("online", timeout=10)


async def test_a_probe_the_network_does_not_have_is_refused_once_it_is_described(
    seed_service: SeedService,
) -> None:
    """Such a stream would wait for ever without a word (no frame ever comes): once the
    network's describe document has arrived, the name is checked against it."""
    async with SpikestreamClient(seed_service.url) as client:
        client.frames("seed", "nonesuch")  # not described yet: nothing to check against
        assert await client.find_network("seed") is not None
        with pytest.raises(ProbeNotFound, match=r"'seed' has no probe 'nonesuch'; its probes: "):
            client.frames("seed", "nonesuch")
        with pytest.raises(LookupError, match=r"its probes: .*\bu\b"):
            client.frames("seed", "nonesuch", gaps=True)
        with pytest.raises(ProbeNotFound, match="no probe 'nonesuch'"):
            client.on_frame("seed", "nonesuch", lambda frame: None)  # a callback alike
        u = client.frames("seed", "u")  # a probe it has, and every probe, still stream
        every = client.frames("seed")
        await until(u, lambda f: True)
        await until(every, lambda f: True)


async def test_waiting_for_a_status_that_does_not_come_says_what_it_is(
    mosquitto: Mosquitto,
) -> None:
    async with SpikestreamClient(mosquitto.url()) as client:
        watcher = client.status("seed")
        no_status = r"^'seed' was not 'online' within 0.2 s \(no status received\)$"
        with pytest.raises(TimeoutError, match=no_status):
            await watcher.wait_for("online", timeout=0.2)
        async with await _publisher(mosquitto) as publisher:
            await publisher.publish("spikestream/seed/status", b"offline", qos=1, retain=True)
        await watcher.wait_for("offline", timeout=10)
        with pytest.raises(TimeoutError, match=r"within 0.2 s \(it is 'offline'\)$"):
            await watcher.wait_for("online", timeout=0.2)


async def test_connection_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="embedded"):
        client_broker_spec("embedded")
    assert client_broker_spec("auto").redacted() == "mqtt://127.0.0.1:1883"
    client = SpikestreamClient(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=1.0)
    with pytest.raises(TransportError, match="cannot connect"):
        await client.start()
    await client.close()
    with pytest.raises(RuntimeError, match="not started"):
        await SpikestreamClient().publish_input("seed", "u", 1.0)


async def test_read_only_acl_user(mosquitto_factory: MosquittoFactory) -> None:
    """A user that may read everything and write nothing, not even the sync topics:
    frames still arrive, sync() gives up at once instead of waiting, commands fail clearly."""
    broker = mosquitto_factory(
        users={"mon": "mon-pw", "svc": "svc-pw"},
        acl="user mon\ntopic read spikestream/#\n\nuser svc\ntopic readwrite spikestream/#\n",
    )
    spikes = regular_spikes(0, 10, 4, 2)
    async with (
        SpikestreamClient(broker.url("mon", "mon-pw")) as client,
        aiomqtt.Client(
            broker.host, broker.port, username="svc", password="svc-pw", socket_options=NODELAY
        ) as pub,
    ):
        stream = client.frames("fake", "p")
        started = time.monotonic()
        assert await client.sync(timeout=5) is False
        assert time.monotonic() - started < 2.0
        frame: Frame | None = None
        for seq in range(50):  # until the subscription is surely active
            await pub.publish("spikestream/fake/out/p", spike_payload(header("p", seq, 0), spikes))
            with contextlib.suppress(TimeoutError):
                frame = await stream.get(timeout=0.1)
                break
        assert frame is not None
        assert frame.header.net == "fake"
        with pytest.raises(TransportError, match="not acknowledged"):
            await client.control("fake", "pause", wait=False)


async def test_a_broker_list_connects_to_the_first_that_answers_and_fails_over(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """``SpikestreamClient`` takes the same list as ``serve --broker``: a dead address is
    skipped, and losing the broker moves the client to the next one, statuses and all."""
    a, b = mosquitto_factory(), mosquitto_factory()
    dead = f"mqtt://127.0.0.1:{free_port()}"
    assert len(client_broker_specs(f"{dead},{a.url()},{b.url()}")) == 3
    with pytest.raises(ConfigError, match="cannot be part of a list"):
        client_broker_specs(f"{a.url()},embedded")
    async with SpikestreamClient([dead, a.url(), b.url()], connect_timeout=10.0) as client:
        watcher = client.status("seed")
        async with aiomqtt.Client("127.0.0.1", a.port, socket_options=NODELAY) as pub:
            await pub.publish("spikestream/seed/status", b"offline", qos=1, retain=True)
        await asyncio.wait_for(watcher.wait_for("offline"), 10)  # connected to a
        a.kill()
        async with aiomqtt.Client("127.0.0.1", b.port, socket_options=NODELAY) as pub:
            deadline = time.monotonic() + 10
            while watcher.current != "online":
                assert time.monotonic() < deadline, "no status through broker b"
                await pub.publish("spikestream/seed/status", b"online", qos=1, retain=True)
                await asyncio.sleep(0.2)


async def test_wait_connected_when_someone_else_cancels_the_link() -> None:
    """A link task cancelled from outside is a failed connection (TransportError), not a
    cancellation of the caller, who was never cancelled."""
    client = SpikestreamClient(f"mqtt://127.0.0.1:{free_port()}")  # nothing listens there
    await client.start(wait=False)
    try:
        task = client._task
        assert task is not None
        asyncio.get_running_loop().call_later(0.2, task.cancel)
        with pytest.raises(TransportError, match="cannot connect"):
            await client.wait_connected(5.0)
    finally:
        await client.close()


def test_the_constructor_checks_the_prefix_and_keeps_the_client_id() -> None:
    """A prefix that is no valid topic level is refused when the client is made, not at
    its first subscription; a given client id is the one used (a broker's ACL or its
    session may hang on it), and the default names the role."""
    with pytest.raises(ValueError, match="prefix"):
        SpikestreamClient("mqtt://127.0.0.1:1", prefix="a/#")
    assert SpikestreamClient("mqtt://127.0.0.1:1", client_id="mine").client_id == "mine"
    made = SpikestreamClient("mqtt://127.0.0.1:1", role="monitor").client_id
    assert made.startswith("spikestream-monitor-"), made


async def test_a_start_timeout_is_the_one_waited_for_and_a_failed_start_closes() -> None:
    """``start(timeout=...)`` wins over ``connect_timeout``, and the refusal says which
    timeout passed; the failed start leaves no link retrying in the background, and a
    second ``start`` of a started client makes no second link."""
    client = SpikestreamClient(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=5.0)
    with pytest.raises(TransportError, match=r"cannot connect to .* within 0\.3 s"):
        await client.start(timeout=0.3)
    assert client._task is not None
    assert client._task.done()  # closed by start itself
    stats = client.statistics()
    assert (stats.connected, stats.connects) == (False, 0)
    assert stats.last_error  # why it could not connect, as the message said
    again = SpikestreamClient(f"mqtt://127.0.0.1:{free_port()}")
    await again.start(wait=False)
    try:
        assert not again.connected
        link = again._link
        await again.start(wait=False)
        assert again._link is link
    finally:
        await again.close()


async def test_a_link_that_gives_up_is_named_in_the_error(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """Refused credentials end the link (after its bounded retries): ``start`` says
    which broker's link failed, with the broker's reason, and hides the password."""
    broker = mosquitto_factory(users={"svc": "svc-pw"})
    client = SpikestreamClient(broker.url("svc", "wrong-pw"), connect_timeout=30.0)
    with pytest.raises(TransportError, match=r"^MQTT link to mqtt://svc:\*+@.* failed: ") as info:
        await client.start()
    assert "wrong-pw" not in str(info.value)


async def test_close_ends_every_stream_and_a_sync_in_progress() -> None:
    """Closing the client ends its iterators (one made after the close at once), and a
    sync that was waiting then answers False: it was never confirmed."""
    client = SpikestreamClient(f"mqtt://127.0.0.1:{free_port()}")  # nothing listens
    await client.start(wait=False)
    waiting = asyncio.create_task(client.sync(timeout=30))
    frames = client.frames("fake", "p")
    events = client.events("fake")
    await asyncio.sleep(0.1)
    await client.close()
    async with asyncio.timeout(10):
        assert await waiting is False
        assert [f async for f in frames] == []
        assert [e async for e in events] == []
        assert [s async for s in client.stats("fake")] == []


def _event(kind: str, **fields: object) -> bytes:
    return json.dumps({"v": 1, "event": kind, "wall": time.time(), **fields}).encode()


async def test_event_and_stats_streams_keep_at_most_their_maxsize(mosquitto: Mosquitto) -> None:
    """``events(maxsize=...)`` and ``stats(maxsize=...)`` bound their queues as asked:
    the oldest messages are dropped and counted."""
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        events = client.events("fake", maxsize=2)
        stats = client.stats("fake", maxsize=3)
        assert await client.sync(timeout=5)
        for n in range(6):
            await pub.publish("spikestream/fake/events", _event("note", n=n), qos=1)
            await pub.publish("spikestream/fake/stats", _event("stats", n=n), qos=1)
        await eventually(lambda: client.latest_stats("fake") is not None)
        await eventually(lambda: events.overflowed + len(events) == 6)
        await eventually(lambda: stats.overflowed + len(stats) == 6)
        assert (len(events), events.overflowed) == (2, 4)
        assert (len(stats), stats.overflowed) == (3, 3)
        assert [(await events.get(timeout=1))["n"] for _ in range(2)] == [4, 5]


async def test_statistics_count_refused_unrouted_and_failed_callback_messages(
    mosquitto: Mosquitto,
) -> None:
    """``frames_refused``, ``unrouted`` and ``callback_errors`` reach the snapshot: a
    frame that does not decode, a frame for a stream already closed, a callback that
    raises."""
    spikes = regular_spikes(0, 10, 4, 2)
    async with SpikestreamClient(mosquitto.url()) as client, await _publisher(mosquitto) as pub:
        closed = client.frames("fake", "gone")

        def broken(frame: Frame) -> None:
            raise RuntimeError("a consumer's bug")

        client.on_frame("fake", "p", broken)
        assert await client.sync(timeout=5)
        closed.close()
        await pub.publish("spikestream/fake/out/p", b"\x81\xa1v\x09", qos=1)  # schema v9
        await pub.publish("spikestream/fake/out/p", spike_payload(header("p", 0, 0), spikes), 1)
        gone = spike_payload(header("gone", 0, 0), spikes)
        await pub.publish("spikestream/fake/out/gone", gone, qos=1)
        await eventually(lambda: client.statistics().unrouted >= 1)
        stats = client.statistics()
    assert (stats.frames_refused, stats.decode_errors) == (1, 1)
    assert (stats.callback_errors, stats.unrouted, stats.frames) == (1, 1, 1)


async def test_inputs_are_published_with_the_qos_asked_for(mosquitto: Mosquitto) -> None:
    """``qos=1`` reaches the broker as QoS 1 from both publish methods (a QoS 1
    subscriber gets it as QoS 1): it is what makes the broker keep the value for a
    service whose session is briefly away."""
    async with await _publisher(mosquitto) as sub, SpikestreamClient(mosquitto.url()) as client:
        await sub.subscribe("spikestream/fake/in/u", qos=1)
        assert await client.publish_input("fake", "u", 0.5, qos=1)
        assert client.publish_input_nowait("fake", "u", 0.25, qos=1)
        got: list[int] = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                got.append(message.qos)
                if len(got) == 2:
                    break
    assert got == [1, 1]


async def _answer_controls(broker: Mosquitto, seen: list[dict[str, object]]) -> None:
    """A stand-in service on the real broker: each command to ``fake`` is recorded and
    answered with a ``control_ok`` that carries its id."""
    async with await _publisher(broker) as svc:
        await svc.subscribe("spikestream/fake/control", qos=1)
        async for message in svc.messages:
            assert isinstance(message.payload, bytes)
            command = json.loads(message.payload)
            seen.append(command)
            reply = _event("control_ok", cmd=command["cmd"], id=command["id"], net="fake")
            await svc.publish("spikestream/fake/events", reply, qos=1)


async def test_each_helper_sends_its_own_command_and_value(mosquitto: Mosquitto) -> None:
    """``reset`` sends ``reset``, ``learn`` sends the switch it was given, and a text
    value of a ``set`` spelt in another case is typed as the text form types it."""
    seen: list[dict[str, object]] = []
    service = asyncio.create_task(_answer_controls(mosquitto, seen))
    try:
        async with SpikestreamClient(mosquitto.url()) as client:
            await eventually(lambda: client.connected)
            await asyncio.sleep(0.2)  # the stand-in's subscription
            assert (await client.reset("fake")).ok
            assert (await client.learn("fake", False)).ok
            assert (await client.learn("fake", "off")).ok
            assert (await client.control("fake", " Set ", "realtime_factor", "2")).ok
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
    sent = [(c["cmd"], c.get("key"), c.get("value")) for c in seen]
    assert sent == [
        ("reset", None, None),
        ("learn", None, False),
        ("learn", None, "off"),
        (" Set ", "realtime_factor", 2.0),
    ]


async def test_a_status_only_network_is_found_and_a_silent_command_times_out(
    mosquitto: Mosquitto,
) -> None:
    """A network known only by its retained status (a service older than the describe
    topic) is found, without a description, and its one status watcher follows it; a
    command nobody answers is a ControlTimeout naming the command, the network and the
    time waited."""
    async with await _publisher(mosquitto) as pub:
        await pub.publish("spikestream/old/status", b"online", qos=1, retain=True)
    async with SpikestreamClient(mosquitto.url()) as client:
        assert client.connected
        watcher = client.status("old")
        assert client.status("old") is watcher  # one per network, kept up to date
        assert await client.find_network("old", timeout=5) is None
        assert client.statuses() == {"old": "online"}
        await watcher.wait_for("online", timeout=5)
        with pytest.raises(
            ControlTimeout, match=r"^no reply to control 'pause' \(id .*\) from 'old' within 0.3 s$"
        ):
            await client.control("old", "pause", timeout=0.3)


async def test_a_command_after_the_events_stream_closed_still_gets_its_reply(
    mosquitto: Mosquitto,
) -> None:
    """Closing the only events stream of a network left its (empty) list of consumers
    behind; ``control`` took that as "events are consumed", added none, and the reply
    arrived with nobody to route it to: a ControlTimeout though the service answered."""
    seen: list[dict[str, object]] = []
    service = asyncio.create_task(_answer_controls(mosquitto, seen))
    try:
        async with SpikestreamClient(mosquitto.url()) as client:
            await asyncio.sleep(0.2)  # the stand-in's subscription
            events = client.events("fake")
            assert await client.sync(timeout=5)
            events.close()
            assert (await client.control("fake", "status", timeout=5)).ok
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
    assert [c["cmd"] for c in seen] == ["status"]


async def test_a_missing_network_is_said_to_be_missing_on_the_broker_asked(
    mosquitto: Mosquitto,
) -> None:
    """With a list of brokers, the refusal names the one the client is connected to
    (where it looked), not the first of the list, which may be the dead one."""
    dead = f"mqtt://127.0.0.1:{free_port()}"
    client = SpikestreamClient([dead, mosquitto.url()], connect_timeout=10.0)
    assert client.broker.redacted() == dead  # before start: the first of the list
    async with client:
        assert client.broker.redacted() == mosquitto.url()  # the tools say this one
        with pytest.raises(NetworkNotFound) as info:
            await client.find_network("nosuch", timeout=1)
    said = str(info.value)
    assert f"no network 'nosuch' on {mosquitto.url()} " in said, said
    assert dead not in said


async def test_a_custom_prefix_is_used_for_every_topic(mosquitto: Mosquitto) -> None:
    """A service run with another ``--prefix`` is reached with ``prefix=``: frames and
    events are read, inputs and commands written under it, none under the default."""
    spikes = regular_spikes(0, 10, 4, 2)
    async with (
        SpikestreamClient(mosquitto.url(), prefix="lab") as client,
        await _publisher(mosquitto) as other,
    ):
        await other.subscribe("+/fake/in/u", qos=1)
        await other.subscribe("+/fake/control", qos=1)
        frames = client.frames("fake", "p")
        events = client.events("fake")
        assert await client.sync(timeout=5)
        await other.publish("lab/fake/out/p", spike_payload(header("p", 3, 30), spikes), qos=1)
        await other.publish("lab/fake/events", _event("note"), qos=1)
        assert (await frames.get(timeout=5)).header.seq == 3
        assert (await events.get(timeout=5))["event"] == "note"
        assert await client.publish_input("fake", "u", 0.5, qos=1)
        await client.control("fake", "pause", wait=False)
        written: list[str] = []
        async with asyncio.timeout(10):
            async for message in other.messages:
                written.append(str(message.topic))
                if len(written) == 2:
                    break
    assert written == ["lab/fake/in/u", "lab/fake/control"]


async def test_a_refused_name_leaves_nothing_behind(mosquitto: Mosquitto) -> None:
    """A bad network or probe name is refused, every time, and is not kept: a watcher
    stored before the name was checked came back silently on the second call (a watcher
    of a topic never subscribed), and a refused probe's entry made the next ``start``
    fail with the same error, leaving the client neither started nor startable."""
    client = SpikestreamClient(mosquitto.url())
    for _ in range(2):
        with pytest.raises(ValueError, match="a/b"):
            client.status("a/b")
        with pytest.raises(ValueError, match="a/b"):
            client.frames("fake", "a/b")
        with pytest.raises(ValueError, match="a/b"):
            client.on_frame("fake", "a/b", lambda frame: None)
        with pytest.raises(ValueError, match="a/b"):
            client.events("a/b")
        with pytest.raises(ValueError, match="a/b"):
            client.stats("a/b")
    async with client:
        assert client.connected
        with pytest.raises(ValueError, match="a/b"):
            client.status("a/b")
        assert await client.sync(timeout=5)
