"""The house rules on imports, checked on the source of both packages.

- No import circles, between modules or between layers.
- The client distribution never imports the service.
- The service's layers follow its data flow (spec -> build -> sim -> runtime -> serving
  -> cli): a module imports only modules of its own layer or earlier ones.
- The wire protocol (``spikestream_client.codec``) and the transport stay free of the
  rest of the client.
"""

from __future__ import annotations

from collections import defaultdict

from tests.structure.imports import Edge, cycles, edges, modules

#: The service's top-level modules in flow order; a module may import only those at its
#: own position or before. Names of the same tuple are independent of each other.
SERVICE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("spikestream",),  # the package itself: __version__ and the error names
    ("spec", "functions"),
    ("datafiles",),
    ("signals", "budget"),
    ("build",),
    ("nengo_import", "sim"),
    ("runtime",),
    ("transport",),  # the embedded broker, used by serving
    ("serving",),
    ("cli",),
    ("__main__",),
)


def _top(module: str) -> str:
    """``spikestream.runtime.engine`` -> ``runtime``; ``spikestream`` -> ``spikestream``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _rank() -> dict[str, int]:
    return {name: i for i, group in enumerate(SERVICE_LAYERS) for name in group}


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


def test_every_service_module_has_a_layer() -> None:
    tops = {_top(m) for m in modules() if m.split(".")[0] == "spikestream"}
    assert tops - set(_rank()) == set(), "add these to SERVICE_LAYERS"


def test_service_layers_import_only_earlier_layers() -> None:
    rank = _rank()
    bad = []
    for e in edges():
        if e.source.split(".")[0] != "spikestream" or e.target.split(".")[0] != "spikestream":
            continue
        a, b = _top(e.source), _top(e.target)
        if a != b and rank[b] >= rank[a]:
            bad.append(e)
    assert not bad, "imports against the flow spec -> build -> sim -> runtime:\n" + _show(bad)


def test_the_protocol_and_transport_stand_alone() -> None:
    allowed = {
        "spikestream_client.codec": {"codec", "errors", "names"},
        "spikestream_client.transport": {"transport", "errors", "aio"},
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
