"""``spikestream ls`` without a broker: the listing it builds from retained describe and
status documents, and the table it prints of them. Status text is chosen by anyone who
may publish on a status topic, so what reaches the terminal must be cut and stripped of
escape sequences; the table must stay aligned however long the cells are."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spikestream_client import ls
from spikestream_client.codec import Description
from spikestream_client.errors import ConfigError
from spikestream_client.ls import LsOptions, NetworkListing, list_networks, render
from tests.clients.test_record_hostile import described


class _FakeClient:
    """What :func:`list_networks` uses of a client: retained documents already in."""

    def __init__(
        self,
        descriptions: dict[str, Description],
        statuses: dict[str, str | None],
        synced: bool = True,
    ) -> None:
        self._descriptions = descriptions
        self._statuses = statuses
        self._synced = synced
        self.watched = False

    def watch_networks(self) -> None:
        self.watched = True

    async def sync(self, wait: float) -> bool:
        return self._synced

    def descriptions(self) -> dict[str, Description]:
        return dict(self._descriptions)

    def statuses(self) -> dict[str, str | None]:
        return dict(self._statuses)


def test_a_hostile_status_or_name_cannot_drive_the_terminal() -> None:
    """A retained status is free text from the bus: an OSC (retitle the terminal), a CSI
    (clear the screen) or a newline (a forged row) in it must not reach stdout, and a
    long one is cut; a name is checked on arrival, but render is the last line."""
    listing = [
        NetworkListing("evil\x1b[2Jnet", "\x1b]0;pwned\x07online\x1b[2J\nfake row", None),
        NetworkListing("long", "x" * 500, None),
    ]
    out = render(listing)
    assert "\x1b" not in out
    assert "\x07" not in out
    lines = out.splitlines()
    assert len(lines) == 3  # the header and one line per network: no forged row
    assert lines[1].split()[:2] == ["evilnet", "onlinefake"]
    status = lines[2].split()[1]
    assert len(status) == 20
    assert status.endswith("…")


def test_a_long_name_is_cut_in_the_table() -> None:
    """A name longer than any the rule allows (render's input is not only the client's)
    takes at most 64 columns, so one listing entry cannot push the others off screen."""
    out = render([NetworkListing("n" * 300, "online", None)])
    name = out.splitlines()[1].split()[0]
    assert len(name) == 64
    assert name.endswith("…")


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    """Every column starts at the same offset on every line, whichever row is widest:
    a table aligned to its header alone would shift the later columns."""
    seed = described({"a_spikes": {"kind": "spikes", "shape": [50], "source": "a"}}, "seed")
    listing = [
        NetworkListing("a_rather_long_network_name", "offline", None),
        NetworkListing("seed", "online", seed),
    ]
    lines = render(listing).splitlines()
    words = ["STATUS", "offline", "online"]
    starts = {line.index(word) for line, word in zip(lines, words, strict=True)}
    assert len(starts) == 1
    assert lines[2].split()[1:] == ["online", "1", "0.001", "u[1]", "a_spikes(spikes", "50)"]
    assert "(no describe)" in lines[1]


async def test_listing_joins_describes_and_statuses_by_name() -> None:
    """A network with only a status (a service older than describe) or only a describe
    (its status cleared) is still listed, once, in name order."""
    seed = described({"a_spikes": {"kind": "spikes", "shape": [50], "source": "a"}}, "seed")
    client = _FakeClient({"seed": seed}, {"zeta": "online", "alpha": None, "seed": "offline"})
    listing = await list_networks(client, 0.1)  # type: ignore[arg-type]
    assert client.watched
    assert [(n.net, n.status, n.description is not None) for n in listing] == [
        ("alpha", None, False),
        ("seed", "offline", True),
        ("zeta", "online", False),
    ]


async def test_a_broker_that_cannot_sync_gets_the_whole_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a sync round trip (an ACL on the sync topic) the retained messages have
    only time to arrive: the listing waits the full --wait before reading them."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(ls.asyncio, "sleep", fake_sleep)
    client = _FakeClient({}, {"seed": "online"}, synced=False)
    listing = await list_networks(client, 2.5)  # type: ignore[arg-type]
    assert slept == [2.5]
    assert [n.net for n in listing] == ["seed"]


def test_json_listing_names_its_fields() -> None:
    """``ls --json`` is for scripts: its keys are an interface."""
    seed = described({"a_spikes": {"kind": "spikes", "shape": [50], "source": "a"}}, "seed")
    got: list[dict[str, Any]] = ls._as_json(
        [NetworkListing("old", "online", None), NetworkListing("seed", None, seed)]
    )
    assert got[0] == {"net": "old", "status": "online", "describe": None}
    assert got[1]["status"] is None
    assert got[1]["describe"] == seed.document


@pytest.mark.parametrize("wait", [0.0, -1.0, float("inf"), float("nan")])
def test_a_wait_that_is_not_a_positive_finite_time_is_refused(wait: float) -> None:
    """--wait 0 would list nothing but what raced in; refused before any connection."""
    with pytest.raises(ConfigError, match="--wait must be a number of seconds > 0"):
        asyncio.run(ls.run(LsOptions(broker="mqtt://127.0.0.1:1", wait=wait)))
