"""Control commands: text, JSON and msgpack forms, argument rules, and encode_control."""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.errors import PayloadTooLarge
from spikestream_client.codec import (
    COMMAND_SPECS,
    COMMANDS,
    SETTINGS,
    CommandRejected,
    ControlCommand,
    ControlValue,
    OversizePayload,
    PayloadRejected,
    control_reference,
    decode_control,
    encode_control,
)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def test_known_commands() -> None:
    assert set(COMMANDS) == {
        "pause",
        "resume",
        "reset",
        "set",
        "snapshot",
        "restore",
        "status",
        "learn",
        "describe",
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # plain text, as mosquitto_pub -m sends it
        (b"pause", ControlCommand("pause")),
        (b"resume\n", ControlCommand("resume")),
        (b"  reset  ", ControlCommand("reset")),
        (b"status", ControlCommand("status")),
        (b"PAUSE", ControlCommand("pause")),
        (b"set realtime_factor 2.0", ControlCommand("set", "realtime_factor", 2.0)),
        (b"set realtime_factor\t1e-1", ControlCommand("set", "realtime_factor", 0.1)),
        (b"set ticks_per_frame 10", ControlCommand("set", "ticks_per_frame", 10)),
        (b"set ticks_per_frame 1e3", ControlCommand("set", "ticks_per_frame", 1000)),
        (b"set learning true", ControlCommand("set", "learning", True)),
        (b"set learning False", ControlCommand("set", "learning", False)),
        (b"set learning  off ", ControlCommand("set", "learning", False)),
        (b"snapshot /tmp/x.npz", ControlCommand("snapshot", None, "/tmp/x.npz")),
        (b"snapshot", ControlCommand("snapshot")),
        (b"restore /tmp/my run.npz", ControlCommand("restore", None, "/tmp/my run.npz")),
        ("restore /tmp/été.npz".encode(), ControlCommand("restore", None, "/tmp/été.npz")),
        (b"learn on", ControlCommand("learn", None, True)),
        (b"learn OFF", ControlCommand("learn", None, False)),
        (b"learn true", ControlCommand("learn", None, True)),
        # JSON
        (b'{"cmd": "pause"}', ControlCommand("pause")),
        (
            b'{"cmd": "set", "key": "realtime_factor", "value": 2.0, "id": "42"}',
            ControlCommand("set", "realtime_factor", 2.0, "42"),
        ),
        (b'{"cmd": "set", "key": "ttl", "value": 3}', ControlCommand("set", "ttl", 3.0)),
        (
            b'{"cmd": "set", "key": "ticks_per_frame", "value": 3}',
            ControlCommand("set", "ticks_per_frame", 3),
        ),
        (
            b'{"cmd": "set", "key": "learning", "value": "on"}',
            ControlCommand("set", "learning", True),
        ),
        (
            b'{"cmd": "set", "key": "learning", "value": false}',
            ControlCommand("set", "learning", False),
        ),
        (b'{"cmd": "status", "id": 7}', ControlCommand("status", id="7")),
        (b'{"cmd": "learn", "value": true}', ControlCommand("learn", None, True)),
        (b'{"cmd": "learn", "value": "off"}', ControlCommand("learn", None, False)),
        # As set learning's value: ASCII spaces around a flag word (only they).
        (b'{"cmd": "learn", "value": " on\\t"}', ControlCommand("learn", None, True)),
        (b'{"cmd": "snapshot", "value": "/tmp/a"}', ControlCommand("snapshot", None, "/tmp/a")),
        (b'{"cmd": "reset", "key": null, "value": null}', ControlCommand("reset")),
        (b'"pause"', ControlCommand("pause")),
        # msgpack
        (pack({"cmd": "pause"}), ControlCommand("pause")),
        (
            pack({"cmd": "set", "key": "realtime_factor", "value": 0.5, "id": "a"}),
            ControlCommand("set", "realtime_factor", 0.5, "a"),
        ),
        (pack("resume"), ControlCommand("resume")),
        (pack("set ttl 1.5"), ControlCommand("set", "ttl", 1.5)),
        (pack("snapshot " + "p" * 150), ControlCommand("snapshot", None, "p" * 150)),
    ],
)
def test_accepted_forms(payload: bytes, expected: ControlCommand) -> None:
    command = decode_control(payload)
    assert command == expected
    assert type(command.value) is type(expected.value)


def rejected(payload: bytes, reason: str, match: str) -> None:
    with pytest.raises(PayloadRejected, match=match) as info:
        decode_control(payload)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "payload",
    [b"jump", b'{"cmd": "explode"}', pack({"cmd": "stop"}), b"setx 1", pack("halt")],
)
def test_unknown_command_names_the_allowed_ones(payload: bytes) -> None:
    rejected(
        payload,
        "command",
        r"unknown control command .*; allowed: pause, resume, reset, set, snapshot, "
        r"restore, status, learn",
    )


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"pause now", "'pause' takes no arguments, got 'now'"),
        (b"status please", "'status' takes no arguments"),
        (b"set", "'set' needs a key .* got nothing$"),
        (b"set realtime_factor", "'set realtime_factor' needs a value, got none"),
        (b"set 2x 1", "'set' needs a key .* got str '2x'"),
        (b'{"cmd": "set", "value": 1}', "'set' needs a key"),
        (b'{"cmd": "set", "key": "a b", "value": 1}', "'set' needs a key .* 'a b'"),
        (b'{"cmd": "set", "key": 3, "value": 1}', "'set' needs a key .* got int 3"),
        (b'{"cmd": "set", "key": "ttl"}', "'set ttl' needs a value, got none; expected a finite"),
        (b'{"cmd": "pause", "value": 1}', "'pause' takes no value, got 1.0"),
        (b'{"cmd": "reset", "key": "k"}', "'reset' takes no key .*got 'k'$"),
        (b'{"cmd": "snapshot", "key": "k", "value": "/tmp/x"}', "'snapshot' takes no key"),
        # The switch or the path put where the key goes: the message says where it belongs.
        (b'{"cmd": "learn", "key": "off"}', "'learn' takes no key .*'off'; its on/off is"),
        (b'{"cmd": "restore", "key": "a.snap"}', "'restore' takes no key .*; its path is"),
        (b'{"cmd": "snapshot", "key": "b.npz"}', "'snapshot' takes no key .*; its path is"),
        (b"restore", "'restore' needs a file path .* got nothing$"),
        (b'{"cmd": "restore", "value": ""}', "'restore' needs a file path"),
        (b'{"cmd": "snapshot", "value": 3}', "'snapshot' needs a file path .* got float"),
        (b'{"cmd": "snapshot", "value": "/tmp/a\\u0000b"}', "without NUL"),
        (b"learn", "'learn' needs on or off"),
        (b"learn maybe", "'learn' needs on or off .* got 'maybe'"),
        (b'{"cmd": "learn", "value": 1}', "'learn' needs on or off"),
    ],
)
def test_bad_arguments(payload: bytes, match: str) -> None:
    rejected(payload, "value", match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'{"cmd": 1}', "'cmd' must be a string"),
        (b'{"cmd": "status", "id": 1.5}', "'id' must be a string or an integer, got float"),
        (b'{"cmd": "status", "id": true}', "'id' must be a string or an integer, got bool"),
        (b'{"cmd": "set", "key": "k", "value": [1]}', "'value' must be a number, string"),
        (b'{"cmd": "set", "key": "k", "value": {}}', "'value' must be a number, string"),
        (b"[1, 2]", "expected a control map .* got list"),
        (b"3", "unknown control command"),  # text, not JSON: a line whose command is '3'
        (pack(3), "expected a control map .* got int"),
        (pack(b"pause"), "expected a control map .* got bytes"),
        (b"\xc7\x00\x05", "extension type 5"),
    ],
)
def test_wrong_types(payload: bytes, match: str) -> None:
    with pytest.raises(PayloadRejected, match=match) as info:
        decode_control(payload)
    assert info.value.reason in ("type", "command")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'{"cmd": "pause", "force": true}', "got extra keys 'force'"),
        (b'{"key": "k", "value": 1}', "missing 'cmd'"),
        (pack({"cmd": "pause", 1: 2}), "got extra keys 1"),
    ],
)
def test_bad_map_keys(payload: bytes, match: str) -> None:
    rejected(payload, "keys", match)


@pytest.mark.parametrize(
    "payload",
    [
        b"set k nan",
        b"set k -Infinity",
        b"set k 1e999",
        b'{"cmd": "set", "key": "k", "value": NaN}',
        b'{"cmd": "set", "key": "k", "value": 1e999}',
        pack({"cmd": "set", "key": "k", "value": float("inf")}),
    ],
)
def test_non_finite_values(payload: bytes) -> None:
    rejected(payload, "nonfinite", "finite")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty control payload"),
        (b"   \n", "empty control payload"),
        (b"{not json}", "not valid JSON"),
        (b"\xc1", "not valid msgpack"),
        (b"\x80\x00", "not valid msgpack"),
        (pack({"cmd": "pause"}) + b"\x00", "not valid msgpack"),
    ],
)
def test_garbage(payload: bytes, match: str) -> None:
    rejected(payload, "garbage", match)


def test_deep_nesting() -> None:
    with pytest.raises(PayloadRejected, match=r"nest(s|ing) too deep") as info:
        decode_control(b"[" * 100_000, max_bytes=200_000)
    assert info.value.reason == "depth"
    with pytest.raises(PayloadRejected, match="nesting too deep: control msgpack"):
        decode_control(b"\x91" * 4000)


def test_oversize_is_refused_before_decoding() -> None:
    with pytest.raises(OversizePayload, match="4097 bytes exceeds the limit of 4096") as info:
        decode_control(b"\xc1" * 4097)
    assert isinstance(info.value, PayloadTooLarge)
    assert info.value.reason == "oversize"


# ---------------------------------------------------------------------- encode_control


@st.composite
def commands(draw: st.DrawFn) -> ControlCommand:
    cmd = draw(st.sampled_from(COMMANDS))
    request_id = draw(st.none() | st.text(max_size=10))
    path = st.text(min_size=1, max_size=30).filter(lambda p: "\x00" not in p)
    if cmd == "set":
        key = draw(st.sampled_from(sorted(SETTINGS)))
        setting = SETTINGS[key]
        value: ControlValue
        if setting.kind == "flag":
            value = draw(st.booleans())
        elif setting.kind == "count":
            value = draw(st.integers(min_value=1, max_value=2**53))
        else:
            value = draw(
                st.floats(
                    min_value=0.0, max_value=setting.high, allow_nan=False, allow_infinity=False
                )
            )
        return ControlCommand(cmd, key, value, request_id)
    if cmd == "learn":
        return ControlCommand(cmd, None, draw(st.booleans()), request_id)
    if cmd == "snapshot":
        return ControlCommand(cmd, None, draw(st.none() | path), request_id)
    if cmd == "restore":
        return ControlCommand(cmd, None, draw(path), request_id)
    return ControlCommand(cmd, None, None, request_id)


@pytest.mark.parametrize(
    ("payload", "reason", "match"),
    [
        # Arabic-Indic and full-width digits, which float() reads: "٢٠" was taken for 20.
        ("set ticks_per_frame ٢٠", "value", "set ticks_per_frame: '٢٠' is not allowed"),
        ("set ttl ５", "value", "set ttl: '５' is not allowed"),
        ("set realtime_factor ١", "value", "set realtime_factor: '١' is not allowed"),
        # Unicode spaces are no separators: a no-break space before pause paused it.
        ("\u00a0pause", "garbage", "expected a control command as text, JSON or msgpack"),
        ("set ttl 1\u2028", "value", r"set ttl: '1\\u2028' is not allowed"),
        ("set\u2003ttl 1", "command", "unknown control command"),
        ('{"cmd": "\u00a0pause"}', "command", "unknown control command"),
    ],
)
def test_the_text_grammar_is_ascii(payload: str, reason: str, match: str) -> None:
    rejected(payload.encode(), reason, match)
    # The same commands in ASCII are taken, ASCII spaces around them included.
    assert decode_control(b"\t pause \r\n") == ControlCommand("pause")
    assert decode_control(b"set  ttl \t 5\n") == ControlCommand("set", "ttl", 5.0)
    assert decode_control(b"set ticks_per_frame 20") == ControlCommand("set", "ticks_per_frame", 20)


@given(command=commands())
def test_encode_control_round_trip(command: ControlCommand) -> None:
    payload = encode_control(command.cmd, command.key, command.value, command.id)
    obj = json.loads(payload)
    assert obj["cmd"] == command.cmd
    decoded = decode_control(payload, max_bytes=10_000)
    assert decoded == command
    assert type(decoded.value) is type(command.value)


def test_encode_control_is_compact_json_without_nones() -> None:
    assert encode_control("pause") == b'{"cmd":"pause"}'
    assert encode_control("set", "realtime_factor", 2.0, "42") == (
        b'{"cmd":"set","key":"realtime_factor","value":2.0,"id":"42"}'
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("fly",), "unknown control command 'fly'"),
        (("set", "ttl"), "needs a value"),
        (("set", "k", 1.0), "cannot set 'k'; settable keys: realtime_factor"),
        (("pause", None, 1.0), "takes no value"),
        (("set", "k", float("nan")), "cannot encode control command"),
        (("set", "k", object()), "cannot encode control command"),
    ],
)
def test_encode_control_rejects_what_the_service_would(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(PayloadRejected, match=match):
        encode_control(*args)


def test_many_extra_keys_give_a_short_message() -> None:
    payload = pack({"cmd": "pause", **{f"k{i}": i for i in range(300)}})
    with pytest.raises(PayloadRejected, match=r"\(and 295 more\)") as info:
        decode_control(payload)
    assert info.value.reason == "keys"
    assert len(str(info.value)) < 300


# ---------------------------------------------------------------------- the schema


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"set volume 1", r"cannot set 'volume'; settable keys: realtime_factor, ttl, "),
        (b"set realtime_factor -1", r"set realtime_factor: -1.0 is not allowed; expected a "),
        (b"set realtime_factor fast", r"set realtime_factor: 'fast' is not allowed; expected a"),
        (b"set ttl true", r"set ttl: True is not allowed; expected a finite number >= 0"),
        (b"set ticks_per_frame 0", r"set ticks_per_frame: 0.0 is not allowed; expected an int"),
        (b"set ticks_per_frame 2.5", r"set ticks_per_frame: 2.5 is not allowed; expected an int"),
        (b"set learning_rate 2", r"set learning_rate: 2.0 is not allowed; .* in \[0, 1\]"),
        (b"set learning maybe", r"set learning: 'maybe' is not allowed; expected on or off"),
        (b"set learning 1", r"set learning: 1.0 is not allowed; expected on or off"),
    ],
)
def test_set_values_are_checked_against_the_schema(payload: bytes, match: str) -> None:
    rejected(payload, "value", match)


def test_a_runtime_bound_narrows_the_schema_and_is_named() -> None:
    tpf = SETTINGS["ticks_per_frame"]
    assert tpf.check(500, high=500) == 500
    with pytest.raises(
        PayloadRejected,
        match=r"501 is not allowed; expected an integer in "
        r"\[1, 500\], the largest the memory budget and a frame's 16 MiB allow",
    ):
        tpf.check(501, high=500)
    # The lower of the runtime's bound and the schema's own applies.
    with pytest.raises(PayloadRejected, match=r"in \[0, 1\]"):
        SETTINGS["learning_rate"].check(5.0, high=10.0)


def test_every_command_of_the_type_is_in_the_table() -> None:
    assert tuple(COMMAND_SPECS) == COMMANDS
    assert {c.args for c in COMMAND_SPECS.values()} <= {
        "none",
        "setting",
        "flag",
        "path",
        "optional path",
    }


def test_protocol_doc_shows_the_schema() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    missing = [row for row in control_reference() if row not in doc]
    assert not missing, "docs/PROTOCOL.md lacks these rows of the control schema:\n" + "\n".join(
        missing
    )


def test_a_refusal_after_the_name_carries_the_command_and_id() -> None:
    """So the service's reply echoes the id and a client waiting on it hears of it."""
    with pytest.raises(CommandRejected) as info:
        decode_control(b'{"cmd": "set", "key": "ttl", "value": -1, "id": 7}')
    assert (info.value.cmd, info.value.id, info.value.reason) == ("set", "7", "value")
    with pytest.raises(CommandRejected) as info:
        decode_control(b"learn maybe")
    assert (info.value.cmd, info.value.id) == ("learn", None)
    with pytest.raises(PayloadRejected) as other:
        decode_control(b'{"cmd": "fly", "id": "x"}')
    assert not isinstance(other.value, CommandRejected)  # no command to name


# ---------------------------------------------------------------------- mutation audit


def test_a_payload_of_exactly_the_limit_is_decoded() -> None:
    """The limit is inclusive: ``max_bytes`` bytes are read, one more is refused (above)."""
    payload = b"pause" + b" " * (4096 - len("pause"))
    assert len(payload) == 4096
    assert decode_control(payload) == ControlCommand("pause")
    assert decode_control(b"status", max_bytes=6) == ControlCommand("status")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"set realtime_factor 0", 0.0),  # 0 runs as fast as possible
        (b"set realtime_factor 1e6", 1e6),
        (b"set ttl 0", 0.0),  # 0 holds an input forever
        (b"set ticks_per_frame 1", 1),
        (b"set learning_rate 0", 0.0),
        (b"set learning_rate 1", 1.0),
    ],
)
def test_the_schemas_bounds_are_inclusive(payload: bytes, expected: float) -> None:
    """Each bound is itself a meaningful value (0 = as fast as possible, 0 = hold
    forever, one tick per frame): refusing it would take a documented mode away."""
    command = decode_control(payload)
    assert command.value == expected
    assert type(command.value) is type(expected)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", ["realtime_factor", "ttl", "ticks_per_frame", "learning_rate"])
def test_setting_check_refuses_non_finite_values(key: str, value: float) -> None:
    """The runtime calls Setting.check on values that did not all come through the
    decoder's own finiteness check; NaN passes every comparison, and inf passes a
    setting without an upper bound (ttl), so check() must test finiteness itself."""
    with pytest.raises(PayloadRejected, match=rf"set {key}: .* is not allowed") as info:
        SETTINGS[key].check(value)
    assert info.value.reason == "value"


@pytest.mark.parametrize("cmd", ["snapshot", "restore"])
def test_a_path_with_a_lone_surrogate_is_refused(cmd: str) -> None:
    """JSON's ``\\ud800`` decodes to a str that has no UTF-8 form and names no file; it
    must be refused here, not fail later in the runtime's path handling."""
    payload = json.dumps({"cmd": cmd, "value": "a\ud800.npz"}).encode()
    with pytest.raises(CommandRejected, match="a non-empty UTF-8 string without NUL") as info:
        decode_control(payload)
    assert info.value.reason == "value"
    assert info.value.cmd == cmd


@pytest.mark.parametrize(
    "obj",
    [
        {"cmd": "set", "key": "ttl", "value": 10**400},
        {"cmd": "pause", "value": 10**400},
    ],
)
def test_an_integer_beyond_float_range_is_nonfinite_not_missing(obj: dict[str, Any]) -> None:
    """JSON integers have no size limit; one past float64's range must be refused as
    not finite, never read as an absent value (which would let ``pause`` through)."""
    with pytest.raises(PayloadRejected, match="integer beyond float range") as info:
        decode_control(json.dumps(obj).encode())
    assert info.value.reason == "nonfinite"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"cmd": "pause", "cmd": "reset"}',
        b"\x82\xa3cmd\xa5pause\xa3cmd\xa5reset",  # the same in msgpack
    ],
)
def test_a_control_key_given_twice_is_refused(payload: bytes) -> None:
    """Which of two ``cmd`` values a reader keeps differs between parsers; running
    either one could be the wrong command, so neither is run."""
    rejected(payload, "keys", "the key 'cmd' more than once")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"SET ttl 2", ControlCommand("set", "ttl", 2.0)),
        (b"Set learning ON", ControlCommand("set", "learning", True)),
        (b"PAUSE", ControlCommand("pause")),
    ],
)
def test_text_command_names_are_case_insensitive(payload: bytes, expected: ControlCommand) -> None:
    """``set`` is recognised by its lowered name before the line is split into key and
    value; matching the raw word would send ``SET ttl 2`` down the path-argument branch
    and refuse it for having no key."""
    assert decode_control(payload) == expected


def test_a_text_command_in_capitals_with_an_argument_is_refused_as_such() -> None:
    """The no-argument check looks the command up by its lowered name too."""
    rejected(b"PAUSE now", "value", r"'pause' takes no arguments, got 'now'")


def test_encode_control_does_not_apply_the_default_size_limit() -> None:
    """The size limit is the receiving service's setting (``max_bytes``), not part of a
    command's validity: encode_control checks the command and leaves the size to it."""
    path = "d/" + "a" * 5000 + ".npz"
    payload = encode_control("snapshot", value=path)
    assert len(payload) > 4096
    assert decode_control(payload, max_bytes=len(payload)) == ControlCommand("snapshot", None, path)
