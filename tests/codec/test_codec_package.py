"""The codec package's names: every exported one resolves, lazily loaded or not."""

from __future__ import annotations

import pytest

import spikestream_client.codec as codec
from spikestream_client.codec import frames, payloads


@pytest.mark.parametrize("name", codec.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    """``from spikestream_client.codec import X`` works for every name of ``__all__``
    (the lazy ones load on first use): a name left out of the lazy table would be an
    ImportError in a tool only."""
    assert getattr(codec, name) is not None


@pytest.mark.parametrize(
    ("module", "name"),
    [(frames, name) for name in frames.__all__ if name in codec.__all__]
    + [(payloads, name) for name in ("InputSample", "decode_input", "encode_input", "is_text")],
)
def test_lazy_names_are_their_modules_objects(module: object, name: str) -> None:
    """The package's lazy names are the very objects of the modules that define them."""
    assert getattr(codec, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    """``hasattr`` and ``getattr(..., default)`` rely on AttributeError; the message
    names the module and the name."""
    missing = "nope"  # a variable: mypy would refuse the attribute written out
    with pytest.raises(
        AttributeError, match=r"^module 'spikestream_client.codec' has no attribute 'nope'$"
    ):
        getattr(codec, missing)
    assert not hasattr(codec, missing)
