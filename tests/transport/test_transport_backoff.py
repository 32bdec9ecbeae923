"""The reconnect loop's backoff, without a broker: a fake clock, fake connection
attempts and sessions, and a random source that always draws the top of its range, so
that every delay the loop sleeps is known in advance.

With ``backoff_min`` 0.1 and ``backoff_max`` 1.0 the delays drawn at the top of
``U(backoff_min, 3 * previous)`` are 0.3, 0.9, then the cap 1.0; after a reset the next
one is 0.3 again.
"""

from __future__ import annotations

import random
import types

import pytest

from spikestream_client.errors import TransportError
from spikestream_client.transport import MqttLink, parse_broker_url, reconnect

MIN, MAX, STABLE = 0.1, 1.0, 5.0


class TopOfRange:
    """A random source whose ``uniform(a, b)`` is always ``b``."""

    def uniform(self, a: float, b: float) -> float:
        assert a <= b
        return b


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(reconnect, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


class Scripted:
    """Drives ``link.run()``: each connection attempt fails or opens a session that lasts
    the next scripted number of (fake) seconds; every backoff sleep is recorded instead of
    slept, and the run stops once the script is used up."""

    def __init__(self, link: MqttLink, clock: FakeClock, script: list[float | None]) -> None:
        # None: the attempt fails; a number: a session lasting that many seconds.
        self.script = list(script)
        self.clock = clock
        self.delays: list[float] = []
        link._connect = self._connect  # type: ignore[method-assign,assignment]
        link._session = self._session  # type: ignore[method-assign]
        link._sleep_unless_stopped = self._sleep  # type: ignore[method-assign]
        self._lasts = 0.0

    async def _connect(self) -> tuple[object, object]:
        step = self.script.pop(0)
        if step is None:
            msg = "cannot connect (scripted)"
            raise TransportError(msg)
        self._lasts = step
        return object(), object()

    async def _session(self, conn: object, outbox: object) -> str | None:
        self.clock.now += self._lasts
        return "lost (scripted)"

    async def _sleep(self, delay: float) -> bool:
        self.delays.append(delay)
        return not self.script  # True: "stop requested", ends run()


def make_link(**options: object) -> MqttLink:
    options.setdefault("backoff_min", MIN)
    options.setdefault("backoff_max", MAX)
    options.setdefault("stable_after", STABLE)
    return MqttLink(
        parse_broker_url("mqtt://127.0.0.1:1"),
        client_id="backoff",
        rng=TopOfRange(),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


async def run_script(
    clock: FakeClock, script: list[float | None], **options: object
) -> list[float]:
    link = make_link(**options)
    scripted = Scripted(link, clock, script)
    await link.run()
    assert not scripted.script
    return scripted.delays


async def test_failed_attempts_back_off_up_to_backoff_max_and_no_further(
    clock: FakeClock,
) -> None:
    delays = await run_script(clock, [None] * 6)
    assert delays == pytest.approx([0.3, 0.9, 1.0, 1.0, 1.0, 1.0])


async def test_the_cap_holds_with_real_jitter(clock: FakeClock) -> None:
    link = MqttLink(
        parse_broker_url("mqtt://127.0.0.1:1"),
        client_id="jitter",
        backoff_min=MIN,
        backoff_max=MAX,
        rng=random.Random(7),
    )
    scripted = Scripted(link, clock, [None] * 200)
    await link.run()
    assert len(scripted.delays) == 200
    assert all(MIN <= d <= MAX for d in scripted.delays), max(scripted.delays)


async def test_a_broker_that_drops_at_once_keeps_the_backoff_growing(clock: FakeClock) -> None:
    # Connections that end as soon as they are made (well under stable_after) are no
    # reason to reset the backoff: no tight reconnect loop.
    delays = await run_script(clock, [0.0, 0.0, 0.0, STABLE / 2, 0.0])
    assert delays == pytest.approx([0.3, 0.9, 1.0, 1.0, 1.0])


async def test_a_connection_that_stayed_up_stable_after_resets_the_backoff(
    clock: FakeClock,
) -> None:
    # Failed attempts grow the delay to its cap; then a connection that lasted
    # stable_after starts over from backoff_min; one that lasted longer too.
    delays = await run_script(clock, [None, None, None, STABLE, None, None, STABLE + 60.0])
    assert delays == pytest.approx([0.3, 0.9, 1.0, 0.3, 0.9, 1.0, 0.3])


async def test_a_reset_also_follows_dropped_connections_that_grew_the_backoff(
    clock: FakeClock,
) -> None:
    delays = await run_script(clock, [0.0, 0.0, 0.0, STABLE, 0.0])
    assert delays == pytest.approx([0.3, 0.9, 1.0, 0.3, 0.9])
