"""The describe document end to end: ``spikestream serve`` on a real mosquitto publishes
it retained before ``online``; a client that reads nothing else feeds every input and
decodes every probe; MQTT 5 requests get their replies with their correlation data;
expired inputs are ignored; the session counter increases across a broker restart; and
the tools find networks from it (``ls``) or fail in one line when there is none."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from spikestream.build import build
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.spec import load_network
from spikestream_client import NetworkNotFound, SpikestreamClient
from spikestream_client.codec import (
    COMMAND_SPECS,
    SETTINGS,
    decode_describe,
    decode_frame,
    encode_input,
)
from spikestream_client.transport import parse_broker_url
from tests.brokers import Mosquitto
from tests.clients.conftest import cli, cli_env, run_cli
from tests.e2e.test_serve import publish
from tests.serving import EXAMPLES, ROOT, Listener, Message

pytestmark = pytest.mark.broker

SCHEMA = json.loads((ROOT / "docs" / "describe.schema.json").read_text())
THREE = [EXAMPLES / "seed.toml", EXAMPLES / "square.toml", EXAMPLES / "channel.toml"]


def describes(messages: list[Message], net: str) -> list[dict[str, Any]]:
    topic = f"spikestream/{net}/describe"
    return [json.loads(m.payload) for m in messages if m.topic == topic and m.payload]


def net_events(messages: list[Message], net: str, kind: str) -> list[dict[str, Any]]:
    topic = f"spikestream/{net}/events"
    out = [json.loads(m.payload) for m in messages if m.topic == topic]
    return [e for e in out if e["event"] == kind]


class Paho5:
    """A paho MQTT 5 client on its own network thread; messages land in a queue."""

    def __init__(self, port: int, *subscriptions: str) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"t5-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        for topic in subscriptions:
            self._subscribed.clear()
            self.client.subscribe(topic, qos=1)
            assert self._subscribed.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, **props: Any) -> None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        for key, value in props.items():
            setattr(properties, key, value)
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        info.wait_for_publish(5)

    def next_on(self, topic: str, within: float = 10.0) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if msg.topic == topic:
                return msg
        raise AssertionError(f"nothing on {topic} within {within} s")

    def request(self, command: bytes, correlation: bytes) -> dict[str, Any]:
        """Publish ``command`` on seed's control with a response topic; return the
        decoded reply, after checking it carries ``correlation``."""
        self.publish(
            "spikestream/seed/control", command,
            ResponseTopic="lab/me/replies", CorrelationData=correlation,
        )  # fmt: skip
        msg = self.next_on("lab/me/replies")
        assert msg.properties.CorrelationData == correlation
        reply: dict[str, Any] = json.loads(msg.payload)
        return reply

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_describe_alone_feeds_every_input_and_decodes_every_probe(
    mosquitto: Mosquitto, serve
) -> None:
    """Three example networks: the document comes before ``online``, passes the schema,
    and its topics, dims, shapes and dtypes are all a client needs."""
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/#"]) as sub:
        serve("--memory-limit", "1GiB", network=THREE[0])
        serve(network=THREE[1])
        serve(network=THREE[2])
        for path in THREE:
            await sub.wait_status(path.stem, b"online", within=60)
        # Before online: the first describe of each net precedes its first status.
        for path in THREE:
            net = path.stem
            first = {
                kind: next(i for i, m in enumerate(sub.messages) if m.topic.endswith(kind))
                for kind in (f"/{net}/describe", f"/{net}/status")
            }
            assert first[f"/{net}/describe"] < first[f"/{net}/status"], net

    # A fresh reader that knows only the broker: the retained documents say the rest.
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/describe"]) as reader:
        docs = await reader.wait_for(
            lambda ms: len({m.topic for m in ms}) == 3 and ms, what="three retained documents"
        )
    assert all(m.retain for m in docs)
    by_net = {}
    for m in docs:
        doc = json.loads(m.payload)
        jsonschema.validate(doc, SCHEMA)
        described = decode_describe(m.payload)
        by_net[described.net] = (doc, described)
    assert sorted(by_net) == ["channel", "seed", "square"]
    seed_doc = by_net["seed"][0]
    # The control section is the registry, not a copy of it.
    assert [c["name"] for c in seed_doc["control"]["commands"]] == list(COMMAND_SPECS)
    assert list(seed_doc["control"]["settings"]) == list(SETTINGS)
    bound = seed_doc["control"]["settings"]["ticks_per_frame"]
    assert 1000 < bound["high"] < 2**40
    assert "memory budget" in bound["allowed"]
    assert seed_doc["session"] == 1
    assert seed_doc["text"] == []
    assert seed_doc["discovery"] is None
    assert seed_doc["populations"]["a"]["n"] == 50

    outputs = [p.topic for _, d in by_net.values() for p in d.probes.values()]
    async with Listener("127.0.0.1", mosquitto.port, outputs) as frames:
        # Feed every input, in every encoding it lists, with a value of its dim.
        fed: dict[tuple[str, str], list[float]] = {}
        for doc, d in by_net.values():
            for name, info in d.inputs.items():
                value = [0.25 + 0.125 * i for i in range(info.dim)]
                fed[(d.net, name)] = value
                payloads = {
                    "msgpack": encode_input(value),
                    "json": json.dumps(value).encode(),
                    "text": " ".join(map(str, value)).encode(),
                }
                assert set(doc["inputs"][name]["encodings"]) == set(payloads)
                for encoding in doc["inputs"][name]["encodings"]:
                    await asyncio.to_thread(
                        _publish, mosquitto.port, info.topic, payloads[encoding]
                    )
        await frames.wait_for(
            lambda ms: {m.topic for m in ms} >= set(outputs), 30, "a frame of every probe"
        )
        # Decode every probe by the document: kind, shape, dtype, ticks per frame.
        for _, d in by_net.values():
            for name, info in d.probes.items():
                got = [decode_frame(m.payload) for m in frames.on(info.topic)]
                frame = got[-1]
                assert frame.kind == info.kind, name
                assert frame.header.ticks == info.ticks_per_frame, name
                if frame.kind == "spikes":
                    assert frame.spikes.shape[1:] == info.shape
                    assert info.dtype == "bool"
                else:
                    assert frame.data.shape[1:] == info.shape
                    assert info.dtype == "float32"
        # The inputs arrived: each input probe (source "input") shows the value fed.
        checked = 0
        for doc, d in by_net.values():
            for name, info in d.probes.items():
                entry = doc["probes"][name]
                if entry["source"] == "input":
                    want = fed[(d.net, entry["target"])]
                    await frames.wait_for(
                        lambda ms, t=info.topic, w=want: any(
                            np.allclose(decode_frame(m.payload).data[-1], w)
                            for m in ms
                            if m.topic == t
                        ),
                        10,
                        f"{d.net}/{name} showing {want}",
                    )
                    checked += 1
        assert checked == 3


def _publish(port: int, topic: str, payload: bytes) -> None:
    client = Paho5(port)
    try:
        client.publish(topic, payload)
    finally:
        client.close()


async def test_mqtt5_request_response_status_describe_and_refusals(
    mosquitto: Mosquitto, serve
) -> None:
    serve("--memory-limit", "1GiB")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        await sub.wait_status("seed", b"online")
        paho = await asyncio.to_thread(Paho5, mosquitto.port, "lab/me/replies")
        try:
            # status: the reply on the response topic, with the correlation data as sent.
            reply = await asyncio.to_thread(paho.request, b"status", b"\x00req-1\xff")
            assert reply["event"] == "control_ok"
            assert reply["cmd"] == "status"
            settings = reply["settings"]
            assert set(settings) == set(SETTINGS)
            assert settings["realtime_factor"] == 1.0
            assert settings["ttl"] == {"u": 0.0}
            assert set(settings["ticks_per_frame"]) == {
                "a_spikes", "b_spikes", "a_filtered", "b_filtered", "u"
            }  # fmt: skip
            assert settings["learning"] == {}
            assert settings["learning_rate"] == {}
            # ... and on events, as for every client.
            await sub.wait_for(
                lambda ms: [
                    e for e in net_events(ms, "seed", "control_ok") if e["cmd"] == "status"
                ],
                what="the status reply on events",
            )
            # A change: its reply, then a describe showing it (the document follows).
            reply = await asyncio.to_thread(paho.request, b"set ticks_per_frame 7", b"req-2")
            assert reply["ticks_per_frame"] == 7
            doc = await sub.wait_for(
                lambda ms: [
                    d for d in describes(ms, "seed")
                    if d["probes"]["u"]["ticks_per_frame"] == 7
                ],
                what="a describe with ticks_per_frame 7",
            )  # fmt: skip
            assert doc[-1]["control"]["in_force"]["ticks_per_frame"]["u"] == 7
            # A refusal also goes to the response topic.
            reply = await asyncio.to_thread(paho.request, b"set ttl -1", b"req-3")
            assert reply["event"] == "control_rejected"
            assert "ttl" in reply["error"]
            # The describe command republishes the document (retained).
            before = len(describes(sub.messages, "seed"))
            reply = await asyncio.to_thread(paho.request, b"describe", b"req-4")
            assert reply["cmd"] == "describe"
            await sub.wait_for(
                lambda ms: len(describes(ms, "seed")) > before, what="the describe again"
            )
            # A response topic that would act on a network is refused, and nothing is
            # published there.
            await asyncio.to_thread(
                paho.publish, "spikestream/seed/control", b"pause",
                ResponseTopic="spikestream/seed/in/u", CorrelationData=b"req-5",
            )  # fmt: skip
            await sub.wait_for(
                lambda ms: [
                    e for e in net_events(ms, "seed", "control_rejected")
                    if "response topic" in e["error"]
                ],
                what="the refusal of a hostile response topic",
            )  # fmt: skip
            assert not sub.on("spikestream/seed/in/u")
            assert not [e for e in net_events(sub.messages, "seed", "control_ok")
                        if e["cmd"] == "pause"]  # fmt: skip
        finally:
            await asyncio.to_thread(paho.close)


async def test_expired_inputs_are_ignored(mosquitto: Mosquitto, serve) -> None:
    serve("--stats-interval", "0.2")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        await sub.wait_status("seed", b"online")
        paho = await asyncio.to_thread(Paho5, mosquitto.port)
        try:
            # Sent 5 s ago (by its own timestamp) with 2 s to live: expired on arrival.
            old = json.dumps({"t": time.time() - 5.0, "x": 0.7}).encode()
            await asyncio.to_thread(
                paho.publish, "spikestream/seed/in/u", old, MessageExpiryInterval=2
            )
            refused = await sub.wait_for(
                lambda ms: [
                    e for e in net_events(ms, "seed", "input_rejected")
                    if e["reason"] == "expired"
                ],
                what="the refusal of an expired input",
            )  # fmt: skip
            assert "expired" in refused[0]["error"]
            stats = await sub.wait_for(
                lambda ms: [
                    s for m in ms if m.topic == "spikestream/seed/stats"
                    if (s := json.loads(m.payload))["rejected"].get("expired")
                ],
                what="stats counting it",
            )  # fmt: skip
            assert stats[-1]["rejected"]["expired"] == 1
            assert stats[-1]["inputs"]["u"]["rejected"] == 1
            # A live value with 1 s to live drives the input, then expires while held
            # (ttl is 0: without the expiry it would hold forever).
            fresh = json.dumps({"t": time.time(), "x": 0.9}).encode()
            sent = time.monotonic()
            await asyncio.to_thread(
                paho.publish, "spikestream/seed/in/u", fresh, MessageExpiryInterval=1
            )
            stale = await sub.wait_for(
                lambda ms: net_events(ms, "seed", "input_stale"), what="the value expiring"
            )
            assert stale[0]["input"] == "u"
            assert 0.8 < time.monotonic() - sent < 3.0

            def u_values(_: object = None) -> list[float]:
                return [
                    float(v)
                    for m in sub.on("spikestream/seed/out/u")
                    for v in decode_frame(m.payload).data[:, 0]
                ]

            # The frame showing the fallback may reach the listener after the event does.
            await sub.wait_for(lambda ms: u_values()[-1] == 0.0, what="u back to its default")
            values = u_values()
            assert all(abs(v - 0.7) > 1e-3 for v in values)  # float32 frames: not ==
            assert any(abs(v - 0.9) < 1e-6 for v in values)
            assert values[-1] == 0.0  # back to the default
        finally:
            await asyncio.to_thread(paho.close)


async def test_values_that_expire_before_a_tick_applies_them_are_counted(
    mosquitto: Mosquitto, serve
) -> None:
    """Under ``set ttl 1e-9`` 100 values were accepted and none drove the network, with
    no stale count and no event: each expired before the next tick. They are counted in
    the input's ``expired`` (stats and metrics) now; a value that a newer one replaced
    within the same tick's gap (as two messages the broker sent together) is counted in
    ``superseded`` instead, so the two add up to every value sent."""
    serve("--stats-interval", "0.2")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        await sub.wait_status("seed", b"online")
        await publish(mosquitto, "spikestream/seed/control", b"set ttl 1e-9")
        await sub.wait_for(lambda ms: net_events(ms, "seed", "control_ok"), what="set ttl")
        for _ in range(20):
            await publish(mosquitto, "spikestream/seed/in/u", b"0.7")
        counted = await sub.wait_for(
            lambda ms: [
                u for m in ms if m.topic == "spikestream/seed/stats"
                if (u := json.loads(m.payload)["inputs"]["u"])["expired"] + u["superseded"] == 20
            ],
            what="stats counting 20 expired or superseded values",
        )  # fmt: skip
        counts = counted[-1]
        assert counts["accepted"] == 20
        assert counts["expired"] >= 1  # the last value is replaced by none
        values = [
            float(v)
            for m in sub.on("spikestream/seed/out/u")
            for v in decode_frame(m.payload).data[:, 0]
        ]
        assert values
        assert all(abs(v - 0.7) > 1e-3 for v in values)  # float32 frames: not ==


async def test_values_replaced_while_paused_are_counted_as_superseded(
    mosquitto: Mosquitto, serve
) -> None:
    """Paused, the network takes no value: of three sent, the last drives it on resume and
    the two it replaced are counted in ``superseded`` (stats and metrics)."""
    serve("--stats-interval", "0.2")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/#"]) as sub:
        await sub.wait_status("seed", b"online")
        await publish(mosquitto, "spikestream/seed/control", b"pause")
        await sub.wait_for(lambda ms: net_events(ms, "seed", "control_ok"), what="pause")
        for value in (b"0.1", b"0.2", b"0.3"):
            await publish(mosquitto, "spikestream/seed/in/u", value)
        await sub.wait_for(
            lambda ms: [
                m for m in ms if m.topic == "spikestream/seed/stats"
                if json.loads(m.payload)["inputs"]["u"]["accepted"] == 3
            ],
            what="three values accepted",
        )  # fmt: skip
        await publish(mosquitto, "spikestream/seed/control", b"resume")
        counted = await sub.wait_for(
            lambda ms: [
                u for m in ms if m.topic == "spikestream/seed/stats"
                if (u := json.loads(m.payload)["inputs"]["u"])["superseded"]
            ],
            what="superseded values counted",
        )  # fmt: skip
        assert counted[-1]["superseded"] == 2
        assert counted[-1]["expired"] == 0
        await sub.wait_for(
            lambda ms: [
                v for m in sub.on("spikestream/seed/out/u")
                for v in decode_frame(m.payload).data[:, 0] if abs(v - 0.3) < 1e-6
            ],
            what="0.3 driving the network",
        )  # fmt: skip


async def test_session_increases_across_a_broker_restart(mosquitto: Mosquitto, serve) -> None:
    serve("--backoff-max", "0.5")
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/describe"]) as sub:
        first = await sub.wait_for(lambda ms: describes(ms, "seed"), what="describe")
    assert first[0]["session"] == 1
    await asyncio.to_thread(mosquitto.restart)
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/describe"]) as sub:
        again = await sub.wait_for(
            lambda ms: [d for d in describes(ms, "seed") if d["session"] >= 2], 30, "session 2"
        )
    assert again[-1]["session"] == 2
    assert again[-1]["started"] == first[0]["started"]  # the same process


async def test_tools_refuse_a_network_that_does_not_exist(mosquitto: Mosquitto, serve) -> None:
    serve()
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/seed/status"]) as sub:
        await sub.wait_status("seed", b"online")
    url = mosquitto.url()
    runs = {
        "monitor": ("monitor", "--broker", url, "--net", "nosuch", "--once"),
        "record": ("record", "--broker", url, "--net", "nosuch", "--out", "/tmp/x.npz"),
        "feed": ("feed", "--broker", url, "--net", "nosuch", "--input", "u", "sin"),
    }
    results = await asyncio.gather(
        *(asyncio.to_thread(run_cli, *args, timeout=30) for args in runs.values())
    )
    for tool, done in zip(runs, results, strict=True):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (tool, done.stderr)
        assert len(lines) == 1, (tool, done.stderr)
        assert f"spikestream {tool}: error: no network 'nosuch'" in lines[0]
        assert "networks on it: seed" in lines[0]
    # A probe or input the document lacks is named, with what exists.
    done = await asyncio.to_thread(
        run_cli, "monitor", "--broker", url, "--net", "seed", "--probe", "nope", "--once"
    )
    assert done.returncode == 2
    assert "no probe 'nope'; its probes: a_filtered, a_spikes, b_filtered" in done.stderr
    done = await asyncio.to_thread(
        run_cli, "feed", "--broker", url, "--net", "seed", "--input", "v", "sin"
    )
    assert done.returncode == 2
    assert "no input 'v'; its inputs: u" in done.stderr
    done = await asyncio.to_thread(
        run_cli, "feed", "--broker", url, "--net", "seed", "--input", "u", "sin", "--dim", "2"
    )
    assert done.returncode == 2
    assert "takes 1 values per message; 'sin' gives 2" in done.stderr


async def test_ls_lists_the_served_networks(mosquitto: Mosquitto, serve, tmp_path: Path) -> None:
    url = mosquitto.url()
    empty = await asyncio.to_thread(run_cli, "ls", "--broker", url)
    assert empty.returncode == 1
    assert "no networks under spikestream/" in empty.stderr
    serve(network=THREE[0])
    serve(network=THREE[2])
    async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/status"]) as sub:
        await sub.wait_status("seed", b"online", within=60)
        await sub.wait_status("channel", b"online", within=60)
    done = await asyncio.to_thread(run_cli, "ls", "--broker", url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["NET", "STATUS", "SESSION", "DT"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"channel", "seed"}
    assert rows["seed"].split()[1:4] == ["online", "1", "0.001"]
    assert "u[1]" in rows["seed"]
    assert "a_spikes(spikes 50)" in rows["seed"]
    assert "u[2]" in rows["channel"]
    assert "b_value(values 2)" in rows["channel"]
    as_json = await asyncio.to_thread(run_cli, "ls", "--broker", url, "--json")
    listed = json.loads(as_json.stdout)
    assert [(n["net"], n["status"]) for n in listed] == [("channel", "online"), ("seed", "online")]
    for entry in listed:
        jsonschema.validate(entry["describe"], SCHEMA)
    # Listing decodes statuses and describe documents only: the command as users run it
    # never loads numpy (about 60 ms of its start), which only the frame and input
    # decoders need.
    timed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-X", "importtime", *cli("ls", "--broker", url)[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    assert timed.returncode == 0, timed.stderr
    assert timed.stdout == done.stdout
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in timed.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "spikestream_client.codec.describe" in loaded  # the probe works
    assert not {"numpy", "spikestream_client.codec.frames"} & loaded


def test_the_schema_refuses_what_it_should() -> None:
    """The schema is not a rubber stamp: each broken document fails it."""
    doc = _document(EXAMPLES / "seed.toml")
    jsonschema.validate(doc, SCHEMA)
    for path, value in [
        (("v",), 2),
        (("session",), 0),
        (("probes", "u", "kind"), "pictures"),
        (("probes", "a_spikes", "dtype"), "float32"),
        (("inputs", "u", "dim"), 0),
        (("inputs", "u", "encodings"), ["xml"]),
        (("control", "settings", "ttl", "kind"), "text"),
        (("discovery",), {"prefix": "homeassistant"}),
    ]:
        broken = json.loads(json.dumps(doc))
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def _document(path: Path) -> dict[str, Any]:
    service = Service(
        build(load_network(path)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )
    return service.describe()


def test_every_example_validates_and_learning_shows_its_settings() -> None:
    """Every example's document passes the schema and the client's decoder; a learning
    network shows its connections' rate and switch in force."""
    for path in sorted(EXAMPLES.glob("*.toml")):
        doc = _document(path)
        jsonschema.validate(doc, SCHEMA)
        assert decode_describe(json.dumps(doc).encode()).net == path.stem
    learn = _document(EXAMPLES / "learn.toml")["control"]["in_force"]
    assert set(learn) == set(SETTINGS)
    assert learn["learning"]
    assert all(type(v) is bool for v in learn["learning"].values())
    assert set(learn["learning_rate"]) == set(learn["learning"])


async def test_hostile_retained_documents_are_counted_not_believed(mosquitto: Mosquitto) -> None:
    """A retained document that is not JSON, or that claims another network, is a decode
    error: the network it sits under is not taken to exist."""
    good = _document(EXAMPLES / "seed.toml")
    await publish(mosquitto, "spikestream/evil/describe", b"\x1b]0;pwned\x07", retain=True)
    await publish(mosquitto, "spikestream/liar/describe", json.dumps(good).encode(), retain=True)
    await publish(mosquitto, "spikestream/seed/describe", json.dumps(good).encode(), retain=True)
    async with SpikestreamClient(mosquitto.url()) as client:
        for net in ("evil", "liar"):
            with pytest.raises(NetworkNotFound, match=f"no network '{net}'.*networks on it: seed"):
                await client.find_network(net, timeout=2)
        assert (await client.find_network("seed")) is not None
        assert client.statistics().decode_errors == 2
        assert list(client.descriptions()) == ["seed"]
    # ls says how many it refused: the client logs only the first.
    listed = await asyncio.to_thread(run_cli, "ls", "--broker", mosquitto.url())
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NET", "seed"]
    assert (
        "spikestream ls: 2 retained messages under spikestream/ refused (undecodable, invalid "
        "or past the size limit; the first is logged)" in listed.stderr
    )
