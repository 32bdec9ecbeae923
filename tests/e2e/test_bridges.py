"""Text topics, Home Assistant discovery and input freshness, against a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.bridges.ha_schema import check_sensor_config, check_topic
from tests.brokers import Mosquitto, free_port
from tests.serving import EXAMPLES, NODELAY, SEED, Listener, ServeProcess

pytestmark = pytest.mark.broker

CHANNEL = EXAMPLES / "channel.toml"
LEARN = EXAMPLES / "learn.toml"


def mosquitto_sub() -> str:
    path = shutil.which("mosquitto_sub")
    if path is None:
        pytest.fail("mosquitto_sub not found; apt-get install -y mosquitto-clients", False)
    return path


async def publish(mosquitto: Mosquitto, topic: str, payload: bytes, retain: bool = False) -> None:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
        await c.publish(topic, payload, qos=1, retain=retain)


async def test_text_topics_feed_a_plain_mosquitto_sub(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """seed's 1-D input probe is a plain decimal, channel's 2-D probes are JSON arrays; the
    50-neuron filtered probes and the spike probes get no text topic; each topic carries
    at most --text-rate messages a second."""
    rate, window = 5.0, 3.0
    proc = ServeProcess(
        SEED, mosquitto.url(), "--text-rate", str(rate), workdir=tmp_path, more_networks=[CHANNEL]
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/status"]) as sub:
            await sub.wait_status("seed", b"online")
            await sub.wait_status("channel", b"online")
        await publish(mosquitto, "spikestream/seed/in/u", b"0.5")
        await asyncio.sleep(0.5)  # the new value reaches the text topic within 1 / rate
        reader = await asyncio.to_thread(
            subprocess.run,
            [
                mosquitto_sub(),
                "-h",
                "127.0.0.1",
                "-p",
                str(mosquitto.port),
                "-t",
                "spikestream/+/text/#",
                "-v",
                "-W",
                str(int(window)),
            ],
            capture_output=True,
            timeout=window + 10,
        )
    finally:
        assert proc.stop() == 0
    lines: dict[str, list[str]] = {}
    for line in reader.stdout.decode().splitlines():
        topic, _, payload = line.partition(" ")
        lines.setdefault(topic, []).append(payload)
    assert set(lines) == {
        "spikestream/seed/text/u",
        "spikestream/channel/text/u",
        "spikestream/channel/text/a_value",
        "spikestream/channel/text/b_value",
    }, lines.keys()
    assert all(float(p) == 0.5 for p in lines["spikestream/seed/text/u"])
    for topic in ("u", "a_value", "b_value"):
        arrays = [json.loads(p) for p in lines[f"spikestream/channel/text/{topic}"]]
        assert all(len(a) == 2 and all(isinstance(x, float | int) for x in a) for a in arrays)
    # The decoded channel output moves, so its text changes between messages.
    assert len(set(lines["spikestream/channel/text/b_value"])) > 3
    for topic, payloads in lines.items():
        assert rate * window / 2 <= len(payloads) <= rate * window + 1, (topic, len(payloads))


def configs_of(messages: list[Any]) -> dict[str, Any]:
    return {m.topic: m for m in messages if m.topic.endswith("/config")}


async def test_home_assistant_discovery(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Retained configs that pass the required-key schema, one per number of each text
    value, pointing at live text topics; republished when HA says ``online``."""
    proc = ServeProcess(
        SEED, mosquitto.url(), "--ha-discovery", workdir=tmp_path, more_networks=[CHANNEL]
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/status"]) as sub:
            await sub.wait_status("seed", b"online")
            await sub.wait_status("channel", b"online")
        await asyncio.sleep(0.5)
        # A late subscriber gets the configs from the broker: they are retained.
        filters = ["homeassistant/#", "spikestream/+/text/#", "spikestream/seed/stats"]
        async with Listener("127.0.0.1", mosquitto.port, filters) as ha:
            expected = 1 + 3 * 2  # seed u; channel u, a_value, b_value with 2 numbers each
            await ha.wait_for(lambda ms: len(configs_of(ms)) >= expected, what="configs")
            first = configs_of(ha.messages)
            assert len(first) == expected
            assert all(m.retain for m in first.values())
            parsed = {t: json.loads(m.payload) for t, m in first.items()}
            for topic, config in parsed.items():
                assert check_topic(topic, "homeassistant") == [], topic
                assert check_sensor_config(config) == [], config
                net = config["state_topic"].split("/")[1]
                assert config["availability_topic"] == f"spikestream/{net}/status"
            state_topics = {c["state_topic"] for c in parsed.values()}
            assert len({c["unique_id"] for c in parsed.values()}) == expected
        # The retained describe documents name the text and discovery topics in use.
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/+/describe"]) as d:
            await d.wait_for(lambda ms: len({m.topic for m in ms}) >= 2, what="describe")
            docs = {m.topic.split("/")[1]: json.loads(m.payload) for m in d.messages}
        described = {t["topic"] for doc in docs.values() for t in doc["text"]}
        assert described == state_topics
        assert docs["seed"]["text"] == [{"probe": "u", "topic": "spikestream/seed/text/u"}]
        assert {t for doc in docs.values() for t in doc["discovery"]["topics"]} == set(first)
        assert {doc["discovery"]["prefix"] for doc in docs.values()} == {"homeassistant"}
        async with Listener("127.0.0.1", mosquitto.port, filters) as ha:
            await ha.wait_for(lambda ms: len(configs_of(ms)) >= expected, what="configs")
            assert {c["device"]["identifiers"][0] for c in parsed.values()} == {
                "spikestream_seed",
                "spikestream_channel",
            }
            # Every state topic carries values (the implied text rate is 1 Hz).
            await ha.wait_for(
                lambda ms: state_topics <= {m.topic for m in ms}, within=5, what="text values"
            )
            # HA's last will must not trigger a republication; its birth message must.
            before = len(ha.messages)
            await publish(mosquitto, "homeassistant/status", b"offline")
            await asyncio.sleep(1.0)
            assert configs_of(ha.messages[before:]) == {}
            await publish(mosquitto, "homeassistant/status", b"online")
            await ha.wait_for(
                lambda ms: len(configs_of(ms[before:])) == expected, what="republished configs"
            )
            again = configs_of(ha.messages[before:])
            assert {t: m.payload for t, m in again.items()} == {
                t: m.payload for t, m in first.items()
            }
            # A flood of 50 births costs one more round, not 50.
            await asyncio.sleep(1.5)
            before = len(ha.messages)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                for _ in range(50):
                    await c.publish("homeassistant/status", b"online", qos=1)
            await asyncio.sleep(3.0)
            rounds = len([m for m in ha.messages[before:] if m.topic.endswith("/config")])
            assert rounds in (expected, 2 * expected), rounds / expected

            def seed_stats(ms: list[Any]) -> dict[str, Any] | None:
                found = [json.loads(m.payload) for m in ms if m.topic == "spikestream/seed/stats"]
                return found[-1] if found and found[-1]["discovery_births"] >= 51 else None

            stats = await ha.wait_for(seed_stats, what="stats counting 51 births")
            assert stats["discovery_births_coalesced"] >= 48
            assert stats["discovery_published"] >= 3  # seed has one sensor: 3+ rounds
            assert stats["discovery_failed"] == 0
    finally:
        assert proc.stop() == 0


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def documented_stats_keys() -> tuple[set[str], set[str]]:
    """The keys PROTOCOL.md §6.2 documents: top level, and per input."""
    text = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    section = text.split("### 6.2")[1].split("\n## ")[0]
    top, per_input = set(), set()
    for line in section.splitlines():
        if line.startswith("| `"):
            key = line.split("`")[1]
            if key.startswith("inputs.<input>."):
                per_input.add(key.removeprefix("inputs.<input>."))
            else:
                top.add(key)
    return top, per_input


async def test_stats_show_input_age_and_staleness(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """learn.toml: ``u`` has no TTL, ``err`` a TTL of 0.2 s. Ages grow while nothing
    arrives and restart when a value does; ``err`` is stale before its first value and
    again 0.2 s after its last; the metrics say the same. The stats carry exactly the
    keys PROTOCOL.md documents."""
    port = free_port()
    proc = ServeProcess(
        LEARN, mosquitto.url(), "--stats-interval", "0.1", "--metrics-port", str(port),
        workdir=tmp_path,
    ).start()  # fmt: skip
    stats_topic = "spikestream/learn/stats"

    def stats(ms: list[Any]) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in ms if m.topic == stats_topic]

    try:
        async with Listener("127.0.0.1", mosquitto.port, ["spikestream/learn/#"]) as sub:
            await sub.wait_status("learn", b"online")
            first = (await sub.wait_for(stats, what="stats"))[-1]
            assert first["inputs"]["u"]["age_ms"] is None
            assert first["inputs"]["err"]["stale_now"] is True
            top, per_input = documented_stats_keys()
            assert set(first) - {"v", "event", "wall"} == top
            assert set(first["inputs"]["u"]) == per_input
            samples = scrape(port)
            assert samples['spikestream_input_age_seconds{input="u",net="learn"}'] == float("inf")
            assert samples['spikestream_input_stale{input="err",net="learn"}'] == 1.0

            await publish(mosquitto, "spikestream/learn/in/u", b"0.3")
            n = len(stats(sub.messages))
            await sub.wait_for(lambda ms: len(stats(ms)) >= n + 8, what="8 more stats")
            ages = [s["inputs"]["u"]["age_ms"] for s in stats(sub.messages)[n + 2 :]]
            assert all(a is not None for a in ages)
            assert ages == sorted(ages), ages
            assert ages[-1] - ages[0] > 300, ages
            assert all(s["inputs"]["u"]["stale_now"] is False for s in stats(sub.messages)[n + 2 :])
            old = ages[-1]
            await publish(mosquitto, "spikestream/learn/in/u", b"0.4")
            n = len(stats(sub.messages))
            await sub.wait_for(lambda ms: len(stats(ms)) >= n + 2, what="2 more stats")
            assert stats(sub.messages)[-1]["inputs"]["u"]["age_ms"] < min(old, 250)

            # err at 50 Hz for 1 s: fresh; then silence: stale once its TTL has passed.
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                start = time.monotonic()
                n = len(stats(sub.messages))
                while time.monotonic() - start < 1.0:
                    await c.publish("spikestream/learn/in/err", b"0.0")
                    await asyncio.sleep(0.02)
                during = stats(sub.messages)[n + 1 :]
            errs = [s["inputs"]["err"] for s in during]
            # Fresh while fed (a loaded machine may delay one message past the TTL, never most).
            assert sum(e["stale_now"] is False for e in errs) > len(errs) / 2, errs
            await asyncio.sleep(0.6)
            last = stats(sub.messages)[-1]["inputs"]["err"]
            # stale_now is exactly "no value, or older than the TTL" in every message.
            for e in [s["inputs"]["err"] for s in stats(sub.messages)]:
                if e["age_ms"] is not None and abs(e["age_ms"] - 200) < 1:
                    continue  # rounded to 0.1 ms: too close to the TTL to tell
                assert e["stale_now"] is (e["age_ms"] is None or e["age_ms"] > 200), e
            assert last["stale_now"] is True
            assert last["age_ms"] > 200
            samples = scrape(port)
            assert samples['spikestream_input_stale{input="err",net="learn"}'] == 1.0
            assert samples['spikestream_input_stale{input="u",net="learn"}'] == 0.0
            assert 0 < samples['spikestream_input_age_seconds{input="u",net="learn"}'] < 60
    finally:
        assert proc.stop() == 0


def documented_topics() -> list[tuple[str, re.Pattern[str]]]:
    """PROTOCOL.md §1's topic table as (row, regex over concrete topics)."""
    text = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    table = text.split("## 1. Topics")[1].split("\n## ")[0]
    rows = []
    for line in table.splitlines():
        if line.startswith("| `"):
            pattern = line.split("`")[1]
            level = re.escape("<x>").replace("x", "[a-z-]+")
            rx = re.escape(pattern).replace(re.escape("<prefix>"), "spikestream")
            rx = rx.replace(re.escape("<ha-prefix>"), "homeassistant")
            rx = re.sub(level, "[^/]+", rx)
            rows.append((pattern, re.compile(f"^{rx}$")))
    return rows


async def test_topic_table_covers_every_topic(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Every topic a service with text values and discovery publishes matches a row of
    PROTOCOL.md's topic table, and every row it publishes on is seen."""
    proc = ServeProcess(
        SEED, mosquitto.url(), "--ha-discovery", "--stats-interval", "0.2", workdir=tmp_path
    ).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, ["#"]) as sub:
            await sub.wait_status("seed", b"online")
            await publish(mosquitto, "spikestream/seed/in/u", b"0.5")
            await publish(mosquitto, "spikestream/seed/control", b"status")
            await publish(mosquitto, "homeassistant/status", b"online")
            await asyncio.sleep(2.0)
            seen = {m.topic for m in sub.messages}
    finally:
        assert proc.stop() == 0
    rows = documented_topics()
    undocumented = {t for t in seen if not any(rx.match(t) for _, rx in rows)}
    assert undocumented == set()
    unseen = [row for row, rx in rows if not any(rx.match(t) for t in seen)]
    assert unseen == []
