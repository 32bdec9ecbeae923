"""What the client's dispatcher takes from the bus, as hostile: retained frames, topic
names no service can have, and describe documents past a byte budget."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from spikestream_client.codec import Frame, encode_describe, topics
from spikestream_client.dispatch import DESCRIBED_BYTES, Dispatcher
from spikestream_client.transport import MessageMeta
from tests.clients.frames import header, spike_payload
from tests.codec.test_codec_describe import document

LIVE = MessageMeta(qos=0, retain=False)
RETAINED = MessageMeta(qos=0, retain=True)


def test_a_retained_frame_is_refused_and_counted() -> None:
    """A service never retains its frames; record kept a retained forged frame as a
    segment of the recording (1000 all-spike rows at tick 5,000,000)."""
    d = Dispatcher("spikestream")
    got: list[Frame] = []
    d.frame_sinks[("fake", None)] = [got.append]
    topic = topics("spikestream", "fake").out("a")
    payload = spike_payload(header("a", 0, 0), np.ones((10, 8), bool))
    d.on_message(topic, payload, RETAINED)
    assert (got, d.frames, d.decode_errors) == ([], 0, 1)
    d.on_message(topic, payload, LIVE)
    assert (len(got), d.frames, d.decode_errors) == (1, 1, 1)


def test_frames_refused_counts_every_refused_frame_and_nothing_else() -> None:
    """``record`` said "0 frames skipped" and exited 0 after garbage and oversize frames:
    the client counted them only among every decode error (logging the first). Each
    frame refused on an ``out`` topic is counted apart, for record to say and store."""
    d = Dispatcher("spikestream")
    d.watching = True
    got: list[Frame] = []
    d.frame_sinks[("fake", None)] = [got.append]
    t = topics("spikestream", "fake")
    good = spike_payload(header("a", 0, 0), np.ones((10, 8), bool))
    d.on_message(t.out("a"), good, RETAINED)  # a service never retains frames
    d.on_message(t.out("a"), b"\x93garbage", LIVE)
    d.on_message(t.out("b"), good, LIVE)  # a frame of `a` posing as one of `b`
    d.on_message(t.out("a"), b"", MessageMeta(qos=0, retain=False, oversize=2**25))
    assert (d.frames_refused, d.decode_errors, got) == (4, 4, [])
    # Refusals on other topics are decode errors, not refused frames.
    d.on_message(t.describe, b"[1, 2, 3]", RETAINED)
    d.on_message(t.describe, b"", MessageMeta(qos=0, retain=True, oversize=2**25))
    d.on_message(t.out("a"), good, LIVE)
    assert (d.frames_refused, d.decode_errors, len(got)) == (4, 6, 1)


def test_a_topic_whose_network_name_breaks_the_rule_is_refused_and_counted() -> None:
    """ls printed such names straight from the status topic: a right-to-left override
    (which mosquitto passes) reversed the table's text, and an escape sequence (which
    other brokers pass) reached the terminal."""
    d = Dispatcher("spikestream")
    d.watching = True
    for net in ("red\u202ex", "\x1b]0;PWNED\x07\x1b[2J", "a b", "n" * 65):
        d.on_message(f"spikestream/{net}/status", b"online", RETAINED)
        d.on_message(f"spikestream/{net}/describe", b"{}", RETAINED)
    d.on_message("spikestream/good/status", b"online", RETAINED)
    assert d.seen_status == {"good": "online"}
    assert d.decode_errors == 8
    d.frame_sinks[("fake", None)] = [lambda f: None]
    d.on_message("spikestream/fake/out/b\u200bad", b"", LIVE)
    assert d.decode_errors == 9


def test_describe_documents_are_held_within_a_byte_budget() -> None:
    """4096 documents of 1 MiB each were held decoded (a 1 MiB one of long lists takes
    about 20 MB): 50 of them took ls past 670 MB."""
    d = Dispatcher("spikestream")
    d.watching = True
    big = document()
    big["inputs"]["target"]["default"] = [0.5] * 2
    pad = "x" * (900_000)
    kept = 0
    for i in range(40):
        doc = copy.deepcopy(big)
        net = f"n{i}"
        doc["net"] = net
        for probe in doc["probes"].values():
            probe["topic"] = probe["topic"].replace("/arm/", f"/{net}/")
        for inp in doc["inputs"].values():
            inp["topic"] = inp["topic"].replace("/arm/", f"/{net}/")
        doc["note"] = pad
        payload = encode_describe(doc)
        d.on_message(f"spikestream/{net}/describe", payload, RETAINED)
        kept = len(d.descriptions)
    assert d.described_bytes <= DESCRIBED_BYTES
    assert kept == DESCRIBED_BYTES // len(payload)
    assert d.descriptions_dropped == 40 - kept
    assert len(d._described_bytes) == kept  # no entry for a network never held
    # A cleared one makes room again (n39 was not kept), and a document replaced
    # counts once.
    assert "n39" not in d.descriptions
    d.on_message("spikestream/n0/describe", b"", RETAINED)
    assert "n0" not in d.descriptions
    d.on_message("spikestream/n39/describe", payload, RETAINED)
    assert "n39" in d.descriptions
    before = d.described_bytes
    d.on_message("spikestream/n39/describe", payload, RETAINED)
    assert d.described_bytes == before


def test_unrouted_messages_and_failing_callbacks_are_counted() -> None:
    """ClientStatistics documents ``unrouted`` and ``callback_errors``; nothing else
    checked that each path which drops a message or swallows a callback's exception
    counts it, so a user reading the statistics would see silent losses as zero."""
    from spikestream_client.codec import encode_event

    d = Dispatcher("spikestream")
    t = topics("spikestream", "fake")
    good = spike_payload(header("a", 0, 0), np.ones((10, 8), bool))
    event = encode_event("online")
    d.on_message("elsewhere/fake/status", b"online", LIVE)  # not under our prefix
    d.on_message(t.out("a"), good, LIVE)  # a frame nobody consumes
    d.on_message(t.describe, b"{}", RETAINED)  # a describe while not watching
    d.on_message(t.events, event, LIVE)  # an event nobody consumes
    assert (d.unrouted, d.decode_errors, d.callback_errors) == (4, 0, 0)

    def fail(_: object) -> None:
        raise RuntimeError("a consumer's bug")

    d.frame_sinks[("fake", None)] = [fail]
    d.event_sinks["fake"] = [fail]
    d.on_message(t.out("a"), good, LIVE)
    d.on_message(t.events, event, LIVE)
    assert (d.unrouted, d.frames, d.callback_errors) == (4, 1, 2)


def test_a_callback_removing_itself_does_not_skip_the_next_one() -> None:
    """A callback detaches by removing itself from its list while the dispatcher is
    calling that list's callbacks: the next one must still get the message."""
    from spikestream_client.codec import encode_event

    d = Dispatcher("spikestream")
    t = topics("spikestream", "fake")
    frames: list[Frame] = []
    events: list[dict[str, object]] = []

    def once_frame(_: Frame) -> None:
        d.frame_sinks[("fake", "a")].remove(once_frame)

    def once_event(_: dict[str, object]) -> None:
        d.event_sinks["fake"].remove(once_event)

    d.frame_sinks[("fake", "a")] = [once_frame, frames.append]
    d.event_sinks["fake"] = [once_event, events.append]
    d.on_message(t.out("a"), spike_payload(header("a", 0, 0), np.ones((10, 8), bool)), LIVE)
    d.on_message(t.events, encode_event("online"), LIVE)
    assert (len(frames), len(events)) == (1, 1)


def _small_describe(net: str, note: str = "") -> bytes:
    doc = copy.deepcopy(document())
    doc["net"] = net
    for entry in (*doc["probes"].values(), *doc["inputs"].values()):
        entry["topic"] = entry["topic"].replace("/arm/", f"/{net}/")
    if note:
        doc["note"] = note
    return encode_describe(doc)


def test_networks_remembered_stop_exactly_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most _MAX_NETWORKS statuses and documents are held (4096 in production), and
    a network already held is still updated once the limit is reached."""
    from spikestream_client import dispatch

    monkeypatch.setattr(dispatch, "_MAX_NETWORKS", 3)
    d = Dispatcher("spikestream")
    d.watching = True
    for i in range(5):
        d.on_message(f"spikestream/n{i}/status", b"online", RETAINED)
        d.on_message(f"spikestream/n{i}/describe", _small_describe(f"n{i}"), RETAINED)
    assert sorted(d.seen_status) == ["n0", "n1", "n2"]
    assert sorted(d.descriptions) == ["n0", "n1", "n2"]
    assert d.descriptions_dropped == 2
    d.on_message("spikestream/n0/status", b"offline", RETAINED)
    assert d.seen_status["n0"] == "offline"


def test_describe_byte_budget_is_exact_and_a_refused_replacement_keeps_the_held_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents that fill the budget exactly are all kept; a same-size replacement of
    a held one still fits; a larger replacement that does not fit leaves the held
    document (and its byte count) in place, so clearing it later frees its bytes."""
    from spikestream_client import dispatch

    small = {net: _small_describe(net) for net in ("n0", "n1")}
    size = len(small["n0"])
    assert len(small["n1"]) == size
    monkeypatch.setattr(dispatch, "DESCRIBED_BYTES", 2 * size)
    d = Dispatcher("spikestream")
    d.watching = True
    for net, payload in small.items():
        d.on_message(f"spikestream/{net}/describe", payload, RETAINED)
    assert (sorted(d.descriptions), d.described_bytes) == (["n0", "n1"], 2 * size)
    d.on_message("spikestream/n0/describe", small["n0"], RETAINED)  # same size: fits
    assert (d.descriptions_dropped, d.described_bytes) == (0, 2 * size)
    d.on_message("spikestream/n0/describe", _small_describe("n0", "x" * 100), RETAINED)
    assert (d.descriptions_dropped, sorted(d.descriptions)) == (1, ["n0", "n1"])
    d.on_message("spikestream/n0/describe", b"", RETAINED)
    assert (sorted(d.descriptions), d.described_bytes) == (["n1"], size)
