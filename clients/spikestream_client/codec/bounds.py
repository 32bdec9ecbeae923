"""The wire's bounds, and how a decoder refuses what passes them.

Every decoder of the protocol shares these: the default size limits, the range of a
frame's ``dt`` and of an input value, the rejection classes with their short ``reason``
codes, and msgpack and map readers with every limit set. Nothing here needs numpy, so a
tool that only lists networks or sends control commands (``ls``, a script holding a
:class:`~spikestream_client.client.SpikestreamClient`) starts without loading it: the
numpy decoders (:mod:`~spikestream_client.codec.frames`,
:mod:`~spikestream_client.codec.payloads`) are imported when first used.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sized
from typing import Any, Final, Literal, NoReturn

import msgpack

from spikestream_client.errors import CodecError, PayloadTooLarge

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_INPUT_BYTES",
    "INPUT_VALUE_LIMIT",
    "MAX_DT",
    "MIN_DT",
    "OversizePayload",
    "PayloadRejected",
    "RejectReason",
    "describe_keys",
    "dropped_unread",
    "unique_map",
    "unpack_limited",
]

DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Default size limit of :func:`~spikestream_client.codec.frames.decode_frame`, in bytes
(16 MiB)."""

DEFAULT_MAX_INPUT_BYTES: Final = 65536
"""Default size limit of :func:`~spikestream_client.codec.payloads.decode_input`, in
bytes."""

INPUT_VALUE_LIMIT: Final = 1e9
"""Largest magnitude of an input value, as of every value in a network file. A finite
1e308 would overflow a population's input current to inf and leave NaN in its neurons'
state for good; no signal a network represents (about 1) comes near this."""

RejectReason = Literal[
    "garbage",
    "type",
    "dimension",
    "nonfinite",
    "range",
    "depth",
    "keys",
    "oversize",
    "command",
    "value",
]
"""Why a payload was rejected. ``command`` and ``value`` are used by control commands."""


class PayloadRejected(CodecError):
    """An input or control payload was rejected; ``reason`` says why, as a short code.

    The service counts rejections per ``reason`` and reports the message on the
    events topic.
    """

    reason: RejectReason

    def __init__(self, message: str, reason: RejectReason = "garbage") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the reason across pickling (e.g. into a process pool's result).
        return (type(self), (self.args[0], self.reason))


class OversizePayload(PayloadTooLarge, PayloadRejected):
    """A payload exceeded its size limit; refused before any decoding."""

    def __init__(self, message: str, reason: RejectReason = "oversize") -> None:
        super().__init__(message, reason)


def dropped_unread(what: str, size: int, limit: int) -> OversizePayload:
    """The refusal of a ``what`` message of ``size`` bytes (topic, properties and
    payload) that the link dropped unread (``MessageMeta.oversize``), past a payload
    limit of ``limit`` bytes."""
    return OversizePayload(
        f"{what} message of {size} bytes exceeds the payload limit of {limit} bytes by "
        f"more than its topic and properties may take; dropped unread"
    )


MIN_DT: Final = 1e-6
"""Smallest ``dt`` (s) a frame may carry: the network files' own lower bound."""
MAX_DT: Final = 3600.0
"""Largest ``dt`` (s) a frame may carry: one tick per hour is already implausible, and the
bound keeps ``window / dt`` and ``tick * dt`` finite and small for the tools."""


def _reject(message: str, reason: RejectReason) -> NoReturn:
    raise PayloadRejected(message, reason)


def describe_keys(keys: Iterable[object], limit: int = 5) -> str:
    """Up to ``limit`` keys, sorted and each cut to 20 characters, for error messages.

    A hostile map may hold thousands of long keys; the message must stay short.
    """
    shown = sorted(repr(key)[:20] for key in itertools.islice(keys, limit))
    extra = len(keys) - len(shown) if isinstance(keys, Sized) else 0
    text = ", ".join(shown) or "none"
    return f"{text} (and {extra} more)" if extra > 0 else text


def unique_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A decoded map's key/value pairs as a dict, refusing a key given twice (reason
    ``keys``): JSON and msgpack allow it, and each reader keeps a different one, so which
    value the sender meant is not known. The ``object_pairs_hook`` of every decoder of
    inputs and control commands."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[Any] = set()
        for key, _ in pairs:
            if key in seen:
                _reject(f"a map gives the key {key!r:.40} more than once", "keys")
            seen.add(key)
    return obj


#: Arrays and maps one input or control message may hold: an input is at most a map
#: holding an array, a command a map of a few small values.
MAX_PAYLOAD_CONTAINERS: Final = 64


class ContainerCount:
    """Counts the arrays and maps msgpack builds for one message and stops it past
    ``limit``, calling ``fail`` (which raises): each costs 56 bytes or more of Python
    objects for one byte of msgpack (``0x90``, an empty array), so 15 MiB of nested empty
    arrays decoded to 1.1 GB before any check of the message's shape ran.

    ``list_hook`` and ``count`` are the unpacker's ``list_hook`` and (wrapping the pairs
    or map hook) its ``object_pairs_hook`` or ``object_hook``."""

    def __init__(self, limit: int, fail: Callable[[int], NoReturn]) -> None:
        self.limit, self.fail, self.seen = limit, fail, 0

    def count(self) -> None:
        """One more array or map; past the limit, ``fail(limit)``."""
        self.seen += 1
        if self.seen > self.limit:
            self.fail(self.limit)

    def list_hook(self, items: list[Any]) -> list[Any]:
        self.count()
        return items


def unpack_limited(
    payload: bytes,
    max_bytes: int,
    *,
    what: str,
    expected: str,
    ext_hook: Callable[[int, bytes], object],
) -> object:
    """Unpack small msgpack (an input or a control command) with every limit set.

    Strings, binaries, arrays and maps are capped at ``max_bytes`` entries, extension
    types are refused through ``ext_hook``, and failures become :class:`PayloadRejected`
    with reason ``depth`` or ``garbage``; ``what`` and ``expected`` word the message. More
    than :data:`MAX_PAYLOAD_CONTAINERS` arrays and maps are refused as they are built
    (reason ``depth``), before they cost more than a few KiB.
    """

    def too_many(limit: int) -> NoReturn:
        # Only nesting makes so many (a flat array is one): the "depth" refusal.
        _reject(
            f"nesting too deep: {what} msgpack holds more than {limit} arrays and maps; "
            f"expected {expected}",
            "depth",
        )

    containers = ContainerCount(MAX_PAYLOAD_CONTAINERS, too_many)

    def pairs(items: list[tuple[Any, Any]]) -> dict[Any, Any]:
        containers.count()
        return unique_map(items)

    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=False,
            ext_hook=ext_hook,
            object_pairs_hook=pairs,
            list_hook=containers.list_hook,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=max_bytes,
            max_ext_len=0,
        )
    except PayloadRejected:
        raise
    except msgpack.StackError:
        _reject(f"nesting too deep: {what} msgpack nests beyond the unpacker's limit", "depth")
    except (ValueError, TypeError) as exc:
        # ValueError: FormatError, ExtraData, OutOfData, limits, bad UTF-8;
        # TypeError: an unhashable map key such as an array.
        _reject(
            f"expected {expected}; got {len(payload)} bytes that are not valid msgpack "
            f"({str(exc) or type(exc).__name__}), starting {payload[:16].hex(' ')}",
            "garbage",
        )
