"""Bridges: a Home Assistant prefix beside the service's own, and the text payloads'
content types.

``_check_apart`` refuses an HA prefix equal to or under the service's prefix; the suite
never checked that a *sibling* prefix sharing its first letters (``spikestream_ha`` beside
``spikestream``) is still allowed, so refusing every prefix that merely starts with the
service's (``startswith(prefix)`` without the ``/``) passed.

``docs/PROTOCOL.md`` section 9 gives text values the MQTT 5 content type ``text/plain``
(one number) or ``application/json`` (an array): sending every payload as
``text/plain`` passed the suite.

``claims`` (which topics the service leaves out of its inputs) and ``prefixes`` (where no
reply to a request may go) were never checked with discovery on: claiming every topic
(every input deaf) or naming no prefix (a request's response topic may then overwrite
HA's retained configs) passed the suite.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from spikestream.serving.bridges import Bridges, _log_failure
from spikestream_client.codec import topics


class _Link:
    """The calls Bridges makes of the service's MQTT link, recorded."""

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.sent: list[tuple[str, bytes, dict[str, object]]] = []

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.subscribed.append(topic)

    def publish_nowait(self, topic: str, payload: bytes, **options: object) -> bool:
        self.sent.append((topic, payload, options))
        return True


def _bridges(link: _Link, *, ha_prefix: str | None, text_rate: float | None) -> Bridges:
    return Bridges(
        link,  # type: ignore[arg-type]
        topics("spikestream", "seed"),
        {"u": ("values", (1,)), "y": ("values", (2,))},
        text_rate=text_rate,
        ha_prefix=ha_prefix,
        version="9.9",
    )


def test_a_sibling_prefix_sharing_the_services_first_letters_is_allowed() -> None:
    """``spikestream_ha`` and ``spikestreamha`` lie beside ``spikestream/``, not inside
    it: discovery under them is on."""
    for prefix in ("spikestream_ha", "spikestreamha"):
        link = _Link()
        b = _bridges(link, ha_prefix=prefix, text_rate=None)
        assert b.discovery is not None
        assert link.subscribed == [f"{prefix}/status"]


def test_text_payloads_carry_their_content_type() -> None:
    """One number is ``text/plain``, an array ``application/json``, at QoS 0."""
    link = _Link()
    b = _bridges(link, ha_prefix=None, text_rate=10.0)
    b.observe("u", "values", np.array([[0.5]], np.float32))
    b.observe("y", "values", np.array([[0.25, -1.5]], np.float32))
    assert b.text is not None
    b.text.flush(b._publish_text)
    got = {t: (p, o["content_type"], o["qos"]) for t, p, o in link.sent}
    assert got == {
        "spikestream/seed/text/u": (b"0.5", "text/plain", 0),
        "spikestream/seed/text/y": (b"[0.25,-1.5]", "application/json", 0),
    }


def test_only_the_birth_topic_is_claimed() -> None:
    """The service leaves every topic the bridges claim out of its inputs: with discovery
    on, the bridges claim HA's birth topic and nothing else, so no input goes deaf."""
    b = _bridges(_Link(), ha_prefix="homeassistant", text_rate=None)
    assert b.claims("homeassistant/status")
    assert not b.claims("spikestream/seed/in/u")
    assert not b.claims("homeassistant/other")


def test_replies_may_not_go_under_the_ha_prefix() -> None:
    """With discovery on, its prefix is named, so a control request cannot have its
    reply published over HA's retained configs; without it, none is."""
    assert _bridges(_Link(), ha_prefix="homeassistant", text_rate=None).prefixes == (
        "homeassistant",
    )
    assert _bridges(_Link(), ha_prefix=None, text_rate=1.0).prefixes == ()


def test_a_cancelled_discovery_round_is_not_an_error() -> None:
    """A birth round cancelled at shutdown is no failure: its done callback neither
    raises (asyncio would report "Exception in callback") nor logs."""

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _log_failure(task)

    asyncio.run(main())
