"""The house rules on imports, checked on the source of both packages.

- No import circles, between modules or between layers.
- The client distribution never imports the service.
- The service's layers follow its data flow (spec -> build -> sim -> runtime -> serving
  -> cli): a module imports only modules of its own layer or earlier ones.
- The client distribution's layers likewise (errors -> codec -> transport -> library ->
  tools -> cli), and the wire protocol (``spikestream_client.codec``) and the transport
  stay free of the rest of the client.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.structure.imports import Edge, cycles, edges, modules

#: The service's top-level modules in flow order; a module may import only those at its
#: own position or before. Names of the same tuple are independent of each other.
SERVICE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "flaghelp"),
    ("spikestream",),  # the package itself: __version__ and the error names
    ("spec_errors",),  # the network file's errors as lines, for spec
    ("spec", "functions"),
    ("datafiles",),
    ("signals", "budget", "decodercache"),
    ("build",),
    ("nengo_import", "sim"),
    ("runtime",),
    ("transport",),  # the embedded broker, used by serving
    ("serving",),
    ("cli",),
    ("__main__",),
)


#: The client distribution's top-level modules in the same form.
CLIENT_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "names"),
    ("spikestream_client",),  # the package: __version__, names loaded lazily
    ("codec", "aio", "files", "logs", "safetext", "npz"),
    ("plotting",),  # reads .npz members with npz's header reader
    ("transport", "gaps", "feed_sources"),
    ("brokers", "streams", "recorder"),
    ("dispatch",),
    ("client",),
    ("tool",),
    ("feed", "ls", "monitor", "record"),
    ("cli",),
    ("__main__",),
)


def _top(module: str) -> str:
    """``spikestream.runtime.engine`` -> ``runtime``; ``spikestream`` -> ``spikestream``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _rank(layers: tuple[tuple[str, ...], ...] = SERVICE_LAYERS) -> dict[str, int]:
    return {name: i for i, group in enumerate(layers) for name in group}


def _show(found: list[Edge]) -> str:
    return "\n".join(f"  {e.source}:{e.line} imports {e.target}" for e in found)


def test_the_graph_is_read() -> None:
    # Guards the checks below against passing on an empty graph.
    found = edges()
    assert len(modules()) > 60
    assert any(e.source == "spikestream.cli.serve" for e in found)
    assert any(e.lazy for e in found)


def test_no_module_import_circles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges():
        graph[e.source].add(e.target)
    assert cycles(graph) == []


def test_no_circles_between_layers() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges():
        a = ".".join(e.source.split(".")[:2])
        b = ".".join(e.target.split(".")[:2])
        if a != b:
            graph[a].add(b)
    assert cycles(graph) == []


def test_the_client_never_imports_the_service() -> None:
    bad = [
        e
        for e in edges()
        if e.source.startswith("spikestream_client") and e.target.split(".")[0] == "spikestream"
    ]
    assert not bad, "the client distribution imports the service:\n" + _show(bad)


@pytest.mark.parametrize(
    ("package", "layers"),
    [("spikestream", SERVICE_LAYERS), ("spikestream_client", CLIENT_LAYERS)],
)
def test_every_module_has_a_layer(package: str, layers: tuple[tuple[str, ...], ...]) -> None:
    tops = {_top(m) for m in modules() if m.split(".")[0] == package}
    assert tops - set(_rank(layers)) == set(), f"add these to the layers of {package}"


@pytest.mark.parametrize(
    ("package", "layers"),
    [("spikestream", SERVICE_LAYERS), ("spikestream_client", CLIENT_LAYERS)],
)
def test_layers_import_only_earlier_layers(
    package: str, layers: tuple[tuple[str, ...], ...]
) -> None:
    rank = _rank(layers)
    bad = []
    for e in edges():
        if e.source.split(".")[0] != package or e.target.split(".")[0] != package:
            continue
        a, b = _top(e.source), _top(e.target)
        if a != b and rank[b] >= rank[a]:
            bad.append(e)
    assert not bad, f"imports against the layers of {package}:\n" + _show(bad)


def test_the_protocol_and_transport_stand_alone() -> None:
    allowed = {
        "spikestream_client.codec": {"codec", "errors", "names"},
        "spikestream_client.transport": {"transport", "errors", "aio", "files"},
    }
    bad = []
    for e in edges():
        for package, ok in allowed.items():
            if (
                e.source.startswith(package)
                and e.target.split(".")[0] == "spikestream_client"
                and _top(e.target) not in ok
            ):
                bad.append(e)
    assert not bad, _show(bad)
