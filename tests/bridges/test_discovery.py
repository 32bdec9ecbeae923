"""Home Assistant discovery configs: ids, topics and the required keys."""

from __future__ import annotations

import json

import pytest

from spikestream.errors import CodecError
from spikestream.serving.discovery import HaDiscovery, discovery_messages, slug
from tests.bridges.ha_schema import check_sensor_config, check_topic


def test_slug_keeps_safe_names_and_separates_unsafe_ones() -> None:
    assert slug("spikestream_seed") == "spikestream_seed"
    a, b = slug("a.b"), slug("a:b")
    assert a != b
    assert a.startswith("a_b_")
    assert b.startswith("a_b_")
    assert slug("é") != slug("è")


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
    assert not d.is_birth("homeassistant/status", b"offline")
    assert not d.is_birth("other/status", b"online")
    with pytest.raises(CodecError):
        HaDiscovery("$SYS", [])
