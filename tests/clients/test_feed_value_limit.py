"""A file of inputs whose only value past the input limit is negative is refused as one
past it on the positive side is: the bound is on the magnitude."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream_client.codec.bounds import INPUT_VALUE_LIMIT
from spikestream_client.errors import ConfigError
from spikestream_client.feed_sources import load_samples, make_source


def test_a_file_whose_only_value_past_the_limit_is_negative_is_refused(tmp_path: Path) -> None:
    low = tmp_path / "low.npy"
    np.save(low, np.array([[0.5, 1e9], [-2e9, 0.0]]))
    with pytest.raises(ConfigError, match=r"holds values beyond ±1e\+09 \(the first in sample 1,"):
        load_samples(low)


@pytest.mark.parametrize("signal", ["sin", "square", "noise"])
def test_an_amplitude_that_is_not_finite_is_refused_naming_the_flag(signal: str) -> None:
    """``--amp nan`` is refused before the first value, naming the flag: it reaches no
    magnitude (NaN compares false with every bound)."""
    with pytest.raises(ConfigError, match=r"^--amp must be finite, got nan$"):
        make_source(signal, rate=10.0, amp=float("nan"))


@pytest.mark.parametrize("signal", ["sin", "square"])
def test_a_signal_that_reaches_just_past_the_limit_is_refused(signal: str) -> None:
    """``|offset| + |amp|`` is the signal's reach: one unit past the limit is refused,
    naming both flags, and exactly at it is allowed (the decoders allow the limit)."""
    half = INPUT_VALUE_LIMIT / 2
    with pytest.raises(ConfigError, match=r"^--offset -5e\+08 and --amp 5e\+08 reach"):
        make_source(signal, rate=10.0, offset=-half, amp=half + 1)
    make_source(signal, rate=10.0, offset=-half, amp=half)
    with pytest.raises(ConfigError, match=r"reach 1e\+09 \(\|offset\| \+ 10 × \|amp\|\)"):
        make_source("noise", rate=10.0, amp=INPUT_VALUE_LIMIT / 10 + 1)
