"""An imported Nengo model served live: ``spikestream serve MODEL.py`` against a real
mosquitto answers an MQTT input on the node's label."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import ValueFrame, decode_frame
from tests.brokers import Mosquitto
from tests.nengo_import.runs import script
from tests.serving import NODELAY, Listener, Message, ServeProcess

pytestmark = pytest.mark.broker

NET = "nengo-channel"
OUT = f"spikestream/{NET}/out/"


def values(messages: list[Message], probe: str) -> tuple[np.ndarray, np.ndarray]:
    """Every tick's value of ``probe`` so far: ``(ticks,)`` tick numbers, ``(ticks, dim)``."""
    frames = [decode_frame(m.payload) for m in messages if m.topic == OUT + probe]
    frames = [f for f in frames if isinstance(f, ValueFrame)]
    if not frames:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    ticks = [np.arange(f.header.tick, f.header.tick + f.header.ticks) for f in frames]
    return np.concatenate(ticks), np.concatenate([f.data for f in frames])


async def test_served_channel_follows_an_mqtt_input(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = ServeProcess(script("channel"), mosquitto.url(), workdir=tmp_path).start()
    try:
        async with Listener("127.0.0.1", mosquitto.port, [f"spikestream/{NET}/#"]) as sub:
            await sub.wait_status(NET, b"online", within=60.0)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as pub:
                for target in ([0.6, -0.5], [-0.5, 0.6]):
                    await pub.publish(f"spikestream/{NET}/in/stim", f"[{target[0]}, {target[1]}]")
                    want = np.array(target, np.float32)

                    def arrived(ms: list[Message], want: np.ndarray = want) -> list[int]:
                        # A list, truthy even for tick 0: an input that arrives before the
                        # first tick is applied to it (wait_for waits for a true result).
                        ticks, seen = values(ms, "stim_value")
                        hits = np.flatnonzero(np.all(seen == want, axis=1))
                        return [int(ticks[hits[0]])] if hits.size else []

                    try:
                        (start,) = await sub.wait_for(arrived, what=f"stim = {target}")
                    except AssertionError as exc:  # say what the service did meanwhile
                        raise AssertionError(f"{exc}\n{_seen(sub.messages, proc)}") from None

                    # 400-500 ms after the input arrived, b (two synapses on) holds it.
                    def settled(ms: list[Message], start: int = start) -> list[np.ndarray]:
                        ticks, b = values(ms, "b_value")
                        late = b[(ticks >= start + 400) & (ticks < start + 500)]
                        return [late] if len(late) == 100 else []

                    (b,) = await sub.wait_for(settled, what="b_value 0.5 s after the input")
                    np.testing.assert_allclose(b.mean(axis=0), want, atol=0.15)
        assert proc.stop() == 0
    finally:
        proc.kill()
    assert "Traceback" not in proc.log_text()


def _seen(messages: list[Message], proc: ServeProcess) -> str:
    """The service's events, its last ``stim_value`` rows and its log's tail: what a
    failure to see an input in the frames needs explained."""
    events = [m.payload.decode(errors="replace") for m in messages if m.topic.endswith("/events")]
    ticks, seen = values(messages, "stim_value")
    return (
        f"events: {events[-10:]}\n"
        f"stim_value: {len(ticks)} ticks, last {ticks[-3:].tolist()} = {seen[-3:].tolist()}\n"
        f"log tail: {proc.log_text()[-3000:]}"
    )
