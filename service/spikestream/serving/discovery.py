"""Home Assistant MQTT discovery for the text values (``serve --ha-discovery [PREFIX]``).

For every text topic (see :mod:`spikestream.serving.text`) the service publishes a
retained ``sensor`` config on ``<PREFIX>/sensor/<node_id>/<object_id>/config``:

* one sensor **per number**: a probe of dim 1 is one sensor reading the plain decimal;
  a probe of dim ``d > 1`` is ``d`` sensors ``<probe>[i]`` reading ``value_json[i]``
  from the same JSON-array topic, so each component gets its own history graph in HA;
* each config carries ``unique_id``, ``name``, ``default_entity_id``, ``state_topic``,
  ``state_class: measurement``, a ``device`` block (one device per served network:
  ``identifiers``, ``name``, ``model``, ``manufacturer``, ``sw_version``) and the
  availability of the service's retained ``status`` topic (``online``/``offline``).

Configs go out after every (re)connection and again whenever HA's birth message
``online`` arrives on ``<PREFIX>/status``, so a restarted HA (or a broker that lost its
retained messages) rediscovers the entities.

Discovery topic levels and ids allow only ``[A-Za-z0-9_-]``. An id joins its parts
(prefix, network, probe, component) with ``_``; when a part holds ``_`` or any other
character, ``_`` included, the join alone could name two tuples (``p_q`` + ``seed`` and
``p`` + ``q_seed``; probe ``v`` component 1 and probe ``v_1``), so unsafe characters
become ``_`` and a short hash of the parts keeps every tuple's id its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spikestream_client.codec import STATUS_OFFLINE, STATUS_ONLINE, validate_prefix

DEFAULT_HA_PREFIX = "homeassistant"
"""Home Assistant's default discovery prefix."""

HA_BIRTH = b"online"
"""The payload of Home Assistant's birth message on ``<prefix>/status``."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


_PLAIN = re.compile(r"[A-Za-z0-9-]+")


def ident(*parts: str) -> str:
    """A discovery id (``[A-Za-z0-9_-]+``) for the tuple ``parts``, one-to-one.

    Parts of letters, digits and ``-`` only are joined with ``_`` as they are (an id of
    ``k`` parts then holds exactly ``k - 1`` underscores, so it splits back into them).
    Otherwise every unsafe character becomes ``_`` and ``_`` plus 10 hex digits of the
    SHA-1 of the parts is appended: such an id holds at least ``k + 1`` underscores (no
    part is empty), so it is never a plain id of ``k`` or ``k + 1`` parts, and two
    tuples share one only if their hashes do.
    """
    if all(_PLAIN.fullmatch(part) for part in parts):
        return "_".join(parts)
    digest = hashlib.sha1(json.dumps(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_UNSAFE.sub('_', '_'.join(parts))}_{digest[:10]}"


@dataclass(frozen=True)
class DiscoveryMessage:
    """One retained discovery config."""

    topic: str
    payload: bytes


def discovery_messages(
    *,
    ha_prefix: str,
    prefix: str,
    net: str,
    status_topic: str,
    text: Mapping[str, tuple[str, int]],
    version: str,
) -> list[DiscoveryMessage]:
    """The discovery configs of one network.

    Args:
        ha_prefix: HA's discovery prefix (``homeassistant``).
        prefix: the service's topic prefix (``spikestream``), part of every id so that
            two services with the same network name under different prefixes differ.
        net: the network name.
        status_topic: the service's retained ``online``/``offline`` topic.
        text: probe name -> (text topic, dim).
        version: the service's version, for the device block.
    """
    node = ident(prefix, net)
    device = {
        "identifiers": [node],
        "name": f"spikestream {net}",
        "model": "spikestream network",
        "manufacturer": "spikestream",
        "sw_version": version,
    }
    out = []
    for probe, (topic, dim) in text.items():
        for i in range(dim):
            label = probe if dim == 1 else f"{probe}[{i}]"
            parts = (prefix, net, probe) if dim == 1 else (prefix, net, probe, str(i))
            object_id = ident(*parts)
            config: dict[str, Any] = {
                "name": label,
                "unique_id": object_id,
                # The entity id asked for stays the readable join (HA itself appends _2
                # to an entity id already taken); only the unique id must be one-to-one.
                "default_entity_id": f"sensor.{_UNSAFE.sub('_', '_'.join(parts))}",
                "state_topic": topic,
                "state_class": "measurement",
                "availability_topic": status_topic,
                "payload_available": STATUS_ONLINE.decode(),
                "payload_not_available": STATUS_OFFLINE.decode(),
                "device": device,
            }
            if dim > 1:
                config["value_template"] = f"{{{{ value_json[{i}] }}}}"
            out.append(
                DiscoveryMessage(
                    f"{ha_prefix}/sensor/{node}/{object_id}/config",
                    json.dumps(config, separators=(",", ":")).encode(),
                )
            )
    return out


class HaDiscovery:
    """The discovery configs of one network and the birth topic that asks for them again.

    Args:
        ha_prefix: HA's discovery prefix; validated as a topic prefix.
        messages: see :func:`discovery_messages`.
    """

    def __init__(self, ha_prefix: str, messages: list[DiscoveryMessage]) -> None:
        self.prefix = validate_prefix(ha_prefix)
        self.birth_topic = f"{ha_prefix}/status"
        self.messages = messages
        self.published = 0
        self.failed = 0
        self.births = 0
        self.births_coalesced = 0

    def is_birth(self, topic: str, payload: bytes) -> bool:
        """True for HA's ``online`` on ``<prefix>/status`` (its last will ``offline`` is not)."""
        if topic != self.birth_topic:
            return False
        if payload.strip() == HA_BIRTH:
            self.births += 1
            return True
        return False
