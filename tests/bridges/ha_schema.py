"""The keys a Home Assistant MQTT discovery config for a ``sensor`` must carry.

Written from Home Assistant's MQTT discovery and MQTT sensor documentation
(home-assistant.io/integrations/mqtt, /integrations/sensor.mqtt):

* discovery topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``, where
  ``node_id`` and ``object_id`` match ``[a-zA-Z0-9_-]+``;
* a sensor needs ``state_topic``; ``unique_id`` is needed for the entity and device
  registries (a device block is only used with it);
* ``device`` needs at least one of ``identifiers`` (a string or a list of strings) or
  ``connections``; ``name``, ``model``, ``manufacturer``, ``sw_version`` are strings;
* availability through ``availability_topic`` with ``payload_available`` and
  ``payload_not_available``;
* ``value_template``, when present, is a Jinja template string.

``check_sensor_config`` returns the list of violations (empty when the config passes).
"""

from __future__ import annotations

import re
from typing import Any

ID = re.compile(r"^[a-zA-Z0-9_-]+$")
REQUIRED: dict[str, type] = {
    "name": str,
    "unique_id": str,
    "state_topic": str,
    "availability_topic": str,
    "payload_available": str,
    "payload_not_available": str,
    "device": dict,
}
OPTIONAL: dict[str, type] = {
    "default_entity_id": str,
    "value_template": str,
    "state_class": str,
    "unit_of_measurement": str,
}
DEVICE_STRINGS = ("name", "model", "manufacturer", "sw_version")
STATE_CLASSES = ("measurement", "total", "total_increasing", "measurement_angle")


def check_topic(topic: str, prefix: str) -> list[str]:
    """Violations of the discovery topic layout for a sensor."""
    levels = topic.split("/")
    head = prefix.split("/")
    if levels[: len(head)] != head:
        return [f"topic {topic!r} is not under the discovery prefix {prefix!r}"]
    rest = levels[len(head) :]
    if len(rest) not in (3, 4) or rest[0] != "sensor" or rest[-1] != "config":
        return [f"topic {topic!r} is not {prefix}/sensor/[<node_id>/]<object_id>/config"]
    return [f"topic level {lv!r} is not [a-zA-Z0-9_-]+" for lv in rest[1:-1] if not ID.match(lv)]


def check_sensor_config(config: Any) -> list[str]:
    """Violations of the required-key schema of a sensor discovery config."""
    if not isinstance(config, dict):
        return [f"config must be a JSON object; got {type(config).__name__}"]
    errors = []
    for key, kind in REQUIRED.items():
        if key not in config:
            errors.append(f"missing required key {key!r}")
        elif not isinstance(config[key], kind) or config[key] in ("", {}):
            errors.append(f"{key!r} must be a non-empty {kind.__name__}; got {config[key]!r}")
    for key, kind in OPTIONAL.items():
        if key in config and not isinstance(config[key], kind):
            errors.append(f"{key!r} must be a {kind.__name__}; got {config[key]!r}")
    for key in ("state_topic", "availability_topic"):
        if isinstance(config.get(key), str) and any(c in config[key] for c in "+#"):
            errors.append(f"{key!r} must be a topic name without wildcards")
    if "state_class" in config and config["state_class"] not in STATE_CLASSES:
        errors.append(f"state_class {config['state_class']!r} is not one of {STATE_CLASSES}")
    if "default_entity_id" in config and not str(config["default_entity_id"]).startswith("sensor."):
        errors.append("default_entity_id must be sensor.<object_id>")
    device = config.get("device")
    if isinstance(device, dict):
        ids = device.get("identifiers")
        if ids is None and "connections" not in device:
            errors.append("device needs 'identifiers' or 'connections'")
        if ids is not None and not (
            isinstance(ids, str)
            or (isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids))
        ):
            errors.append(f"device identifiers must be a string or list of strings; got {ids!r}")
        errors += [
            f"device {k!r} must be a string"
            for k in DEVICE_STRINGS
            if k in device and not isinstance(device[k], str)
        ]
    return errors
