"""``examples/learn_error.py``: the error client that ``learn.toml`` needs, end to end."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream_client.codec import ValueFrame, decode_frame
from tests.brokers import Mosquitto
from tests.serving import EXAMPLES, Listener, ServeProcess

pytestmark = pytest.mark.broker


async def test_the_error_client_makes_the_error_fall(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """serve learn.toml, feed u = sin, run the example client: |y - u| as seen by an
    independent subscriber falls to a fraction of its value in the period before the client
    started, and the client's own summary agrees."""
    proc = ServeProcess(EXAMPLES / "learn.toml", mosquitto.url(), workdir=tmp_path).start()
    feed = client = None
    latest: dict[str, float] = {}
    trace: list[tuple[float, float]] = []  # (wall time of arrival, |y - u|)
    t0 = 0.0  # when the error client starts
    try:
        async with Listener(
            "127.0.0.1", mosquitto.port, ["spikestream/learn/status", "spikestream/learn/out/#"]
        ) as sub:
            await sub.wait_status("learn", b"online")
            common = [sys.executable, "-m", "spikestream", "feed", "--broker", mosquitto.url()]
            feed = await asyncio.create_subprocess_exec(
                *common, "--net", "learn", "--input", "u", "sin", "--freq", "0.5", "-q",
                cwd=tmp_path,
            )  # fmt: skip

            def u_moves(ms: list[Any]) -> bool:
                values = [
                    float(np.abs(decode_frame(m.payload).data).max())  # type: ignore[union-attr]
                    for m in ms[-40:]  # the newest frames only: this runs every 20 ms
                    if m.topic == "spikestream/learn/out/u"
                ]
                return bool(values) and max(values) > 0.3

            await sub.wait_for(u_moves, what="the fed input u in the frames")
            # One full period of the 0.5 Hz input before the error client starts: the
            # baseline error, with no learning yet.
            await asyncio.sleep(2.0)
            client = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / "learn_error.py"), "--broker", mosquitto.url(),
                "--duration", "10", "-q",
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            seen = 0
            start, t0 = time.monotonic(), time.time()
            while client.returncode is None and time.monotonic() - start < 30:
                for m in sub.messages[seen:]:
                    if "/out/" in m.topic:
                        frame = decode_frame(m.payload)
                        assert isinstance(frame, ValueFrame)
                        latest[frame.header.probe] = float(frame.data[-1, 0])
                        if frame.header.probe == "y" and "u" in latest:
                            trace.append((m.received, abs(latest["y"] - latest["u"])))
                seen = len(sub.messages)
                await asyncio.sleep(0.05)
            out_bytes, _ = await asyncio.wait_for(client.communicate(), 15)
            out = out_bytes.decode()
    finally:
        for p in (feed, client):
            if p is not None and p.returncode is None:
                p.terminate()
                await asyncio.wait_for(p.wait(), 10)
        assert proc.stop() == 0
    assert client is not None
    assert client.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["published"] > 200  # ~50 Hz for ~10 s
    # Windows of 2 s, one period of the 0.5 Hz input. The client's first window starts once
    # it publishes, so learning has begun in it: a smaller fall than seen from outside.
    assert summary["abs_error_last"] < summary["abs_error_first"] / 1.5, summary
    assert summary["abs_error_last"] < 0.2, summary
    early = [e for t, e in trace if -2.0 <= t - t0 < 0]  # the period before the client
    late = [e for t, e in trace if t - t0 > 8.0]
    print(f"|y - u|: {np.mean(early):.3f} before the client, {np.mean(late):.3f} at the end")
    assert len(early) > 30
    assert len(late) > 30
    # Before learning y is ~0 while u = sin swings, so |y - u| averages ~0.6.
    assert float(np.mean(early)) > 0.3
    assert float(np.mean(late)) < float(np.mean(early)) / 3, (np.mean(early), np.mean(late))
