"""Decoder cache entries whose name fits their content are still checked before use.

The content digest in an entry's name catches a file changed or cut short by accident;
anyone who can write the cache folder can also name a file after its own content. Found
by mutation testing: dropping the finiteness or the dtype check of an entry passed every
other test, so NaN decoders, or float32 ones where a float64 build expects float64, would
have been served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.decodercache import DecoderCache, content_digest

KEY = "ab" * 32


def _write(folder: Path, d: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{KEY}.{content_digest(d)}.npy", d)


def test_a_well_named_float64_entry_is_served(tmp_path: Path) -> None:
    """The baseline the refusals below are measured against."""
    d = np.arange(6.0).reshape(3, 2)
    _write(tmp_path, d)
    got = DecoderCache(tmp_path).get(KEY, (3, 2))
    assert got is not None
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, d)


@pytest.mark.parametrize(
    "d",
    [
        np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]),
        np.array([[0.0, 1.0], [np.inf, 2.0], [3.0, 4.0]]),
        np.arange(6.0, dtype=np.float32).reshape(3, 2),
        np.arange(6, dtype=np.int64).reshape(3, 2),
    ],
    ids=["nan", "inf", "float32", "int64"],
)
def test_a_non_finite_or_non_float64_entry_is_passed_over_though_its_name_fits(
    tmp_path: Path, d: np.ndarray
) -> None:
    """The digest of such content is well defined, so the name alone does not refuse it."""
    _write(tmp_path, d)
    assert DecoderCache(tmp_path).get(KEY, (3, 2)) is None


def test_an_entry_of_another_shape_is_passed_over(tmp_path: Path) -> None:
    """The same key with another ``(n, d_out)`` is not this solve's."""
    _write(tmp_path, np.arange(6.0).reshape(2, 3))
    assert DecoderCache(tmp_path).get(KEY, (3, 2)) is None
