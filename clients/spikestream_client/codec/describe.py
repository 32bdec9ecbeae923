"""The ``describe`` document: what a running network offers, on ``<prefix>/<net>/describe``.

The service publishes it retained, as compact JSON, on every (re)connection before the
retained ``online`` status, again on the control command ``describe``, and after every
change of a setting it shows. A client that knows only the broker and a network name
reads it to find every input (topic, dimension, default, TTL, encodings), every probe
(topic, kind, shape, dtype, ticks per frame) and every control command with the keys it
may set and their ranges. ``docs/PROTOCOL.md`` section 7 describes it, and
``docs/describe.schema.json`` is its JSON Schema.

This module holds the parts that need no running service: the version, the control
section (read from :data:`~spikestream_client.codec.control.COMMAND_SPECS` and
:data:`~spikestream_client.codec.control.SETTINGS`, never restated), the encoder and a decoder
for clients that treats the document as hostile, like every payload from the bus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from spikestream_client.codec.bounds import MAX_DT, MIN_DT
from spikestream_client.codec.control import COMMAND_SPECS, SETTINGS
from spikestream_client.codec.events import Topics, load_json_object, topics, validate_prefix
from spikestream_client.errors import CodecError
from spikestream_client.names import NAME_RULE, is_name

__all__ = [
    "DEFAULT_MAX_DESCRIBE_BYTES",
    "DESCRIBE_VERSION",
    "INPUT_ENCODINGS",
    "Description",
    "InputInfo",
    "ProbeInfo",
    "check_response_topic",
    "control_description",
    "decode_describe",
    "encode_describe",
    "net_of",
    "wildcard",
]

DESCRIBE_VERSION: Final = 1
"""Schema version ``v`` of the document. It changes only when an old reader would
misread a document; new keys do not change it, and readers ignore keys they do not know."""

DEFAULT_MAX_DESCRIBE_BYTES: Final = 1 << 20
"""Size limit of :func:`decode_describe`, in bytes (a network of a thousand probes fits)."""

INPUT_ENCODINGS: Final = ("msgpack", "json", "text")
"""The encodings every input accepts (``docs/PROTOCOL.md`` section 4)."""


def control_description(high: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """The ``control`` section: every command and every settable key with its range.

    Args:
        high: Upper bounds known only to the running service, by setting key (e.g. the
            largest ``ticks_per_frame`` the memory budget allows now).

    Returns:
        ``{"commands": [{name, usage, args, help}], "settings": {key: {kind, low, high,
        bound, allowed, help}}}``, read from the codec's registry.
    """
    high = high or {}
    settings: dict[str, Any] = {}
    for key, s in SETTINGS.items():
        top = high.get(key)
        if top is not None and s.high is not None:
            top = min(top, s.high)
        top = s.high if top is None else top
        entry: dict[str, Any] = {"kind": s.kind, "help": s.help, "allowed": s.allowed(top)}
        if s.kind != "flag":
            entry["low"] = int(s.low) if s.kind == "count" else s.low
            entry["high"] = None if top is None else (int(top) if s.kind == "count" else top)
            entry["bound"] = s.bound or None
        settings[key] = entry
    commands = [
        {"name": c.name, "usage": c.usage, "args": c.args, "help": c.help}
        for c in COMMAND_SPECS.values()
    ]
    return {"commands": commands, "settings": settings}


def encode_describe(document: Mapping[str, Any]) -> bytes:
    """The document as compact UTF-8 JSON (NaN and infinities refused: not JSON).

    Raises:
        CodecError: A value is not JSON (e.g. NaN), or ``v`` is not :data:`DESCRIBE_VERSION`.
    """
    if document.get("v") != DESCRIBE_VERSION:
        _fail(f"a describe document needs v={DESCRIBE_VERSION}, got {document.get('v')!r}")
    try:
        return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        _fail(f"cannot encode the describe document as JSON: {exc}")


@dataclass(frozen=True, slots=True)
class InputInfo:
    """One input as described: where to publish and what it takes.

    Attributes:
        name: The input's name.
        topic: Where values are published.
        dim: Values per message.
        default: The value held before the first message and after the TTL, ``(dim,)``.
        ttl: Seconds a value holds, or None (held until replaced).
        max_bytes: The largest message the service accepts on this input, in bytes
            (``--max-input-bytes``); None where the document does not say.
    """

    name: str
    topic: str
    dim: int
    default: tuple[float, ...]
    ttl: float | None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """One probe as described: where its frames go and what they hold.

    Attributes:
        name: The probe's name.
        topic: Where its frames are published.
        kind: The frames' ``kind``: ``spikes`` or ``values``.
        shape: Shape of one tick (``(n,)`` for spikes).
        dtype: ``bool`` for spikes, ``float32`` for values.
        ticks_per_frame: Ticks per frame when the document was published.
    """

    name: str
    topic: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    ticks_per_frame: int


@dataclass(frozen=True, slots=True)
class Description:
    """A checked ``describe`` document; ``document`` holds every key as it arrived."""

    net: str
    dt: float
    session: int
    version: str
    inputs: dict[str, InputInfo]
    probes: dict[str, ProbeInfo]
    document: dict[str, Any]

    def missing_probes(self, probes: Sequence[str]) -> str | None:
        """None when the network has every one of ``probes``; else one line naming those
        it lacks and the probes it has (the first :data:`PROBES_NAMED`; a document may
        hold thousands), for the error of a consumer that would otherwise wait for ever."""
        missing = [p for p in probes if p not in self.probes]
        if not missing:
            return None
        have = sorted(self.probes)
        listed = ", ".join(have[:PROBES_NAMED]) or "none"
        if len(have) > PROBES_NAMED:
            listed += f" and {len(have) - PROBES_NAMED} more"
        names = ", ".join(f"{p!r:.80}" for p in missing[:PROBES_NAMED])
        return f"network {self.net!r} has no probe {names}; its probes: {listed}"


PROBES_NAMED: Final = 20
"""Probes a :meth:`Description.missing_probes` message names at most."""


def _fail(message: str) -> NoReturn:
    raise CodecError(f"invalid describe document: {message}")


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # type() not isinstance(): JSON booleans must not pass for integers.
    if type(value) not in kinds:
        names = " or ".join(k.__name__ for k in kinds)
        _fail(f"{where}{key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _count(obj: Mapping[str, Any], key: str, where: str, low: int = 0) -> int:
    value: int = _get(obj, key, int, where)
    if value < low or value > 2**53:
        _fail(f"{where}{key!r} must be an integer in [{low}, 2**53], got {value}")
    return value


def _number(value: object, what: str) -> float:
    if type(value) is int or type(value) is float:
        try:
            x = float(value)
        except OverflowError:  # an integer of hundreds of digits
            x = math.inf
        if math.isfinite(x):
            return x
    _fail(f"{what} must be a finite number, got {value!r:.60}")


def _names(obj: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    table: dict[str, Any] = _get(obj, key, dict, "")
    for name, entry in table.items():
        if not is_name(name):
            _fail(f"{key} name {name!r:.60} breaks the naming rule ({NAME_RULE})")
        if type(entry) is not dict:
            _fail(f"{key}[{name!r}] must be an object, got {type(entry).__name__}")
    return table


# A probe's per-tick shape: at most this many numbers per tick (the frame decoder's
# elements bound, 2**40, divided by the ticks a frame may carry, 2**24, rounded down to a
# power of two well above any network's: 2**31 floats of one tick is 8 GiB).
_MAX_SHAPE_PRODUCT: Final = 2**31


def _topic(entry: Mapping[str, Any], where: str, expected: str) -> str:
    """The entry's ``topic``, which must be the one the protocol gives it: a document
    must not point readers at ``#``, an empty topic or another network's topics."""
    topic: str = _get(entry, "topic", str, where)
    if topic != expected:
        _fail(f"{where}'topic' must be {expected!r}, got {topic!r:.80}")
    return topic


def _input(name: str, entry: Mapping[str, Any], t: Topics) -> InputInfo:
    where = f"inputs[{name!r}]: "
    dim = _count(entry, "dim", where, low=1)
    default = _get(entry, "default", list, where)
    if len(default) != dim:
        _fail(f"{where}'default' has {len(default)} values for dim {dim}")
    raw_ttl = entry.get("ttl")
    ttl = None if raw_ttl is None else _number(raw_ttl, f"{where}'ttl'")
    if ttl is not None and ttl < 0:
        _fail(f"{where}'ttl' must be null or a number of seconds >= 0, got {ttl}")
    return InputInfo(
        name,
        _topic(entry, where, t.input(name)),
        dim,
        tuple(_number(x, f"{where}'default'") for x in default),
        ttl,
        _count(entry, "max_bytes", where, low=1) if "max_bytes" in entry else None,
    )


def _probe(name: str, entry: Mapping[str, Any], t: Topics) -> ProbeInfo:
    where = f"probes[{name!r}]: "
    kind = _get(entry, "kind", str, where)
    if kind not in ("spikes", "values"):
        _fail(f"{where}'kind' must be 'spikes' or 'values', got {kind!r:.40}")
    shape = _get(entry, "shape", list, where)
    if len(shape) > 8 or not all(type(n) is int and 0 <= n <= 2**31 for n in shape):
        _fail(f"{where}'shape' must be at most 8 integers in [0, 2**31], got {shape!r:.80}")
    if kind == "spikes" and len(shape) != 1:
        _fail(f"{where}'shape' of a spike probe must be [n], got {shape!r:.80}")
    if math.prod(shape) > _MAX_SHAPE_PRODUCT:
        _fail(f"{where}'shape' {shape!r:.80} holds more than 2**31 numbers per tick")
    dtype = _get(entry, "dtype", str, where)
    if dtype != ("bool" if kind == "spikes" else "float32"):
        _fail(f"{where}'dtype' {dtype!r:.40} does not fit kind {kind!r}")
    return ProbeInfo(
        name,
        _topic(entry, where, t.out(name)),
        kind,
        tuple(shape),
        dtype,
        _count(entry, "ticks_per_frame", where, low=1),
    )


def _topics_map(obj: Mapping[str, Any], t: Topics) -> None:
    """The ``topics`` map, when present, must name this network's own topics."""
    if "topics" not in obj:
        return
    expected = {
        "status": t.status,
        "describe": t.describe,
        "control": t.control,
        "events": t.events,
        "stats": t.stats,
        "inputs": t.inputs_filter,
        "outputs": t.outs_filter,
    }
    found = _get(obj, "topics", dict, "")
    for key, topic in expected.items():
        if found.get(key) != topic:
            _fail(f"topics[{key!r}] must be {topic!r}, got {found.get(key)!r:.80}")


def decode_describe(
    payload: bytes | bytearray | memoryview,
    *,
    max_bytes: int = DEFAULT_MAX_DESCRIBE_BYTES,
    prefix: str | None = None,
) -> Description:
    """Decode and check a ``describe`` document (hostile until checked).

    Checks the keys a client configures itself from: ``v``, ``net``, ``prefix``, ``dt``
    (in ``[MIN_DT, MAX_DT]`` s, as frames), ``session``, ``service.version``, the
    ``topics`` map (when present), and each input's and probe's entry: every topic must
    be the one the protocol gives it under ``prefix`` and ``net``, ``ttl`` null or >= 0,
    a spike probe's shape ``[n]`` and any shape at most 2**31 numbers. Other keys are
    kept in :attr:`Description.document` unchecked.

    Args:
        payload: The JSON bytes.
        max_bytes: Size limit, in bytes, checked before parsing.
        prefix: The topic prefix the reader subscribed under; the document's ``prefix``
            must equal it (None: any valid prefix).

    Raises:
        PayloadTooLarge: ``len(payload) > max_bytes``.
        CodecError: Not a JSON object, another version, or a key missing or of the wrong
            type or range (the message names it, and what arrived).
    """
    obj = load_json_object(payload, max_bytes=max_bytes, what="a describe document")
    if obj.get("v") != DESCRIBE_VERSION or type(obj.get("v")) is not int:
        _fail(f"unsupported version {obj.get('v')!r:.40}; this reader reads v={DESCRIBE_VERSION}")
    net = _get(obj, "net", str, "")
    if not is_name(net):
        _fail(f"'net' {net!r:.60} breaks the naming rule ({NAME_RULE})")
    own = _get(obj, "prefix", str, "")
    try:
        t = topics(own, net)
    except CodecError as err:
        _fail(f"'prefix' {own!r:.60} is not a topic prefix: {err}")
    if prefix is not None and own != prefix:
        _fail(f"'prefix' must be {prefix!r}, the prefix it arrived under, got {own!r:.60}")
    dt = _number(obj.get("dt"), "'dt'")
    if not MIN_DT <= dt <= MAX_DT:
        _fail(f"'dt' must be a number of seconds in [{MIN_DT}, {MAX_DT}], got {dt}")
    service = _get(obj, "service", dict, "")
    _topics_map(obj, t)
    inputs = {n: _input(n, e, t) for n, e in _names(obj, "inputs").items()}
    probes = {n: _probe(n, e, t) for n, e in _names(obj, "probes").items()}
    return Description(
        net=net,
        dt=dt,
        session=_count(obj, "session", "", low=1),
        version=_get(service, "version", str, "service: "),
        inputs=inputs,
        probes=probes,
        document=obj,
    )


def wildcard(prefix: str, leaf: str) -> str:
    """``<prefix>/+/<leaf>``: one subscription for the ``leaf`` topic of every network
    (``describe`` or ``status``), as ``spikestream ls`` uses.

    Raises:
        CodecError: ``prefix`` is not a valid topic prefix.
    """
    return f"{validate_prefix(prefix)}/+/{leaf}"


def net_of(prefix: str, topic: str, leaf: str) -> str | None:
    """The network of ``<prefix>/<net>/<leaf>``, or None if ``topic`` is not one."""
    head = prefix + "/"
    if not topic.startswith(head) or not topic.endswith("/" + leaf):
        return None
    net = topic[len(head) : len(topic) - len(leaf) - 1]
    return net if is_name(net) else None


#: Topic levels under any network that a response topic must never name: the service
#: would be publishing its reply into an input or a control topic, or among what others
#: decode as its own output (frames, text values, events, stats).
_NEVER_REPLY_TO: Final = frozenset(
    {"in", "control", "status", "describe", "out", "text", "events", "stats"}
)
MAX_RESPONSE_TOPIC: Final = 1024


def check_response_topic(prefix: str, topic: str, reserved: Sequence[str] = ()) -> str:
    """Check an MQTT 5 Response Topic before the service publishes a reply on it.

    A request chooses where the reply goes, so the topic is hostile: it must be a
    non-empty topic name of at most :data:`MAX_RESPONSE_TOPIC` characters without
    wildcards, NUL or a leading ``$`` (broker topics), and must not be an input, control,
    status, describe, output, text, events or stats topic of any network under
    ``prefix`` (a reply must not act as a command or an input, or reach those who decode
    what the service publishes), nor under a prefix of ``reserved`` (others the service
    publishes to, such as Home Assistant's discovery prefix, whose ``status`` topic a
    reply must not reach).

    Returns:
        ``topic``.

    Raises:
        CodecError: The topic is refused; the message says why.
    """
    if not topic or len(topic) > MAX_RESPONSE_TOPIC:
        raise CodecError(
            f"response topic must be 1-{MAX_RESPONSE_TOPIC} characters, got {len(topic)}"
        )
    bad = next((c for c in "+#\x00" if c in topic), None)
    if bad is not None:
        raise CodecError(f"response topic {topic!r:.80} contains {bad!r}, which is not allowed")
    if topic.startswith("$"):
        raise CodecError(f"response topic {topic!r:.80} starts with '$' (reserved for brokers)")
    head = prefix + "/"
    if topic.startswith(head):
        levels = topic[len(head) :].split("/")
        if len(levels) >= 2 and levels[1] in _NEVER_REPLY_TO:
            raise CodecError(
                f"response topic {topic!r:.80} is a network's {levels[1]!r} topic; replies "
                "go to a topic of the requester's own"
            )
    for other in reserved:
        if topic == other or topic.startswith(other + "/"):
            raise CodecError(
                f"response topic {topic!r:.80} is under {other!r}, which the service "
                "publishes to; replies go to a topic of the requester's own"
            )
    return topic
