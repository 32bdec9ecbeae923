"""The control grammar's ASCII spaces where a command comes as a JSON or msgpack string
or value, and the short naming of unknown map keys."""

from __future__ import annotations

import json

import msgpack
import pytest

from spikestream_client.codec import ControlCommand, PayloadRejected, decode_control


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps("  pause \t").encode(),
        msgpack.packb("\n pause  ", use_bin_type=True),
    ],
)
def test_a_command_line_in_a_json_or_msgpack_string_may_have_spaces_around_it(
    payload: bytes,
) -> None:
    """A command line given as a JSON or msgpack string is read as the same line as
    text: ASCII spaces around it are no part of the command's name."""
    assert decode_control(payload) == ControlCommand("pause")


def test_a_set_line_in_a_msgpack_string_may_have_spaces_around_it() -> None:
    """``set KEY VALUE`` in a msgpack string, ASCII spaces around and between its words."""
    payload = msgpack.packb(" set  ttl \t 5 \r\n", use_bin_type=True)
    assert decode_control(payload) == ControlCommand("set", "ttl", 5.0)


def test_a_flag_value_in_a_map_may_have_only_ascii_spaces_around_it() -> None:
    """A flag setting's value in a map is one of its words with ASCII spaces around it;
    a no-break space or U+2028 around ``on`` is no space (the text grammar is ASCII)."""
    taken = json.dumps({"cmd": "set", "key": "learning", "value": " on\t"}).encode()
    assert decode_control(taken) == ControlCommand("set", "learning", True)
    for space in ("\u00a0", "\u2028"):
        payload = json.dumps({"cmd": "set", "key": "learning", "value": f"on{space}"}).encode()
        with pytest.raises(PayloadRejected) as info:
            decode_control(payload)
        assert info.value.reason == "value"


def test_an_unknown_map_key_is_named_cut_to_twenty_characters() -> None:
    """A hostile map's long key is named in the refusal, cut to 20 characters of its
    ``repr``: the message stays short."""
    payload = msgpack.packb({"cmd": "pause", "k" * 100: 1}, use_bin_type=True)
    with pytest.raises(PayloadRejected) as info:
        decode_control(payload)
    assert info.value.reason == "keys"
    assert "'" + "k" * 19 in str(info.value)
    assert "k" * 20 not in str(info.value)
