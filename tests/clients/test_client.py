"""The client library against a real mosquitto and a running ``spikestream serve``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
    Frame,
    Gap,
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
