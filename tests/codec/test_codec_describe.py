"""The describe document's codec: the control section is the registry, the decoder
treats documents as hostile, response topics are checked, and topic helpers agree."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.errors import CodecError, PayloadTooLarge
from spikestream_client.codec import (
    COMMAND_SPECS,
    MAX_REALTIME_FACTOR,
    SETTINGS,
    check_response_topic,
    control_description,
    decode_describe,
    encode_describe,
    net_of,
    topics,
    wildcard,
)


def document() -> dict[str, Any]:
    """A small valid document, as the service builds it (keys the decoder checks)."""
    t = topics("spikestream", "arm")
    return {
        "v": 1,
        "net": "arm",
        "prefix": "spikestream",
        "service": {"name": "spikestream", "version": "0.1.0"},
        "session": 3,
        "dt": 0.001,
        "inputs": {
            "target": {"topic": t.input("target"), "dim": 2, "default": [0.0, 0.5], "ttl": None}
        },
        "probes": {
            "a_spikes": {
                "topic": t.out("a_spikes"),
                "kind": "spikes",
                "shape": [100],
                "dtype": "bool",
                "ticks_per_frame": 20,
            },
            "hand": {
                "topic": t.out("hand"),
                "kind": "values",
                "shape": [2],
                "dtype": "float32",
                "ticks_per_frame": 10,
            },
        },
    }


def test_a_valid_document_decodes() -> None:
    d = decode_describe(encode_describe(document()))
    assert (d.net, d.dt, d.session, d.version) == ("arm", 0.001, 3, "0.1.0")
    assert d.inputs["target"].dim == 2
    assert d.inputs["target"].default == (0.0, 0.5)
    assert d.inputs["target"].ttl is None
    assert d.inputs["target"].max_bytes is None  # not said: older services
    with_limit = document()
    with_limit["inputs"]["target"]["max_bytes"] = 4096
    assert decode_describe(encode_describe(with_limit)).inputs["target"].max_bytes == 4096
    assert d.probes["a_spikes"].shape == (100,)
    assert d.probes["hand"].ticks_per_frame == 10
    assert d.document["prefix"] == "spikestream"  # other keys kept as they came


def test_missing_probes_names_them_and_at_most_twenty_of_the_probes_there_are() -> None:
    """A document may hold thousands of probes: the error a consumer of a missing one gets
    names the first 20 (sorted) and how many more, and each missing name cut at 80."""
    doc = document()
    t = topics("spikestream", "arm")
    for k in range(30):
        doc["probes"][f"p{k:02d}"] = {**doc["probes"]["hand"], "topic": t.out(f"p{k:02d}")}
    d = decode_describe(encode_describe(doc))
    assert d.missing_probes(["hand", "a_spikes"]) is None
    assert d.missing_probes([]) is None
    message = d.missing_probes(["hand", "nope", "x" * 500])
    assert message is not None
    names, _, listed = message.partition("; its probes: ")
    assert names.startswith("network 'arm' has no probe 'nope', 'xxx")
    assert len(names) < 150  # the 500-character name is cut
    assert listed == ", ".join(sorted(d.probes)[:20]) + " and 12 more"
    none = decode_describe(encode_describe({**document(), "probes": {}}))
    assert none.missing_probes(["a"]) == "network 'arm' has no probe 'a'; its probes: none"


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("v",), 2, "unsupported version 2"),
        (("v",), True, "unsupported version True"),
        (("net",), "a/b", "'net' 'a/b' breaks the naming rule"),
        (("dt",), 0, "'dt' must be a number of seconds in [1e-06, 3600.0], got 0.0"),
        (("dt",), 5e-324, "'dt' must be a number of seconds in [1e-06, 3600.0], got 5e-324"),
        (("prefix",), "", "'prefix' '' is not a topic prefix"),
        (("prefix",), "a/#", "'prefix' 'a/#' is not a topic prefix"),
        (("prefix",), None, "'prefix' must be str, got NoneType"),
        (
            ("inputs", "target", "topic"),
            "#",
            "'topic' must be 'spikestream/arm/in/target', got '#'",
        ),
        (("inputs", "target", "topic"), "", "'topic' must be 'spikestream/arm/in/target', got ''"),
        (("inputs", "target", "topic"), "spikestream/leg/in/target", "got 'spikestream/leg/"),
        (("inputs", "target", "ttl"), -5, "'ttl' must be null or a number of seconds >= 0, got -5"),
        (("probes", "hand", "topic"), "spikestream/arm/in/target", "'topic' must be 'spikes"),
        (("probes", "a_spikes", "shape"), [2] * 8, "'shape' of a spike probe must be [n]"),
        (("probes", "a_spikes", "shape"), [], "'shape' of a spike probe must be [n]"),
        (("probes", "hand", "shape"), [2**31] * 8, "holds more than 2**31 numbers per tick"),
        (("topics",), {"status": "#"}, "topics['status'] must be 'spikestream/arm/status'"),
        (("topics",), [], "'topics' must be dict, got list"),
        (("dt",), "0.001", "'dt' must be a finite number"),
        (("session",), 0, "'session' must be an integer in [1, 2**53]"),
        (("session",), True, "'session' must be int, got bool"),
        (("inputs", "target", "dim"), 0, "'dim' must be an integer in [1, 2**53]"),
        (("inputs", "target", "default"), [0.0], "'default' has 1 values for dim 2"),
        (("inputs", "target", "ttl"), "soon", "'ttl' must be a finite number"),
        (("inputs", "target", "ttl"), 10**400, "'ttl' must be a finite number"),
        (("inputs", "target", "max_bytes"), 0, "'max_bytes' must be an integer in [1, 2**53]"),
        (("inputs", "target", "max_bytes"), True, "'max_bytes' must be int, got bool"),
        (("inputs", "target", "max_bytes"), None, "'max_bytes' must be int, got NoneType"),
        (("probes", "hand", "kind"), "pictures", "'kind' must be 'spikes' or 'values'"),
        (("probes", "hand", "dtype"), "bool", "does not fit kind 'values'"),
        (("probes", "hand", "shape"), [-1], "'shape' must be at most 8 integers"),
        (("probes", "hand", "ticks_per_frame"), 0, "'ticks_per_frame' must be an integer"),
        (("probes", "hand", "topic"), None, "'topic' must be str, got NoneType"),
        (("probes",), [], "'probes' must be dict, got list"),
        (("service",), {}, "'version' must be str"),
    ],
)
def test_a_broken_document_is_refused_by_name(
    path: tuple[str, ...], value: object, words: str
) -> None:
    doc = document()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(CodecError, match="invalid describe document") as err:
        decode_describe(json.dumps(doc).encode())
    assert words in str(err.value)


def test_hostile_names_and_bytes_are_refused() -> None:
    doc = document()
    doc["probes"]["<img src=x>"] = doc["probes"].pop("hand")
    with pytest.raises(CodecError, match="breaks the naming rule"):
        decode_describe(json.dumps(doc).encode())
    for payload in (b"\xff", b"[1]", b'{"v": NaN}', b"[" * 100_000):
        with pytest.raises(CodecError):
            decode_describe(payload)
    with pytest.raises(PayloadTooLarge):
        decode_describe(b" " * 65, max_bytes=64)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _valid(key: str, value: object) -> bool:
    """Whether ``document()`` with ``key`` set to ``value`` is valid, worked out apart
    from the decoder: net and prefix are fixed by the topics, so only they pass."""
    number = type(value) in (int, float)
    if key == "v":
        return type(value) is int and value == 1
    if key == "net":
        return value == "arm"
    if key == "prefix":
        return value == "spikestream"
    if key == "dt":
        return number and 1e-6 <= value <= 3600  # type: ignore[operator]
    if key == "session":
        return type(value) is int and 1 <= value <= 2**53
    if key == "service":
        return type(value) is dict and type(value.get("version")) is str
    if key == "topics":
        return False  # a generated map never names all seven topics right
    return value == {}  # inputs, probes: no generated entry has a topic that fits


json_or_near = json_values | st.sampled_from(["arm", "spikestream", 1, 0.5, 1e-7, 2**53, {}])


@given(
    key=st.sampled_from(
        ["v", "net", "prefix", "dt", "session", "service", "topics", "inputs", "probes"]
    ),
    value=json_or_near | st.fixed_dictionaries({"version": json_or_near}),
)
def test_any_value_anywhere_is_decoded_or_refused_cleanly(key: str, value: object) -> None:
    """Whatever a key holds, the decoder returns a checked document exactly when the key
    holds a valid value, and refuses it with a CodecError otherwise."""
    doc = copy.deepcopy(document())
    doc[key] = value
    try:
        d = decode_describe(json.dumps(doc).encode())
    except CodecError:
        assert not _valid(key, value), f"{key}={value!r} was refused"
        return
    assert _valid(key, value), f"{key}={value!r} was accepted"
    assert (d.net, d.session, d.dt) == (doc["net"], doc["session"], float(doc["dt"]))


def test_the_document_must_come_from_the_prefix_it_arrived_under() -> None:
    payload = json.dumps(document()).encode()
    assert decode_describe(payload, prefix="spikestream").net == "arm"
    with pytest.raises(CodecError, match="'prefix' must be 'lab', the prefix it arrived under"):
        decode_describe(payload, prefix="lab")


def test_the_control_section_is_the_registry() -> None:
    section = control_description({"ticks_per_frame": 5000})
    assert [c["name"] for c in section["commands"]] == list(COMMAND_SPECS)
    assert [c["usage"] for c in section["commands"]] == [c.usage for c in COMMAND_SPECS.values()]
    assert list(section["settings"]) == list(SETTINGS)
    tpf = section["settings"]["ticks_per_frame"]
    assert (tpf["low"], tpf["high"]) == (1, 5000)
    assert tpf["allowed"] == (
        "an integer in [1, 5000], the largest the memory budget and a frame's 16 MiB allow"
    )
    assert section["settings"]["learning_rate"]["high"] == 1.0
    assert section["settings"]["realtime_factor"]["high"] == MAX_REALTIME_FACTOR
    assert section["settings"]["ttl"]["high"] is None
    assert "low" not in section["settings"]["learning"]  # a flag has no range
    # A runtime bound above a fixed one does not widen it.
    assert control_description({"learning_rate": 5.0})["settings"]["learning_rate"]["high"] == 1


def test_encode_refuses_what_is_not_json() -> None:
    doc = document()
    doc["dt"] = float("nan")
    with pytest.raises(CodecError, match="cannot encode"):
        encode_describe(doc)
    with pytest.raises(CodecError, match="needs v=1"):
        encode_describe({"v": 2})


@pytest.mark.parametrize(
    ("topic", "words"),
    [
        ("", "1-1024 characters"),
        ("x" * 1025, "1-1024 characters"),
        ("replies/+", "contains '+'"),
        ("replies/#", "contains '#'"),
        ("a\x00b", "contains '\\x00'"),
        ("$SYS/broker", "starts with '$'"),
        ("spikestream/seed/control", "'control' topic"),
        ("spikestream/other/in/u", "'in' topic"),
        ("spikestream/seed/status", "'status' topic"),
        ("spikestream/seed/describe", "'describe' topic"),
        ("spikestream/seed/out/a_spikes", "'out' topic"),
        ("spikestream/seed/text/a_value", "'text' topic"),
        ("spikestream/seed/events", "'events' topic"),
        ("spikestream/other/stats", "'stats' topic"),
    ],
)
def test_hostile_response_topics_are_refused(topic: str, words: str) -> None:
    with pytest.raises(CodecError) as err:
        check_response_topic("spikestream", topic)
    assert words in str(err.value)


def test_ordinary_response_topics_pass() -> None:
    for topic in ("lab/me/replies", "spikestream/seed/replies", "spikestream/replies", "x"):
        assert check_response_topic("spikestream", topic) == topic


def test_topic_helpers_agree() -> None:
    t = topics("lab/rig-2", "seed")
    assert t.describe == "lab/rig-2/seed/describe"
    assert t.stats == "lab/rig-2/seed/stats"
    assert wildcard("lab/rig-2", "describe") == "lab/rig-2/+/describe"
    assert net_of("lab/rig-2", t.describe, "describe") == "seed"
    assert net_of("lab/rig-2", t.status, "describe") is None
    assert net_of("lab/rig-2", "lab/rig-2/a/b/describe", "describe") is None
    with pytest.raises(CodecError):
        wildcard("$SYS", "describe")
