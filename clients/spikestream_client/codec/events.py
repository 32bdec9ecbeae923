"""Events, status payloads and topic names.

Events (errors, rejected inputs, replies to control commands) go to
``<prefix>/<net>/events`` as one JSON object each, so that ``mosquitto_sub`` users can
read them: ``{"v": 1, "event": KIND, "wall": UNIX_SECONDS, ...fields}``.

The retained status on ``<prefix>/<net>/status`` is the plain text ``online`` or
``offline`` (:data:`STATUS_ONLINE`, :data:`STATUS_OFFLINE`); ``offline`` is also the
MQTT last will.

Topic names are built by :func:`topics`; every name that becomes a topic level goes
through :func:`validate_name`, so that a network called ``a/b`` or ``#`` cannot publish
into, or subscribe to, another network's topics.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from spikestream_client.errors import CodecError, PayloadTooLarge
from spikestream_client.names import reserved_network

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_PREFIX",
    "EVENT_VERSION",
    "MAX_PREFIX_BYTES",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "Topics",
    "decode_event",
    "encode_event",
    "topics",
    "validate_name",
    "validate_prefix",
]

EVENT_VERSION: Final = 1
"""Value of the ``v`` key of every event."""

STATUS_ONLINE: Final = b"online"
"""Retained status payload while the service runs."""

STATUS_OFFLINE: Final = b"offline"
"""Retained status payload after a clean stop, and the MQTT last will."""

DEFAULT_PREFIX: Final = "spikestream"
"""Default first topic level(s)."""

MAX_PREFIX_BYTES: Final = 1024
"""Longest topic prefix, in UTF-8 bytes. MQTT caps a topic at 65,535 bytes, and a prefix
appears twice in a Home Assistant discovery topic (in its node and object ids); a prefix
of 70,000 characters crashed the service at connect, and one of 40,000 failed every
discovery config with a traceback. A real prefix is a few short levels."""

DEFAULT_MAX_EVENT_BYTES: Final = 65536
"""Default size limit of :func:`decode_event`, in bytes."""

# MQTT wildcards and the level separator would change what a topic means; whitespace and
# control characters (NUL is forbidden by MQTT) make topics impossible to type in a
# shell; lone surrogates cannot be encoded as UTF-8 at all.
_BAD_NAME_CHAR: Final = re.compile(r"[+#/\s\x00-\x1f\x7f\ud800-\udfff]")
_ALLOWED_NAME: Final = "a non-empty string without '+', '#', '/', whitespace or control characters"
_RESERVED_EVENT_KEYS: Final = frozenset({"v", "event"})


def _fail(message: str) -> NoReturn:
    raise CodecError(message)


def validate_name(kind: str, name: object) -> str:
    """Check that ``name`` can be used as one MQTT topic level and return it.

    Args:
        kind: What the name is, for the message: ``"network"``, ``"input"``, ``"probe"``.
        name: The candidate name.

    Raises:
        CodecError: ``name`` is not a string, is empty, or contains ``+``, ``#``, ``/``,
            whitespace, NUL or another control character.
    """
    if type(name) is not str:
        _fail(f"{kind} name must be {_ALLOWED_NAME}; got {type(name).__name__} {name!r:.60}")
    if not name:
        _fail(f"{kind} name must be {_ALLOWED_NAME}; got an empty string")
    bad = _BAD_NAME_CHAR.search(name)
    if bad is not None:
        _fail(
            f"{kind} name {name!r:.80} contains {bad.group()!r} at position {bad.start()}; "
            f"expected {_ALLOWED_NAME}"
        )
    return name


def validate_prefix(prefix: object) -> str:
    """Check a topic prefix (one or more ``/``-separated levels) and return it.

    Each level must pass :func:`validate_name`; the prefix must not start with ``$``,
    which brokers reserve for their own topics (``$SYS``), nor pass
    :data:`MAX_PREFIX_BYTES`.

    Raises:
        CodecError: The prefix is empty, has an empty level or a bad character, or is
            too long.
    """
    if type(prefix) is not str or not prefix:
        _fail(f"topic prefix must be one or more '/'-separated levels, got {prefix!r:.60}")
    if prefix.startswith("$"):
        _fail(f"topic prefix {prefix!r:.60} must not start with '$' (reserved by brokers)")
    for level in prefix.split("/"):
        validate_name("topic prefix level", level)
    size = len(prefix.encode("utf-8"))  # the levels hold no lone surrogate: encodable
    if size > MAX_PREFIX_BYTES:
        _fail(
            f"topic prefix {prefix!r:.60}... is {size} bytes in UTF-8; expected at most "
            f"{MAX_PREFIX_BYTES}"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one network. Build it with :func:`topics`, which validates.

    Attributes:
        prefix: First topic level(s), e.g. ``"spikestream"``.
        net: Network name.
    """

    prefix: str
    net: str

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)
        validate_name("network", self.net)
        why = reserved_network(self.net)
        if why is not None:
            _fail(f"network name {why}")

    @property
    def base(self) -> str:
        """``<prefix>/<net>``."""
        return f"{self.prefix}/{self.net}"

    def input(self, name: str) -> str:
        """``<prefix>/<net>/in/<name>``: where input ``name`` is published."""
        return f"{self.base}/in/{validate_name('input', name)}"

    def out(self, probe: str) -> str:
        """``<prefix>/<net>/out/<probe>``: where the frames of ``probe`` are published."""
        return f"{self.base}/out/{validate_name('probe', probe)}"

    @property
    def inputs_filter(self) -> str:
        """``<prefix>/<net>/in/+``: subscription filter for every input."""
        return f"{self.base}/in/+"

    @property
    def outs_filter(self) -> str:
        """``<prefix>/<net>/out/+``: subscription filter for every probe."""
        return f"{self.base}/out/+"

    @property
    def status(self) -> str:
        """``<prefix>/<net>/status``: retained ``online``/``offline``."""
        return f"{self.base}/status"

    @property
    def control(self) -> str:
        """``<prefix>/<net>/control``: commands to the service."""
        return f"{self.base}/control"

    @property
    def events(self) -> str:
        """``<prefix>/<net>/events``: JSON events from the service."""
        return f"{self.base}/events"

    @property
    def stats(self) -> str:
        """``<prefix>/<net>/stats``: JSON statistics from the service, about once a second."""
        return f"{self.base}/stats"

    @property
    def describe(self) -> str:
        """``<prefix>/<net>/describe``: the retained JSON description of the network."""
        return f"{self.base}/describe"

    def text(self, probe: str) -> str:
        """``<prefix>/<net>/text/<probe>``: the latest value of ``probe`` as plain text
        (the service's ``--text`` bridge)."""
        return f"{self.base}/text/{validate_name('probe', probe)}"

    def input_name(self, topic: str) -> str | None:
        """The input name if ``topic`` is one of this network's input topics, else None."""
        head = f"{self.base}/in/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and not _BAD_NAME_CHAR.search(name) else None

    def probe_name(self, topic: str) -> str | None:
        """The probe name if ``topic`` is one of this network's output topics, else None."""
        head = f"{self.base}/out/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and not _BAD_NAME_CHAR.search(name) else None


def topics(prefix: str, net: str) -> Topics:
    """The topics of network ``net`` under ``prefix`` (normally :data:`DEFAULT_PREFIX`).

    Raises:
        CodecError: ``prefix`` or ``net`` is not a valid topic level (see
            :func:`validate_name`).
    """
    return Topics(prefix, net)


def _json_default(value: object) -> Any:
    # The service passes numpy scalars and small arrays around; make them JSON values.
    # A process that never loaded numpy holds no numpy value, and the codec does not
    # load it for this check (the tools that only list or control networks never do).
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_event(kind: str, /, *, wall: float | None = None, **fields: object) -> bytes:
    """Encode an event as one compact JSON object.

    Args:
        kind: The event kind, e.g. ``"input_rejected"``, ``"error"``, ``"control"``.
        wall: Unix time in seconds; defaults to now (``time.time()``).
        **fields: Extra JSON-serialisable keys (numpy scalars and arrays are converted).
            ``v`` and ``event`` are reserved.

    Returns:
        UTF-8 JSON bytes ``{"v": 1, "event": kind, "wall": wall, **fields}``.

    Raises:
        CodecError: ``kind`` is empty or not a string, a field uses a reserved key, or a
            value is not JSON-serialisable or not finite.
    """
    if type(kind) is not str or not kind:
        _fail(f"event kind must be a non-empty string, got {kind!r:.60}")
    clash = _RESERVED_EVENT_KEYS.intersection(fields)
    if clash:
        _fail(f"event fields must not use the reserved keys {sorted(clash)}")
    obj: dict[str, object] = {
        "v": EVENT_VERSION,
        "event": kind,
        "wall": time.time() if wall is None else wall,
    }
    obj.update(fields)
    try:
        # allow_nan=False: NaN is not JSON and would break browser and jq consumers.
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        _fail(f"cannot encode event {kind!r} as JSON: {exc}")
    return text.encode()


def load_json_object(
    payload: bytes | bytearray | memoryview, *, max_bytes: int, what: str
) -> dict[str, Any]:
    """One UTF-8 JSON object from the bus, size-limited and checked (events, describe).

    Raises:
        PayloadTooLarge: ``len(payload) > max_bytes`` (checked before parsing).
        CodecError: Not UTF-8, not JSON (NaN and infinities included, and numbers beyond
            float64's range), nested too deep,
            or not an object; the message starts with ``what``.
    """
    size = len(payload)
    if size > max_bytes:
        raise PayloadTooLarge(f"{what} of {size} bytes exceeds the limit of {max_bytes}")

    def reject_constant(name: str) -> NoReturn:
        _fail(f"{what} JSON contains {name}, which is not valid JSON")

    def finite(text: str) -> float:
        # 1e999 is valid JSON but infinite as a float64: passed on, it came out again
        # as "Infinity" (ls --json, a recording's meta), which is not JSON.
        value = float(text)
        if not math.isfinite(value):
            _fail(f"{what} JSON contains the number {text:.40}, beyond float64's range")
        return value

    try:
        obj = json.loads(
            bytes(payload).decode("utf-8"), parse_constant=reject_constant, parse_float=finite
        )
    except CodecError:
        raise
    except RecursionError:
        _fail(f"{what} JSON nests too deep")
    except ValueError as exc:
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        _fail(f"expected {what} as a UTF-8 JSON object: {exc}")
    if type(obj) is not dict:
        _fail(f"expected {what} as a JSON object, got {type(obj).__name__}")
    depth = _depth(obj, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        _fail(f"{what} JSON nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects")
    return obj


MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of arrays and objects accepted in an event, stats or describe
document. json.loads accepts ~1000 levels, but whoever handles the object next (the
recorder's ``json.dumps`` into ``meta``, a deepcopy, a recursive walk) may recurse
deeper per level and hit RecursionError; no document of the service nests past 4."""


def _depth(obj: object, limit: int) -> int:
    """Nesting depth of ``obj`` (a scalar is 0, ``[]`` is 1), counted without recursion
    and without looking deeper than ``limit + 1``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(obj, 0)]
    while stack:
        item, level = stack.pop()
        if type(item) is dict:
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if level > limit:
            return level
        stack.extend((child, level) for child in children)
    return deepest


def decode_event(
    payload: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> dict[str, Any]:
    """Decode and check an event.

    Returns:
        The event object; ``v`` is 1, ``event`` a non-empty string, ``wall`` a finite
        float (unix seconds); other keys are returned as they arrived.

    Raises:
        PayloadTooLarge: ``len(payload) > max_bytes``.
        CodecError: Not UTF-8 JSON, not an object, or a wrong ``v``/``event``/``wall``.
    """
    obj = load_json_object(payload, max_bytes=max_bytes, what="an event")
    version = obj.get("v")
    if type(version) is not int or version != EVENT_VERSION:
        _fail(f"unsupported event version {version!r:.40}; this decoder reads v={EVENT_VERSION}")
    kind = obj.get("event")
    if type(kind) is not str or not kind:
        _fail(f"event 'event' must be a non-empty string, got {kind!r:.60}")
    wall = obj.get("wall")
    if type(wall) is not float and type(wall) is not int:
        _fail(f"event 'wall' must be a number (unix seconds), got {wall!r:.60}")
    try:
        wall_s = float(wall)
    except OverflowError:  # an integer with hundreds of digits
        wall_s = math.inf
    if not math.isfinite(wall_s):
        _fail(f"event 'wall' must be finite, got {wall!r:.60}")
    obj["wall"] = wall_s
    return obj
