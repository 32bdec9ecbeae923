"""The reconnect loop's backoff, without a broker: a fake clock, fake connection
attempts and sessions, and a random source that always draws the top of its range, so
that every delay the loop sleeps is known in advance.

With ``backoff_min`` 0.1 and ``backoff_max`` 1.0 the delays drawn at the top of
``U(backoff_min, 3 * previous)`` are 0.3, 0.9, then the cap 1.0; after a reset the next
one is 0.3 again.
"""

from __future__ import annotations

import logging
import random
import types

import pytest

from spikestream_client.errors import AuthError, TransportError
from spikestream_client.transport import MqttLink, parse_broker_url, reconnect
from spikestream_client.transport.values import ConnectFailure

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

    def __init__(self, link: MqttLink, clock: FakeClock, script: list[float | str | None]) -> None:
        # None: the attempt fails; "auth": the login is refused; a number: a session
        # lasting that many seconds.
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
        if step == "auth":
            msg = "login refused (scripted)"
            raise AuthError(msg)
        assert isinstance(step, float)
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
    clock: FakeClock, script: list[float | str | None], **options: object
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


async def test_a_good_connection_resets_the_count_of_refused_logins(clock: FakeClock) -> None:
    """``max_auth_failures`` counts *consecutive* refusals: a connection in between
    starts the count over, so a broker that refuses now and then (an auth backend
    briefly down) never makes a long-lived link give up."""
    script: list[float | str | None] = ["auth", "auth", 0.0, "auth", "auth", 0.0]
    delays = await run_script(clock, script, max_auth_failures=3)
    assert len(delays) == 6  # ran the whole script, never raised AuthError


async def test_max_auth_failures_consecutive_refusals_raise(clock: FakeClock) -> None:
    """The counterpart: that many refusals in a row end ``run()`` with AuthError."""
    link = make_link(max_auth_failures=3)
    Scripted(link, clock, ["auth", "auth", "auth", 0.0])
    with pytest.raises(AuthError, match="giving up after 3 refused attempts"):
        await link.run()


async def test_only_the_first_failure_in_a_row_is_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable broker is one WARNING line, then INFO lines while it stays down
    (no wall of warnings); after a connection, the next failure warns again."""
    caplog.set_level(logging.INFO, logger="spikestream.transport")
    await run_script(clock, [None, None, None, 0.0, None, None])
    levels = [r.levelno for r in caplog.records if "cannot connect (scripted)" in r.getMessage()]
    warning, info = logging.WARNING, logging.INFO
    assert levels == [warning, info, info, warning, info]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x86, "Bad user name or password"),
        (0x87, "Not authorized"),
        (0x8C, "Bad authentication method"),
    ],
)
def test_every_login_refusal_code_is_an_auth_error(code: int, text: str) -> None:
    """Brokers word a wrong password differently (mosquitto: 0x87, EMQX and HiveMQ:
    0x86 "bad user name or password"); each must count against ``max_auth_failures``
    and name the user, never pass as a plain connection failure retried forever."""
    link = MqttLink(parse_broker_url("mqtt://alice:secret@127.0.0.1:1"), client_id="codes")
    failure = ConnectFailure(text, code=code, closed_before_connack=False, tcp_connected=True)
    error = link._connect_error(failure, "5")
    assert isinstance(error, AuthError)
    assert "refused the login as user 'alice'" in str(error)
    assert "secret" not in str(error)


async def test_by_default_a_connection_must_last_5_s_to_reset_the_backoff(
    clock: FakeClock,
) -> None:
    """``stable_after`` defaults to ``max(backoff_max, 5)``: with a short backoff_max
    (1 s), a broker that accepts and drops us every 2 s must not reset the backoff each
    time (a reconnect storm against a sick broker)."""
    delays = await run_script(clock, [None, None, None, 2.0, None, 5.0, None], stable_after=None)
    assert delays == pytest.approx([0.3, 0.9, 1.0, 1.0, 1.0, 0.3, 0.9])


async def test_backoff_max_equal_to_backoff_min_is_a_fixed_delay(clock: FakeClock) -> None:
    """``backoff_max`` may equal ``backoff_min`` (the flags allow it: a fixed retry
    delay); every delay is then exactly that value."""
    delays = await run_script(clock, [None, None, 0.0, None], backoff_min=0.5, backoff_max=0.5)
    assert delays == pytest.approx([0.5, 0.5, 0.5, 0.5])
