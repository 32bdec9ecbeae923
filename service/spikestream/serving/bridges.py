"""Text values and Home Assistant discovery, wired to one service's MQTT link.

The service calls four hooks: :meth:`Bridges.observe` for each value frame it encodes,
:meth:`Bridges.on_message` for each incoming message (HA's birth message),
:meth:`Bridges.on_connect` after each (re)connection and :meth:`Bridges.run` as a task.
None of them runs on the tick thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from spikestream.errors import ConfigError
from spikestream.serving.describe import DescribeExtras
from spikestream.serving.discovery import DEFAULT_HA_PREFIX, HaDiscovery, discovery_messages
from spikestream.serving.text import DEFAULT_TEXT_RATE, TextValues, text_probes
from spikestream_client.codec import Topics
from spikestream_client.transport import MqttLink

log = logging.getLogger("spikestream.serve")

TEXT_PLAIN = "text/plain"
BIRTH_HOLDOFF = 1.0
"""Seconds after a round of discovery configs before a birth message can start another."""
JSON = "application/json"


class Bridges:
    """Text topics (``text_rate``) and HA discovery (``ha_prefix``) of one network.

    Args:
        link: the service's MQTT link.
        topics: the network's topics.
        streams: probe name -> (kind, per-tick shape).
        text_rate: Hz, or None; with ``ha_prefix`` set it defaults to
            :data:`~spikestream.serving.text.DEFAULT_TEXT_RATE`, since discovery
            announces the text topics.
        ha_prefix: HA's discovery prefix, or None for no discovery.
        version: the service's version (the HA device's ``sw_version``).
    """

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        streams: Mapping[str, tuple[str, tuple[int, ...]]],
        *,
        text_rate: float | None,
        ha_prefix: str | None,
        version: str,
    ) -> None:
        self.link = link
        if text_rate is None and ha_prefix is not None:
            text_rate = DEFAULT_TEXT_RATE
        self.text = (
            TextValues(text_probes(streams), topics, text_rate) if text_rate is not None else None
        )
        if self.text is not None:
            # Say which probes got a text topic: a network whose value probes are all
            # wider than MAX_TEXT_DIM would otherwise be silently without any.
            log.log(
                logging.INFO if self.text.slots else logging.WARNING,
                "text values" if self.text.slots else "no value probe fits a text topic",
                extra={
                    "net": topics.net,
                    "rate_hz": self.text.rate,
                    "probes": ",".join(self.text.slots) or "(none)",
                },
            )
        self.discovery: HaDiscovery | None = None
        if ha_prefix is not None:
            _check_apart(ha_prefix, topics)
        if ha_prefix is not None and self.text is not None:
            messages = discovery_messages(
                ha_prefix=ha_prefix,
                prefix=topics.prefix,
                net=topics.net,
                status_topic=topics.status,
                text={n: (s.topic, s.dim) for n, s in self.text.slots.items()},
                version=version,
            )
            self.discovery = HaDiscovery(ha_prefix, messages)
            link.subscribe(self.discovery.birth_topic, qos=1)
        self._announcing: asyncio.Task[None] | None = None
        self._again = False

    @property
    def enabled(self) -> bool:
        """Whether anything is published (a text rate was given)."""
        return self.text is not None

    def describe_extras(self) -> DescribeExtras:
        """The text and discovery topics in use, for the describe document."""
        text = (
            [{"probe": name, "topic": slot.topic} for name, slot in self.text.slots.items()]
            if self.text is not None
            else []
        )
        d = self.discovery
        discovery = (
            None if d is None else {"prefix": d.prefix, "topics": [m.topic for m in d.messages]}
        )
        return DescribeExtras(text=text, discovery=discovery)

    def observe(self, probe: str, kind: str, rows: npt.NDArray[np.floating]) -> None:
        """A value frame's rows ``(ticks, *shape)``, just before it is encoded."""
        if self.text is not None and kind == "values":
            self.text.observe(probe, rows)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Topic prefixes outside the network's own that the bridges publish under (HA's
        discovery prefix, when on): no reply to a request may go there."""
        return () if self.discovery is None else (self.discovery.prefix,)

    def claims(self, topic: str) -> bool:
        """Whether :meth:`on_message` handles ``topic`` (HA's birth topic)."""
        return self.discovery is not None and topic == self.discovery.birth_topic

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle HA's birth message; True if ``topic`` was the birth topic."""
        d = self.discovery
        if d is None or topic != d.birth_topic:
            return False
        if not d.is_birth(topic, payload):
            return True
        if self._announcing is not None and not self._announcing.done():
            # A flood of births (anyone may publish on <prefix>/status) costs at most one
            # more round of configs after the one in progress, never one round each.
            self._again = True
            d.births_coalesced += 1
            return True
        self._announcing = asyncio.get_running_loop().create_task(
            self._announce_on_birth(), name="ha-discovery"
        )
        # Nobody awaits the task: a failure would otherwise surface only as asyncio's
        # "Task exception was never retrieved" when it is collected.
        self._announcing.add_done_callback(_log_failure)
        return True

    async def _announce_on_birth(self) -> None:
        while True:
            self._again = False
            await self.announce()
            await asyncio.sleep(BIRTH_HOLDOFF)
            if not self._again:
                return

    async def on_connect(self) -> None:
        """After each (re)connection: publish the discovery configs."""
        await self.announce()

    async def announce(self) -> None:
        """Publish every discovery config, retained, at QoS 1."""
        d = self.discovery
        if d is None:
            return
        for m in d.messages:
            try:
                sent = await self.link.publish(
                    m.topic, m.payload, qos=1, retain=True, content_type=JSON
                )
            except ValueError as err:  # the MQTT client refused the topic or payload
                log.error(
                    "discovery config refused",
                    extra={"topic": m.topic[:200], "error": str(err)},
                )
                sent = False
            if sent:
                d.published += 1
            else:
                d.failed += 1

    def _publish_text(self, topic: str, payload: bytes) -> bool:
        kind = JSON if payload.startswith(b"[") else TEXT_PLAIN
        return self.link.publish_nowait(topic, payload, qos=0, content_type=kind)

    async def run(self) -> None:
        """Publish the text values until cancelled (returns at once when disabled)."""
        if self.text is not None:
            await self.text.run(self._publish_text)

    def statistics(self) -> dict[str, int]:
        """Counters for the stats topic (zeros when disabled)."""
        t, d = self.text, self.discovery
        return {
            "text_published": 0 if t is None else t.published,
            "text_failed": 0 if t is None else t.failed,
            "discovery_published": 0 if d is None else d.published,
            "discovery_failed": 0 if d is None else d.failed,
            "discovery_births": 0 if d is None else d.births,
            "discovery_births_coalesced": 0 if d is None else d.births_coalesced,
        }


def _check_apart(ha_prefix: str, topics: Topics) -> None:
    """Refuse a Home Assistant prefix inside the service's own topics.

    Inside the network's (``<prefix>/<net>``), its birth topic ``<ha_prefix>/status`` would
    be the network's status topic or one of its inputs (taken by the status guard or the
    bridges, so births went uncounted or an input went deaf); anywhere under ``<prefix>/``
    it would read as another network's (``spikestream ls`` takes ``<prefix>/+/status``).

    Raises:
        ConfigError: ``ha_prefix`` is ``<prefix>`` or below it.
    """
    prefix = topics.prefix
    if ha_prefix == prefix or ha_prefix.startswith(prefix + "/"):
        raise ConfigError(
            f"--ha-discovery {ha_prefix!r:.80} lies inside the service's topics "
            f"({prefix}/...), where it would read as a network's; expected a prefix of "
            f"its own, such as {DEFAULT_HA_PREFIX!r}"
        )


def _log_failure(task: asyncio.Task[None]) -> None:
    """Log the exception a finished discovery task raised (a programming error)."""
    if task.cancelled():
        return
    err = task.exception()
    if err is not None:
        log.error("discovery round failed", exc_info=err)
