"""A hostile network file's long keys are shown cut short in its error message, as its
long values are: a 1 MB key gave a 1 MB message (to the log, the CLI and any reply)."""

from __future__ import annotations

import pytest

from spikestream.errors import NetworkFileError
from spikestream.spec import parse_network

LONG = "k" * 1_000_000


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"populations": {"a": {"n": 1}}, LONG: 1}, "net.toml: unknown key 'kkk"),
        ({"populations": {"a": {"n": 1, LONG: 1}}}, "net.toml: populations.a: unknown key 'kkk"),
        ({"populations": {LONG: {"n": 1}}}, "net.toml: populations.kkk"),
    ],
    ids=["top-level key", "key in a table", "name of a population"],
)
def test_a_long_key_is_shown_cut_short(data: dict[str, object], start: str) -> None:
    """The message still starts with the key path, and stays a few hundred characters."""
    with pytest.raises(NetworkFileError) as info:
        parse_network(data, source="net.toml")
    msg = str(info.value)
    assert msg.startswith(start), msg[:200]
    assert len(msg) < 1000, len(msg)
    assert " ..." in msg
