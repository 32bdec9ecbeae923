"""Input payloads: the values arriving on ``<prefix>/<net>/in/<input>``.

Three encodings are accepted, so that a robot's msgpack publisher, a browser's JSON and
``mosquitto_pub -m 0.5`` all work:

* msgpack: a number, an array of numbers, or a map ``{"t": float, "x": number | array}``;
* JSON of the same three shapes (``0.5``, ``[0.1, 0.2]``, ``{"t": 1.5, "x": 0.3}``);
* plain text numbers separated by whitespace and/or commas (``0.5``, ``  -1e-3\\n``,
  ``0.1 0.2``, ``0.1,0.2``).

**Sniffing rule.** A payload is *text* when every byte is printable ASCII (0x20-0x7E) or
ASCII whitespace (0x09-0x0D) and at least one byte is not whitespace; text starting with
``[``, ``{`` or ``"`` (or the literals ``true``/``false``/``null``) is parsed as JSON,
any other text as plain numbers. Every other payload is msgpack. msgpack arrays, maps
and floats start with a byte >= 0x80, so they can never look like text; the only
overlap is a one-byte msgpack positive fixint from 32 to 126, which text wins: ``b"1"``
is the number 1, not msgpack 49. :func:`encode_input` always sends float64, so it never
produces such a byte.

Rejections raise :class:`PayloadRejected` (a :class:`~spikestream.errors.CodecError`)
whose ``reason`` is a short code the service counts per input: ``garbage``, ``type``,
``dimension``, ``nonfinite``, ``depth``, ``keys``, and ``oversize`` (raised as
:class:`OversizePayload`, also a :class:`~spikestream.errors.PayloadTooLarge`, before
any decoding).
"""

from __future__ import annotations

import json
import math
import re
import string
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import msgpack
import numpy as np
import numpy.typing as npt

from spikestream_client.codec.bounds import (
    DEFAULT_MAX_INPUT_BYTES,
    INPUT_VALUE_LIMIT,
    MAX_PAYLOAD_CONTAINERS,
    OversizePayload,
    PayloadRejected,
    RejectReason,
    describe_keys,
    dropped_unread,
    unique_map,
    unpack_limited,
)
from spikestream_client.errors import CodecError

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "INPUT_VALUE_LIMIT",
    "InputSample",
    "OversizePayload",
    "PayloadRejected",
    "RejectReason",
    "decode_input",
    "dropped_unread",
    "encode_input",
    "is_text",
]


@dataclass(frozen=True, slots=True, eq=False)
class InputSample:
    """One decoded input value.

    Attributes:
        x: Read-only float64 array of shape ``(dim,)``, all finite.
        t: The sender's timestamp in seconds, if it sent one (map form), else None.
            The codec only checks it is finite; its meaning is the runtime's business.
    """

    x: npt.NDArray[np.float64]
    t: float | None = None


# Printable ASCII plus the ASCII whitespace bytes, for the text sniff.
_TEXT_BYTES: Final = bytes(range(0x20, 0x7F)) + b"\t\n\v\f\r"
_JSON_START: Final = frozenset('[{"')
_JSON_LITERALS: Final = frozenset({"true", "false", "null"})
# Plain-text numbers. The atomic group (?>...) makes a number match in one way only, so
# a failing token never backtracks. Whole-payload work is done with C-level str methods
# (replace, split, count, translate); the per-token Python loop runs only once the
# token count is known to be at most dim, so a 64 KiB payload costs about 1 ms at most.
_NUMBER: Final = re.compile(r"[+-]?(?>\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NONFINITE: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_NUMBER_CHARS: Final = "0123456789+-.eE," + string.whitespace
_DELETE_NUMBER_CHARS: Final = str.maketrans("", "", _NUMBER_CHARS)
_BAD_CHAR: Final = re.compile(f"[^{re.escape(_NUMBER_CHARS)}]")
_MAP_KEYS: Final = frozenset({"t", "x"})


class _NonFiniteConstant(Exception):
    """Raised from json's parse_constant hook for NaN/Infinity/-Infinity."""


def _reject(message: str, reason: RejectReason) -> NoReturn:
    raise PayloadRejected(message, reason)


def _reject_ext(code: int, data: bytes) -> NoReturn:
    _reject(f"msgpack extension type {code} is not allowed in an input", "type")


def _reject_constant(name: str) -> NoReturn:
    raise _NonFiniteConstant(name)


def is_text(payload: bytes) -> bool:
    """True when ``payload`` is treated as text (JSON or plain numbers); see module doc."""
    # translate(None, delete) drops every text byte in one C pass; anything left over
    # is binary. isspace() is False for b"", and True only if all bytes are whitespace.
    return bool(payload) and not payload.isspace() and not payload.translate(None, _TEXT_BYTES)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value: object) -> bool:
    # Exact types: bool is an int subclass and must not pass as 1/0.
    return type(value) is float or type(value) is int


def _parse_text_numbers(text: str, dim: int) -> float | list[float]:
    """Parse stripped plain text into one number or a list of exactly ``dim`` numbers.

    Grammar: numbers separated by whitespace or by one comma (with optional spaces).
    """
    shown = text if len(text) <= 40 else text[:37] + "..."
    # Commas become tokens of their own so that ",," and a leading or trailing comma
    # can be told apart from a single separator.
    words = text.replace(",", " , ").split()
    commas = text.count(",")
    count = len(words) - commas
    if count > max(dim, 1) or commas >= count:
        # Too many tokens or commas for any valid payload: decide without a per-token
        # loop. Well-formed characters mean the sender sent the wrong number of values.
        if commas < count and not text.translate(_DELETE_NUMBER_CHARS):
            _reject(f"expected {dim} values for an input of dim {dim}, got {count}", "dimension")
        bad = _BAD_CHAR.search(text)
        detail = (
            f"unexpected {bad.group()!r} at character {bad.start()}"
            if bad is not None
            else "misplaced comma"
        )
        _reject(
            f"expected plain-text numbers separated by spaces or commas, a JSON value or "
            f"msgpack; got text {shown!r} ({detail})",
            "garbage",
        )
    numbers: list[float] = []
    after_comma = True  # a comma may not come first
    for word in words:  # at most 2*dim words here
        if word == ",":
            if after_comma:
                _reject(
                    f"expected plain-text numbers separated by spaces or commas; got text "
                    f"{shown!r} (misplaced comma)",
                    "garbage",
                )
            after_comma = True
        elif _NUMBER.fullmatch(word):
            numbers.append(float(word))
            after_comma = False
        elif _NONFINITE.fullmatch(word):
            _reject(f"input values must be finite, got {word!r}", "nonfinite")
        else:
            _reject(
                f"expected plain-text numbers separated by spaces or commas, a JSON value or "
                f"msgpack; got text {shown!r} (bad token {word[:20]!r})",
                "garbage",
            )
    if after_comma:
        _reject(
            f"expected plain-text numbers separated by spaces or commas; got text {shown!r} "
            "(misplaced comma)",
            "garbage",
        )
    if len(numbers) == 1:
        # A single number is a scalar, so the no-broadcast rule applies to it.
        return numbers[0]
    if len(numbers) != dim:
        _reject(f"expected {dim} values for an input of dim {dim}, got {len(numbers)}", "dimension")
    return numbers


def _values(obj: object, dim: int) -> npt.NDArray[np.float64]:
    """Turn the ``x`` part of a payload into a float64 ``(dim,)`` array or reject it."""
    if _is_number(obj):
        if dim != 1:
            _reject(
                f"expected {dim} values (an array) for an input of dim {dim}, got a "
                "scalar; scalars are not broadcast",
                "dimension",
            )
        items: Sequence[object] = [obj]
    elif type(obj) is list:
        items = obj
        if len(items) > dim:
            # Too long is wrong whatever the items are; rejecting before the per-item
            # loop bounds the Python work to O(dim) for any payload.
            _reject(
                f"expected {dim} values for an input of dim {dim}, got {len(items)}", "dimension"
            )
        for i, item in enumerate(items):
            if not _is_number(item):
                if type(item) is list or type(item) is dict:
                    _reject(
                        f"nesting too deep: expected a flat array of numbers, element "
                        f"{i} is a {_type_name(item)}",
                        "depth",
                    )
                _reject(
                    f"expected numbers, element {i} is {_type_name(item)} {item!r:.40}",
                    "type",
                )
        if len(items) != dim:
            _reject(
                f"expected {dim} values for an input of dim {dim}, got {len(items)}", "dimension"
            )
    elif type(obj) is dict:
        _reject("nesting too deep: 'x' must be a number or an array, got a map", "depth")
    else:
        _reject(
            f"expected a number, an array of numbers or a map {{t, x}}, got "
            f"{_type_name(obj)} {obj!r:.40}",
            "type",
        )
    try:
        x = np.array(items, dtype=np.float64)
    except OverflowError:
        # Integers beyond float64 range (possible in JSON) are as unusable as inf.
        _reject("input values must be finite, got an integer beyond float64 range", "nonfinite")
    if not np.isfinite(x).all():
        _reject(f"input values must be finite, got {x.tolist()!r:.80}", "nonfinite")
    if (big := float(np.abs(x).max(initial=0.0))) > INPUT_VALUE_LIMIT:
        _reject(
            f"input values must lie within +-{INPUT_VALUE_LIMIT:g}, got one of magnitude {big!r}",
            "range",
        )
    x.flags.writeable = False
    return x


def _sample(obj: object, dim: int) -> InputSample:
    if type(obj) is not dict:
        return InputSample(_values(obj, dim))
    keys = set(obj)
    if not keys <= _MAP_KEYS or "x" not in keys:
        extra = keys - _MAP_KEYS
        said = [f"extra keys {describe_keys(extra)}"] if extra else []
        said += [] if "x" in keys else ["no 'x'"]
        _reject(
            f"an input map takes the keys 't' (optional) and 'x', got {' and '.join(said)}",
            "keys",
        )
    t = obj.get("t")
    if t is not None:
        if not _is_number(t):
            _reject(f"'t' must be a number or null, got {_type_name(t)} {t!r:.40}", "type")
        try:
            t = float(t)
        except OverflowError:
            t = float("inf")
        if not np.isfinite(t):
            _reject(f"'t' must be finite, got {t!r}", "nonfinite")
    return InputSample(_values(obj["x"], dim), t)


def _decode_json(text: str) -> object:
    # Counted before parsing, as the msgpack unpacker counts while it builds: "[]," is a
    # 64-byte list for 3 bytes of text. A valid input holds no text but its keys, so a
    # bracket inside a string is refused anyway.
    if (brackets := text.count("[") + text.count("{")) > MAX_PAYLOAD_CONTAINERS:
        _reject(
            f"nesting too deep: JSON input opens {brackets} arrays and maps, more than "
            f"{MAX_PAYLOAD_CONTAINERS}; expected a number, an array of numbers or a map",
            "depth",
        )
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=unique_map)
    except PayloadRejected:
        raise
    except _NonFiniteConstant as exc:
        _reject(f"input values must be finite, got JSON {exc.args[0]}", "nonfinite")
    except RecursionError:
        _reject("nesting too deep: JSON input nests beyond the parser's limit", "depth")
    except ValueError as exc:
        # JSONDecodeError, and ValueError for integers with more than 4300 digits.
        _reject(f"expected JSON, plain-text numbers or msgpack; JSON error: {exc}", "garbage")


def _decode_msgpack(payload: bytes, max_bytes: int) -> object:
    return unpack_limited(
        payload,
        max_bytes,
        what="input",
        expected="msgpack, JSON or plain-text numbers",
        ext_hook=_reject_ext,
    )


# The common msgpack inputs, as encode_input() and most senders write them: float64
# values (0xCB), bare for dim 1 or in a fixarray (up to 15), optionally in a map whose
# first key is "t" (a float64) and second "x". Read with one struct call instead of the
# general unpacker and per-item checks; anything else, or a value not finite or beyond
# INPUT_VALUE_LIMIT, takes the general path, which also words the rejection.
_FLOAT64: Final = 0xCB
_MAX_FIXARRAY: Final = 15
_FLOATS: Final = tuple(
    struct.Struct(">x" + "xd" * n).unpack_from for n in range(_MAX_FIXARRAY + 1)
)  # the fixarray byte, then (0xCB, value) n times
_TAGS: Final = tuple(bytes((_FLOAT64,)) * n for n in range(_MAX_FIXARRAY + 1))
_MAP_TX: Final = b"\x82\xa1t\xcb"  # {"t": <float64>, "x": ...
_KEY_X: Final = b"\xa1x"
_DOUBLE: Final = struct.Struct(">d").unpack_from  # one big-endian float64


def _plain_values(payload: bytes, start: int, dim: int) -> npt.NDArray[np.float64] | None:
    """``payload[start:]`` as ``dim`` finite float64 values if it is exactly a bare
    float64 (dim 1) or a fixarray of ``dim`` float64, else None."""
    size = len(payload) - start
    if dim == 1 and size == 9 and payload[start] == _FLOAT64:
        values: tuple[float, ...] = _DOUBLE(payload, start + 1)
    elif (
        dim <= _MAX_FIXARRAY
        and size == 1 + 9 * dim
        and payload[start] == 0x90 | dim
        and payload[start + 1 :: 9] == _TAGS[dim]
    ):
        values = _FLOATS[dim](payload, start)
    else:
        return None
    for value in values:
        if not -INPUT_VALUE_LIMIT <= value <= INPUT_VALUE_LIMIT:  # NaN fails both
            return None
    x = np.array(values, dtype=np.float64)
    x.flags.writeable = False
    return x


def _plain_sample(payload: bytes, dim: int) -> InputSample | None:
    """The sample of a common msgpack input (see above), or None for the general path."""
    if payload.startswith(_MAP_TX) and payload.startswith(_KEY_X, 12):
        t = _DOUBLE(payload, 4)[0]
        x = _plain_values(payload, 14, dim) if math.isfinite(t) else None
        return None if x is None else InputSample(x, t)
    x = _plain_values(payload, 0, dim)
    return None if x is None else InputSample(x)


def decode_input(
    payload: bytes | bytearray | memoryview,
    dim: int,
    *,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> InputSample:
    """Decode one input payload into a vector of ``dim`` floats.

    Args:
        payload: The raw MQTT payload.
        dim: The input's dimension (>= 1). A bare scalar is accepted only for ``dim == 1``.
        max_bytes: Size limit in bytes, checked before any decoding.

    Returns:
        The sample: ``x`` float64 of shape ``(dim,)``, ``t`` in seconds or None.

    Raises:
        OversizePayload: ``len(payload) > max_bytes`` (reason ``oversize``).
        PayloadRejected: The payload is garbage, has the wrong type, dimension or
            nesting, contains NaN/inf, or a map with keys other than ``t`` and ``x``.
        CodecError: ``dim`` is not a positive integer (a caller bug, not a bad payload).
    """
    if type(dim) is not int or dim < 1:
        raise CodecError(f"dim must be a positive integer, got {dim!r}")
    size = len(payload)
    if size > max_bytes:
        raise OversizePayload(f"input payload of {size} bytes exceeds the limit of {max_bytes}")
    if not isinstance(payload, bytes):
        payload = bytes(payload)
    plain = _plain_sample(payload, dim)
    if plain is not None:
        return plain
    return _decode_any(payload, dim, max_bytes)


def _decode_any(payload: bytes, dim: int, max_bytes: int) -> InputSample:
    """:func:`decode_input` for every encoding, after the size check."""
    if not payload:
        _reject("expected a number, an array or a map {t, x}; got an empty payload", "garbage")
    if is_text(payload):
        text = payload.decode("ascii").strip()
        if text[0] in _JSON_START or text in _JSON_LITERALS:
            return _sample(_decode_json(text), dim)
        return _sample(_parse_text_numbers(text, dim), dim)
    return _sample(_decode_msgpack(payload, max_bytes), dim)


def encode_input(
    x: float | Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]],
    t: float | None = None,
) -> bytes:
    """Encode an input value as msgpack, for clients.

    Args:
        x: A number (for a 1-D input) or a flat sequence/array of numbers, length ``dim``.
        t: Optional sender timestamp in seconds; if given, the map form ``{t, x}`` is sent.

    Returns:
        msgpack bytes. Numbers are always float64, so the payload never starts with an
        ASCII byte and cannot be mistaken for text.

    Raises:
        PayloadRejected: ``x`` is empty, nested, non-numeric, boolean, non-finite or
            beyond :data:`INPUT_VALUE_LIMIT`, or ``t`` is not a finite number.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        _reject(f"x must be numbers, got an array of dtype {arr.dtype}", "type")
    if arr.ndim > 1:
        _reject(f"x must be a number or a flat array, got shape {arr.shape}", "depth")
    if arr.size == 0:
        _reject("x must hold at least one value, got an empty array", "dimension")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        _reject(f"x must be finite, got {arr.tolist()!r:.80}", "nonfinite")
    if (big := float(np.abs(arr).max())) > INPUT_VALUE_LIMIT:  # every decoder refuses it
        _reject(f"x must lie within +-{INPUT_VALUE_LIMIT:g}, got one of magnitude {big!r}", "range")
    value: float | list[float] = float(arr) if arr.ndim == 0 else arr.tolist()
    if t is None:
        return msgpack.packb(value, use_bin_type=True)
    t_obj: object = t  # callers may pass numpy scalars despite the annotation
    if isinstance(t_obj, bool) or not isinstance(t_obj, int | float | np.integer | np.floating):
        _reject(f"t must be a number, got {_type_name(t_obj)}", "type")
    t_s = float(t_obj)
    if not np.isfinite(t_s):
        _reject(f"t must be finite, got {t_s!r}", "nonfinite")
    return msgpack.packb({"t": t_s, "x": value}, use_bin_type=True)
