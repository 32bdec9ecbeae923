"""Events, status constants, topic names, and the codec's import purity."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.errors import CodecError, PayloadTooLarge
from spikestream_client.codec import (
    DEFAULT_PREFIX,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    decode_describe,
    decode_event,
    encode_event,
    topics,
    validate_name,
    validate_prefix,
)

# ----------------------------------------------------------------------------- events


def test_event_is_readable_json_with_version_kind_and_wall() -> None:
    before = time.time()
    payload = encode_event("input_rejected", input="u", reason="dimension", count=3)
    after = time.time()
    obj = json.loads(payload)
    assert list(obj)[:3] == ["v", "event", "wall"]
    assert obj["v"] == 1
    assert obj["event"] == "input_rejected"
    assert before <= obj["wall"] <= after
    assert obj["input"] == "u"
    assert obj["reason"] == "dimension"
    assert obj["count"] == 3
    assert b" " not in payload  # compact separators


def test_event_round_trip_with_explicit_wall() -> None:
    payload = encode_event("control", wall=12.5, id="42", ok=True, error=None)
    assert decode_event(payload) == {
        "v": 1,
        "event": "control",
        "wall": 12.5,
        "id": "42",
        "ok": True,
        "error": None,
    }


def test_kind_may_also_be_a_field_name() -> None:
    obj = decode_event(encode_event("error", kind="tick_overrun"))
    assert obj["event"] == "error"
    assert obj["kind"] == "tick_overrun"


def test_numpy_values_become_json() -> None:
    obj = decode_event(encode_event("stats", late=np.float32(0.5), n=np.int64(3), x=np.arange(3)))
    assert obj["late"] == 0.5
    assert obj["n"] == 3
    assert obj["x"] == [0, 1, 2]


@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda k: k not in ("v", "event", "wall")),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | st.lists(st.integers(), max_size=5),
        max_size=6,
    ),
    kind=st.text(min_size=1, max_size=20),
)
def test_event_round_trip(fields: dict[str, object], kind: str) -> None:
    obj = decode_event(encode_event(kind, wall=1.0, **fields))
    assert obj == {"v": 1, "event": kind, "wall": 1.0, **fields}


@pytest.mark.parametrize(
    ("kind", "fields", "match"),
    [
        ("", {}, "event kind must be a non-empty string"),
        ("x", {"v": 2}, r"reserved keys \['v'\]"),
        ("x", {"event": "y"}, r"reserved keys \['event'\]"),
        ("x", {"value": float("nan")}, "cannot encode event 'x' as JSON"),
        ("x", {"blob": b"\x00"}, "cannot encode event 'x' as JSON: bytes is not JSON"),
    ],
)
def test_encode_event_rejects(kind: str, fields: dict[str, object], match: str) -> None:
    with pytest.raises(CodecError, match=match):
        encode_event(kind, **fields)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\xff", "expected an event as a UTF-8 JSON object"),
        (b"{", "expected an event as a UTF-8 JSON object"),
        (b"[1]", "expected an event as a JSON object, got list"),
        (b'{"event": "x", "wall": 1}', "unsupported event version None"),
        (b'{"v": 2, "event": "x", "wall": 1}', "unsupported event version 2"),
        (b'{"v": 1, "event": "", "wall": 1}', "'event' must be a non-empty string"),
        (b'{"v": 1, "event": "x"}', "'wall' must be a number"),
        (b'{"v": 1, "event": "x", "wall": true}', "'wall' must be a number"),
        (b'{"v": 1, "event": "x", "wall": NaN}', "contains NaN"),
        (b'{"v": 1, "event": "x", "wall": 1e999}', "the number 1e999, beyond float64's range"),
        # Anywhere, not only in the keys checked: passed on, inf came out as "Infinity"
        # (ls --json, a recording's meta), which is not JSON.
        (b'{"v": 1, "event": "x", "wall": 1, "extra": [-1e999]}', "the number -1e999"),
        (b'{"v": 1, "event": "x", "wall": 1' + b"0" * 400 + b"}", "'wall' must be finite"),
        (b"[" * 100_000, "nests too deep"),
    ],
)
def test_decode_event_rejects(payload: bytes, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        decode_event(payload, max_bytes=1_000_000)


def test_decode_event_size_limit() -> None:
    with pytest.raises(PayloadTooLarge, match="11 bytes exceeds the limit of 10"):
        decode_event(b"x" * 11, max_bytes=10)


def test_status_payloads() -> None:
    assert STATUS_ONLINE == b"online"
    assert STATUS_OFFLINE == b"offline"


# ----------------------------------------------------------------------------- topics


def test_default_topics() -> None:
    t = topics(DEFAULT_PREFIX, "seed")
    assert t.input("u") == "spikestream/seed/in/u"
    assert t.out("b_spikes") == "spikestream/seed/out/b_spikes"
    assert t.status == "spikestream/seed/status"
    assert t.control == "spikestream/seed/control"
    assert t.events == "spikestream/seed/events"
    assert t.inputs_filter == "spikestream/seed/in/+"
    assert t.outs_filter == "spikestream/seed/out/+"
    assert t.stats == "spikestream/seed/stats"
    assert t.describe == "spikestream/seed/describe"
    assert t.text("u") == "spikestream/seed/text/u"


def test_multi_level_prefix() -> None:
    t = topics("lab/rig-2", "arm")
    assert t.control == "lab/rig-2/arm/control"
    assert t.input("joint.angle") == "lab/rig-2/arm/in/joint.angle"


def test_topic_parsing() -> None:
    t = topics("spikestream", "seed")
    assert t.input_name("spikestream/seed/in/u") == "u"
    assert t.input_name("spikestream/seed/in/") is None
    assert t.input_name("spikestream/seed/in/a/b") is None
    assert t.input_name("spikestream/other/in/u") is None
    assert t.input_name("spikestream/seed/out/u") is None
    assert t.probe_name("spikestream/seed/out/b") == "b"
    assert t.probe_name("spikestream/seed/in/b") is None


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a+b", r"'\+'"),
        ("#", "'#'"),
        ("a/b", "'/'"),
        ("a b", "' '"),
        ("a\tb", r"'\\t'"),
        ("a\nb", r"'\\n'"),
        ("a\u00a0b", r"'\\xa0'"),  # non-breaking space is whitespace too
        ("a\x00b", r"'\\x00'"),
        ("a\x7fb", r"'\\x7f'"),
    ],
)
def test_validate_name_rejects_bad_characters(name: str, shown: str) -> None:
    with pytest.raises(CodecError, match=rf"probe name .* contains {shown} at position"):
        validate_name("probe", name)
    with pytest.raises(CodecError, match="input name"):
        topics("spikestream", "seed").input(name)


def test_validate_name_rejects_empty_and_non_strings() -> None:
    with pytest.raises(
        CodecError, match=r"network name must be a non-empty string .* got an empty"
    ):
        validate_name("network", "")
    with pytest.raises(CodecError, match=r"network name must be .* got int 3"):
        validate_name("network", 3)
    with pytest.raises(CodecError, match="network name"):
        topics("spikestream", "a/b")
    # The clients' sync topics live at <prefix>/_sync/: no network's topics may.
    with pytest.raises(CodecError, match="network name '_sync' is reserved"):
        topics("spikestream", "_sync")


@pytest.mark.parametrize("name", ["seed", "b_spikes", "joint.angle", "x-1", "été", "$x", "A9"])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name("input", name) == name


@pytest.mark.parametrize(
    ("prefix", "match"),
    [
        ("", "one or more '/'-separated levels"),
        ("$SYS", "must not start with '\\$'"),
        ("/spikestream", "topic prefix level name must be a non-empty string"),
        ("a//b", "topic prefix level name must be a non-empty string"),
        ("a/", "topic prefix level name must be a non-empty string"),
        ("a/+", "contains '\\+'"),
        ("lab rig", "contains ' '"),
    ],
)
def test_validate_prefix_rejects(prefix: str, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        validate_prefix(prefix)
    with pytest.raises(CodecError, match=match):
        topics(prefix, "seed")


# ----------------------------------------------------------------------------- purity


def test_codec_imports_only_numpy_msgpack_stdlib_errors_and_names() -> None:
    """The codec is pure; and numpy, which only the frame and input decoders need, loads
    when they are first used, not with the package."""
    # Only modules that importing the codec adds count (site hooks load others first).
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import spikestream_client.codec\n"
        "def added():\n"
        "    return ' '.join(sorted(m for m in set(sys.modules) - before\n"
        "        if m.split('.')[0] not in sys.stdlib_module_names))\n"
        "print(added())\n"
        "from spikestream_client.codec import decode_frame, decode_input\n"
        "print(added())\n"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    package, decoders = (set(line.split()) for line in lines)

    def roots(modules: set[str]) -> set[str]:
        # msgpack's compiled extension registers Cython's own runtime modules.
        return {
            m.split(".")[0] for m in modules if not m.startswith(("_cython_", "cython_runtime"))
        }

    assert roots(package) == {"msgpack", "spikestream_client"}, package
    assert roots(decoders) == {"numpy", "msgpack", "spikestream_client"}, decoders
    ours = {m for m in decoders if m.startswith("spikestream")}
    assert ours == {
        "spikestream_client",
        "spikestream_client.errors",
        "spikestream_client.names",
        "spikestream_client.codec",
        "spikestream_client.codec.bounds",
        "spikestream_client.codec.control",
        "spikestream_client.codec.describe",
        "spikestream_client.codec.events",
        "spikestream_client.codec.frames",
        "spikestream_client.codec.payloads",
    }, ours


def _nested_event(depth: int) -> bytes:
    """An event whose ``stats`` nests so that the whole object is ``depth`` levels deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return f'{{"v": 1, "event": "stats", "wall": 1.0, "stats": {inner}}}'.encode()


def test_json_nesting_is_bounded_so_no_reader_recurses_too_deep() -> None:
    """json.loads takes ~990 levels, and Recorder.arrays() then hit RecursionError in
    json.dumps of its meta; 64 levels is the limit of every JSON object from the bus."""
    deep = decode_event(_nested_event(64))
    assert json.loads(json.dumps({"meta": {"stats": deep}})) == {"meta": {"stats": deep}}
    for depth in (65, 500):
        with pytest.raises(CodecError, match="an event JSON nests deeper than 64 levels"):
            decode_event(_nested_event(depth))
    doc = b'{"v": 1, "net": "a", "x": ' + b"[" * 70 + b"]" * 70 + b"}"
    with pytest.raises(CodecError, match="a describe document JSON nests deeper than 64"):
        decode_describe(doc)


# ---------------------------------------------------------------------- mutation audit


def test_a_prefix_of_exactly_the_limit_is_accepted() -> None:
    """MAX_PREFIX_BYTES is the longest allowed prefix, not the first refused one."""
    from spikestream_client.codec.events import MAX_PREFIX_BYTES

    head = "/".join(["p" * 99] * 10) + "/"  # levels are short, the prefix long
    prefix = head + "q" * (MAX_PREFIX_BYTES - len(head))
    assert len(prefix) == MAX_PREFIX_BYTES
    assert validate_prefix(prefix) == prefix
    with pytest.raises(CodecError, match=rf"is {MAX_PREFIX_BYTES + 1} bytes in UTF-8"):
        validate_prefix(prefix + "q")


def test_the_prefix_limit_counts_utf8_bytes_not_characters() -> None:
    """The limit protects MQTT's 65,535-byte topic, which counts bytes: 600 two-byte
    characters are 1,200 bytes, over the limit although only 600 characters long."""
    prefix = "\u00e9" * 600
    with pytest.raises(CodecError, match="is 1200 bytes in UTF-8; expected at most 1024"):
        validate_prefix(prefix)


@pytest.mark.parametrize("name", ["a\ud800", "\udfffb"])
def test_a_name_with_a_lone_surrogate_is_refused(name: str) -> None:
    """A lone surrogate has no UTF-8 form, so it cannot be part of a topic: refused here
    rather than failing inside the MQTT client at publish time."""
    with pytest.raises(CodecError, match="contains"):
        validate_name("network", name)
    with pytest.raises(CodecError, match="contains"):
        topics("spikestream", name)


@pytest.mark.parametrize("version", ["true", "1.0"])
def test_an_event_version_must_be_the_integer_1(version: str) -> None:
    """``true`` and ``1.0`` compare equal to 1 in Python; a decoder that compared only the
    value would take a boolean or a float for the version number."""
    payload = ('{"v": ' + version + ', "event": "error", "wall": 1.0}').encode()
    with pytest.raises(CodecError, match="unsupported event version"):
        decode_event(payload)


def test_an_event_of_exactly_the_limit_is_decoded() -> None:
    """The size limit is inclusive: max_bytes bytes are read, one more is refused."""
    payload = b'{"v":1,"event":"error","wall":1.0}'
    assert decode_event(payload, max_bytes=len(payload))["event"] == "error"
    with pytest.raises(PayloadTooLarge):
        decode_event(payload + b" ", max_bytes=len(payload))


@pytest.mark.parametrize("payload", [b"1", b'"error"', b"null", b"true"])
def test_an_event_that_is_json_but_not_an_object_is_a_codec_error(payload: bytes) -> None:
    """Only an object has keys to check: any other JSON value must be refused as such,
    not reach the key lookups (where it would raise AttributeError, not CodecError)."""
    with pytest.raises(CodecError, match="as a JSON object, got"):
        decode_event(payload)


def test_an_integer_wall_is_returned_as_a_float() -> None:
    """Callers do float arithmetic and JSON round trips on ``wall``: it is always a float."""
    decoded = decode_event(b'{"v":1,"event":"error","wall":1700000000}')
    assert decoded["wall"] == 1700000000.0
    assert type(decoded["wall"]) is float


def test_an_empty_input_or_probe_name_in_a_topic_is_not_a_name() -> None:
    """``<base>/in/`` names no input: it must give None, not the empty string (which a
    caller would look up or count as an input called '')."""
    t = topics("spikestream", "seed")
    assert t.input_name(f"{t.base}/in/") is None
    assert t.probe_name(f"{t.base}/out/") is None
    assert t.input_name(f"{t.base}/in/x") == "x"
