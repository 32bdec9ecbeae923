"""Input payloads: every accepted form, the sniffing rule, and every rejection reason."""

from __future__ import annotations

import json
import math
import pickle
import re
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from spikestream.errors import CodecError, PayloadTooLarge
from spikestream_client.codec import (
    InputSample,
    OversizePayload,
    PayloadRejected,
    decode_input,
    encode_input,
    is_text,
    payloads,
)

#: Input values the codec accepts (finite, within INPUT_VALUE_LIMIT).
_value = st.floats(-payloads.INPUT_VALUE_LIMIT, payloads.INPUT_VALUE_LIMIT)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def assert_sample(sample: InputSample, x: list[float], t: float | None = None) -> None:
    assert sample.x.dtype == np.float64
    assert sample.x.shape == (len(x),)
    np.testing.assert_array_equal(sample.x, x)
    assert sample.t == t


# ----------------------------------------------------------------------- accepted forms


@pytest.mark.parametrize(
    ("payload", "dim", "x", "t"),
    [
        # msgpack
        (pack(0.5), 1, [0.5], None),
        (pack(-3), 1, [-3.0], None),
        (pack(2**29), 1, [2.0**29], None),  # a uint32 (within INPUT_VALUE_LIMIT)
        (pack([0.1, 0.2]), 2, [0.1, 0.2], None),
        (pack([1, -2, 3.5]), 3, [1.0, -2.0, 3.5], None),
        (pack({"t": 1.5, "x": 0.3}), 1, [0.3], 1.5),
        (pack({"t": 2, "x": [1, 2]}), 2, [1.0, 2.0], 2.0),
        (pack({"x": [1.0, 2.0]}), 2, [1.0, 2.0], None),
        (pack({"t": None, "x": 0.25}), 1, [0.25], None),
        (msgpack.packb(0.5, use_single_float=True), 1, [0.5], None),
        # JSON
        (b"[0.1, 0.2]", 2, [0.1, 0.2], None),
        (b'{"t": 1.5, "x": 0.3}', 1, [0.3], 1.5),
        (b'{"x": [1e-3, -2E2], "t": 0}', 2, [1e-3, -200.0], 0.0),
        (b"  [1,2,3]\n", 3, [1.0, 2.0, 3.0], None),
        (b"[0.5]", 1, [0.5], None),
        # plain text, as mosquitto_pub -m sends it
        (b"0.5", 1, [0.5], None),
        (b"  -1e-3\n", 1, [-1e-3], None),
        (b"1", 1, [1.0], None),
        (b"+.5", 1, [0.5], None),
        (b"7.", 1, [7.0], None),
        (b"0.1 0.2", 2, [0.1, 0.2], None),
        (b"0.1,0.2", 2, [0.1, 0.2], None),
        (b"0.1, 0.2,\t0.3", 3, [0.1, 0.2, 0.3], None),
        (b"1\t2\r\n3", 3, [1.0, 2.0, 3.0], None),
    ],
)
def test_accepted_forms(payload: bytes, dim: int, x: list[float], t: float | None) -> None:
    assert_sample(decode_input(payload, dim), x, t)


def test_x_is_read_only() -> None:
    sample = decode_input(b"[1, 2]", 2)
    with pytest.raises(ValueError, match="read-only"):
        sample.x[0] = 3.0


def test_bytearray_and_memoryview_payloads() -> None:
    assert_sample(decode_input(bytearray(b"0.5"), 1), [0.5])
    assert_sample(decode_input(memoryview(pack([1.0, 2.0])), 2), [1.0, 2.0])


# ----------------------------------------------------------------------- sniffing rule


def test_printable_ascii_is_text_so_digit_wins_over_msgpack_fixint() -> None:
    # b"1" is also msgpack positive fixint 49: text wins.
    assert pack(49) == b"1"
    assert_sample(decode_input(b"1", 1), [1.0])
    assert is_text(b"1")


def test_fixints_outside_printable_ascii_are_msgpack() -> None:
    assert_sample(decode_input(pack(5), 1), [5.0])  # b"\x05"
    assert_sample(decode_input(pack(127), 1), [127.0])  # b"\x7f" (DEL is not printable)
    # A lone whitespace byte has no non-whitespace character, so it is not text: msgpack 9.
    assert_sample(decode_input(pack(9), 1), [9.0])
    assert not is_text(b"\t")
    assert not is_text(b"")


def test_encode_input_never_produces_text() -> None:
    for x in (49, 0, 1.0, [49, 50]):
        payload = encode_input(x)
        assert not is_text(payload)


@pytest.mark.parametrize("payload", [b"0.5", b" [1] ", b"{}", b"1,2", b"nan"])
def test_is_text_examples(payload: bytes) -> None:
    assert is_text(payload)


@pytest.mark.parametrize("payload", [b"0.5\x00", b"\xc3\xa9", b"\xcb?\xe0\x00\x00\x00\x00\x00\x00"])
def test_is_not_text_examples(payload: bytes) -> None:
    assert not is_text(payload)


# ---------------------------------------------------------------------------- rejections


def rejected(payload: bytes, dim: int, reason: str, match: str) -> PayloadRejected:
    with pytest.raises(PayloadRejected, match=match) as info:
        decode_input(payload, dim)
    assert info.value.reason == reason
    assert isinstance(info.value, CodecError)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty payload"),
        (b"hello", r"expected plain-text numbers .* got text 'hello'"),
        (b"0.5 volts", r"unexpected 'v' at character 4"),  # more tokens than dim=1
        (b"volts", r"bad token 'volts'"),
        (b"1e", r"bad token '1e'"),
        (b"1..2", r"bad token '1..2'"),
        (b"1,,2", r"misplaced comma"),
        (b",1", r"misplaced comma"),
        (b"1,", r"misplaced comma"),
        (b",", r"misplaced comma"),
        (b"1_000", r"bad token '1_000'"),  # float() would accept this; we do not
        (b"0x10", r"bad token '0x10'"),
        # Text is matched whole first: a bad token, or nan among a wrong count, is garbage
        # whatever the count (PROTOCOL.md section 4.2).
        (b"1 zz", r"plain-text numbers"),
        (b"nan 1", r"plain-text numbers"),
        (b"[1, 2", "JSON error"),
        (b"{'x': 1}", "JSON error"),
        (b"\xc1", r"not valid msgpack \(FormatError\)"),  # a msgpack error without text
        (b"\xff\xfe\x00garbage", "not valid msgpack"),
        (pack(0.5) + b"\x00", "not valid msgpack"),
        (b"\x93\x01", "not valid msgpack"),  # truncated array
        (b"\xa2\xff\xfe", "not valid msgpack"),  # invalid UTF-8 string
        (b"\x81\x92\x01\x02\x03", "not valid msgpack"),  # {[1, 2]: 3}: array as map key
    ],
)
def test_garbage(payload: bytes, match: str) -> None:
    rejected(payload, 1, "garbage", match)


@pytest.mark.parametrize(
    ("payload", "dim", "match"),
    [
        (b"0.5", 3, "expected 3 values .* got a scalar; scalars are not broadcast"),
        (pack(0.5), 2, "expected 2 values .* got a scalar"),
        (b'{"x": 1}', 2, "got a scalar"),
        (b"0.1 0.2", 3, "expected 3 values for an input of dim 3, got 2"),
        (b"1 2 3", 2, "expected 2 values for an input of dim 2, got 3"),
        (b"1, 2, 3, 4", 2, "expected 2 values for an input of dim 2, got 4"),
        (b"[1, 2, 3]", 2, "expected 2 values for an input of dim 2, got 3"),
        (pack([]), 1, "expected 1 values for an input of dim 1, got 0"),
        (pack({"t": 0.0, "x": [1.0]}), 4, "expected 4 values .* got 1"),
    ],
)
def test_wrong_dimension(payload: bytes, dim: int, match: str) -> None:
    rejected(payload, dim, "dimension", match)


@pytest.mark.parametrize(
    ("payload", "dim"),
    [
        (b"nan", 1),
        (b"NaN", 1),
        (b"-inf", 1),
        (b"Infinity", 1),
        (b"0.1 nan", 2),
        (b"1e999", 1),
        (b"[NaN]", 1),
        (b"[1, -Infinity]", 2),
        (b'{"x": Infinity}', 1),
        (b"[1e400]", 1),
        (b"[" + b"9" * 400 + b"]", 1),  # an integer beyond float64 range
        (pack(float("nan")), 1),
        (pack([1.0, float("inf")]), 2),
        (pack({"t": 0.0, "x": float("-inf")}), 1),
    ],
)
def test_non_finite(payload: bytes, dim: int) -> None:
    rejected(payload, dim, "nonfinite", "finite")


@pytest.mark.parametrize(
    "payload",
    [pack({"t": float("nan"), "x": 1.0}), b'{"t": 1e999, "x": 1}', b'{"t": NaN, "x": 1}'],
)
def test_non_finite_timestamp(payload: bytes) -> None:
    rejected(payload, 1, "nonfinite", "finite")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"true", "got bool True"),
        (b"null", "got null"),
        (b'"0.5"', "got str '0.5'"),
        (pack(True), "got bool True"),
        (pack("0.5"), "got str '0.5'"),
        (pack(b"\x00\x00"), "got bytes"),
        (pack(None), "got null"),
        (b"[true]", r"element 0 is bool True"),
        (b'[0.5, "1"]', r"element 1 is str '1'"),
        (pack([0.5, None]), r"element 1 is null"),
        (pack({"x": False}), "got bool False"),
        (b'{"t": "now", "x": 1}', "'t' must be a number or null, got str"),
        (b'{"t": true, "x": 1}', "'t' must be a number or null, got bool"),
        (b"\xc7\x00\x05", "extension type 5"),
    ],
)
def test_wrong_type(payload: bytes, match: str) -> None:
    # dim=2 so that the two-element arrays have the right length and fail on type.
    rejected(payload, 2, "type", match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"[[1]]", "nesting too deep: expected a flat array of numbers, element 0 is a list"),
        (b"[{}]", "element 0 is a dict"),
        (pack([[1.0, 2.0]]), "nesting too deep"),
        (b'{"x": {"x": 1}}', "'x' must be a number or an array, got a map"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting too deep"),
        (b"\x91" * 5000 + b"\x01", "nesting too deep"),
    ],
    ids=[
        "json-list-of-list",
        "json-list-of-map",
        "msgpack-list-of-list",
        "json-x-map",
        "json-100k-deep",
        "msgpack-5000-deep",
    ],
)
def test_too_deep(payload: bytes, match: str) -> None:
    with pytest.raises(PayloadRejected, match=match) as info:
        decode_input(payload, 1, max_bytes=1_000_000)
    assert info.value.reason == "depth"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'{"t": 1, "x": 1, "y": 2}', r"got extra keys 'y'"),
        (b'{"x": 1, "unit": "V", "a": 0}', r"got extra keys 'a', 'unit'"),
        (b'{"t": 1}', "'x', got no 'x'$"),
        (b"{}", "'x', got no 'x'$"),
        (pack({1: 0.5, "x": 1.0}), "got extra keys 1"),
        (pack({b"x": 0.5}), r"got extra keys b'x' and no 'x'$"),
    ],
)
def test_bad_map_keys(payload: bytes, match: str) -> None:
    rejected(payload, 1, "keys", match)


def test_oversize_is_refused_before_decoding() -> None:
    payload = b"\xc1" * 65537  # garbage, but size is checked first
    with pytest.raises(OversizePayload, match="65537 bytes exceeds the limit of 65536") as info:
        decode_input(payload, 1)
    assert info.value.reason == "oversize"
    assert isinstance(info.value, PayloadTooLarge)
    assert isinstance(info.value, PayloadRejected)
    with pytest.raises(PayloadTooLarge, match="exceeds the limit of 4"):
        decode_input(b"0.125", 1, max_bytes=4)
    assert_sample(decode_input(b"0.25", 1, max_bytes=4), [0.25])


def test_bad_dim_is_a_caller_error_not_a_rejection() -> None:
    for dim in (0, -1, 1.0, True):
        with pytest.raises(CodecError, match="dim must be a positive integer") as info:
            decode_input(b"0.5", dim)  # type: ignore[arg-type]
        assert not isinstance(info.value, PayloadRejected)


def test_rejections_pickle_with_their_reason() -> None:
    for exc in (PayloadRejected("bad", "dimension"), OversizePayload("big")):
        clone = pickle.loads(pickle.dumps(exc))
        assert type(clone) is type(exc)
        assert clone.reason == exc.reason
        assert str(clone) == str(exc)


# ------------------------------------------------------------------------ encode_input


@given(
    x=st.one_of(_value, st.lists(_value, min_size=1, max_size=50)),
    t=st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
def test_encode_input_round_trip(x: float | list[float], t: float | None) -> None:
    values = [x] if isinstance(x, float) else x
    sample = decode_input(encode_input(x, t), len(values))
    assert_sample(sample, values, t)


def test_encode_input_forms() -> None:
    assert msgpack.unpackb(encode_input(0.5)) == 0.5
    assert msgpack.unpackb(encode_input(np.array([1, 2], dtype=np.int32))) == [1.0, 2.0]
    assert msgpack.unpackb(encode_input([1.0], t=np.float32(2.0))) == {"t": 2.0, "x": [1.0]}


@pytest.mark.parametrize(
    ("x", "t", "reason", "match"),
    [
        (True, None, "type", "dtype bool"),
        (["a"], None, "type", "dtype <U1"),
        ([[1.0]], None, "depth", r"flat array, got shape \(1, 1\)"),
        ([], None, "dimension", "at least one value"),
        ([1.0, float("nan")], None, "nonfinite", "must be finite"),
        (1.0, float("inf"), "nonfinite", "t must be finite"),
        (1.0, True, "type", "t must be a number, got bool"),
        (1.0, "0", "type", "t must be a number, got str"),
    ],
)
def test_encode_input_rejects(x: Any, t: Any, reason: str, match: str) -> None:
    with pytest.raises(PayloadRejected, match=match) as info:
        encode_input(x, t)
    assert info.value.reason == reason


def test_json_and_msgpack_and_text_agree() -> None:
    x = [0.25, -1.5, 3.0]
    forms = [pack(x), json.dumps(x).encode(), b"0.25 -1.5 3", b"0.25,-1.5,3", encode_input(x)]
    for payload in forms:
        assert_sample(decode_input(payload, 3), x)


@pytest.mark.parametrize(
    "payload",
    [
        b" ".join([b"1"] * 32000),  # far too many values
        b" ".join([b"1"] * 32000) + b"x",  # and garbage at the end
        b"1," * 32000 + b",",
        b"," * 65000 + b"1",
        b"1" * 65000 + b"x",
        b"[" + b",".join([b"1"] * 32000) + b"]",
        msgpack.packb([1] * 60000),
        msgpack.packb({"x": [0.5] * 7000}),
    ],
    ids=[
        "text-32k-values",
        "text-32k-values-then-garbage",
        "text-32k-commas",
        "text-65k-commas-then-number",
        "text-65k-digits-then-garbage",
        "json-32k-values",
        "msgpack-60k-ints",
        "msgpack-map-7k-floats",
    ],
)
def test_per_value_python_work_is_bounded_by_dim(
    payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64 KiB payload must not cost a Python-level step per value (~10 ms of GIL on the
    I/O thread); whole-payload work is left to C. Counted, not timed, so it cannot flake."""
    calls = 0
    real_number = payloads._NUMBER
    real_is_number = payloads._is_number

    class CountingPattern:
        def fullmatch(self, text: str) -> re.Match[str] | None:
            nonlocal calls
            calls += 1
            return real_number.fullmatch(text)

    def counting_is_number(value: object) -> bool:
        nonlocal calls
        calls += 1
        return real_is_number(value)

    monkeypatch.setattr(payloads, "_NUMBER", CountingPattern())
    monkeypatch.setattr(payloads, "_is_number", counting_is_number)
    dim = 2
    with pytest.raises(PayloadRejected):
        decode_input(payload, dim)
    assert calls <= 2 * dim + 2


def test_per_value_counting_sees_the_per_value_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    # Guards the test above: with a valid payload the counters do move.
    calls = 0
    real_number = payloads._NUMBER

    class CountingPattern:
        def fullmatch(self, text: str) -> re.Match[str] | None:
            nonlocal calls
            calls += 1
            return real_number.fullmatch(text)

    monkeypatch.setattr(payloads, "_NUMBER", CountingPattern())
    assert_sample(decode_input(b"1 2 3", 3), [1.0, 2.0, 3.0])
    assert calls == 3


def test_many_extra_keys_give_a_short_message() -> None:
    payload = pack({"x": 1.0, **{f"key{i:04d}" + "z" * 40: i for i in range(1000)}})
    error = rejected(payload, 1, "keys", r"got extra keys 'key\d{4}z+, .* \(and 995 more\)")
    assert len(str(error)) < 300


@given(
    values=st.lists(_value, min_size=2, max_size=20),
    separator=st.sampled_from([" ", ",", ", ", " ,", "\t", "\n", "  ,  "]),
    form=st.sampled_from(["text", "json", "msgpack"]),
)
def test_text_json_and_msgpack_round_trip(values: list[float], separator: str, form: str) -> None:
    if form == "text":
        payload = separator.join(repr(v) for v in values).encode()
    elif form == "json":
        payload = json.dumps(values).encode()
    else:
        payload = pack(values)
    assert_sample(decode_input(payload, len(values)), values)


# ----------------------------------------------------------- the common msgpack forms

_finite = st.floats(allow_nan=False, allow_infinity=False)
_any_float = st.floats(allow_nan=True, allow_infinity=True)


def _same(a: InputSample | PayloadRejected, b: InputSample | PayloadRejected) -> None:
    if isinstance(a, PayloadRejected) or isinstance(b, PayloadRejected):
        assert type(a) is type(b)
        assert isinstance(a, PayloadRejected)
        assert isinstance(b, PayloadRejected)
        assert (str(a), a.reason) == (str(b), b.reason)
        return
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.dtype == b.x.dtype == np.float64
    assert not a.x.flags.writeable
    assert not b.x.flags.writeable
    assert a.t == b.t


def _outcome(decode: Any, payload: bytes, dim: int) -> InputSample | PayloadRejected:
    try:
        return decode(payload, dim)
    except PayloadRejected as err:
        return err


def _general(payload: bytes, dim: int) -> InputSample:
    return payloads._decode_any(payload, dim, payloads.DEFAULT_MAX_INPUT_BYTES)


@given(
    x=st.lists(_any_float, min_size=1, max_size=17) | _any_float,
    t=st.none() | _any_float,
    off=st.sampled_from([0, 0, 0, 1, -1]),
)
# Non-finite values inside otherwise plain payloads, always tried (random draws rarely
# combine one with the right dimension).
@example(x=[1.0, math.nan], t=None, off=0)
@example(x=-math.inf, t=None, off=0)
@example(x=[math.inf], t=1.0, off=0)
@example(x=1.0, t=math.inf, off=0)
@example(x=[1.0, 2.0], t=math.nan, off=0)
def test_the_common_forms_decode_as_the_general_path_does(
    x: float | list[float], t: float | None, off: int
) -> None:
    """float64 scalars, arrays and {t, x} maps, finite or not, mostly of the right
    dimension, packed as encode_input() and msgpack do: the shortcut and the general
    path give the same sample or the same rejection."""
    dim = max(1, (1 if isinstance(x, float) else len(x)) + off)
    payload = pack(x if t is None else {"t": t, "x": x})
    _same(_outcome(decode_input, payload, dim), _outcome(_general, payload, dim))


@given(
    x=st.lists(_value, min_size=1, max_size=15),
    t=st.none() | _finite,
    scalar=st.booleans(),
)
def test_encode_inputs_output_takes_the_shortcut(
    x: list[float], t: float | None, scalar: bool
) -> None:
    """What encode_input() writes (up to 15 values) is read by the shortcut, so the test
    above compares two paths and not one with itself."""
    value: float | list[float] = x[0] if scalar else x
    dim = 1 if scalar else len(x)
    sample = payloads._plain_sample(encode_input(value, t), dim)
    assert sample is not None
    assert_sample(sample, [x[0]] if scalar else x, t)


@pytest.mark.parametrize(
    "payload",
    [
        pack([1.0, 2.0])[:-1] + b"\x00",  # still 19 bytes, still float64: the shortcut
        bytes([0x92, 0xCB]) + bytes(8) + bytes([0xCA]) + bytes(8),  # float32 tag
        pack({"x": [1.0, 2.0], "t": 1.0}),  # keys in the other order
        pack({"t": 1.0, "x": [1.0, 2.0], "y": 3}),  # an extra key
        pack({"t": 1.0, "x": [1.0, 2.0]}) + b"\x00",  # trailing data
        pack([1, 2]),  # integers
        pack([1.0, 2.0]) + b"\xc0",  # trailing nil
    ],
)
def test_near_misses_of_the_common_forms_decode_as_the_general_path_does(
    payload: bytes,
) -> None:
    _same(_outcome(decode_input, payload, 2), _outcome(_general, payload, 2))


# ---------------------------------------------------------------------- mutation audit


@pytest.mark.parametrize(
    ("payload", "dim"),
    [
        (b",1 2", 2),  # a leading comma
        (b"1 2,", 2),  # a trailing comma
        (b"1,,2 3", 3),  # two commas in a row
        (b"1 , , 2 3", 3),
    ],
)
def test_misplaced_commas_are_refused_when_the_count_fits(payload: bytes, dim: int) -> None:
    """With dim > 1 these pass the whole-text count check (fewer commas than numbers, at
    most dim numbers) and reach the per-token loop: only its comma checks stop a stray
    comma from being read as a separator and the payload from being accepted."""
    rejected(payload, dim, "garbage", r"\(misplaced comma\)")


@pytest.mark.parametrize(
    "payload",
    [
        pack([1.0, 2.0, "a"]),
        pack([1.0, 2.0, [3.0]]),
        b'[1, 2, "a"]',
    ],
)
def test_a_too_long_array_is_a_dimension_error_whatever_its_items(payload: bytes) -> None:
    """The length is checked before the items, so that one element too many is reported
    as such (and the per-item work stays O(dim)), not as a bad element past the end."""
    rejected(payload, 2, "dimension", "expected 2 values for an input of dim 2, got 3")


def test_a_timestamp_integer_beyond_float_range_is_nonfinite() -> None:
    """JSON integers are unbounded: ``t`` of 400 digits does not fit a float64 and must
    be refused like 1e999, not accepted as some other time."""
    rejected(b'{"t": 1' + b"0" * 400 + b', "x": 1}', 1, "nonfinite", "'t' must be finite")


def test_an_empty_fixarray_header_with_dim_16_takes_the_general_path() -> None:
    """0x90 | 16 is 0x90, the empty fixarray: for dim 16 the shortcut's header test alone
    cannot tell it from a 16-value fixarray, so the shortcut must stop at dim 15 (it has
    no tag table past that) and leave such a payload to the general decoder."""
    payload = b"\x90" + b"\xcb" * 144  # 145 = 1 + 9 * 16 bytes
    rejected(payload, 16, "garbage", "not valid msgpack")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"x": 1, "x": 2}',
        b'{"t": 1.0, "x": 1, "t": 2.0}',
        b"\x82\xa1x\x01\xa1x\x02",  # msgpack {"x": 1, "x": 2}
    ],
)
def test_a_key_given_twice_is_refused(payload: bytes) -> None:
    """JSON and msgpack readers keep different copies of a repeated key, so which value
    the sender meant is unknown: the map is refused rather than one copy guessed."""
    rejected(payload, 1, "keys", "more than once")


def test_a_false_or_zero_timestamp_is_still_checked_and_typed() -> None:
    """``false`` and ``0`` are falsy: a timestamp check written as ``if t:`` would let a
    boolean through and leave an integer 0 untyped; both must be handled like any t."""
    rejected(b'{"t": false, "x": 1}', 1, "type", "'t' must be a number or null, got bool")
    sample = decode_input(b'{"t": 0, "x": 1}', 1)
    assert sample.t == 0.0
    assert type(sample.t) is float


def test_msgpack_of_many_arrays_and_maps_is_refused_as_it_is_built() -> None:
    """An empty msgpack array is one byte and a 56-byte list once decoded: 64 KiB of them,
    the default input limit, took 3.6 MB before the input's shape was checked, and a
    larger ``--max-input-bytes`` let it grow to gigabytes. More than 64 arrays and maps
    are refused as they are built (reason ``depth``, as nesting is the only way to them),
    for inputs (msgpack and JSON, whose brackets are counted first) and control commands."""
    import tracemalloc

    from spikestream_client.codec import decode_control
    from spikestream_client.codec.bounds import MAX_PAYLOAD_CONTAINERS

    assert MAX_PAYLOAD_CONTAINERS == 64
    many = pack([[]] * 64)  # 65 with the outer array
    with pytest.raises(PayloadRejected, match="more than 64 arrays and maps") as info:
        decode_input(many, 1)
    assert info.value.reason == "depth"
    with pytest.raises(PayloadRejected, match="more than 64 arrays and maps"):
        decode_input(pack({"x": [{} for _ in range(64)]}), 1)  # maps count as well
    with pytest.raises(PayloadRejected, match="nesting too deep"):  # refused, not shaped
        decode_input(pack([[]] * 63), 63)
    with pytest.raises(PayloadRejected, match="control msgpack holds more than 64"):
        decode_control(pack({"cmd": "status", "x": [[]] * 64}))
    with pytest.raises(PayloadRejected, match="JSON input opens 65 arrays and maps") as info:
        decode_input(b"[" + b"[]," * 63 + b"[]]", 1)  # the JSON path counts them too
    assert info.value.reason == "depth"
    with pytest.raises(PayloadRejected, match="expected 1 values for an input of dim 1"):
        decode_input(b"[" + b"[]," * 62 + b"[]]", 1)  # 64: parsed, then shaped
    hostile = b"\xdc\x04\x00" + (b"\xdc\x04\x00" + b"\x90" * 1024) * 1024  # 1 MiB
    tracemalloc.start()
    try:
        with pytest.raises(PayloadRejected, match="arrays and maps"):
            decode_input(hostile, 1, max_bytes=len(hostile))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # One copy of the payload (the text sniffing's), not 56 bytes per byte (1M lists).
    assert peak < 2 * len(hostile), peak
