"""``examples/bridges/``: the ROS 2 and Home Assistant files name real topics and entities.

Neither ROS 2 nor Home Assistant runs here, so these tests check the files against what
the service does: the topics the ROS 2 bridge maps exist for the network it names (with a
ROS type that can hold the text payload), and every entity in the dashboard card is one
that ``--ha-discovery`` announces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from spikestream import __version__
from spikestream.build import build
from spikestream.runtime.engine import Engine
from spikestream.serving.discovery import discovery_messages
from spikestream.serving.text import text_probes
from spikestream.spec import load_network
from spikestream_client.codec import topics

ROOT = Path(__file__).parents[2]
BRIDGES = ROOT / "examples" / "bridges"


def text_topics(network: Path) -> tuple[str, dict[str, int], list[str]]:
    """(net, text topic -> dim, input topics) of ``network`` served with --text-rate."""
    model = build(load_network(network))
    streams = Engine(model).streams
    t = topics("spikestream", model.name)
    dims = text_probes({n: (s.kind, s.shape) for n, s in streams.items()})
    return (
        model.name,
        {f"{t.base}/text/{p}": d for p, d in dims.items()},
        [t.input(i) for i in model.inputs],
    )


def test_ros2_params_map_real_topics_with_fitting_types() -> None:
    doc: dict[str, Any] = yaml.safe_load((BRIDGES / "ros2_mqtt_client.params.yaml").read_text())
    params = doc["/**/*"]["ros__parameters"]["bridge"]
    net, text, inputs = text_topics(ROOT / "examples" / "loop" / "controller.toml")
    outgoing = params["ros2mqtt"]
    for ros_topic in outgoing["ros_topics"]:
        entry = outgoing[ros_topic]
        assert entry["mqtt_topic"] in inputs, entry
        assert entry["primitive"] is True
    incoming = params["mqtt2ros"]
    assert incoming["mqtt_topics"], "nothing bridged to ROS"
    for mqtt_topic in incoming["mqtt_topics"]:
        entry = incoming[mqtt_topic]
        if mqtt_topic == f"spikestream/{net}/status":
            assert entry["ros_type"] == "std_msgs/msg/String"
            continue
        assert mqtt_topic in text, f"{mqtt_topic} is not a text topic of {net}: {sorted(text)}"
        # One number is a plain decimal (Float64); several are a JSON array (String).
        expected = "std_msgs/msg/Float64" if text[mqtt_topic] == 1 else "std_msgs/msg/String"
        assert entry["ros_type"] == expected


def test_home_assistant_card_names_announced_entities() -> None:
    card = (BRIDGES / "home_assistant_card.yaml").read_text()
    yaml.safe_load(card)  # valid YAML
    announced = set()
    for name in ("seed", "channel"):
        net, text, _ = text_topics(ROOT / "examples" / f"{name}.toml")
        for m in discovery_messages(
            ha_prefix="homeassistant",
            prefix="spikestream",
            net=net,
            status_topic=f"spikestream/{net}/status",
            text={topic.rsplit("/", 1)[1]: (topic, dim) for topic, dim in text.items()},
            version=__version__,
        ):
            announced.add(json.loads(m.payload)["default_entity_id"])
    used = set(re.findall(r"sensor\.[A-Za-z0-9_]+", card))
    assert used
    assert used <= announced, used - announced
