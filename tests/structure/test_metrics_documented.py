"""docs/PROTOCOL.md §6.3 lists every metric family ``serve --metrics-port`` exports, and
nothing else. Most families were documented nowhere (the operator had to scrape and
guess), so the table is compared with what the exporter emits: the families are taken
from a scrape of the real collector over a service built on examples/seed.toml, never
from a list kept here, so a family added to or removed from the exporter fails this test
until the table says so.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from spikestream.build import build
from spikestream.serving.metrics import MultiCollector, ServiceCollector
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.serving.statistics import ServiceStatistics
from spikestream.spec import load_network
from spikestream_client.transport import parse_broker_url
from tests.structure.imports import ROOT

PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
SEED = ROOT / "examples" / "seed.toml"
HEADING = re.compile(r"^#{2,4} [\d.]+ Prometheus metrics\b.*$", re.MULTILINE)
_ROW = re.compile(r"^\| `(spikestream_\w+)` \|")
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$")
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})? ")


@dataclass(frozen=True)
class Family:
    """One metric family: its name as a scrape shows it, type and label names."""

    name: str
    type: str
    labels: frozenset[str]


def documented(text: str) -> list[Family]:
    """The rows of the "Prometheus metrics" section's table, in order (duplicates kept)."""
    heading = HEADING.search(text)
    assert heading, "docs/PROTOCOL.md has no numbered 'Prometheus metrics' section"
    rest = text[heading.end() :]
    following = re.search(r"^#", rest, re.MULTILINE)
    section = rest[: following.start()] if following else rest
    rows: list[Family] = []
    for line in section.splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        labels = frozenset(re.findall(r"`(\w+)`", cells[2]))
        rows.append(Family(m.group(1), cells[1], labels))
    return rows


def exposition_families(exposition: str) -> dict[str, Family]:
    """The families of a text-format scrape: ``# TYPE`` names and types, and the label
    names their samples carry."""
    types: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    current: str | None = None
    for line in exposition.splitlines():
        if m := _TYPE.match(line):
            current = m.group(1)
            types[current] = m.group(2)
            labels[current] = set()
        elif line and not line.startswith("#"):
            sample = _SAMPLE.match(line)
            assert sample, line
            assert current, f"a sample before any # TYPE line: {line}"
            assert sample.group(1).startswith(current), f"{line} is not of {current}"
            labels[current].update(re.findall(r'(\w+)="', sample.group(2) or ""))
    return {n: Family(n, t, frozenset(labels[n])) for n, t in types.items()}


def test_the_scrape_reader_reads_names_types_and_labels() -> None:
    text = (
        "# HELP a_total A\n# TYPE a_total counter\n"
        'a_total{net="n",probe="p"} 1.0\n'
        "# HELP b B\n# TYPE b gauge\n"
        "# HELP h H\n# TYPE h histogram\n"
        'h_bucket{le="+Inf",net="n"} 2.0\nh_count{net="n"} 2.0\nh_sum{net="n"} 0.5\n'
    )
    assert exposition_families(text) == {
        "a_total": Family("a_total", "counter", frozenset({"net", "probe"})),
        "b": Family("b", "gauge", frozenset()),
        "h": Family("h", "histogram", frozenset({"le", "net"})),
    }


def test_the_table_reader_reads_only_its_section() -> None:
    text = (
        "### 6.2 Stats\n| `spikestream_elsewhere` | gauge | `net` | x | y |\n"
        "### 6.3 Prometheus metrics\n\n| Metric | Type | Labels | Meaning | Stats key |\n"
        "|---|---|---|---|---|\n"
        "| `spikestream_a_total` | counter | `net`, `probe` | Frames | `frames` |\n"
        "## 7. Next\n| `spikestream_after` | gauge | `net` | x | y |\n"
    )
    assert documented(text) == [
        Family("spikestream_a_total", "counter", frozenset({"net", "probe"}))
    ]


@pytest.fixture(scope="module")
def exported() -> dict[str, Family]:
    """Every family a scrape of a service on examples/seed.toml shows: collected through
    the exporter's own collectors (as ``start_metrics`` registers them) and written in the
    text format a scrape gets. The service never connects (no broker). Its snapshot is
    given one refusal so the family that has series only per refusal reason shows its
    labels too."""
    service = Service(
        build(load_network(SEED)),
        parse_broker_url("mqtt://127.0.0.1:1"),
        ServeSettings(),
        memory_limit=1 << 30,
    )

    def snapshot() -> ServiceStatistics:
        return dataclasses.replace(service.statistics(), rejected={"garbage": 1})

    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(MultiCollector([ServiceCollector(snapshot)]))
    families = exposition_families(generate_latest(registry).decode())
    empty = sorted(n for n, f in families.items() if not f.labels)
    assert not empty, f"families with no series, whose labels cannot be checked: {empty}"
    return families


def test_the_table_names_each_family_once() -> None:
    names = [f.name for f in documented(PROTOCOL.read_text())]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"docs/PROTOCOL.md §6.3 lists these more than once: {twice}"


def test_every_exported_family_is_documented(exported: dict[str, Family]) -> None:
    names = {f.name for f in documented(PROTOCOL.read_text())}
    missing = sorted(set(exported) - names)
    assert not missing, f"exported but not in docs/PROTOCOL.md §6.3's table: {missing}"


def test_every_documented_family_is_exported(exported: dict[str, Family]) -> None:
    names = {f.name for f in documented(PROTOCOL.read_text())}
    unknown = sorted(names - set(exported))
    assert not unknown, f"in docs/PROTOCOL.md §6.3's table but never exported: {unknown}"


def test_documented_types_and_labels_are_the_exported_ones(
    exported: dict[str, Family],
) -> None:
    wrong = [
        f"{row.name}: documented {row.type} {sorted(row.labels)}, "
        f"exported {exported[row.name].type} {sorted(exported[row.name].labels)}"
        for row in documented(PROTOCOL.read_text())
        if row.name in exported and row != exported[row.name]
    ]
    assert not wrong, "docs/PROTOCOL.md §6.3 disagrees with the exporter:\n" + "\n".join(wrong)
