"""The service against a broker with a packet limit (mosquitto's ``max_packet_size``,
named to MQTT 5 clients in CONNACK): a frame past it was sent, the broker closed the
connection, the link sent the frame again first on the next one, and the network stayed
``offline`` with no frame of any probe getting through. Such a frame is now dropped,
counted in its probe's ``dropped`` and in ``publish_too_large``, and logged once; the
connection and every other probe go on."""

from __future__ import annotations

import asyncio
import json

import pytest

from spikestream_client.codec import decode_frame
from tests.brokers import MosquittoFactory
from tests.serving import SEED, Listener, ServeProcess

pytestmark = pytest.mark.broker

OUT = "spikestream/seed/out/"


async def test_frames_past_the_brokers_packet_limit_are_dropped_and_counted(
    mosquitto_factory: MosquittoFactory, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    # 1000 ticks a frame: a_filtered's (50 float32 a tick) take 200 KB, past the limit;
    # a_spikes' (50 bits a tick) 6 KB.
    broker = mosquitto_factory(extra_config="max_packet_size 100000\n")
    proc = ServeProcess(
        SEED, broker.url(), "--ticks-per-frame", "1000", "--stats-interval", "0.5",
        workdir=tmp_path,
    ).start()  # fmt: skip
    try:
        async with Listener("127.0.0.1", broker.port, ["spikestream/seed/#"]) as sub:
            await sub.wait_status("seed", b"online")
            await sub.wait_for(lambda ms: len(sub.on(OUT + "a_spikes")) >= 3, 20, "3 frames")
            await asyncio.sleep(1.0)  # a stats message after the third frame
            spikes = [decode_frame(m.payload) for m in sub.on(OUT + "a_spikes")]
            stats = [json.loads(m.payload) for m in sub.on("spikestream/seed/stats")]
            status = [m.payload for m in sub.on("spikestream/seed/status")]
    finally:
        assert proc.stop() == 0
    assert sub.on(OUT + "a_filtered") == []
    seqs = [f.header.seq for f in spikes]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost on a_spikes
    assert status == [b"online"]  # never offline: the connection held
    last = stats[-1]
    assert last["reconnects"] == 0
    assert last["publish_too_large"] >= 2
    assert last["dropped_by_probe"]["a_filtered"] == last["frames"]["a_filtered"]
    assert last["dropped_by_probe"]["a_spikes"] == last["dropped_by_probe"]["u"] == 0
    log = proc.log_text()
    assert log.count("probe 'a_filtered': a frame of ") == 1
    assert "does not fit the 100000-byte packets the broker takes" in log
