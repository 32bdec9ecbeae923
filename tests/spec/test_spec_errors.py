"""The one-line messages of a network file's errors (:mod:`spikestream.spec_errors`):
what each shows of the value, and where a long text is cut."""

from __future__ import annotations

import pytest

from spikestream.errors import NetworkFileError
from spikestream.spec import parse_network
from spikestream.spec_errors import cut


def _refusal(data: dict[str, object]) -> str:
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="f")
    return str(info.value)


def _net(**populations: object) -> dict[str, object]:
    return {"populations": {"a": {"n": 3, **populations}}, "inputs": {"u": {"target": "a"}}}


def test_a_text_of_exactly_the_limit_is_shown_whole() -> None:
    """``cut`` shortens only what is longer than ``limit``; a shortened text is exactly
    ``limit`` characters, ending in `` ...``."""
    assert cut("x" * 80) == "x" * 80
    assert cut("x" * 81) == "x" * 76 + " ..."
    assert len(cut("y" * 10_000)) == 80


def test_a_missing_item_is_named_without_the_containing_value() -> None:
    """``max_rates = [200]``: the message names the missing second number; it does not
    append ``(got ...)`` with the list (for a missing key that would be its whole table)."""
    assert _refusal(_net(max_rates=[200])) == "f: populations.a.max_rates[1]: Field required"


def test_a_validator_message_is_not_followed_by_the_value_again() -> None:
    """A validator's own message already names the value it refuses: no ``(got ...)``
    repeats it."""
    msg = _refusal({**_net(), "inputs": {"u": {"target": "a", "signal": "x"}}})
    assert msg.startswith("f: inputs.u.signal: signal 'x' is not allowed; expected one of"), msg
    assert "(got" not in msg, msg


@pytest.mark.parametrize(
    ("signal", "start"),
    [
        ("z" * 100_000, "f: inputs.u.signal: signal '" + "z" * 76 + " ...' is not allowed; "),
        ("z" * 100_000 + "\n", "f: inputs.u.signal: signal '" + "z" * 75 + " ... is not allowed; "),
        ({"kind": "z" * 100_000}, "f: inputs.u.signal: Input tag '" + "z" * 76 + " ...' found "),
    ],
    ids=["validator's echo", "echo of a repr", "union tag"],
)
def test_a_message_quoting_a_huge_value_shows_a_glimpse(signal: object, start: str) -> None:
    """A validator's message (``signal 'x' is not allowed``) and pydantic's (``Input tag
    'x' found ...``) quote the value; a hostile file's megabyte-long one made the message
    as long. It is cut as the key path and the value are, keeping what is allowed."""
    msg = _refusal({**_net(), "inputs": {"u": {"target": "a", "signal": signal}}})
    assert msg.startswith(start), msg[:300]
    assert len(msg) < 300, len(msg)
    assert "\n" not in msg
