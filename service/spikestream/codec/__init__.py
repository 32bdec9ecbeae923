"""Bytes in, bytes out: frames, input payloads, control commands, events and topics.

This layer is pure: it imports only numpy, msgpack, the standard library,
:mod:`spikestream.errors` and :mod:`spikestream.names`, so the client library and the
browser monitor's tests can use it without the simulator or MQTT. ``docs/PROTOCOL.md``
describes the wire formats.
"""

from spikestream.codec.control import (
    COMMANDS,
    DEFAULT_MAX_CONTROL_BYTES,
    Command,
    ControlCommand,
    ControlValue,
    decode_control,
    encode_control,
)
from spikestream.codec.events import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_PREFIX,
    EVENT_VERSION,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Topics,
    decode_event,
    encode_event,
    topics,
    validate_name,
    validate_prefix,
)
from spikestream.codec.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    SCHEMA_VERSION,
    FrameHeader,
    SpikeFrame,
    ValueFrame,
    decode_frame,
    encode_spikes,
    encode_values,
)
from spikestream.codec.payloads import (
    DEFAULT_MAX_INPUT_BYTES,
    InputSample,
    OversizePayload,
    PayloadRejected,
    RejectReason,
    decode_input,
    encode_input,
    is_text,
)

__all__ = [
    "COMMANDS",
    "DEFAULT_MAX_CONTROL_BYTES",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_PREFIX",
    "EVENT_VERSION",
    "SCHEMA_VERSION",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "Command",
    "ControlCommand",
    "ControlValue",
    "FrameHeader",
    "InputSample",
    "OversizePayload",
    "PayloadRejected",
    "RejectReason",
    "SpikeFrame",
    "Topics",
    "ValueFrame",
    "decode_control",
    "decode_event",
    "decode_frame",
    "decode_input",
    "encode_control",
    "encode_event",
    "encode_input",
    "encode_spikes",
    "encode_values",
    "is_text",
    "topics",
    "validate_name",
    "validate_prefix",
]
