"""PES learning while the service streams: the decoded output converges to the target."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from spikestream_client.codec import ValueFrame, decode_frame, encode_input
from tests.brokers import Mosquitto
from tests.serving import EXAMPLES, NODELAY, Listener, ServeProcess

pytestmark = pytest.mark.broker


async def test_pes_converges_over_mqtt(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = ServeProcess(EXAMPLES / "learn.toml", mosquitto.url(), workdir=tmp_path).start()
    latest: dict[str, float] = {}
    trace: list[tuple[float, float]] = []  # (wall, |y - u|)
    try:
        async with Listener(
            "127.0.0.1", mosquitto.port, ["spikestream/learn/events", "spikestream/learn/status"]
        ) as sub:
            await sub.wait_status("learn", b"online")
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, socket_options=NODELAY) as c:
                await c.subscribe("spikestream/learn/out/#")
                await c.publish(
                    "spikestream/learn/control",
                    json.dumps({"cmd": "set", "key": "learning_rate", "value": 2e-4, "id": "rate"}),
                )

                async def read() -> None:
                    async for msg in c.messages:
                        frame = decode_frame(msg.payload)  # type: ignore[arg-type]
                        assert isinstance(frame, ValueFrame)
                        latest[frame.header.probe] = float(frame.data[-1, 0])
                        if frame.header.probe == "y" and "u" in latest:
                            trace.append((time.monotonic(), abs(latest["y"] - latest["u"])))

                reader = asyncio.create_task(read())
                start = time.monotonic()
                # The sensor feeds u = sin(2t) and the "teacher" the error y - u, at 50 Hz.
                while time.monotonic() - start < 8.0:
                    u = float(np.sin(2.0 * (time.monotonic() - start)))
                    await c.publish("spikestream/learn/in/u", encode_input(np.array([u])))
                    if "y" in latest and "u" in latest:
                        await c.publish(
                            "spikestream/learn/in/err",
                            encode_input(np.array([latest["y"] - latest["u"]])),
                        )
                    await asyncio.sleep(0.02)
                reader.cancel()
            ok = [json.loads(m.payload) for m in sub.messages if m.topic.endswith("/events")]
            assert any(e.get("id") == "rate" and e["event"] == "control_ok" for e in ok)
    finally:
        proc.stop()
    t0 = trace[0][0]
    early = [e for t, e in trace if t - t0 < 1.0]
    late = [e for t, e in trace if t - t0 > 6.5]
    assert len(early) > 50
    assert len(late) > 50
    # Before learning y is ~0 while u = sin(2t) swings: |y - u| averages ~0.6.
    assert float(np.mean(late)) < 0.12
    assert float(np.mean(late)) < float(np.mean(early)) / 3
