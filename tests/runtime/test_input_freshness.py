"""``InputSlot.freshness``: the age of an input's last value and whether it is stale."""

from __future__ import annotations

import numpy as np
import pytest

from spikestream.runtime.slots import NEW_VALUE, WENT_STALE, InputSlot


def test_age_and_staleness_follow_the_last_value_and_the_ttl() -> None:
    slot = InputSlot("u", 1, np.zeros(1), ttl=0.5)
    assert slot.freshness(10.0) == (None, True)  # no value yet: on its default
    slot.offer(np.array([0.3]), 10.0)
    assert slot.freshness(10.2) == (pytest.approx(0.2), False)
    assert slot.freshness(10.6) == (pytest.approx(0.6), True)
    slot.offer(np.array([0.4]), 10.7)  # a new value restarts the age
    assert slot.freshness(10.7) == (0.0, False)
    assert slot.freshness(10.65) == (0.0, False)  # never negative
    slot.clear()  # reset
    assert slot.freshness(11.0) == (None, True)


def test_without_a_ttl_a_received_input_is_never_stale() -> None:
    slot = InputSlot("u", 1, np.zeros(1), ttl=None)
    slot.offer(np.array([1.0]), 0.0)
    assert slot.freshness(1e6) == (1e6, False)


def test_stale_now_agrees_with_what_the_tick_thread_applies() -> None:
    slot = InputSlot("u", 1, np.zeros(1), ttl=0.1)
    target = np.zeros(1)
    slot.offer(np.array([2.0]), 0.0)
    assert slot.apply(target, 0.05) == NEW_VALUE
    assert slot.freshness(0.05)[1] is False
    assert slot.apply(target, 0.2) == WENT_STALE
    assert target[0] == 0.0  # back on the default
    assert slot.freshness(0.2)[1] is True
