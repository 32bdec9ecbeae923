"""Home Assistant discovery configs: ids, topics and the required keys."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from spikestream.errors import CodecError
from spikestream.serving.bridges import Bridges
from spikestream.serving.discovery import HaDiscovery, discovery_messages, ident
from spikestream_client.codec import topics
from tests.bridges.ha_schema import check_sensor_config, check_topic


def test_ids_keep_plain_parts_and_separate_every_tuple() -> None:
    assert ident("spikestream", "seed", "u") == "spikestream_seed_u"
    a, b = ident("a.b"), ident("a:b")
    assert a != b
    assert a.startswith("a_b_")
    assert b.startswith("a_b_")
    assert ident("é") != ident("è")
    # Joined with "_" alone, each pair was one id: two services' nodes, and a vector
    # probe's component beside a probe named like it.
    assert ident("p_q", "seed") != ident("p", "q_seed")
    assert ident("p", "n", "v", "1") != ident("p", "n", "v_1")
    assert ident("p", "n", "v_1") != ident("p", "n_v", "1")


def test_a_probe_named_like_a_component_keeps_its_own_sensor() -> None:
    """Probe ``v`` of 2 numbers and probe ``v_1`` had one id and one config topic: the
    second config replaced the first, and HA never saw ``v[1]``."""
    out = discovery_messages(
        ha_prefix="homeassistant",
        prefix="oddp",
        net="odd",
        status_topic="oddp/odd/status",
        text={"v": ("oddp/odd/text/v", 2), "v_1": ("oddp/odd/text/v_1", 1)},
        version="9.9",
    )
    assert len({m.topic for m in out}) == 3
    assert len({json.loads(m.payload)["unique_id"] for m in out}) == 3


def test_two_services_whose_names_join_alike_get_their_own_devices() -> None:
    """``--prefix p_q`` serving ``seed`` and ``--prefix p`` serving ``q_seed`` were one
    device with one set of sensors."""

    def ids(prefix: str, net: str) -> set[str]:
        out = discovery_messages(
            ha_prefix="homeassistant",
            prefix=prefix,
            net=net,
            status_topic=f"{prefix}/{net}/status",
            text={"u": (f"{prefix}/{net}/text/u", 1)},
            version="9.9",
        )
        configs = [json.loads(m.payload) for m in out]
        return {m.topic for m in out} | {c["device"]["identifiers"][0] for c in configs}

    assert ids("p_q", "seed").isdisjoint(ids("p", "q_seed"))


def messages(net: str = "arm") -> list[tuple[str, dict[str, object]]]:
    out = discovery_messages(
        ha_prefix="homeassistant",
        prefix="lab/rig-2",
        net=net,
        status_topic=f"lab/rig-2/{net}/status",
        text={"y": (f"lab/rig-2/{net}/text/y", 1), "q": (f"lab/rig-2/{net}/text/q", 3)},
        version="9.9",
    )
    return [(m.topic, json.loads(m.payload)) for m in out]


def test_one_sensor_per_number_and_every_config_passes_the_schema() -> None:
    configs = messages()
    assert len(configs) == 1 + 3
    for topic, config in configs:
        assert check_topic(topic, "homeassistant") == []
        assert check_sensor_config(config) == [], config
        assert topic.split("/")[-2] == config["unique_id"]
        assert config["device"]["sw_version"] == "9.9"
    by_name = {c["name"]: c for _, c in configs}
    assert "value_template" not in by_name["y"]
    assert by_name["y"]["state_topic"] == "lab/rig-2/arm/text/y"
    assert [by_name[f"q[{i}]"]["value_template"] for i in range(3)] == [
        "{{ value_json[0] }}",
        "{{ value_json[1] }}",
        "{{ value_json[2] }}",
    ]
    assert len({c["unique_id"] for _, c in configs}) == 4


def test_a_two_number_probe_gets_two_sensors_each_reading_its_number() -> None:
    """Two numbers are a list on the text topic, like three: each sensor has its own
    unique id and reads its element (a mutation audit found nothing tested dim 2)."""
    out = discovery_messages(
        ha_prefix="homeassistant",
        prefix="lab",
        net="arm",
        status_topic="lab/arm/status",
        text={"xy": ("lab/arm/text/xy", 2)},
        version="9.9",
    )
    configs = [json.loads(m.payload) for m in out]
    assert [c["name"] for c in configs] == ["xy[0]", "xy[1]"]
    assert [c["value_template"] for c in configs] == [
        "{{ value_json[0] }}",
        "{{ value_json[1] }}",
    ]
    assert len({c["unique_id"] for c in configs}) == 2


def test_unsafe_network_names_still_give_valid_distinct_ids() -> None:
    one, two = messages("arm.1"), messages("arm:1")
    for topic, config in one + two:
        assert check_topic(topic, "homeassistant") == []
        assert check_sensor_config(config) == []
    assert {c["unique_id"] for _, c in one}.isdisjoint({c["unique_id"] for _, c in two})


def test_the_schema_check_catches_what_is_missing() -> None:
    _, config = messages()[0]
    for key in ("unique_id", "state_topic", "device", "availability_topic"):
        broken = {k: v for k, v in config.items() if k != key}
        assert any(key in e for e in check_sensor_config(broken))
    assert check_sensor_config({**config, "device": {"name": "x"}}) != []
    assert check_topic("homeassistant/sensor/a.b/config", "homeassistant") != []


def test_birth_message() -> None:
    d = HaDiscovery("homeassistant", [])
    assert d.birth_topic == "homeassistant/status"
    assert d.is_birth("homeassistant/status", b"online")
    assert d.is_birth("homeassistant/status", b"online\n")  # as mosquitto_pub -l sends it
    assert d.births == 2
    assert not d.is_birth("homeassistant/status", b"offline")
    assert not d.is_birth("other/status", b"online")
    with pytest.raises(CodecError):
        HaDiscovery("$SYS", [])


class _Link:
    """The two calls Bridges makes of the service's MQTT link, with ``publish`` raising
    ``error`` (what paho raises for a topic it cannot send)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.subscribed: list[str] = []

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.subscribed.append(topic)

    async def publish(self, topic: str, payload: bytes, **options: object) -> bool:
        raise self.error


def bridges(link: _Link | _GatedLink) -> Bridges:
    return Bridges(
        link,  # type: ignore[arg-type]
        topics("p", "seed"),
        {"u": ("values", (1,)), "y": ("values", (2,))},
        text_rate=None,
        ha_prefix="ha",
        version="9.9",
    )


async def test_a_config_the_client_refuses_is_counted_failed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused topic (paho's ValueError) ended the round with a traceback and was not
    counted; every config now counts as published or failed."""
    b = bridges(_Link(ValueError("Publish topic is too long.")))
    assert b.discovery is not None
    await b.announce()
    assert b.statistics()["discovery_failed"] == len(b.discovery.messages) == 3
    assert b.statistics()["discovery_published"] == 0
    assert "discovery config refused" in caplog.text


async def test_a_failed_round_after_a_birth_is_logged_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = _Link(RuntimeError("a bug"))
    b = bridges(link)
    assert link.subscribed == ["ha/status"]
    assert b.on_message("ha/status", b"online")
    task = b._announcing
    assert task is not None
    with contextlib.suppress(RuntimeError):
        await task
    await asyncio.sleep(0)  # done callbacks run on the next loop pass
    assert "discovery round failed" in caplog.text
    assert "RuntimeError: a bug" in caplog.text


class _GatedLink:
    """A link whose configs wait at ``gate``, so a round of discovery stays in progress
    until the test opens it; the topics sent, in order."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    def subscribe(self, topic: str, qos: int = 0) -> None:
        pass

    async def publish(self, topic: str, payload: bytes, **options: object) -> bool:
        await self.gate.wait()
        self.sent.append(topic)
        return True


async def test_births_during_a_round_are_answered_by_one_more_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PROTOCOL.md: births that arrive while a round of configs is going out are
    coalesced and "answered by one more round", which starts after the one in progress.
    Counted but not answered, a birth that came mid-round got no round of configs sent
    after it (the HA that sent it may have subscribed after some of them went out); and
    a flood of them must still cost one round, not one each."""
    monkeypatch.setattr("spikestream.serving.bridges.BIRTH_HOLDOFF", 0.0)
    link = _GatedLink()
    b = bridges(link)
    assert b.discovery is not None
    configs = [m.topic for m in b.discovery.messages]
    assert b.on_message("ha/status", b"online")
    task = b._announcing
    assert task is not None
    await asyncio.sleep(0)  # the round starts and waits at its first config
    for _ in range(49):
        assert b.on_message("ha/status", b"online")
    assert b._announcing is task  # no round of its own for any of them
    link.gate.set()
    await asyncio.wait_for(task, 10)
    assert link.sent == configs * 2
    stats = b.statistics()
    assert (stats["discovery_births"], stats["discovery_births_coalesced"]) == (50, 49)
    assert stats["discovery_published"] == 2 * len(configs)
    # A birth once the rounds are over starts a round of its own, and only one.
    assert b.on_message("ha/status", b"online")
    assert b._announcing is not task
    await asyncio.wait_for(b._announcing, 10)
    assert link.sent == configs * 3
