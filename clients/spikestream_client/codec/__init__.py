"""Bytes in, bytes out: frames, input payloads, control commands, events and topics.

This layer is pure: it imports only numpy, msgpack, the standard library,
:mod:`spikestream_client.errors` and :mod:`spikestream_client.names`, so the service,
the client library and the browser monitor can share it without the simulator or MQTT.
Only the frame and input decoders use numpy, and they load on first use (below).
``docs/PROTOCOL.md`` describes the wire formats.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from spikestream_client.codec.bounds import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_INPUT_BYTES,
    OversizePayload,
    PayloadRejected,
    RejectReason,
    dropped_unread,
)
from spikestream_client.codec.control import (
    COMMAND_SPECS,
    COMMANDS,
    DEFAULT_MAX_CONTROL_BYTES,
    MAX_REALTIME_FACTOR,
    SETTINGS,
    CommandRejected,
    CommandSpec,
    ControlCommand,
    ControlValue,
    Reply,
    Setting,
    control_reference,
    decode_control,
    encode_control,
    text_value,
)
from spikestream_client.codec.describe import (
    DEFAULT_MAX_DESCRIBE_BYTES,
    DESCRIBE_VERSION,
    INPUT_ENCODINGS,
    Description,
    InputInfo,
    ProbeInfo,
    check_response_topic,
    control_description,
    decode_describe,
    encode_describe,
    net_of,
    wildcard,
)
from spikestream_client.codec.events import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_PREFIX,
    EVENT_VERSION,
    MAX_PREFIX_BYTES,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Topics,
    decode_event,
    encode_event,
    topics,
    validate_name,
    validate_prefix,
)

if TYPE_CHECKING:
    from spikestream_client.codec.frames import (
        FRAME_HEADER_BYTES,
        SCHEMA_VERSION,
        Frame,
        FrameHeader,
        SpikeFrame,
        ValueFrame,
        decode_frame,
        encode_spikes,
        encode_values,
        frame_ticks_limit,
    )
    from spikestream_client.codec.payloads import InputSample, decode_input, encode_input, is_text

# The frame and input decoders need numpy, which takes longer to import than the rest of
# a tool that lists networks or sends control commands. Their names load on first use
# (PEP 562); ``from spikestream_client.codec import decode_frame`` works as before.
_LAZY: Final = {
    **dict.fromkeys(
        (
            "FRAME_HEADER_BYTES",
            "SCHEMA_VERSION",
            "Frame",
            "FrameHeader",
            "SpikeFrame",
            "ValueFrame",
            "decode_frame",
            "encode_spikes",
            "encode_values",
            "frame_ticks_limit",
        ),
        "spikestream_client.codec.frames",
    ),
    **dict.fromkeys(
        ("InputSample", "decode_input", "encode_input", "is_text"),
        "spikestream_client.codec.payloads",
    ),
}


# Type checkers see the imports above only: a module-level __getattr__ would tell mypy
# that every name exists (as Any), so a misspelt or missing one would pass --strict.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'spikestream_client.codec' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


__all__ = [
    "COMMANDS",
    "COMMAND_SPECS",
    "DEFAULT_MAX_CONTROL_BYTES",
    "DEFAULT_MAX_DESCRIBE_BYTES",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_PREFIX",
    "DESCRIBE_VERSION",
    "EVENT_VERSION",
    "FRAME_HEADER_BYTES",
    "INPUT_ENCODINGS",
    "MAX_PREFIX_BYTES",
    "MAX_REALTIME_FACTOR",
    "SCHEMA_VERSION",
    "SETTINGS",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "CommandRejected",
    "CommandSpec",
    "ControlCommand",
    "ControlValue",
    "Description",
    "Frame",
    "FrameHeader",
    "InputInfo",
    "InputSample",
    "OversizePayload",
    "PayloadRejected",
    "ProbeInfo",
    "RejectReason",
    "Reply",
    "Setting",
    "SpikeFrame",
    "Topics",
    "ValueFrame",
    "check_response_topic",
    "control_description",
    "control_reference",
    "decode_control",
    "decode_describe",
    "decode_event",
    "decode_frame",
    "decode_input",
    "dropped_unread",
    "encode_control",
    "encode_describe",
    "encode_event",
    "encode_input",
    "encode_spikes",
    "encode_values",
    "frame_ticks_limit",
    "is_text",
    "net_of",
    "text_value",
    "topics",
    "validate_name",
    "validate_prefix",
    "wildcard",
]
